"""Fast loading from a cache folder: a batch-indexed ``Dataset``, its sampler, and the collate.

The sampler yields whole batches of (sorted) indices; the dataset gathers each batch from the
memory maps in one fancy-indexing call per array and normalizes it in numpy; the collate turns it
into a :class:`~foundation.data.batch.JetBatch`. There is no per-jet ``__getitem__`` on the hot
path::

    dataset = JetCacheDataset("cache/top", indices=splits["train"], normalizer=norm)
    for batch in make_loader(dataset, batch_size=256, shuffle=True, seed=0):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from foundation.data.batch import JetBatch
from foundation.data.cache import CacheInfo, open_arrays, read_cache_info
from foundation.data.normalization import Normalizer
from foundation.errors import DataError

_NAME_KEYS = ("feature_names", "jet_feature_names")
_LONG_TARGETS = frozenset({"label", "jet_truth_parton_id", "part_origin", "part_vertex"})


class JetCacheDataset(Dataset):
    """Jets of a cache folder, indexed by batches of positions.

    ``dataset[positions]`` (an int array) returns one batch as a dict of numpy arrays; an int
    returns a single jet (without the batch axis). Memory maps open lazily in each process, so
    the dataset can go to ``DataLoader`` workers.

    Args:
        folder: a cache written by :func:`foundation.data.cache.write_cache`.
        indices: the jets of this dataset (e.g. one split); all jets when None.
        features: particle features to return (a subset of the cached ones, in any order).
        normalizer: applied to the particle features (its names must cover ``features``).
        jet_normalizer: applied to the jet-level inputs.

    Raises:
        DataError: not a cache, indices out of range, or a normalizer for other features.
    """

    def __init__(
        self,
        folder: str | Path,
        indices: np.ndarray | Sequence[int] | None = None,
        features: Sequence[str] | None = None,
        normalizer: Normalizer | None = None,
        jet_normalizer: Normalizer | None = None,
    ) -> None:
        self.info: CacheInfo = read_cache_info(folder)
        n_jets = self.info.n_jets
        self.indices = (
            np.arange(n_jets, dtype=np.int64)
            if indices is None
            else np.asarray(indices, dtype=np.int64).reshape(-1)
        )
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= n_jets):
            raise DataError(
                self.info.folder,
                "indices",
                f"jet indices in [0, {n_jets})",
                f"[{self.indices.min()}, {self.indices.max()}]",
            )
        cached = self.info.feature_names
        self.feature_names = tuple(features) if features is not None else cached
        missing = [name for name in self.feature_names if name not in cached]
        if missing:
            raise DataError(
                self.info.folder, "features", f"features among the cached {cached}", missing
            )
        self._columns = (
            None if self.feature_names == cached else [cached.index(n) for n in self.feature_names]
        )
        self.normalizer = _matching(normalizer, self.feature_names, self.info.folder)
        self.jet_normalizer = _matching(
            jet_normalizer, self.info.jet_feature_names, self.info.folder
        )
        self._arrays: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_arrays"] = None  # memory maps are reopened in each worker
        return state

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """The cache's memory-mapped arrays (opened on first use)."""
        if self._arrays is None:
            self._arrays = open_arrays(self.info)
        return self._arrays

    def __getitem__(self, position: int | np.ndarray | Sequence[int]) -> dict[str, Any]:
        single = np.ndim(position) == 0
        rows = self.indices[np.atleast_1d(np.asarray(position, dtype=np.int64))]
        batch = self._gather(rows)
        if single:
            return {k: (v if k in _NAME_KEYS else v[0]) for k, v in batch.items()}
        return batch

    def raw(self, position: np.ndarray | Sequence[int]) -> dict[str, np.ndarray]:
        """A batch as stored (features float16 and unnormalized), without the name entries."""
        rows = self.indices[np.atleast_1d(np.asarray(position, dtype=np.int64))]
        return self._gather(rows, normalize=False)

    def _gather(self, rows: np.ndarray, normalize: bool = True) -> dict[str, Any]:
        """Read ``rows`` from every array (sorted reads, original order restored), normalized."""
        order = None
        if len(rows) > 1 and np.any(rows[1:] < rows[:-1]):
            order = np.argsort(rows, kind="stable")
            rows = rows[order]
        if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
            take = slice(int(rows[0]), int(rows[-1]) + 1)  # contiguous: a plain slice is faster
        else:
            take = rows
        out: dict[str, Any] = {}
        # a slice of a memory map is a read-only view: copy it; fancy indexing already copies
        read = np.array if isinstance(take, slice) else np.asarray
        for name, array in self.arrays.items():
            if name == "particles" and self._columns is not None:
                out[name] = np.asarray(array[take])[..., self._columns]
            else:
                out[name] = read(array[take])
        if order is not None:
            inverse = np.empty_like(order)
            inverse[order] = np.arange(len(order))
            out = {name: values[inverse] for name, values in out.items()}
        if not normalize:
            return out
        if self.normalizer is not None:
            out["particles"] = self.normalizer.apply(out["particles"], out["mask"])
        else:
            # float16 -> float32 through torch: several times faster than numpy's astype
            out["particles"] = torch.from_numpy(out["particles"]).float().numpy()
        if self.jet_normalizer is not None:
            out["jet"] = self.jet_normalizer.apply(out["jet"])
        out["feature_names"] = self.feature_names
        out["jet_feature_names"] = self.info.jet_feature_names
        return out


def _matching(
    normalizer: Normalizer | None, names: Sequence[str], folder: Path
) -> Normalizer | None:
    """The normalizer restricted to ``names`` (in that order)."""
    if normalizer is None or tuple(normalizer.names) == tuple(names):
        return normalizer
    try:
        return normalizer.select(names)
    except KeyError:
        raise DataError(
            folder,
            "normalizer",
            f"a normalization of the features {tuple(names)}",
            normalizer.names,
            hint="fit the normalization on this cache (fit_cache_normalizers)",
        ) from None


class BatchIndexSampler(Sampler[np.ndarray]):
    """Yields batches of dataset positions (sorted within a batch, for memory-map locality).

    Args:
        num_items: dataset length.
        batch_size: positions per batch.
        shuffle: shuffle every epoch (seeded by ``seed`` and :meth:`set_epoch`).
        seed: shuffling seed.
        drop_last: drop a last, smaller batch.
        rank: this process's rank, for distributed training: it takes every
            ``world_size``-th batch from ``rank`` on (all ranks share the seed).
        world_size: number of processes.
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, found {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank: expected 0 <= rank < world_size={world_size}, found {rank}")
        self.num_items, self.batch_size = num_items, batch_size
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffling of ``epoch``."""
        self.epoch = epoch

    def _batches(self) -> list[np.ndarray]:
        if self.shuffle:
            order = np.random.default_rng((self.seed, self.epoch)).permutation(self.num_items)
        else:
            order = np.arange(self.num_items)
        batches = [
            order[i : i + self.batch_size] for i in range(0, self.num_items, self.batch_size)
        ]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[np.ndarray]:
        for batch in self._batches():
            yield np.sort(batch) if self.shuffle else batch

    def __len__(self) -> int:
        full, rest = divmod(self.num_items, self.batch_size)
        total = full + (1 if rest and not self.drop_last else 0)
        return len(range(self.rank, total, self.world_size))


def collate_jets(items: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> JetBatch:
    """Build a :class:`JetBatch` from a batch dict (from ``dataset[positions]``) or single jets.

    Targets: ``label`` ``[B]`` long; ``jet_truth_*`` ``[B]`` float (``jet_truth_parton_id``
    long); ``part_origin`` and ``part_vertex`` ``[B, N]`` long with -1 on padding (and -1 for
    candidates without a vertex). Pair targets come from :func:`same_vertex_targets`.

    Shapes:
        - output: see :class:`JetBatch`.
    """
    if isinstance(items, Mapping):
        batch = items
    else:
        if not items:
            raise ValueError("collate_jets: expected at least one jet, found an empty list")
        batch = {
            key: (items[0][key] if key in _NAME_KEYS else np.stack([item[key] for item in items]))
            for key in items[0]
        }
    targets = {}
    for name, values in batch.items():
        if name in ("particles", "mask", "vectors", "jet", "event_id", *_NAME_KEYS):
            continue
        tensor = torch.from_numpy(np.ascontiguousarray(values))
        targets[name] = tensor.long() if name in _LONG_TARGETS else tensor.float()
    return JetBatch(
        particles=torch.from_numpy(np.ascontiguousarray(batch["particles"], dtype=np.float32)),
        mask=torch.from_numpy(np.ascontiguousarray(batch["mask"], dtype=bool)),
        vectors=torch.from_numpy(np.ascontiguousarray(batch["vectors"], dtype=np.float32)),
        jet=torch.from_numpy(np.ascontiguousarray(batch["jet"], dtype=np.float32)),
        targets=targets,
        feature_names=tuple(batch.get("feature_names", ())),
        jet_feature_names=tuple(batch.get("jet_feature_names", ())),
    )


def make_loader(
    dataset: JetCacheDataset,
    batch_size: int = 256,
    shuffle: bool = False,
    seed: int = 0,
    drop_last: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """A ``DataLoader`` yielding :class:`JetBatch` es through :class:`BatchIndexSampler`.

    Call ``loader.sampler.set_epoch(epoch)`` each epoch to reshuffle.
    """
    sampler = BatchIndexSampler(
        len(dataset), batch_size, shuffle, seed, drop_last, rank, world_size
    )
    return DataLoader(
        dataset,
        batch_size=None,
        sampler=sampler,
        collate_fn=collate_jets,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
    )


def same_vertex_targets(vertex: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Pair targets: 1 if two tracks come from the same vertex, 0 if not, -1 to ignore.

    Pairs are ignored when either particle is padding or has no vertex (``vertex < 0``, e.g. a
    neutral candidate), and on the diagonal (a particle with itself).

    Shapes:
        - vertex: ``[B, N]`` integer; mask: ``[B, N]`` bool; output: ``[B, N, N]`` float32.
    """
    valid = mask.bool() & (vertex >= 0)
    pair = valid.unsqueeze(2) & valid.unsqueeze(1)
    size = vertex.shape[-1]
    pair &= ~torch.eye(size, dtype=torch.bool, device=vertex.device)
    same = (vertex.unsqueeze(2) == vertex.unsqueeze(1)).float()
    return torch.where(pair, same, torch.full_like(same, -1.0))


def fit_cache_normalizers(
    dataset: JetCacheDataset, max_jets: int = 200_000, seed: int = 0
) -> tuple[Normalizer, Normalizer]:
    """Fit particle and jet-level normalizers on (a seeded subset of) a dataset's jets.

    Pass the training split's dataset: normalization must come from training data only. The
    dataset's own normalizers are not applied.

    Returns:
        (particle normalizer for ``dataset.feature_names``, jet-level normalizer).
    """
    positions = np.arange(len(dataset))
    if len(positions) > max_jets:
        positions = np.sort(
            np.random.default_rng(seed).choice(len(dataset), max_jets, replace=False)
        )
    batch = dataset.raw(positions)
    particles = batch["particles"].astype(np.float32)
    names = dataset.feature_names
    particle_norm = Normalizer.fit(particles, names, mask=batch["mask"], seed=seed)
    jet_norm = Normalizer.fit(batch["jet"], dataset.info.jet_feature_names, untouched=(), seed=seed)
    return particle_norm, jet_norm
