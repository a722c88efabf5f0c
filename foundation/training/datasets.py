"""Training-side data: class selection and derived targets on top of the cache dataset, and a
data loader that resumes in the middle of an epoch.

:class:`ResumableLoader` implements the ``state_dict`` / ``load_state_dict`` pair that
Lightning saves in ``last.ckpt`` and restores on resume: it records the epoch and how many
batches of it were trained, and the restored sampler skips exactly those, so a resumed run sees
the same batches in the same order as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from foundation.data.batch import JetBatch
from foundation.data.loading import BatchIndexSampler, JetCacheDataset, collate_jets
from foundation.data.normalization import Normalizer
from foundation.training.targets import add_jet_targets, add_pair_targets


class TaskDataset(JetCacheDataset):
    """A :class:`~foundation.data.loading.JetCacheDataset` with class selection and derived targets.

    Args:
        folder: the cache folder.
        indices: the jets of this dataset.
        features: particle features to return.
        normalizer: particle-feature normalization.
        jet_normalizer: jet-input normalization.
        label_map: new class index of each cached class index (-1: not selected); None keeps
            the cached labels.
        jet_targets: derived jet-level targets to add (see :mod:`foundation.training.targets`).
    """

    def __init__(
        self,
        folder: str | Path,
        indices: np.ndarray,
        features: Sequence[str] | None = None,
        normalizer: Normalizer | None = None,
        jet_normalizer: Normalizer | None = None,
        label_map: np.ndarray | None = None,
        jet_targets: Sequence[str] = (),
    ) -> None:
        super().__init__(folder, indices, features, normalizer, jet_normalizer)
        self.label_map = None if label_map is None else np.asarray(label_map, dtype=np.int64)
        self.jet_targets = tuple(jet_targets)

    def _gather(self, rows: np.ndarray, normalize: bool = True) -> dict[str, Any]:
        out = super()._gather(rows, normalize)
        if not normalize:
            return out
        if self.label_map is not None and "label" in out:
            out["label"] = self.label_map[out["label"]]
        if self.jet_targets:
            raw_jet = np.asarray(self.arrays["jet"][rows])
            add_jet_targets(out, raw_jet, self.info.jet_feature_names, self.jet_targets)
        return out


class TaskCollate:
    """Collate to a :class:`JetBatch`, adding pair targets when asked (picklable for workers)."""

    def __init__(self, pair_targets: bool = False) -> None:
        self.pair_targets = pair_targets

    def __call__(self, items: Mapping[str, Any]) -> JetBatch:
        batch = collate_jets(items)
        if self.pair_targets:
            add_pair_targets(batch.targets, batch.mask)
        return batch


class ResumableBatchSampler(BatchIndexSampler):
    """A :class:`BatchIndexSampler` that can skip the batches of an epoch already trained.

    With ``even=True`` every rank of a distributed run gets the same number of batches (the
    few left over are dropped), as data-parallel training needs.
    """

    def __init__(self, *args: Any, even: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.even = even
        self._skip: tuple[int, int] | None = None

    def _total_batches(self) -> int:
        full, rest = divmod(self.num_items, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def _batches(self) -> list[np.ndarray]:
        batches = super()._batches()
        if self.even and self.world_size > 1:
            batches = batches[: self._total_batches() // self.world_size]
        return batches

    def __len__(self) -> int:
        if self.even and self.world_size > 1:
            return self._total_batches() // self.world_size
        return super().__len__()

    def resume(self, epoch: int, batches_done: int) -> None:
        """Continue epoch ``epoch`` after ``batches_done`` batches (the next epoch if complete)."""
        if batches_done >= len(self):
            epoch, batches_done = epoch + 1, 0
        self.epoch = epoch
        self._skip = (epoch, batches_done)

    def __iter__(self) -> Iterator[np.ndarray]:
        skip = 0
        if self._skip is not None and self._skip[0] == self.epoch:
            skip = self._skip[1]
        self._skip = None
        for batch in self._batches()[skip:]:
            yield np.sort(batch) if self.shuffle else batch


class ResumableLoader(DataLoader):
    """A ``DataLoader`` over a :class:`ResumableBatchSampler` that Lightning can checkpoint.

    Args:
        dataset: the dataset (batch-indexed).
        sampler: its batch sampler.
        collate_fn: builds the batch.
        progress: returns ``(epoch, batches trained in that epoch)`` when a checkpoint is
            written; without it the loader restarts epochs from their start.
        num_workers: worker processes.
        pin_memory: pin batches for faster host-to-GPU copies.
    """

    def __init__(
        self,
        dataset: JetCacheDataset,
        sampler: ResumableBatchSampler,
        collate_fn: Callable[[Any], JetBatch],
        progress: Callable[[], tuple[int, int]] | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=None,
            sampler=sampler,
            collate_fn=collate_fn,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=num_workers > 0,
        )
        self.progress = progress

    def state_dict(self) -> dict[str, int]:
        """``{"epoch", "batches_done"}`` of the training in progress."""
        if self.progress is None:
            return {"epoch": int(self.sampler.epoch), "batches_done": 0}
        epoch, done = self.progress()
        return {"epoch": int(epoch), "batches_done": int(done)}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Make the next iteration continue where the checkpointed run stopped."""
        self.sampler.resume(int(state["epoch"]), int(state["batches_done"]))


def make_task_loader(
    dataset: JetCacheDataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    pair_targets: bool = False,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
    drop_last: bool = False,
    progress: Callable[[], tuple[int, int]] | None = None,
) -> ResumableLoader:
    """A :class:`ResumableLoader` over ``dataset`` (this rank's share of the batches)."""
    sampler = ResumableBatchSampler(
        len(dataset), batch_size, shuffle, seed, drop_last, rank, world_size, even=shuffle
    )
    return ResumableLoader(
        dataset, sampler, TaskCollate(pair_targets), progress, num_workers, pin_memory
    )
