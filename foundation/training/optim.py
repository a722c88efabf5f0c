"""Optimizer parameter groups (head LR multiplier, layer-wise LR decay, no decay on biases and
norms) and the warm-up + cosine / linear / constant learning-rate schedule.

Layer-wise decay uses :meth:`foundation.models.base.Backbone.layer_groups` (input to output):
with ``G`` groups, group ``g`` (0-based) trains at ``lr * decay ** (G - g)``, so the top group
gets ``lr * decay`` and the embedding ``lr * decay ** G``; heads train at
``lr * head_lr_multiplier`` (at ``lr`` in mode ``scratch``, where nothing is pretrained).
Backbone parameters that no layer group lists (e.g. adapters) train at the top group's rate.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from foundation.model import Model
from foundation.training.modes import get_mode
from foundation.training.recipe import FinetuneConfig, OptimizerConfig


def _split_decay(
    parameters: list[tuple[str, nn.Parameter]], lr: float, weight_decay: float, name: str
) -> list[dict[str, Any]]:
    """One group with weight decay (matrices) and one without (biases, norms: ndim <= 1)."""
    decay = [p for n, p in parameters if p.ndim > 1]
    no_decay = [p for n, p in parameters if p.ndim <= 1]
    groups = []
    if decay:
        groups.append({"params": decay, "lr": lr, "weight_decay": weight_decay, "name": name})
    if no_decay:
        groups.append(
            {"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": f"{name}/no_decay"}
        )
    return groups


def parameter_groups(
    model: Model,
    finetune: FinetuneConfig,
    optimizer: OptimizerConfig,
    include_frozen: bool = False,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups with their learning rates.

    Args:
        model: the model.
        finetune: mode, head LR multiplier and layer decay.
        optimizer: base learning rate and weight decay.
        include_frozen: also include parameters that do not require gradients now (gradual
            unfreezing turns them on later).

    Returns:
        Groups ``{"params", "lr", "weight_decay", "name"}``; names are ``heads``,
        ``backbone`` or ``backbone.<g>`` (layer-wise decay), with a ``/no_decay`` twin.
    """
    lr, weight_decay = optimizer.lr, optimizer.weight_decay

    def wanted(parameter: nn.Parameter) -> bool:
        return include_frozen or parameter.requires_grad

    head_params = [(n, p) for n, p in model.heads.named_parameters() if wanted(p)]
    # From scratch nothing pretrained is protected: heads and backbone share the rate.
    mode = get_mode(finetune.mode)
    head_lr = lr * finetune.head_lr_multiplier if mode.head_lr_multiplier else lr
    groups = _split_decay(head_params, head_lr, weight_decay, "heads")
    backbone_params = [(n, p) for n, p in model.backbone.named_parameters() if wanted(p)]
    if not mode.layer_decay:
        return groups + _split_decay(backbone_params, lr, weight_decay, "backbone")
    layers = model.backbone.layer_groups()
    count = len(layers)
    placed: set[int] = set()
    for index, layer in enumerate(layers):
        ids = {id(p) for p in layer}
        members = [(n, p) for n, p in backbone_params if id(p) in ids and id(p) not in placed]
        placed |= {id(p) for _, p in members}
        scale = finetune.layer_decay ** (count - index)
        groups += _split_decay(members, lr * scale, weight_decay, f"backbone.{index}")
    rest = [(n, p) for n, p in backbone_params if id(p) not in placed]
    groups += _split_decay(rest, lr * finetune.layer_decay, weight_decay, "backbone.rest")
    return groups


def build_optimizer(groups: list[dict[str, Any]], config: OptimizerConfig) -> torch.optim.Optimizer:
    """The optimizer of ``config.name`` over ``groups`` (their ``lr`` are the peak rates)."""
    if not groups:
        raise ValueError("nothing to train: every parameter is frozen")
    if config.name == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    if config.name == "adam":
        return torch.optim.Adam(groups, lr=config.lr, betas=config.betas)
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


class WarmupSchedule:
    """LR factor at a step: linear warm-up, then cosine / linear decay or constant.

    A callable object (not a closure) so that ``LambdaLR.state_dict`` stores plain numbers and a
    resumed run continues the same curve.

    Args:
        total_steps: optimizer steps of the whole run.
        warmup_steps: steps of the linear warm-up from 0.
        kind: ``cosine``, ``linear`` or ``constant``.
        min_ratio: final factor of the decay.
    """

    def __init__(self, total_steps: int, warmup_steps: int, kind: str, min_ratio: float) -> None:
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, int(warmup_steps))
        self.kind = kind
        self.min_ratio = float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.kind == "constant":
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        if self.kind == "linear":
            shape = 1.0 - progress
        else:
            shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_ratio + (1.0 - self.min_ratio) * shape


def build_schedule(
    optimizer: torch.optim.Optimizer, config: OptimizerConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """The per-step schedule of ``config`` over ``total_steps``."""
    warmup = config.warmup_steps or round(config.warmup_fraction * total_steps)
    schedule = WarmupSchedule(total_steps, warmup, config.schedule, config.min_lr_ratio)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
