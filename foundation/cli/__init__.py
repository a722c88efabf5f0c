"""The ``foundation`` command: one sub-command per module in :data:`COMMAND_MODULES`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from foundation import __version__

COMMAND_MODULES: tuple[str, ...] = (
    "foundation.cli.quickstart",
    "foundation.cli.simulate",
    "foundation.cli.pretrain",
    "foundation.cli.finetune",
    "foundation.cli.evaluate",
    "foundation.cli.study",
    "foundation.cli.hub",
    "foundation.cli.baseline",
    "foundation.cli.export",
    "foundation.cli.bench",
)
"""Modules defining a sub-command: each has ``register(subparsers)`` which adds its parser and
sets ``func`` (a callable taking the parsed namespace and returning an exit code)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``foundation`` command with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="foundation",
        description="Pretrained backbones for particle-physics detector data.",
    )
    parser.add_argument("--version", action="version", version=f"foundation {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``foundation`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, FileExistsError, FileNotFoundError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"foundation {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
