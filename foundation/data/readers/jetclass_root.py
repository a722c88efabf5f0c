"""Reader of JetClass-format ROOT files (public JetClass and this project's simulated files).

The jets live in the tree :data:`~foundation.data.schema.TREE_NAME` with the JetClass branch
names. A TTree (``part_px`` ... with a counter branch) and an RNTuple (a ``part`` record field with
``px`` ... sub-fields, as uproot >= 5.7 writes by assignment) are both read. Only the branches
named in :mod:`foundation.data.schema` are read, never the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from foundation.data.kinematics import jets_from_particles
from foundation.data.readers._checks import check_finite, library_errors
from foundation.data.readers.registry import register_reader
from foundation.data.records import VECTOR_FIELDS, JetRecords
from foundation.data.schema import (
    EVENT_ID_BRANCH,
    JET_BRANCHES,
    JETCLASS_LABELS,
    PARTICLE_BRANCHES,
    QUARK_GLUON_LABELS,
    TOP_LABELS,
    TREE_NAME,
    TRUTH_JET_BRANCHES,
    TRUTH_PARTICLE_BRANCHES,
)
from foundation.errors import DataError

_INT_BRANCHES = frozenset({"jet_nparticles", "jet_truth_parton_id", *TRUTH_PARTICLE_BRANCHES})
_AXIS_FIELDS = ("jet_pt", "jet_eta", "jet_phi", "jet_energy")


@register_reader(
    "jetclass",
    extensions=(".root",),
    magic=b"root",
    description="JetClass-format ROOT tree, public or simulated",
)
def read_jetclass_root(path: Path) -> JetRecords:
    """Read a JetClass-format ROOT file.

    Labels are every ``label_*`` branch present, ordered as the known label tuple they match
    (:data:`JETCLASS_LABELS`, :data:`QUARK_GLUON_LABELS`, :data:`TOP_LABELS`), else in JetClass
    order followed by unknown labels in file order. A file without ``event_id`` gets the jet index.

    Raises:
        DataError: unreadable, truncated or empty file; no tree; a missing 4-vector or label
            branch; ragged branches that disagree; labels that are not one-hot; NaN or inf.
    """
    path = Path(path)
    expected = f"a ROOT file with a '{TREE_NAME}' tree"
    with library_errors(path, "file", expected):
        file = uproot.open(path)
    with file:
        if TREE_NAME not in file:
            raise DataError(
                path,
                TREE_NAME,
                f"a tree named '{TREE_NAME}'",
                f"keys {sorted(file.keys(cycle=False))[:20]}",
            )
        with library_errors(path, TREE_NAME, "a readable TTree or RNTuple"):
            tree = file[TREE_NAME]
            keys = _canonical_keys(tree)
            n_jets = int(tree.num_entries)
        return _read_tree(path, tree, keys, n_jets)


def _canonical_keys(tree: Any) -> dict[str, str]:
    """Schema name -> key in the tree: ``part_px`` for TTrees, ``part.px`` for RNTuples."""
    return {key.replace(".", "_"): key for key in tree.keys()}  # noqa: SIM118 (uproot objects)


def _read_tree(path: Path, tree: Any, keys: dict[str, str], n_jets: int) -> JetRecords:
    missing = [name for name in VECTOR_FIELDS if name not in keys]
    if missing:
        raise DataError(
            path,
            missing[0],
            f"the particle branches {', '.join(VECTOR_FIELDS)}",
            "no such branch",
            hint=f"branches present: {sorted(keys)[:30]}",
        )
    if n_jets == 0:
        raise DataError(path, TREE_NAME, "at least one jet", "0 entries")
    label_names = _label_names(path, keys)

    counts, first = _jagged(path, tree, keys["part_px"], "part_px", n_jets, None)
    particles: dict[str, np.ndarray] = {"part_px": first}
    for name in (*VECTOR_FIELDS, *PARTICLE_BRANCHES):
        if name in keys and name not in particles:
            particles[name] = _jagged(path, tree, keys[name], name, n_jets, counts)[1]
    jets = {
        name: _flat(path, tree, keys[name], name, n_jets) for name in JET_BRANCHES if name in keys
    }
    if not all(name in jets for name in _AXIS_FIELDS):
        summed = jets_from_particles(counts, *(particles[name] for name in VECTOR_FIELDS))
        for name in _AXIS_FIELDS:
            jets.setdefault(name, summed[name])
    jets.setdefault("jet_nparticles", counts.copy())

    one_hot = np.stack([_flat(path, tree, keys[n], n, n_jets) for n in label_names], axis=1)
    labels = _one_hot_to_index(path, label_names, one_hot)

    truth = {
        name: _flat(path, tree, keys[name], name, n_jets)
        for name in TRUTH_JET_BRANCHES
        if name in keys
    }
    for name in TRUTH_PARTICLE_BRANCHES:
        if name in keys:
            truth[name] = _jagged(path, tree, keys[name], name, n_jets, counts)[1]
    if EVENT_ID_BRANCH in keys:
        event_id = _flat(path, tree, keys[EVENT_ID_BRANCH], EVENT_ID_BRANCH, n_jets).astype(
            np.int64
        )
    else:
        event_id = np.arange(n_jets, dtype=np.int64)
    return JetRecords(
        counts=counts,
        particles=particles,
        jets=jets,
        labels=labels,
        label_names=label_names,
        event_id=event_id,
        truth=truth,
        sources=(str(path),),
    )


def _label_names(path: Path, keys: dict[str, str]) -> tuple[str, ...]:
    present = [name for name in keys if name.startswith("label_")]
    if not present:
        raise DataError(
            path,
            "label_*",
            "one-hot label branches such as " + ", ".join(JETCLASS_LABELS[:3]),
            "no label branch",
            hint=f"branches present: {sorted(keys)[:30]}",
        )
    for known in (JETCLASS_LABELS, QUARK_GLUON_LABELS, TOP_LABELS):
        if set(present) == set(known):
            return known
    ordered = [name for name in JETCLASS_LABELS if name in present]
    return (*ordered, *(name for name in present if name not in ordered))


def _dtype(name: str) -> type[np.generic]:
    if name in TRUTH_PARTICLE_BRANCHES:
        return np.int32
    return np.int64 if name in _INT_BRANCHES or name == EVENT_ID_BRANCH else np.float32


def _jagged(
    path: Path, tree: Any, key: str, name: str, n_jets: int, counts: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Read a per-particle branch as (counts, flat values); its counts must equal ``counts``."""
    with library_errors(path, name, "a readable per-particle branch"):
        array = tree[key].array(library="ak")
    if array.ndim != 2 or len(array) != n_jets:
        raise DataError(
            path, name, f"a per-particle (jagged) branch of {n_jets} jets", str(array.type)
        )
    with library_errors(path, name, "a jagged array of numbers"):
        these = ak.to_numpy(ak.num(array, axis=1)).astype(np.int64)
        flat = ak.to_numpy(ak.flatten(array, axis=1)).astype(_dtype(name))
    if counts is not None and not np.array_equal(these, counts):
        first = int(np.flatnonzero(these != counts)[0])
        raise DataError(
            path,
            name,
            f"as many particles per jet as part_px ({int(counts[first])} in jet {first})",
            int(these[first]),
        )
    check_finite(path, name, flat, these)
    return these, flat


def _flat(path: Path, tree: Any, key: str, name: str, n_jets: int) -> np.ndarray:
    """Read a per-jet branch as a 1-D numpy array."""
    with library_errors(path, name, "a readable per-jet branch"):
        array = tree[key].array(library="ak")
    if array.ndim != 1 or len(array) != n_jets:
        raise DataError(path, name, f"one number per jet ({n_jets} jets)", str(array.type))
    with library_errors(path, name, "a per-jet array of numbers"):
        values = ak.to_numpy(array)
    if values.dtype == bool:
        values = values.astype(np.int64)
    values = values.astype(_dtype(name), copy=False) if not name.startswith("label_") else values
    check_finite(path, name, values)
    return values


def _one_hot_to_index(path: Path, names: tuple[str, ...], one_hot: np.ndarray) -> np.ndarray:
    set_per_jet = (one_hot != 0).sum(axis=1)
    valid = (set_per_jet == 1) & ((one_hot == 0) | (one_hot == 1)).all(axis=1)
    if not valid.all():
        first = int(np.flatnonzero(~valid)[0])
        raise DataError(
            path,
            "label_*",
            f"exactly one of {', '.join(names)} equal to 1 in each jet (one-hot)",
            f"{int((~valid).sum())} jets otherwise (first: jet {first} with "
            f"{dict(zip(names, one_hot[first].tolist(), strict=True))})",
        )
    return np.argmax(one_hot != 0, axis=1).astype(np.int64)
