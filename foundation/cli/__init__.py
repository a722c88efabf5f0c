"""The ``foundation`` command: one sub-command per entry of ``commands.COMMANDS``.

Only the sub-command being run is imported (``foundation --help`` imports none), and an error
of the project's (bad input, a missing file) is printed as one line and exits 1; ``--debug``
shows the traceback instead. Ctrl-C exits 130 with one line; SIGTERM (``kill``, a batch system
ending a job) takes the same path and exits 143.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence

from foundation import __version__
from foundation.cli.commands import COMMANDS

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, OSError)
"""Errors that carry a message for the user (most of the project's derive from these; OSError
covers missing files, a full disk, permissions): printed as one line without a traceback, like
every error class of the project's own (e.g. ``ExportError``, a RuntimeError)."""


def is_expected(error: BaseException) -> bool:
    """Whether ``error`` is a message for the user rather than a bug to show with a traceback."""
    return isinstance(error, EXPECTED_ERRORS) or type(error).__module__.startswith("foundation.")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``foundation`` parser, with ``command``'s full parser (the others as summaries only).

    Args:
        command: the sub-command to load; None loads none (enough for ``foundation --help``).
    """
    parser = argparse.ArgumentParser(
        prog="foundation",
        description="Pretrained backbones for particle-physics detector data.",
    )
    parser.add_argument("--version", action="version", version=f"foundation {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback when a command fails"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for entry in COMMANDS:
        if entry.name == command:
            entry.load().register(subparsers)
        else:
            subparsers.add_parser(entry.name, help=entry.summary, add_help=False)
    return parser


def requested_command(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (the first argument that is not an option), if any."""
    names = {entry.name for entry in COMMANDS}
    for argument in argv:
        if not argument.startswith("-"):
            return argument if argument in names else None
    return None


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it ends as after Ctrl-C: workers are
    stopped, finished work is kept, one line is printed (commands may re-raise it as their own
    interruption with what was kept; :data:`_SIGNALS` remembers that it was SIGTERM)."""


_SIGNALS: list[int] = []
"""The termination signals received during this command (for its exit status)."""


def _raise_terminated(signum: int, frame: object) -> None:
    _SIGNALS.append(signum)
    raise Terminated()


def interruption_message(interruption: KeyboardInterrupt) -> str:
    """The interruption's own message (what was kept, how to continue), or a general one."""
    return str(interruption) or (
        "interrupted; rerun the same command to continue (finished work is kept; training runs "
        "continue with --resume)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``foundation`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Idle OpenMP threads sleep instead of spinning: on a shared node, spinning threads of torch
    # compete with the other jobs' and multiply the run time. Set before torch is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser(requested_command(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _SIGNALS.clear()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as interruption:
        if args.debug:
            raise
        print(f"foundation {args.command}: {interruption_message(interruption)}", file=sys.stderr)
        return 128 + _SIGNALS[-1] if _SIGNALS else 130
    except Exception as error:
        if args.debug or not is_expected(error):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"foundation {args.command}: error: {message}", file=sys.stderr)
        return 1
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
