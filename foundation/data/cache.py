"""The cache: padded model inputs and targets as memory-mapped ``.npy`` files plus ``cache.json``.

A cache folder holds one ``.npy`` per array (jets along the first axis):

- ``particles`` float16 ``[n, N, F]`` — raw (unnormalized) particle features;
- ``vectors`` float32 ``[n, N, 4]`` — (px, py, pz, E), sorted like the features;
- ``mask`` bool ``[n, N]``; ``jet`` float32 ``[n, J]``; ``label`` and ``event_id`` int64 ``[n]``;
- truth when the source has it: ``jet_truth_*`` ``[n]``, ``part_origin`` int8 and
  ``part_vertex`` int32 ``[n, N]`` (-1 on padding);

and ``cache.json`` (shapes, dtypes, feature/label names, present fields, source files with their
sizes and modification times). It is written to a temporary folder that is renamed into place,
and an existing cache is replaced only with ``overwrite=True``. Reading it for training:
:mod:`foundation.data.loading`.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from foundation import __version__
from foundation.data.features import pad_jets, resolve_feature_names
from foundation.data.records import JetRecords
from foundation.data.schema import JET_INPUTS, TRUTH_JET_BRANCHES, TRUTH_PARTICLE_BRANCHES
from foundation.data.slots import DEFAULT_MAX_PARTICLES
from foundation.errors import DataError, OutputExistsError

CACHE_INFO = "cache.json"
CACHE_FORMAT = "foundation-jet-cache"
CACHE_VERSION = 1

_DTYPES: dict[str, np.dtype] = {
    "particles": np.dtype(np.float16),
    "vectors": np.dtype(np.float32),
    "mask": np.dtype(bool),
    "jet": np.dtype(np.float32),
    "label": np.dtype(np.int64),
    "event_id": np.dtype(np.int64),
    "jet_truth_parton_id": np.dtype(np.int32),
    "part_origin": np.dtype(np.int8),
    "part_vertex": np.dtype(np.int32),
}
_TRUTH_FLOAT = np.dtype(np.float32)


def array_dtype(name: str) -> np.dtype:
    """The dtype an array is stored with in the cache."""
    return _DTYPES.get(name, _TRUTH_FLOAT)


@dataclass(frozen=True)
class CacheInfo:
    """What ``cache.json`` says about a cache folder.

    Attributes:
        folder: the cache folder.
        n_jets: number of jets.
        max_particles: particle slots per jet ``N``.
        feature_names: particle feature names ``F``, in order.
        jet_feature_names: jet-level input names ``J``, in order.
        label_names: label names; ``label`` holds indices into them.
        arrays: array name -> {"dtype": str, "shape": list}.
        particle_fields: particle fields the sources had (absent ones gave 0 features).
        truncated_jets: jets that had more than ``max_particles`` particles (softest dropped).
        sources: source files with their sizes and modification times.
    """

    folder: Path
    n_jets: int
    max_particles: int
    feature_names: tuple[str, ...]
    jet_feature_names: tuple[str, ...]
    label_names: tuple[str, ...]
    arrays: dict[str, dict[str, Any]]
    particle_fields: tuple[str, ...] = ()
    truncated_jets: int = 0
    sources: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def truth_names(self) -> tuple[str, ...]:
        """Truth arrays present: ``jet_truth_*``, ``part_origin``, ``part_vertex``."""
        known = (*TRUTH_JET_BRANCHES, *TRUTH_PARTICLE_BRANCHES)
        return tuple(name for name in known if name in self.arrays)


def read_cache_info(folder: str | Path) -> CacheInfo:
    """Read and check a cache folder's ``cache.json``.

    Raises:
        DataError: no cache there, or a ``cache.json`` of another format or version.
    """
    folder = Path(folder)
    path = folder / CACHE_INFO
    if not path.is_file():
        raise DataError(
            folder,
            CACHE_INFO,
            "a cache folder written by foundation.data.cache.write_cache",
            "no cache.json",
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(
            path, "json", "a readable JSON file", f"{type(error).__name__}: {error}"
        ) from None
    if data.get("format") != CACHE_FORMAT or data.get("version") != CACHE_VERSION:
        raise DataError(
            path,
            "format",
            f"{CACHE_FORMAT} version {CACHE_VERSION}",
            f"{data.get('format')} version {data.get('version')}",
            hint="rebuild the cache with write_cache(..., overwrite=True)",
        )
    return CacheInfo(
        folder=folder,
        n_jets=int(data["n_jets"]),
        max_particles=int(data["max_particles"]),
        feature_names=tuple(data["feature_names"]),
        jet_feature_names=tuple(data["jet_feature_names"]),
        label_names=tuple(data["label_names"]),
        arrays=dict(data["arrays"]),
        particle_fields=tuple(data.get("particle_fields", ())),
        truncated_jets=int(data.get("truncated_jets", 0)),
        sources=tuple(data.get("sources", ())),
    )


def open_arrays(info: CacheInfo) -> dict[str, np.ndarray]:
    """Memory-map every array of a cache (read-only), checking it against ``cache.json``.

    Raises:
        DataError: a file is missing, unreadable, or of another shape or dtype than recorded.
    """
    arrays = {}
    for name, spec in info.arrays.items():
        path = info.folder / f"{name}.npy"
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DataError(
                path, name, "a readable .npy array", f"{type(error).__name__}: {error}"
            ) from None
        if list(array.shape) != list(spec["shape"]) or str(array.dtype) != spec["dtype"]:
            raise DataError(
                path,
                name,
                f"shape {spec['shape']} and dtype {spec['dtype']} (cache.json)",
                f"shape {list(array.shape)} and dtype {array.dtype}",
                hint="the cache is incomplete or was modified: rebuild it",
            )
        arrays[name] = array
    return arrays


class _NpyStream:
    """An ``.npy`` file written in appended chunks; the header is written when it is closed."""

    HEADER_BYTES = 256

    def __init__(self, path: Path, dtype: np.dtype, tail: tuple[int, ...]) -> None:
        self.path, self.dtype, self.tail, self.rows = path, dtype, tail, 0
        self.handle: BinaryIO = path.open("wb")
        self.handle.write(b"\0" * self.HEADER_BYTES)

    def append(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if values.shape[1:] != self.tail:
            raise DataError(
                self.path, self.path.stem, f"rows of shape {self.tail}", values.shape[1:]
            )
        values.tofile(self.handle)
        self.rows += len(values)

    def close(self) -> None:
        header = repr(
            {
                "descr": np.lib.format.dtype_to_descr(self.dtype),
                "fortran_order": False,
                "shape": (self.rows, *self.tail),
            }
        )
        room = self.HEADER_BYTES - 10
        text = header.ljust(room - 1) + "\n"
        if len(text) != room:
            raise ValueError(f"{self.path}: npy header {header!r} longer than {room} bytes")
        self.handle.seek(0)
        self.handle.write(b"\x93NUMPY\x01\x00" + room.to_bytes(2, "little") + text.encode("latin1"))
        self.handle.close()


def _chunks(records: JetRecords | Iterable[JetRecords], size: int) -> Iterator[JetRecords]:
    parts = [records] if isinstance(records, JetRecords) else records
    for part in parts:
        for start in range(0, part.n_jets, size):
            yield part.select(slice(start, start + size))


def _source_entry(source: str) -> dict[str, Any]:
    path = Path(source)
    if not path.is_file():
        return {"path": source}
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime": stat.st_mtime}


def _holds_data(folder: Path) -> bool:
    return folder.exists() and (not folder.is_dir() or any(folder.iterdir()))


def write_cache(
    records: JetRecords | Iterable[JetRecords],
    folder: str | Path,
    *,
    features: str | Sequence[str] = "full",
    max_particles: int = DEFAULT_MAX_PARTICLES,
    jet_feature_names: Sequence[str] = JET_INPUTS,
    overwrite: bool = False,
    chunk_size: int = 8192,
) -> CacheInfo:
    """Compute padded inputs and targets and write them as a cache folder, atomically.

    Args:
        records: the jets, or an iterable of :class:`JetRecords` (e.g.
            :func:`foundation.data.readers.iter_jets`) to convert data larger than memory.
        folder: output folder.
        features: particle feature set or names to store.
        max_particles: particle slots per jet ``N``.
        jet_feature_names: jet-level inputs to store.
        overwrite: replace an existing cache folder.
        chunk_size: jets converted at a time (bounds memory).

    Returns:
        The new cache's :class:`CacheInfo`.

    Raises:
        OutputExistsError: ``folder`` holds data and ``overwrite`` is False.
        DataError: the records disagree on labels or truth, or a feature overflows float16.
    """
    folder = Path(folder)
    if _holds_data(folder) and not overwrite:
        raise OutputExistsError(folder, "a cache")
    names = resolve_feature_names(features)
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.parent / f".{folder.name}.partial-{uuid.uuid4().hex[:8]}"
    temporary.mkdir()
    try:
        summary = _write_arrays(
            records, temporary, names, max_particles, jet_feature_names, chunk_size
        )
        info = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "library_version": __version__}
        info.update(summary)
        (temporary / CACHE_INFO).write_text(json.dumps(info, indent=2) + "\n")
        _move_into_place(temporary, folder, overwrite)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return read_cache_info(folder)


def _write_arrays(
    records: JetRecords | Iterable[JetRecords],
    folder: Path,
    names: tuple[str, ...],
    max_particles: int,
    jet_feature_names: Sequence[str],
    chunk_size: int,
) -> dict[str, Any]:
    streams: dict[str, _NpyStream] = {}
    label_names: tuple[str, ...] | None = None
    fields: set[str] | None = None
    sources: list[str] = []
    truncated = 0
    try:
        for part in _chunks(records, max(1, chunk_size)):
            source = ", ".join(part.sources) or "records"
            if label_names is None:
                label_names = part.label_names
            elif part.label_names != label_names:
                raise DataError(
                    source,
                    "label_names",
                    f"the same labels as before: {label_names}",
                    part.label_names,
                )
            fields = (
                set(part.particle_fields) if fields is None else fields & set(part.particle_fields)
            )
            sources.extend(s for s in part.sources if s not in sources)
            truncated += int((part.counts > max_particles).sum())
            arrays = pad_jets(part, names, max_particles, jet_feature_names).as_dict()
            arrays.pop("feature_names")
            arrays.pop("jet_feature_names")
            if not streams:
                streams = {
                    name: _NpyStream(folder / f"{name}.npy", array_dtype(name), values.shape[1:])
                    for name, values in arrays.items()
                }
            if set(arrays) != set(streams):
                raise DataError(
                    source,
                    "truth",
                    f"the same arrays in every file: {sorted(streams)}",
                    sorted(arrays),
                    hint="write files with and without truth to separate caches",
                )
            stored = torch.from_numpy(arrays["particles"]).half().numpy()  # faster than numpy
            if not np.isfinite(stored).all():
                column = int(np.argwhere(~np.isfinite(stored))[0, -1])
                raise DataError(
                    source, names[column], "values within the float16 range", "overflow"
                )
            arrays["particles"] = stored
            for name, values in arrays.items():
                streams[name].append(values)
    finally:
        for stream in streams.values():
            stream.close()
    if label_names is None:
        raise DataError("write_cache", "records", "at least one jet", "none")
    return {
        "n_jets": streams["label"].rows,
        "max_particles": max_particles,
        "truncated_jets": truncated,
        "feature_names": list(names),
        "jet_feature_names": list(jet_feature_names),
        "label_names": list(label_names),
        "particle_fields": sorted(fields or ()),
        "arrays": {
            name: {"dtype": str(s.dtype), "shape": [s.rows, *s.tail]} for name, s in streams.items()
        },
        "sources": [_source_entry(source) for source in sources],
    }


def _move_into_place(temporary: Path, folder: Path, overwrite: bool) -> None:
    """Rename the finished temporary folder to ``folder``, replacing it only when allowed."""
    old = None
    if folder.exists():
        if _holds_data(folder) and not overwrite:
            raise OutputExistsError(folder, "a cache")
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        else:
            old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(folder, old)
    os.replace(temporary, folder)
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
