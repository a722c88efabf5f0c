"""Fine-tuning modes: what trains, and the gradual-unfreezing callback.

- ``full``, ``scratch``, ``lwld``: everything trains (``lwld`` only changes the learning rates,
  see :mod:`foundation.training.optim`; ``scratch`` is decided when the model is built);
- ``frozen`` / ``linear``: the backbone is frozen (eval mode, no gradients); the heads are
  MLPs (``frozen``) or linear probes (``linear``, set when the heads are built);
- ``unfreeze``: the backbone starts frozen and its layer groups are unfrozen from the top, one
  every ``unfreeze_every`` epochs (a function of the epoch only, so resuming is exact);
- ``lora``: the backbone is frozen and LoRA adapters (:mod:`foundation.models.lora`) train.

A fine-tune whose backbone weights stay those of the pretrained checkpoint (frozen, linear,
lora) is saved as a *delta*: heads and adapters only, naming the base and its hash.
"""

from __future__ import annotations

from foundation.extras import requires_extra
from foundation.model import Model
from foundation.models.frozen_features import FrozenFeatureCache
from foundation.models.lora import ADAPTER_NAME, lora_parameters
from foundation.training.modes import get_mode, mode_names
from foundation.training.recipe import FinetuneConfig, Recipe

with requires_extra("train"):
    import lightning as L

FROZEN_MODES = frozenset(mode_names(freezes_backbone=True))
"""Modes that leave the pretrained backbone's weights unchanged."""


def apply_mode(model: Model, config: FinetuneConfig) -> None:
    """Freeze, adapt or leave the backbone as ``config.mode`` says (heads always train)."""
    mode = get_mode(config.mode)
    if mode.lora:
        model.add_adapter(
            ADAPTER_NAME,
            rank=config.lora_rank,
            alpha=config.lora_alpha,
            targets=list(config.lora_targets),
        )
    if mode.freezes_backbone:
        model.freeze_backbone(True)
    if mode.lora:  # after freezing: the adapters train
        for parameter in lora_parameters(model.backbone):
            parameter.requires_grad_(True)
    if mode.gradual_unfreezing:
        set_unfrozen_groups(model, 0)


def frozen_feature_cache(model: Model, recipe: Recipe) -> FrozenFeatureCache | None:
    """The cache of the backbone's features for a run whose backbone never changes, else None.

    It applies when ``finetune.cache_frozen_features`` is set and the mode freezes the backbone
    and adds no adapters (``frozen``, ``linear``; not ``lora``). The caller leaves it out when
    the inputs are masked at random (a ``masked_particle`` head: no jet is seen twice). Call it
    after :func:`apply_mode`.

    Raises:
        ValueError: the backbone is not batch-independent (the message says why).
    """
    mode = get_mode(recipe.finetune.mode)
    if not recipe.finetune.cache_frozen_features or not mode.freezes_backbone:
        return None
    if mode.lora or model.adapters:
        return None
    return FrozenFeatureCache(model.backbone, max_jets=recipe.finetune.cache_max_jets)


def set_unfrozen_groups(model: Model, count: int) -> int:
    """Let the top ``count`` layer groups of the backbone train, freeze the others.

    Returns:
        The number of groups now trainable (at most the number of groups).
    """
    groups = model.backbone.layer_groups()
    count = max(0, min(count, len(groups)))
    trainable = {id(p) for group in groups[len(groups) - count :] for p in group}
    for parameter in model.backbone.parameters():
        parameter.requires_grad_(id(parameter) in trainable)
    return count


class GradualUnfreezing(L.Callback):
    """Unfreeze one more backbone layer group (top down) every ``every`` epochs.

    Epoch ``e`` trains the heads and the top ``e // every`` groups.
    """

    def __init__(self, every: int) -> None:
        self.every = max(1, int(every))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # also on resuming in the middle of an epoch, when no epoch starts
        set_unfrozen_groups(pl_module.model, trainer.current_epoch // self.every)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        set_unfrozen_groups(pl_module.model, trainer.current_epoch // self.every)


def saves_delta(recipe: Recipe) -> bool:
    """Whether the run's checkpoints are deltas on ``model.pretrained``."""
    mode = get_mode(recipe.finetune.mode)
    if recipe.model.pretrained is None or mode.fresh_weights:
        return False
    if recipe.finetune.delta is not None:
        return recipe.finetune.delta
    return mode.saves_delta
