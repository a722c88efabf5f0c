"""weaver-core ``ParticleNet`` state dict -> the project's ``particlenet`` backbone + a jet head.

weaver's network (``weaver.nn.model.ParticleNet.ParticleNet``, wrapped as ``mod`` by the ParT
repository's ``ParticleNetWrapper``) and the project's are the same function once the project's
ParticleNet runs with ``missing_neighbours="zero_features"``, the first graph in the
``pf_points`` features (``coordinates``) and weaver's ``use_fusion`` / ``use_counts`` choices
(``fusion``, ``pool_slots``). Module by module:

| weaver (``mod.``) | project |
| --- | --- |
| ``bn_fts`` (BatchNorm1d) | ``backbone.input_norm`` |
| ``edge_convs.i.convs.j`` (Conv2d 1x1, no bias) | ``backbone.blocks.i.linears.j`` |
| ``edge_convs.i.bns.j`` (BatchNorm2d) | ``backbone.blocks.i.norms.j`` |
| ``edge_convs.i.sc`` / ``sc_bn`` (Conv1d 1x1, BN1d) | ``backbone.blocks.i.shortcut(_norm)`` |
| ``fusion_block.0`` / ``.1`` | ``backbone.fusion`` / ``fusion_norm`` |
| ``fc.l.0`` (Linear; ReLU, Dropout) and the last ``fc`` Linear | ``heads.jetclass.net`` |

BatchNorm's ``num_batches_tracked`` counters are dropped (unused in inference).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike

import torch

from foundation.convert.weaver_common import ConversionError, check_state_dict, feature_schema
from foundation.convert.weaver_config import WeaverDataConfig
from foundation.model import Model
from heads.jet_classification import JetClassificationHead

HEAD_NAME = "jetclass"
"""Name of the classification head of a converted ParticleNet."""

JETCLASS_CONV_PARAMS: tuple[tuple[int, tuple[int, ...]], ...] = (
    (16, (64, 64, 64)),
    (16, (128, 128, 128)),
    (16, (256, 256, 256)),
)
"""``conv_params`` of the ParT authors' JetClass ParticleNet."""

JETCLASS_FC_PARAMS: tuple[tuple[int, float], ...] = ((256, 0.1),)
"""``fc_params`` of the ParT authors' JetClass ParticleNet."""

_PREFIX = "mod."
_BN = ("weight", "bias", "running_mean", "running_var")


def convert_weaver_particlenet(
    state_dict: Mapping[str, torch.Tensor],
    data_config: WeaverDataConfig,
    *,
    conv_params: Sequence[tuple[int, Sequence[int]]] = JETCLASS_CONV_PARAMS,
    fc_params: Sequence[tuple[int, float]] = JETCLASS_FC_PARAMS,
    use_fusion: bool = False,
    use_counts: bool = True,
    source: str | PathLike[str] = "state dict",
) -> Model:
    """Build the project's model with the weights of a weaver ``ParticleNet``.

    Args:
        state_dict: weaver's state dict; keys with or without the ``mod.`` prefix of the ParT
            repository's ``ParticleNetWrapper``.
        data_config: the weaver data config the network was trained with (input features, the
            first graph's coordinates, labels, slot count).
        conv_params: weaver's ``conv_params`` (``k`` is not stored in the weights).
        fc_params: weaver's ``fc_params`` (one dropout rate for every layer).
        use_fusion: weaver's ``use_fusion``.
        use_counts: weaver's ``use_counts`` (False: the jet mean runs over
            ``data_config.length`` slots).
        source: name of the state dict, for messages.

    Returns:
        The model in eval mode (``particlenet`` backbone, ``jet_classification`` head
        ``jetclass``), with ``feature_schema`` set.

    Raises:
        ConversionError: a state dict that does not fit (missing / unexpected / mis-shaped keys
            listed), or settings the project's ParticleNet does not reproduce.
    """
    state = _strip_prefix(state_dict)
    widths = _check_settings(data_config, conv_params, fc_params, source)
    model = Model.create(
        "particlenet",
        {
            "in_features": len(data_config.feature_names),
            "in_jet_features": 0,
            "edge_convs": [(int(k), [int(c) for c in channels]) for k, channels in conv_params],
            "missing_neighbours": "zero_features",
            "coordinates": data_config.coordinates(),
            "fusion": bool(use_fusion),
            "pool_slots": None if use_counts else data_config.length,
        },
        {
            HEAD_NAME: {
                "type": JetClassificationHead.head_type,
                "label_names": list(data_config.labels),
                "binary": False,
                "hidden": [int(size) for size, _ in fc_params],
                "dropout": float(fc_params[0][1]) if fc_params else 0.0,
                "activation": "relu",
            }
        },
    )
    mapping = _key_mapping(model, len(conv_params), widths, fc_params, use_fusion)
    project = model.state_dict()
    expected = {}
    for weaver_key, project_key in mapping.items():
        shape = tuple(project[project_key].shape)
        if ".convs." in weaver_key:
            shape = (*shape, 1, 1)
        elif ".sc.weight" in weaver_key or weaver_key == "fusion_block.0.weight":
            shape = (*shape, 1)
        expected[weaver_key] = shape
    expected.update({key: () for key in _counters(len(conv_params), widths, use_fusion)})
    check_state_dict(
        state,
        expected,
        source,
        hint="check conv_params / fc_params / use_fusion and the data config's feature count",
    )
    converted = {
        project_key: state[weaver_key].reshape(project[project_key].shape).to(torch.float32)
        for weaver_key, project_key in mapping.items()
    }
    model.load_state_dict(converted, strict=True)
    model.feature_schema = feature_schema(data_config)
    return model.eval()


def _strip_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the wrapper's ``mod.`` prefix when every key has it."""
    if state and all(key.startswith(_PREFIX) for key in state):
        return {key[len(_PREFIX) :]: value for key, value in state.items()}
    return dict(state)


def _check_settings(
    data_config: WeaverDataConfig,
    conv_params: Sequence[tuple[int, Sequence[int]]],
    fc_params: Sequence[tuple[int, float]],
    source: str | PathLike[str],
) -> list[list[int]]:
    """Refuse weaver settings the project's ParticleNet does not implement; block widths."""
    if not conv_params:
        raise ConversionError(source, "conv_params is empty: ParticleNet needs an EdgeConv block")
    widths = [[int(c) for c in channels] for _, channels in conv_params]
    in_width = len(data_config.feature_names)
    for index, channels in enumerate(widths):
        if in_width == channels[-1]:
            raise ConversionError(
                source,
                f"EdgeConv block {index} maps {in_width} to {channels[-1]} channels, where weaver "
                "uses an identity shortcut (no sc weights); the project's block always has a "
                "shortcut layer",
                "only blocks whose input and output widths differ convert",
            )
        in_width = channels[-1]
    rates = {float(rate) for _, rate in fc_params}
    if len(rates) > 1:
        raise ConversionError(
            source,
            f"fc_params {list(fc_params)} use several dropout rates; the head has one",
            "dropout does not act in inference: give one rate",
        )
    return widths


def _key_mapping(
    model: Model,
    blocks: int,
    widths: Sequence[Sequence[int]],
    fc_params: Sequence[tuple[int, float]],
    use_fusion: bool,
) -> dict[str, str]:
    """weaver key (without ``mod.``) -> project key, for every tensor the project keeps."""
    mapping = {f"bn_fts.{name}": f"backbone.input_norm.{name}" for name in _BN}
    for block in range(blocks):
        ours, theirs = f"backbone.blocks.{block}", f"edge_convs.{block}"
        for layer in range(len(widths[block])):
            mapping[f"{theirs}.convs.{layer}.weight"] = f"{ours}.linears.{layer}.weight"
            for name in _BN:
                mapping[f"{theirs}.bns.{layer}.{name}"] = f"{ours}.norms.{layer}.{name}"
        mapping[f"{theirs}.sc.weight"] = f"{ours}.shortcut.weight"
        for name in _BN:
            mapping[f"{theirs}.sc_bn.{name}"] = f"{ours}.shortcut_norm.{name}"
    if use_fusion:
        mapping["fusion_block.0.weight"] = "backbone.fusion.weight"
        for name in _BN:
            mapping[f"fusion_block.1.{name}"] = f"backbone.fusion_norm.{name}"
    linears = [
        index
        for index, module in enumerate(model.heads[HEAD_NAME].net)
        if isinstance(module, torch.nn.Linear)
    ]
    for layer, position in enumerate(linears):
        theirs = f"fc.{layer}.0" if layer < len(fc_params) else f"fc.{layer}"
        for name in ("weight", "bias"):
            mapping[f"{theirs}.{name}"] = f"heads.{HEAD_NAME}.net.{position}.{name}"
    return mapping


def _counters(blocks: int, widths: Sequence[Sequence[int]], use_fusion: bool) -> list[str]:
    """weaver's BatchNorm ``num_batches_tracked`` keys (present in the file, not converted)."""
    keys = ["bn_fts.num_batches_tracked"]
    for block in range(blocks):
        keys += [
            f"edge_convs.{block}.bns.{layer}.num_batches_tracked"
            for layer in range(len(widths[block]))
        ]
        keys.append(f"edge_convs.{block}.sc_bn.num_batches_tracked")
    if use_fusion:
        keys.append("fusion_block.1.num_batches_tracked")
    return keys
