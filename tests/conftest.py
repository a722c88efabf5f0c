"""Shared fixtures: tiny random JetBatches (N = 0, 1, padded) with targets for every head."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Container, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch

from foundation.data.batch import JetBatch
from foundation.data.schema import FEATURE_SETS, JETCLASS_LABELS, ORIGIN_CLASSES
from foundation.models.registry import list_backbones

if TYPE_CHECKING:
    from foundation.model import Model

torch.set_num_threads(1)  # the test machine's cores are shared

PARTICLE_FEATURES: tuple[str, ...] = FEATURE_SETS["kin"]
"""Feature names of the test batches (``F = 7``)."""

JET_FEATURES: tuple[str, ...] = ("jet_pt_log", "jet_eta")
"""Jet-level input names of the test batches (``J = 2``)."""

DEFAULT_COUNTS: tuple[int, ...] = (0, 1, 3, 6)
"""Real particles per jet of the default batch: an empty jet, a single particle, padded jets."""


def tiny_backbones() -> list[str]:
    """Registered backbone variants ending in ``-tiny`` (every test runs on each)."""
    names = [name for name in list_backbones() if name.endswith("-tiny")]
    if not names:  # pragma: no cover - the zoo always registers tiny variants
        raise RuntimeError("no '-tiny' backbone is registered; tests need at least one")
    return names


def slow_except(values: Iterable[str], fast: Container[str]) -> list[Any]:
    """``values`` as pytest parameters, marked ``slow`` except those in ``fast``: the quick run
    (``pytest -m "not slow"``) keeps one case of an expensive matrix, ``pytest`` runs them all."""
    return [
        pytest.param(value, marks=() if value in fast else pytest.mark.slow) for value in values
    ]


def backbone_kwargs() -> dict[str, int]:
    """Arguments that fit the test batches to any backbone."""
    return {"in_features": len(PARTICLE_FEATURES), "in_jet_features": len(JET_FEATURES)}


def make_batch(
    counts: Sequence[int] = DEFAULT_COUNTS,
    *,
    num_particles: int | None = None,
    seed: int = 0,
    scatter: bool = False,
) -> JetBatch:
    """A random batch with explicit padding and a target for every built-in head.

    Args:
        counts: real particles per jet (0 and 1 are valid).
        num_particles: padded size ``N`` (default ``max(counts)``, 0 for an all-empty batch).
        seed: random seed (the batch is deterministic).
        scatter: spread the real particles over random slots instead of packing them first.

    Targets: ``label`` [B] (2 classes), ``label_jetclass`` [B] (10 classes), ``jet_truth_pt``
    and ``jet_truth_mass`` [B], ``part_origin`` [B, N] (-1 on padding and some unlabelled
    particles), ``part_vertex`` [B, N] and ``pair_same_vertex`` [B, N, N].
    """
    from foundation.data.loading import same_vertex_targets

    generator = torch.Generator().manual_seed(seed)
    batch_size = len(counts)
    count = max(counts, default=0) if num_particles is None else num_particles
    if count < max(counts, default=0):
        raise ValueError(f"num_particles={count} is smaller than max(counts)={max(counts)}")
    mask = torch.zeros(batch_size, count, dtype=torch.bool)
    for row, real in enumerate(counts):
        if scatter:
            mask[row, torch.randperm(count, generator=generator)[:real]] = True
        else:
            mask[row, :real] = True

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    keep = mask.unsqueeze(-1)
    particles = torch.where(keep, rand(batch_size, count, len(PARTICLE_FEATURES)), 0.0)
    momenta = rand(batch_size, count, 3) * 20.0
    momenta[..., 0] += 100.0  # a jet axis along x, so that the particles are collimated
    mass = 0.1 + torch.rand(batch_size, count, 1, generator=generator)
    energy = torch.sqrt((momenta**2).sum(dim=-1, keepdim=True) + mass**2)
    vectors = torch.where(keep, torch.cat([momenta, energy], dim=-1), 0.0)
    vertex = torch.randint(-1, 3, (batch_size, count), generator=generator)
    origin = torch.randint(0, len(ORIGIN_CLASSES), (batch_size, count), generator=generator)
    origin[torch.rand(batch_size, count, generator=generator) < 0.2] = -1
    targets = {
        "label": torch.randint(0, 2, (batch_size,), generator=generator),
        "label_jetclass": torch.randint(
            0, len(JETCLASS_LABELS), (batch_size,), generator=generator
        ),
        "jet_truth_pt": 500.0 + 100.0 * torch.rand(batch_size, generator=generator),
        "jet_truth_mass": 50.0 + 100.0 * torch.rand(batch_size, generator=generator),
        "part_origin": torch.where(mask, origin, -1),
        "part_vertex": torch.where(mask, vertex, -1),
        "pair_same_vertex": same_vertex_targets(torch.where(mask, vertex, -1), mask),
    }
    return JetBatch(
        particles=particles,
        mask=mask,
        vectors=vectors,
        jet=rand(batch_size, len(JET_FEATURES)),
        targets=targets,
        feature_names=PARTICLE_FEATURES,
        jet_feature_names=JET_FEATURES,
    )


HEAD_SPECS: dict[str, tuple[str, dict]] = {
    "binary": ("jet_classification", {}),
    "multiclass": (
        "jet_classification",
        {"label_names": list(JETCLASS_LABELS), "target": "label_jetclass"},
    ),
    "regression": (
        "jet_regression",
        {"target_offset": [550.0, 100.0], "target_scale": [30.0, 30.0]},
    ),
    "huber": ("jet_regression", {"loss": "huber", "targets": ["jet_truth_mass"]}),
    "gaussian": (
        "jet_regression",
        {"gaussian": True, "target_offset": [550.0, 100.0], "target_scale": [30.0, 30.0]},
    ),
    "origin": ("particle_classification", {}),
    "vertex_pairs": ("pair_classification", {}),
    "masked": ("masked_particle", {}),
}
"""Head configurations the tests run on every backbone: ``name -> (head type, kwargs)``."""


def batch_for(head_type: str, batch: JetBatch, seed: int = 0) -> JetBatch:
    """The batch a head trains on: masked for ``masked_particle``, else unchanged."""
    if head_type != "masked_particle":
        return batch
    from heads.masked_particle import mask_particles

    return mask_particles(batch, 0.5, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def batch() -> JetBatch:
    """The default batch: jets with 0, 1, 3 and 6 particles (N = 6)."""
    return make_batch()


@pytest.fixture
def batch_factory():
    """:func:`make_batch`, for tests that need other shapes."""
    return make_batch


# ------------------------------------------------------------------ models and checkpoint helpers
NORMALIZATION = {"part_pt_log": {"mean": 1.7, "std": 0.9}}
PROVENANCE = {"dataset": "unit-test random jets", "seed": 0}


def make_model(backbone: str = "pfn-tiny", seed: int = 0) -> Model:
    """A model with a jet, a particle and a pair head on a tiny backbone."""
    from foundation.model import Model

    torch.manual_seed(seed)
    return Model.create(
        backbone,
        backbone_kwargs(),
        {
            "top": {"type": "jet_classification", "weight": 2.0},
            "origin": {"type": "particle_classification", "weight": 0.5},
            "vertex": {"type": "pair_classification"},
        },
    )


def save(model: Model, folder: Path, **kwargs) -> Path:
    """``save_pretrained`` with the test batches' schema, normalization and provenance."""
    from foundation.hub import FeatureSchema, save_pretrained

    options = {
        "feature_schema": FeatureSchema(PARTICLE_FEATURES, JET_FEATURES),
        "normalization": NORMALIZATION,
        "provenance": PROVENANCE,
    }
    return save_pretrained(model, folder, **(options | kwargs))


def run_eval(model: Model, batch: JetBatch) -> dict:
    """Outputs of ``model`` in eval mode without gradients."""
    with torch.no_grad():
        return model.eval()(batch)


def outputs_equal(a: dict, b: dict) -> None:
    """Assert two ``{head: {output: tensor}}`` dicts are bit-identical."""
    assert a.keys() == b.keys()
    for head in a:
        for name in a[head]:
            assert torch.equal(a[head][name], b[head][name]), (head, name)


def cli(*argv: str) -> int:
    """Run ``foundation <argv>`` with the hub command registered (returns the exit code)."""
    from foundation.cli import hub as hub_cli

    parser = argparse.ArgumentParser(prog="foundation")
    hub_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def interruptible() -> None:
    """In the child before exec: Ctrl-C on, as in a terminal's foreground process (a shell's
    background job, e.g. a CI script run with `&`, starts its children with SIGINT ignored,
    which Python then keeps ignoring)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def save_tiny_base(
    cache: Path, folder: Path, backbone: str, backbone_kwargs: dict[str, Any], n_jets: int
) -> Path:
    """A tiny 'pretrained' checkpoint (seed 0) with the schema and normalization of the first
    ``n_jets`` jets of ``cache``: the base of fine-tuning tests."""
    import numpy as np

    from foundation.data.loading import fit_cache_normalizers
    from foundation.data.schema import JET_INPUTS
    from foundation.hub import FeatureSchema, save_pretrained
    from foundation.model import Model
    from foundation.training.datasets import TaskDataset
    from foundation.training.normalization import normalization_record

    torch.manual_seed(0)
    model = Model.create(backbone, backbone_kwargs)
    particles, jet = fit_cache_normalizers(TaskDataset(cache, np.arange(n_jets)))
    save_pretrained(
        model,
        folder,
        feature_schema=FeatureSchema(particles.names, JET_INPUTS),
        normalization=normalization_record(particles, jet),
    )
    return folder


def delphes_card(name: str) -> Any:
    """The shipped Delphes-style detector card ``name`` (checked to be one)."""
    from foundation.simulation.card import load_card
    from foundation.simulation.delphes_card import DelphesCard

    card = load_card(name)
    assert isinstance(card, DelphesCard)
    return card
