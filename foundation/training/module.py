"""The LightningModule: one training / validation / test step for any :class:`Model`.

A model with a head that uses masking (:attr:`heads.base.Head.uses_masking`, e.g. a
``masked_particle`` head) is trained on batches made by
:func:`heads.masked_particle.mask_particles`; its other heads (e.g. the 10-class jet identity
of multi-task pretraining) see the same masked batch, so one backbone pass serves every loss.
The total loss is the heads' weighted sum (:meth:`Model.loss`).

Randomness is a function of the seed and the step: before each training step the global
generators are seeded from ``(seed, global_step, rank)``, so dropout and masking are the same
whether or not the run was interrupted and resumed. Validation and test masks are seeded by
the batch index.

Logged (TensorBoard and progress bar): ``train/loss``, ``val/loss``, ``test/loss`` and, for
each head, ``<stage>/<head>/loss`` and its metrics ``<stage>/<head>/<metric>`` (per-batch
metrics averaged over the epoch, weighted by batch size; NaN values, e.g. the AUC of a batch
with a single class, are left out; training metrics are computed on logging steps only).
Training values are logged per step as ``..._step`` and per epoch as ``..._epoch``; the epoch
sums are the module's own and are saved in ``last.ckpt``, so that the epoch mean of a resumed
run covers the batches before the checkpoint too.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from foundation.data.batch import JetBatch
from foundation.extras import requires_extra
from foundation.model import Model
from foundation.training.finetune import frozen_feature_cache
from foundation.training.modes import get_mode
from foundation.training.optim import build_optimizer, build_schedule, parameter_groups
from foundation.training.recipe import Recipe
from heads.masked_particle import mask_particles

with requires_extra("train"):
    import lightning as L

_MIX = 0x9E3779B97F4A7C15


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """A 63-bit seed for training step ``step`` of process ``rank`` (SplitMix64 mixing)."""
    value = (seed * 1_000_003 + step) * 65_537 + rank
    value = (value + _MIX) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (value ^ (value >> 31)) >> 1


class TrainingModule(L.LightningModule):
    """Train, validate and test a :class:`Model` as a recipe says.

    Args:
        model: the model (heads attached, fine-tuning mode applied).
        recipe: the recipe (optimizer, fine-tuning, trainer and mask settings).

    Attributes:
        total_steps: optimizer steps of the whole run, for the LR schedule. Set it: Lightning's
            ``estimated_stepping_batches`` builds the training loader before a checkpoint is
            restored, which would lose the loader's resume state.
        final_prefix: when set (e.g. ``"final/test"``), validation steps log under that prefix
            and not to the logger (used for the run's closing evaluation).
    """

    def __init__(self, model: Model, recipe: Recipe) -> None:
        super().__init__()
        self.model = model
        self.recipe = recipe
        self.masked = any(head.uses_masking for head in model.heads.values())
        # a plain object, not a submodule: nothing enters the state_dict or the optimizer
        self.frozen_features = None if self.masked else frozen_feature_cache(model, recipe)
        self.final_prefix: str | None = None
        self.total_steps: int | None = None
        self._sums: dict[str, tuple[Any, int]] = {}
        self._sums_epoch: int | None = None
        self._means: dict[str, float] = {}
        self._means_stamp: tuple[int, int] | None = None

    def forward(self, batch: JetBatch) -> dict[str, dict[str, torch.Tensor]]:
        return self.model(batch)

    # -------------------------------------------------------------------------------- steps
    def transfer_batch_to_device(
        self, batch: JetBatch, device: torch.device, dataloader_idx: int
    ) -> JetBatch:
        return batch.to(device, non_blocking=True)

    def _prepare(self, batch: JetBatch, generator: torch.Generator | None) -> JetBatch:
        batch = batch.trimmed()  # drop padding slots no jet of the batch uses (same losses)
        if not self.masked:
            return batch
        return mask_particles(batch, self.recipe.model.mask_fraction, generator=generator)

    def _step(self, batch: JetBatch, stage: str, generator: torch.Generator | None) -> torch.Tensor:
        batch = self._prepare(batch, generator)
        features = None if self.frozen_features is None else self.frozen_features(batch)
        outputs = self.model(batch, features=features)
        total, per_head = self.model.loss(batch, outputs)
        size = len(batch)
        self._log(stage, f"{stage}/loss", total, size, prog_bar=self.final_prefix is None)
        for name, value in per_head.items():
            self._log(stage, f"{stage}/{name}/loss", value, size)
        if stage == "train" and self.global_step % self.recipe.trainer.log_every:
            return total  # training metrics only on logging steps (they synchronise the GPU)
        for name, values in self.model.metrics(batch, outputs).items():
            for metric, value in values.items():
                value = value.detach().float()
                if math.isfinite(float(value)):
                    self._log(stage, f"{stage}/{name}/{metric}", value, size)
        return total

    def _log(
        self, stage: str, key: str, value: torch.Tensor, size: int, prog_bar: bool = False
    ) -> None:
        """Log one value: evaluation values as epoch means (Lightning's), training values per
        step as ``KEY_step`` and into the module's own epoch sums (``KEY_epoch`` at the end of
        the epoch), which travel in ``last.ckpt`` so that a resumed epoch's mean is complete."""
        value = value.detach()
        if stage != "train":
            self.log(
                key,
                value,
                batch_size=size,
                on_step=False,
                on_epoch=True,
                sync_dist=True,
                logger=self.final_prefix is None,
                prog_bar=prog_bar,
            )
            return
        self.log(
            f"{key}_step", value, batch_size=size, on_step=True, on_epoch=False, prog_bar=prog_bar
        )
        if self._sums_epoch != self.current_epoch:
            self._sums, self._sums_epoch = {}, self.current_epoch
        total, weight = self._sums.get(key, (0.0, 0))
        self._sums[key] = (total + value.float() * size, weight + size)

    def epoch_mean(self, key: str) -> float | None:
        """The mean of training value ``key`` over the current epoch so far (batch-size
        weighted, resumed batches included); None when it was not logged this epoch."""
        return self.epoch_means().get(key)

    def epoch_means(self) -> dict[str, float]:
        """Means of the training values over the current epoch so far.

        Losses are averaged over every process of a distributed run (one collective: call it
        on every rank); metrics, logged on logging steps only, are this process's.
        """
        if self._sums_epoch != self.current_epoch:
            return {}
        stamp = (self.current_epoch, self.global_step)
        if self._means_stamp == stamp:
            return self._means
        losses = sorted(key for key in self._sums if key.endswith("/loss"))
        totals = torch.tensor(
            [[float(self._sums[key][0]), float(self._sums[key][1])] for key in losses],
            dtype=torch.float64,
            device=self.device,
        )
        if losses and self._trainer is not None and self.trainer.world_size > 1:
            totals = self.trainer.strategy.reduce(totals, reduce_op="sum")
        rows = totals.tolist()
        means = {key: total / n for key, (total, n) in zip(losses, rows, strict=True) if n}
        for key, (total, n) in self._sums.items():
            if key not in means and n:
                means[key] = float(total) / n
        self._means, self._means_stamp = means, stamp
        return means

    def on_train_epoch_end(self) -> None:
        for key, mean in self.epoch_means().items():
            self.log(f"{key}_epoch", mean, on_step=False, on_epoch=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["train_epoch_sums"] = {
            "epoch": self._sums_epoch,
            "sums": {key: [float(total), int(n)] for key, (total, n) in self._sums.items()},
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("train_epoch_sums") or {}
        self._sums_epoch = state.get("epoch")
        self._sums = {
            key: (float(total), int(n)) for key, (total, n) in state.get("sums", {}).items()
        }

    def on_train_batch_start(self, batch: JetBatch, batch_idx: int) -> None:
        seed = step_seed(self.recipe.trainer.seed, self.global_step, self.global_rank)
        torch.manual_seed(seed)

    def training_step(self, batch: JetBatch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train", None)

    def _eval_generator(self, batch_idx: int) -> torch.Generator:
        return torch.Generator().manual_seed(step_seed(self.recipe.trainer.seed, batch_idx, 1))

    def validation_step(self, batch: JetBatch, batch_idx: int) -> None:
        self._step(batch, self.final_prefix or "val", self._eval_generator(batch_idx))

    def test_step(self, batch: JetBatch, batch_idx: int) -> None:
        self._step(batch, self.final_prefix or "test", self._eval_generator(batch_idx))

    # ---------------------------------------------------------------------------- optimizer
    def configure_optimizers(self) -> dict[str, Any]:
        recipe = self.recipe
        groups = parameter_groups(
            self.model,
            recipe.finetune,
            recipe.optimizer,
            include_frozen=get_mode(recipe.finetune.mode).gradual_unfreezing,
        )
        optimizer = build_optimizer(groups, recipe.optimizer)
        total = self.total_steps or int(self.trainer.estimated_stepping_batches)
        schedule = build_schedule(optimizer, recipe.optimizer, total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": schedule, "interval": "step", "frequency": 1},
        }
