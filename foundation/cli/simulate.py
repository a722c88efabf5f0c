"""``foundation simulate``: make detector-level jets (and validate them)."""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from foundation.simulation.card import DEFAULT_CARD
from foundation.simulation.processes import ALIASES, PROCESSES


def _pt_range(text: str) -> tuple[float, float]:
    from foundation.simulation.runner import check_pt_range

    try:
        low, high = (float(value) for value in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH in GeV, found {text!r}") from None
    try:
        check_pt_range((low, high))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--pt-range: ")) from None
    return low, high


def _pileup(text: str) -> float:
    from foundation.simulation.runner import MAX_PILEUP

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, found {text!r}") from None
    if not (math.isfinite(value) and 0 <= value <= MAX_PILEUP):
        raise argparse.ArgumentTypeError(
            f"expected a mean number of interactions in 0..{MAX_PILEUP:g}, found {text!r}"
        )
    return value


def _batch_shard(text: str) -> tuple[int, int]:
    try:
        job, jobs = (int(value) for value in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N (e.g. 3/10), found {text!r}") from None
    return job, jobs


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` sub-command."""
    parser = subparsers.add_parser(
        "simulate",
        help="make detector-level jets with Pythia 8 + a parametrized detector + FastJet",
        description=(
            "Simulate jets into JetClass-format ROOT shards. A rerun skips finished shards; a "
            "shard of a different request is never overwritten without --overwrite."
        ),
    )
    parser.add_argument(
        "--process",
        default="toptagging",
        help=f"comma-separated processes ({', '.join(PROCESSES)}) or aliases "
        f"({', '.join(ALIASES)}); default: toptagging (qcd,tbqq)",
    )
    parser.add_argument("--jets", type=int, default=1000, help="jets per process (default 1000)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=1, help="request seed (default 1)")
    parser.add_argument("--shard-size", type=int, default=5000, help="jets per shard file")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument(
        "--shard",
        type=_batch_shard,
        default=None,
        metavar="I/N",
        help="run only batch job I of N (every N-th shard), for batch systems",
    )
    parser.add_argument(
        "--card",
        default=DEFAULT_CARD,
        help=f"detector card: a shipped name ({DEFAULT_CARD}, jetclass2, default) or a YAML path; "
        f"default: {DEFAULT_CARD} (JetClass's Delphes card); `default` is the earlier "
        "parametrized detector (generic-lhc-v1) of jetformer-tiny.sim20k/.sim300k",
    )
    parser.add_argument(
        "--pileup",
        type=_pileup,
        default=None,
        metavar="MU",
        help=(
            "mean pileup interactions (overrides the card's mean; 0 = none; "
            "the card's CHS/PUPPI stay)"
        ),
    )
    parser.add_argument(
        "--pt-range",
        type=_pt_range,
        default=None,
        metavar="LOW,HIGH",
        help="jet pT window in GeV (default: the process's own)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace shards of other requests")
    parser.add_argument(
        "--validate",
        action="store_true",
        help="then write validation plots and table into OUT/validation",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``simulate`` sub-command."""
    from foundation.simulation.card import load_card
    from foundation.simulation.processes import resolve_processes
    from foundation.simulation.runner import (
        plan_shards,
        run_shards,
        select_batch_shards,
        shard_summary,
    )

    if args.workers < 1 or args.workers > (os.cpu_count() or 1) * 4:
        raise ValueError(
            f"--workers: expected 1..{(os.cpu_count() or 1) * 4}, found {args.workers}"
        )
    card = load_card(args.card)
    if args.pileup is not None:
        card = card.with_pileup(args.pileup)
    specs = plan_shards(
        resolve_processes(args.process),
        args.jets,
        args.out,
        args.seed,
        card,
        args.shard_size,
        args.pt_range,
    )
    if args.shard is not None:
        specs = select_batch_shards(specs, *args.shard)
    # Ctrl-C / SIGTERM: the workers are ended, finished shards kept, main() prints one line
    made = run_shards(
        specs, workers=args.workers, overwrite=args.overwrite, show_progress=not args.no_progress
    )
    if made:
        summary = shard_summary(made)
        print(
            f"made {summary['jets']} jets from {summary['events']} events in {len(made)} shards "
            f"({summary['jets_per_second_per_worker']:.1f} jets/s per worker; Pythia took "
            f"{summary['pythia_fraction_of_time']:.0%} of the time)"
        )
    print(f"{len(specs)} shards in {args.out}/ ({len(specs) - len(made)} were already done)")
    if args.validate:
        from foundation.simulation.validate import format_table, validate

        checks = validate([spec.path for spec in specs], args.out / "validation")
        print(format_table(checks))
        print(f"validation plots and table: {args.out / 'validation'}/")
        failed = [check.name for check in checks if not check.passed]
        if failed:
            print(json.dumps({"failed_checks": failed}))
    return 0
