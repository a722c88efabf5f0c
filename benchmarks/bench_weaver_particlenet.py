"""The converted ParticleNet beside weaver-core's, carrying the same JetClass weights.

``particlenet.jetclass-full`` (the project's ParticleNet) and weaver-core's ``ParticleNet`` with
``ParticleNet_full.pt`` (the ParT authors' file it was converted from), on the same jets, in one
run, 2 CPU threads, batch 256 and 1:

- PyTorch: weaver's network as ``weaver --predict`` runs it (``trim=True``: after 5 warm-up calls
  the padding beyond the longest jet of the batch is cut), the project's ``Model`` on a
  :class:`JetBatch` (it also trims to the longest jet).
- ONNX Runtime: weaver's graph from ``torch.onnx.export`` of its network as ``weaver
  --export-onnx`` builds it (``for_inference=True``, TorchScript exporter, ``dynamo=False``,
  opset 15 as weaver's default), the project's graphs from its exporter in both signatures
  (the project's ``particles/vectors/mask`` and weaver's ``pf_*``).

Every runtime sees the same jets: JetClass-like random jets (``random_records``, Poisson(40)
particles, at most 128) through the project's feature pipeline and the checkpoint's
normalization, in 128 slots; weaver's inputs are those, channels first with ``wrap`` padding
(:func:`~foundation.export.weaver_signature.weaver_feeds`). Reported: the largest probability
difference from weaver's PyTorch network, and throughput / latency (median of ``--rounds``
interleaved rounds) with their ratios to weaver's.

Run: ``OMP_NUM_THREADS=2 python benchmarks/bench_weaver_particlenet.py`` (3-5 minutes);
results go to ``benchmarks/results/weaver_particlenet_cpu.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from harness import CpuShare, cpu_name, timed, write_json

from foundation import load_pretrained
from foundation.data.batch import JetBatch
from foundation.data.features import particle_features
from foundation.data.normalization import Normalizer
from foundation.data.schema import JETCLASS_LABELS
from foundation.export import export_onnx
from foundation.export.session import create_session
from foundation.export.weaver_signature import export_weaver_onnx, weaver_feeds
from foundation.model import Model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synthetic import random_records

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT.parent / "shared" / "weights" / "jetclass-particlenet" / "ParticleNet_full.pt"
CHECKPOINT = ROOT / "checkpoints" / "particlenet.jetclass-full"
OUT = ROOT / "benchmarks" / "results" / "weaver_particlenet_cpu.json"
SLOTS = 128
REFERENCE = "weaver / PyTorch"


def weaver_network(for_inference: bool) -> torch.nn.Module:
    """weaver-core's ParticleNet with the ParT authors' JetClass-full weights (eval mode)."""
    from weaver.nn.model.ParticleNet import ParticleNet

    network = ParticleNet(
        input_dims=17,
        num_classes=10,
        conv_params=[(16, (64, 64, 64)), (16, (128, 128, 128)), (16, (256, 256, 256))],
        fc_params=[(256, 0.1)],
        use_fusion=False,
        use_fts_bn=True,
        use_counts=True,
        for_inference=for_inference,
    )
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    network.load_state_dict({key.removeprefix("mod."): value for key, value in state.items()})
    return network.eval()


class _WeaverOnnx(torch.nn.Module):
    """weaver's ParticleNet with the signature its export gives it (points, features, mask)."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, points: torch.Tensor, features: torch.Tensor, mask: torch.Tensor):
        return self.network(points, features, mask)


def export_weaver_network(path: Path) -> None:
    """``torch.onnx.export`` as ``weaver --export-onnx`` calls it (dynamic batch and slots)."""
    names = ["pf_points", "pf_features", "pf_mask"]
    example = (torch.ones(2, 2, SLOTS), torch.ones(2, 17, SLOTS), torch.ones(2, 1, SLOTS))
    torch.onnx.export(
        _WeaverOnnx(weaver_network(for_inference=True)).eval(),
        example,
        str(path),
        input_names=names,
        output_names=["softmax"],
        dynamic_axes={**{n: {0: "N", 2: "n_pf"} for n in names}, "softmax": {0: "N"}},
        opset_version=15,
        dynamo=False,
    )


def jetclass_jets(model: Model, size: int, seed: int) -> JetBatch:
    """JetClass-like jets through the project's features and the checkpoint's normalization."""
    records = random_records(size, mean_particles=40.0, seed=seed, label_names=JETCLASS_LABELS)
    schema = model.feature_schema
    assert schema is not None and schema.normalization is not None
    normalizer = Normalizer.from_dict(schema.normalization["particles"])
    flat = normalizer.apply(particle_features(records, schema.particle_features))
    counts = np.minimum(records.counts, SLOTS)
    starts = np.concatenate([[0], np.cumsum(records.counts)[:-1]])
    keep = np.concatenate([np.arange(s, s + c) for s, c in zip(starts, counts, strict=True)])
    mask = torch.arange(SLOTS).unsqueeze(0) < torch.from_numpy(counts).unsqueeze(1)
    particles = torch.zeros(size, SLOTS, flat.shape[1])
    particles[mask] = torch.from_numpy(np.asarray(flat)[keep])
    vectors = torch.zeros(size, SLOTS, 4)
    fields = ("part_px", "part_py", "part_pz", "part_energy")
    columns = np.stack([records.particles[name] for name in fields], axis=1)
    vectors[mask] = torch.from_numpy(columns[keep].astype(np.float32))
    return JetBatch(particles=particles, mask=mask, vectors=vectors, jet=torch.zeros(size, 0))


def _runners(model: Model, folder: Path, batch: JetBatch) -> dict[str, Callable[[], np.ndarray]]:
    """Each implementation's call on ``batch``, returning class probabilities ``[B, 10]``."""
    weaver = weaver_network(for_inference=False)  # as weaver --predict: trimming on
    coordinates = model.backbone.config["coordinates"]
    feeds = weaver_feeds(batch, coordinates)
    tensors = {name: torch.from_numpy(value) for name, value in feeds.items()}
    project_feeds = {
        "particles": batch.particles.numpy(),
        "vectors": batch.vectors.numpy(),
        "mask": batch.mask.numpy(),
    }
    sessions = {
        name: create_session(folder / f"{name}.onnx", threads=2)
        for name in ("weaver", "project", "project_weaver")
    }

    def weaver_torch() -> np.ndarray:
        with torch.inference_mode():
            points, features, mask = (
                tensors["pf_points"],
                tensors["pf_features"],
                tensors["pf_mask"],
            )
            return weaver(points, features, mask).softmax(-1).numpy()

    def project_torch() -> np.ndarray:
        with torch.inference_mode():
            return model(batch, heads=["jetclass"])["jetclass"]["probabilities"].numpy()

    def weaver_onnx() -> np.ndarray:
        wanted = {k: feeds[k] for k in ("pf_points", "pf_features", "pf_mask")}
        return sessions["weaver"].run(["softmax"], wanted)[0]

    kept = {node.name for node in sessions["project"].get_inputs()}  # ONNX drops unread inputs
    project_feeds = {name: value for name, value in project_feeds.items() if name in kept}

    def project_onnx() -> np.ndarray:
        return sessions["project"].run(["jetclass.probabilities"], project_feeds)[0]

    def project_weaver_onnx() -> np.ndarray:
        return sessions["project_weaver"].run(["softmax"], feeds)[0]

    with torch.inference_mode():  # weaver's trimmer starts cutting after 5 calls (any batch)
        for _ in range(6):
            weaver(*(tensors[k][:1] for k in ("pf_points", "pf_features", "pf_mask")))
    return {
        REFERENCE: weaver_torch,
        "project / PyTorch": project_torch,
        "weaver / ONNX Runtime": weaver_onnx,
        "project / ONNX Runtime (project signature)": project_onnx,
        "project / ONNX Runtime (weaver signature)": project_weaver_onnx,
    }


def run(batch_sizes: tuple[int, ...], rounds: int, budget: float) -> dict[str, Any]:
    torch.set_num_threads(2)
    model = load_pretrained(CHECKPOINT).eval()
    load_before = os.getloadavg()
    share = CpuShare()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        start = time.perf_counter()
        export_weaver_network(folder / "weaver.onnx")
        export_onnx(model, folder / "project.onnx")
        export_weaver_onnx(model, folder / "project_weaver.onnx")
        export_seconds = time.perf_counter() - start
        rows = []
        for size in batch_sizes:
            batch = jetclass_jets(model, size, seed=size)
            runners = _runners(model, folder, batch)
            reference = runners[REFERENCE]()  # the first calls double as warm-up
            differences = {
                name: float(np.abs(call() - reference).max()) for name, call in runners.items()
            }
            seconds: dict[str, list[float]] = {name: [] for name in runners}
            for _ in range(rounds):  # interleaved: a neighbour's burst hits every runtime alike
                for name, call in runners.items():
                    if size > 1:  # one call per round: a call is seconds long
                        seconds[name].append(timed(call, 0.0, 1, warmup=0))
                    else:
                        seconds[name].append(timed(call, budget, 20, warmup=2))
            base = statistics.median(seconds[REFERENCE])
            for name in runners:
                median = statistics.median(seconds[name])
                rows.append(
                    {
                        "implementation": name,
                        "batch_size": size,
                        "real_particles_mean": float(batch.mask.sum(1).float().mean()),
                        "max_abs_probability_diff_vs_weaver_torch": differences[name],
                        "latency_ms": 1e3 * median,
                        "latency_ms_rounds": [1e3 * s for s in seconds[name]],
                        "jets_per_s": size / median,
                        "throughput_ratio_vs_weaver_torch": base / median,
                    }
                )
    return {
        "what": "particlenet.jetclass-full (project) vs weaver-core ParticleNet + "
        "ParticleNet_full.pt, same jets",
        "command": "OMP_NUM_THREADS=2 python benchmarks/bench_weaver_particlenet.py",
        "threads": 2,
        "slots": SLOTS,
        "rounds": rounds,
        "timing": f"median of {rounds} interleaved rounds; a round is one call at B > 1 "
        f"(after a warm-up call), the median of >= 20 calls over {budget} s at B = 1 (after 2)",
        "cpu": cpu_name(),
        "load_average_1_5_15_before": list(load_before),
        "load_average_1_5_15_after": list(os.getloadavg()),
        "cpu_share": share.read(),
        "export_seconds_all_three": export_seconds,
        "torch": torch.__version__,
        "onnxruntime": __import__("onnxruntime").__version__,
        "results": rows,
    }


def table(payload: dict[str, Any]) -> str:
    lines = [
        "| implementation | batch | max abs Δp vs weaver | latency ms | jets/s "
        "| × weaver PyTorch |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in payload["results"]:
        lines.append(
            f"| {row['implementation']} | {row['batch_size']} | "
            f"{row['max_abs_probability_diff_vs_weaver_torch']:.1e} | {row['latency_ms']:.2f} | "
            f"{row['jets_per_s']:.0f} | {row['throughput_ratio_vs_weaver_torch']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="256,1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per B = 1 timing")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not WEIGHTS.is_file():
        print(f"bench_weaver_particlenet: {WEIGHTS} is not present", file=sys.stderr)
        return 1
    sizes = tuple(int(size) for size in args.batch_sizes.split(","))
    payload = run(sizes, args.rounds, args.budget)
    write_json(args.out, payload)
    print(table(payload))
    print(
        f"load average before {payload['load_average_1_5_15_before']}, after "
        f"{payload['load_average_1_5_15_after']}; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
