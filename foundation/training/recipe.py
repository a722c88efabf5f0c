"""Recipes: YAML files validated into typed dataclasses, with help text on every field.

A recipe has the sections ``data``, ``model``, ``finetune``, ``optimizer``, ``trainer`` and
``output`` (run ``foundation pretrain --recipe-help`` for every key). A misspelt key is an error
that names the closest valid one; any key can be overridden from the command line with
``--set section.key=value`` (checked against the key's type). The resolved recipe is written
as ``recipe.yaml`` into each run folder, so that a run can be repeated exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import yaml

from foundation.data.slots import DEFAULT_MAX_PARTICLES, MAX_PARTICLES
from foundation.io import write_text
from foundation.simulation.card import DEFAULT_CARD
from foundation.training.modes import ModeName, get_mode
from foundation.training.typed import (
    RecipeError,
    apply_overrides,
    describe,
    from_mapping,
    load_yaml,
    to_plain,
)

LR_RANGE = (1e-12, 10.0)
"""Learning rates outside this range are refused (they cannot train; ``1e308`` overflows)."""

FinetuneMode = ModeName
"""How the backbone is trained (see :mod:`foundation.training.modes`)."""


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class SimulateConfig:
    """Jets simulated into ROOT shards when they are not there yet (then cached)."""

    process: str = field(
        default="toptagging",
        metadata=_help("processes or aliases, comma-separated (see `foundation simulate --help`)"),
    )
    jets: int = field(default=1000, metadata=_help("jets per process"))
    seed: int = field(default=1, metadata=_help("simulation request seed"))
    pt_range: tuple[float, float] | None = field(
        default=None, metadata=_help("jet pT window [low, high] in GeV (default: the process's)")
    )
    card: str = field(
        default=DEFAULT_CARD,
        metadata=_help(
            f"detector card: shipped name ({DEFAULT_CARD}, jetclass2, default) or YAML path; "
            "`default`: the earlier parametrized detector, pinned by the recipes of the "
            "results measured with it"
        ),
    )
    shard_size: int = field(default=5000, metadata=_help("jets per ROOT shard"))
    workers: int = field(default=1, metadata=_help("parallel simulation processes"))
    folder: str | None = field(
        default=None,
        metadata=_help(
            "folder of the ROOT shards (default data/sim/<process>-<jets>-s<seed>[-pt..][-<card>])"
        ),
    )


@dataclass(frozen=True)
class SplitConfig:
    """Train/val/test fractions of the jets, split by event (deterministic)."""

    train: float = field(default=0.8, metadata=_help("fraction of events for training"))
    val: float = field(default=0.1, metadata=_help("fraction of events for validation"))
    test: float = field(default=0.1, metadata=_help("fraction of events for the final test"))
    seed: int = field(default=0, metadata=_help("seed of the event hash that assigns splits"))


@dataclass(frozen=True)
class DataConfig:
    """Where the jets come from and how they are batched."""

    files: list[str] = field(
        default_factory=list,
        metadata=_help("jet files or glob patterns (JetClass ROOT, Top Landscape HDF5, QG npz)"),
    )
    simulate: SimulateConfig | None = field(
        default=None, metadata=_help("simulate the jets instead (made once, then reused)")
    )
    format: str | None = field(
        default=None, metadata=_help("reader name (jetclass, top_landscape, quark_gluon); auto")
    )
    cache: str | None = field(
        default=None,
        metadata=_help("cache folder of padded arrays (default: <cache_root>/<name>-<digest>)"),
    )
    cache_root: str = field(default="data/cache", metadata=_help("parent of default caches"))
    features: str | list[str] = field(
        default="full", metadata=_help("particle features: kin, kinpid, full, or a list of names")
    )
    max_particles: int = field(
        default=DEFAULT_MAX_PARTICLES, metadata=_help("particle slots per jet")
    )
    allow_missing_fields: bool = field(
        default=False,
        metadata=_help(
            "accept data lacking the fields some features come from (they become 0); by "
            "default fine-tuning such data from a pretrained backbone is an error"
        ),
    )
    classes: list[str] | None = field(
        default=None,
        metadata=_help(
            "label names to keep, in class-index order (e.g. [label_QCD, label_Tbqq]); jets of "
            "other classes are left out. Default: every label of the files"
        ),
    )
    split: SplitConfig = field(default_factory=SplitConfig, metadata=_help("split fractions"))
    train_size: int | None = field(
        default=None,
        metadata=_help("labelled training jets: a stratified, seeded subsample (default: all)"),
    )
    subsample_seed: int = field(default=0, metadata=_help("seed of the train_size subsample"))
    batch_size: int = field(default=256, metadata=_help("training batch size (per device)"))
    eval_batch_size: int | None = field(
        default=None, metadata=_help("evaluation batch size (default: batch_size)")
    )
    num_workers: int = field(default=0, metadata=_help("DataLoader worker processes"))
    normalization: Literal["auto", "fit", "pretrained"] = field(
        default="auto",
        metadata=_help(
            "input normalization: fit on the training split, or reuse the pretrained "
            "checkpoint's; auto = pretrained when model.pretrained is set, else fit"
        ),
    )
    normalization_jets: int = field(
        default=200_000, metadata=_help("at most this many training jets fit the normalization")
    )


OMITTED_DEFAULTS: tuple[tuple[str, str, Any], ...] = (("data", "allow_missing_fields", False),)
"""``(section, key, default)`` that :meth:`Recipe.to_dict` leaves out at the default."""


@dataclass(frozen=True)
class HeadConfig:
    """One task head on the backbone."""

    type: str = field(metadata=_help("registered head type (see heads.list_heads())"))
    weight: float = field(default=1.0, metadata=_help("weight of its loss in the total"))
    kwargs: dict[str, Any] = field(
        default_factory=dict, metadata=_help("head constructor arguments (in_features is set)")
    )


@dataclass(frozen=True)
class ModelConfig:
    """The backbone (new or pretrained) and its heads."""

    backbone: str | None = field(
        default=None, metadata=_help("registered backbone (e.g. part-tiny), for a new model")
    )
    backbone_kwargs: dict[str, Any] = field(
        default_factory=dict, metadata=_help("backbone constructor arguments (inputs are set)")
    )
    pretrained: str | None = field(
        default=None,
        metadata=_help("pretrained checkpoint: name, folder or hub id (backbone is taken from it)"),
    )
    revision: str | None = field(default=None, metadata=_help("hub revision of `pretrained`"))
    jet_inputs: bool = field(
        default=False,
        metadata=_help("feed the jet-level inputs (pT, eta, mass, n) to the backbone"),
    )
    heads: dict[str, HeadConfig] = field(
        default_factory=dict, metadata=_help("heads by name: {type, weight, kwargs}")
    )
    mask_fraction: float = field(
        default=0.15,
        metadata=_help("fraction of particles hidden when a masked_particle head is present"),
    )
    graph: Literal["dense", "packed"] = field(
        default="dense",
        metadata=_help(
            "particlenet backbones: packed runs EdgeConv on a graph of the real particles "
            "(same outputs, 2-3x faster training on ragged batches on CPU); dense pads"
        ),
    )


@dataclass(frozen=True)
class FinetuneConfig:
    """How the backbone is trained.

    Modes: ``full`` (everything trains), ``frozen`` (frozen backbone, MLP heads), ``linear``
    (frozen backbone, linear heads), ``lwld`` (layer-wise learning-rate decay), ``unfreeze``
    (gradual unfreezing from the top), ``lora`` (frozen backbone with LoRA adapters),
    ``scratch`` (the pretrained architecture with fresh weights).
    """

    mode: FinetuneMode = field(default="full", metadata=_help("training mode (see above)"))
    head_lr_multiplier: float = field(
        default=1.0,
        metadata=_help("learning rate of the heads = optimizer.lr x this (not in mode scratch)"),
    )
    layer_decay: float = field(
        default=0.75,
        metadata=_help("lwld: LR of backbone layer group g = lr x decay^(groups - g)"),
    )
    unfreeze_every: int = field(
        default=1, metadata=_help("unfreeze: epochs between unfreezing two layer groups")
    )
    lora_rank: int = field(default=8, metadata=_help("lora: rank r of the update B A"))
    lora_alpha: float = field(default=16.0, metadata=_help("lora: update scale alpha / r"))
    lora_targets: list[str] = field(
        default_factory=lambda: ["in_proj", "out_proj"],
        metadata=_help("lora: backbone Linear layers to adapt (names or dotted suffixes)"),
    )
    delta: bool | None = field(
        default=None,
        metadata=_help(
            "save heads + adapters only, naming the base (default: when the backbone is frozen "
            "or LoRA-adapted and a pretrained checkpoint is used)"
        ),
    )
    cache_frozen_features: bool = field(
        default=True,
        metadata=_help(
            "frozen, linear: compute each jet's backbone features once and reuse them in later "
            "epochs (exact; about 50 KB of memory per jet for D = 256); not with LoRA adapters "
            "or a masked_particle head"
        ),
    )
    cache_max_jets: int | None = field(
        default=20_000,
        metadata=_help(
            "most jets whose frozen features are kept (later jets are computed every epoch); "
            "None: no limit"
        ),
    )


@dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer and learning-rate schedule (stepped every optimizer step)."""

    name: Literal["adamw", "adam", "sgd"] = field(default="adamw", metadata=_help("optimizer"))
    lr: float = field(default=1e-3, metadata=_help("peak learning rate"))
    weight_decay: float = field(
        default=0.01, metadata=_help("decoupled weight decay (not on biases and norms)")
    )
    betas: tuple[float, float] = field(default=(0.9, 0.999), metadata=_help("Adam betas"))
    momentum: float = field(default=0.9, metadata=_help("SGD momentum"))
    schedule: Literal["cosine", "linear", "constant"] = field(
        default="cosine", metadata=_help("decay after warm-up")
    )
    warmup_steps: int = field(default=0, metadata=_help("linear warm-up steps"))
    warmup_fraction: float = field(
        default=0.0, metadata=_help("warm-up as a fraction of all steps (if warmup_steps is 0)")
    )
    min_lr_ratio: float = field(default=0.0, metadata=_help("final LR as a fraction of the peak"))


@dataclass(frozen=True)
class TrainerConfig:
    """The training loop (PyTorch Lightning Trainer)."""

    max_epochs: int = field(default=10, metadata=_help("epochs (upper bound)"))
    max_steps: int = field(default=-1, metadata=_help("optimizer steps (-1: no limit)"))
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "64-true"] = field(
        default="auto",
        metadata=_help("32-true, bf16-mixed, ...; auto = bf16-mixed on GPU, 32-true on CPU"),
    )
    gradient_clip: float | None = field(
        default=1.0, metadata=_help("clip the gradient norm to this (null: off)")
    )
    accelerator: str = field(default="auto", metadata=_help("cpu, gpu, auto"))
    devices: int | str | list[int] = field(
        default="auto", metadata=_help("devices per node (int, list of ids or auto)")
    )
    strategy: str = field(default="auto", metadata=_help("auto, ddp, ..."))
    num_nodes: int = field(default=1, metadata=_help("nodes (SLURM / torchrun)"))
    seed: int = field(default=0, metadata=_help("seed of initialisation, shuffling, masking"))
    log_every: int = field(default=50, metadata=_help("log training metrics every N steps"))
    val_every: int = field(default=1, metadata=_help("validate every N epochs"))
    checkpoint_every: int = field(
        default=500, metadata=_help("write last.ckpt (for resuming) every N steps")
    )
    monitor: str = field(default="val/loss", metadata=_help("metric choosing best/"))
    monitor_mode: Literal["min", "max"] = field(default="min", metadata=_help("min or max"))
    eval_train_batches: int = field(
        default=50, metadata=_help("training batches evaluated for metrics.json")
    )
    progress_bar: bool = field(default=True, metadata=_help("show progress bars"))
    deterministic: bool = field(
        default=True, metadata=_help("deterministic algorithms (warn where none exists)")
    )


@dataclass(frozen=True)
class OutputConfig:
    """Where the run goes."""

    folder: str | None = field(
        default=None, metadata=_help("run folder (default runs/<name>); never overwritten")
    )
    plots: bool = field(default=True, metadata=_help("write loss-curve plots"))


@dataclass(frozen=True)
class Recipe:
    """A complete training recipe."""

    name: str = field(default="run", metadata=_help("short name of the recipe"))
    description: str = field(default="", metadata=_help("what the recipe does"))
    data: DataConfig = field(default_factory=DataConfig, metadata=_help("data"))
    model: ModelConfig = field(default_factory=ModelConfig, metadata=_help("model"))
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig, metadata=_help("fine-tuning"))
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig, metadata=_help("optimizer"))
    trainer: TrainerConfig = field(default_factory=TrainerConfig, metadata=_help("trainer"))
    output: OutputConfig = field(default_factory=OutputConfig, metadata=_help("output"))

    @property
    def run_folder(self) -> Path:
        """The run folder: ``output.folder`` or ``runs/<name>``."""
        return Path(self.output.folder or f"runs/{self.name}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists and dicts), as written to ``recipe.yaml``.

        Keys added after runs were first saved are left out while at their default
        (:data:`OMITTED_DEFAULTS`): a run or study saved before them still matches its recipe
        (``--resume``, study reuse compare the saved dict with this one).
        """
        data = to_plain(self)
        for section, key, default in OMITTED_DEFAULTS:
            if key in data.get(section, {}) and data[section][key] == default:
                del data[section][key]
        return data

    def with_overrides(self, overrides: Sequence[str]) -> Recipe:
        """A copy with ``section.key=value`` overrides applied (and checked)."""
        return recipe_from_dict(apply_overrides(Recipe, self.to_dict(), overrides), "recipe")


def recipe_from_dict(data: Any, source: str = "recipe") -> Recipe:
    """Validate plain data into a :class:`Recipe`, then check the cross-field rules.

    Raises:
        RecipeError: unknown keys, wrong types, or inconsistent settings.
    """
    recipe = from_mapping(Recipe, data, source)
    check_recipe(recipe, source)
    return recipe


def check_recipe(recipe: Recipe, source: str = "recipe") -> None:
    """Rules between fields that types alone cannot express.

    Raises:
        RecipeError: the first broken rule, naming the keys involved.
    """
    data, model = recipe.data, recipe.model
    _check_finite(recipe.to_dict(), source)  # NaN / inf also inside head and backbone kwargs
    if not data.files and data.simulate is None and data.cache is None:
        raise RecipeError(f"{source}: data: give data.files, data.simulate or data.cache")
    if data.files and data.simulate is not None:
        raise RecipeError(
            f"{source}: data: give data.files or data.simulate, not both; to read files with a "
            "recipe that simulates, add --set data.simulate=null"
        )
    if (model.backbone is None) == (model.pretrained is None):
        raise RecipeError(
            f"{source}: model: give exactly one of model.backbone (a new model) and "
            f"model.pretrained (a checkpoint); found backbone={model.backbone!r}, "
            f"pretrained={model.pretrained!r}"
        )
    if not model.heads:
        raise RecipeError(f"{source}: model.heads: at least one head is needed")
    split = data.split
    if any(v < 0 for v in (split.train, split.val, split.test)) or not (
        abs(split.train + split.val + split.test - 1.0) < 1e-6
    ):
        raise RecipeError(
            f"{source}: data.split: train, val and test must be >= 0 and sum to 1, found "
            f"{split.train}, {split.val}, {split.test}"
        )
    positive = {
        "data.batch_size": data.batch_size,
        "data.max_particles": data.max_particles,
        "trainer.log_every": recipe.trainer.log_every,
        "trainer.val_every": recipe.trainer.val_every,
        "trainer.checkpoint_every": recipe.trainer.checkpoint_every,
        "finetune.unfreeze_every": recipe.finetune.unfreeze_every,
        "finetune.lora_rank": recipe.finetune.lora_rank,
    }
    if data.simulate is not None:
        positive.update(
            {
                "data.simulate.jets": data.simulate.jets,
                "data.simulate.shard_size": data.simulate.shard_size,
                "data.simulate.workers": data.simulate.workers,
            }
        )
        _check_pt_range(data.simulate.pt_range, source)
    for key, value in positive.items():
        if value < 1:
            raise RecipeError(f"{source}: {key}: expected a positive integer, found {value}")
    if data.train_size is not None and data.train_size < 1:
        raise RecipeError(f"{source}: data.train_size: expected >= 1, found {data.train_size}")
    if not 0.0 < model.mask_fraction <= 1.0:
        raise RecipeError(
            f"{source}: model.mask_fraction: expected (0, 1], found {model.mask_fraction}"
        )
    if data.max_particles > MAX_PARTICLES:
        raise RecipeError(
            f"{source}: data.max_particles: expected at most {MAX_PARTICLES} particle slots per "
            f"jet, found {data.max_particles}"
        )
    low, high = LR_RANGE
    if not low <= recipe.optimizer.lr <= high:
        raise RecipeError(
            f"{source}: optimizer.lr: expected a learning rate in [{low:g}, {high:g}], found "
            f"{recipe.optimizer.lr}"
        )
    mode = get_mode(recipe.finetune.mode)
    if mode.head_lr_multiplier:
        head_lr = recipe.optimizer.lr * recipe.finetune.head_lr_multiplier
        if not low <= head_lr <= high:
            raise RecipeError(
                f"{source}: finetune.head_lr_multiplier: the heads' learning rate lr x "
                f"multiplier must be in [{low:g}, {high:g}], found {head_lr:g}"
            )
    if not all(0.0 <= beta < 1.0 for beta in recipe.optimizer.betas):
        raise RecipeError(
            f"{source}: optimizer.betas: expected two values in [0, 1), found "
            f"{list(recipe.optimizer.betas)}"
        )
    if not 0.0 <= recipe.optimizer.min_lr_ratio <= 1.0:
        raise RecipeError(
            f"{source}: optimizer.min_lr_ratio: expected [0, 1], found "
            f"{recipe.optimizer.min_lr_ratio}"
        )
    if recipe.optimizer.weight_decay < 0:
        raise RecipeError(
            f"{source}: optimizer.weight_decay: expected >= 0, found "
            f"{recipe.optimizer.weight_decay}"
        )
    for name, head in model.heads.items():
        if head.weight < 0:
            raise RecipeError(
                f"{source}: model.heads.{name}.weight: expected >= 0, found {head.weight}"
            )
    if not 0.0 < recipe.finetune.layer_decay <= 1.0:
        raise RecipeError(
            f"{source}: finetune.layer_decay: expected (0, 1], found {recipe.finetune.layer_decay}"
        )
    if recipe.trainer.max_epochs < 1 and recipe.trainer.max_steps < 1:
        raise RecipeError(f"{source}: trainer: max_epochs or max_steps must be positive")
    if mode.needs_pretrained and model.pretrained is None:
        raise RecipeError(
            f"{source}: finetune.mode={recipe.finetune.mode!r} needs model.pretrained (a "
            "checkpoint to fine-tune); use mode 'full' to train a new backbone"
        )


def _check_pt_range(pt_range: tuple[float, float] | None, source: str) -> None:
    """A simulated pT window must be ``0 < low < high`` within the beams' reach."""
    from foundation.simulation.generator import BEAM_ENERGY_CM

    if pt_range is None:
        return
    low, high = pt_range
    if not 0 < low < high <= BEAM_ENERGY_CM / 2:
        raise RecipeError(
            f"{source}: data.simulate.pt_range: expected 0 < low < high <= "
            f"{BEAM_ENERGY_CM / 2:g} GeV (half the beams' energy), found [{low:g}, {high:g}]"
        )


def _check_finite(value: Any, source: str, key: str = "") -> None:
    """Refuse NaN and infinite numbers anywhere in the recipe (head and backbone kwargs too)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise RecipeError(f"{source}: {key}: expected a finite number, found {value}")
    if isinstance(value, dict):
        for name, item in value.items():
            _check_finite(item, source, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            _check_finite(item, source, f"{key}[{position}]")


def load_recipe(path: str | PathLike[str], overrides: Sequence[str] = ()) -> Recipe:
    """Read a recipe YAML file, apply ``--set`` overrides and validate it.

    Raises:
        FileNotFoundError: no such file.
        RecipeError: bad YAML, unknown keys (with suggestions), wrong types, bad overrides.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such recipe file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RecipeError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    data = load_yaml(text, str(path))
    if data is None:
        data = {}
    from_mapping(Recipe, data, str(path))  # report file errors before override errors
    return recipe_from_dict(apply_overrides(Recipe, data, overrides), str(path))


def save_recipe(recipe: Recipe, path: str | PathLike[str]) -> None:
    """Write the resolved recipe as YAML (key order kept), atomically."""
    path = Path(path)
    text = yaml.safe_dump(recipe.to_dict(), sort_keys=False, default_flow_style=None)
    write_text(path, text)


def recipe_help() -> str:
    """Every recipe key with its type, default and help text, one per line."""
    return "\n".join(describe(Recipe))


def with_changes(recipe: Recipe, **sections: Any) -> Recipe:
    """A copy with some sections' fields replaced: ``with_changes(r, data={"train_size": 10})``.

    Raises:
        RecipeError: the result breaks a cross-field rule.
    """
    updated = recipe
    for name, changes in sections.items():
        updated = replace(updated, **{name: replace(getattr(updated, name), **changes)})
    check_recipe(updated)
    return updated
