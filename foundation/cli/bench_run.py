"""The work of ``foundation bench`` (torch, ONNX Runtime): loaded only when the command runs."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import onnxruntime as ort
import torch

from foundation import __version__, load_pretrained
from foundation.export.bench import format_table, run_benchmarks
from foundation.export.errors import ExportError
from foundation.export.exporter import export_onnx
from foundation.export.files import atomic_file
from foundation.export.metadata import read_metadata
from foundation.export.quantization import quantize
from foundation.export.source import checkpoint_folder
from foundation.hub.config import WEIGHTS_FILE
from foundation.hub.hashing import sha256_file
from foundation.model import Model


def _load(args: argparse.Namespace, onnx_path: Path) -> Model:
    """The PyTorch model of an exported file, checked against the recorded sha256."""
    metadata = read_metadata(onnx_path)
    if metadata.get("embeddings_only"):
        raise ValueError(f"{onnx_path}: an embeddings-only graph cannot be timed against PyTorch")
    reference = args.checkpoint or metadata.get("source")
    if not reference:
        raise ValueError(
            f"{onnx_path}: its metadata names no source checkpoint; pass --checkpoint FOLDER"
        )
    folder = checkpoint_folder(reference) if Path(reference).exists() else None
    recorded = metadata.get("source_sha256")
    if folder is not None and recorded and sha256_file(folder / WEIGHTS_FILE) != recorded:
        raise ValueError(
            f"{folder / WEIGHTS_FILE} is not the checkpoint {onnx_path} was exported from (sha256 "
            f"differs from the recorded {recorded}); pass the right --checkpoint"
        )
    return load_pretrained(folder or reference, heads=list(metadata["heads"]) or None)


def run(args: argparse.Namespace) -> int:
    """Export if needed, time every backend, print the table, write JSON on request."""
    try:
        return _bench(args)
    except ExportError as error:  # export and quantization failures: one line
        print(f"foundation bench: error: {error}", file=sys.stderr)
        return 1


def _bench(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="foundation-bench-") as scratch:
        path = Path(args.model)
        if path.suffix == ".onnx":
            model, onnx_path = _load(args, path), path
        else:
            model = load_pretrained(checkpoint_folder(path), heads="all")
            onnx_path = Path(scratch) / "model.onnx"
            report = export_onnx(model, onnx_path)
            print(
                f"exported {path} to a temporary graph (parity max |diff| "
                f"{max(o.max_abs for o in report.parity.outputs):.1e})"
                if report.parity and report.parity.outputs
                else "exported"
            )
        files = {"onnxruntime": onnx_path}
        if args.int8:
            files["onnxruntime-int8"] = quantize(onnx_path, Path(scratch) / "model.int8.onnx")
        heads = list(read_metadata(onnx_path)["heads"])
        results = run_benchmarks(
            model,
            files,
            heads=heads,
            threads=args.threads,
            batch_size=args.batch_size,
            latency_batch_size=args.latency_batch_size,
            num_particles=args.particles,
            mean_particles=args.real,
            min_seconds=args.min_seconds,
            gpu=False if args.no_gpu else None,
        )
    environment = {
        "foundation": __version__,
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": args.threads,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    print(
        f"{args.model}: {args.particles} particle slots, ~{args.real:g} real; CPU threads "
        f"{args.threads} (of {os.cpu_count()} cores); torch {torch.__version__}, onnxruntime "
        f"{ort.__version__}"
    )
    print(format_table(results))
    if args.json:
        document = {
            "model": str(args.model),
            "environment": environment,
            "results": [r.to_dict() for r in results],
        }
        with atomic_file(args.json, overwrite=True, what="a JSON file") as temporary:
            temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0
