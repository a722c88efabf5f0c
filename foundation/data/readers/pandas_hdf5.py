"""Read numeric columns of a pandas ``DataFrame.to_hdf`` file with h5py — no pandas, no pickle.

pandas (through PyTables) writes two layouts:

- ``format="table"``: a compound dataset ``KEY/table`` with fields ``index``, ``values_block_0``,
  ``values_block_1``, ... (one 2-D field per dtype) and one field per ``data_columns`` column. The
  column names of a block are the attribute ``values_block_<i>_kind`` of that dataset, a
  protocol-0 (text) pickle of a list of strings.
- ``format="fixed"``: datasets ``KEY/block<i>_items`` (column names) and ``KEY/block<i>_values``
  (``[rows, columns]``, attribute ``transposed``).

The text pickles are never unpickled: :func:`pickled_strings` only scans them for the string
literals they contain, which is all a list of column names holds.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from foundation.data.readers._checks import library_errors
from foundation.errors import DataError

_NO_ARGUMENT_OPCODES = b"(.0aedlst)"


def pickled_strings(data: bytes) -> list[str]:
    """The string literals of a protocol-0 (text) pickle, in order, without unpickling it.

    Handles the ``V`` (unicode, Python 3) and ``S`` (quoted, Python 2) string opcodes and ``g``
    references to memoized strings; everything else is skipped.
    """
    strings: list[str] = []
    memo: dict[bytes, str] = {}
    last: str | None = None
    for raw in data.split(b"\n"):
        line = raw.lstrip(_NO_ARGUMENT_OPCODES)
        if not line:
            continue
        opcode, argument = line[:1], line[1:]
        if opcode == b"V":
            last = argument.decode("raw_unicode_escape")
            strings.append(last)
        elif opcode == b"S" and len(argument) >= 2 and argument[:1] in b"'\"":
            last = codecs.escape_decode(argument[1:-1])[0].decode("utf-8", "replace")
            strings.append(last)
        elif opcode == b"p":
            if last is not None:
                memo[argument] = last
        elif opcode == b"g":
            if argument in memo:
                strings.append(memo[argument])
        else:
            last = None
    return strings


def _names(value: object) -> list[str]:
    """Column names from an attribute or dataset value: a text pickle or an array of strings."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, bytes | np.bytes_):
        return pickled_strings(bytes(value))
    array = np.asarray(value).ravel()
    return [item.decode("utf-8") if isinstance(item, bytes) else str(item) for item in array]


def preview_columns(columns: Sequence[str], size: int = 12) -> str:
    """The first column names, for messages."""
    more = " ..." if len(columns) > size else ""
    return f"{list(columns[:size])}{more}"


class PandasFrame:
    """The numeric columns of one frame (``key``) of an open pandas HDF5 file.

    Attributes:
        columns: column names, in storage order.
        n_rows: number of rows.
    """

    def __init__(self, file: h5py.File, key: str, path: Path) -> None:
        self.path = path
        if key not in file:
            raise DataError(
                path,
                key,
                f"a pandas frame stored under the key '{key}'",
                f"keys {sorted(file.keys())[:20]}",
                hint="write the file with DataFrame.to_hdf(path, key='table')",
            )
        group = file[key]
        # column name -> (dataset, field or None, column index or None)
        self._where: dict[str, tuple[h5py.Dataset, str | None, int | None]] = {}
        with library_errors(path, key, "a pandas frame written by DataFrame.to_hdf"):
            if isinstance(group, h5py.Group) and "table" in group:
                self.n_rows = self._index_table(group["table"])
            elif isinstance(group, h5py.Group) and "block0_values" in group:
                self.n_rows = self._index_fixed(group)
            else:
                raise DataError(
                    path,
                    key,
                    "a pandas frame ('table' or 'fixed' layout)",
                    f"members {sorted(group.keys()) if isinstance(group, h5py.Group) else group}",
                )
        self.columns = tuple(self._where)

    def _index_table(self, table: h5py.Dataset) -> int:
        if table.dtype.names is None:
            raise DataError(self.path, table.name, "a compound (table) dataset", table.dtype)
        for name in table.dtype.names:
            if name == "index":
                continue
            shape = table.dtype[name].shape
            if name.startswith("values_block_"):
                columns = _names(table.attrs.get(f"{name}_kind", b""))
                width = shape[0] if shape else 1
                if len(columns) != width:
                    raise DataError(
                        self.path,
                        f"{table.name}.{name}_kind",
                        f"{width} column names",
                        len(columns),
                    )
                for position, column in enumerate(columns):
                    self._where[column] = (table, name, position if shape else None)
            else:  # a data column stored in a field of its own
                self._where[name] = (table, name, 0 if shape else None)
        return int(table.shape[0])

    def _index_fixed(self, group: h5py.Group) -> int:
        rows = None
        block = 0
        while f"block{block}_values" in group:
            values = group[f"block{block}_values"]
            if values.dtype.kind not in "biuf" or values.ndim != 2:
                raise DataError(
                    self.path,
                    values.name,
                    "a 2-D numeric block",
                    f"{values.dtype} {values.shape}",
                    hint="only numeric columns can be read",
                )
            if not values.attrs.get("transposed", 1):
                raise DataError(
                    self.path, values.name, "a transposed block (pandas >= 0.10)", "untransposed"
                )
            columns = _names(group[f"block{block}_items"][()])
            if len(columns) != values.shape[1]:
                raise DataError(self.path, values.name, f"{len(columns)} columns", values.shape[1])
            for position, column in enumerate(columns):
                self._where[column] = (values, None, position)
            rows = values.shape[0]
            block += 1
        return int(rows or 0)

    def read(
        self, names: Sequence[str], start: int, stop: int, dtype: np.dtype | type = np.float64
    ) -> np.ndarray:
        """Rows ``[start, stop)`` of the columns ``names``.

        Raises:
            DataError: a column is missing or the file cannot be read.

        Shapes:
            - output: ``[stop - start, len(names)]``.
        """
        missing = [name for name in names if name not in self._where]
        if missing:
            raise DataError(
                self.path,
                missing[0],
                "a column of that name",
                "no such column",
                hint=f"columns present: {preview_columns(self.columns)}",
            )
        out = np.empty((max(stop - start, 0), len(names)), dtype=dtype)
        by_source: dict[tuple[int, str | None], list[tuple[int, int | None]]] = {}
        sources: dict[tuple[int, str | None], tuple[h5py.Dataset, str | None]] = {}
        for position, name in enumerate(names):
            dataset, field, column = self._where[name]
            source = (id(dataset), field)
            sources[source] = (dataset, field)
            by_source.setdefault(source, []).append((position, column))
        for source, wanted in by_source.items():
            dataset, field = sources[source]
            with library_errors(self.path, field or dataset.name, "readable rows"):
                block = dataset.fields(field)[start:stop] if field else dataset[start:stop]
            positions = [p for p, _ in wanted]
            if block.ndim == 1:
                out[:, positions] = block[:, None]
            else:
                out[:, positions] = block[:, [c for _, c in wanted]]
        return out
