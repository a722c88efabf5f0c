"""``foundation bench MODEL``: PyTorch against ONNX Runtime, throughput and latency."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` command."""
    parser = subparsers.add_parser(
        "bench",
        help="time PyTorch against ONNX Runtime (throughput and latency)",
        description="Throughput (batch 256) and latency (batch 1) of PyTorch eager and ONNX "
        "Runtime on the same random jets (128 particle slots, about 50 real particles), on CPU "
        "with --threads threads, and on the GPU when PyTorch sees one. MODEL is a checkpoint "
        "(or run) folder, exported here to a temporary file, or an exported .onnx file whose "
        "checkpoint is --checkpoint or the one recorded in its metadata.",
    )
    parser.add_argument("model", metavar="MODEL", help="checkpoint/run folder or .onnx file")
    parser.add_argument("--checkpoint", help="the checkpoint an .onnx file was exported from")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--batch-size", type=int, default=256, help="throughput batch (256)")
    parser.add_argument("--latency-batch-size", type=int, default=1, help="latency batch (1)")
    parser.add_argument("--particles", type=int, default=128, help="particle slots N (128)")
    parser.add_argument("--real", type=float, default=50.0, help="mean real particles (50)")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--int8", action="store_true", help="also time an int8 quantized copy")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU even if present")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    """Export if needed, time every backend, print the table, write JSON on request."""
    from foundation.cli.bench_run import run  # torch and ONNX Runtime: only when it runs

    return run(args)
