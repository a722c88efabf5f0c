"""Reader of the Top Tagging Landscape HDF5 files (a pandas frame under the key ``table``).

Columns ``E_i PX_i PY_i PZ_i`` (i < 200) hold the constituents, zero-padded (``E_i == 0`` is
padding), and ``is_signal_new`` the label (1 = top). ``truthE ...`` and ``ttv`` are ignored. The
jet axis and kinematics are the sum of the constituents; each jet counts as its own event.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from foundation.data.kinematics import jets_from_particles
from foundation.data.readers._checks import binary_labels, check_finite, library_errors
from foundation.data.readers.pandas_hdf5 import PandasFrame, preview_columns
from foundation.data.readers.registry import register_reader
from foundation.data.records import VECTOR_FIELDS, JetRecords
from foundation.data.schema import TOP_LABELS
from foundation.errors import DataError

FRAME_KEY = "table"
LABEL_COLUMN = "is_signal_new"
_COMPONENTS = ("E", "PX", "PY", "PZ")
_CHUNK_ROWS = 50_000


@register_reader(
    "top_landscape",
    extensions=(".h5", ".hdf5"),
    magic=b"\x89HDF\r\n\x1a\n",
    description="Top Tagging Landscape HDF5 (pandas frame 'table')",
)
def read_top_landscape(path: Path) -> JetRecords:
    """Read a Top Tagging Landscape HDF5 file (pandas "table" or "fixed" layout).

    Raises:
        DataError: unreadable or truncated file; no ``table`` frame; a missing ``E_0`` /
            ``PX_i`` ... or ``is_signal_new`` column; no rows; negative energies; NaN or inf;
            labels other than 0/1.
    """
    path = Path(path)
    with library_errors(path, "file", "an HDF5 file"):
        file = h5py.File(path, "r")
    with file:
        frame = PandasFrame(file, FRAME_KEY, path)
        n_particles = 0
        while f"E_{n_particles}" in frame.columns:
            n_particles += 1
        if n_particles == 0:
            raise DataError(
                path,
                "E_0",
                "constituent columns E_i, PX_i, PY_i, PZ_i",
                "no such column",
                hint=f"columns present: {preview_columns(frame.columns)}",
            )
        if frame.n_rows == 0:
            raise DataError(path, FRAME_KEY, "at least one jet", "0 rows")
        names = [f"{c}_{i}" for c in _COMPONENTS for i in range(n_particles)]
        counts, flat, labels = [], [], []
        for start in range(0, frame.n_rows, _CHUNK_ROWS):
            stop = min(start + _CHUNK_ROWS, frame.n_rows)
            block = frame.read(names, start, stop, dtype=np.float32)
            block = block.reshape(stop - start, len(_COMPONENTS), n_particles)
            energy = block[:, 0]
            real = energy != 0
            counts.append(real.sum(axis=1).astype(np.int64))
            flat.append(block.transpose(0, 2, 1)[real])  # [particles, (E, PX, PY, PZ)]
            labels.append(frame.read([LABEL_COLUMN], start, stop)[:, 0])
    counts_all = np.concatenate(counts)
    values = np.concatenate(flat)
    energy, px, py, pz = (np.ascontiguousarray(values[:, k]) for k in range(4))
    particles = dict(zip(VECTOR_FIELDS, (px, py, pz, energy), strict=True))
    for name, column in zip(VECTOR_FIELDS, ("PX", "PY", "PZ", "E"), strict=True):
        check_finite(path, f"{column}_i ({name})", particles[name], counts_all)
    if (energy < 0).any():
        first = int(np.searchsorted(np.cumsum(counts_all), np.flatnonzero(energy < 0)[0], "right"))
        raise DataError(
            path, "E_i", "energies >= 0 (0 marks padding)", f"a negative energy in jet {first}"
        )
    label_values = np.concatenate(labels)
    check_finite(path, LABEL_COLUMN, label_values)
    jets = jets_from_particles(counts_all, px, py, pz, energy)
    return JetRecords(
        counts=counts_all,
        particles=particles,
        jets=jets,
        labels=binary_labels(path, LABEL_COLUMN, label_values),
        label_names=TOP_LABELS,
        event_id=np.arange(len(counts_all), dtype=np.int64),
        sources=(str(path),),
    )
