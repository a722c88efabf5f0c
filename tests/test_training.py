"""The training engine: recipes, run folders, exact resume, fine-tuning modes, LoRA, subsampling.

Everything runs on tiny random jets (``tests/synthetic.py``) with ``*-tiny`` backbones.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import save_tiny_base
from safetensors.torch import load_file
from synthetic import random_records

from foundation import load_pretrained
from foundation.data.cache import open_arrays, read_cache_info, write_cache
from foundation.data.schema import TOP_LABELS
from foundation.data.splits import split_indices, subsample
from foundation.errors import OutputExistsError
from foundation.hub import save_pretrained
from foundation.models.lora import LoRALinear, lora_parameters
from foundation.training.callbacks import StopAfterSteps
from foundation.training.datamodule import JetDataModule
from foundation.training.finetune import GradualUnfreezing, apply_mode, set_unfrozen_groups
from foundation.training.optim import WarmupSchedule, parameter_groups
from foundation.training.recipe import (
    FinetuneConfig,
    OptimizerConfig,
    Recipe,
    RecipeError,
    load_recipe,
    recipe_from_dict,
    recipe_help,
)
from foundation.training.run import train
from foundation.training.run_folder import open_run_folder
from foundation.training.targets import JET_TARGETS

FEATURES = "kin"
SLOTS = 16


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 random top/QCD jets with truth, ``kin`` features, 16 particle slots."""
    folder = tmp_path_factory.mktemp("training") / "cache"
    records = random_records(120, mean_particles=8, seed=3, label_names=TOP_LABELS, truth=True)
    write_cache(records, folder, features=FEATURES, max_particles=SLOTS)
    return folder


@pytest.fixture(scope="module")
def pretrained(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 'pretrained' ParT checkpoint with this data's schema and normalization."""
    folder = tmp_path_factory.mktemp("base") / "part-tiny.test"
    return save_tiny_base(cache, folder, "part-tiny", {"in_features": 7, "dropout": 0.0}, 60)


def recipe_data(cache: Path, out: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """A small recipe on the test cache; ``sections`` update its sections."""
    data: dict[str, Any] = {
        "name": "test",
        "data": {
            "cache": str(cache),
            "features": FEATURES,
            "max_particles": SLOTS,
            "batch_size": 16,
        },
        "model": {"backbone": "pfn-tiny", "heads": {"top": {"type": "jet_classification"}}},
        "trainer": {
            "max_epochs": 2,
            "progress_bar": False,
            "log_every": 1,
            "checkpoint_every": 2,
            "eval_train_batches": 2,
        },
        "output": {"folder": str(out)},
    }
    for name, changes in sections.items():
        data[name] = {**data.get(name, {}), **changes}
    return data


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


# ------------------------------------------------------------------------------- recipes
def test_misspelt_key_suggests_the_closest(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("data:\n  batchsize: 3\n  cache: x\nmodel:\n  backbone: pfn-tiny\n")
    with pytest.raises(
        RecipeError, match=r"data: unknown key 'batchsize'; did you mean 'batch_size'"
    ):
        load_recipe(path)
    path.write_text("trainr:\n  max_epochs: 3\n")
    with pytest.raises(RecipeError, match=r"did you mean 'trainer'"):
        load_recipe(path)


def test_set_overrides_are_typed_and_checked(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(json.dumps(recipe_data(cache, tmp_path / "run")))
    recipe = load_recipe(path, ["trainer.max_epochs=3", "data.train_size=40", "optimizer.lr=1e-4"])
    assert (recipe.trainer.max_epochs, recipe.data.train_size) == (3, 40)
    assert recipe.optimizer.lr == pytest.approx(1e-4)
    with pytest.raises(RecipeError, match=r"trainer.max_epochs: expected an integer, found 'abc'"):
        load_recipe(path, ["trainer.max_epochs=abc"])
    with pytest.raises(RecipeError, match=r"did you mean 'max_epochs'"):
        load_recipe(path, ["trainer.max_epoch=3"])
    with pytest.raises(RecipeError, match=r"expected one of .*'lora'.*found 'lorra'; did you mean"):
        load_recipe(path, ["finetune.mode=lorra"])
    with pytest.raises(RecipeError, match=r"expected SECTION.KEY=VALUE"):
        load_recipe(path, ["trainer.max_epochs"])
    with pytest.raises(RecipeError, match=r"model: give exactly one of model.backbone"):
        load_recipe(path, ["model.pretrained=somewhere"])
    head = load_recipe(path, ["model.heads.top.kwargs.hidden=[8, 8]"]).model.heads["top"]
    assert head.kwargs["hidden"] == [8, 8]
    assert "data.batch_size (int, default 256)" in recipe_help()


def test_recipe_round_trips_through_yaml(tmp_path: Path, cache: Path) -> None:
    from foundation.training.recipe import save_recipe

    recipe = recipe_from_dict(recipe_data(cache, tmp_path / "run"))
    save_recipe(recipe, tmp_path / "saved.yaml")
    assert load_recipe(tmp_path / "saved.yaml") == recipe
    assert isinstance(recipe, Recipe) and recipe.optimizer.betas == (0.9, 0.999)


def test_existing_run_folder_is_never_overwritten(tmp_path: Path, cache: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")
    with pytest.raises(OutputExistsError, match=str(run)):
        open_run_folder(run)
    with pytest.raises(OutputExistsError, match=r"--overwrite"):
        train(recipe_from_dict(recipe_data(cache, run)))
    assert (run / "metrics.json").read_text() == "{}"
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        open_run_folder(run, resume=True)
    assert open_run_folder(tmp_path / "new", resume=True).root.is_dir()  # a first batch job
    assert not any(open_run_folder(run, overwrite=True).root.iterdir())


# ---------------------------------------------------------------------------- data module
def test_train_size_is_a_stratified_seeded_subsample(cache: Path, tmp_path: Path) -> None:
    recipe = recipe_from_dict(recipe_data(cache, tmp_path / "r", data={"train_size": 30}))
    data = JetDataModule(recipe.data, show_progress=False)
    data.prepare()
    arrays = open_arrays(read_cache_info(cache))
    labels = np.asarray(arrays["label"])
    train = split_indices(np.asarray(arrays["event_id"]))["train"]
    expected = train[subsample(labels[train], 30, seed=0)]
    np.testing.assert_array_equal(data.indices["train"], expected)
    share = np.mean(labels[train] == 1)
    assert abs(np.sum(labels[data.indices["train"]] == 1) - 30 * share) <= 1
    other = JetDataModule(dataclasses.replace(recipe.data, subsample_seed=1), show_progress=False)
    other.prepare()
    assert not np.array_equal(other.indices["train"], data.indices["train"])
    assert data.summary is not None and data.summary.sizes["train"] == 30


def test_derived_targets_and_missing_ones(cache: Path, tmp_path: Path) -> None:
    recipe = recipe_from_dict(recipe_data(cache, tmp_path / "r"))
    data = JetDataModule(recipe.data, show_progress=False)
    data.prepare()
    data.require_targets(["log_pt_ratio", "pair_same_vertex", "label"])
    batch = next(iter(data.loader("train")))
    raw = np.asarray(open_arrays(read_cache_info(cache))["jet"])
    info = read_cache_info(cache)
    rows = data.indices["train"][: len(batch)]
    truth = np.asarray(open_arrays(info)["jet_truth_pt"])[rows]
    reco = np.exp(raw[rows, list(info.jet_feature_names).index("jet_pt_log")])
    np.testing.assert_allclose(
        batch.targets["log_pt_ratio"].numpy(), np.log(truth / reco), atol=1e-6
    )
    pairs = batch.targets["pair_same_vertex"]
    assert pairs.shape == (len(batch), SLOTS, SLOTS) and set(pairs.unique().tolist()) <= {-1, 0, 1}
    assert set(JET_TARGETS) <= set(data.summary.targets)
    with pytest.raises(KeyError, match=r"need target\(s\) \['jet_flavour'\].*available"):
        data.require_targets(["jet_flavour"])


# -------------------------------------------------------------------------------- runs
def test_run_folder_layout_and_metrics(cache: Path, tmp_path: Path) -> None:
    result = train(recipe_from_dict(recipe_data(cache, tmp_path / "run")))
    root = result.folder
    for name in ("recipe.yaml", "metrics.json", "loss_curves.png", "checkpoints/last.ckpt"):
        assert (root / name).is_file(), name
    assert list((root / "tensorboard").glob("events.out.tfevents.*"))
    metrics = json.loads((root / "metrics.json").read_text())
    assert set(metrics) == {"train", "val", "test"}
    assert {"loss", "top/loss", "top/accuracy"} <= set(metrics["test"])
    model = load_pretrained(root / "best")
    config = json.loads((root / "best" / "config.json").read_text())
    assert config["feature_schema"]["normalization"]["particles"]["names"] == list(
        model.feature_schema.particle_features
    )
    assert config["heads"]["top"]["label_names"] == list(TOP_LABELS)
    # the resolved recipe reruns the run
    assert load_recipe(root / "recipe.yaml") == recipe_from_dict(
        recipe_data(cache, tmp_path / "run")
    )


def test_packed_graph_trains_the_dense_models_weights(cache: Path, tmp_path: Path) -> None:
    """``model.graph: packed`` is a runtime switch: the same training as dense (to float
    rounding), a checkpoint without it, and a clear error for a backbone without a packed path."""
    runs = {}
    for graph in ("dense", "packed"):
        model = {"backbone": "particlenet-tiny", "graph": graph}
        recipe = recipe_from_dict(recipe_data(cache, tmp_path / graph, model=model))
        runs[graph] = train(recipe).folder
    dense, packed = weights(runs["dense"] / "best"), weights(runs["packed"] / "best")
    assert dense.keys() == packed.keys()
    # Linear weights; a batch norm's bias before another batch norm has a true gradient of 0,
    # so Adam moves it (and the next running means) by rounding noise in either path.
    linear = [name for name in dense if not any("norm" in part for part in name.split("."))]
    assert len(linear) > 8
    for name in linear:
        torch.testing.assert_close(packed[name], dense[name], atol=1e-5, rtol=1e-4, msg=name)
    scores = [json.loads((runs[g] / "metrics.json").read_text())["test"] for g in runs]
    for key, value in scores[0].items():
        assert scores[1][key] == pytest.approx(value, abs=1e-3), key
    config = json.loads((runs["packed"] / "best" / "config.json").read_text())
    assert "graph" not in json.dumps(config["backbone"])
    recipe = recipe_from_dict(recipe_data(cache, tmp_path / "pfn", model={"graph": "packed"}))
    with pytest.raises(RecipeError, match=r"model\.graph: 'packed' needs a backbone with a packed"):
        train(recipe)


@pytest.mark.slow  # three training runs
def test_interrupted_run_resumes_to_the_same_weights(cache: Path, tmp_path: Path) -> None:
    sections = {
        "model": {
            "backbone": "part-tiny",
            "backbone_kwargs": {"dropout": 0.1},
            "heads": {
                "top": {"type": "jet_classification"},
                "masked": {"type": "masked_particle", "weight": 0.5},
            },
        },
        "trainer": {"checkpoint_every": 3},
    }
    whole = train(recipe_from_dict(recipe_data(cache, tmp_path / "whole", **sections)))
    broken = recipe_from_dict(recipe_data(cache, tmp_path / "broken", **sections))
    with pytest.raises(RuntimeError, match="simulated interruption"):
        train(broken, callbacks=[StopAfterSteps(4)])  # mid-epoch 0; last.ckpt is at step 3
    checkpoint = torch.load(tmp_path / "broken/checkpoints/last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 3
    resumed = train(broken, resume=True)
    a, b = weights(whole.last), weights(resumed.last)
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6
    assert resumed.metrics["test"]["loss"] == pytest.approx(whole.metrics["test"]["loss"], abs=1e-6)
    with pytest.raises(RecipeError, match=r"changed: optimizer\.lr"):
        train(broken.with_overrides(["optimizer.lr=0.5"]), resume=True)


# ----------------------------------------------------------------------- fine-tuning modes
def test_layer_wise_decay_groups(pretrained: Path) -> None:
    model = load_pretrained(pretrained, heads=None)
    model.add_head("top", "jet_classification")
    recipe = recipe_from_dict(
        {
            "data": {"cache": "x"},
            "model": {
                "pretrained": str(pretrained),
                "heads": {"top": {"type": "jet_classification"}},
            },
            "finetune": {"mode": "lwld", "layer_decay": 0.5, "head_lr_multiplier": 10.0},
            "optimizer": {"lr": 1e-3, "weight_decay": 0.1},
        }
    )
    groups = parameter_groups(model, recipe.finetune, recipe.optimizer)
    layers = model.backbone.layer_groups()
    count = len(layers)
    by_name = {group["name"]: group for group in groups}
    assert by_name["heads"]["lr"] == pytest.approx(1e-2)
    for index, layer in enumerate(layers):
        expected = 1e-3 * 0.5 ** (count - index)
        for group in (by_name.get(f"backbone.{index}"), by_name.get(f"backbone.{index}/no_decay")):
            if group is not None:
                assert group["lr"] == pytest.approx(expected)
                assert {id(p) for p in group["params"]} <= {id(p) for p in layer}
    assert by_name["backbone.0"]["lr"] < by_name[f"backbone.{count - 1}/no_decay"]["lr"]
    assert all(g["weight_decay"] == 0.0 for g in groups if g["name"].endswith("no_decay"))
    placed = [id(p) for group in groups for p in group["params"]]
    assert sorted(placed) == sorted(id(p) for p in model.parameters())


def test_schedule_warms_up_then_decays() -> None:
    schedule = WarmupSchedule(total_steps=110, warmup_steps=10, kind="cosine", min_ratio=0.1)
    assert schedule(0) == pytest.approx(0.1) and schedule(9) == pytest.approx(1.0)
    assert schedule(10) == pytest.approx(1.0) and schedule(110) == pytest.approx(0.1)
    assert schedule(60) == pytest.approx(0.55)
    assert WarmupSchedule(10, 0, "constant", 0.0)(7) == 1.0


def test_gradual_unfreezing_goes_top_down(pretrained: Path) -> None:
    model = load_pretrained(pretrained, heads=None)
    groups = model.backbone.layer_groups()
    assert set_unfrozen_groups(model, 1) == 1
    assert all(p.requires_grad for p in groups[-1])
    assert not any(p.requires_grad for group in groups[:-1] for p in group)
    assert set_unfrozen_groups(model, 99) == len(groups)
    assert all(p.requires_grad for p in model.backbone.parameters())
    assert GradualUnfreezing(2).every == 2


def test_gradual_unfreezing_run_trains_only_the_top_group_first(
    cache: Path, pretrained: Path, tmp_path: Path
) -> None:
    recipe = recipe_from_dict(
        recipe_data(
            cache,
            tmp_path / "unfreeze",
            model={"backbone": None, "pretrained": str(pretrained)},
            finetune={"mode": "unfreeze", "unfreeze_every": 1},
        )
    )
    result = train(recipe)  # epoch 0: heads only; epoch 1: heads + the top layer group
    assert not result.delta
    base, tuned = load_pretrained(pretrained), load_pretrained(result.last)
    groups = [list(g) for g in base.backbone.layer_groups()]
    names = {id(p): n for n, p in base.backbone.named_parameters()}
    tuned_state = dict(tuned.backbone.named_parameters())

    def changed(group: list[torch.nn.Parameter]) -> bool:
        return any(not torch.equal(p, tuned_state[names[id(p)]]) for p in group)

    assert changed(groups[-1])
    assert not any(changed(group) for group in groups[:-1])


def test_frozen_fine_tune_keeps_the_backbone_and_saves_a_delta(
    cache: Path, pretrained: Path, tmp_path: Path
) -> None:
    recipe = recipe_from_dict(
        recipe_data(
            cache,
            tmp_path / "frozen",
            model={"backbone": None, "pretrained": str(pretrained)},
            finetune={"mode": "frozen"},
        )
    )
    result = train(recipe)
    assert result.delta
    config = json.loads((result.best / "config.json").read_text())
    assert config["base"]["name_or_path"] == str(pretrained.resolve())
    assert set(weights(result.best)) == {k for k in weights(result.best) if k.startswith("heads.")}
    base, tuned = load_pretrained(pretrained), load_pretrained(result.last)
    for key, value in base.backbone.state_dict().items():
        assert torch.equal(value, tuned.backbone.state_dict()[key]), key
    assert load_pretrained(result.best).source["base"]["sha256"] == config["base"]["sha256"]


def test_frozen_feature_cache_gives_the_same_run_with_fewer_backbone_passes(
    cache: Path, pretrained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """finetune.cache_frozen_features: same head weights and metrics, the backbone run once
    per jet instead of once per jet and epoch."""
    from foundation.models.part import ParticleTransformer

    calls: list[int] = []
    original = ParticleTransformer.forward

    def counted(self, batch):
        calls.append(len(batch))
        return original(self, batch)

    monkeypatch.setattr(ParticleTransformer, "forward", counted)
    results, jets = {}, {}
    for cached in (False, True):
        calls.clear()
        recipe = recipe_from_dict(
            recipe_data(
                cache,
                tmp_path / f"cached_{cached}",
                model={"backbone": None, "pretrained": str(pretrained)},
                finetune={"mode": "frozen", "cache_frozen_features": cached},
                trainer={"max_epochs": 3, "eval_train_batches": 0},
            )
        )
        results[cached], jets[cached] = train(recipe), sum(calls)
    plain, fast = weights(results[False].best), weights(results[True].best)
    assert plain.keys() == fast.keys()
    for key in plain:
        torch.testing.assert_close(plain[key], fast[key], rtol=0, atol=1e-6)
    assert results[True].metrics["test"] == pytest.approx(results[False].metrics["test"], abs=1e-6)
    assert jets[True] < jets[False] / 2


def test_linear_mode_builds_linear_probes(cache: Path, pretrained: Path, tmp_path: Path) -> None:
    from foundation.training.builder import build_model, load_base

    recipe = recipe_from_dict(
        recipe_data(
            cache,
            tmp_path / "linear",
            model={"backbone": None, "pretrained": str(pretrained)},
            finetune={"mode": "linear"},
        )
    )
    data = JetDataModule(recipe.data, show_progress=False)
    base = load_base(recipe)
    model = build_model(recipe, data.prepare(base.feature_schema.normalization), base)
    apply_mode(model, recipe.finetune)
    assert model.heads["top"].config["hidden"] == []
    assert model.backbone_frozen and not model.backbone.training
    assert not any(p.requires_grad for p in model.backbone.parameters())


def test_lora_delta_round_trip(pretrained: Path, tmp_path: Path) -> None:
    from conftest import make_batch

    model = load_pretrained(pretrained, heads=None)
    model.add_head("top", "jet_classification")
    model.add_adapter("lora", rank=2, alpha=4.0, targets=["in_proj", "out_proj"])
    adapted = [m for m in model.backbone.modules() if isinstance(m, LoRALinear)]
    assert adapted and all(m.weight.shape == (m.out_features, m.in_features) for m in adapted)
    with torch.no_grad():
        for parameter in lora_parameters(model):
            parameter.normal_(0, 0.1)
    folder = save_pretrained(model, tmp_path / "lora", base=str(pretrained))
    stored = set(weights(folder))
    assert stored and all(
        k.startswith("heads.") or k.endswith(("lora_a", "lora_b")) for k in stored
    )
    config = json.loads((folder / "config.json").read_text())
    assert config["adapters"] == [
        {"type": "lora", "kwargs": {"rank": 2, "alpha": 4.0, "targets": ["in_proj", "out_proj"]}}
    ]
    reloaded = load_pretrained(folder)
    batch = make_batch()
    with torch.no_grad():
        expected, found = model.eval()(batch), reloaded(batch)
        base_out = load_pretrained(pretrained, heads=None).features(batch).jet
    assert torch.equal(expected["top"]["logit"], found["top"]["logit"])
    assert not torch.allclose(reloaded.features(batch).jet, base_out)


def test_lora_fine_tune_trains_only_adapters_and_heads(
    cache: Path, pretrained: Path, tmp_path: Path
) -> None:
    recipe = recipe_from_dict(
        recipe_data(
            cache,
            tmp_path / "lora",
            model={"backbone": None, "pretrained": str(pretrained)},
            finetune={"mode": "lora", "lora_rank": 2},
            trainer={"max_epochs": 1},
        )
    )
    result = train(recipe)
    stored = weights(result.last)
    lora_b = [value for key, value in stored.items() if key.endswith("lora_b")]
    assert lora_b and any(bool(value.abs().sum() > 0) for value in lora_b)
    assert all(k.startswith("heads.") or "lora_" in k for k in stored)
    load_pretrained(result.best)  # rebuilds from config.json + base


def test_unknown_lora_target_names_the_layers(pretrained: Path) -> None:
    model = load_pretrained(pretrained, heads=None)
    with pytest.raises(ValueError, match=r"no Linear layer .* named \['qkv'\].*in_proj"):
        model.add_adapter("lora", targets=["qkv"])


def test_inputs_must_match_the_pretrained_schema(
    cache: Path, pretrained: Path, tmp_path: Path
) -> None:
    recipe = recipe_from_dict(
        recipe_data(
            cache,
            tmp_path / "bad",
            data={
                "features": [
                    "part_pt_log",
                    "part_e_log",
                    "part_logptrel",
                    "part_logerel",
                    "part_deltaR",
                    "part_dphi",
                    "part_deta",
                ]
            },
            model={"backbone": None, "pretrained": str(pretrained)},
            finetune={"mode": "frozen"},
        )
    )
    with pytest.raises(RecipeError, match="same names in another order"):
        train(recipe)


# ----------------------------------------------------------------------------------- CLI
def _cli(*argv: str) -> int:
    from foundation.cli import finetune, pretrain, study

    parser = argparse.ArgumentParser(prog="foundation")
    commands = parser.add_subparsers(dest="command")
    for module in (pretrain, finetune, study):
        module.register(commands)
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_cli_refuses_fine_tuning_modes_in_pretrain(
    cache: Path, pretrained: Path, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(json.dumps(recipe_data(cache, tmp_path / "run")))
    pretrained_model = ["--set", "model.backbone=null", "--set", f"model.pretrained={pretrained}"]
    with pytest.raises(ValueError, match="use `foundation finetune`"):
        _cli("pretrain", str(path), *pretrained_model, "--set", "finetune.mode=lwld")
    assert _cli("pretrain", "--recipe-help") == 0
    assert "finetune.lora_rank" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        _cli("finetune", str(path), "--mode", "sideways")
    for grid in ("scratch", "scratch=", "scratch=fast", "=1e-3"):
        with pytest.raises(SystemExit):
            _cli("study", "data-efficiency", str(path), "--sizes", "10", "--lr-grid", grid)
    assert "MODE=LR,LR" in capsys.readouterr().err


@pytest.mark.slow  # a study: several training runs
def test_data_efficiency_study(cache: Path, pretrained: Path, tmp_path: Path) -> None:
    from foundation.training.study import data_efficiency

    recipe = recipe_from_dict(
        recipe_data(
            cache,
            tmp_path / "top",
            model={"backbone": None, "pretrained": str(pretrained)},
            trainer={"max_epochs": 1},
        )
    )
    result = data_efficiency(
        recipe, sizes=[24, 48], seeds=2, modes=["frozen", "scratch"], out=tmp_path / "study"
    )
    assert len(result.points) == 8
    assert {p.folder.parent.name for p in result.points} == {"n24", "n48"}
    row = result.table["frozen"][24]
    assert row["loss"]["n"] == 2 and row["loss"]["std"] >= 0
    assert "top/auc" in row and "top/rejection_at_0.5" in row
    text = result.markdown.read_text()
    assert "| frozen | 24 |" in text and "±" in text
    assert (tmp_path / "study" / "study_top_auc.png").is_file()
    assert json.loads(result.json.read_text())["request"]["sizes"] == [24, 48]
    again = data_efficiency(recipe, sizes=[24], seeds=1, modes=["frozen"], out=tmp_path / "study")
    assert again.points[0].metrics == result.points[0].metrics  # finished runs are reused


@pytest.mark.slow  # a study: a run per rate
def test_study_chooses_each_modes_learning_rate_on_validation(
    cache: Path, pretrained: Path, tmp_path: Path
) -> None:
    from foundation.training.study import data_efficiency, point_recipe, validation_score

    recipe = recipe_from_dict(
        recipe_data(
            cache,
            tmp_path / "top",
            model={"backbone": None, "pretrained": str(pretrained)},
            trainer={"max_epochs": 1},
        )
    )
    out = tmp_path / "study"
    grid = {"scratch": [1e-4, 1e-2]}
    result = data_efficiency(recipe, [24], 2, ["frozen", "scratch"], out, lr_grid=grid)
    selection = json.loads(result.json.read_text())["lr_selection"]["scratch"]["24"]
    losses = {
        lr: validation_score(point_recipe(recipe, "scratch", 24, 0, out, lr)) for lr in (1e-4, 1e-2)
    }
    assert selection["scores"] == {f"{lr:g}": value for lr, value in losses.items()}
    assert selection["chosen"] == min(losses, key=losses.get)
    chosen = f"lr{selection['chosen']:g}"
    scratch = [p for p in result.points if p.mode == "scratch"]
    assert [p.folder.parent.name for p in scratch] == [chosen, chosen]
    assert [p.folder.name for p in scratch] == ["seed0", "seed1"]
    frozen = [p for p in result.points if p.mode == "frozen"]
    assert {p.folder.parent.name for p in frozen} == {"n24"}  # no grid: the recipe's rate
    assert "Learning rate chosen" in result.markdown.read_text()
    with pytest.raises(ValueError, match="--lr-grid"):
        data_efficiency(recipe, [24], 1, ["frozen"], out, lr_grid={"scratch": [1e-3]})
    with pytest.raises(ValueError, match="positive"):
        data_efficiency(recipe, [24], 1, ["scratch"], out, lr_grid={"scratch": [0.0]})


@pytest.mark.parametrize("mode, head_scale", [("full", 10.0), ("frozen", 10.0), ("scratch", 1.0)])
def test_scratch_trains_heads_at_the_backbone_rate(
    pretrained: Path, mode: str, head_scale: float
) -> None:
    model = load_pretrained(pretrained, heads=None)
    model.add_head("top", "jet_classification")
    finetune = FinetuneConfig(mode=mode, head_lr_multiplier=10.0)
    groups = parameter_groups(model, finetune, OptimizerConfig(lr=1e-3), include_frozen=True)
    by_name = {group["name"]: group for group in groups}
    assert by_name["heads"]["lr"] == pytest.approx(1e-3 * head_scale)
    assert by_name["backbone"]["lr"] == pytest.approx(1e-3)


def test_study_summary_counts_infinite_rejections() -> None:
    from foundation.evaluation.study_summary import StudyPoint, summarize
    from foundation.training.study_report import markdown_table

    values = [100.0, float("inf"), 300.0]
    points = [StudyPoint("gbt", 10, k, Path("."), {"r": v}) for k, v in enumerate(values)]
    points.append(StudyPoint("full", 10, 0, Path("."), {"r": float("inf")}))
    table = summarize(points)
    assert table["gbt"][10]["r"] == pytest.approx(
        {"mean": 200.0, "std": 141.4213562, "n": 2, "infinite": 1}
    )
    assert table["full"][10]["r"]["n"] == 0 and table["full"][10]["r"]["infinite"] == 1
    text = markdown_table(table)
    assert "200 ± 1.4e+02 (∞ in 1 of 3, left out)" in text and "∞ (1 of 1)" in text


def test_study_scores_every_head_with_the_evaluation_metrics(cache: Path, tmp_path: Path) -> None:
    from foundation.training.run_scores import evaluation_metrics

    heads = {
        "top": {"type": "jet_classification"},
        "calib": {"type": "jet_regression", "kwargs": {"targets": ["jet_truth_pt"]}},
    }
    recipe = recipe_from_dict(
        recipe_data(cache, tmp_path / "run", model={"heads": heads}, trainer={"max_epochs": 1})
    )
    train(recipe)
    metrics = evaluation_metrics(tmp_path / "run")
    assert {"top/auc", "top/accuracy", "top/rejection_at_0.3"} <= set(metrics)
    assert {
        "calib/jet_truth_pt/mae",
        "calib/jet_truth_pt/model/median_response",
        "calib/jet_truth_pt/model/sigma68",
    } <= set(metrics)
    assert not [name for name in metrics if name.endswith("/n") or "/n_" in name]
    assert all(isinstance(value, float) for value in metrics.values())


def test_study_reads_a_finished_runs_scores_until_its_best_checkpoint_changes(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from foundation.training import run_scores

    recipe = recipe_from_dict(recipe_data(cache, tmp_path / "run", trainer={"max_epochs": 1}))
    train(recipe)
    first = run_scores.evaluation_metrics(tmp_path / "run")
    assert (tmp_path / "run" / run_scores.SCORES_FILE).is_file()

    def refuse(run: Path) -> None:
        raise AssertionError("the model was run again")

    monkeypatch.setattr(run_scores, "best_model_and_test_data", refuse)
    assert run_scores.evaluation_metrics(tmp_path / "run") == first
    monkeypatch.undo()
    stored = tmp_path / "run" / run_scores.SCORES_FILE  # scores of another best/ checkpoint
    stored.write_text(stored.read_text().replace('"best_sha256": "', '"best_sha256": "0'))
    calls: list[Path] = []
    original = run_scores.best_model_and_test_data
    monkeypatch.setattr(
        run_scores, "best_model_and_test_data", lambda run: calls.append(run) or original(run)
    )
    run_scores.evaluation_metrics(tmp_path / "run")
    assert calls == [tmp_path / "run"]
