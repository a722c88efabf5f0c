"""Run a :class:`~foundation.model.Model` over a loader and collect outputs and targets (numpy).

Each head's collection depends on its *kind* (:func:`head_kind`):

- ``jet_classification``: ``scores`` ``[M]`` (binary: probability of ``label_names[1]``) or
  ``[M, K]``, ``labels`` ``[M]`` (class indices into the head's labels, -1 unlabelled);
- ``jet_regression``: ``predicted`` and ``true`` ``[M, T]`` (a ratio target of
  :data:`RATIO_TARGETS` missing from the batch is computed from the truth and the detector-level
  jet), the detector-level ``reco_pt`` and ``reco_mass`` ``[M]`` (from the raw jet inputs
  ``jet_pt_log`` / ``jet_mass_log1p`` when the batch carries them as the target ``raw_jet``,
  else summed from the constituents' 4-vectors), and ``truth_pt`` / ``truth_mass`` ``[M]`` when
  the batches carry ``jet_truth_pt`` / ``jet_truth_mass``;
- ``particle_classification``: ``probabilities`` ``[P, K]`` and ``labels`` ``[P]`` over real
  particles (-1 unlabelled), with their ``jet`` ``[P]``;
- ``pair_classification``: one row per pair ``i < j`` of particles with a valid pair target:
  ``scores``, ``labels``, ``first``, ``second`` ``[Q]`` (indices of real particles, numbered
  over the whole loader), plus ``node_jet`` and, when the batches carry ``part_vertex``,
  ``node_vertex`` for each real particle;
- ``masked_particle``: ``squared_error`` ``[P', F]`` over the masked particles (the batch is
  masked with :func:`heads.masked_particle.mask_particles`, seeded).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from foundation.data.batch import JetBatch
from foundation.model import Model
from heads.base import Head

KINDS: tuple[str, ...] = (
    "jet_classification",
    "jet_regression",
    "particle_classification",
    "pair_classification",
    "masked_particle",
)
"""Kinds of heads the evaluation knows how to score."""

LABEL_TARGET = "label"
"""The batch target holding the data's class indices (into the data's label names)."""

RAW_JET = "raw_jet"
"""Batch target with the unnormalized jet-level inputs ``[B, J]`` (see
:class:`foundation.evaluation.inputs.EvaluationDataset`); it is not passed on to the heads."""

RATIO_TARGETS: dict[str, tuple[str, bool]] = {
    "pt_ratio": ("pt", False),
    "mass_ratio": ("mass", False),
    "log_pt_ratio": ("pt", True),
    "log_mass_ratio": ("mass", True),
}
"""Regression targets defined as (the log of) particle-level truth over the detector-level jet
quantity, as the training computes them: name -> (quantity, logarithm)."""


@dataclass(frozen=True)
class _Step:
    """What a collector needs to know about the current batch besides the outputs."""

    batch: JetBatch
    jet_offset: int
    node_offset: int
    raw_jet: torch.Tensor | None


@dataclass
class HeadPredictions:
    """What :func:`predict` collected for one head.

    Attributes:
        name: the head's name in the model.
        kind: one of :data:`KINDS`.
        level: the head's level.
        label_names: the head's class (or target, or feature) names.
        arrays: the collected arrays (see the module docstring).
        n_jets: jets the model ran on.
        skipped: why nothing was collected (the data lacks the head's target), else None.
    """

    name: str
    kind: str
    level: str
    label_names: tuple[str, ...]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    n_jets: int = 0
    skipped: str | None = None


def head_kind(head: Head) -> str | None:
    """The evaluation kind of a head: its registered type if known, else guessed from its level
    and output names; None when it cannot be scored."""
    if head.head_type in KINDS:
        return head.head_type
    outputs = set(head.output_names)
    if head.level == "jet":
        if outputs & {"probability", "probabilities"}:
            return "jet_classification"
        if "mean" in outputs:
            return "jet_regression"
    if head.level == "particle":
        if "reconstruction" in outputs:
            return "masked_particle"
        if "probabilities" in outputs:
            return "particle_classification"
    if head.level == "pair" and "probabilities" in outputs:
        return "pair_classification"
    return None


def label_lookup(
    data_label_names: Sequence[str], head_label_names: Sequence[str], head: str = "head"
) -> np.ndarray | None:
    """Map data class indices to a head's class indices by name (-1 for classes it lacks).

    Returns:
        The lookup array ``[len(data_label_names)]``, or None when the names are the same.

    Raises:
        ValueError: no class name is shared and the class counts differ.
    """
    data, own = tuple(data_label_names), tuple(head_label_names)
    if data == own or not data:
        return None
    lookup = np.array([own.index(name) if name in own else -1 for name in data], dtype=np.int64)
    if (lookup >= 0).any():
        return lookup
    if len(data) == len(own):
        warnings.warn(
            f"head {head!r}: data labels {data} share no name with the head's labels {own}; "
            "using the class indices as they are",
            stacklevel=3,
        )
        return None
    raise ValueError(
        f"head {head!r}: the data's labels {data} share no class with the head's labels {own}; "
        "evaluate on data with the classes the head was trained on"
    )


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float32 if tensor.is_floating_point() else None).numpy()


def _class_labels(target: torch.Tensor, lookup: np.ndarray | None) -> np.ndarray:
    """Class indices ``[B]`` from indices or one-hot rows, mapped through ``lookup``."""
    if target.dim() == 2:
        labelled = target.sum(dim=1) > 0
        target = torch.where(labelled, target.argmax(dim=1), -1)
    labels = target.long().cpu().numpy().reshape(-1)
    if lookup is not None:
        labels = np.where(labels >= 0, lookup[np.clip(labels, 0, len(lookup) - 1)], -1)
    return labels


def _reco_jets(batch: JetBatch, raw_jet: torch.Tensor | None) -> dict[str, np.ndarray]:
    """Detector-level jet pT and mass: from the raw jet inputs when known, else the 4-vectors."""
    vectors = torch.where(batch.mask.unsqueeze(-1), batch.vectors, 0.0).double().sum(dim=1)
    px, py, pz, energy = vectors.unbind(dim=-1)
    pt = torch.hypot(px, py)
    mass = torch.sqrt(torch.clamp(energy**2 - px**2 - py**2 - pz**2, min=0.0))
    reco = {"pt": pt.cpu().numpy(), "mass": mass.cpu().numpy()}
    names = list(batch.jet_feature_names)
    if raw_jet is not None and raw_jet.shape[-1] == len(names):
        raw = raw_jet.double().cpu().numpy()
        if "jet_pt_log" in names:
            reco["pt"] = np.exp(raw[:, names.index("jet_pt_log")])
        if "jet_mass_log1p" in names:
            reco["mass"] = np.expm1(raw[:, names.index("jet_mass_log1p")])
    return reco


def ratio_target(name: str, truth: np.ndarray, reco: np.ndarray) -> np.ndarray:
    """A :data:`RATIO_TARGETS` value from truth and reco (NaN where undefined)."""
    _, log = RATIO_TARGETS[name]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((reco > 0) & (truth > 0), truth / reco, np.nan)
        return np.log(ratio) if log else ratio


class _Collector:
    """Accumulates one head's arrays batch after batch."""

    def __init__(self, name: str, head: Head, kind: str, lookup: np.ndarray | None) -> None:
        self.name, self.head, self.kind, self.lookup = name, head, kind, lookup
        self.chunks: dict[str, list[np.ndarray]] = {}
        self.label_names: tuple[str, ...] = tuple(head.label_names)
        self.skipped: str | None = None

    def add(self, **arrays: np.ndarray) -> None:
        for key, value in arrays.items():
            self.chunks.setdefault(key, []).append(value)

    def result(self, n_jets: int) -> HeadPredictions:
        arrays = {key: np.concatenate(values) for key, values in self.chunks.items()}
        if self.skipped is not None:
            arrays = {}
        return HeadPredictions(
            self.name, self.kind, self.head.level, self.label_names, arrays, n_jets, self.skipped
        )

    def collect(self, outputs: Mapping[str, torch.Tensor], step: _Step, strict: bool) -> None:
        """Collect one batch; without ``strict``, a missing target skips the head from then on."""
        if self.skipped is not None:
            return
        try:
            getattr(self, f"_{self.kind}")(outputs, step)
        except KeyError as error:
            if strict:
                raise
            self.skipped = str(error.args[0] if error.args else error)

    def _jet_classification(self, outputs: Mapping[str, torch.Tensor], step: _Step) -> None:
        if "probability" in outputs:
            scores = outputs["probability"]
        elif "probabilities" in outputs:
            scores = outputs["probabilities"]
        elif "logit" in outputs:
            scores = torch.sigmoid(outputs["logit"])
        else:
            scores = torch.softmax(outputs["logits"], dim=-1)
        labels = _class_labels(self.head.target(step.batch), self.lookup)
        self.add(scores=_numpy(scores), labels=labels)

    def _jet_regression(self, outputs: Mapping[str, torch.Tensor], step: _Step) -> None:
        batch = step.batch
        reco = _reco_jets(batch, step.raw_jet)
        truth = {
            quantity: batch.targets[f"jet_truth_{quantity}"].double().cpu().numpy().reshape(-1)
            for quantity in ("pt", "mass")
            if f"jet_truth_{quantity}" in batch.targets
        }
        columns = []
        for name in self.label_names:
            if name not in batch.targets and name in RATIO_TARGETS:
                quantity = RATIO_TARGETS[name][0]
                if quantity not in truth:
                    self.head.target(batch, f"jet_truth_{quantity}")  # raises a clear KeyError
                columns.append(ratio_target(name, truth[quantity], reco[quantity]))
            else:
                value = self.head.target(batch, name)
                columns.append(value.reshape(len(batch)).double().cpu().numpy())
        self.add(
            predicted=_numpy(outputs["mean"]).reshape(len(batch), -1),
            true=np.stack(columns, axis=1),
            reco_pt=reco["pt"],
            reco_mass=reco["mass"],
            **{f"truth_{quantity}": values for quantity, values in truth.items()},
        )

    def _particle_classification(self, outputs: Mapping[str, torch.Tensor], step: _Step) -> None:
        batch, jet_offset = step.batch, step.jet_offset
        mask = batch.mask
        target = self.head.target(batch)
        labels = torch.where(mask, target.long(), -1)[mask]
        rows = torch.arange(len(batch), device=mask.device).unsqueeze(1).expand_as(mask)[mask]
        self.add(
            probabilities=_numpy(outputs["probabilities"][mask]),
            labels=labels.cpu().numpy(),
            jet=rows.cpu().numpy() + jet_offset,
        )

    def _pair_classification(self, outputs: Mapping[str, torch.Tensor], step: _Step) -> None:
        batch, jet_offset, node_offset = step.batch, step.jet_offset, step.node_offset
        mask = batch.mask
        count = batch.num_particles
        target = self.head.target(batch).long()
        upper = torch.triu(torch.ones(count, count, dtype=torch.bool, device=mask.device), 1)
        valid = (target >= 0) & upper & mask.unsqueeze(2) & mask.unsqueeze(1)
        node = torch.cumsum(mask.reshape(-1).long(), 0).reshape(mask.shape) - 1 + node_offset
        b, i, j = valid.nonzero(as_tuple=True)
        scores = (
            outputs["probabilities"]
            if "probabilities" in outputs
            else torch.sigmoid(outputs["logits"])
        )
        rows = torch.arange(len(batch), device=mask.device).unsqueeze(1).expand_as(mask)[mask]
        nodes: dict[str, np.ndarray] = {"node_jet": rows.cpu().numpy() + jet_offset}
        if "part_vertex" in batch.targets:
            nodes["node_vertex"] = batch.targets["part_vertex"][mask].long().cpu().numpy()
        self.add(
            scores=_numpy(scores[b, i, j]),
            labels=target[b, i, j].cpu().numpy(),
            first=node[b, i].cpu().numpy(),
            second=node[b, j].cpu().numpy(),
            **nodes,
        )

    def _masked_particle(self, outputs: Mapping[str, torch.Tensor], step: _Step) -> None:
        batch = step.batch
        from heads.masked_particle import MASK_SUFFIX

        key = self.head.target_key
        original = self.head.target(batch)
        selected = self.head.target(batch, key + MASK_SUFFIX).bool() & batch.mask
        error = (outputs["reconstruction"] - original)[selected] ** 2
        if not self.label_names:
            names = batch.feature_names or tuple(f"feature_{k}" for k in range(error.shape[-1]))
            self.label_names = tuple(names)
        self.add(squared_error=_numpy(error))


def _with_pair_targets(batch: JetBatch, collectors: Iterable[_Collector]) -> JetBatch:
    """Add the same-vertex pair target of pair heads from ``part_vertex`` when it is missing."""
    from foundation.data.loading import same_vertex_targets

    wanted = {c.head.target_key for c in collectors if c.kind == "pair_classification"}
    missing = [key for key in wanted if key not in batch.targets]
    if not missing or "part_vertex" not in batch.targets:
        return batch
    targets = dict(batch.targets)
    pairs = same_vertex_targets(batch.targets["part_vertex"].long(), batch.mask)
    for key in missing:
        targets[key] = pairs
    return dataclasses.replace(batch, targets=targets)


def _data_label_names(loader: Iterable[JetBatch]) -> tuple[str, ...]:
    info = getattr(getattr(loader, "dataset", None), "info", None)
    return tuple(getattr(info, "label_names", ()) or ())


@torch.no_grad()
def predict(
    model: Model,
    loader: Iterable[JetBatch],
    *,
    heads: Sequence[str] | None = None,
    label_names: Sequence[str] | None = None,
    mask_fraction: float = 0.15,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> dict[str, HeadPredictions]:
    """Run ``model`` (in eval mode, no gradients) over ``loader`` and collect every head's arrays.

    Args:
        model: the model.
        loader: yields :class:`~foundation.data.batch.JetBatch` es (e.g.
            :func:`foundation.data.loading.make_loader`).
        heads: the heads to evaluate; a head whose target the data lacks is an error. By
            default every head of a known kind, skipping (with the reason in
            :attr:`HeadPredictions.skipped`) those whose targets the data lacks.
        label_names: the data's class names, which ``batch.targets["label"]`` indexes (default:
            ``loader.dataset.info.label_names`` when the loader reads a cache). A classification
            head whose own ``label_names`` differ gets the labels mapped by name; jets of
            classes it does not know get -1 (left out).
        mask_fraction: fraction of particles hidden for ``masked_particle`` heads.
        seed: seed of that masking.
        device: where to run (default: the model's device).

    Returns:
        ``{head_name: HeadPredictions}``.

    Raises:
        KeyError: a named head does not exist, or a batch lacks a named head's target.
        ValueError: a named head cannot be evaluated, or labels that cannot be mapped.
    """
    from heads.masked_particle import mask_particles

    names = list(model.heads) if heads is None else list(heads)
    data_labels = tuple(label_names) if label_names is not None else _data_label_names(loader)
    collectors: list[_Collector] = []
    for name in names:
        if name not in model.heads:
            raise KeyError(f"no head named {name!r}; heads: {', '.join(model.heads) or 'none'}")
        head: Head = model.heads[name]  # type: ignore[assignment]
        kind = head_kind(head)
        if kind is None:
            if heads is not None:
                raise ValueError(f"head {name!r} ({head.head_type}) cannot be evaluated")
            continue
        lookup = None
        if kind == "jet_classification" and head.target_key == LABEL_TARGET:
            lookup = label_lookup(data_labels, head.label_names, name)
        collectors.append(_Collector(name, head, kind, lookup))
    if device is None:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    strict = heads is not None
    regular = [c for c in collectors if c.kind != "masked_particle"]
    masked = [c for c in collectors if c.kind == "masked_particle"]
    model.eval()
    jets = nodes = 0
    for batch in loader:
        raw_jet = batch.targets.get(RAW_JET)
        if raw_jet is not None:
            targets = {key: value for key, value in batch.targets.items() if key != RAW_JET}
            batch = dataclasses.replace(batch, targets=targets)
        batch = _with_pair_targets(batch.to(device).trimmed(), regular)
        if regular:
            outputs = model(batch, heads=[c.name for c in regular])
            step = _Step(batch, jets, nodes, raw_jet)
            for collector in regular:
                collector.collect(outputs[collector.name], step, strict)
        if masked:
            hidden = mask_particles(batch, mask_fraction, generator=generator)
            outputs = model(hidden, heads=[c.name for c in masked])
            step = _Step(hidden, jets, nodes, raw_jet)
            for collector in masked:
                collector.collect(outputs[collector.name], step, strict)
        jets += len(batch)
        nodes += int(batch.mask.sum())
    return {c.name: c.result(jets) for c in collectors}
