"""LoRA (Hu et al. 2021, arXiv:2106.09685): low-rank updates of a frozen backbone's Linear layers.

Why our own and not PEFT: PEFT finds its targets by the module names of Hugging Face
transformers and adds a dependency; our backbones have a handful of attention and feed-forward
Linear layers, and their attention reads the input projection's weight directly for
cross-attention (class tokens). So the adapter here changes the *weight* a layer exposes,
``W' = W + (alpha / r) B A``, which every use of the layer sees (its forward and any direct
``.weight`` read), while the stored parameters keep their names: ``<layer>.weight`` and
``<layer>.bias`` are the base checkpoint's, ``<layer>.lora_a`` / ``<layer>.lora_b`` are new. A
fine-tune therefore saves as a delta (heads + ``lora_*`` tensors) that names its base, and the
adapter is registered with :func:`foundation.models.adapters.register_adapter` so that
``config.json`` alone rebuilds it.

``B`` starts at zero, so an adapted model starts exactly equal to its base.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from foundation.models.adapters import register_adapter

if TYPE_CHECKING:
    from foundation.model import Model

ADAPTER_NAME = "lora"
DEFAULT_TARGETS: tuple[str, ...] = ("in_proj", "out_proj")
"""Default target layers: the attention input and output projections."""


class LoRALinear(nn.Linear):
    """A Linear layer whose weight reads as ``W + (alpha / r) B A`` (W and bias shared).

    Build it with :meth:`wrap` from an existing layer; the base parameters are the same
    ``Parameter`` objects (nothing is copied).

    Args (of :meth:`wrap`):
        base: the layer to adapt.
        rank: rank ``r`` of the update.
        alpha: scale numerator (the update is scaled by ``alpha / r``).

    Shapes:
        - lora_a: ``[r, in_features]``; lora_b: ``[out_features, r]``
        - input: ``[..., in_features]``; output: ``[..., out_features]``
    """

    rank: int
    scaling: float

    @classmethod
    def wrap(cls, base: nn.Linear, rank: int, alpha: float) -> LoRALinear:
        """Adapt ``base`` (its weight and bias are shared, not copied)."""
        if rank < 1:
            raise ValueError(f"lora: rank must be >= 1, found {rank}")
        layer = cls.__new__(cls)
        nn.Module.__init__(layer)
        layer.in_features = base.in_features
        layer.out_features = base.out_features
        layer.weight = base.weight
        layer.bias = base.bias
        layer.rank = int(rank)
        layer.scaling = float(alpha) / int(rank)
        device, dtype = base.weight.device, base.weight.dtype
        layer.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=device, dtype=dtype))
        layer.lora_b = nn.Parameter(
            torch.zeros(base.out_features, rank, device=device, dtype=dtype)
        )
        nn.init.kaiming_uniform_(layer.lora_a, a=math.sqrt(5))
        layer.train(base.training)
        return layer

    def __getattr__(self, name: str) -> Any:
        # Parameters live in ``_parameters``, so ``self.weight`` always comes through here.
        if name == "weight":
            base = super().__getattr__("weight")
            update = super().__getattr__("lora_b") @ super().__getattr__("lora_a")
            return base + self.scaling * update.to(base.dtype)
        return super().__getattr__(name)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rank={self.rank}, scaling={self.scaling:g}"


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The LoRA parameters (``lora_a``, ``lora_b``) of every adapted layer."""
    return [p for n, p in model.named_parameters() if n.rsplit(".", 1)[-1] in ("lora_a", "lora_b")]


@register_adapter(ADAPTER_NAME)
def apply_lora(
    model: Model, rank: int = 8, alpha: float = 16.0, targets: Sequence[str] = DEFAULT_TARGETS
) -> None:
    """Replace the backbone's Linear layers named in ``targets`` with :class:`LoRALinear`.

    Args:
        model: the model (its backbone is adapted in place).
        rank: rank of the updates.
        alpha: scale numerator.
        targets: layer names or dotted name suffixes to adapt (``in_proj`` adapts every
            ``*.in_proj``; ``phi.0`` one layer of a PFN).

    Raises:
        ValueError: no Linear layer of the backbone matches ``targets`` (the message lists the
            backbone's Linear layers).
    """
    wanted = tuple(targets)

    def matches(name: str) -> bool:
        return any(name == target or name.endswith("." + target) for target in wanted)

    found = []
    for name, module in list(model.backbone.named_modules()):
        if matches(name) and isinstance(module, nn.Linear) and not isinstance(module, LoRALinear):
            found.append((name, module))
    if not found:
        available = sorted(
            name for name, module in model.backbone.named_modules() if isinstance(module, nn.Linear)
        )
        raise ValueError(
            f"lora: no Linear layer of backbone {model.backbone_name!r} is named "
            f"{sorted(wanted)}; its Linear layers are: {', '.join(available) or 'none'}"
        )
    for name, module in found:
        parent_name, _, child = name.rpartition(".")
        parent = model.backbone.get_submodule(parent_name) if parent_name else model.backbone
        setattr(parent, child, LoRALinear.wrap(module, rank, alpha))
