"""Heads and the multi-head Model: every head on every tiny backbone, plus the registry."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import HEAD_SPECS, backbone_kwargs, batch_for, make_batch, tiny_backbones

from foundation.data.batch import JetBatch
from foundation.data.loading import same_vertex_targets
from foundation.model import Model
from heads import Head, create_head, list_heads, register_head
from heads.layers import binary_auc
from heads.masked_particle import mask_particles


def build(backbone: str, spec: str, seed: int = 0) -> Model:
    torch.manual_seed(seed)
    head_type, kwargs = HEAD_SPECS[spec]
    model = Model.create(backbone, backbone_kwargs())
    model.add_head(spec, head_type, **kwargs)
    return model


def expected_shapes(model: Model, spec: str, batch: JetBatch) -> dict[str, tuple[int, ...]]:
    head = model.heads[spec]
    size, count = len(batch), batch.num_particles
    if head.level == "jet":
        width = () if getattr(head, "binary", False) else (len(head.label_names),)
        return {name: (size, *width) for name in head.output_names}
    if head.level == "pair":
        return {name: (size, count, count) for name in head.output_names}
    width = head.num_inputs if head.head_type == "masked_particle" else len(head.label_names)
    return {name: (size, count, width) for name in head.output_names}


def permute(batch: JetBatch, order: torch.Tensor) -> JetBatch:
    """Reorder the particle slots of a batch (targets included)."""
    count = batch.num_particles
    targets = {}
    for key, value in batch.targets.items():
        if value.dim() >= 2 and value.shape[1] == count:
            value = value[:, order]
            if value.dim() == 3 and value.shape[2] == count and key.startswith("pair"):
                value = value[:, :, order]
        targets[key] = value
    return replace(
        batch,
        particles=batch.particles[:, order],
        mask=batch.mask[:, order],
        vectors=batch.vectors[:, order],
        targets=targets,
    )


# --------------------------------------------------------------------------------- registry
def test_every_registered_head_is_tested():
    assert {head_type for head_type, _ in HEAD_SPECS.values()} == set(list_heads())


def test_registry_rejects_duplicate_and_malformed_names():
    with pytest.raises(ValueError, match=r"already registered"):
        register_head("jet_classification")(type("Dup", (Head,), {"level": "jet"}))
    for bad in ("Jet", "jet-class", "1jet", ""):
        with pytest.raises(ValueError, match=r"malformed"):
            register_head(bad)
    with pytest.raises(TypeError, match=r"Head subclass"):
        register_head("not_a_head")(object)
    with pytest.raises(ValueError, match=r"level"):
        register_head("bad_level")(type("BadLevel", (Head,), {"level": "event"}))
    with pytest.raises(KeyError, match=r"unknown head 'nope'.*jet_classification"):
        create_head("nope", in_features=4)


def test_heads_declare_their_contract():
    for spec, (head_type, kwargs) in HEAD_SPECS.items():
        head = create_head(
            head_type,
            in_features=8,
            **({"num_inputs": 7} | kwargs if head_type == "masked_particle" else kwargs),
        )
        assert head.head_type == head_type, spec
        assert head.level in ("jet", "particle", "pair")
        assert isinstance(head.target_key, str) and head.target_key
        assert head.output_names and all(isinstance(n, str) for n in head.output_names)
        assert head.__doc__ and "Shapes:" in head.__doc__
        rebuilt = create_head(head_type, **head.config)
        assert rebuilt.config == head.config


# ----------------------------------------------------------------- every head x every backbone
@pytest.mark.parametrize("spec", sorted(HEAD_SPECS))
@pytest.mark.parametrize("backbone", tiny_backbones())
def test_forward_backward_shapes_padding(backbone: str, spec: str):
    model = build(backbone, spec)
    model.train()
    batch = batch_for(HEAD_SPECS[spec][0], make_batch())
    outputs = model(batch)[spec]
    assert tuple(outputs) == model.heads[spec].output_names
    for name, shape in expected_shapes(model, spec, batch).items():
        assert tuple(outputs[name].shape) == shape, name
        assert torch.isfinite(outputs[name]).all(), name
        if model.heads[spec].level == "particle":
            assert (outputs[name][~batch.mask] == 0).all(), name
        if model.heads[spec].level == "pair":
            pair_mask = batch.mask.unsqueeze(2) & batch.mask.unsqueeze(1)
            assert (outputs[name][~pair_mask] == 0).all(), name
    total, per_head = model.loss(batch)
    assert torch.isfinite(total) and set(per_head) == {spec}
    total.backward()
    grads = [p.grad for p in model.heads[spec].parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    metrics = model.metrics(batch)[spec]
    assert metrics and all(value.dim() == 0 for value in metrics.values())


@pytest.mark.parametrize("counts", [(0, 0), (1,), (1, 1, 0)], ids=["N=0", "N=1", "N=1,empty"])
@pytest.mark.parametrize("backbone", tiny_backbones())
def test_tiny_jets_are_finite(backbone: str, counts: tuple[int, ...]):
    for spec in sorted(HEAD_SPECS):
        model = build(backbone, spec)
        batch = batch_for(HEAD_SPECS[spec][0], make_batch(counts))
        outputs = model(batch)[spec]
        for name, shape in expected_shapes(model, spec, batch).items():
            assert tuple(outputs[name].shape) == shape, (spec, name)
            assert torch.isfinite(outputs[name]).all(), (spec, name)
        total, _ = model.loss(batch)
        total.backward()
        assert torch.isfinite(total), spec
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("backbone", tiny_backbones())
def test_outputs_follow_particle_order(backbone: str):
    """Particle/pair outputs permute with the particles; jet outputs and losses do not change."""
    order = torch.tensor([4, 0, 5, 2, 1, 3])
    for spec in sorted(HEAD_SPECS):
        model = build(backbone, spec).eval()
        batch = batch_for(HEAD_SPECS[spec][0], make_batch(scatter=True, seed=3))
        moved = permute(batch, order)
        with torch.no_grad():
            reference, permuted = model(batch)[spec], model(moved)[spec]
            loss, moved_loss = model.loss(batch)[0], model.loss(moved)[0]
        level = model.heads[spec].level
        for name in reference:
            expected = reference[name]
            if level in ("particle", "pair"):
                expected = expected[:, order]
            if level == "pair":
                expected = expected[:, :, order]
            torch.testing.assert_close(permuted[name], expected, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(moved_loss, loss, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------------- head specifics
def test_pair_scores_are_symmetric():
    model = build("pfn-tiny", "vertex_pairs")
    logits = model(make_batch())["vertex_pairs"]["logits"]
    torch.testing.assert_close(logits, logits.transpose(1, 2))


@pytest.mark.parametrize("scatter", [False, True])
def test_pair_scores_over_real_pairs_equal_the_exported_dense_graph(monkeypatch, scatter):
    """Training scores only the pairs of real particles; the ONNX export scores all N x N
    slots: same logits, and zero on padding either way."""
    model = build("pfn-tiny", "vertex_pairs").eval()
    batch = make_batch((0, 1, 3, 7), num_particles=9, scatter=scatter)
    with torch.no_grad():
        sparse = model(batch)["vertex_pairs"]
        monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
        dense = model(batch)["vertex_pairs"]
    pair_mask = batch.mask.unsqueeze(2) & batch.mask.unsqueeze(1)
    for name in ("logits", "probabilities"):
        torch.testing.assert_close(sparse[name], dense[name], atol=1e-5, rtol=1e-5)
        assert (sparse[name][~pair_mask] == 0).all()
    assert sparse["logits"][pair_mask].abs().min() > 0


def test_same_vertex_targets():
    vertex = torch.tensor([[0, 0, 1, -1, 5]])
    mask = torch.tensor([[True, True, True, True, False]])
    target = same_vertex_targets(vertex, mask)
    assert target[0, 0, 1] == 1 and target[0, 1, 0] == 1
    assert target[0, 0, 2] == 0
    assert (target[0, 3] == -1).all() and (target[0, :, 3] == -1).all()  # no vertex
    assert (target[0, 4] == -1).all()  # padding
    assert (target[0].diagonal() == -1).all()


def test_mask_particles():
    batch = make_batch((0, 1, 2, 10), seed=1)
    masked = mask_particles(batch, 0.3, generator=torch.Generator().manual_seed(0))
    selected = masked.targets["masked_particle_mask"]
    assert selected.sum(dim=1).tolist() == [0, 1, 1, 3]
    assert not (selected & ~batch.mask).any()
    assert (masked.particles[selected] == 0).all() and (masked.vectors[selected] == 0).all()
    assert torch.equal(masked.particles[~selected], batch.particles[~selected])
    assert torch.equal(masked.targets["masked_particle"], batch.particles)
    assert torch.equal(masked.mask, batch.mask)
    assert "masked_particle" not in batch.targets  # the input batch is not modified
    with pytest.raises(ValueError, match=r"fraction"):
        mask_particles(batch, 0.0)


def test_masked_head_needs_masked_batch():
    model = build("pfn-tiny", "masked")
    with pytest.raises(KeyError, match=r"mask_particles"):
        model.loss(make_batch())


def test_binary_classification_outputs_and_one_hot_targets():
    model = build("pfn-tiny", "binary")
    batch = make_batch()
    outputs = model(batch)["binary"]
    torch.testing.assert_close(outputs["probability"], torch.sigmoid(outputs["logit"]))
    one_hot = torch.nn.functional.one_hot(batch.targets["label"], 2).float()
    as_one_hot = replace(batch, targets={**batch.targets, "label": one_hot})
    torch.testing.assert_close(model.loss(as_one_hot)[0], model.loss(batch)[0])
    one_hot[0] = 0.0  # a jet without a label
    unlabelled = replace(batch, targets={**batch.targets, "label": one_hot})
    assert model.heads["binary"].class_indices(unlabelled)[0] == -1


def test_gaussian_regression_uses_nll():
    model = build("pfn-tiny", "gaussian")
    batch = make_batch()
    outputs = model(batch)["gaussian"]
    head = model.heads["gaussian"]
    target = head.stacked_targets(batch)
    variance = outputs["log_variance"].exp() / head.scale**2
    standard = ((outputs["mean"] - target) / head.scale) ** 2
    expected = 0.5 * (variance.log() + standard / variance).mean()
    torch.testing.assert_close(model.loss(batch)[0], expected)


def test_regression_ignores_missing_truth():
    model = build("pfn-tiny", "regression")
    batch = make_batch()
    truth = batch.targets["jet_truth_pt"].clone()
    truth[0] = float("nan")
    loss = model.loss(replace(batch, targets={**batch.targets, "jet_truth_pt": truth}))[0]
    assert torch.isfinite(loss)


def test_bad_targets_are_named():
    model = build("pfn-tiny", "origin")
    batch = make_batch()
    with pytest.raises(KeyError, match=r"part_origin.*the batch has"):
        model.loss(replace(batch, targets={}))
    bad = batch.targets["part_origin"].clone()
    bad[batch.mask] = 7
    with pytest.raises(ValueError, match=r"part_origin.*\[0, 5\)"):
        model.loss(replace(batch, targets={**batch.targets, "part_origin": bad}))


def test_binary_auc_matches_rank_definition():
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.4])
    labels = torch.tensor([0, 0, 1, 1, 1])
    # pairs (pos, neg): (0.35,0.1)=1 (0.35,0.4)=0 (0.8,*)=2 (0.4,0.1)=1 (0.4,0.4)=0.5
    assert binary_auc(scores, labels).item() == pytest.approx(4.5 / 6)
    assert torch.isnan(binary_auc(scores, torch.ones(5)))


# ------------------------------------------------------------------------------------ Model
def test_model_heads_weights_and_loss():
    torch.manual_seed(0)
    model = Model.create(
        "pfn-tiny",
        backbone_kwargs(),
        {
            "top": {"type": "jet_classification", "weight": 2.0},
            "origin": {"type": "particle_classification", "weight": 0.5},
        },
    )
    batch = make_batch()
    outputs = model(batch)
    assert set(outputs) == {"top", "origin"}
    total, per_head = model.loss(batch, outputs)
    torch.testing.assert_close(total, 2.0 * per_head["top"] + 0.5 * per_head["origin"])
    assert set(model(batch, heads=["top"])) == {"top"}

    with pytest.raises(ValueError, match=r"already has a head"):
        model.add_head("top", "jet_classification")
    with pytest.raises(ValueError, match=r"malformed"):
        model.add_head("Top.head", "jet_classification")
    with pytest.raises(ValueError, match=r"in_features"):
        model.add_head("wide", create_head("jet_classification", in_features=999))
    with pytest.raises(ValueError, match=r"loss weight"):
        model.add_head("negative", "jet_classification", weight=-1.0)

    old = model.heads["top"]
    fresh = model.reset_head("top")
    assert fresh is model.heads["top"] and fresh is not old and fresh.config == old.config
    assert not torch.equal(fresh.net[0].weight, old.net[0].weight)
    model.remove_head("origin")
    assert list(model.heads) == ["top"] and "origin" not in model.loss_weights
    with pytest.raises(KeyError, match=r"no head named"):
        model.remove_head("origin")


def test_masked_particle_head_gets_input_width_from_backbone():
    model = Model.create("pfn-tiny", backbone_kwargs(), {"masked_particle": {}})
    assert model.heads["masked_particle"].num_inputs == backbone_kwargs()["in_features"]


def test_freeze_backbone():
    model = build("part-tiny", "binary")
    model.freeze_backbone()
    model.train()
    assert model.backbone_frozen and not model.backbone.training and model.heads.training
    assert not any(p.requires_grad for p in model.backbone.parameters())
    model.loss(make_batch())[0].backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.heads.parameters())
    model.freeze_backbone(False)
    model.train()
    assert model.backbone.training and all(p.requires_grad for p in model.backbone.parameters())
