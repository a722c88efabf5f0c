"""weaver-core ``ParticleTransformer`` state dict -> the project's ``part`` backbone + a jet head.

weaver's network (``weaver.nn.model.ParticleTransformer.ParticleTransformer``, wrapped as
``mod`` by the ParT repository's ``ParticleTransformerWrapper``; version 1, the JetClass
configuration) and the project's ``part`` are the same function once the project's ParT runs
with the options :data:`WEAVER_OPTIONS` (input batch-norm and a first ``LayerNorm`` in the
particle embedding, weaver's pair features and pair-embedding output, an un-normalised class
query, per-channel feed-forward residual scales). Module by module:

| weaver (``mod.``) | project (``backbone.`` unless said) |
| --- | --- |
| ``embed.input_bn`` (BatchNorm1d) | ``embed.input_norm`` |
| ``embed.embed.i`` (LayerNorm, Linear, GELU, ...) | ``embed.mlp.i`` |
| ``pair_embed.embed.0`` (BatchNorm1d) | ``pair_embed.input_norm`` |
| ``pair_embed.embed.1+3l``, ``2+3l`` (Conv1d 1x1, BN) | ``pair_embed.linears.l``, ``norms.l`` |
| the last Conv1d and BN (one bias per head) | ``pair_embed.head``, ``head_norm`` |
| ``blocks.i``, ``cls_blocks.i`` | ``blocks.i``, ``class_blocks.i`` |
| ... ``pre_attn_norm``, ``post_attn_norm`` | ... ``attn_norm``, ``attn_out_norm`` |
| ... ``pre_fc_norm``, ``post_fc_norm`` | ... ``ffn_norm``, ``ffn_mid_norm`` |
| ... ``attn.in_proj``, ``fc1``, ``fc2`` | ... the same names |
| ... ``w_resid`` | ... ``residual_scale`` |
| ... ``attn.out_proj`` scaled by ``c_attn`` | ... ``attn.out_proj`` (``c_attn`` folded in) |
| ``norm``, ``cls_token`` | ``norm``, ``cls_token`` |
| ``fc.l.0`` (Linear; activation, Dropout), the last ``fc`` | ``heads.jetclass.net`` |

BatchNorm's ``num_batches_tracked`` counters are dropped (unused in inference).

``c_attn`` (one scale per head) multiplies the attention output after ``out_proj``, so it folds
into ``out_proj``'s rows. Up to weaver-core 0.4 (which trained the published ParT checkpoints)
the scaled output was also written out with the head and channel axes swapped
(``einsum('tbhd,h->tbdh')``); weaver-core 0.5 dropped the swap, so the same weights compute a
different function there. The fold reproduces either (``c_attn_layout``); ``"auto"`` picks the
swap for state dicts with weaver 0.4's ``attn.in_proj_weight`` key names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

import torch

from foundation.convert.weaver_common import ConversionError, check_state_dict, feature_schema
from foundation.convert.weaver_config import WeaverDataConfig
from foundation.data.schema import JETCLASS_LABELS
from foundation.hub.schema import FeatureSchema
from foundation.model import Model
from heads.jet_classification import JetClassificationHead

HEAD_NAME = "jetclass"
"""Name of the classification head of a converted ParT."""

WEAVER_OPTIONS: dict[str, Any] = {
    "class_dropout": 0.0,
    "embed_input_norm": True,
    "embed_norm_first": True,
    "pair_features": "weaver",
    "pair_output_norm": True,
    "class_query_norm": False,
    "residual_scale": True,
}
"""The ``part`` options that reproduce weaver-core's ParT (``pair_output_activation`` is
``not use_pre_activation_pair``)."""

VECTORS = ("part_px", "part_py", "part_pz", "part_energy")
"""The ``pf_vectors`` a converted ParT with pair features reads (``JetBatch.vectors``)."""

C_ATTN_LAYOUTS = ("auto", "swapped", "plain")
"""How weaver applied ``c_attn``: ``"swapped"`` (weaver-core <= 0.4, its git main until
2026-02: heads and channels swapped on output), ``"plain"`` (weaver-core >= 0.5), or ``"auto"``
(``"swapped"`` when the attention keys are 0.4's ``in_proj_weight``, else ``"plain"``)."""

_PREFIX = "mod."
_BN = ("weight", "bias", "running_mean", "running_var")
_LN = ("weight", "bias")
_BLOCK_LINEARS = {"fc1": "fc1", "fc2": "fc2"}
_BLOCK_NORMS = {
    "pre_attn_norm": "attn_norm",
    "post_attn_norm": "attn_out_norm",
    "pre_fc_norm": "ffn_norm",
    "post_fc_norm": "ffn_mid_norm",
}
_HINT = (
    "only weaver's ParT version 1 (the JetClass network) converts; check embed_dims, "
    "pair_embed_dims, num_heads, num_layers, num_cls_layers and fc_params against the network "
    "config the weights were trained with, and the data config's feature count"
)


def convert_weaver_part(
    state_dict: Mapping[str, torch.Tensor],
    data_config: WeaverDataConfig | FeatureSchema | Sequence[str],
    *,
    embed_dims: Sequence[int] = (128, 512, 128),
    pair_embed_dims: Sequence[int] | None = (64, 64, 64),
    num_heads: int = 8,
    num_layers: int = 8,
    num_cls_layers: int = 2,
    fc_params: Sequence[Sequence[Any]] = (),
    use_pre_activation_pair: bool = False,
    c_attn_layout: str = "auto",
    label_names: Sequence[str] | None = None,
    source: str | PathLike[str] = "state dict",
) -> Model:
    """Build the project's model with the weights of a weaver ``ParticleTransformer``.

    The defaults are the ParT authors' JetClass network config (``ParT_kin``, ``ParT_kinpid``
    and ``ParT_full`` differ only in the feature count, read from ``data_config``).

    Args:
        state_dict: weaver's state dict; keys with or without the ``mod.`` prefix of the ParT
            repository's ``ParticleTransformerWrapper``.
        data_config: the weaver data config the network was trained with (input features and
            their normalization, labels), or just the particle feature names in input order.
        embed_dims: weaver's ``embed_dims``.
        pair_embed_dims: weaver's ``pair_embed_dims`` (``None``: no pair features).
        num_heads: weaver's ``num_heads``.
        num_layers: weaver's ``num_layers``.
        num_cls_layers: weaver's ``num_cls_layers`` (at least 1).
        fc_params: weaver's ``fc_params``: ``(width, dropout)`` or ``(width, dropout,
            activation)`` per hidden layer (activation ``"relu"``, weaver's default, or
            ``"gelu"``).
        use_pre_activation_pair: weaver's ``use_pre_activation_pair`` (not stored in the
            weights; the JetClass network has False, weaver's own default is True).
        c_attn_layout: one of :data:`C_ATTN_LAYOUTS`.
        label_names: class names in class-index order; default the data config's labels, or
            JetClass's ten when ``data_config`` is a list of names.
        source: name of the state dict, for messages.

    Returns:
        The model in eval mode (``part`` backbone, ``jet_classification`` head ``jetclass``),
        with ``feature_schema`` set.

    Raises:
        ConversionError: a state dict that does not fit (missing / unexpected / mis-shaped keys
            listed), or settings the project's ParT does not reproduce.
    """
    state = _strip_prefix(state_dict)
    schema, labels = _inputs(data_config, label_names)
    if (
        pair_embed_dims is not None
        and isinstance(data_config, WeaverDataConfig)
        and data_config.vectors != VECTORS
    ):
        raise ConversionError(
            source,
            f"{data_config.source}: inputs.pf_vectors are {list(data_config.vectors)}",
            f"the pair features need the particle 4-vectors {list(VECTORS)} (JetBatch.vectors)",
        )
    hidden, activation, dropout = _fc_settings(fc_params, source)
    if num_cls_layers < 1:
        raise ConversionError(
            source, f"num_cls_layers={num_cls_layers}: the project's ParT needs a class token"
        )
    if not embed_dims:
        raise ConversionError(source, "embed_dims is empty: the project's ParT embeds particles")
    head: dict[str, Any] = {
        "type": JetClassificationHead.head_type,
        "label_names": list(labels),
        "binary": False,
        "hidden": hidden,
        "dropout": dropout,
    }
    if hidden:
        head["activation"] = activation
    try:
        model = Model.create(
            "part",
            {
                "in_features": len(schema.particle_features),
                "embed_dims": [int(width) for width in embed_dims],
                "pair_embed_dims": None
                if pair_embed_dims is None
                else [int(width) for width in pair_embed_dims],
                "num_heads": int(num_heads),
                "num_layers": int(num_layers),
                "num_class_layers": int(num_cls_layers),
                **WEAVER_OPTIONS,
                "pair_output_activation": not use_pre_activation_pair,
            },
            {HEAD_NAME: head},
        )
    except ValueError as error:
        raise ConversionError(source, f"the network settings do not build: {error}") from None
    project = model.state_dict()
    legacy_names = any(key.endswith("attn.in_proj_weight") for key in state)
    mapping = _key_mapping(model, len(hidden), legacy_names)
    expected = {theirs: _weaver_shape(theirs, project[ours]) for theirs, ours in mapping.items()}
    scales = _scale_keys(num_layers, num_cls_layers)
    expected.update({key: (int(num_heads),) for key in scales})
    expected.update({key: () for key in _counters(pair_embed_dims)})
    check_state_dict(state, expected, source, hint=_HINT)
    swapped = _swapped(c_attn_layout, legacy_names, source)
    converted = {
        ours: state[theirs].reshape(project[ours].shape).to(torch.float32)
        for theirs, ours in mapping.items()
    }
    for scale_key in scales:
        _fold_head_scales(converted, scale_key, state[scale_key].float(), swapped)
    model.load_state_dict(converted, strict=True)
    model.feature_schema = schema
    return model.eval()


def _strip_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the wrapper's ``mod.`` prefix when every key has it."""
    if state and all(key.startswith(_PREFIX) for key in state):
        return {key[len(_PREFIX) :]: value for key, value in state.items()}
    return dict(state)


def _inputs(
    data_config: WeaverDataConfig | FeatureSchema | Sequence[str],
    label_names: Sequence[str] | None,
) -> tuple[FeatureSchema, tuple[str, ...]]:
    """The feature schema and the label names of the converted model."""
    if isinstance(data_config, WeaverDataConfig):
        schema = feature_schema(data_config)
        default_labels: Sequence[str] = data_config.labels
    else:
        schema = FeatureSchema.coerce(data_config)
        default_labels = JETCLASS_LABELS
    return schema, tuple(default_labels if label_names is None else label_names)


def _fc_settings(
    fc_params: Sequence[Sequence[Any]], source: str | PathLike[str]
) -> tuple[list[int], str, float]:
    """Hidden widths, activation and dropout of the head from weaver's ``fc_params``."""
    widths, activations, rates = [], set(), set()
    for entry in fc_params:
        if len(entry) not in (2, 3):
            raise ConversionError(
                source, f"fc_params entry {entry!r}: expected (width, dropout[, activation])"
            )
        widths.append(int(entry[0]))
        rates.add(float(entry[1]))
        activations.add(str(entry[2]) if len(entry) == 3 else "relu")
    if len(activations) > 1 or not activations <= {"relu", "gelu"}:
        raise ConversionError(
            source,
            f"fc_params {list(fc_params)} use activations {sorted(activations)}",
            "the head converts one activation for every layer, 'relu' or 'gelu'",
        )
    if len(rates) > 1:
        raise ConversionError(
            source,
            f"fc_params {list(fc_params)} use several dropout rates; the head has one",
            "dropout does not act in inference: give one rate",
        )
    return widths, next(iter(activations), "relu"), next(iter(rates), 0.0)


def _key_mapping(model: Model, fc_hidden: int, legacy_names: bool) -> dict[str, str]:
    """weaver key (without ``mod.``) -> project key, for every tensor the project keeps."""
    backbone = model.backbone
    mapping = {f"embed.input_bn.{name}": f"backbone.embed.input_norm.{name}" for name in _BN}
    for index, module in enumerate(backbone.embed.mlp):
        if isinstance(module, (torch.nn.LayerNorm, torch.nn.Linear)):
            for name in _LN:
                mapping[f"embed.embed.{index}.{name}"] = f"backbone.embed.mlp.{index}.{name}"
    pair = backbone.pair_embed
    if pair is not None:
        ours = "backbone.pair_embed"
        for name in _BN:
            mapping[f"pair_embed.embed.0.{name}"] = f"{ours}.input_norm.{name}"
        layers = [*(f"linears.{i}" for i in range(len(pair.linears))), "head"]
        norms = [*(f"norms.{i}" for i in range(len(pair.norms))), "head_norm"]
        for layer, (linear, norm) in enumerate(zip(layers, norms, strict=True)):
            for name in _LN:
                mapping[f"pair_embed.embed.{1 + 3 * layer}.{name}"] = f"{ours}.{linear}.{name}"
            for name in _BN:
                mapping[f"pair_embed.embed.{2 + 3 * layer}.{name}"] = f"{ours}.{norm}.{name}"
    in_proj = ("attn.in_proj_weight", "attn.in_proj_bias") if legacy_names else None
    for theirs, ours, count in (
        ("blocks", "blocks", len(backbone.blocks)),
        ("cls_blocks", "class_blocks", len(backbone.class_blocks)),
    ):
        for block in range(count):
            mapping.update(_block_mapping(f"{theirs}.{block}", f"backbone.{ours}.{block}", in_proj))
    for name in _LN:
        mapping[f"norm.{name}"] = f"backbone.norm.{name}"
    mapping["cls_token"] = "backbone.cls_token"
    linears = [
        index
        for index, module in enumerate(model.heads[HEAD_NAME].net)
        if isinstance(module, torch.nn.Linear)
    ]
    for layer, position in enumerate(linears):
        theirs = f"fc.{layer}.0" if layer < fc_hidden else f"fc.{layer}"
        for name in _LN:
            mapping[f"{theirs}.{name}"] = f"heads.{HEAD_NAME}.net.{position}.{name}"
    return mapping


def _block_mapping(theirs: str, ours: str, in_proj: tuple[str, str] | None) -> dict[str, str]:
    """Keys of one attention block (``c_attn`` is folded into ``out_proj``, not mapped)."""
    mapping = {f"{theirs}.w_resid": f"{ours}.residual_scale"}
    weight, bias = in_proj or ("attn.in_proj.weight", "attn.in_proj.bias")
    mapping[f"{theirs}.{weight}"] = f"{ours}.attn.in_proj.weight"
    mapping[f"{theirs}.{bias}"] = f"{ours}.attn.in_proj.bias"
    for name in _LN:
        mapping[f"{theirs}.attn.out_proj.{name}"] = f"{ours}.attn.out_proj.{name}"
        for weaver_name, project_name in {**_BLOCK_NORMS, **_BLOCK_LINEARS}.items():
            mapping[f"{theirs}.{weaver_name}.{name}"] = f"{ours}.{project_name}.{name}"
    return mapping


def _weaver_shape(key: str, tensor: torch.Tensor) -> tuple[int, ...]:
    """The shape weaver stores for a tensor the project holds as ``tensor``."""
    if key.startswith("pair_embed.") and key.endswith(".weight") and tensor.dim() == 2:
        return (*tensor.shape, 1)  # Conv1d 1x1
    return tuple(tensor.shape)


def _scale_keys(num_layers: int, num_cls_layers: int) -> list[str]:
    """weaver's per-head ``c_attn`` keys, one per block."""
    return [f"blocks.{i}.c_attn" for i in range(num_layers)] + [
        f"cls_blocks.{i}.c_attn" for i in range(num_cls_layers)
    ]


def _counters(pair_embed_dims: Sequence[int] | None) -> list[str]:
    """weaver's BatchNorm ``num_batches_tracked`` keys (present in the file, not converted)."""
    keys = ["embed.input_bn.num_batches_tracked"]
    if pair_embed_dims is not None:
        keys.append("pair_embed.embed.0.num_batches_tracked")
        keys += [
            f"pair_embed.embed.{2 + 3 * layer}.num_batches_tracked"
            for layer in range(len(pair_embed_dims) + 1)
        ]
    return keys


def _swapped(layout: str, legacy_names: bool, source: str | PathLike[str]) -> bool:
    """Whether ``c_attn`` was applied with weaver 0.4's head/channel swap."""
    if layout not in C_ATTN_LAYOUTS:
        raise ConversionError(
            source, f"c_attn_layout={layout!r} is unknown", f"expected one of {C_ATTN_LAYOUTS}"
        )
    return legacy_names if layout == "auto" else layout == "swapped"


def _fold_head_scales(
    converted: dict[str, torch.Tensor], scale_key: str, scales: torch.Tensor, swapped: bool
) -> None:
    """Fold one block's ``c_attn`` into its converted ``attn.out_proj`` (in place).

    weaver scales the ``out_proj`` output head by head: output channel ``h * d + c`` (head
    ``h`` of ``H``, channel ``c`` of ``d = D / H``) times ``scales[h]``, written back to channel
    ``h * d + c`` (``swapped=False``) or ``c * H + h`` (``swapped=True``). Both are a scaling
    and a permutation of ``out_proj``'s rows.

    Shapes:
        - scales: ``[H]``
    """
    theirs = scale_key.removesuffix(".c_attn")
    project = ("backbone.class_blocks" if theirs.startswith("cls_") else "backbone.blocks") + (
        "." + theirs.rsplit(".", 1)[1]
    )
    weight_key, bias_key = f"{project}.attn.out_proj.weight", f"{project}.attn.out_proj.bias"
    weight, bias = converted[weight_key], converted[bias_key]
    heads = scales.shape[0]
    dim = weight.shape[0]
    weight = weight.view(heads, dim // heads, dim) * scales[:, None, None]
    bias = bias.view(heads, dim // heads) * scales[:, None]
    if swapped:
        weight, bias = weight.transpose(0, 1), bias.transpose(0, 1)
    converted[weight_key] = weight.reshape(dim, dim).contiguous()
    converted[bias_key] = bias.reshape(dim).contiguous()
