"""Errors raised on bad user input: each names the source, field, expectation and value."""

from __future__ import annotations

from os import PathLike


class DataError(ValueError):
    """A data file or array does not match what the library expects.

    The message always names the file (or source), the field, what was expected and what was
    found, so that a user can fix the input without reading a traceback.
    """

    def __init__(
        self,
        source: str | PathLike[str],
        field: str,
        expected: str,
        found: object,
        hint: str | None = None,
    ) -> None:
        self.source = str(source)
        self.field = field
        self.expected = expected
        self.found = found
        message = f"{self.source}: field '{field}': expected {expected}, found {found}"
        if hint:
            message += f". {hint}"
        super().__init__(message)


class OutputExistsError(FileExistsError):
    """An output folder already holds data and ``overwrite`` was not requested."""

    def __init__(self, path: str | PathLike[str], what: str = "data") -> None:
        self.path = str(path)
        super().__init__(
            f"{self.path} already holds {what}; pass --overwrite (overwrite=True) to replace it, "
            "or choose another output folder"
        )
