"""Export for deployment: ONNX graphs with a parity gate, metadata, compression and benchmarks.

- :func:`export_onnx`: backbone + heads (or heads on embeddings) to one ONNX graph; every export
  is parity-checked against PyTorch and carries the config and feature schema in its metadata.
- :func:`check_parity`, :class:`ParityConfig`: the gate on its own.
- :func:`read_metadata`: the ``foundation.*`` metadata of an exported file.
- :func:`quantize`, :func:`compression_cost`: int8 / fp16 copies and their ΔAUC and speed.
- :func:`run_benchmarks`: PyTorch vs ONNX Runtime throughput and latency.
"""

from foundation.export.bench import BenchResult, format_table, run_benchmarks
from foundation.export.errors import ExportError, ExportParityError
from foundation.export.exporter import ExportReport, export_onnx
from foundation.export.metadata import read_metadata
from foundation.export.parity import ParityConfig, ParityReport, check_parity
from foundation.export.quantization import (
    CompressionCost,
    QuantizationError,
    compression_cost,
    quantize,
)

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
    "format_table",
    "quantize",
    "read_metadata",
    "run_benchmarks",
]
