"""The export's user-facing settings and their checks: light (no torch, no ONNX), so the command
line can show and validate them without loading the exporter."""

from __future__ import annotations

DEFAULT_OPSET = 17
"""ONNX opset of the exported graphs."""

DEFAULT_TOLERANCE = 1e-4
"""Largest accepted ``|onnx - torch| / max(1, |torch|)``: absolute for outputs below 1 in size
(probabilities, embeddings), relative above (trained networks' logits reach ~170, where float32
rounding alone differs by ~1e-5 per step)."""

MAX_TOLERANCE = 0.1
"""A larger tolerance would let a wrong graph pass (probabilities differ by less than 1)."""

QUANTIZATION_MODES: tuple[str, ...] = ("int8", "fp16")
"""Compressed copies ``foundation export --quantize`` can write."""


def check_tolerance(tolerance: float) -> float:
    """Return ``tolerance`` if it is a usable parity tolerance: finite, in ``(0, 0.1]``.

    Raises:
        ValueError: ``inf``, NaN, zero, negative or absurdly large (the gate would be off).
    """
    if not (isinstance(tolerance, (int, float)) and 0 < tolerance <= MAX_TOLERANCE):
        raise ValueError(
            f"parity tolerance: expected a number in (0, {MAX_TOLERANCE:g}], found {tolerance} "
            f"(the default is {DEFAULT_TOLERANCE:g}; a larger one would switch the gate off)"
        )
    return float(tolerance)
