"""Throughput, latency, size and FLOPs of every registered backbone variant on CPU.

The input has the JetClass shape: ``F = 17`` particle features, ``N = 128`` particle slots,
about 50 real particles per jet (Gaussian, σ = 15, clipped to [1, 128]). Measured per variant:

- inference jets/s at batch ``--batch-size`` (``torch.inference_mode``, eval mode);
- training-step jets/s at the same batch (forward, a stand-in loss on both outputs, backward,
  AdamW step; train mode);
- latency of one jet (batch 1), median over repeats;
- parameters, and forward FLOPs per jet from ``torch.utils.flop_counter.FlopCounterMode``
  (matmuls, convolutions and attention; element-wise ops are not counted).

Each measurement runs one warm-up call, then repeats until ``--budget`` seconds have passed
(at least ``--min-repeats`` times) and reports the median. ``--clock wall`` (default) times
wall-clock seconds; on a machine shared with other jobs, ``--clock cpu --threads 1`` times the
process's CPU seconds instead, which other processes cannot inflate. Run by hand, never in
tests::

    python benchmarks/bench_backbones.py --threads 2 --out bench.json              # tiny + s
    python benchmarks/bench_backbones.py --threads 16 --names all --out all.json  # everything
    python benchmarks/bench_backbones.py --names 'part*' 'jetformer-s' --out part.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from harness import (
    CLOCKS,
    count_flops,
    cpu_name,
    make_jets,
    select_backbones,
    timed,
    write_json,
)

from foundation.data.batch import JetBatch
from foundation.models.base import Backbone
from foundation.models.registry import create_backbone

DEFAULT_PATTERNS = ("*-tiny", "*-s", "pfn")
"""Variants measured by default: the small ones (the full-size ones take minutes on a laptop)."""


def loss_of(model: Backbone, batch: JetBatch) -> torch.Tensor:
    """A stand-in loss touching both outputs (no head: the benchmark is of the backbone)."""
    out = model(batch)
    return out.jet.square().mean() + out.particles.square().mean()


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """All numbers of one variant."""
    torch.manual_seed(0)
    model = create_backbone(name, in_features=args.features)
    batch = make_jets(args.batch_size, args.slots, args.mean_particles, args.features, seed=0)
    single = make_jets(1, args.slots, args.mean_particles, args.features, seed=1)
    single = JetBatch(  # one jet with exactly the mean multiplicity
        particles=single.particles,
        mask=torch.arange(args.slots).unsqueeze(0) < int(args.mean_particles),
        vectors=single.vectors,
        jet=single.jet,
    )
    params = sum(p.numel() for p in model.parameters())

    model.eval()
    flops = count_flops(model, batch) if args.flops else None

    def infer() -> None:
        with torch.inference_mode():
            model(batch)

    def infer_one() -> None:
        with torch.inference_mode():
            model(single)

    clock = CLOCKS[args.clock]
    inference = timed(infer, args.budget, args.min_repeats, clock)
    latency = timed(infer_one, args.budget, max(args.min_repeats, 5), clock)

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_of(model, batch).backward()
        optimizer.step()

    training = timed(train_step, args.budget, args.min_repeats, clock)
    return {
        "name": name,
        "params": params,
        "num_features": model.num_features,
        "flops_per_jet": flops,
        "inference_jets_per_s": args.batch_size / inference,
        "train_jets_per_s": args.batch_size / training,
        "latency_ms": 1e3 * latency,
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of the results."""
    header = (
        f"{'backbone':<18} {'params':>9} {'MFLOP/jet':>10} {'infer jets/s':>13} "
        f"{'train jets/s':>13} {'latency ms':>11}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        flops = "n/a" if row["flops_per_jet"] is None else f"{row['flops_per_jet'] / 1e6:.1f}"
        lines.append(
            f"{row['name']:<18} {row['params']:>9,} {flops:>10} "
            f"{row['inference_jets_per_s']:>13,.0f} {row['train_jets_per_s']:>13,.0f} "
            f"{row['latency_ms']:>11.2f}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument(
        "--names",
        nargs="+",
        default=list(DEFAULT_PATTERNS),
        help="backbone names or glob patterns, or 'all' (default: %(default)s)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (%(default)s)")
    parser.add_argument("--batch-size", type=int, default=256, help="throughput batch size")
    parser.add_argument("--slots", type=int, default=128, help="padded particle slots N")
    parser.add_argument("--mean-particles", type=float, default=50.0, help="mean real particles")
    parser.add_argument("--features", type=int, default=17, help="particle features F")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--min-repeats", type=int, default=1, help="least timed calls")
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="wall", help="what is timed (%(default)s)"
    )
    parser.add_argument("--no-flops", dest="flops", action="store_false", help="skip FLOPs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    names = select_backbones(args.names)
    print(
        f"CPU: {cpu_name()}, torch {torch.__version__}, {args.threads} thread(s), "
        f"{args.clock} clock; "
        f"F={args.features}, N={args.slots}, ~{args.mean_particles:.0f} real particles, "
        f"batch {args.batch_size} (throughput) and 1 (latency)",
        flush=True,
    )
    rows = []
    start = time.perf_counter()
    for name in names:
        rows.append(measure(name, args))
        print(f"  {name}: done ({time.perf_counter() - start:.0f} s)", flush=True)
    print(format_table(rows))
    write_json(
        args.out,
        {
            "cpu": cpu_name(),
            "torch": torch.__version__,
            "threads": args.threads,
            "clock": args.clock,
            "batch_size": args.batch_size,
            "slots": args.slots,
            "mean_particles": args.mean_particles,
            "features": args.features,
            "results": rows,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
