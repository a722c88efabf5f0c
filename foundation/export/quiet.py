"""Keep third-party exporters and converters from printing their internal chatter.

Only messages that carry no information for a user of this library are dropped, each named
here; everything else (errors, unexpected warnings) still reaches the user.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence

QUANTIZER_NOISE: tuple[str, ...] = ("Inference failed or unsupported type to quantize",)
"""Starts of ONNX Runtime quantizer messages that are dropped: one per tensor it leaves in
float (integer indices, shapes), each with a protobuf dump of the tensor type."""


class _DropMessages(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


@contextlib.contextmanager
def quiet_quantizer() -> Iterator[None]:
    """Drop :data:`QUANTIZER_NOISE` from the root logger while the block runs.

    ONNX Runtime's quantizer logs through ``logging.warning``, which would also install a
    stderr handler on the root logger for good when it has none: a temporary
    ``NullHandler`` prevents that side effect.
    """
    root = logging.getLogger()
    handler = logging.NullHandler()
    noise = _DropMessages(QUANTIZER_NOISE)
    root.addHandler(handler)
    root.addFilter(noise)
    try:
        yield
    finally:
        root.removeFilter(noise)
        root.removeHandler(handler)


TORCHSCRIPT_NOISE: tuple[tuple[type[Warning], str], ...] = (
    (DeprecationWarning, "You are using the legacy TorchScript-based ONNX export"),
    (DeprecationWarning, "The feature will be removed"),
    (UserWarning, "Constant folding - Only steps=1 can be constant folded"),
)
"""Warnings of ``torch.onnx.export(dynamo=False)`` that are dropped: its own deprecation (the
project keeps this exporter on purpose, see :mod:`foundation.export.exporter`), a deprecation
inside it, and a note that strided slices are not constant-folded (the graph stays correct)."""


def replay_warnings(
    caught: Sequence[warnings.WarningMessage],
    noise: Sequence[tuple[type[Warning], str]] = TORCHSCRIPT_NOISE,
) -> list[warnings.WarningMessage]:
    """Emit again the recorded warnings that are not ``noise`` (category and message start).

    Returns:
        The warnings emitted again.
    """
    kept = [
        caught_warning
        for caught_warning in caught
        if not any(
            issubclass(caught_warning.category, category)
            and str(caught_warning.message).startswith(start)
            for category, start in noise
        )
    ]
    for item in kept:
        warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    return kept
