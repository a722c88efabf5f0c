"""Pythia 8 event generation, returned as flat numpy arrays (no per-particle Python access)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np

from foundation.extras import requires_extra

BEAM_ENERGY_CM = 13600.0
"""Centre-of-mass energy of the proton beams in GeV (LHC Run 3)."""

COMMON_SETTINGS: tuple[str, ...] = (
    f"Beams:eCM = {BEAM_ENERGY_CM:g}",
    "Print:quiet = on",
    # Particles with a proper lifetime above 10 mm/c (K0S, Lambda, ...) are left undecayed, as
    # a detector sees them; b and c hadrons and taus decay with displaced vertices.
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10",
    "Random:setSeed = on",
)

MAX_PYTHIA_SEED = 900_000_000


def _ensure_pythia_data() -> None:
    """Point ``PYTHIA8DATA`` at the xmldoc shipped with the pythia8mc wheel when it is unset."""
    if os.environ.get("PYTHIA8DATA"):
        return
    with requires_extra("sim"):
        import pythia8mc

    for candidate in (
        Path(pythia8mc.__file__).parent / "share" / "Pythia8" / "xmldoc",
        Path(pythia8mc.__file__).parents[1] / "share" / "Pythia8" / "xmldoc",
    ):
        if candidate.is_dir():
            os.environ["PYTHIA8DATA"] = str(candidate)
            return


@dataclass
class EventBatch:
    """Generated events as flat particle arrays with per-event offsets.

    Shapes:
        - offsets: ``[E + 1]`` int64, particles of event ``e`` are ``offsets[e]:offsets[e+1]``.
        - every other array: ``[P]`` over all particles of all events, in Pythia record order
          (``mother1``, ``mother2``, ``daughter1``, ``daughter2`` are indices within the event).
    """

    offsets: np.ndarray
    pdg_id: np.ndarray
    status: np.ndarray
    mother1: np.ndarray
    mother2: np.ndarray
    daughter1: np.ndarray
    daughter2: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    energy: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    vz: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def event(self, index: int) -> dict[str, np.ndarray]:
        """Views of the arrays of one event."""
        start, stop = self.offsets[index], self.offsets[index + 1]
        return {
            name: getattr(self, name)[start:stop]
            for name in (
                "pdg_id",
                "status",
                "mother1",
                "mother2",
                "daughter1",
                "daughter2",
                "px",
                "py",
                "pz",
                "energy",
                "vx",
                "vy",
                "vz",
            )
        }


def _flat(array: ak.Array, dtype: type) -> np.ndarray:
    return np.asarray(ak.to_numpy(ak.flatten(array, axis=None)), dtype=dtype)


class Generator:
    """A seeded Pythia 8 instance for one list of process settings.

    Args:
        settings: process-specific Pythia settings (see :mod:`foundation.simulation.processes`).
        seed: Pythia random seed in ``[1, 900000000]``.
    """

    def __init__(self, settings: list[str], seed: int) -> None:
        if not 1 <= seed <= MAX_PYTHIA_SEED:
            raise ValueError(f"Pythia seed: expected 1..{MAX_PYTHIA_SEED}, found {seed}")
        _ensure_pythia_data()
        with requires_extra("sim"):
            import pythia8mc

        self.seed = seed
        self._pythia = pythia8mc.Pythia("", False)
        for line in (*COMMON_SETTINGS, f"Random:seed = {seed}", *settings):
            if not self._pythia.readString(line):
                raise ValueError(f"Pythia setting rejected: {line!r}")
        if not self._pythia.init():
            raise RuntimeError(f"Pythia failed to initialise with settings {settings}")
        self._charges: dict[int, float] = {}

    def generate(self, n_events: int) -> EventBatch:
        """Generate ``n_events`` events (failed events are skipped by Pythia and retried)."""
        batch = self._pythia.nextBatch(n_events)
        particles = batch["prt"]
        counts = np.asarray(ak.num(particles), dtype=np.int64)
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        momentum = particles["p"]
        vertex = particles["vProd"]
        return EventBatch(
            offsets=offsets,
            pdg_id=_flat(particles["id"], np.int32),
            status=_flat(particles["status"], np.int32),
            mother1=_flat(particles["mother1"], np.int32),
            mother2=_flat(particles["mother2"], np.int32),
            daughter1=_flat(particles["daughter1"], np.int32),
            daughter2=_flat(particles["daughter2"], np.int32),
            px=_flat(momentum["px"], np.float64),
            py=_flat(momentum["py"], np.float64),
            pz=_flat(momentum["pz"], np.float64),
            energy=_flat(momentum["e"], np.float64),
            vx=_flat(ak.fill_none(vertex["px"], 0.0), np.float64),
            vy=_flat(ak.fill_none(vertex["py"], 0.0), np.float64),
            vz=_flat(ak.fill_none(vertex["pz"], 0.0), np.float64),
        )

    def generate_unread(self, n_events: int) -> int:
        """Generate events without reading the record: Pythia's own rate, for benchmarks.

        Returns:
            The number of events Pythia reported as successful.
        """
        return sum(bool(self._pythia.next()) for _ in range(n_events))

    def charges(self, pdg_ids: np.ndarray) -> np.ndarray:
        """Electric charge (units of e) of each PDG id, from Pythia's particle data."""
        unique, inverse = np.unique(pdg_ids, return_inverse=True)
        values = np.empty(len(unique), dtype=np.float32)
        for position, pdg in enumerate(unique.tolist()):
            if pdg not in self._charges:
                self._charges[pdg] = float(self._pythia.particleData.charge(pdg))
            values[position] = self._charges[pdg]
        return values[inverse]
