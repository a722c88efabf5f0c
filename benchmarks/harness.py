"""Helpers shared by the performance harnesses in ``benchmarks/`` (run by hand, never in tests).

Not part of the installed package: the harnesses import it as ``harness`` (their own folder is
on ``sys.path`` when run as ``python benchmarks/<name>.py``).

- :func:`make_jets`: random jets of the JetClass shape (packed real particles, zero padding).
- :func:`timed`: median seconds per call of a step, on a wall or CPU clock, with warm-up calls
  and an optional device synchronisation (CUDA kernels run asynchronously).
- :func:`count_flops`: forward FLOPs per jet (matmuls, convolutions, attention).
- :func:`peak_memory`: peak bytes held by tensors while a step runs.
- :func:`autocast`: mixed precision on a device, or nothing.
- :class:`CpuShare`: how much of the machine's CPU time went to this process, to other
  processes and to the hypervisor (steal) while a measurement ran, to flag shared-machine noise.
- :func:`write_json`, :func:`cpu_name`, :func:`select_backbones`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from foundation.data.batch import JetBatch
from foundation.io import write_json as _write_json
from foundation.models.registry import list_backbones

CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
"""``wall``: elapsed seconds; ``cpu``: CPU seconds of this process (all its threads)."""


def make_jets(
    batch_size: int, slots: int, mean_particles: float, features: int, seed: int
) -> JetBatch:
    """Random jets with the JetClass shape: packed real particles, zero padding, physical 4-vectors.

    Counts are Gaussian around ``mean_particles`` (σ = 15), clipped to ``[1, slots]``.

    Shapes:
        - output.particles: ``[batch_size, slots, features]``; output.mask: ``[batch_size, slots]``
    """
    generator = torch.Generator().manual_seed(seed)
    counts = (mean_particles + 15.0 * torch.randn(batch_size, generator=generator)).round()
    return jets_with_counts(counts.clamp(1, slots).long(), slots, features, generator)


def jets_with_counts(
    counts: torch.Tensor, slots: int, features: int, generator: torch.Generator
) -> JetBatch:
    """Random jets with ``counts[i]`` real particles in front (physical 4-vectors), zero padding.

    Shapes:
        - counts: ``[B]`` int64; output.particles: ``[B, slots, features]``; output.mask:
          ``[B, slots]``
    """
    batch_size = len(counts)
    mask = torch.arange(slots).expand(batch_size, slots) < counts.unsqueeze(1)
    pt = 1.0 + 100.0 * torch.rand(batch_size, slots, generator=generator)
    eta = 0.3 * torch.randn(batch_size, slots, generator=generator)
    phi = 0.3 * torch.randn(batch_size, slots, generator=generator)
    vectors = torch.stack(
        [pt * phi.cos(), pt * phi.sin(), pt * torch.sinh(eta), pt * torch.cosh(eta)], dim=-1
    )
    keep = mask.unsqueeze(-1)
    particles = torch.randn(batch_size, slots, features, generator=generator)
    return JetBatch(
        particles=particles * keep,
        mask=mask,
        vectors=vectors * keep,
        jet=torch.zeros(batch_size, 0),
    )


def timed(
    step: Callable[[], object],
    budget: float,
    min_repeats: int,
    clock: Callable[[], float] = time.perf_counter,
    *,
    warmup: int = 1,
    synchronize: Callable[[], None] | None = None,
) -> float:
    """Median seconds (of ``clock``) per call of ``step``.

    ``warmup`` untimed calls, then timed calls until ``budget`` wall seconds have passed and at
    least ``min_repeats`` calls were made. ``synchronize`` (e.g. ``torch.cuda.synchronize``) is
    called before the clock is read at both ends of every call.
    """
    sync = synchronize or (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < budget:
        begin = clock()
        step()
        sync()
        times.append(clock() - begin)
    return statistics.median(times)


@contextlib.contextmanager
def _frozen(model: object) -> Iterator[None]:
    """Parameters of ``model`` (a module) do not require gradients inside the block.

    Module-tracking modes (flop counting) hook every tensor that requires gradients; a view of a
    parameter made under ``inference_mode`` requires them but has no gradient function, which
    those hooks reject (weaver's ParT expands its class token this way).
    """
    parameters = list(model.parameters()) if isinstance(model, nn.Module) else []
    flags = [p.requires_grad for p in parameters]
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in zip(parameters, flags, strict=True):
            parameter.requires_grad_(flag)


def count_flops(model: Callable[[JetBatch], object], batch: JetBatch) -> float | None:
    """Forward FLOPs per jet (``None`` when the flop counter is unavailable or fails).

    Counted by ``torch.utils.flop_counter.FlopCounterMode``: matmuls, convolutions and
    attention; element-wise operations are not counted.
    """
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:  # pragma: no cover - old torch
        return None
    try:
        counter = FlopCounterMode(display=False)
        with _frozen(model), counter, torch.inference_mode():
            model(batch)
        return counter.get_total_flops() / len(batch)
    except Exception as error:  # a benchmark reports, never crashes on this
        print(f"  flop counting failed: {type(error).__name__}: {error}", file=sys.stderr)
        return None


class _LiveStorages(TorchDispatchMode):
    """Bytes of the tensor storages on one device that the running code holds, and their peak.

    Every storage an operation reads or writes is counted from the first time it is seen until
    it is freed (weak references, checked after every operation).
    """

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device = device
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current = 0
        self.peak = 0

    def _sweep(self) -> None:
        for key in [key for key, (ref, _) in self.live.items() if ref.expired()]:
            self.current -= self.live.pop(key)[1]

    def _see(self, value: object) -> None:
        if not isinstance(value, torch.Tensor) or value.device != self.device:
            return
        storage = value.untyped_storage()
        reference = StorageWeakRef(storage)
        if reference.cdata in self.live:
            return
        size = storage.nbytes()
        self.live[reference.cdata] = (reference, size)
        self.current += size
        self.peak = max(self.peak, self.current)

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        outputs = func(*args, **(kwargs or {}))
        self._sweep()
        for value in tree_flatten((args, kwargs, outputs))[0]:
            self._see(value)
        return outputs


def peak_memory(step: Callable[[], object], device: torch.device | str) -> int | None:
    """Peak bytes held by tensors on ``device`` while ``step`` runs.

    On CUDA: ``torch.cuda.max_memory_allocated`` after a reset (every tensor of the process on
    that device, weights included). Elsewhere: the peak total of the tensor storages the step
    reads or creates, followed by a dispatch mode (weights, gradients and optimizer state count
    once the step touches them). ``None`` when tracking fails.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device))
    try:
        tracker = _LiveStorages(device)
        with tracker:
            step()
        return tracker.peak
    except Exception as error:  # a benchmark reports, never crashes on this
        print(f"  memory tracking failed: {type(error).__name__}: {error}", file=sys.stderr)
        return None


def autocast(
    device: torch.device | str, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` to ``dtype`` on ``device``'s type, or no context for ``dtype=None``."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def select_backbones(patterns: Sequence[str]) -> list[str]:
    """Registered backbone names matching any glob pattern (``all`` selects everything).

    Raises:
        SystemExit: nothing matches (the message lists the registered names).
    """
    names = list_backbones()
    if "all" in patterns:
        return names
    chosen = [name for name in names if any(fnmatch.fnmatch(name, p) for p in patterns)]
    if not chosen:
        raise SystemExit(f"no backbone matches {list(patterns)}; registered: {', '.join(names)}")
    return chosen


class CpuShare:
    """CPU seconds of this process, of everything else on the machine, and stolen, since start.

    Reads ``/proc/stat`` (Linux; elsewhere only this process's share is known). ``others_s``
    is busy time of other processes of this machine, ``steal_s`` time the hypervisor gave to
    other machines: either one means the timings shared the cores.
    """

    _TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.own = self._own()
        self.machine = self._machine()

    @staticmethod
    def _own() -> float:
        times = os.times()
        return times.user + times.system

    @classmethod
    def _machine(cls) -> tuple[float, float] | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except (OSError, IndexError):
            return None
        ticks = [int(value) for value in fields]
        busy = sum(ticks[:3]) + sum(ticks[5:7])  # user nice system, irq softirq
        steal = ticks[7] if len(ticks) > 7 else 0
        return busy / cls._TICKS, steal / cls._TICKS

    def read(self) -> dict[str, float | None]:
        """``wall_s``, ``own_cpu_s``, ``others_s`` and ``steal_s`` since construction."""
        wall = time.perf_counter() - self.wall
        own = self._own() - self.own
        now = self._machine()
        if now is None or self.machine is None:
            return {"wall_s": wall, "own_cpu_s": own, "others_s": None, "steal_s": None}
        busy = now[0] - self.machine[0]
        return {
            "wall_s": wall,
            "own_cpu_s": own,
            "others_s": max(0.0, busy - own),
            "steal_s": now[1] - self.machine[1],
        }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically (:func:`foundation.io.write_json`); a payload that is not JSON leaves no
    file behind. Infinities are kept (``Infinity``: a rejection with no background jet left is a
    lower limit the plots draw as such)."""
    _write_json(path, payload, allow_nan=True)


def cpu_name() -> str:
    """The CPU model, from /proc/cpuinfo where available."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
