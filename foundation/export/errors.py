"""Errors of the ONNX export: each names the model part or output at fault and the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from foundation.export.parity import ParityReport


class ExportError(RuntimeError):
    """The model could not be turned into an ONNX graph that ONNX Runtime runs.

    Raised for an operator without an ONNX translation, a trace that depends on tensor values
    (Python ``if`` on a tensor, ``.item()``...), a head whose outputs do not match its
    ``output_names``, or a graph that ONNX Runtime refuses to load or run.
    """


class ExportParityError(ExportError):
    """ONNX Runtime and PyTorch disagree beyond the tolerance, or an output is NaN/inf.

    Attributes:
        report: the per-output parity table (:class:`~foundation.export.parity.ParityReport`).
    """

    def __init__(self, message: str, report: ParityReport) -> None:
        super().__init__(message)
        self.report = report
