"""Generator truth of one event: resonance decay products and the origin class of each particle.

Ancestry is propagated with pointer doubling over ``mother1`` (vectorized numpy, log-depth), so
no Python loop runs over the ~2,000 entries of an event record.
"""

from __future__ import annotations

import numpy as np

from foundation.data.schema import ORIGIN_CLASSES

HARD_DECAY, B_HADRON, C_HADRON, OTHER, PILEUP = (
    ORIGIN_CLASSES.index(name) for name in ("hard_decay", "b_hadron", "c_hadron", "other", "pileup")
)
RESONANCES = (6, 23, 24, 25)
"""PDG ids of the resonances whose decays define signal jets (t, Z, W, H)."""
NEUTRINOS = (12, 14, 16)
CHARGED_LEPTONS = (11, 13)
_DOUBLING_STEPS = 12  # ancestry chains up to 4096 generations


def contains_quark(pdg_id: np.ndarray, quark: int) -> np.ndarray:
    """Whether each hadron id contains the quark ``quark`` (4 = c, 5 = b), onia excluded.

    Shapes:
        - pdg_id: ``[P]``; output ``[P]`` bool.
    """
    code = np.abs(pdg_id) % 10000
    q1, q2, q3 = (code // 1000) % 10, (code // 100) % 10, (code // 10) % 10
    meson = q1 == 0
    in_meson = meson & ((q2 == quark) ^ (q3 == quark))
    in_baryon = ~meson & ((q1 == quark) | (q2 == quark) | (q3 == quark))
    return (code >= 100) & (in_meson | in_baryon)


def _propagate(values: np.ndarray, pointer: np.ndarray) -> np.ndarray:
    """OR ``values`` over each entry's chain of pointers (pointer doubling).

    Shapes:
        - values: ``[P]`` or ``[P, K]`` bool; pointer: ``[P]`` int (a root points to itself).
    """
    values = values.copy()
    pointer = pointer.copy()
    for _ in range(_DOUBLING_STEPS):
        values |= values[pointer]
        next_pointer = pointer[pointer]
        if np.array_equal(next_pointer, pointer):
            break
        pointer = next_pointer
    return values


def _last_copy(event: dict[str, np.ndarray], index: int) -> int:
    """Follow a particle through its recoil copies to the copy that decays."""
    pdg, first, last = event["pdg_id"], event["daughter1"], event["daughter2"]
    while first[index] > 0 and (first[index] == last[index] or last[index] == 0):
        daughter = first[index]
        if pdg[daughter] != pdg[index]:
            break
        index = daughter
    return index


def _decay_leaves(event: dict[str, np.ndarray], index: int) -> list[int]:
    """Non-resonant decay products of a resonance, following t -> W -> q q' etc."""
    index = _last_copy(event, index)
    first, last = int(event["daughter1"][index]), int(event["daughter2"][index])
    if first <= 0:
        return []
    daughters = range(first, max(first, last) + 1)
    leaves: list[int] = []
    for daughter in daughters:
        if abs(int(event["pdg_id"][daughter])) in RESONANCES:
            leaves.extend(_decay_leaves(event, daughter))
        else:
            leaves.append(daughter)
    return leaves


def resonance_decays(event: dict[str, np.ndarray], resonance: int) -> list[np.ndarray]:
    """The decay products of every hard-process resonance of PDG id ``resonance``.

    Returns:
        One integer array of record indices per resonance (status -22 in the hard process).
    """
    status, pdg = event["status"], event["pdg_id"]
    candidates = np.flatnonzero((np.abs(status) == 22) & (np.abs(pdg) == resonance))
    return [np.asarray(_decay_leaves(event, int(index)), dtype=np.int64) for index in candidates]


def hard_partons(event: dict[str, np.ndarray]) -> np.ndarray:
    """Record indices of the outgoing quarks and gluons of the hard process (status 23)."""
    status, pdg = event["status"], np.abs(event["pdg_id"])
    return np.flatnonzero((np.abs(status) == 23) & ((pdg <= 5) | (pdg == 21)))


def _strings_from_decay(
    event: dict[str, np.ndarray], hadronised: np.ndarray, from_decay: np.ndarray
) -> np.ndarray:
    """Hadrons whose string (the contiguous parton range mother1..mother2) carries most of its
    energy in partons that descend from the resonance decay.

    Shapes:
        - hadronised, from_decay, output: ``[P]`` bool.
    """
    first = event["mother1"].astype(np.int64)
    last = np.where(event["mother2"] >= first, event["mother2"], first).astype(np.int64)
    energy = np.clip(event["energy"], 0.0, None)
    cumulative_energy = np.concatenate([[0.0], np.cumsum(energy)])
    cumulative_decay = np.concatenate([[0.0], np.cumsum(energy * from_decay)])
    string_energy = cumulative_energy[last + 1] - cumulative_energy[first]
    decay_energy = cumulative_decay[last + 1] - cumulative_decay[first]
    return hadronised & (decay_energy > 0.5 * np.maximum(string_energy, 1e-12))


def particle_origins(event: dict[str, np.ndarray], decay_products: np.ndarray) -> np.ndarray:
    """Origin class of every entry of the event record (see ``schema.ORIGIN_CLASSES``).

    Args:
        event: one event's record arrays (see :class:`~foundation.simulation.generator.EventBatch`).
        decay_products: record indices of the resonance decay products defining ``hard_decay``.

    Returns:
        ``[P]`` int8 origin class (``pileup`` is never assigned here).

    Shapes:
        - every array of ``event``: ``[P]``.
    """
    status = np.abs(event["status"])
    size = len(status)
    hadronised = (status >= 81) & (status <= 89)
    pointer = np.where(hadronised | (event["mother1"] <= 0), np.arange(size), event["mother1"])
    pointer = np.clip(pointer, 0, size - 1)

    from_decay = np.zeros(size, dtype=bool)
    string_from_decay = np.zeros(size, dtype=bool)
    if len(decay_products):
        from_decay[decay_products] = True
        from_decay = _propagate(from_decay, pointer)  # partons (and lepton decays) of the decay
        string_from_decay = _strings_from_decay(event, hadronised, from_decay)

    hadron = status >= 81
    flags = np.stack(
        [
            string_from_decay,
            hadron & contains_quark(event["pdg_id"], 5),
            hadron & contains_quark(event["pdg_id"], 4),
        ],
        axis=1,
    )
    # Final-state particles are never b or c hadrons (all decay, tau0 < 10 mm), so a set flag
    # on a final particle means a b (c) hadron among its ancestors.
    flags = _propagate(flags, pointer)
    hard = from_decay | flags[:, 0]
    below_b, below_c = flags[:, 1], flags[:, 2]

    origin = np.full(size, OTHER, dtype=np.int8)
    origin[hard] = HARD_DECAY
    origin[below_c & ~below_b] = C_HADRON
    origin[below_b] = B_HADRON
    return origin
