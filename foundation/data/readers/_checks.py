"""Checks shared by the readers: library errors turned into :class:`DataError`, finite values."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from foundation.errors import DataError


@contextmanager
def library_errors(
    path: Path, field: str, expected: str, hint: str | None = None
) -> Iterator[None]:
    """Turn any error raised by a file library inside the block into a :class:`DataError`.

    The library's own message is kept as the "found" part; its traceback is not chained so that
    a user sees one clear line, never the inside of uproot, h5py or numpy.
    """
    try:
        yield
    except DataError:
        raise
    except Exception as error:  # a boundary: whatever the library raises is bad input here
        found = " ".join(f"{type(error).__name__}: {error}".split())
        raise DataError(
            path,
            field,
            expected,
            found[:500],
            hint=hint or "the file may be truncated or corrupt: download or regenerate it",
        ) from None


def check_finite(
    path: Path, name: str, values: np.ndarray, counts: np.ndarray | None = None
) -> None:
    """Raise :class:`DataError` if a float array holds NaN or inf, naming the first bad jet.

    Args:
        path: file the values come from.
        name: field name, for the message.
        values: per-jet array, or flat per-particle array when ``counts`` is given.
        counts: particles per jet, to turn a particle position into a jet index.
    """
    if not np.issubdtype(values.dtype, np.floating):
        return
    finite = np.isfinite(values)
    if finite.all():
        return
    bad = np.flatnonzero(~finite)
    first = int(bad[0])
    if counts is not None:
        first = int(np.searchsorted(np.cumsum(counts), first, side="right"))
    raise DataError(
        path,
        name,
        "finite values",
        f"{len(bad)} NaN/inf values (first in jet {first}: {values[bad[0]]})",
        hint="remove or fix these jets before reading",
    )


def binary_labels(path: Path, name: str, values: np.ndarray) -> np.ndarray:
    """Check that labels are 0 or 1 and return them as int64 class indices."""
    values = np.asarray(values)
    valid = (values == 0) | (values == 1)
    if not valid.all():
        first = int(np.flatnonzero(~valid)[0])
        raise DataError(
            path,
            name,
            "labels 0 or 1",
            f"{int((~valid).sum())} other values (first in jet {first}: {values[first]})",
        )
    return values.astype(np.int64)
