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

from foundation.lazy import lazy_exports

_SUBMODULE_OF: dict[str, str] = {
    "BenchResult": "bench",
    "format_table": "bench",
    "run_benchmarks": "bench",
    "ExportError": "errors",
    "ExportParityError": "errors",
    "ExportReport": "exporter",
    "export_onnx": "exporter",
    "write_jet_files": "jet_files",
    "read_metadata": "metadata",
    "ParityConfig": "parity",
    "ParityReport": "parity",
    "check_parity": "parity",
    "CompressionCost": "quantization",
    "QuantizationError": "quantization",
    "compression_cost": "quantization",
    "quantize": "quantization",
    "export_weaver_onnx": "weaver_signature",
}
"""Public name -> the submodule of ``foundation.export`` defining it."""


__getattr__ = lazy_exports(__name__, _SUBMODULE_OF)


__all__ = sorted(_SUBMODULE_OF)
