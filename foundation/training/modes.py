"""Fine-tuning modes: one table of what each mode means.

Every place that behaves differently by mode (recipe checks, the model builder, the optimizer,
the training module, the run, the study, the CLI choices and the quickstart) reads a
:class:`Mode` from :data:`MODES` instead of comparing mode strings. Adding a mode is one row
here (and its name in :data:`ModeName`).

No imports beyond the standard library: the recipe, the CLI and the plot labels import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ModeName = Literal["full", "frozen", "linear", "lwld", "unfreeze", "lora", "scratch"]
"""The names a recipe's ``finetune.mode`` may take (the keys of :data:`MODES`)."""


@dataclass(frozen=True)
class Mode:
    """What one fine-tuning mode does.

    Attributes:
        name: the recipe's ``finetune.mode``.
        label: the name the README's tables and the plots use.
        summary: a few words for ``foundation finetune --help``.
        freezes_backbone: the backbone is frozen (eval mode, no gradients) for the whole run.
        linear_heads: the heads are linear probes (their ``hidden`` layers are dropped).
        fresh_weights: the pretrained architecture is rebuilt with new random weights.
        needs_pretrained: the recipe must name ``model.pretrained``.
        saves_delta: by default the run saves heads and adapters only, naming the base
            (``finetune.delta`` overrides it; never with fresh weights).
        lora: LoRA adapters are added to the backbone and train.
        layer_decay: backbone layer groups get decaying learning rates (``finetune.layer_decay``).
        head_lr_multiplier: the heads train at ``lr x finetune.head_lr_multiplier`` (else at
            ``lr``, like the backbone).
        gradual_unfreezing: the backbone starts frozen and its layer groups are unfrozen from the
            top (a callback; frozen parameters are in the optimizer from the start).
        pretraining: allowed in ``foundation pretrain`` (the whole backbone trains).
    """

    name: str
    label: str
    summary: str
    freezes_backbone: bool = False
    linear_heads: bool = False
    fresh_weights: bool = False
    needs_pretrained: bool = True
    saves_delta: bool = False
    lora: bool = False
    layer_decay: bool = False
    head_lr_multiplier: bool = True
    gradual_unfreezing: bool = False
    pretraining: bool = False


_TABLE: tuple[Mode, ...] = (
    Mode(
        "frozen",
        "pretrained, frozen",
        "frozen backbone, MLP heads",
        freezes_backbone=True,
        saves_delta=True,
    ),
    Mode(
        "linear",
        "pretrained, linear probe",
        "frozen backbone, linear heads",
        freezes_backbone=True,
        linear_heads=True,
        saves_delta=True,
    ),
    Mode(
        "full",
        "pretrained, fine-tuned",
        "everything trains",
        needs_pretrained=False,
        pretraining=True,
    ),
    Mode(
        "lwld",
        "pretrained, fine-tuned (layer-wise lr decay)",
        "everything trains, lower layers at decaying learning rates",
        layer_decay=True,
    ),
    Mode(
        "unfreeze",
        "pretrained, gradual unfreezing",
        "backbone layer groups unfrozen one by one from the top",
        gradual_unfreezing=True,
    ),
    Mode(
        "lora",
        "pretrained, LoRA",
        "frozen backbone with low-rank adapters",
        freezes_backbone=True,
        saves_delta=True,
        lora=True,
    ),
    Mode(
        "scratch",
        "from scratch",
        "the pretrained architecture with fresh weights",
        fresh_weights=True,
        needs_pretrained=False,
        head_lr_multiplier=False,
        pretraining=True,
    ),
)

MODES: dict[str, Mode] = {mode.name: mode for mode in _TABLE}
"""Every fine-tuning mode by name, in the order the CLI and the plots list them."""

HEADLINE: tuple[str, ...] = ("frozen", "full", "scratch")
"""The comparison the README leads with (pretrained frozen, pretrained fine-tuned, from scratch):
the default modes of ``foundation study`` and the modes of the quickstart."""

SCRATCH = MODES["scratch"]
"""The mode of a model trained from fresh weights (what a run without a pretrained base is)."""


def get_mode(name: str) -> Mode:
    """The mode called ``name``.

    Raises:
        KeyError: an unknown name (the message lists the known ones).
    """
    try:
        return MODES[name]
    except KeyError:
        raise KeyError(
            f"finetune.mode: expected one of {', '.join(MODES)}, found {name!r}"
        ) from None


def mode_names(**flags: bool) -> tuple[str, ...]:
    """The names of the modes whose attributes equal ``flags`` (all modes without flags).

    Example: ``mode_names(pretraining=True)`` -> ``("full", "scratch")``.
    """
    return tuple(
        mode.name
        for mode in _TABLE
        if all(getattr(mode, key) == value for key, value in flags.items())
    )
