"""Export for deployment: ONNX graphs with a parity gate, metadata, compression and benchmarks.

- :func:`export_onnx`: backbone + heads (or heads on embeddings) to one ONNX graph; every export
  is parity-checked against PyTorch and carries the config and feature schema in its metadata.
- :func:`export_weaver_onnx`: the same model in weaver's / CMSSW's signature, with
  ``preprocess.json``.
- :func:`check_parity`, :class:`ParityConfig`: the gate on its own.
- :func:`read_metadata`: the ``foundation.*`` metadata of an exported file.
- :func:`quantize`, :func:`compression_cost`: int8 / fp16 copies and their ΔAUC and speed.
- :func:`run_benchmarks`: PyTorch vs ONNX Runtime throughput and latency.
- :func:`write_jet_files`: jets as ``deploy/python/score_jet.py`` reads them.

The names are imported on first use (PEP 562), so that ``foundation.export.options`` (what the
command line needs to show its help) never pays for torch and ONNX Runtime.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """The public ``name``, imported from its submodule on first use (then kept here)."""
    match name:
        case "BenchResult" | "format_table" | "run_benchmarks":
            from foundation.export import bench as source
        case "ExportError" | "ExportParityError":
            from foundation.export import errors as source
        case "ExportReport" | "export_onnx":
            from foundation.export import exporter as source
        case "write_jet_files":
            from foundation.export import jet_files as source
        case "read_metadata":
            from foundation.export import metadata as source
        case "ParityConfig" | "ParityReport" | "check_parity":
            from foundation.export import parity as source
        case "CompressionCost" | "QuantizationError" | "compression_cost" | "quantize":
            from foundation.export import quantization as source
        case "export_weaver_onnx":
            from foundation.export import weaver_signature as source
        case _:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = globals()[name] = getattr(source, name)
    return value


__all__ = [
    "BenchResult",
    "CompressionCost",
    "ExportError",
    "ExportParityError",
    "ExportReport",
    "ParityConfig",
    "ParityReport",
    "QuantizationError",
    "check_parity",
    "compression_cost",
    "export_onnx",
    "export_weaver_onnx",
    "format_table",
    "quantize",
    "read_metadata",
    "run_benchmarks",
    "write_jet_files",
]
