"""Every registered backbone against the backbone contract (DESIGN.md §3), timm-style.

Forward-pass tests run on the tiny variants; every registered name is built (not run) once.
"""

from __future__ import annotations

import json

import pytest
import torch

from foundation.data.batch import JetBatch
from foundation.models.base import Backbone, Features
from foundation.models.registry import create_backbone, list_backbones, register_backbone

IN_FEATURES = 7
TINY = [name for name in list_backbones() if name.endswith("-tiny")]
ARCHITECTURES = ("part", "jetformer", "particlenet", "pfn", "pyg-edgeconv")
# PyG backbones run on packed graphs with data-dependent node and edge counts: no ONNX export
# (exporting one raises ExportError, tested in tests/test_graph.py).
EXPORTABLE = [name for name in TINY if not name.startswith("pyg-")]


def make_batch(
    counts: list[int], num_slots: int, seed: int = 0, in_jet_features: int = 0
) -> JetBatch:
    """Jets with ``counts[b]`` real particles in front, padded to ``num_slots``."""
    generator = torch.Generator().manual_seed(seed)
    batch = len(counts)
    mask = torch.arange(num_slots).expand(batch, num_slots) < torch.tensor(counts).unsqueeze(1)
    particles = torch.randn(batch, num_slots, IN_FEATURES, generator=generator)
    pt = 1 + 100 * torch.rand(batch, num_slots, generator=generator)
    eta = 0.3 * torch.randn(batch, num_slots, generator=generator)
    phi = 1.0 + 0.3 * torch.randn(batch, num_slots, generator=generator)
    vectors = torch.stack(
        [pt * phi.cos(), pt * phi.sin(), pt * torch.sinh(eta), pt * torch.cosh(eta)], dim=-1
    )
    keep = mask.unsqueeze(-1)
    return JetBatch(
        particles=particles * keep,
        mask=mask,
        vectors=vectors * keep,
        jet=torch.randn(batch, in_jet_features, generator=generator),
    )


def build(name: str, **kwargs: object) -> Backbone:
    torch.manual_seed(0)
    return create_backbone(name, in_features=IN_FEATURES, **kwargs)


def permute(batch: JetBatch, order: torch.Tensor) -> JetBatch:
    """Reorder the particle slots of each jet: ``order[b]`` is a permutation of ``N``."""

    def take(x: torch.Tensor) -> torch.Tensor:
        index = order.view(*order.shape, *([1] * (x.dim() - 2))).expand_as(x)
        return torch.gather(x, 1, index)

    return JetBatch(
        particles=take(batch.particles),
        mask=take(batch.mask),
        vectors=take(batch.vectors),
        jet=batch.jet,
    )


def assert_padding_zero(out: Features) -> None:
    padding = out.particles[~out.mask]
    assert torch.equal(padding, torch.zeros_like(padding))


def test_every_architecture_has_a_tiny_variant() -> None:
    assert sorted(TINY) == sorted(f"{arch}-tiny" for arch in ARCHITECTURES)


@pytest.mark.parametrize("name", list_backbones())
def test_every_registered_name_builds(name: str) -> None:
    model = create_backbone(name, in_features=17)
    assert isinstance(model, Backbone)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert isinstance(model.num_features, int) and model.num_features > 0
    assert json.loads(json.dumps(model.config)) == model.config
    assert model.config["in_features"] == 17


def test_part_full_has_paper_size() -> None:
    count = sum(p.numel() for p in create_backbone("part", in_features=17).parameters())
    assert 2.0e6 <= count <= 2.3e6


@pytest.mark.parametrize("name", TINY)
def test_forward_shapes(name: str) -> None:
    model = build(name).eval()
    batch = make_batch([10, 4, 0], num_slots=12)
    out = model(batch)
    assert isinstance(out, Features)
    assert out.particles.shape == (3, 12, model.num_features)
    assert out.jet.shape == (3, model.num_features)
    assert out.mask is batch.mask
    assert out.particles.dtype == out.jet.dtype == torch.float32
    assert torch.isfinite(out.particles).all() and torch.isfinite(out.jet).all()
    assert_padding_zero(out)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize(
    ("counts", "num_slots"),
    [([0, 0], 0), ([1, 0], 1), ([0, 0, 0], 5), ([1, 1, 0], 4), ([3, 1, 0, 2], 6)],
    ids=["N0", "N1", "all-empty", "single", "few"],
)
@pytest.mark.parametrize("name", TINY)
def test_small_and_empty_jets_are_finite(
    name: str, counts: list[int], num_slots: int, train: bool
) -> None:
    model = build(name).train(train)
    out = model(make_batch(counts, num_slots))
    assert out.particles.shape == (len(counts), num_slots, model.num_features)
    assert torch.isfinite(out.particles).all() and torch.isfinite(out.jet).all()
    assert_padding_zero(out)


@pytest.mark.parametrize("name", TINY)
def test_backward_reaches_every_parameter(name: str) -> None:
    model = build(name).train()
    out = model(make_batch([9, 5, 1, 0], num_slots=11))
    loss = out.jet.square().mean() + out.particles.square().mean()
    loss.backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, f"{name}: no gradient for {param_name}"
        assert torch.isfinite(param.grad).all(), f"{name}: non-finite gradient for {param_name}"
    assert any(param.grad.abs().sum() > 0 for param in model.parameters())


@pytest.mark.parametrize("name", TINY)
def test_permutation_symmetry(name: str) -> None:
    model = build(name).eval()
    batch = make_batch([12, 7, 1, 0], num_slots=14, seed=1)
    generator = torch.Generator().manual_seed(2)
    order = torch.stack([torch.randperm(14, generator=generator) for _ in range(4)])
    with torch.no_grad():
        reference = model(batch)
        permuted = model(permute(batch, order))
    expected = torch.gather(
        reference.particles, 1, order.unsqueeze(-1).expand_as(reference.particles)
    )
    torch.testing.assert_close(permuted.jet, reference.jet, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(permuted.particles, expected, rtol=1e-5, atol=1e-5)
    assert_padding_zero(permuted)


@pytest.mark.parametrize("name", TINY)
def test_extra_padding_changes_nothing(name: str) -> None:
    model = build(name).eval()
    counts = [8, 3, 0]
    with torch.no_grad():
        tight = model(make_batch(counts, num_slots=8, seed=3))
        padded_batch = make_batch(counts, num_slots=8, seed=3)
        padded_batch = JetBatch(
            particles=torch.nn.functional.pad(padded_batch.particles, (0, 0, 0, 5)),
            mask=torch.nn.functional.pad(padded_batch.mask, (0, 5)),
            vectors=torch.nn.functional.pad(padded_batch.vectors, (0, 0, 0, 5)),
            jet=padded_batch.jet,
        )
        padded = model(padded_batch)
    torch.testing.assert_close(padded.jet, tight.jet, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(padded.particles[:, :8], tight.particles, rtol=1e-5, atol=1e-5)
    assert_padding_zero(padded)


@pytest.mark.parametrize("name", TINY)
def test_eval_is_deterministic(name: str) -> None:
    model = build(name).eval()
    batch = make_batch([6, 2], num_slots=7)
    with torch.no_grad():
        first, second = model(batch), model(batch)
    assert torch.equal(first.jet, second.jet)
    assert torch.equal(first.particles, second.particles)


@pytest.mark.parametrize("name", TINY)
def test_config_round_trip(name: str) -> None:
    model = build(name).eval()
    config = json.loads(json.dumps(model.config))
    rebuilt = create_backbone(name, **config).eval()
    assert rebuilt.config == model.config
    shapes = {key: value.shape for key, value in model.state_dict().items()}
    assert {key: value.shape for key, value in rebuilt.state_dict().items()} == shapes
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    batch = make_batch([5, 2, 0], num_slots=6)
    with torch.no_grad():
        expected, found = model(batch), rebuilt(batch)
    assert torch.equal(found.jet, expected.jet)
    assert torch.equal(found.particles, expected.particles)


class _Recorded(Backbone):
    """A backbone whose config exercises every rule of the constructor capture."""

    config_exclude = ("factory",)

    def __init__(
        self,
        factory: object,
        in_features: int,
        dims: tuple[int, ...] = (4, 8),
        width: int | None = None,
        *,
        option: bool = False,
        **extra: object,
    ) -> None:
        super().__init__()
        width = dims[-1] if width is None else width
        self.record_resolved(width=width)
        self.num_features = width


class _Derived(_Recorded):
    def __init__(self, in_features: int, scale: float = 2.0) -> None:
        super().__init__(print, in_features, dims=(3,), option=True)


def test_config_is_captured_from_the_constructor() -> None:
    model = _Recorded(print, 7, (2, 5), zeta=1, alpha=[2])
    assert model.config == {
        "in_features": 7,
        "dims": [2, 5],
        "width": 5,
        "zeta": 1,
        "alpha": [2],
    }  # no factory, no option at its default, **extra flat in the order given
    assert list(model.config) == ["in_features", "dims", "width", "zeta", "alpha"]
    assert _Recorded(print, 7, option=True).config["option"] is True
    assert _Derived(3).config == {"in_features": 3, "scale": 2.0}  # the class being built
    with pytest.raises(ValueError, match=r"_Recorded: .*JSON values.*zeta=tensor"):
        _Recorded(print, 7, zeta=torch.ones(1))
    with pytest.raises(TypeError, match="in_features"):
        _Recorded(print)


@pytest.mark.parametrize("name", TINY)
def test_layer_groups_cover_each_parameter_once(name: str) -> None:
    model = build(name)
    groups = model.layer_groups()
    assert len(groups) >= 2 and all(groups)
    seen = [id(param) for group in groups for param in group]
    assert len(seen) == len(set(seen))
    assert set(seen) == {id(param) for param in model.parameters()}


@pytest.mark.parametrize("name", TINY)
def test_jet_level_inputs_are_accepted(name: str) -> None:
    model = build(name, in_jet_features=3).eval()
    out = model(make_batch([4, 0], num_slots=5, in_jet_features=3))
    assert out.jet.shape == (2, model.num_features)
    assert torch.isfinite(out.jet).all()


@pytest.mark.parametrize("name", TINY)
def test_wrong_feature_count_is_a_clear_error(name: str) -> None:
    model = create_backbone(name, in_features=IN_FEATURES + 1)
    with pytest.raises(ValueError, match=f"in_features={IN_FEATURES + 1}"):
        model(make_batch([3], num_slots=3))


def test_unknown_argument_names_the_accepted_ones() -> None:
    with pytest.raises(TypeError, match="accepted: in_features"):
        create_backbone("pfn-tiny", in_features=3, widht=4)


def test_missing_in_features_is_explained() -> None:
    with pytest.raises(TypeError, match="in_features"):
        create_backbone("pfn-tiny")


def test_registry_rejects_duplicate_names() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_backbone("part-tiny")(lambda **kwargs: None)


@pytest.mark.parametrize("bad", ["Part", "part tiny", "-part", "part--tiny", "9part", ""])
def test_registry_rejects_malformed_names(bad: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        register_backbone(bad)


def test_unknown_name_lists_registered_backbones() -> None:
    with pytest.raises(KeyError, match="part-tiny") as info:
        create_backbone("transformer-xxl", in_features=3)
    assert all(name in str(info.value) for name in list_backbones())


def test_jetformer_with_shared_pair_bias() -> None:
    model = build("jetformer-tiny", pair_bias_dims=[8]).eval()
    batch = make_batch([9, 4, 1, 0], num_slots=10, seed=4)
    order = torch.stack([torch.randperm(10) for _ in range(4)])
    with torch.no_grad():
        reference, permuted = model(batch), model(permute(batch, order))
    torch.testing.assert_close(permuted.jet, reference.jet, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(reference.particles).all()
    assert_padding_zero(reference)


def test_jetformer_packed_path_equals_dense_path(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build("jetformer-tiny", in_jet_features=2).eval()
    batch = make_batch([9, 4, 1, 0], num_slots=10, seed=7, in_jet_features=2)
    with torch.no_grad():
        packed = model(batch)
        monkeypatch.setattr("foundation.models.jetformer.is_exporting", lambda: True)
        dense = model(batch)
    torch.testing.assert_close(packed.jet, dense.jet, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(packed.particles, dense.particles, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["part-tiny", "jetformer-tiny", "particlenet-tiny"])
def test_geometry_enters_through_the_four_vectors(name: str) -> None:
    model = build(name).eval()
    # More particles than ParticleNet-tiny's k + 1, so that the kNN graph depends on geometry.
    batch = make_batch([14, 12], num_slots=14, seed=5)
    moved = JetBatch(
        particles=batch.particles,
        mask=batch.mask,
        vectors=batch.vectors.flip(1),
        jet=batch.jet,
    )
    with torch.no_grad():
        assert not torch.allclose(model(batch).jet, model(moved).jet)


class _ExportWrapper(torch.nn.Module):
    """Plain-tensor signature for ``torch.onnx.export``."""

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(
        self, particles: torch.Tensor, mask: torch.Tensor, vectors: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        jet = particles.new_zeros(particles.shape[0], 0)
        out = self.backbone(JetBatch(particles, mask, vectors, jet))
        return out.particles, out.jet


@pytest.mark.parametrize("name", EXPORTABLE)
def test_exports_to_onnx_with_dynamic_shapes(name: str, tmp_path: object) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    model = build(name).eval()
    wrapper = _ExportWrapper(model).eval()
    path = f"{tmp_path}/{name}.onnx"
    example = make_batch([6, 3], num_slots=10)
    axes = {0: "batch", 1: "particles"}
    torch.onnx.export(
        wrapper,
        (example.particles, example.mask, example.vectors),
        path,
        input_names=["particles", "mask", "vectors"],
        output_names=["particle_embeddings", "jet_embedding"],
        dynamic_axes={
            "particles": axes,
            "mask": axes,
            "vectors": axes,
            "particle_embeddings": axes,
            "jet_embedding": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    used = {node.name for node in session.get_inputs()}  # PFN does not read the 4-vectors
    # Eager mode trims and packs, the graph does not; N < k + 1 (ParticleNet-tiny: k = 8) and
    # N = 0 must run too.
    for counts, slots in [([20, 7, 1, 0], 25), ([3, 2, 0], 3), ([0, 0], 0)]:
        batch = make_batch(counts, num_slots=slots, seed=6)
        inputs = {"particles": batch.particles, "mask": batch.mask, "vectors": batch.vectors}
        particles, jet = session.run(
            None, {key: value.numpy() for key, value in inputs.items() if key in used}
        )
        with torch.no_grad():
            expected = model(batch)
        torch.testing.assert_close(torch.from_numpy(jet), expected.jet, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(
            torch.from_numpy(particles), expected.particles, rtol=1e-4, atol=1e-4
        )
