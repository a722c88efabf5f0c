"""The Lightning data module of a recipe: cache, event splits, classes, label subsample,
normalization from the training jets only, derived targets, and the loaders of each split.

Use::

    data = JetDataModule(recipe.data, seed=recipe.trainer.seed)
    data.prepare()                      # cache + splits + normalization (call once, any rank)
    data.require_targets(["label"])     # what the heads read (derived targets are computed)
    trainer.fit(module, datamodule=data)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from foundation.data.cache import CacheInfo, open_arrays
from foundation.data.features import resolve_feature_names
from foundation.data.loading import fit_cache_normalizers
from foundation.data.normalization import Normalizer
from foundation.data.splits import split_indices, subsample
from foundation.errors import DataError
from foundation.extras import requires_extra
from foundation.training.datasets import (
    ResumableBatchSampler,
    ResumableLoader,
    TaskDataset,
    make_task_loader,
)
from foundation.training.normalization import normalization_record, normalizers_from_record
from foundation.training.recipe import DataConfig
from foundation.training.sources import prepare_cache
from foundation.training.targets import JET_TARGETS, PAIR_TARGETS, required_inputs

with requires_extra("train"):
    import lightning as L

_ALWAYS = ("label",)


@dataclass
class DataSummary:
    """What the model builder and the checkpoint need to know about the prepared data.

    Attributes:
        cache: the cache folder's info.
        feature_names: particle features ``F`` of the batches, in order.
        jet_feature_names: jet-level inputs ``J``, in order.
        label_names: class names (after ``data.classes``), in class-index order.
        sizes: jets per split (``train`` after the ``train_size`` subsample).
        normalization: the normalization record (see :mod:`foundation.training.normalization`).
        targets: names of the targets the batches can carry (stored and derivable).
        provenance: sources, simulation request, splits and seeds, for the checkpoint.
    """

    cache: CacheInfo
    feature_names: tuple[str, ...]
    jet_feature_names: tuple[str, ...]
    label_names: tuple[str, ...]
    sizes: dict[str, int]
    normalization: dict[str, Any]
    targets: tuple[str, ...]
    provenance: dict[str, Any] = field(default_factory=dict)


class JetDataModule(L.LightningDataModule):
    """Train / val / test loaders of a recipe's data (see the module docstring).

    Args:
        config: the recipe's ``data`` section.
        seed: shuffling seed (the trainer seed).
        show_progress: show the simulation progress bar.
    """

    def __init__(self, config: DataConfig, seed: int = 0, show_progress: bool = True) -> None:
        super().__init__()
        self.config = config
        self.seed = seed
        self.show_progress = show_progress
        self.summary: DataSummary | None = None
        self.indices: dict[str, np.ndarray] = {}
        self._normalizers: tuple[Normalizer, Normalizer] | None = None
        self._label_map: np.ndarray | None = None
        self._jet_targets: tuple[str, ...] = ()
        self._pair_targets = False
        self._train_loader: ResumableLoader | None = None

    # ------------------------------------------------------------------------------ prepare
    def prepare(self, normalization: Mapping[str, Any] | None = None) -> DataSummary:
        """Make the cache, the splits and the normalization (idempotent).

        Args:
            normalization: a normalization record to use (e.g. the pretrained checkpoint's);
                None fits one on the training jets.

        Raises:
            DataError: bad data, unknown ``data.classes``, or ``train_size`` larger than the
                training split.
        """
        if self.summary is not None:
            return self.summary
        info = prepare_cache(self.config, show_progress=self.show_progress)
        arrays = open_arrays(info)
        labels = np.asarray(arrays["label"])
        label_names = self._select_classes(info, labels)
        fractions = {
            "train": self.config.split.train,
            "val": self.config.split.val,
            "test": self.config.split.test,
        }
        splits = split_indices(np.asarray(arrays["event_id"]), fractions, self.config.split.seed)
        if self._label_map is not None:
            splits = {k: v[self._label_map[labels[v]] >= 0] for k, v in splits.items()}
        splits["train"] = self._subsample(info, splits["train"], labels)
        self.indices = splits
        features = resolve_feature_names(self.config.features)
        if normalization is None:
            train = TaskDataset(info.folder, splits["train"], features)
            if len(train) == 0:
                raise DataError(info.folder, "split", "at least one training jet", "none")
            self._normalizers = fit_cache_normalizers(
                train, max_jets=self.config.normalization_jets, seed=self.config.split.seed
            )
        else:
            self._normalizers = normalizers_from_record(normalization)
        record = normalization_record(*self._normalizers)
        sizes = {name: len(values) for name, values in splits.items()}
        self.summary = DataSummary(
            cache=info,
            feature_names=features,
            jet_feature_names=info.jet_feature_names,
            label_names=label_names,
            sizes=sizes,
            normalization=record,
            targets=self._available_targets(info),
            provenance=self._provenance(info, sizes),
        )
        return self.summary

    def _select_classes(self, info: CacheInfo, labels: np.ndarray) -> tuple[str, ...]:
        classes = self.config.classes
        if not classes:
            return info.label_names
        unknown = [name for name in classes if name not in info.label_names]
        if unknown:
            raise DataError(
                info.folder,
                "data.classes",
                f"label names among {list(info.label_names)}",
                unknown,
            )
        label_map = np.full(len(info.label_names), -1, dtype=np.int64)
        for index, name in enumerate(classes):
            label_map[info.label_names.index(name)] = index
        self._label_map = label_map
        return tuple(classes)

    def _subsample(self, info: CacheInfo, train: np.ndarray, labels: np.ndarray) -> np.ndarray:
        size = self.config.train_size
        if size is None:
            return train
        if size > len(train):
            raise DataError(
                info.folder,
                "data.train_size",
                f"at most the {len(train)} jets of the training split",
                size,
                hint="make more data or lower train_size",
            )
        picked = subsample(labels[train], size, seed=self.config.subsample_seed)
        return train[picked]

    def class_indices(self, labels: np.ndarray) -> np.ndarray:
        """Map the cache's label indices to this module's classes (``data.classes``); -1 for
        jets of a class left out. The identity when ``data.classes`` is not set.

        Shapes:
            - labels: ``[M]`` int; output: ``[M]`` int64
        """
        labels = np.asarray(labels, dtype=np.int64)
        return labels if self._label_map is None else self._label_map[labels]

    @staticmethod
    def _available_targets(info: CacheInfo) -> tuple[str, ...]:
        stored = [name for name in info.arrays if name not in ("particles", "vectors", "mask")]
        stored = [name for name in stored if name not in ("jet", "event_id")]
        present = set(stored) | set(info.jet_feature_names)
        derived = [
            name
            for name in (*JET_TARGETS, *PAIR_TARGETS)
            if all(need in present for need in required_inputs(name))
        ]
        return tuple(sorted({*stored, *derived}))

    def _provenance(self, info: CacheInfo, sizes: dict[str, int]) -> dict[str, Any]:
        from foundation.training.typed import to_plain

        return {
            "cache": str(info.folder),
            "sources": [entry.get("path") for entry in info.sources],
            "simulate": to_plain(self.config.simulate) if self.config.simulate else None,
            "split": to_plain(self.config.split),
            "classes": list(self.config.classes) if self.config.classes else None,
            "train_size": self.config.train_size,
            "subsample_seed": self.config.subsample_seed,
            "jets": sizes,
        }

    # ------------------------------------------------------------------------------ targets
    def require_targets(self, names: Iterable[str]) -> None:
        """Declare the targets the heads read; derived ones will be computed.

        Raises:
            RuntimeError: :meth:`prepare` was not called.
            KeyError: a target the data cannot provide (the message lists those it can).
        """
        summary = self._prepared()
        wanted = set(names)
        missing = sorted(wanted - set(summary.targets))
        if missing:
            raise KeyError(
                f"the heads need target(s) {missing}, which the data ({summary.cache.folder}) "
                f"cannot provide; available: {', '.join(summary.targets)}"
            )
        self._jet_targets = tuple(sorted(wanted & set(JET_TARGETS)))
        self._pair_targets = bool(wanted & set(PAIR_TARGETS))

    def _prepared(self) -> DataSummary:
        if self.summary is None:
            raise RuntimeError("JetDataModule.prepare() must be called first")
        return self.summary

    # ------------------------------------------------------------------------------ loaders
    def dataset(
        self, split: str, limit: int | None = None, shard: tuple[int, int] = (0, 1)
    ) -> TaskDataset:
        """The dataset of ``split`` (``train``, ``val``, ``test``).

        Args:
            split: the split.
            limit: keep only its first ``limit`` jets.
            shard: ``(rank, world_size)``: keep every ``world_size``-th jet from ``rank`` on
                (all jets when the split has fewer jets than processes).
        """
        summary = self._prepared()
        indices = self.indices[split] if limit is None else self.indices[split][:limit]
        rank, world = shard
        if world > 1 and len(indices) >= world:
            indices = indices[rank::world]
        particles, jet = self._normalizers  # type: ignore[misc]
        return TaskDataset(
            summary.cache.folder,
            indices,
            summary.feature_names,
            particles,
            jet,
            self._label_map,
            self._jet_targets,
        )

    def _rank(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _progress(self) -> tuple[int, int]:
        """(epoch, batches trained in it), for mid-epoch resumption."""
        trainer = self.trainer
        per_epoch = len(self._train_loader) if self._train_loader is not None else 0
        epoch = trainer.current_epoch
        done = trainer.global_step - epoch * per_epoch
        return epoch, max(0, min(done, per_epoch))

    def train_batches(self, world_size: int = 1) -> int:
        """Training batches per epoch of each process."""
        sampler = ResumableBatchSampler(
            len(self.indices["train"]),
            self.config.batch_size,
            True,
            0,
            False,
            0,
            world_size,
            even=True,
        )
        return len(sampler)

    def loader(
        self, split: str, *, train: bool = False, limit: int | None = None
    ) -> ResumableLoader:
        """A loader of ``split`` for this process.

        Training: shuffled, resumable, the same number of batches on every process (each takes
        every ``world_size``-th batch). Evaluation: in order, each process reads every
        ``world_size``-th jet, so that every process has at least one batch.
        """
        rank, world = self._rank()
        config = self.config
        if not train:
            return make_task_loader(
                self.dataset(split, limit, shard=(rank, world)),
                config.eval_batch_size or config.batch_size,
                shuffle=False,
                seed=self.seed,
                pair_targets=self._pair_targets,
                num_workers=config.num_workers,
            )
        return make_task_loader(
            self.dataset(split, limit),
            config.batch_size,
            shuffle=True,
            seed=self.seed,
            pair_targets=self._pair_targets,
            rank=rank,
            world_size=world,
            num_workers=config.num_workers,
            progress=self._progress,
        )

    def train_dataloader(self) -> ResumableLoader:
        self._train_loader = self.loader("train", train=True)
        if len(self._train_loader) == 0:
            _, world = self._rank()
            raise DataError(
                self._prepared().cache.folder,
                "train split",
                f"at least one batch of {self.config.batch_size} jets per process ({world})",
                f"{len(self.indices['train'])} training jets",
                hint="lower data.batch_size or use more data",
            )
        return self._train_loader

    def val_dataloader(self) -> ResumableLoader | list:
        return self.loader("val") if len(self.indices["val"]) else []

    def test_dataloader(self) -> ResumableLoader | list:
        return self.loader("test") if len(self.indices["test"]) else []
