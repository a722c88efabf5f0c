"""A new head is one module and nothing else.

The head below (the number of particles of a jet, regressed from the jet embedding) is defined
and registered in this file only. It is fine-tuned from a pretrained checkpoint, evaluated by
``foundation evaluate`` (its own metrics and plot in ``metrics.json``) and exported to ONNX with
the parity gate: training, evaluation and export call the head's own methods and know no head
by its name. The registration is removed after each test.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from synthetic import random_records, write_jetclass_root

from foundation import load_pretrained
from foundation.data.batch import JetBatch
from foundation.data.cache import write_cache
from foundation.data.loading import fit_cache_normalizers
from foundation.data.schema import JET_INPUTS, TOP_LABELS
from foundation.evaluation.predict import head_kind
from foundation.export import export_onnx
from foundation.hub import FeatureSchema, save_pretrained
from foundation.model import Model
from foundation.models.base import Features
from foundation.training.builder import head_targets
from foundation.training.datasets import TaskDataset
from foundation.training.normalization import normalization_record
from foundation.training.recipe import recipe_from_dict
from foundation.training.run import train
from heads import (
    Collector,
    Head,
    HeadPredictions,
    PredictionStep,
    ScoreSettings,
    get_head_class,
    list_heads,
    register_head,
    unregister_head,
)
from heads.jet_classification import JetClassificationHead
from heads.layers import mlp

NAME = "jet_multiplicity"
SLOTS = 16


class MultiplicityCollector(Collector):
    """Predicted and true particle counts of each jet."""

    def collect_batch(self, outputs: Mapping[str, torch.Tensor], step: PredictionStep) -> None:
        self.add(
            predicted=outputs["count"].detach().double().numpy(),
            true=step.batch.mask.sum(dim=1).double().numpy(),
        )


class JetMultiplicityHead(Head):
    """Regress the number of real particles of each jet from the jet embedding.

    Shapes:
        - features.jet: ``[B, D]``
        - outputs: ``count [B]``

    Args:
        in_features: embedding width ``D`` of the backbone.
        hidden: widths of the hidden layers of the MLP.
    """

    level = "jet"
    task = "regression"

    def __init__(self, in_features: int, hidden: Sequence[int] = (16,)) -> None:
        super().__init__()
        self.label_names = ("n_particles",)
        self.target_key = "n_particles"
        self.net = mlp(in_features, hidden, 1, 0.0)
        self.config = {"in_features": int(in_features), "hidden": [int(h) for h in hidden]}

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("count",)

    def forward(self, features: Features, batch: JetBatch) -> dict[str, torch.Tensor]:
        return {"count": self.net(features.jet).squeeze(-1)}

    def loss(self, outputs: dict[str, torch.Tensor], batch: JetBatch) -> torch.Tensor:
        return ((outputs["count"] - batch.mask.sum(dim=1).float()) ** 2).mean()

    def metrics(self, outputs: dict[str, torch.Tensor], batch: JetBatch) -> dict[str, torch.Tensor]:
        error = outputs["count"].detach() - batch.mask.sum(dim=1).float()
        return {"mae": error.abs().mean()}

    def data_targets(self) -> tuple[str, ...]:
        return ()  # counted from the batch's mask

    def collector(self, name: str, data_label_names: Sequence[str]) -> Collector:
        return MultiplicityCollector(name, self)

    @classmethod
    def score(
        cls, predictions: HeadPredictions, folder: Path | None, settings: ScoreSettings
    ) -> tuple[dict[str, Any], list[Path]]:
        from foundation.evaluation.plots import plot_scores

        error = predictions.arrays["predicted"] - predictions.arrays["true"]
        metrics = {"n": int(error.size), "mae": float(np.abs(error).mean())}
        if folder is None:
            return metrics, []
        path = folder / f"{predictions.name}_error.png"
        plot_scores({predictions.name: {"predicted - true": error}}, path, xlabel="error")
        return metrics, [path]


@pytest.fixture
def plugin() -> Iterator[type[Head]]:
    """The head, registered for one test."""
    register_head(NAME)(JetMultiplicityHead)
    try:
        yield JetMultiplicityHead
    finally:
        unregister_head(NAME)


def test_a_head_registered_from_a_test_is_removed_after_it(plugin: type[Head]) -> None:
    assert NAME in list_heads() and plugin.head_type == plugin.kind == NAME
    unregister_head(NAME)
    assert NAME not in list_heads()
    with pytest.raises(KeyError, match="unknown head 'jet_multiplicity'"):
        unregister_head(NAME)
    register_head(NAME)(JetMultiplicityHead)  # registered again: the fixture removes it
    with pytest.raises(ValueError, match="already registered"):
        register_head(NAME)(JetMultiplicityHead)


@pytest.mark.parametrize("name", list_heads())
def test_builtin_heads_own_their_evaluation(name: str) -> None:
    head = get_head_class(name)
    assert head.kind == name and head.task in ("classification", "regression", "reconstruction")
    assert head.collector is not Head.collector and head.score is not Head.score


def test_a_subclass_under_a_new_name_is_scored_as_its_parent() -> None:
    class TopTagger(JetClassificationHead):
        pass

    register_head("top_tagger")(TopTagger)
    try:
        tagger = TopTagger(in_features=4)
        assert (tagger.head_type, tagger.kind, head_kind(tagger)) == (
            "top_tagger",
            "jet_classification",
            "jet_classification",
        )
    finally:
        unregister_head("top_tagger")


def test_the_baseline_names_the_registered_heads_it_stands_in_for(
    plugin: type[Head], tmp_path: Path
) -> None:
    from foundation.baselines.on_recipe import gbt_on_recipe

    recipe = recipe_from_dict(
        {
            "data": {"cache": str(tmp_path / "cache")},
            "model": {"backbone": "pfn-tiny", "heads": {"mult": {"type": NAME}}},
            "output": {"folder": str(tmp_path / "run")},
        }
    )
    with pytest.raises(ValueError, match=r", a jet_multiplicity head or a jet_regression head on"):
        gbt_on_recipe(recipe)  # a jet-level regression head, but not on targets the trees know


def _evaluate_cli(*argv: str) -> int:
    from foundation.cli import evaluate

    parser = argparse.ArgumentParser(prog="foundation")
    evaluate.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_a_new_head_finetunes_evaluates_and_exports(plugin: type[Head], tmp_path: Path) -> None:
    records = random_records(64, mean_particles=8, seed=5, label_names=TOP_LABELS, truth=True)
    cache = tmp_path / "cache"
    write_cache(records, cache, features="kin", max_particles=SLOTS)
    particles, jet = fit_cache_normalizers(TaskDataset(cache, np.arange(32)))
    torch.manual_seed(0)
    base = tmp_path / "base"
    save_pretrained(
        Model.create("pfn-tiny", {"in_features": len(particles.names)}),
        base,
        feature_schema=FeatureSchema(particles.names, JET_INPUTS),
        normalization=normalization_record(particles, jet),
    )
    recipe = recipe_from_dict(
        {
            "name": "plugin",
            "data": {"cache": str(cache), "features": "kin", "max_particles": SLOTS},
            "model": {"pretrained": str(base), "heads": {"mult": {"type": NAME}}},
            "trainer": {"max_epochs": 1, "progress_bar": False, "log_every": 1},
            "output": {"folder": str(tmp_path / "run")},
        }
    )
    run = tmp_path / "run"
    train(recipe)  # fine-tune
    model = load_pretrained(run / "best")
    head = model.heads["mult"]
    assert isinstance(head, JetMultiplicityHead) and head_targets(model) == []
    assert head_kind(head) == NAME

    data = str(write_jetclass_root(records[:24], tmp_path / "jets.root"))
    options = ("--batch-size", "8", "--bootstrap", "0", "--max-particles", str(SLOTS))
    assert _evaluate_cli("evaluate", str(run), "--data", data, *options, "--device", "cpu") == 0
    entry = json.loads((run / "evaluation" / "metrics.json").read_text())["heads"]["mult"]
    assert (entry["kind"], entry["level"], entry["label_names"]) == (NAME, "jet", ["n_particles"])
    assert entry["metrics"]["n"] == 24 and entry["metrics"]["mae"] >= 0
    assert entry["plots"] == ["mult_error.png"]
    assert (run / "evaluation" / "mult_error.png").read_bytes()[:4] == b"\x89PNG"

    report = export_onnx(run, tmp_path / "model.onnx")  # the parity gate runs
    assert report.outputs == ["mult.count"] and report.parity is not None
    graph = onnx.load(str(tmp_path / "model.onnx"))
    assert [output.name for output in graph.graph.output] == ["mult.count"]
