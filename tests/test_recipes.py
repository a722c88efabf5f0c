"""One end-to-end smoke test per recipe in ``recipes/``: train a few steps on tiny data through the
command line, reload the ``best/`` checkpoint with ``load_pretrained``, and evaluate it.

Tiny data: one simulated top/QCD sample (20 jets per process, made once per session with the
simulation API; it carries the truth that D3-D5 need) and random jets where truth is not needed
(the pretraining corpus, quark/gluon labels). The fine-tuning recipes start from the checkpoint
that the pretraining recipe's smoke run makes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import slow_except
from synthetic import random_records

from foundation import load_pretrained
from foundation.data.cache import write_cache
from foundation.data.schema import JETCLASS_LABELS, QUARK_GLUON_LABELS
from foundation.simulation.card import DEFAULT_CARD
from foundation.training.builder import head_targets
from foundation.training.datamodule import JetDataModule
from foundation.training.recipe import SimulateConfig, load_recipe
from foundation.training.sources import simulate

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SLOTS = 32
SIMULATED = SimulateConfig(
    process="toptagging", jets=20, seed=11, pt_range=(550.0, 650.0), shard_size=20, card="default"
)
"""The session's simulated sample: qcd + tbqq, 20 jets each, with truth (the card the benchmark
suite's recipes pin)."""

DATA: dict[str, str] = {
    "pretrain_jetclass": "random_jetclass",
    "pretrain_jetformer_tiny_sim20k": "random_jetclass",
    "pretrain_jetformer_tiny_sim300k": "random_jetclass",
    "pretrain_jetformer_tiny_simjc300k": "random_jetclass",
    "top_tagging": "simulated",
    "quark_gluon": "random_quark_gluon",
    "jet_regression": "simulated",
    "particle_origin": "simulated",
    "vertex_pairs": "simulated",
}
"""Tiny data of each recipe; a new recipe must be added here."""

PINNED_CARDS: dict[str, str | None] = {
    "pretrain_jetclass": None,  # no shipped result: it follows DEFAULT_CARD
    "pretrain_jetformer_tiny_sim20k": "default",  # the shipped jetformer-tiny.sim20k
    "pretrain_jetformer_tiny_sim300k": "default",  # the shipped jetformer-tiny.sim300k
    "pretrain_jetformer_tiny_simjc300k": "jetclass",
    "top_tagging": "default",  # the README's D1 tables
    "quark_gluon": "default",  # D2
    "jet_regression": "default",  # D3
    "particle_origin": "default",  # D4
    "vertex_pairs": "default",  # D5
}
"""The detector card each recipe names in ``data.simulate.card`` (``None``: none, it follows the
library's default card); a recipe whose results are shipped or tabulated must name its card, so
that a change of the default card never changes what it makes."""

SMOKE = [
    "trainer.max_epochs=2",
    "trainer.max_steps=3",
    "trainer.progress_bar=false",
    "trainer.log_every=1",
    "trainer.eval_train_batches=1",
    "data.batch_size=8",
    f"data.max_particles={SLOTS}",
    "data.split.train=0.6",
    "data.split.val=0.2",
    "data.split.test=0.2",
]


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recipes")


@pytest.fixture(scope="session")
def sample(workspace: Path) -> SimulateConfig:
    """Simulate the top/QCD sample once (the recipes' runs then find its shards done)."""
    config = SimulateConfig(**{**vars(SIMULATED), "folder": str(workspace / "sim")})
    simulate(config, show_progress=False)
    return config


@pytest.fixture(scope="session")
def random_caches(workspace: Path) -> dict[str, Path]:
    caches = {}
    for name, labels, seed in (
        ("random_jetclass", JETCLASS_LABELS, 1),
        ("random_quark_gluon", QUARK_GLUON_LABELS, 2),
    ):
        folder = workspace / name
        records = random_records(80, mean_particles=12, seed=seed, label_names=labels)
        write_cache(records, folder, features="full", max_particles=SLOTS)
        caches[name] = folder
    return caches


def _cli(*argv: str) -> int:
    from foundation.cli import finetune, pretrain

    parser = argparse.ArgumentParser(prog="foundation")
    commands = parser.add_subparsers(dest="command")
    pretrain.register(commands)
    finetune.register(commands)
    args = parser.parse_args(list(argv))
    return args.func(args)


def _data_overrides(kind: str, workspace: Path, sample, caches) -> list[str]:
    if kind == "simulated":
        pt_low, pt_high = SIMULATED.pt_range or (0, 0)
        return [
            f"data.simulate.process={SIMULATED.process}",
            f"data.simulate.jets={SIMULATED.jets}",
            f"data.simulate.seed={SIMULATED.seed}",
            f"data.simulate.pt_range=[{pt_low}, {pt_high}]",
            f"data.simulate.shard_size={SIMULATED.shard_size}",
            f"data.simulate.card={SIMULATED.card}",
            "data.simulate.workers=1",
            f"data.simulate.folder={sample.folder}",
            f"data.cache_root={workspace / 'caches'}",
        ]
    return ["data.simulate=null", f"data.cache={caches[kind]}"]


def _smoke_run(name: str, workspace: Path, sample, caches, extra: list[str] = ()) -> Path:
    recipe = RECIPES / f"{name}.yaml"
    out = workspace / "runs" / name
    command = "pretrain" if name.startswith("pretrain") else "finetune"
    overrides = [*SMOKE, *_data_overrides(DATA[name], workspace, sample, caches), *extra]
    if command == "pretrain":
        overrides.append("model.backbone=part-tiny")
    argv = [command, str(recipe), "--out", str(out), "--overwrite"]
    for override in overrides:
        argv += ["--set", override]
    assert _cli(*argv) == 0
    return out


@pytest.fixture(scope="session")
def pretrained_run(workspace: Path, sample, random_caches) -> Path:
    """The pretraining recipe's smoke run (its best/ is the fine-tuning recipes' base)."""
    return _smoke_run("pretrain_jetclass", workspace, sample, random_caches)


def _recomputed_test_loss(run: Path) -> float:
    """Reload best/ and evaluate it on the run's test split, as the run did."""
    recipe = load_recipe(run / "recipe.yaml")
    model = load_pretrained(run / "best")
    data = JetDataModule(recipe.data, seed=recipe.trainer.seed, show_progress=False)
    data.prepare(model.feature_schema.normalization)
    data.require_targets(head_targets(model))
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in data.loader("test"):
            loss, _ = model.loss(batch)
            total += float(loss) * len(batch)
            count += len(batch)
    return total / count


def test_every_recipe_has_smoke_data() -> None:
    names = sorted(path.stem for path in RECIPES.glob("*.yaml"))
    assert names == sorted(DATA), "add each recipe of recipes/ to DATA in tests/test_recipes.py"
    assert names == sorted(PINNED_CARDS), "add each recipe of recipes/ to PINNED_CARDS"


@pytest.mark.parametrize("name", sorted(PINNED_CARDS))
def test_recipes_of_shipped_results_pin_their_detector_card(name: str) -> None:
    """The card is written in the recipe, not taken from the default (which has changed once)."""
    written = yaml.safe_load((RECIPES / f"{name}.yaml").read_text())["data"]["simulate"]
    assert written.get("card") == PINNED_CARDS[name], f"recipes/{name}.yaml: data.simulate.card"
    expected = PINNED_CARDS[name] or DEFAULT_CARD
    assert load_recipe(RECIPES / f"{name}.yaml").data.simulate.card == expected


# The quick run keeps the pipeline: simulate, pretrain, fine-tune, reload, recompute.
@pytest.mark.parametrize(
    "name",
    slow_except(
        sorted(path.stem for path in RECIPES.glob("*.yaml")),
        {"pretrain_jetclass", "top_tagging"},
    ),
)
def test_recipe_end_to_end(
    name: str, workspace: Path, sample, random_caches, pretrained_run
) -> None:
    if name.startswith("pretrain"):
        run = pretrained_run
    else:
        base = ["model.backbone=null", f"model.pretrained={pretrained_run / 'best'}"]
        run = _smoke_run(name, workspace, sample, random_caches, base)
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) >= {"train", "test"} and np.isfinite(metrics["test"]["loss"])
    model = load_pretrained(run / "best")
    assert list(model.heads) == list(load_recipe(RECIPES / f"{name}.yaml").model.heads)
    if "masked_particle" not in {head.head_type for head in model.heads.values()}:
        assert _recomputed_test_loss(run) == pytest.approx(metrics["test"]["loss"], rel=1e-4)
    assert (run / "loss_curves.png").is_file()


@pytest.mark.slow  # a second fine-tuning run on the simulated jets
def test_top_tagging_lora_with_train_size(workspace: Path, sample, random_caches, pretrained_run):
    base = ["model.backbone=null", f"model.pretrained={pretrained_run / 'best'}"]
    run = _smoke_run("top_tagging", workspace, sample, random_caches, base)
    argv = ["finetune", str(RECIPES / "top_tagging.yaml"), "--mode", "lora", "--train-size", "16"]
    argv += ["--out", str(workspace / "runs" / "top_lora"), "--overwrite"]
    for override in [
        *SMOKE,
        *_data_overrides("simulated", workspace, sample, random_caches),
        *base,
    ]:
        argv += ["--set", override]
    assert _cli(*argv) == 0
    config = json.loads((workspace / "runs/top_lora/best/config.json").read_text())
    assert config["base"] and config["adapters"][0]["type"] == "lora"
    assert config["provenance"]["train_size"] == 16
    assert run.is_dir()
