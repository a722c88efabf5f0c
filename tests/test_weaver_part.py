"""weaver-core ParT state dicts converted onto the project's ``part``: the same logits, jet by jet.

Random-initialised weaver-core ``ParticleTransformer`` networks (randomised batch-norm statistics,
per-head and residual scales, norms) are converted and both are run on the same jets: weaver
channels-first (``x [B, F, N]``, ``v [B, 4, N]``, ``mask [B, 1, N]``), the project on its
JetBatch. weaver-core <= 0.4 (which trained the published checkpoints) is emulated on the
installed weaver-core by applying its ``c_attn`` head/channel swap in a hook.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from conftest import cli

from foundation.convert.weaver_common import ConversionError, read_state_dict
from foundation.convert.weaver_config import (
    WeaverDataConfig,
    WeaverVariable,
    read_weaver_data_config,
)
from foundation.convert.weaver_part import HEAD_NAME, convert_weaver_part
from foundation.data.batch import JetBatch
from foundation.data.schema import FEATURE_SETS, JETCLASS_LABELS
from foundation.models.registry import create_backbone

weaver_part = pytest.importorskip(
    "weaver.nn.model.ParticleTransformer",
    reason="the reference ParT comes from weaver-core (pip install 'foundation-jets[weaver]')",
)

TOLERANCE = 1e-5
COUNTS = (1, 128, 37, 5, 2, 90)
"""Real particles per jet of the compared batch (padded to N = 128)."""

SMALL = {"embed_dims": [16, 32, 16], "pair_embed_dims": [8, 8], "num_heads": 4, "num_layers": 2}
JETCLASS = {"embed_dims": [128, 512, 128], "pair_embed_dims": [64, 64, 64], "num_heads": 8}
JETCLASS.update(num_layers=8)
SHARED_WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "weights"
PART_WEIGHTS = SHARED_WEIGHTS / "jetclass-part"
"""Where the ParT authors' ``ParT_{kin,kinpid,full}.pt`` are looked for (tests skip without)."""
DATA_CONFIGS = SHARED_WEIGHTS / "jetclass-particlenet"
"""The authors' ``JetClass_{kin,kinpid,full}.yaml`` (shared by their ParticleNet and ParT)."""


def weaver_network(features: int, seed: int, **settings: Any) -> torch.nn.Module:
    """A weaver ``ParticleTransformer`` in the JetClass configuration (``settings`` override
    it), in eval mode, with every batch-norm statistic, norm and scale randomised."""
    config = {
        "input_dim": features,
        "num_classes": len(JETCLASS_LABELS),
        "pair_input_dim": 4,
        "use_pre_activation_pair": False,
        "num_cls_layers": 2,
        "cls_block_params": {"dropout": 0, "attn_dropout": 0, "activation_dropout": 0},
        "fc_params": [],
        "activation": "gelu",
        "trim": True,
        "for_inference": False,
        **JETCLASS,
        **settings,
    }
    logging.getLogger("weaver").setLevel(logging.WARNING)
    torch.manual_seed(seed)
    network = weaver_part.ParticleTransformer(**config)
    with torch.no_grad():
        for name, tensor in network.state_dict().items():
            if name.endswith("running_mean"):
                tensor.normal_(0.0, 0.5)
            elif name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif name.endswith(("c_attn", "w_resid")):
                tensor.uniform_(0.3, 1.7)
            elif tensor.dim() == 1 and tensor.dtype.is_floating_point:
                tensor.add_(0.2 * torch.randn_like(tensor))  # norm weights and biases, biases
    return network.eval()


def jets(features: int, counts: Sequence[int] = COUNTS, seed: int = 1) -> JetBatch:
    """Collimated jets (pT-ordered particles around one axis) with random features."""
    generator = torch.Generator().manual_seed(seed)
    size, length = len(counts), max(counts)
    mask = torch.arange(length)[None] < torch.tensor(counts)[:, None]
    pt = torch.exp(1.5 + 1.2 * torch.randn(size, length, generator=generator))
    eta = 0.5 + 0.1 * torch.randn(size, length, generator=generator)
    phi = 3.1 + 0.1 * torch.randn(size, length, generator=generator)  # across the ±π seam
    mass = 0.14 * (torch.rand(size, length, generator=generator) < 0.5)
    momenta = torch.stack([pt * phi.cos(), pt * phi.sin(), pt * eta.sinh()], dim=-1)
    energy = (momenta.square().sum(dim=-1) + mass.square()).sqrt()
    vectors = torch.cat([momenta, energy[..., None]], dim=-1) * mask[..., None]
    particles = torch.randn(size, length, features, generator=generator) * mask[..., None]
    return JetBatch(particles, mask, vectors, torch.zeros(size, 0))


def weaver_logits(network: torch.nn.Module, batch: JetBatch) -> torch.Tensor:
    with torch.no_grad():
        return network(
            batch.particles.transpose(1, 2),
            v=batch.vectors.transpose(1, 2),
            mask=batch.mask[:, None].float(),
        )


def project_logits(model: torch.nn.Module, batch: JetBatch) -> torch.Tensor:
    with torch.no_grad():
        return model(batch)[HEAD_NAME]["logits"]


def wrapped(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as the ParT repository's ``ParticleTransformerWrapper`` saves it."""
    return {f"mod.{key}": value.clone() for key, value in network.state_dict().items()}


def emulate_weaver_04(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Turn ``network`` into weaver-core 0.4's function of its weights; return 0.4's state dict.

    0.4 multiplied head ``h`` of the attention output by ``c_attn[h]`` and wrote channel ``c``
    of head ``h`` to position ``c * H + h``; its attention was ``nn.MultiheadAttention``
    (``in_proj_weight``, ``in_proj_bias``).
    """
    renamed = {
        "attn.in_proj.weight": "attn.in_proj_weight",
        "attn.in_proj.bias": "attn.in_proj_bias",
    }
    state = {}
    for key, value in wrapped(network).items():
        for new, old in renamed.items():
            key = key.replace(new, old)
        state[key] = value
    blocks = [*network.blocks, *network.cls_blocks]
    for block in blocks:
        scales = block.c_attn.detach().clone()

        def swap(module, inputs, output, scales=scales):
            out, weights = output
            batch, length, width = out.shape
            heads = scales.shape[0]
            out = out.view(batch, length, heads, width // heads) * scales[:, None]
            return out.transpose(2, 3).reshape(batch, length, width), weights

        block.attn.register_forward_hook(swap)
        with torch.no_grad():
            block.c_attn.fill_(1.0)
    return state


def data_config(features: Sequence[str]) -> WeaverDataConfig:
    """A weaver data config with the given features (JetClass-like preprocessing)."""
    variables = tuple(
        WeaverVariable(name, None if name.startswith("part_is") else 0.5, 2.0) for name in features
    )
    return WeaverDataConfig(
        source="test.yaml",
        features=variables,
        points=("part_deta", "part_dphi"),
        vectors=("part_px", "part_py", "part_pz", "part_energy"),
        length=128,
        labels=JETCLASS_LABELS,
        definitions={},
    )


def _weaver_yaml(features: Sequence[str]) -> dict[str, Any]:
    """A weaver data config (as YAML data) in the form of the ParT authors' JetClass ones."""
    formulas = {
        "part_mask": "ak.ones_like(part_energy)",
        "part_pt": "np.hypot(part_px, part_py)",
        "part_pt_log": "np.log(part_pt)",
        "part_e_log": "np.log(part_energy)",
        "part_logptrel": "np.log(part_pt/jet_pt)",
        "part_logerel": "np.log(part_energy/jet_energy)",
        "part_deltaR": "np.hypot(part_deta, part_dphi)",
        "part_d0": "np.tanh(part_d0val)",
        "part_dz": "np.tanh(part_dzval)",
    }
    scaled = {"part_pt_log": [1.7, 0.7], "part_e_log": [2.0, 0.7], "part_deltaR": [0.2, 4.0]}

    def group(variables: list[list[Any]], pad_mode: str = "wrap") -> dict[str, Any]:
        return {"length": 128, "pad_mode": pad_mode, "vars": variables}

    vectors = ["part_px", "part_py", "part_pz", "part_energy"]
    return {
        "new_variables": formulas,
        "preprocess": {"method": "manual", "data_fraction": 0.5},
        "inputs": {
            "pf_points": group([["part_deta", None], ["part_dphi", None]]),
            "pf_features": group([[name, *scaled.get(name, [None])] for name in features]),
            "pf_vectors": group([[name, None] for name in vectors]),
            "pf_mask": group([["part_mask", None]], "constant"),
        },
        "labels": {"type": "simple", "value": list(JETCLASS_LABELS)},
    }


CASES = {
    "kin, weaver 0.5": (7, dict(SMALL), {"c_attn_layout": "plain"}),
    "kinpid, weaver 0.4": (13, dict(SMALL), {"c_attn_layout": "emulate 0.4"}),
    "full, no pair features, relu fc": (
        17,
        {**SMALL, "pair_embed_dims": None, "fc_params": [(24, 0.1)]},
        {},
    ),
    "kin, pre-activation pairs": (
        7,
        {**SMALL, "use_pre_activation_pair": True, "num_cls_layers": 1},
        {"use_pre_activation_pair": True},
    ),
    "full, gelu fc": (17, {**SMALL, "fc_params": [(24, 0.0, "gelu"), (12, 0.0, "gelu")]}, {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_converted_part_gives_weaver_logits(case: str) -> None:
    features, settings, options = CASES[case]
    network = weaver_network(features, seed=len(case), **settings)
    options = dict(options)
    if options.pop("c_attn_layout", None) == "emulate 0.4":
        state = emulate_weaver_04(network)  # "auto" must pick the swap from the key names
    else:
        state = wrapped(network)
        options["c_attn_layout"] = "plain"
    names = {7: FEATURE_SETS["kin"], 13: FEATURE_SETS["kinpid"], 17: FEATURE_SETS["full"]}
    architecture = {
        key: settings[key]
        for key in ("embed_dims", "pair_embed_dims", "num_heads", "num_layers", "fc_params")
        if key in settings
    }
    model = convert_weaver_part(
        state,
        names[features],
        **architecture,
        num_cls_layers=settings.get("num_cls_layers", 2),
        **options,
    )
    batch = jets(features)
    difference = (weaver_logits(network, batch) - project_logits(model, batch)).abs()
    assert difference.max() <= TOLERANCE, difference.amax(dim=1)


def test_the_authors_jetclass_network_converts_exactly() -> None:
    network = weaver_network(17, seed=7)
    state = emulate_weaver_04(network)  # the published checkpoints come from weaver-core 0.4
    model = convert_weaver_part(state, data_config(FEATURE_SETS["full"]), source="ParT_full.pt")
    batch = jets(17, counts=(1, 128))
    difference = (weaver_logits(network, batch) - project_logits(model, batch)).abs()
    assert difference.max() <= TOLERANCE, difference.amax(dim=1)
    assert model.backbone.config["pair_features"] == "weaver"
    assert model.feature_schema.particle_features == FEATURE_SETS["full"]
    assert model.heads[HEAD_NAME].label_names == JETCLASS_LABELS


def test_converted_part_rebuilds_from_its_checkpoint_and_handles_empty_jets(
    tmp_path: Path,
) -> None:
    from foundation import load_pretrained
    from foundation.hub import save_pretrained

    network = weaver_network(7, seed=3, **SMALL)
    model = convert_weaver_part(wrapped(network), FEATURE_SETS["kin"], **SMALL)
    folder = save_pretrained(model, tmp_path / "part.weaver", feature_schema=FEATURE_SETS["kin"])
    loaded = load_pretrained(folder, heads="all").eval()
    batch = jets(7, counts=(0, 1, 9))
    logits = project_logits(loaded, batch)
    assert torch.equal(logits, project_logits(model, batch))
    assert torch.isfinite(logits).all()
    assert loaded.backbone.config == model.backbone.config


@pytest.mark.slow  # ONNX export and parity
def test_converted_part_exports_to_onnx_through_the_parity_gate(tmp_path: Path) -> None:
    from foundation.export import ParityConfig, export_onnx

    network = weaver_network(13, seed=9, **SMALL)
    model = convert_weaver_part(
        emulate_weaver_04(network), data_config(FEATURE_SETS["kinpid"]), **SMALL
    )
    report = export_onnx(
        model,
        tmp_path / "part.onnx",
        parity_config=ParityConfig(counts=(0, 1, 2, 16), batch_sizes=(1, 3)),
        batches=[jets(13, counts=(1, 40, 7))],
    )
    assert report.parity is not None and report.parity.passed, report.parity.table()
    assert report.outputs == [f"{HEAD_NAME}.logits", f"{HEAD_NAME}.probabilities"]


def test_the_convert_command_writes_a_checkpoint_that_gives_weaver_logits(
    tmp_path: Path,
) -> None:
    from foundation import load_pretrained

    network = weaver_network(7, seed=4, **SMALL)
    weights = tmp_path / "ParT_kin.pt"
    torch.save(emulate_weaver_04(network), weights)
    config = tmp_path / "JetClass_kin.yaml"
    config.write_text(yaml.safe_dump(_weaver_yaml(FEATURE_SETS["kin"])))
    folder = tmp_path / "part.jetclass-kin"
    status = cli(
        "hub", "convert", "weaver", "part", str(weights),
        "--data-config", str(config), "--out", str(folder), "--options", json.dumps(SMALL),
    )  # fmt: skip
    assert status == 0
    loaded = load_pretrained(folder, heads="all").eval()
    batch = jets(7)
    difference = (weaver_logits(network, batch) - project_logits(loaded, batch)).abs()
    assert difference.max() <= TOLERANCE, difference.amax(dim=1)
    normalization = loaded.feature_schema.normalization
    assert loaded.feature_schema.particle_features == FEATURE_SETS["kin"]
    assert normalization is not None and "particles" in normalization


@pytest.mark.parametrize("feature_set", ["kin", "kinpid", "full"])
def test_the_published_jetclass_weights_give_weaver_logits(feature_set: str) -> None:
    path = PART_WEIGHTS / f"ParT_{feature_set}.pt"
    if not path.is_file():
        pytest.skip(f"{path} is not present (the ParT authors' JetClass weights)")
    config = read_weaver_data_config(DATA_CONFIGS / f"JetClass_{feature_set}.yaml")
    state = read_state_dict(path)
    network = weaver_network(len(config.features), seed=0)
    network.load_state_dict({key.removeprefix("mod."): value for key, value in state.items()})
    network.eval()
    if any(key.endswith("attn.in_proj_weight") for key in state):
        emulate_weaver_04(network)  # weaver-core 0.4 trained them: its c_attn swap
    model = convert_weaver_part(state, config, source=path)
    batch = jets(len(config.features))
    difference = (weaver_logits(network, batch) - project_logits(model, batch)).abs()
    assert difference.max() <= TOLERANCE, difference.amax(dim=1)


def test_a_state_dict_that_does_not_fit_is_refused_with_its_keys() -> None:
    state = wrapped(weaver_network(7, seed=5, **SMALL))
    del state["mod.blocks.1.fc2.weight"]
    state["mod.blocks.0.extra"] = torch.zeros(3)
    state["mod.norm.weight"] = torch.zeros(99)
    with pytest.raises(ConversionError) as caught:
        convert_weaver_part(state, FEATURE_SETS["kin"], **SMALL, source="ParT_kin.pt")
    message = str(caught.value)
    assert message.startswith("ParT_kin.pt: ")
    assert "missing key(s): blocks.1.fc2.weight" in message
    assert "unexpected key(s): blocks.0.extra" in message
    assert "norm.weight (99,) (expected (16,))" in message

    with pytest.raises(ConversionError, match="num_layers"):  # the hint names the settings
        convert_weaver_part(wrapped(weaver_network(7, seed=5, **SMALL)), FEATURE_SETS["kin"])
    with pytest.raises(ConversionError, match="c_attn_layout='sideways'"):
        convert_weaver_part(
            wrapped(weaver_network(7, seed=5, **SMALL)),
            FEATURE_SETS["kin"],
            **SMALL,
            c_attn_layout="sideways",
        )


def test_the_options_leave_the_default_part_unchanged() -> None:
    torch.manual_seed(0)
    backbone = create_backbone("part-tiny", in_features=7)
    assert set(backbone.config) == {
        "in_features",
        "in_jet_features",
        "embed_dims",
        "pair_embed_dims",
        "num_heads",
        "num_layers",
        "num_class_layers",
        "ffn_ratio",
        "dropout",
    }
    names = set(backbone.state_dict())
    assert not any(name.startswith("embed.input_norm") for name in names)
    assert not any("residual_scale" in name or "head_norm" in name for name in names)
