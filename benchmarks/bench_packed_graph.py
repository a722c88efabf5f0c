"""ParticleNet dense (padded ``[B, N, k]`` slots) against packed (a PyG graph of real particles).

Run by hand (never timed in tests)::

    python benchmarks/bench_packed_graph.py [--variants particlenet-s,particlenet]
        [--batch-sizes 256,1] [--min-particles 20] [--max-particles 100] [--slots 128]
        [--threads 2] [--budget 4] [--out benchmarks/results/packed_graph_cpu.json]

Both paths run the same model (the packed one shares the dense modules,
:mod:`foundation.models.particlenet_packed`) on the same ragged jets: multiplicities uniform in
[20, 100], padded to 128 slots. The dense model trims the batch to its largest jet and builds
``[B, N, k]`` edges of which the padded particles' are wasted; the packed one runs its edge
network on real edges only, but pays for the conversion (``to_graph``, included) and for the
PyG scatter. Timed alternately (a busy machine slows both alike), medians of calls:
``eval`` is a no-grad forward, ``train`` a forward + backward in training mode.

Measured on 2026-12-01 after batch norms moved to PyTorch's fused kernel (commit "MaskedBatchNorm
trains through PyTorch's fused batch norm"), in process CPU seconds (2 threads, AMD EPYC, torch
2.13 CPU, on a 2-core machine shared with two one-thread training jobs), with
``python benchmarks/bench_packed_graph.py --clock cpu --out
benchmarks/results/packed_graph_cpu_clock.json`` and, for weaver's neighbour rule (the converted
JetClass ParticleNets), ``--variants particlenet --missing-neighbours zero_features --out
benchmarks/results/packed_graph_cpu_clock_zero_features.json``; ms per call, dense / packed
(speed-up of packed):

============== ============= ===== ======================== ========================== ===========
variant        neighbours    B     eval (no-grad forward)   train (forward + backward) max |Δ jet|
============== ============= ===== ======================== ========================== ===========
particlenet-s  ignore        256   926 / 663 (1.40x)        1,530 / 762 (2.01x)        1.5e-07
particlenet    ignore        256   7,850 / 3,780 (2.08x)    21,100 / 10,000 (2.10x)    1.5e-07
particlenet    zero_features 256   9,000 / 4,660 (1.93x)    27,400 / 12,600 (2.19x)    1.5e-07
particlenet-s  ignore        1     6.7 / 13.3 (0.50x)       19.7 / 23.9 (0.82x)        7.5e-08
particlenet    ignore        1     33.3 / 41.6 (0.80x)      114 / 116 (0.99x)          6.0e-08
particlenet    zero_features 1     41.6 / 76.1 (0.55x)      281 / 242 (1.16x)          6.0e-08
============== ============= ===== ======================== ========================== ===========

(59 real particles per jet on average at B = 256, trimmed to 100 slots: 41 % of the dense
edges belong to padding; the B = 1 jet has 100 particles, so dense has no padding at all.)
Before the fused batch norm (``--variants particlenet-s --clock cpu``, earlier that day):
particlenet-s B = 256 train 4,490 / 1,970 ms (2.28x), eval 1,390 / 911 ms: the dense training
step is 2.9x faster now, the packed one 2.6x. ``benchmarks/results/packed_graph_cpu.json``
(wall clock, load average 6 to 9) is from before the change.

Where to use which: the packed path pays on ragged batches, in training and inference (about
2x: the dense edge MLP runs over padded rows); the dense path stays the choice for single jets
and small batches (no padding to skip, less overhead) and is the one that exports to ONNX.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from harness import CLOCKS, cpu_name, jets_with_counts, write_json

from foundation.data.batch import JetBatch
from foundation.models.particlenet_packed import forward_packed
from foundation.models.registry import create_backbone

FEATURES = 17


def ragged_jets(batch_size: int, low: int, high: int, slots: int, seed: int = 0) -> JetBatch:
    """Jets with ``U[low, high]`` real particles in front, padded to ``slots``.

    Shapes:
        - output.particles: ``[batch_size, slots, 17]``; output.mask: ``[batch_size, slots]``
    """
    generator = torch.Generator().manual_seed(seed)
    counts = torch.randint(low, high + 1, (batch_size,), generator=generator)
    return jets_with_counts(counts, slots, FEATURES, generator)


def _alternate(
    steps: dict[str, Callable[[], object]], budget: float, clock: Callable[[], float]
) -> dict[str, float]:
    """Median seconds (of ``clock``) per call of each step, called in turn for ``budget`` wall
    seconds each (3 calls at least)."""
    for step in steps.values():
        step()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in steps}
    start = time.perf_counter()
    while time.perf_counter() - start < budget * len(steps) or min(map(len, times.values())) < 3:
        for name, step in steps.items():
            begin = clock()
            step()
            times[name].append(clock() - begin)
    return {name: statistics.median(values) for name, values in times.items()}


def measure(
    variant: str,
    batch: JetBatch,
    budget: float,
    clock: Callable[[], float] = time.perf_counter,
    missing_neighbours: str = "ignore",
) -> dict[str, object]:
    """Dense and packed ``eval`` and ``train`` times of one variant on one batch."""
    torch.manual_seed(0)
    dense_model = create_backbone(
        variant, in_features=FEATURES, missing_neighbours=missing_neighbours
    )
    packed_model = copy.deepcopy(dense_model)
    row: dict[str, object] = {
        "variant": variant,
        "missing_neighbours": missing_neighbours,
        "batch_size": len(batch),
    }
    with torch.no_grad():
        dense_model.eval(), packed_model.eval()
        difference = (dense_model(batch).jet - forward_packed(packed_model, batch).jet).abs()
    row["max_abs_jet_difference_eval"] = float(difference.max())
    for mode in ("eval", "train"):
        dense_model.train(mode == "train"), packed_model.train(mode == "train")

        def run(path: Callable[[], object], model: torch.nn.Module, mode: str = mode) -> None:
            if mode == "eval":
                with torch.no_grad():
                    path()
                return
            model.zero_grad(set_to_none=True)
            out = path()
            (out.jet.square().mean() + out.particles.square().mean()).backward()

        seconds = _alternate(
            {
                "dense": lambda: run(lambda: dense_model(batch), dense_model),
                "packed": lambda: run(lambda: forward_packed(packed_model, batch), packed_model),
            },
            budget,
            clock,
        )
        row[f"{mode}_dense_ms"] = 1000 * seconds["dense"]
        row[f"{mode}_packed_ms"] = 1000 * seconds["packed"]
        row[f"{mode}_packed_speedup"] = seconds["dense"] / seconds["packed"]
    return row


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="particlenet-s,particlenet")
    parser.add_argument("--batch-sizes", default="256,1")
    parser.add_argument("--min-particles", type=int, default=20)
    parser.add_argument("--max-particles", type=int, default=100)
    parser.add_argument("--slots", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget", type=float, default=4.0, help="seconds per path and mode")
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="wall", help="wall or process CPU seconds"
    )
    parser.add_argument(
        "--missing-neighbours",
        choices=["ignore", "zero_features"],
        default="ignore",
        help="zero_features: weaver's rule, as in the converted JetClass ParticleNets",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    rows = []
    for size in (int(s) for s in args.batch_sizes.split(",")):
        batch = ragged_jets(size, args.min_particles, args.max_particles, args.slots)
        for variant in args.variants.split(","):
            row = measure(variant, batch, args.budget, CLOCKS[args.clock], args.missing_neighbours)
            row["real_particles_mean"] = float(batch.mask.sum(1).float().mean())
            row["trimmed_slots"] = int(batch.mask.sum(1).max())
            cells = (
                f"{k}: {v:.3g}" if isinstance(v, float) else f"{k}: {v}" for k, v in row.items()
            )
            print(", ".join(cells), flush=True)
            rows.append(row)
    result = {
        "cpu": cpu_name(),
        "threads": args.threads,
        "clock": args.clock,
        "torch": torch.__version__,
        "slots": args.slots,
        "particles": [args.min_particles, args.max_particles],
        "rows": rows,
    }
    if args.out is not None:
        write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
