"""``foundation export RUN_OR_CHECKPOINT --onnx model.onnx``: a parity-checked ONNX graph."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from foundation.export.options import (
    DEFAULT_OPSET,
    DEFAULT_TOLERANCE,
    QUANTIZATION_MODES,
    check_tolerance,
)

if TYPE_CHECKING:
    from foundation.data.records import JetRecords


def _tolerance(text: str) -> float:
    try:
        return check_tolerance(float(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("parity tolerance: ")) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` command."""
    parser = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX (parity-checked, metadata embedded)",
        description="Export a checkpoint's backbone and heads (or its heads alone) to one ONNX "
        "graph with dynamic batch and particle axes. Every export is checked against PyTorch "
        "on random jets (0 to 128 particles, several batch sizes) and fails, writing nothing, "
        "when an output differs by more than --tolerance or is NaN/inf. The config, feature "
        "schema, label names and source sha256 are stored in the graph's metadata_props.",
    )
    parser.add_argument(
        "checkpoint",
        metavar="RUN_OR_CHECKPOINT",
        help="checkpoint folder (save_pretrained), training run folder holding best/, or a "
        "pretrained name",
    )
    parser.add_argument("--onnx", required=True, type=Path, help="the .onnx file to write")
    parser.add_argument("--heads", help="comma-separated heads to export (default: all)")
    parser.add_argument(
        "--embeddings-only",
        action="store_true",
        help="export the heads alone, taking particle_embeddings and jet_embedding",
    )
    parser.add_argument(
        "--quantize",
        choices=QUANTIZATION_MODES,
        help="also write a compressed copy next to --onnx (model.int8.onnx / model.fp16.onnx)",
    )
    parser.add_argument(
        "--tolerance",
        type=_tolerance,
        default=DEFAULT_TOLERANCE,
        help="largest accepted |ONNX - PyTorch| / max(1, |PyTorch|) (default "
        f"{DEFAULT_TOLERANCE:g})",
    )
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})"
    )
    parser.add_argument(
        "--signature",
        choices=("foundation", "weaver"),
        default="foundation",
        help="graph inputs/outputs: the project's (particles, mask, vectors, jet -> "
        "{head}.{output}), or weaver's / CMSSW's (pf_points, pf_features, pf_vectors, pf_mask "
        "channels first -> softmax, plus preprocess.json beside --onnx)",
    )
    parser.add_argument(
        "--length",
        type=int,
        help="weaver signature: slots per jet written to preprocess.json (default: the "
        "backbone's pool_slots, else 128)",
    )
    parser.add_argument(
        "--example-jets",
        nargs="+",
        metavar="FILE",
        help="also write the first --example-count jets of these files (JetClass ROOT, "
        "TopLandscape HDF5, QG npz; globs allowed) as inputs of deploy/python/score_jet.py, "
        "features computed and normalized as the checkpoint says: model.jets/jet_000.txt ... "
        "next to --onnx",
    )
    parser.add_argument(
        "--example-count",
        type=int,
        default=5,
        help="how many jets --example-jets writes (default 5)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Export, print the parity table; quantize and write example jets on request."""
    from foundation.hub.resolve import check_local_reference

    check_local_reference(args.checkpoint)  # a typo fails before torch is imported
    from foundation.export.errors import ExportError
    from foundation.export.exporter import export_onnx
    from foundation.export.quantization import compressed_path, output_differences, quantize

    if args.signature == "weaver":
        return _run_weaver_export(args)
    if args.example_jets and args.embeddings_only:
        print(
            "foundation export: error: --example-jets writes jets for a graph that takes jets, "
            "not for --embeddings-only",
            file=sys.stderr,
        )
        return 2
    examples = _read_examples(args) if args.example_jets else None
    try:
        report = export_onnx(
            args.checkpoint,
            args.onnx,
            heads=args.heads,
            embeddings_only=args.embeddings_only,
            opset=args.opset,
            tolerance=args.tolerance,
            overwrite=args.overwrite,
        )
    except ExportError as error:
        print(f"foundation export: error: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    if args.quantize:
        out = compressed_path(args.onnx, args.quantize)
        try:
            quantize(args.onnx, out, args.quantize, overwrite=args.overwrite)
        except ExportError as error:
            print(f"foundation export: error: {error}", file=sys.stderr)
            return 1
        print(f"wrote {out} ({out.stat().st_size / 1024:.1f} KiB, {args.quantize})")
        print("largest |compressed - float32| on random jets (not gated; see compression_cost):")
        for name, difference in output_differences(args.onnx, out).items():
            print(f"  {name}: {difference:.2e}")
    if examples is not None:
        _write_examples(args, examples)
    return 0


def _read_examples(args: argparse.Namespace) -> list[tuple[JetRecords, str]]:
    """``--example-jets``: refuse an existing output folder and read the jets before exporting.

    Raises:
        OutputExistsError, DataError, ValueError: printed as one line by the CLI.
    """
    from foundation.export.jet_files import check_target, first_jets, jet_files_folder

    check_target(jet_files_folder(args.onnx), args.overwrite)
    return first_jets(args.example_jets, args.example_count)


def _write_examples(args: argparse.Namespace, examples: list[tuple[JetRecords, str]]) -> None:
    """Write the jets read by :func:`_read_examples` next to the exported graph."""
    from foundation.export import jet_files
    from foundation.export.source import resolve_source

    model = resolve_source(args.checkpoint).model
    jet_files.check_onnx_schema(model, args.onnx)
    folder = jet_files.jet_files_folder(args.onnx)
    files = jet_files.write_selected_jets(examples, model, folder, overwrite=args.overwrite)
    print(
        f"wrote {len(files)} jet files to {folder}/ (score one: python "
        f"deploy/python/score_jet.py {args.onnx} {files[0]})"
    )


def _run_weaver_export(args: argparse.Namespace) -> int:
    """``--signature weaver``: the graph CMSSW runs and its preprocess.json."""
    from foundation.export.errors import ExportError
    from foundation.export.weaver_signature import export_weaver_onnx

    refused = [flag for flag, on in (("--embeddings-only", args.embeddings_only),
                                     ("--quantize", args.quantize),
                                     ("--example-jets", args.example_jets)) if on]  # fmt: skip
    if refused:
        print(
            f"foundation export: error: {' and '.join(refused)} apply to the project's signature "
            "only, not to --signature weaver",
            file=sys.stderr,
        )
        return 2
    try:
        report = export_weaver_onnx(
            args.checkpoint,
            args.onnx,
            head=args.heads,
            length=args.length,
            opset=args.opset,
            tolerance=args.tolerance,
            overwrite=args.overwrite,
        )
    except (ExportError, ValueError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"foundation export: error: {message}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0
