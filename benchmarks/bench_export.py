"""Deployment speed: PyTorch eager vs ONNX Runtime float32 vs ONNX Runtime int8, per backbone.

Run by hand (never timed in tests)::

    python benchmarks/bench_export.py [--threads 2] [--backbones part-tiny,part-s] [--json out.json]

For every ``-tiny`` and ``-s`` backbone (17 input features, as the ParT "full" set) with a
binary jet classification head: export (parity-checked), quantize to int8, then time throughput
at batch 256 and latency at batch 1 on the same random jets (128 slots, ~50 real particles).
Weights are random: speed does not depend on them, and ``max |diff|`` shows the int8 error
against PyTorch on those jets (its accuracy cost on labelled jets is
:func:`foundation.export.compression_cost`).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import onnxruntime as ort
import torch

from foundation.export import export_onnx, format_table, quantize, run_benchmarks
from foundation.export.parity import ParityConfig
from foundation.hub import FeatureSchema
from foundation.model import Model
from foundation.models.registry import list_backbones

FEATURES = tuple(f"feature_{i}" for i in range(17))


def default_backbones() -> list[str]:
    return [name for name in list_backbones() if name.endswith(("-tiny", "-s"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbones", help="comma-separated (default: every -tiny and -s)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--batch-size", type=int, default=256, help="throughput batch")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--min-calls", type=int, default=3, help="timed calls per measurement")
    parser.add_argument("--json", type=Path, help="write every result here")
    args = parser.parse_args()
    names = args.backbones.split(",") if args.backbones else default_backbones()
    print(
        f"torch {torch.__version__}, onnxruntime {ort.__version__}, {os.cpu_count()} cores, "
        f"{args.threads} threads; N = 128 slots, ~50 real particles, F = {len(FEATURES)}"
    )
    everything = {}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as scratch:
        for name in names:
            torch.manual_seed(0)
            model = Model.create(
                name, {"in_features": len(FEATURES)}, {"top": {"type": "jet_classification"}}
            )
            model.feature_schema = FeatureSchema(FEATURES)
            fp32 = Path(scratch) / f"{name}.onnx"
            report = export_onnx(model, fp32, parity_config=ParityConfig(batch_sizes=(1, 3)))
            int8 = quantize(fp32, Path(scratch) / f"{name}.int8.onnx", "int8")
            results = run_benchmarks(
                model,
                {"onnxruntime": fp32, "onnxruntime-int8": int8},
                threads=args.threads,
                batch_size=args.batch_size,
                min_seconds=args.min_seconds,
                min_calls=args.min_calls,
            )
            parameters = sum(p.numel() for p in model.parameters())
            load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
            print(
                f"\n{name} (load average {load}): {parameters / 1e3:.0f}k parameters, fp32 "
                f"{fp32.stat().st_size >> 10} KiB, int8 {int8.stat().st_size >> 10} KiB, export "
                f"parity max |diff| {max(o.max_abs for o in report.parity.outputs):.1e}"
            )
            print(format_table(results))
            everything[name] = [r.to_dict() for r in results]
    if args.json:
        args.json.write_text(json.dumps(everything, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
