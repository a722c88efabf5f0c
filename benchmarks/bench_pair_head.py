"""The pair head's training path (pairs i <= j of real particles) against its dense graph.

Run by hand (never timed in tests)::

    python benchmarks/bench_pair_head.py [--batch-size 64] [--slots 100] [--mean-particles 53]
        [--width 64] [--threads 1] [--budget 10] [--out benchmarks/results/pair_head_cpu.json]

The dense graph scores all N x N slots: it is what the ONNX export traces (and what the head
computed in training before). Both are timed forward + backward on the same random jets,
alternately, so that a busy machine slows both alike; the figures are medians of steps. The
default shape is that of the D5 study: batches of 64 jets, 53 real particles on average
(the simulated H/top jets), padded to the batch's largest jet (~100).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from harness import cpu_name, make_jets, write_json

from foundation.models.base import Features
from heads.pair_classification import PairClassificationHead


@contextlib.contextmanager
def _dense_graph() -> Iterator[None]:
    """Make the head take its export path (all N x N slots)."""
    original = torch.onnx.is_in_onnx_export
    torch.onnx.is_in_onnx_export = lambda: True
    try:
        yield
    finally:
        torch.onnx.is_in_onnx_export = original


def _step(head: PairClassificationHead, features: Features, batch: object) -> None:
    head.zero_grad(set_to_none=True)
    outputs = head(features, batch)
    outputs["logits"].square().mean().backward()


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--slots", type=int, default=100)
    parser.add_argument("--mean-particles", type=float, default=53.0)
    parser.add_argument("--width", type=int, default=64, help="backbone embedding width D")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budget", type=float, default=10.0, help="seconds per variant")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch = make_jets(args.batch_size, args.slots, args.mean_particles, args.width, seed=0)
    embeddings = batch.particles.clone().requires_grad_(True)
    features = Features(particles=embeddings, jet=embeddings.sum(1), mask=batch.mask)
    head = PairClassificationHead(args.width)
    with torch.no_grad():
        sparse = head(features, batch)["logits"]
        with _dense_graph():
            dense = head(features, batch)["logits"]
    times: dict[str, list[float]] = {"real_pairs": [], "dense": []}
    start = time.perf_counter()
    while time.perf_counter() - start < 2 * args.budget or len(times["dense"]) < 3:
        for name in times:
            with _dense_graph() if name == "dense" else contextlib.nullcontext():
                begin = time.perf_counter()
                _step(head, features, batch)
                times[name].append(time.perf_counter() - begin)
    real = int(batch.mask.sum(1).pow(2).sum())
    result = {
        "cpu": cpu_name(),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "slots": args.slots,
        "mean_particles": float(batch.mask.sum(1).float().mean()),
        "width": args.width,
        "pairs_of_real_particles_fraction": real / (args.batch_size * args.slots**2),
        "max_abs_logit_difference": float((sparse - dense).abs().max()),
        **{
            f"{name}_ms_per_step": 1000 * statistics.median(values)
            for name, values in times.items()
        },
        "steps": len(times["dense"]),
    }
    result["speedup"] = result["dense_ms_per_step"] / result["real_pairs_ms_per_step"]
    for key, value in result.items():
        print(f"{key}: {value}")
    if args.out is not None:
        write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
