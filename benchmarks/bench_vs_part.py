"""ParT from ``weaver-core`` against the project's backbones, side by side in one process.

Every contender is a jet classifier (``JetBatch -> logits [B, 2]``) run on the same jets:

- ``weaver-part``: weaver-core's ``ParticleTransformer`` in its JetClass "full" configuration
  (17 particle features, 4 pair features, embedding (128, 512, 128), pair embedding (64, 64, 64),
  8 heads, 8 + 2 blocks, ``fc_params=[]``: 2.1 M parameters), behind a transposing adapter
  (``benchmarks/weaver_part.py``);
- each project backbone named by ``--names`` (registered names or globs) with a
  ``jet_classification`` head reduced to one linear layer, as ParT's ``fc_params=[]``.

The jets (:func:`harness.make_jets`) have ``--particles`` padded slots with
``--mean-particles`` real ones on average (σ = 15), packed first, zero padding, F = 17. Measured
per contender, in this order: parameters; forward FLOPs per jet (matmuls, convolutions,
attention); inference jets/s at ``--batch-size`` (eval mode, ``inference_mode``); latency at
batch 1 (one jet with exactly ``--mean-particles`` particles); training-step jets/s at
``--batch-size`` (forward, cross-entropy, backward, AdamW step, train mode: dropout on); peak
tensor memory of an inference call and of a training step (weights, gradients and optimizer
state included); on CPU, the same two speeds through ONNX Runtime (fp32 graph exported with the
TorchScript exporter, fed the same padded arrays: ONNX graphs compute every slot). Each timing
is the median of repeated calls after warm-up, for at least ``--budget`` seconds.

``--device cuda --dtype bfloat16`` times on the GPU under ``torch.autocast`` (synchronising
before reading the clock), and ``--loader-steps`` adds a loader-fed training run whose GPU idle
time is measured with CUDA events (the gap between the end of one step's work and the start
of the next: the time the GPU waits for the loader). ``--accuracy`` trains each model of
``--accuracy-names`` on the D1 jets with one shared loop (``benchmarks/d1_accuracy.py``) and
puts test AUC and 1/εB beside the speeds; ``--profile`` prints the top operations of an
inference call. Run by hand, never in tests::

    python benchmarks/bench_vs_part.py --threads 2 --out vs_part.json
    python benchmarks/bench_vs_part.py --accuracy --d1-files '/work/data/d1_top_8k/*.root' \\
        --cache-root /work/data/cache --out vs_part.json
    python benchmarks/bench_vs_part.py --device cuda --dtype bfloat16 --loader-steps 100 \\
        --out vs_part_gpu.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from harness import (
    CLOCKS,
    CpuShare,
    autocast,
    count_flops,
    cpu_name,
    make_jets,
    peak_memory,
    select_backbones,
    timed,
    write_json,
)
from torch import nn

from foundation.data.batch import JetBatch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # synthetic.py
from d1_accuracy import DEFAULT_RECIPE, d1_data, physics_scores, predict, train_classifier
from weaver_part import WeaverParT, export_weaver_onnx, weaver_available

REFERENCE = "weaver-part"
DEFAULT_NAMES = ("jetformer-s", "jetformer-tiny")
EVAL_SPLITS = ("val", "test")
DEFAULT_ACCURACY_NAMES = (REFERENCE, "jetformer-s")
DTYPES = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}
FEATURE_NAMES = tuple(f"feature_{index}" for index in range(17))


# ------------------------------------------------------------------------------ contenders
class ProjectClassifier(nn.Module):
    """A registered backbone with a linear ``jet_classification`` head, returning logits.

    Args:
        name: registered backbone name.
        in_features: particle features ``F``.
        num_classes: logits per jet (a softmax head, as ParT's).
        **backbone_kwargs: constructor arguments of the backbone.

    Shapes:
        - batch.particles: ``[B, N, F]``; output: ``[B, num_classes]``
    """

    def __init__(
        self, name: str, in_features: int = 17, num_classes: int = 2, **backbone_kwargs: Any
    ) -> None:
        super().__init__()
        from foundation.model import Model

        labels = [f"class_{index}" for index in range(num_classes)]
        head = {"type": "jet_classification", "label_names": labels, "binary": False, "hidden": []}
        self.model = Model.create(
            name, {"in_features": in_features, **backbone_kwargs}, {"top": head}
        )

    def forward(self, batch: JetBatch) -> torch.Tensor:
        return self.model(batch)["top"]["logits"]


def _export_project(classifier: ProjectClassifier, path: Path) -> Path:
    from foundation.export import export_onnx
    from foundation.export.parity import ParityConfig
    from foundation.hub import FeatureSchema

    model = classifier.model
    width = model.backbone.config["in_features"]
    names = FEATURE_NAMES[:width] if width <= len(FEATURE_NAMES) else None
    schema = FeatureSchema(names or tuple(f"feature_{i}" for i in range(width)))
    config = ParityConfig(counts=(0, 1, 16), batch_sizes=(1, 3), scattered=False)
    export_onnx(model, path, feature_schema=schema, parity_config=config, overwrite=True)
    return path


@dataclass
class Contender:
    """One model of the comparison: a classifier and how to export it to ONNX."""

    name: str
    model: nn.Module
    export: Callable[[Path], Path]
    config: dict[str, Any] = field(default_factory=dict)


def build_contender(
    name: str,
    in_features: int = 17,
    num_classes: int = 2,
    part_overrides: dict[str, Any] | None = None,
    backbone_overrides: dict[str, Any] | None = None,
    seed: int = 0,
) -> Contender:
    """``weaver-part`` or a registered backbone, with fresh seeded weights.

    Args:
        name: ``"weaver-part"`` or a registered backbone name.
        in_features: particle features ``F``.
        num_classes: logits per jet.
        part_overrides: weaver ParT constructor arguments replacing the JetClass-full ones
            (tests build a small ParT this way).
        backbone_overrides: constructor arguments of the project backbone.
        seed: the ``torch.manual_seed`` before building.
    """
    torch.manual_seed(seed)
    if name == REFERENCE:
        part = WeaverParT(num_classes, input_dim=in_features, **(part_overrides or {}))
        return Contender(name, part, lambda path: export_weaver_onnx(part, path), part.config)
    classifier = ProjectClassifier(name, in_features, num_classes, **(backbone_overrides or {}))
    config = dict(classifier.model.backbone.config)
    return Contender(name, classifier, lambda path: _export_project(classifier, path), config)


# ------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class Settings:
    """What every measurement shares."""

    device: str = "cpu"
    dtype: str = "float32"
    threads: int = 2
    batch_size: int = 256
    particles: int = 128
    mean_particles: float = 50.0
    features: int = 17
    budget: float = 1.0
    min_repeats: int = 3
    clock: str = "wall"
    onnx_trim: bool = False

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return DTYPES[self.dtype]

    @property
    def synchronize(self) -> Callable[[], None] | None:
        return torch.cuda.synchronize if self.device.startswith("cuda") else None


def benchmark_jets(settings: Settings) -> tuple[JetBatch, JetBatch]:
    """The throughput batch and the latency jet (exactly ``mean_particles`` real particles)."""
    jets = make_jets(
        settings.batch_size, settings.particles, settings.mean_particles, settings.features, 0
    )
    one = make_jets(1, settings.particles, settings.mean_particles, settings.features, 1)
    count = min(settings.particles, round(settings.mean_particles))
    single = JetBatch(
        particles=one.particles,
        mask=torch.arange(settings.particles).unsqueeze(0) < count,
        vectors=one.vectors,
        jet=one.jet,
    )
    return jets, single


# ------------------------------------------------------------------------------ PyTorch
def measure_torch(contender: Contender, settings: Settings) -> dict[str, Any]:
    """Parameters, FLOPs, inference, latency, training and peak memory of one contender."""
    device = torch.device(settings.device)
    model = contender.model.to(device)
    jets, single = (batch.to(device) for batch in benchmark_jets(settings))
    labels = (torch.arange(len(jets), device=device) % 2).long()
    dtype = settings.autocast_dtype
    clock = CLOCKS[settings.clock]
    sync = settings.synchronize

    def run_timed(step: Callable[[], object], warmup: int = 1) -> float:
        return timed(
            step, settings.budget, settings.min_repeats, clock, warmup=warmup, synchronize=sync
        )

    model.eval()
    row: dict[str, Any] = {
        "name": contender.name,
        "params": sum(p.numel() for p in model.parameters()),
        "flops_per_jet": count_flops(model, jets),
    }

    def infer(batch: JetBatch) -> Callable[[], object]:
        def call() -> object:
            with torch.inference_mode(), autocast(device, dtype):
                return model(batch)

        return call

    row["infer_jets_per_s"] = len(jets) / run_timed(infer(jets))
    row["latency_ms"] = 1e3 * run_timed(infer(single), warmup=3)
    row["infer_ms"] = 1e3 * len(jets) / row["infer_jets_per_s"]
    row["infer_peak_mib"] = _mib(peak_memory(infer(jets), device))

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, dtype):
            logits = model(jets)
        F.cross_entropy(logits.float(), labels).backward()
        optimizer.step()

    row["train_jets_per_s"] = len(jets) / run_timed(train_step)
    row["train_peak_mib"] = _mib(peak_memory(train_step, device))
    optimizer.zero_grad(set_to_none=True)
    model.eval()
    return row


def _mib(size: int | None) -> float | None:
    return None if size is None else size / 2**20


# ------------------------------------------------------------------------------ ONNX Runtime
def _feeds(batch: JetBatch) -> dict[str, np.ndarray]:
    return {
        "particles": batch.particles.numpy(),
        "vectors": batch.vectors.numpy(),
        "mask": batch.mask.numpy(),
        "jet": batch.jet.numpy(),
    }


def measure_onnx(
    contender: Contender, settings: Settings, folder: Path, profile: bool = False
) -> dict[str, Any]:
    """Export (fp32, TorchScript exporter), then ONNX Runtime throughput and latency on CPU.

    The largest difference from PyTorch's class probabilities on the throughput batch is
    reported as ``onnx_max_abs_diff``. An export failure is reported, not raised. With
    ``profile``, ``onnx_profile`` holds the top operator types of the throughput call. With
    ``settings.onnx_trim`` the graphs get the jets cut to the batch's last real particle (as
    eager PyTorch does inside the models) instead of all ``N`` slots.
    """
    from foundation.export.session import create_session, run_session

    model = contender.model.cpu().eval()
    jets, single = benchmark_jets(settings)
    if settings.onnx_trim:
        jets, single = jets.trimmed(), single.trimmed()
    path = folder / f"{contender.name}.onnx"
    started = time.perf_counter()
    try:
        contender.export(path)
    except Exception as error:  # a benchmark reports, never crashes on this
        message = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
        print(f"  {contender.name}: ONNX export failed: {message}", file=sys.stderr)
        return {"onnx_error": message}
    export_seconds = time.perf_counter() - started
    session = create_session(path, threads=settings.threads)
    feeds, one = _feeds(jets), _feeds(single)
    outputs = run_session(session, feeds)
    probabilities = next(value for name, value in outputs.items() if "probabilit" in name)
    with torch.inference_mode():
        reference = torch.softmax(model(jets).float(), dim=-1).numpy()
    clock = CLOCKS[settings.clock]
    throughput = timed(
        lambda: run_session(session, feeds),
        settings.budget,
        settings.min_repeats,
        clock,
        warmup=2,
    )
    latency = timed(
        lambda: run_session(session, one),
        settings.budget,
        settings.min_repeats,
        clock,
        warmup=3,
    )
    result: dict[str, Any] = {
        "onnx_infer_jets_per_s": len(jets) / throughput,
        "onnx_latency_ms": 1e3 * latency,
        "onnx_max_abs_diff": float(np.abs(probabilities - reference).max()),
        "onnx_export_s": export_seconds,
        "onnx_mib": path.stat().st_size / 2**20,
    }
    if profile:
        result["onnx_profile"] = profile_onnx(path, feeds, settings.threads, folder)
    return result


def profile_onnx(
    path: Path, feeds: dict[str, np.ndarray], threads: int, folder: Path, top: int = 12
) -> list[dict]:
    """Top ONNX operator types by time over 2 calls (ONNX Runtime's own profiler)."""
    import json as json_module

    from foundation.export.session import create_session, session_input_names

    session = create_session(
        path, threads=threads, profile_prefix=folder / f"{path.stem}-ort-profile"
    )
    wanted = set(session_input_names(session))
    inputs = {name: value for name, value in feeds.items() if name in wanted}
    session.run(None, inputs)  # warm-up, profiled too: skipped below by keeping the last 2 runs
    for _ in range(2):
        session.run(None, inputs)
    trace = json_module.loads(Path(session.end_profiling()).read_text())
    runs = [e for e in trace if e.get("name") == "model_run"]
    start = runs[-2]["ts"] if len(runs) >= 2 else 0
    totals: dict[str, list[float]] = {}
    for event in trace:
        if event.get("cat") != "Node" or event.get("ts", 0) < start:
            continue
        if not event.get("name", "").endswith("_kernel_time"):
            continue
        op = event.get("args", {}).get("op_name", "?")
        entry = totals.setdefault(op, [0.0, 0])
        entry[0] += event.get("dur", 0)
        entry[1] += 1
    total = sum(value[0] for value in totals.values()) or 1.0
    ranked = sorted(totals.items(), key=lambda item: item[1][0], reverse=True)[:top]
    return [
        {"op": op, "calls": count // 2, "ms_per_call": dur / 1e3 / 2, "share": dur / total}
        for op, (dur, count) in ranked
    ]


# ------------------------------------------------------------------------------ loader-fed run
def synthetic_cache(folder: Path, jets: int, particles: int, mean_particles: float) -> Path:
    """A cache of random top/QCD-labelled jets (``tests/synthetic.py``), for the loader."""
    from synthetic import random_records

    from foundation.data.cache import write_cache
    from foundation.data.schema import TOP_LABELS

    records = random_records(jets, mean_particles, seed=0, label_names=TOP_LABELS)
    write_cache(records, folder, features="full", max_particles=particles)
    return folder


def make_cache_loader(
    cache: Path, batch_size: int, workers: int, pin_memory: bool = False
) -> torch.utils.data.DataLoader:
    """Shuffled batches from a cache folder, normalized as in training."""
    from foundation.data.features import resolve_feature_names
    from foundation.data.loading import JetCacheDataset, fit_cache_normalizers, make_loader

    features = resolve_feature_names("full")
    raw = JetCacheDataset(cache, features=features)
    particles, jet = fit_cache_normalizers(raw, max_jets=20_000)
    dataset = JetCacheDataset(cache, features=features, normalizer=particles, jet_normalizer=jet)
    return make_loader(
        dataset,
        batch_size,
        shuffle=True,
        seed=0,
        drop_last=True,
        num_workers=workers,
        pin_memory=pin_memory,
    )


def _endless(loader: torch.utils.data.DataLoader) -> Iterator[JetBatch]:
    epoch = 0
    while True:
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def loader_fed_run(
    contender: Contender,
    loader: torch.utils.data.DataLoader,
    settings: Settings,
    steps: int,
    warmup: int = 3,
) -> dict[str, Any]:
    """Train ``steps`` steps on batches from ``loader``; how long the device waited for data.

    ``loader_wait_fraction``: share of the wall time the host spent getting the next batch
    (and copying it to the device). ``gpu_idle_fraction`` (CUDA only): share of the GPU's time
    span with no work queued between steps, from CUDA events recorded around each step; the
    GPU is idle there because the next step could not start before its batch arrived.
    Labels are QCD (class 0) against the rest, a stand-in loss.
    """
    device = torch.device(settings.device)
    cuda = device.type == "cuda"
    model = contender.model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = _endless(loader)

    def step(batch: JetBatch) -> None:
        labels = (batch.targets["label"] > 0).long()
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, settings.autocast_dtype):
            logits = model(batch)
        F.cross_entropy(logits.float(), labels).backward()
        optimizer.step()

    for _ in range(warmup):
        step(next(batches).to(device))
    if cuda:
        torch.cuda.synchronize(device)
    events: list[tuple[Any, Any]] = []
    waited = 0.0
    jets = 0
    started = time.perf_counter()
    for _ in range(steps):
        begin_wait = time.perf_counter()
        batch = next(batches).to(device, non_blocking=True)
        waited += time.perf_counter() - begin_wait
        if cuda:
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
        step(batch)
        if cuda:
            end.record()
            events.append((begin, end))
        jets += len(batch)
    if cuda:
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - started
    result: dict[str, Any] = {
        "name": contender.name,
        "steps": steps,
        "batch_size": getattr(loader.sampler, "batch_size", None),
        "workers": loader.num_workers,
        "jets_per_s": jets / wall,
        "loader_wait_fraction": waited / wall,
    }
    if cuda and events:
        span = events[0][0].elapsed_time(events[-1][1])
        gaps = sum(events[i][1].elapsed_time(events[i + 1][0]) for i in range(len(events) - 1))
        result["gpu_idle_fraction"] = max(0.0, gaps) / span if span > 0 else float("nan")
    else:
        result["gpu_idle_fraction"] = result["loader_wait_fraction"]
    optimizer.zero_grad(set_to_none=True)
    return result


# ------------------------------------------------------------------------------ profile
def profile_inference(contender: Contender, settings: Settings, top: int = 12) -> list[dict]:
    """Top operations by self time of a few inference calls (``torch.profiler``)."""
    from torch.profiler import ProfilerActivity, profile

    device = torch.device(settings.device)
    model = contender.model.to(device).eval()
    jets, _ = benchmark_jets(settings)
    jets = jets.to(device)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with torch.inference_mode(), autocast(device, settings.autocast_dtype):
        model(jets)
        with profile(activities=activities) as prof:
            for _ in range(3):
                model(jets)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key, 0.0), reverse=True)
    total = sum(getattr(e, key, 0.0) for e in events) or 1.0
    return [
        {
            "op": event.key,
            "calls": event.count // 3,
            "ms_per_call": getattr(event, key, 0.0) / 1e3 / 3,
            "share": getattr(event, key, 0.0) / total,
        }
        for event in events[:top]
    ]


def format_profile(name: str, rows: list[dict]) -> str:
    lines = [f"{name}: top operations of one throughput call (self time)"]
    for row in rows:
        lines.append(
            f"  {row['op'][:44]:<44} {row['calls']:>6} calls {row['ms_per_call']:>9.2f} ms "
            f"{100 * row['share']:>5.1f} %"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------ accuracy
def run_accuracy(
    names: Sequence[str],
    data: Any,
    *,
    epochs: int,
    lr: float,
    settings: Settings,
    seed: int = 0,
    part_overrides: dict[str, Any] | None = None,
    backbone_overrides: dict[str, Any] | None = None,
    eval_splits: Sequence[str] = EVAL_SPLITS,
) -> dict[str, dict[str, Any]]:
    """Train each model with the same loop, jets, epochs and optimizer; score held-out jets.

    The scores are taken by default on the validation and test splits together
    (:data:`EVAL_SPLITS`): training uses neither (no early stopping, no model selection), and
    the background rejection at εS = 0.3 needs every background jet there is. ``("test",)``
    scores the jets a data-efficiency study scores.

    Args:
        names: contenders to train.
        data: a prepared :class:`~foundation.training.datamodule.JetDataModule` with
            ``label`` targets (or anything with ``loader(split, train=...)``).
        epochs: passes over the training jets.
        lr: peak learning rate.
        settings: device and dtype.
        seed: seed of the weights (the data module's own seed shuffles).
    """
    device = torch.device(settings.device)
    results = {}
    for name in names:
        contender = build_contender(
            name, settings.features, 2, part_overrides, backbone_overrides, seed=seed
        )
        model = contender.model.to(device)
        loader = data.loader("train", train=True)
        torch.manual_seed(seed)

        def batches(epoch: int, loader: Any = loader) -> Any:
            loader.sampler.set_epoch(epoch)
            return loader

        timing = train_classifier(
            model,
            batches,
            epochs=epochs,
            steps_per_epoch=len(loader),
            lr=lr,
            device=device,
            autocast_dtype=settings.autocast_dtype,
        )
        scored = [
            predict(model, data.loader(split), device, settings.autocast_dtype)
            for split in eval_splits
        ]
        scores = np.concatenate([s for s, _ in scored])
        labels = np.concatenate([y for _, y in scored])
        results[name] = {
            **physics_scores(scores, labels),
            "eval_splits": list(eval_splits),
            **timing,
            "train_jets": len(data.indices["train"]),
            "epochs": epochs,
        }
        print(
            f"  {name}: AUC {results[name]['auc']:.4f}, 1/εB(0.3) "
            f"{results[name]['rejection_0.3']:.1f} on {len(labels)} held-out jets; trained in "
            f"{timing['train_seconds']:.0f} s ({timing['train_jets_per_s']:.0f} jets/s)",
            flush=True,
        )
        del contender, model
        gc.collect()
    return results


# ------------------------------------------------------------------------------ table
SPEED_COLUMNS = (
    ("train_jets_per_s", "train j/s"),
    ("infer_jets_per_s", "infer j/s"),
    ("onnx_infer_jets_per_s", "ORT j/s"),
    ("latency_ms", "lat ms"),
    ("onnx_latency_ms", "ORT lat ms"),
    ("train_peak_mib", "train MiB"),
    ("infer_peak_mib", "infer MiB"),
    ("flops_per_jet", "MFLOP/jet"),
)


def with_ratios(rows: list[dict[str, Any]], reference: str = REFERENCE) -> list[dict[str, Any]]:
    """Add ``<metric>_ratio = value / reference value`` to every row (None where missing)."""
    base = next((row for row in rows if row["name"] == reference), None)
    for row in rows:
        for key, _ in SPEED_COLUMNS:
            value = row.get(key)
            ref = None if base is None else base.get(key)
            row[f"{key}_ratio"] = value / ref if value is not None and ref else None
    return rows


def _cell(value: float | None, key: str) -> str:
    if value is None:
        return "-"
    if key == "flops_per_jet":
        return f"{value / 1e6:,.1f}"
    if key.endswith(("_ms", "_mib")):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,.0f}"


def format_table(rows: list[dict[str, Any]], accuracy: dict[str, dict[str, Any]]) -> str:
    """Values, then ratios to ParT (value ÷ ParT's: > 1 is faster for j/s, < 1 is cheaper for
    latency, memory and FLOPs), with D1 accuracy where it was measured."""
    width = max(len(row["name"]) for row in rows) + 2
    head = f"{'model':<{width}}{'params':>10}" + "".join(f"{t:>12}" for _, t in SPEED_COLUMNS)
    acc_head = f"{'D1 AUC':>16}{'1/εB@0.3':>14}"
    lines = ["values", head + acc_head, "-" * (len(head) + len(acc_head))]
    for row in rows:
        cells = "".join(f"{_cell(row.get(key), key):>12}" for key, _ in SPEED_COLUMNS)
        score = accuracy.get(row["name"])
        acc = (
            f"{score['auc']:>9.4f}±{score['auc_std']:.4f}"
            f"{score['rejection_0.3']:>8.1f}±{score['rejection_0.3_std']:<5.1f}"
            if score
            else f"{'-':>16}{'-':>14}"
        )
        lines.append(f"{row['name']:<{width}}{row['params']:>10,}{cells}{acc}")
    lines += ["", f"ratios to {REFERENCE} (value ÷ ParT's)", head, "-" * len(head)]
    for row in rows:
        cells = "".join(
            f"{'-' if row.get(f'{key}_ratio') is None else format(row[f'{key}_ratio'], '.2f'):>12}"
            for key, _ in SPEED_COLUMNS
        )
        lines.append(f"{row['name']:<{width}}{'':>10}{cells}")
    return "\n".join(lines)


def format_accuracy(accuracy: dict[str, dict[str, Any]]) -> str:
    """D1 scores (± bootstrap standard deviation) and the training speed on the D1 jets."""
    lines = [
        f"{'D1 model':<16}{'AUC':>16}{'1/εB@0.3':>16}{'1/εB@0.5':>16}{'train j/s':>11}"
        f"{'jets':>7}{'epochs':>8}"
    ]
    for name, score in accuracy.items():
        lines.append(
            f"{name:<16}{score['auc']:>9.4f}±{score['auc_std']:.4f}"
            f"{score['rejection_0.3']:>10.1f}±{score['rejection_0.3_std']:<5.1f}"
            f"{score['rejection_0.5']:>10.1f}±{score['rejection_0.5_std']:<5.1f}"
            f"{score['train_jets_per_s']:>11.0f}{score['eval_jets']:>7}{score['epochs']:>8}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------ main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument(
        "--names",
        nargs="+",
        default=list(DEFAULT_NAMES),
        help="project backbones (names or globs) beside weaver-part (default: %(default)s)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    parser.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        default="float32",
        help="autocast dtype of PyTorch runs (default: %(default)s)",
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads, torch and ORT")
    parser.add_argument("--batch-size", type=int, default=256, help="throughput batch size")
    parser.add_argument("--particles", type=int, default=128, help="padded particle slots N")
    parser.add_argument("--mean-particles", type=float, default=50.0, help="mean real particles")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per timing")
    parser.add_argument("--min-repeats", type=int, default=3, help="least timed calls")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall seconds, or this process's CPU seconds (shared machines)",
    )
    parser.add_argument(
        "--no-onnx",
        dest="onnx",
        action="store_false",
        help="skip ONNX Runtime (default: on for --device cpu)",
    )
    parser.add_argument("--profile", action="store_true", help="top ops of inference")
    parser.add_argument(
        "--onnx-trim",
        action="store_true",
        help="feed ONNX Runtime the jets cut to the batch's last real particle (default: all N)",
    )
    parser.add_argument(
        "--loader-steps",
        type=int,
        default=None,
        help="loader-fed training steps per model (default: 50 on cuda, 0 on cpu)",
    )
    parser.add_argument("--loader-workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument(
        "--loader-cache",
        type=Path,
        help="cache folder to load from (default: a synthetic cache of 8192 jets)",
    )
    parser.add_argument("--accuracy", action="store_true", help="train and score on D1")
    parser.add_argument(
        "--no-speed", dest="speed", action="store_false", help="skip the speed measurements"
    )
    parser.add_argument(
        "--accuracy-names",
        nargs="+",
        default=list(DEFAULT_ACCURACY_NAMES),
        help="models trained on D1 (default: %(default)s)",
    )
    parser.add_argument(
        "--d1-files",
        nargs="+",
        default=["/work/data/d1_top_8k/*.root"],
        help="D1 ROOT files or globs",
    )
    parser.add_argument(
        "--d1-cache", help="an existing D1 cache folder instead of --d1-files (same jets, splits)"
    )
    parser.add_argument("--cache-root", default="data/cache", help="parent of the D1 cache")
    parser.add_argument(
        "--recipe",
        default=str(DEFAULT_RECIPE),
        help="recipe whose data section defines the jets (default D1, recipes/top_tagging.yaml; "
        "e.g. recipes/quark_gluon.yaml for D2 with its files in --d1-files)",
    )
    parser.add_argument("--train-size", type=int, default=5000, help="D1 training jets")
    parser.add_argument(
        "--subsample-seed",
        type=int,
        default=None,
        help="offset of the label-subsample seed: K picks the training jets of seed K of "
        "`foundation study data-efficiency` (default: the recipe's subsample)",
    )
    parser.add_argument(
        "--eval-splits",
        type=lambda text: tuple(part for part in text.split(",") if part),
        default=EVAL_SPLITS,
        help="splits scored, comma-separated (default val,test; 'test' as a study scores)",
    )
    parser.add_argument("--epochs", type=int, default=3, help="D1 training epochs")
    parser.add_argument("--accuracy-batch-size", type=int, default=128, help="D1 batch size")
    parser.add_argument("--lr", type=float, default=1e-3, help="D1 peak learning rate")
    parser.add_argument("--seed", type=int, default=0, help="weights and shuffling seed")
    parser.add_argument(
        "--part-overrides",
        type=json.loads,
        default={},
        help="JSON of weaver ParT arguments replacing the JetClass-full ones (e.g. for a "
        "smaller ParT: '{\"num_layers\": 4}')",
    )
    parser.add_argument(
        "--backbone-overrides",
        type=json.loads,
        default={},
        help="JSON of constructor arguments applied to every project backbone (e.g. another "
        'size: \'{"num_layers": 6, "num_heads": 8}\')',
    )
    return parser.parse_args(argv)


def _share(row: dict[str, Any]) -> str:
    share = row["cpu_share"]
    text = f"own CPU {share['own_cpu_s'] / share['wall_s']:.2f} cores"
    if share["others_s"] is not None:
        text += (
            f", other processes {share['others_s'] / share['wall_s']:.2f} cores, "
            f"steal {share['steal_s'] / share['wall_s']:.2f} cores"
        )
    return text


def _machine(settings: Settings) -> dict[str, Any]:
    import onnxruntime

    info: dict[str, Any] = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": settings.threads,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "load_average": os.getloadavg(),
    }
    try:
        from importlib.metadata import version

        info["weaver_core"] = version("weaver-core")
    except Exception:
        info["weaver_core"] = None
    if settings.device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(settings.device))
    return info


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if not weaver_available():
        raise SystemExit("weaver-core is not installed: pip install weaver-core")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no GPU is visible to PyTorch")
    torch.set_num_threads(args.threads)
    settings = Settings(
        device=args.device,
        dtype=args.dtype,
        threads=args.threads,
        batch_size=args.batch_size,
        particles=args.particles,
        mean_particles=args.mean_particles,
        budget=args.budget,
        min_repeats=args.min_repeats,
        clock=args.clock,
        onnx_trim=args.onnx_trim,
    )
    names = [REFERENCE] + [n for n in select_backbones(args.names) if n != REFERENCE]
    if not args.speed:
        names = []
    onnx = args.onnx and settings.device == "cpu"
    loader_steps = args.loader_steps
    if loader_steps is None:
        loader_steps = 50 if settings.device.startswith("cuda") else 0
    machine = _machine(settings)
    print(
        f"{machine['cpu']} ({machine['cores']} cores), {settings.threads} thread(s), torch "
        f"{machine['torch']}, onnxruntime {machine['onnxruntime']}, weaver-core "
        f"{machine['weaver_core']}; device {settings.device}"
        f"{' (' + machine['gpu'] + ')' if 'gpu' in machine else ''}, dtype {settings.dtype}; "
        f"F={settings.features}, N={settings.particles} slots, ~{settings.mean_particles:g} real "
        f"particles; batch {settings.batch_size} (throughput), 1 (latency); {settings.clock} "
        f"clock",
        flush=True,
    )
    rows, profiles, loader_rows = [], {}, []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-vs-part-") as scratch:
        loader = None
        if loader_steps:
            cache = args.loader_cache or synthetic_cache(
                Path(scratch) / "cache", 8192, settings.particles, settings.mean_particles
            )
            loader = make_cache_loader(
                cache,
                settings.batch_size,
                args.loader_workers,
                pin_memory=settings.device.startswith("cuda"),
            )
        for name in names:
            share = CpuShare()
            contender = build_contender(
                name,
                settings.features,
                part_overrides=args.part_overrides,
                backbone_overrides=args.backbone_overrides,
                seed=args.seed,
            )
            row = measure_torch(contender, settings)
            if onnx:
                row.update(measure_onnx(contender, settings, Path(scratch), args.profile))
                if "onnx_profile" in row:
                    profiles[f"{name} (ONNX Runtime)"] = row.pop("onnx_profile")
            if args.profile:
                profiles[name] = profile_inference(contender, settings)
            if loader is not None:
                loader_rows.append(loader_fed_run(contender, loader, settings, loader_steps))
            row["cpu_share"] = share.read()
            rows.append(row)
            print(
                f"  {name}: done ({time.perf_counter() - started:.0f} s; {_share(row)})", flush=True
            )
            del contender
            gc.collect()
            if settings.device.startswith("cuda"):
                torch.cuda.empty_cache()
    accuracy: dict[str, dict[str, Any]] = {}
    if args.accuracy:
        data = d1_data(
            args.d1_files,
            cache=args.d1_cache,
            cache_root=args.cache_root,
            train_size=args.train_size,
            batch_size=args.accuracy_batch_size,
            seed=args.seed,
            recipe=args.recipe,
            subsample_seed=args.subsample_seed,
        )
        print(
            f"{Path(args.recipe).stem}: {len(data.indices['train'])} training jets, "
            f"{sum(len(data.indices[split]) for split in args.eval_splits)} held-out jets "
            f"({' + '.join(args.eval_splits)}), {args.epochs} epochs, batch "
            f"{args.accuracy_batch_size}, AdamW lr {args.lr:g}, seed {args.seed}",
            flush=True,
        )
        accuracy = run_accuracy(
            args.accuracy_names,
            data,
            epochs=args.epochs,
            lr=args.lr,
            settings=settings,
            seed=args.seed,
            part_overrides=args.part_overrides,
            backbone_overrides=args.backbone_overrides,
            eval_splits=args.eval_splits,
        )
    if rows:
        with_ratios(rows)
        print(format_table(rows, accuracy))
    if accuracy:
        print(format_accuracy(accuracy))
    for name, table in profiles.items():
        print(format_profile(name, table))
    for row in loader_rows:
        print(
            f"loader-fed {row['name']}: {row['jets_per_s']:,.0f} jets/s, loader wait "
            f"{100 * row['loader_wait_fraction']:.1f} %, device idle "
            f"{100 * row['gpu_idle_fraction']:.1f} % ({row['steps']} steps, "
            f"{row['workers']} workers)"
        )
    payload = {
        "machine": machine,
        "settings": settings.__dict__,
        "part_overrides": args.part_overrides,
        "backbone_overrides": args.backbone_overrides,
        "results": rows,
        "accuracy": accuracy,
        "accuracy_setup": {
            "files": None if args.d1_cache else args.d1_files,
            "cache": args.d1_cache,
            "train_size": args.train_size,
            "epochs": args.epochs,
            "batch_size": args.accuracy_batch_size,
            "lr": args.lr,
            "seed": args.seed,
            "recipe": args.recipe,
            "subsample_seed": args.subsample_seed,
            "eval_splits": list(args.eval_splits),
        }
        if args.accuracy
        else None,
        "profiles": profiles,
        "loader": loader_rows,
        "seconds": time.perf_counter() - started,
    }
    write_json(args.out, payload)
    print(f"wrote {args.out} ({payload['seconds']:.0f} s)")
    return payload


if __name__ == "__main__":
    main()
