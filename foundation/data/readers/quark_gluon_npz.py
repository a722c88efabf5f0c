"""Reader of the EnergyFlow quark/gluon datasets (``QG_jets*.npz``).

``X`` is ``[n_jets, max_particles, 4]`` with (pT, rapidity y, φ, PDG id) per particle, zero-padded
(``pT == 0`` is padding); ``y`` is 1 for quark jets. 4-vectors use the PDG mass of each particle
(``E = mT cosh y``, ``pz = mT sinh y``); charge and identity flags come from the PDG id. The npz is
read with ``allow_pickle=False``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from foundation.data.kinematics import jets_from_particles
from foundation.data.readers._checks import binary_labels, check_finite, library_errors
from foundation.data.readers.registry import register_reader
from foundation.data.records import JetRecords
from foundation.data.schema import QUARK_GLUON_LABELS
from foundation.errors import DataError

# |PDG id| -> (mass in GeV, charge of the particle with the positive id)
_PDG: dict[int, tuple[float, int]] = {
    11: (0.000511, -1),
    13: (0.105658, -1),
    22: (0.0, 0),
    130: (0.497611, 0),
    211: (0.139570, 1),
    310: (0.497611, 0),
    321: (0.493677, 1),
    2112: (0.939565, 0),
    2212: (0.938272, 1),
    3112: (1.197449, -1),
    3122: (1.115683, 0),
    3222: (1.189370, 1),
    3312: (1.321710, -1),
    3322: (1.314860, 0),
    3334: (1.672450, -1),
}
_PDG_IDS = np.array(sorted(_PDG), dtype=np.int64)
_PDG_MASS = np.array([_PDG[i][0] for i in _PDG_IDS])
_PDG_CHARGE = np.array([_PDG[i][1] for i in _PDG_IDS], dtype=np.float32)


def pdg_properties(pdgid: np.ndarray) -> dict[str, np.ndarray]:
    """Mass, charge and the five ParT identity flags of particles from their PDG ids.

    Unknown ids get mass 0 and charge 0; hadrons (|id| > 100) are charged or neutral hadrons by
    their charge.

    Shapes:
        - pdgid: ``[P]``; each output: ``[P]`` (mass float64, the others float32).
    """
    pid = np.rint(pdgid).astype(np.int64)
    absolute = np.abs(pid)
    slot = np.clip(np.searchsorted(_PDG_IDS, absolute), 0, len(_PDG_IDS) - 1)
    known = _PDG_IDS[slot] == absolute
    mass = np.where(known, _PDG_MASS[slot], 0.0)
    charge = np.where(known, _PDG_CHARGE[slot], 0.0).astype(np.float32) * np.sign(pid)
    hadron = absolute > 100
    flags = {
        "part_isChargedHadron": hadron & (charge != 0),
        "part_isNeutralHadron": hadron & (charge == 0),
        "part_isPhoton": absolute == 22,
        "part_isElectron": absolute == 11,
        "part_isMuon": absolute == 13,
    }
    out = {"mass": mass, "part_charge": charge.astype(np.float32)}
    out.update({name: flag.astype(np.float32) for name, flag in flags.items()})
    return out


@register_reader(
    "quark_gluon",
    extensions=(".npz",),
    magic=b"PK\x03\x04",
    description="EnergyFlow quark/gluon npz (X: pt, y, phi, pdgid; y: 1 = quark)",
)
def read_quark_gluon(path: Path) -> JetRecords:
    """Read an EnergyFlow ``QG_jets*.npz`` file.

    Raises:
        DataError: not a readable npz; a missing ``X`` or ``y``; wrong shapes; object arrays
            (pickle); no jets; NaN or inf; negative pT; labels other than 0/1.
    """
    path = Path(path)
    with library_errors(path, "file", "an npz archive"):
        archive = np.load(path, allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(path, "file", "an npz archive with arrays X and y", "a single array")
    with archive:
        for key in ("X", "y"):
            if key not in archive.files:
                raise DataError(path, key, "arrays 'X' and 'y'", f"arrays {archive.files}")
        with library_errors(
            path, "X", "a numeric array", hint="object arrays need pickle, which is never used"
        ):
            data = archive["X"]
        with library_errors(path, "y", "a numeric array", hint="the file may be truncated"):
            target = archive["y"]
    return _records(path, data, target)


def _records(path: Path, data: np.ndarray, target: np.ndarray) -> JetRecords:
    if data.ndim != 3 or data.shape[2] != 4:
        raise DataError(
            path, "X", "shape [n_jets, max_particles, 4] (pt, y, phi, pdgid)", data.shape
        )
    if target.ndim != 1 or len(target) != len(data):
        raise DataError(path, "y", f"shape [{len(data)}] (one label per jet in X)", target.shape)
    if len(data) == 0:
        raise DataError(path, "X", "at least one jet", "0 jets")
    if not np.issubdtype(data.dtype, np.number):
        raise DataError(path, "X", "a numeric array", data.dtype)
    pt_all = data[:, :, 0]
    real = pt_all != 0
    counts = real.sum(axis=1).astype(np.int64)
    values = data[real].astype(np.float64)  # [particles, 4], jet after jet
    check_finite(path, "X", values.ravel(), counts * 4)
    pt, rapidity, phi, pdgid = values.T
    if (pt < 0).any():
        raise DataError(path, "X[..., 0] (pt)", "pt >= 0 (0 marks padding)", "negative values")
    properties = pdg_properties(pdgid)
    transverse_mass = np.sqrt(pt * pt + properties.pop("mass") ** 2)
    px, py = pt * np.cos(phi), pt * np.sin(phi)
    pz, energy = transverse_mass * np.sinh(rapidity), transverse_mass * np.cosh(rapidity)
    particles = {
        "part_px": px.astype(np.float32),
        "part_py": py.astype(np.float32),
        "part_pz": pz.astype(np.float32),
        "part_energy": energy.astype(np.float32),
        **properties,
    }
    for name in ("part_px", "part_py", "part_pz", "part_energy"):
        check_finite(path, f"X -> {name}", particles[name], counts)
    check_finite(path, "y", np.asarray(target, dtype=np.float64))
    return JetRecords(
        counts=counts,
        particles=particles,
        jets=jets_from_particles(counts, px, py, pz, energy),
        labels=binary_labels(path, "y", target),
        label_names=QUARK_GLUON_LABELS,
        event_id=np.arange(len(counts), dtype=np.int64),
        sources=(str(path),),
    )
