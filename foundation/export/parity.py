"""The parity gate: ONNX Runtime against PyTorch (eval mode) over particle counts and batch sizes.

Every export runs it (see :func:`~foundation.export.export_onnx`). The cases cover N = 0, 1, 2,
typical and maximal particle counts, several batch sizes, jets with 0 and 1 real particles,
padding at the end and scattered padding, plus any real batches the caller passes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort
import torch

from foundation.data.batch import JetBatch
from foundation.export.errors import ExportError
from foundation.export.graph import (
    JET,
    JET_EMBEDDING,
    MASK,
    PARTICLE_EMBEDDINGS,
    PARTICLES,
    VECTORS,
    GraphSpec,
    input_widths,
)
from foundation.export.inputs import random_jets, to_numpy
from foundation.export.options import DEFAULT_TOLERANCE, check_tolerance
from foundation.export.session import run_session
from foundation.model import Model

DEFAULT_COUNTS: tuple[int, ...] = (0, 1, 2, 16, 50, 128)
"""Padded particle counts ``N`` of the random parity batches."""

DEFAULT_BATCH_SIZES: tuple[int, ...] = (1, 3, 17)
"""Batch sizes of the random parity batches."""

RELATIVE_FLOOR = 1e-3
"""Relative differences are ``|Δ| / max(|reference|, RELATIVE_FLOOR)``."""


@dataclass(frozen=True)
class ParityConfig:
    """Which random batches the parity gate runs, and its tolerance.

    Attributes:
        counts: padded particle counts ``N``.
        batch_sizes: batch sizes ``B``; every ``(N, B)`` pair is one batch with real particles
            first (the first jet full, the second empty, the third with one particle).
        scattered: add, for every ``N >= 2``, a batch of the middle batch size with scattered
            padding.
        tolerance: largest accepted ``|onnx - torch| / max(1, |torch|)``.
        seed: random seed of the batches.
    """

    counts: tuple[int, ...] = DEFAULT_COUNTS
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    scattered: bool = True
    tolerance: float = DEFAULT_TOLERANCE
    seed: int = 0

    def __post_init__(self) -> None:
        check_tolerance(self.tolerance)
        if any(n < 0 for n in self.counts) or any(b < 1 for b in self.batch_sizes):
            raise ValueError(
                f"parity counts must be >= 0 and batch sizes >= 1, found {self.counts} and "
                f"{self.batch_sizes}"
            )


@dataclass
class OutputParity:
    """The agreement of one output over every case.

    Attributes:
        name: the ONNX output name.
        max_abs: largest ``|onnx - torch|``.
        max_rel: largest ``|onnx - torch| / max(|torch|, RELATIVE_FLOOR)``.
        max_scaled: largest ``|onnx - torch| / max(1, |torch|)``, the gated quantity.
        worst_case: the case with ``max_abs``.
        problems: non-finite values or shape mismatches, one line each.
    """

    name: str
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_scaled: float = 0.0
    worst_case: str = "-"
    problems: list[str] = field(default_factory=list)

    def passed(self, tolerance: float) -> bool:
        """No NaN/inf or shape problem, and ``|onnx - torch| <= tolerance * max(1, |torch|)``."""
        return not self.problems and self.max_scaled <= tolerance


@dataclass
class ParityReport:
    """The per-output parity table.

    Attributes:
        outputs: one entry per graph output.
        cases: the labels of the checked cases.
        tolerance: the accepted ``|onnx - torch| / max(1, |torch|)``.
    """

    outputs: list[OutputParity]
    cases: list[str]
    tolerance: float

    @property
    def passed(self) -> bool:
        return all(output.passed(self.tolerance) for output in self.outputs)

    def table(self) -> str:
        """A plain-text table: output, max |Δ|, max rel, worst case, status."""
        header = ("output", "max |diff|", "max rel", "worst case", "status")
        rows = [
            (
                o.name,
                f"{o.max_abs:.2e}",
                f"{o.max_rel:.2e}",
                o.worst_case,
                "ok" if o.passed(self.tolerance) else "FAIL",
            )
            for o in self.outputs
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        head = "  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True))
        problems = [f"  {o.name}: {p}" for o in self.outputs for p in o.problems]
        text = [head, *lines]
        if problems:
            text += ["problems:", *problems]
        text.append(
            f"{len(self.cases)} cases, tolerance {self.tolerance:g} "
            "(|diff| <= tolerance * max(1, |torch|))"
        )
        return "\n".join(text)

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable summary (for the ONNX metadata)."""
        return {
            "tolerance": self.tolerance,
            "criterion": "|onnx - torch| <= tolerance * max(1, |torch|)",
            "cases": len(self.cases),
            "passed": self.passed,
            "outputs": {
                o.name: {
                    "max_abs": _finite_or_none(o.max_abs),
                    "max_rel": _finite_or_none(o.max_rel),
                }
                for o in self.outputs
            },
        }


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def parity_batches(
    model: Model, config: ParityConfig, batches: Iterable[JetBatch] = ()
) -> list[tuple[str, JetBatch]]:
    """The labelled batches the gate runs: random ones from ``config``, then ``batches``.

    Raises:
        ValueError: a given batch does not have the model's feature counts.
    """
    width, jet_width = input_widths(model)
    cases: list[tuple[str, JetBatch]] = []
    seed = config.seed
    for count in config.counts:
        for size in config.batch_sizes:
            seed += 1
            batch = random_jets(size, count, width, jet_width, seed=seed)
            cases.append((f"N={count} B={size}", batch))
        if config.scattered and count >= 2:
            seed += 1
            size = sorted(config.batch_sizes)[len(config.batch_sizes) // 2]
            batch = random_jets(size, count, width, jet_width, scatter=True, seed=seed)
            cases.append((f"N={count} B={size} scattered", batch))
    for index, batch in enumerate(batches):
        found = (batch.particles.shape[-1], batch.jet.shape[-1])
        if found[0] != width or (jet_width and found[1] != jet_width):
            raise ValueError(
                f"parity batch {index}: expected {width} particle features and {jet_width} "
                f"jet inputs, found {found[0]} and {found[1]}"
            )
        cases.append((f"batch[{index}] N={batch.num_particles} B={len(batch)}", batch.to("cpu")))
    return cases


@torch.no_grad()
def reference_and_feeds(
    model: Model, spec: GraphSpec, batch: JetBatch
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """PyTorch outputs (by ONNX output name) and the graph's input feeds for one batch.

    The reference is the model's own eager forward (eval mode): ``model(batch)`` for a full
    graph, the heads on ``model.features(batch)`` for an embeddings-only graph.
    """
    if spec.embeddings_only:
        features = model.features(batch)
        values = {
            PARTICLE_EMBEDDINGS: features.particles,
            JET_EMBEDDING: features.jet,
            MASK: batch.mask,
            VECTORS: batch.vectors,
        }
        results = {name: model.heads[name](features, batch) for name in spec.heads}
    else:
        values = {PARTICLES: batch.particles, VECTORS: batch.vectors, MASK: batch.mask}
        values[JET] = batch.jet
        if spec.heads:
            results = model(batch, heads=list(spec.heads))
        else:
            features = model.features(batch)
            results = {"": {"particles": features.particles, "jet": features.jet}}
    reference = {o.name: to_numpy(results[o.head][o.output]) for o in spec.outputs}
    feeds = {name: to_numpy(value) for name, value in values.items()}
    return reference, feeds


def compare_output(
    parity: OutputParity, label: str, reference: np.ndarray, actual: np.ndarray
) -> None:
    """Fold one case's difference of one output into ``parity``."""
    if reference.shape != actual.shape:
        parity.problems.append(
            f"{label}: shape {actual.shape} from ONNX Runtime, {reference.shape} from PyTorch"
        )
        parity.max_abs, parity.worst_case = math.inf, label
        return
    for source, values in (("ONNX Runtime", actual), ("PyTorch", reference)):
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            bad = int(np.size(values) - np.isfinite(values).sum())
            parity.problems.append(f"{label}: {bad} NaN/inf value(s) from {source}")
    if not reference.size:
        return
    difference = np.abs(actual.astype(np.float64) - reference.astype(np.float64))
    difference = np.where(np.isnan(difference), np.inf, difference)
    worst = float(difference.max())
    size = np.abs(reference.astype(np.float64))
    parity.max_rel = max(
        parity.max_rel, float((difference / np.maximum(size, RELATIVE_FLOOR)).max())
    )
    parity.max_scaled = max(parity.max_scaled, float((difference / np.maximum(size, 1.0)).max()))
    if parity.worst_case == "-" or worst > parity.max_abs:
        parity.max_abs = max(parity.max_abs, worst)
        parity.worst_case = label


def check_parity(
    session: ort.InferenceSession,
    model: Model,
    spec: GraphSpec,
    *,
    config: ParityConfig | None = None,
    batches: Sequence[JetBatch] = (),
) -> ParityReport:
    """Compare ONNX Runtime with PyTorch on every parity batch.

    Args:
        session: a session of the exported graph.
        model: the PyTorch model it was exported from (put in eval mode by the caller).
        spec: the graph's layout (from :func:`~foundation.export.graph.build_graph`).
        config: counts, batch sizes, tolerance and seed (default :class:`ParityConfig`).
        batches: real batches to check too (e.g. simulated jets).

    Returns:
        The table; check ``report.passed`` (the exporter raises when it is False).
    """
    config = config or ParityConfig()
    outputs = {o.name: OutputParity(o.name) for o in spec.outputs}
    labels = []
    for label, batch in parity_batches(model, config, batches):
        labels.append(label)
        reference, feeds = reference_and_feeds(model, spec, batch)
        try:
            actual = run_session(session, feeds)
        except Exception as error:
            raise ExportError(
                f"ONNX Runtime fails on parity case {label}: {type(error).__name__}: {error}"
            ) from error
        for name, parity in outputs.items():
            compare_output(parity, label, reference[name], actual[name])
    return ParityReport(list(outputs.values()), labels, config.tolerance)
