"""Synthetic jets and writers of each public file layout, for the tests and the benchmarks.

Not part of the installed package: tests import it as ``synthetic`` (pytest puts ``tests/`` on
``sys.path``, as for ``conftest``); the benchmarks put ``tests/`` on ``sys.path`` first.

The writers reproduce the exact on-disk layouts the readers accept:

- :func:`write_jetclass_root`: JetClass branch names, as a TTree (``part_px`` ... + counter) or
  as the RNTuple that ``file["tree"] = {"part": ak.zip(...), ...}`` makes with uproot >= 5.7;
- :func:`write_top_landscape_hdf5`: a pandas ``DataFrame.to_hdf(key="table")`` file in the
  "table" or "fixed" layout, written with h5py (no pandas needed, no pickle module used);
- :func:`write_quark_gluon_npz`: EnergyFlow's ``X`` (pt, y, phi, pdgid) and ``y``.

Nothing here is needed to read real data, which is why it lives outside ``foundation/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import awkward as ak
import h5py
import numpy as np
import uproot

from foundation.data.kinematics import jets_from_particles, pt_eta_phi
from foundation.data.records import JetRecords
from foundation.data.schema import JETCLASS_LABELS

_FLAGS = (
    "part_isChargedHadron",
    "part_isNeutralHadron",
    "part_isPhoton",
    "part_isElectron",
    "part_isMuon",
)
_PDG_OF_FLAG = {  # a PDG id for each identity (sign from the charge)
    "part_isChargedHadron": 211,
    "part_isNeutralHadron": 2112,
    "part_isPhoton": 22,
    "part_isElectron": 11,
    "part_isMuon": 13,
}


def random_records(
    n_jets: int,
    mean_particles: float = 30.0,
    seed: int = 0,
    label_names: tuple[str, ...] = JETCLASS_LABELS,
    truth: bool = False,
    jets_per_event: int = 2,
) -> JetRecords:
    """Random jets with every JetClass field (and, with ``truth``, simulation truth).

    Particles are massless, spread around a jet axis with |η| < 2; identity flags are one-hot
    and consistent with the charge. Every ``jets_per_event`` consecutive jets share an event id.
    """
    rng = np.random.default_rng(seed)
    counts = rng.poisson(mean_particles, n_jets).astype(np.int64)
    total = int(counts.sum())
    index = np.repeat(np.arange(n_jets), counts)
    axis_eta = rng.uniform(-2, 2, n_jets)
    axis_phi = rng.uniform(-np.pi, np.pi, n_jets)
    pt = rng.exponential(20.0, total) + 0.5
    eta = axis_eta[index] + rng.normal(0, 0.2, total)
    phi = axis_phi[index] + rng.normal(0, 0.2, total)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = pt * np.cosh(eta)
    kind = rng.integers(0, len(_FLAGS), total)
    charged = np.isin(kind, (0, 3, 4))
    charge = np.where(charged, rng.choice([-1.0, 1.0], total), 0.0)
    particles = {
        "part_px": px,
        "part_py": py,
        "part_pz": pz,
        "part_energy": energy,
        "part_d0val": np.where(charged, rng.normal(0, 0.05, total), 0.0),
        "part_d0err": np.where(charged, rng.uniform(0.01, 0.05, total), 0.0),
        "part_dzval": np.where(charged, rng.normal(0, 0.05, total), 0.0),
        "part_dzerr": np.where(charged, rng.uniform(0.01, 0.05, total), 0.0),
        "part_charge": charge,
    }
    particles.update({name: (kind == k).astype(float) for k, name in enumerate(_FLAGS)})
    particles = {name: values.astype(np.float32) for name, values in particles.items()}
    jets = jets_from_particles(counts, px, py, pz, energy)
    jets.pop("jet_mass")
    jets["jet_sdmass"] = rng.uniform(0, 200, n_jets).astype(np.float32)
    for k in range(1, 5):
        jets[f"jet_tau{k}"] = rng.uniform(0, 1, n_jets).astype(np.float32)
    truth_arrays: dict[str, np.ndarray] = {}
    if truth:
        truth_arrays = {
            "jet_truth_pt": (jets["jet_pt"] * rng.normal(1, 0.05, n_jets)).astype(np.float32),
            "jet_truth_eta": jets["jet_eta"].copy(),
            "jet_truth_phi": jets["jet_phi"].copy(),
            "jet_truth_mass": rng.uniform(0, 200, n_jets).astype(np.float32),
            "jet_truth_parton_id": rng.choice([0, 1, 21, 6], n_jets).astype(np.int64),
            "part_origin": rng.integers(0, 5, total).astype(np.int32),
            "part_vertex": np.where(charged, rng.integers(0, 3, total), -1).astype(np.int32),
        }
    return JetRecords(
        counts=counts,
        particles=particles,
        jets=jets,
        labels=rng.integers(0, len(label_names), n_jets).astype(np.int64),
        label_names=label_names,
        event_id=(np.arange(n_jets) // max(1, jets_per_event)).astype(np.int64) + 1000,
        truth=truth_arrays,
        sources=(),
    )


def write_jetclass_root(
    records: JetRecords,
    path: str | Path,
    layout: Literal["ttree", "rntuple"] = "ttree",
    event_id: bool = True,
) -> Path:
    """Write records as a JetClass-format ROOT file (with truth and ``event_id`` if present).

    ``layout="ttree"`` gives the JetClass branch layout (``part_px`` ... and a counter
    ``npart``); ``layout="rntuple"`` is what ``file["tree"] = {...}`` writes with uproot >= 5.7.
    """
    path = Path(path)
    fields = {name.removeprefix("part_"): values for name, values in records.particles.items()}
    for name in ("part_origin", "part_vertex"):
        if name in records.truth:
            fields[name.removeprefix("part_")] = records.truth[name]
    content: dict[str, object] = {
        "part": ak.zip({k: ak.unflatten(v, records.counts) for k, v in fields.items()})
    }
    content.update({name: np.asarray(values) for name, values in records.jets.items()})
    for k, name in enumerate(records.label_names):
        content[name] = (records.labels == k).astype(np.int32)
    for name, values in records.truth.items():
        if not name.startswith("part_"):
            content[name] = np.asarray(values)
    if event_id:
        content["event_id"] = records.event_id
    with uproot.recreate(path) as file:
        if layout == "ttree":
            file.mktree("tree", content)
        else:
            file["tree"] = content
    return path


def write_quark_gluon_npz(
    records: JetRecords, path: str | Path, max_particles: int | None = None
) -> Path:
    """Write records as an EnergyFlow quark/gluon npz (``X``: pt, y, phi, pdgid; ``y``).

    Particles keep their order; the PDG id comes from the identity flags and the charge.
    """
    path = Path(path)
    parts = records.particles
    pt, _, phi = pt_eta_phi(parts["part_px"], parts["part_py"], parts["part_pz"])
    energy, pz = parts["part_energy"].astype(np.float64), parts["part_pz"].astype(np.float64)
    rapidity = 0.5 * np.log(np.maximum(energy + pz, 1e-12) / np.maximum(energy - pz, 1e-12))
    pdgid = np.zeros(records.n_particles)
    charge = parts.get("part_charge", np.zeros(records.n_particles))
    for name, code in _PDG_OF_FLAG.items():
        if name in parts:  # e-/mu- have positive ids, pi-/K- negative ones
            lepton = code in (11, 13)
            sign = np.where(charge > 0, -1, 1) if lepton else np.where(charge < 0, -1, 1)
            pdgid = np.where(parts[name] > 0, code * sign, pdgid)
    width = int(records.counts.max(initial=0)) if max_particles is None else max_particles
    data = np.zeros((records.n_jets, width, 4))
    jet = records.jet_index()
    slot = np.arange(records.n_particles) - records.offsets[:-1][jet]
    keep = slot < width
    data[jet[keep], slot[keep]] = np.stack([pt, rapidity, phi, pdgid], axis=1)[keep]
    np.savez_compressed(path, X=data, y=records.labels.astype(np.float64))
    return path


def _text_pickle_of_strings(strings: list[str]) -> bytes:
    """The protocol-0 pickle of a list of strings, as PyTables stores pandas attributes."""
    body = "".join(f"V{s}\np{i + 1}\na" for i, s in enumerate(strings))
    return f"(lp0\n{body}.".encode("raw_unicode_escape")


def write_top_landscape_hdf5(
    records: JetRecords,
    path: str | Path,
    max_particles: int = 200,
    layout: Literal["table", "fixed"] = "table",
) -> Path:
    """Write records as a Top Tagging Landscape file: a pandas frame under the key ``table``.

    Columns: ``E_0, PX_0, PY_0, PZ_0, E_1, ...`` (particles in stored order, zero-padded to
    ``max_particles``), ``truthE, truthPX, truthPY, truthPZ`` (zeros), then the int64 columns
    ``ttv`` (0) and ``is_signal_new`` (the label), as ``DataFrame.to_hdf(key="table")`` lays
    them out with ``format=layout``.
    """
    path = Path(path)
    parts = records.particles
    jet = records.jet_index()
    slot = np.arange(records.n_particles) - records.offsets[:-1][jet]
    keep = slot < max_particles
    floats = np.zeros((records.n_jets, max_particles, 4), dtype=np.float32)
    vectors = np.stack([parts[n] for n in ("part_energy", "part_px", "part_py", "part_pz")], 1)
    floats[jet[keep], slot[keep]] = vectors[keep]
    floats = np.concatenate(
        [floats.reshape(records.n_jets, -1), np.zeros((records.n_jets, 4), np.float32)], 1
    )
    float_names = [f"{c}_{i}" for i in range(max_particles) for c in ("E", "PX", "PY", "PZ")]
    float_names += ["truthE", "truthPX", "truthPY", "truthPZ"]
    ints = np.stack([np.zeros(records.n_jets, np.int64), records.labels.astype(np.int64)], 1)
    int_names = ["ttv", "is_signal_new"]
    with h5py.File(path, "w") as file:
        group = file.create_group("table")
        group.attrs["pandas_type"] = np.bytes_(b"frame_table" if layout == "table" else b"frame")
        if layout == "table":
            dtype = np.dtype(
                [
                    ("index", "<i8"),
                    ("values_block_0", "<f4", (floats.shape[1],)),
                    ("values_block_1", "<i8", (2,)),
                ]
            )
            rows = np.zeros(records.n_jets, dtype=dtype)
            rows["index"] = np.arange(records.n_jets)
            rows["values_block_0"] = floats
            rows["values_block_1"] = ints
            table = group.create_dataset("table", data=rows)
            group.attrs["non_index_axes"] = np.bytes_(
                _text_pickle_of_strings(float_names + int_names)
            )
            for block, names in enumerate((float_names, int_names)):
                table.attrs[f"values_block_{block}_kind"] = np.bytes_(
                    _text_pickle_of_strings(names)
                )
        else:
            group.attrs["nblocks"] = np.int64(2)
            group.create_dataset("axis0", data=np.array(float_names + int_names, dtype="S"))
            group.create_dataset("axis1", data=np.arange(records.n_jets))
            for block, (names, values) in enumerate(((float_names, floats), (int_names, ints))):
                group.create_dataset(f"block{block}_items", data=np.array(names, dtype="S"))
                dataset = group.create_dataset(f"block{block}_values", data=values)
                dataset.attrs["transposed"] = np.uint8(1)
    return path
