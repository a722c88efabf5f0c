"""Features of a frozen backbone, computed once per jet: :class:`FrozenFeatureCache`.

A frozen backbone (eval mode, no gradients; the ``frozen`` and ``linear`` fine-tuning modes,
not ``lora``, whose adapters train) maps the same jet to the same features in every epoch, yet a
plain training loop runs it on every batch. :class:`FrozenFeatureCache` wraps such a backbone:
for each jet of a batch it looks up the features by a key computed from that jet's own inputs,
runs the backbone once on the jets it has not seen (one sub-batch, trimmed to its own longest
jet) and assembles :class:`~foundation.models.base.Features` padded to the batch's ``N``
exactly as the backbone returns them (padding rows zero).

This is exact only for a backbone whose output for a jet does not depend on the other jets of
the batch nor on the padding: true of every registered backbone in eval mode (their batch norms
use running statistics; ``tests/test_frozen_features.py`` checks each one), false of a layer
that uses batch statistics at inference. The cache refuses such a backbone: statically (a
``torch.nn`` batch norm without running statistics) and by measurement on the first batch it
computes (its first jets, in reversed order with extra padding, in two halves and the first one
alone, must give the features they got in the full batch).

The key of a jet is a 128-bit BLAKE2b hash of everything the backbone reads of it: the slots of
its real particles, their feature and 4-vector rows (bytes, with dtype and width) and its
jet-level inputs, together with the batch's feature names and the autocast state. Padding
values are not in the key (the backbone contract: padding is ignored) and neither are targets.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from foundation.data.batch import JetBatch
from foundation.models.base import Backbone, Features

DEFAULT_TOLERANCE: dict[torch.dtype, float] = {torch.float32: 1e-4, torch.float64: 1e-8}
"""Relative tolerance of the batch-independence check by output dtype (others: 3e-2)."""

_LOW_PRECISION_TOLERANCE = 3e-2
_TORCH_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
_EXTRA_SLOTS = 3
"""Padding slots added to the reversed copy of the batch-independence check."""

VERIFY_JETS = 8
"""Jets of the first computed batch that the batch-independence check batches otherwise: their
features in the full batch are compared with those in smaller batches (reversed with more
padding, in halves, alone), which costs about two backbone passes over 8 jets."""


@dataclass(frozen=True)
class CacheStats:
    """What a :class:`FrozenFeatureCache` has done so far.

    Attributes:
        jets: jets stored.
        bytes: bytes held by the stored features.
        hits: jets served from the cache.
        misses: jets the backbone computed.
        uncached: misses that were not stored because ``max_jets`` was reached.
        clears: times the cache was emptied (by :meth:`FrozenFeatureCache.clear` or because the
            backbone's weights changed).
    """

    jets: int
    bytes: int
    hits: int
    misses: int
    uncached: int
    clears: int


@dataclass(frozen=True)
class _Entry:
    particles: torch.Tensor  # [n, D]: the rows of the jet's real particles, in slot order
    jet: torch.Tensor  # [D]


def frozen_problems(backbone: nn.Module) -> list[str]:
    """Why ``backbone`` is not a frozen, batch-independent backbone (empty when it is).

    Looks for modules in training mode, parameters that require gradients and ``torch.nn``
    batch norms without running statistics (they normalise with the batch's statistics even in
    eval mode). Layers of other kinds that mix jets are found only by measurement
    (:class:`FrozenFeatureCache` checks its first batch).
    """
    problems = []
    training = [name or "(the backbone)" for name, m in backbone.named_modules() if m.training]
    if training:
        problems.append(
            f"modules in training mode: {_few(training)} (call backbone.eval(), or "
            "model.freeze_backbone())"
        )
    grads = [name for name, p in backbone.named_parameters() if p.requires_grad]
    if grads:
        problems.append(
            f"parameters that require gradients: {_few(grads)} (a trainable backbone, e.g. "
            "with LoRA adapters, changes its features at every step; freeze it with "
            "model.freeze_backbone())"
        )
    batch_stats = [
        name or "(the backbone)"
        for name, m in backbone.named_modules()
        if isinstance(m, _TORCH_BATCH_NORMS) and m.running_mean is None
    ]
    if batch_stats:
        problems.append(
            f"batch norms without running statistics: {_few(batch_stats)} (they normalise with "
            "the statistics of each batch, so a jet's features depend on the other jets)"
        )
    return problems


def _few(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


class FrozenFeatureCache:
    """A frozen backbone whose features are computed once per jet and then looked up.

    Call it like the backbone: ``features = cache(batch)``. Features are computed without
    gradients, under the caller's autocast state (part of the key). The cache is a plain object,
    not a ``torch.nn.Module``: it adds nothing to a model's ``state_dict``, parameters or
    ``.to()``; the backbone stays where it is, and features come back on the batch's device.

    Memory: each stored jet holds its real particles' rows and its jet vector, ``(n_real + 1) *
    D`` values (about 60 KB for 60 particles, ``D = 256``, float32; 1,000 training and 1,600
    validation jets: about 160 MB). With ``max_jets`` set, the cache stops storing once it holds
    that many jets: later new jets are computed on every call, as without a cache (nothing is
    evicted, so that the jets seen first keep their speed-up). ``stats`` tells how many jets were
    left out.

    If the backbone's weights change in place (``load_state_dict``, e.g. when a run resumes or
    reloads its best checkpoint) or a parameter is replaced, the cache empties itself. A write
    through ``tensor.data`` bypasses PyTorch's version counter and is not seen: call
    :meth:`clear` after one. If the backbone is put back in training mode or a parameter starts
    requiring gradients, calls raise.

    Args:
        backbone: the frozen backbone (eval mode, no parameter requiring gradients).
        max_jets: most jets stored (None: no limit; 0: store nothing).
        storage: device for the stored features (None: where the backbone computed them; e.g.
            ``"cpu"`` to keep GPU memory free, at the cost of a copy per batch).
        verify: check on the first computed batch of at least two jets that the features do
            not depend on the batch composition or the padding (:data:`VERIFY_JETS`; costs
            about two extra backbone passes over 8 jets, once).
        tolerance: relative tolerance of that check, in units of the largest feature magnitude
            (None: :data:`DEFAULT_TOLERANCE` by output dtype).

    Raises:
        ValueError: the backbone is in training mode, has parameters requiring gradients, has
            batch norms without running statistics (the message lists them), or ``max_jets``
            is negative.

    Shapes:
        - batch: a :class:`JetBatch` with ``particles [B, N, F]``, ``mask [B, N]``,
          ``vectors [B, N, 4]``, ``jet [B, J]``
        - output.particles: ``[B, N, D]`` (padding rows zero); output.jet: ``[B, D]``;
          output.mask: the batch's mask
    """

    def __init__(
        self,
        backbone: Backbone,
        *,
        max_jets: int | None = None,
        storage: torch.device | str | None = None,
        verify: bool = True,
        tolerance: float | None = None,
    ) -> None:
        problems = frozen_problems(backbone)
        if problems:
            raise ValueError(
                f"FrozenFeatureCache: {type(backbone).__name__} is not a frozen backbone: "
                + "; ".join(problems)
            )
        if max_jets is not None and max_jets < 0:
            raise ValueError(f"FrozenFeatureCache: max_jets must be None or >= 0, found {max_jets}")
        self.backbone = backbone
        self.max_jets = max_jets
        self.storage = None if storage is None else torch.device(storage)
        self.tolerance = tolerance
        self._verified = not verify
        self._entries: dict[bytes, _Entry] = {}
        self._bytes = 0
        self._hits = self._misses = self._uncached = self._clears = 0
        self._weights = self._fingerprint()

    # ------------------------------------------------------------------------------ public
    def __call__(self, batch: JetBatch) -> Features:
        self._check_still_frozen()
        if len(batch) == 0:
            with torch.no_grad():
                return self.backbone(batch)
        keys = jet_keys(batch)
        found: dict[bytes, _Entry] = {}
        missing: dict[bytes, int] = {}  # key -> first row holding that jet
        for row, key in enumerate(keys):
            entry = self._entries.get(key)
            if entry is not None:
                found[key] = entry
            elif key not in missing:
                missing[key] = row
        self._hits += len(keys) - len(missing)
        if missing:
            computed = self._compute(batch, list(missing.values()))
            for key, entry in zip(missing, computed, strict=True):
                found[key] = entry
                self._store(key, entry)
        return _assemble([found[key] for key in keys], batch.mask)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def stats(self) -> CacheStats:
        """Counts of stored jets, bytes, hits, misses, uncached misses and clears."""
        return CacheStats(
            len(self._entries), self._bytes, self._hits, self._misses, self._uncached, self._clears
        )

    def clear(self) -> None:
        """Drop every stored jet (the counters of hits and misses are kept)."""
        self._entries.clear()
        self._bytes = 0
        self._clears += 1

    # ----------------------------------------------------------------------------- compute
    def _compute(self, batch: JetBatch, rows: list[int]) -> list[_Entry]:
        """Run the backbone on ``rows`` of ``batch`` (one sub-batch, trimmed) and split it."""
        self._misses += len(rows)
        index = torch.tensor(rows, device=batch.mask.device)
        sub = _select(batch, index).trimmed()
        with torch.no_grad():
            features = self.backbone(sub)
            if not self._verified and len(sub) >= 2:
                self._verify(sub, features)
        counts = sub.mask.sum(dim=1).tolist()
        real = features.particles[sub.mask]
        jets = features.jet
        if self.storage is not None:
            real, jets = real.to(self.storage), jets.to(self.storage)
        return [
            _Entry(particles, jet)
            for particles, jet in zip(real.split(counts), jets.unbind(0), strict=True)
        ]

    def _store(self, key: bytes, entry: _Entry) -> None:
        if self.max_jets is not None and len(self._entries) >= self.max_jets:
            self._uncached += 1
            return
        self._entries[key] = entry
        self._bytes += _nbytes(entry.particles) + _nbytes(entry.jet)

    def _verify(self, sub: JetBatch, reference: Features) -> None:
        """Raise unless the features of ``sub``'s first jets (at most :data:`VERIFY_JETS`) are
        the same when they are batched otherwise (see the class)."""
        size = min(len(sub), VERIFY_JETS)
        device = sub.mask.device
        reversed_order = torch.arange(size - 1, -1, -1, device=device)
        half = (size + 1) // 2
        padded = _pad(_select(sub, reversed_order), _EXTRA_SLOTS)
        checks = {
            f"in reversed order with {_EXTRA_SLOTS} more padding slots": (
                reversed_order,
                self.backbone(padded),
            ),
        }
        for name, part in (
            (f"as a batch of {half}", torch.arange(half, device=device)),
            (f"as a batch of {size - half}", torch.arange(half, size, device=device)),
            ("as a batch of one", torch.arange(1, device=device)),
        ):
            checks[name] = (part, self.backbone(_select(sub, part).trimmed()))
        for name, (index, features) in checks.items():
            reference_part = _select_features(reference, index)
            difference, scale = _difference(reference_part, features)
            tolerance = self.tolerance
            if tolerance is None:
                tolerance = DEFAULT_TOLERANCE.get(reference.jet.dtype, _LOW_PRECISION_TOLERANCE)
            if not difference <= tolerance * max(1.0, scale):
                self.clear()
                raise ValueError(
                    f"FrozenFeatureCache: {type(self.backbone).__name__} is not "
                    "batch-independent: the features of the same jets computed "
                    f"{name} differ by up to {difference:.3g} (largest feature {scale:.3g}, "
                    f"tolerance {tolerance:g} relative), so a jet's features depend on the "
                    "other jets of its batch or on the padding (e.g. a layer using batch "
                    "statistics in eval mode); features cannot be cached. Run the backbone on "
                    "every batch instead."
                )
        self._verified = True

    # ------------------------------------------------------------------------------ checks
    def _fingerprint(self) -> tuple[tuple[int, int, int], ...]:
        """Identity, storage and version counter of every parameter and buffer: changes when a
        tensor is replaced or written in place (not through ``.data``, which has no counter)."""
        tensors = itertools.chain(self.backbone.parameters(), self.backbone.buffers())
        return tuple((id(t), t.data_ptr(), t._version) for t in tensors)

    def _check_still_frozen(self) -> None:
        problems = frozen_problems(self.backbone)
        if problems:
            raise RuntimeError(
                f"FrozenFeatureCache: the wrapped {type(self.backbone).__name__} is no longer "
                "frozen: " + "; ".join(problems)
            )
        weights = self._fingerprint()
        if weights != self._weights:
            self._weights = weights
            self.clear()


def jet_keys(batch: JetBatch) -> list[bytes]:
    """One 128-bit key per jet from everything the backbone reads of it.

    A jet's key hashes the batch's context (dtypes, widths, feature names, autocast state), the
    slots of its real particles, their ``particles`` and ``vectors`` rows and its ``jet`` row.
    Two jets get the same key exactly when a backbone that ignores padding and the other jets
    must give them the same features.

    Shapes:
        - batch.particles: ``[B, N, F]``; batch.mask: ``[B, N]``; output: ``B`` keys
    """
    context = hashlib.blake2b(digest_size=16)
    for tensor in (batch.particles, batch.vectors, batch.jet):
        context.update(f"{tensor.dtype} {tensor.shape[-1]};".encode())
    context.update(repr((batch.feature_names, batch.jet_feature_names)).encode())
    device = batch.particles.device.type
    if torch.is_autocast_enabled(device):
        context.update(f"autocast {torch.get_autocast_dtype(device)}".encode())
    mask = batch.mask.cpu().numpy()
    particles = _bytes_view(batch.particles)
    vectors = _bytes_view(batch.vectors)
    jet = _bytes_view(batch.jet)
    keys = []
    for row in range(len(batch)):
        slots = mask[row].nonzero()[0]
        digest = context.copy()
        digest.update(slots.tobytes())
        digest.update(particles[row, slots].tobytes())
        digest.update(vectors[row, slots].tobytes())
        digest.update(jet[row].tobytes())
        keys.append(digest.digest())
    return keys


def _bytes_view(tensor: torch.Tensor) -> np.ndarray:
    """``[B, *, W]`` as a CPU uint8 numpy array ``[B, *, W * itemsize]`` (any dtype)."""
    tensor = tensor.detach().cpu().contiguous()
    if tensor.shape[-1] == 0:
        return tensor.to(torch.uint8).numpy()
    return tensor.view(torch.uint8).numpy()


def _select(batch: JetBatch, index: torch.Tensor) -> JetBatch:
    """The jets ``index`` of ``batch``, without targets (a backbone does not read them)."""
    return replace(
        batch,
        particles=batch.particles.index_select(0, index),
        mask=batch.mask.index_select(0, index),
        vectors=batch.vectors.index_select(0, index),
        jet=batch.jet.index_select(0, index),
        targets={},
    )


def _pad(batch: JetBatch, slots: int) -> JetBatch:
    """``batch`` with ``slots`` more padding slots at the end."""
    return replace(
        batch,
        particles=F.pad(batch.particles, (0, 0, 0, slots)),
        mask=F.pad(batch.mask, (0, slots)),
        vectors=F.pad(batch.vectors, (0, 0, 0, slots)),
    )


def _select_features(features: Features, index: torch.Tensor) -> Features:
    return Features(
        particles=features.particles.index_select(0, index),
        jet=features.jet.index_select(0, index),
        mask=features.mask.index_select(0, index),
    )


def _difference(reference: Features, other: Features) -> tuple[float, float]:
    """Largest |difference| over real particles (each in its own slots) and jet vectors, and the
    largest |reference|."""
    ref = torch.cat([reference.particles[reference.mask].flatten(), reference.jet.flatten()])
    new = torch.cat([other.particles[other.mask].flatten(), other.jet.flatten()])
    ref, new = ref.float(), new.float()
    if ref.numel() == 0:
        return 0.0, 0.0
    return float((ref - new).abs().max()), float(ref.abs().max())


def _assemble(entries: list[_Entry], mask: torch.Tensor) -> Features:
    """Features padded to ``mask``'s ``N``: each jet's rows in its real slots, zero elsewhere."""
    device = mask.device
    jet = torch.stack([entry.jet for entry in entries]).to(device)
    rows = torch.cat([entry.particles for entry in entries]).to(device)
    particles = rows.new_zeros(*mask.shape, rows.shape[-1])
    particles[mask] = rows
    return Features(particles=particles, jet=jet, mask=mask)


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()
