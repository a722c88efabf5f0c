"""Inference speed: PyTorch eager against ONNX Runtime on the same random jets.

Throughput is measured at a large batch (default 256 jets), latency at batch 1, on CPU with a
stated thread count, and on the GPU when PyTorch (and ONNX Runtime's CUDA provider) sees one.
The jets have ``N = 128`` particle slots with about 50 real particles, the shape of the
public datasets' padded inputs. Numbers are for comparing backends on one machine; the
harness in ``benchmarks/`` runs it over the backbone zoo.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from os import PathLike
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from foundation.data.batch import JetBatch
from foundation.export.graph import input_widths
from foundation.export.inputs import random_jets, to_numpy
from foundation.export.session import (
    check_finite_outputs,
    create_session,
    run_session,
    session_input_names,
)
from foundation.model import Model

CUDA_PROVIDER = "CUDAExecutionProvider"


@dataclass
class BenchResult:
    """One timing.

    Attributes:
        backend: ``"pytorch"`` or the label of an ONNX file (``"onnxruntime"``,
            ``"onnxruntime-int8"``...).
        device: ``"cpu"`` or ``"cuda"``.
        mode: ``"throughput"`` or ``"latency"``.
        batch_size: jets per call.
        threads: intra-op threads (CPU), None on GPU.
        jets_per_s: ``batch_size / median call time``.
        median_ms: median call time.
        p90_ms: 90th percentile of the call time.
        calls: timed calls.
        max_abs_diff: largest output difference from PyTorch on the same jets (0 for PyTorch).
    """

    backend: str
    device: str
    mode: str
    batch_size: int
    threads: int | None
    jets_per_s: float
    median_ms: float
    p90_ms: float
    calls: int
    max_abs_diff: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bench_jets(
    model: Model,
    batch_size: int = 256,
    num_particles: int = 128,
    mean_particles: float = 50.0,
    seed: int = 0,
) -> JetBatch:
    """Random jets of the model's input widths: ``N`` slots, about ``mean_particles`` real."""
    width, jet_width = input_widths(model)
    return random_jets(
        batch_size, num_particles, width, jet_width, mean_particles=mean_particles, seed=seed
    )


def first_jets(batch: JetBatch, count: int) -> JetBatch:
    """The first ``count`` jets of a batch (targets dropped)."""
    return replace(
        batch,
        particles=batch.particles[:count],
        mask=batch.mask[:count],
        vectors=batch.vectors[:count],
        jet=batch.jet[:count],
        targets={},
    )


def time_calls(
    call: Callable[[], object],
    *,
    min_calls: int = 5,
    min_seconds: float = 1.0,
    warmup: int = 1,
    synchronize: Callable[[], None] | None = None,
) -> list[float]:
    """Seconds per call: ``warmup`` untimed calls, then at least ``min_calls`` timed calls and
    at least ``min_seconds`` in all."""
    sync = synchronize or (lambda: None)
    for _ in range(warmup):
        call()
    sync()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - started < min_seconds:
        begin = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - begin)
    return times


def _result(
    backend: str, device: str, mode: str, batch_size: int, threads: int | None, times: list[float]
) -> BenchResult:
    median = statistics.median(times)
    return BenchResult(
        backend=backend,
        device=device,
        mode=mode,
        batch_size=batch_size,
        threads=threads,
        jets_per_s=batch_size / median,
        median_ms=1e3 * median,
        p90_ms=1e3 * float(np.percentile(times, 90)),
        calls=len(times),
    )


def _flat(outputs: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, np.ndarray]:
    return {f"{head}.{name}": to_numpy(v) for head, d in outputs.items() for name, v in d.items()}


def _max_difference(reference: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray]) -> float:
    shared = [name for name in actual if name in reference and reference[name].size]
    if not shared:
        return float("nan")
    return max(
        float(np.abs(actual[n].astype(np.float64) - reference[n].astype(np.float64)).max())
        for n in shared
    )


def _feeds(batch: JetBatch) -> dict[str, np.ndarray]:
    return {
        "particles": to_numpy(batch.particles),
        "vectors": to_numpy(batch.vectors),
        "mask": to_numpy(batch.mask),
        "jet": to_numpy(batch.jet),
    }


def run_benchmarks(
    model: Model,
    onnx_files: Mapping[str, str | PathLike[str]],
    *,
    heads: Sequence[str] | None = None,
    threads: int = 2,
    batch_size: int = 256,
    latency_batch_size: int = 1,
    num_particles: int = 128,
    mean_particles: float = 50.0,
    min_seconds: float = 1.0,
    min_calls: int = 5,
    gpu: bool | None = None,
    seed: int = 0,
) -> list[BenchResult]:
    """Time PyTorch eager and each ONNX file on the same jets.

    Args:
        model: the PyTorch model (eval mode is set here).
        onnx_files: ``{label: path}`` of full graphs exported from ``model`` (e.g.
            ``{"onnxruntime": "model.onnx", "onnxruntime-int8": "model.int8.onnx"}``).
        heads: the heads PyTorch runs (default: all; match the exported ones).
        threads: CPU intra-op threads of PyTorch and ONNX Runtime.
        batch_size: jets per call of the throughput runs.
        latency_batch_size: jets per call of the latency runs.
        num_particles: padded slots ``N``.
        mean_particles: typical real particles per jet.
        min_seconds: minimum timed seconds per measurement.
        min_calls: minimum timed calls per measurement.
        gpu: also time on the GPU (default: when ``torch.cuda.is_available()``).
        seed: seed of the random jets.

    Returns:
        One :class:`BenchResult` per backend, device and mode.
    """
    model.eval()
    names = list(model.heads) if heads is None else list(heads)
    jets = bench_jets(model, batch_size, num_particles, mean_particles, seed)
    cases = [("throughput", jets), ("latency", first_jets(jets, latency_batch_size))]
    gpu = torch.cuda.is_available() if gpu is None else gpu
    results: list[BenchResult] = []
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for mode, batch in cases:
            with torch.inference_mode():
                reference = _flat(model(batch, heads=names))
            results.append(
                _result(
                    "pytorch",
                    "cpu",
                    mode,
                    len(batch),
                    threads,
                    time_calls(
                        _pytorch_call(model, batch, names),
                        min_seconds=min_seconds,
                        min_calls=min_calls,
                    ),
                )
            )
            for label, path in onnx_files.items():
                session = create_session(path, threads=threads)
                results.append(
                    _onnx_result(
                        label,
                        "cpu",
                        mode,
                        session,
                        batch,
                        threads,
                        reference,
                        min_seconds,
                        min_calls,
                    )
                )
        if gpu:
            results += _gpu_results(model, names, onnx_files, cases, min_seconds, min_calls)
    finally:
        torch.set_num_threads(previous_threads)
    return results


def _pytorch_call(model: Model, batch: JetBatch, heads: list[str]) -> Callable[[], object]:
    def call() -> object:
        with torch.inference_mode():
            return model(batch, heads=heads)

    return call


def _onnx_result(
    label: str,
    device: str,
    mode: str,
    session: ort.InferenceSession,
    batch: JetBatch,
    threads: int | None,
    reference: Mapping[str, np.ndarray],
    min_seconds: float,
    min_calls: int,
) -> BenchResult:
    feeds = _feeds(batch)
    outputs = run_session(session, feeds)  # checks the feeds once
    check_finite_outputs(outputs, label)
    names = [node.name for node in session.get_outputs()]
    inputs = {name: feeds[name] for name in session_input_names(session)}
    times = time_calls(
        lambda: session.run(names, inputs), min_seconds=min_seconds, min_calls=min_calls
    )
    result = _result(label, device, mode, len(batch), threads, times)
    result.max_abs_diff = _max_difference(reference, outputs)
    return result


def _gpu_results(
    model: Model,
    names: list[str],
    onnx_files: Mapping[str, str | PathLike[str]],
    cases: Sequence[tuple[str, JetBatch]],
    min_seconds: float,
    min_calls: int,
) -> list[BenchResult]:
    """PyTorch (and ONNX Runtime with its CUDA provider, when installed) on the GPU."""
    import copy

    device = torch.device("cuda")
    gpu_model = copy.deepcopy(model).to(device).eval()
    results = []
    with_cuda = CUDA_PROVIDER in ort.get_available_providers()
    for mode, batch in cases:
        on_gpu = batch.to(device)
        with torch.inference_mode():
            reference = _flat(gpu_model(on_gpu, heads=names))
        times = time_calls(
            _pytorch_call(gpu_model, on_gpu, names),
            min_seconds=min_seconds,
            min_calls=min_calls,
            synchronize=torch.cuda.synchronize,
        )
        results.append(_result("pytorch", "cuda", mode, len(batch), None, times))
        if not with_cuda:
            continue
        for label, path in onnx_files.items():
            session = create_session(path, providers=[CUDA_PROVIDER, "CPUExecutionProvider"])
            results.append(
                _onnx_result(
                    label, "cuda", mode, session, batch, None, reference, min_seconds, min_calls
                )
            )
    return results


def format_table(results: Sequence[BenchResult]) -> str:
    """A plain-text table of benchmark results."""
    header = (
        "backend",
        "device",
        "mode",
        "batch",
        "threads",
        "jets/s",
        "median ms",
        "p90 ms",
        "max |diff|",
    )
    rows = [
        (
            r.backend,
            r.device,
            r.mode,
            str(r.batch_size),
            "-" if r.threads is None else str(r.threads),
            f"{r.jets_per_s:,.0f}",
            f"{r.median_ms:.3f}",
            f"{r.p90_ms:.3f}",
            f"{r.max_abs_diff:.1e}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i >= 3 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    )
