"""Packed graphs for PyG: JetBatch <-> torch_geometric Batch, ParticleNet's EdgeConv on packed
graphs against the dense one, and PyG modules as registered backbones."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from conftest import make_batch
from torch import nn
from torch_geometric.data import Batch, Data

from foundation.data.batch import JetBatch
from foundation.data.graph import from_graph, to_graph, unpack_nodes
from foundation.models.layers import jet_relative_eta_phi, knn_graph_dense
from foundation.models.layers.packed_edgeconv import knn_graph_packed, knn_graph_packed_slots
from foundation.models.particlenet import knn_graph_slots
from foundation.models.particlenet_packed import PackedParticleNet, forward_packed
from foundation.models.pyg import PyGBackbone, register_pyg_backbone
from foundation.models.registry import create_backbone, list_backbones

COUNTS = [(0, 1, 3, 6), (1,), (0, 0), (5, 0, 1, 2, 9, 12)]


def assert_batches_equal(found: JetBatch, expected: JetBatch) -> None:
    for name in ("particles", "mask", "vectors", "jet"):
        assert torch.equal(getattr(found, name), getattr(expected, name)), name
    assert found.targets.keys() == expected.targets.keys()
    for name, value in expected.targets.items():
        assert torch.equal(found.targets[name], value), name
    assert found.feature_names == expected.feature_names
    assert found.jet_feature_names == expected.jet_feature_names


# ------------------------------------------------------------------------------- conversion
@pytest.mark.parametrize("scatter", [False, True], ids=["front", "scattered"])
@pytest.mark.parametrize("counts", COUNTS, ids=["mixed", "one", "empty", "many"])
def test_round_trip_is_exact(counts: tuple[int, ...], scatter: bool) -> None:
    batch = make_batch(counts, num_particles=max(counts) + 2, scatter=scatter, seed=1)
    graph = to_graph(batch)
    assert graph.num_graphs == len(counts)
    assert graph.x.shape == (sum(counts), batch.particles.shape[-1])
    assert graph.batch.tolist() == [b for b, n in enumerate(counts) for _ in range(n)]
    assert graph.ptr.tolist() == [sum(counts[:b]) for b in range(len(counts) + 1)]
    assert graph.pair_index.shape == (2, sum(n * n for n in counts))
    assert_batches_equal(from_graph(graph), batch)


def test_round_trip_of_a_batch_without_particle_slots() -> None:
    batch = make_batch((0, 0, 0), num_particles=0)
    graph = to_graph(batch)
    assert graph.x.shape == (0, batch.particles.shape[-1]) and graph.num_graphs == 3
    assert_batches_equal(from_graph(graph), batch)


def test_graph_matches_pyg_collation_of_one_data_per_jet() -> None:
    graph = to_graph(make_batch((2, 0, 1, 4), num_particles=5, scatter=True))
    examples = graph.to_data_list()
    assert [example.num_nodes for example in examples] == [2, 0, 1, 4]
    assert examples[3].pair_index.max() == 3  # per-jet node ids
    collated = Batch.from_data_list(examples)
    for key in collated.keys():  # noqa: SIM118 - a PyG batch is not a mapping
        assert torch.equal(collated[key], graph[key]), key


def test_pos_is_delta_eta_delta_phi_of_the_real_particles() -> None:
    batch = make_batch((3, 6), num_particles=7, scatter=True)
    graph = to_graph(batch)
    expected = jet_relative_eta_phi(batch.vectors, batch.mask)[batch.mask]
    assert torch.equal(graph.pos, expected)
    assert torch.equal(graph.vectors, batch.vectors[batch.mask])


def test_from_graph_of_user_data_packs_particles_in_front() -> None:
    examples = [
        Data(x=torch.randn(n, 3), vectors=torch.randn(n, 4), jet=torch.randn(1, 2), y_label=y)
        for n, y in ((3, torch.tensor([1])), (0, torch.tensor([0])), (1, torch.tensor([1])))
    ]
    batch = from_graph(Batch.from_data_list(examples))
    assert batch.mask.tolist() == [[True] * 3, [False] * 3, [True, False, False]]
    assert torch.equal(batch.particles[0], examples[0].x)
    assert batch.targets["label"].tolist() == [1, 0, 1]
    assert from_graph(Batch.from_data_list(examples), num_particles=5).num_particles == 5


def test_conversion_errors_name_the_problem() -> None:
    graph = to_graph(make_batch((3, 1)))
    with pytest.raises(ValueError, match="one row per node \\(4\\), found 3"):
        unpack_nodes(torch.zeros(3, 2), graph)
    with pytest.raises(ValueError, match="num_particles=2 is too small"):
        from_graph(graph, num_particles=2)
    with pytest.raises(ValueError, match="no attribute 'vectors'"):
        from_graph(Batch.from_data_list([Data(x=torch.zeros(2, 3), jet=torch.zeros(1, 1))]))


# ------------------------------------------------------------------------- packed EdgeConv
@pytest.mark.parametrize("k", [1, 3, 8])
def test_packed_knn_has_the_dense_edges(k: int) -> None:
    batch = make_batch((0, 1, 2, 5, 9), num_particles=9, seed=2)
    coords = jet_relative_eta_phi(batch.vectors, batch.mask)
    index, valid = knn_graph_dense(coords, batch.mask, k)
    node = torch.cumsum(batch.mask.reshape(-1).long(), 0).view(batch.mask.shape) - 1
    jets, particles, slots = valid.nonzero().unbind(1)
    expected = {
        (int(node[b, index[b, i, s]]), int(node[b, i]))
        for b, i, s in zip(jets, particles, slots, strict=True)
    }
    graph = to_graph(batch)
    edges = knn_graph_packed(graph.pos, graph.batch, k, graph.num_graphs)
    assert edges.shape[1] == len(expected) == sum(min(k, n - 1) * n for n in (1, 2, 5, 9))
    assert {tuple(edge) for edge in edges.t().tolist()} == expected
    assert (graph.batch[edges[0]] == graph.batch[edges[1]]).all()


def particlenet(**kwargs: object) -> nn.Module:
    torch.manual_seed(0)
    return create_backbone("particlenet-tiny", in_features=7, **kwargs)


def test_packed_particlenet_has_the_dense_parameters_under_the_same_names() -> None:
    model = particlenet()
    packed = PackedParticleNet(model)
    assert packed.state_dict().keys() == model.state_dict().keys()
    for name, value in packed.state_dict().items():
        assert value.data_ptr() == model.state_dict()[name].data_ptr(), name  # shared


@pytest.mark.parametrize("rule", ["ignore", "zero_features"])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize(
    "counts",
    [(0, 1, 3, 6, 12, 20), (1, 0), (0, 0), (2, 9, 30)],
    ids=["mixed", "one", "empty", "k+"],
)
def test_packed_forward_equals_dense_forward(
    counts: tuple[int, ...], train: bool, rule: str
) -> None:
    dense_model = particlenet(missing_neighbours=rule).train(train)
    packed_model = copy.deepcopy(dense_model)
    batch = make_batch(counts, num_particles=max(counts) + 3, scatter=True, seed=4)
    dense = dense_model(batch)
    packed = forward_packed(packed_model, batch)
    assert packed.mask is batch.mask
    assert (dense.particles - packed.particles).abs().max() <= 1e-5
    assert (dense.jet - packed.jet).abs().max() <= 1e-5
    padding = packed.particles[~batch.mask]
    assert torch.equal(padding, torch.zeros_like(padding))
    # Train mode: the same batch-norm statistics over real particles and edges.
    for name, value in dense_model.state_dict().items():
        torch.testing.assert_close(packed_model.state_dict()[name], value, rtol=0, atol=1e-6)
    # Gradients too (with one particle in the whole batch, training-mode batch norm has zero
    # variance and every pre-activation sits on the ReLU's kink: left out).
    if train and sum(counts) > 1:
        (dense.jet.sum() + dense.particles.square().sum()).backward()
        (packed.jet.sum() + packed.particles.square().sum()).backward()
        for (name, a), b in zip(
            dense_model.named_parameters(), packed_model.parameters(), strict=True
        ):
            # sums of O(100) terms per entry, through fused batch norms that round differently
            # (input_norm.bias's true gradient is 0: what is left is rounding, about 1e-5)
            scale = max(1.0, float(a.grad.abs().max()))
            assert (b.grad - a.grad).abs().max() <= 3e-5 * scale, name


@pytest.mark.parametrize("k", [1, 3, 8])
def test_packed_slot_knn_has_weavers_neighbours_and_zero_node_edges(k: int) -> None:
    counts = (0, 1, 2, 5, 9)
    batch = make_batch(counts, num_particles=9, seed=2)
    coords = jet_relative_eta_phi(batch.vectors, batch.mask)
    index, real = knn_graph_slots(coords, batch.mask, k)
    node = torch.cumsum(batch.mask.reshape(-1).long(), 0).view(batch.mask.shape) - 1
    zero_node = sum(counts)
    expected = []
    for b, i in batch.mask.nonzero().tolist():
        for s in range(k):
            source = int(node[b, index[b, i, s]]) if real[b, i, s] else zero_node
            expected.append((source, int(node[b, i])))
    graph = to_graph(batch)
    edges = knn_graph_packed_slots(graph.pos, graph.batch, k, graph.num_graphs)
    assert edges.shape[1] == k * zero_node
    assert sorted(map(tuple, edges.t().tolist())) == sorted(expected)
    assert (edges[1].diff() >= 0).all()  # grouped by target node
    assert int((edges[0] == zero_node).sum()) == sum(n * max(k + 1 - n, 0) for n in counts)


def test_converted_weaver_particlenet_runs_packed_with_the_same_outputs() -> None:
    """weaver's options (input norm, zero-feature neighbours, coordinates, fusion,
    pool_slots) on the packed path: the dense model's outputs and statistics."""
    torch.manual_seed(3)
    kwargs = {"missing_neighbours": "zero_features", "coordinates": [0, 1], "fusion": True}
    dense_model = create_backbone("particlenet-tiny", in_features=7, pool_slots=12, **kwargs)
    packed_model = copy.deepcopy(dense_model)
    packed_model.use_graph("packed")
    batch = make_batch((1, 4, 12, 0, 20), num_particles=24, scatter=True, seed=5)
    for train in (True, False):
        dense, packed = dense_model.train(train)(batch), packed_model.train(train)(batch)
        torch.testing.assert_close(packed.jet, dense.jet, atol=1e-5, rtol=0)
        torch.testing.assert_close(packed.particles, dense.particles, atol=1e-5, rtol=0)
    for name, value in dense_model.state_dict().items():
        torch.testing.assert_close(packed_model.state_dict()[name], value, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------ PyG backbones
class _MeanOfNeighbours(nn.Module):
    """A user's PyG module: one GraphConv on the per-jet kNN graph."""

    def __init__(self, in_features: int, hidden: int = 8, k: int = 3) -> None:
        super().__init__()
        from torch_geometric.nn import GraphConv

        self.k = k
        self.conv = GraphConv(in_features + 2, hidden, aggr="mean")
        self.out_channels = hidden

    def forward(self, x: torch.Tensor, pos: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        edges = knn_graph_packed(pos, batch, self.k)
        return torch.relu(self.conv(torch.cat([x, pos], dim=-1), edges))


USER_NAME = "test-user-graphconv"
if USER_NAME not in list_backbones():
    register_pyg_backbone(USER_NAME, _MeanOfNeighbours, hidden=6)


def test_a_user_pyg_module_plugs_into_the_registry_and_rebuilds_from_its_config() -> None:
    torch.manual_seed(0)
    model = create_backbone(USER_NAME, in_features=7, k=2).eval()
    assert model.num_features == 6 and model.config == {
        "in_features": 7,
        "in_jet_features": 0,
        "hidden": 6,
        "k": 2,
    }
    rebuilt = create_backbone(USER_NAME, **json.loads(json.dumps(model.config))).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    batch = make_batch((0, 1, 4), scatter=True)
    with torch.no_grad():
        expected, found = model(batch), rebuilt(batch)
    assert torch.equal(found.jet, expected.jet) and torch.equal(found.particles, expected.particles)
    assert expected.particles.shape == (3, 4, 6)
    padding = expected.particles[~batch.mask]
    assert padding.shape == (7, 6) and torch.equal(padding, torch.zeros_like(padding))


def test_pyg_backbone_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="unknown argument\\(s\\) \\['widht'\\]; accepted: in_feat"):
        create_backbone(USER_NAME, in_features=7, widht=3)
    with pytest.raises(TypeError, match="needs in_features"):
        create_backbone(USER_NAME)
    with pytest.raises(ValueError, match="JSON values"):
        PyGBackbone(_MeanOfNeighbours, in_features=7, hidden=torch.tensor(3))
    with pytest.raises(TypeError, match="integer out_channels"):
        PyGBackbone(lambda in_features: nn.Linear(in_features, 2), in_features=7)
    with pytest.raises(ValueError, match="already registered"):
        register_pyg_backbone(USER_NAME, _MeanOfNeighbours)


def test_pyg_backbone_export_is_a_clear_error(tmp_path: object) -> None:
    from foundation.export.errors import ExportError

    model = create_backbone("pyg-edgeconv-tiny", in_features=7).eval()
    batch = make_batch((3, 2))

    class Wrapper(nn.Module):
        def forward(self, particles: torch.Tensor, mask: torch.Tensor, vectors: torch.Tensor):
            jet = particles.new_zeros(particles.shape[0], 0)
            return model(JetBatch(particles, mask, vectors, jet)).jet

    with pytest.raises(ExportError, match=r"PyG backbone.*export a dense backbone"):
        torch.onnx.export(
            Wrapper(),
            (batch.particles, batch.mask, batch.vectors),
            f"{tmp_path}/model.onnx",
            dynamo=False,
        )


@pytest.mark.slow  # two training runs
def test_a_pyg_backbone_trains_and_fine_tunes_with_a_recipe(tmp_path: Path) -> None:
    from synthetic import random_records
    from test_training import FEATURES, SLOTS, recipe_data

    from foundation import load_pretrained
    from foundation.data.cache import write_cache
    from foundation.data.schema import TOP_LABELS
    from foundation.training.recipe import recipe_from_dict
    from foundation.training.run import train

    cache = tmp_path / "cache"
    records = random_records(48, mean_particles=8, seed=3, label_names=TOP_LABELS, truth=True)
    write_cache(records, cache, features=FEATURES, max_particles=SLOTS)
    heads = {"top": {"type": "jet_classification"}}
    data = recipe_data(
        cache, tmp_path / "scratch", model={"backbone": "pyg-edgeconv-tiny", "heads": heads}
    )
    data["trainer"]["max_epochs"] = 1
    base = train(recipe_from_dict(data)).best
    assert json.loads((base / "config.json").read_text())["backbone"]["name"] == "pyg-edgeconv-tiny"
    tuned = recipe_data(
        cache,
        tmp_path / "lora",
        model={"backbone": None, "pretrained": str(base), "heads": heads},
        finetune={"mode": "lora", "lora_targets": ["nn.0", "nn.3"]},
    )
    tuned["trainer"]["max_epochs"] = 1
    best = train(recipe_from_dict(tuned)).best
    model = load_pretrained(best).eval()
    batch = make_batch((0, 1, 5), num_particles=SLOTS)
    with torch.no_grad():
        outputs = model(batch)
    assert torch.isfinite(outputs["top"]["logit"]).all()


@pytest.mark.parametrize("rule", ["ignore", "zero_features"])
def test_packed_graph_benchmark_harness_runs_both_paths(tmp_path: Path, rule: str) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_packed_graph

    argv = ["--variants", "particlenet-tiny", "--batch-sizes", "3", "--slots", "12"]
    argv += ["--min-particles", "2", "--max-particles", "10", "--budget", "0", "--threads", "1"]
    argv += ["--missing-neighbours", rule]
    result = bench_packed_graph.main([*argv, "--out", str(tmp_path / "packed.json")])
    (row,) = result["rows"]
    assert row["missing_neighbours"] == rule
    assert row["max_abs_jet_difference_eval"] < 1e-5
    assert row["eval_dense_ms"] > 0 and row["train_packed_ms"] > 0
    assert (
        json.loads((tmp_path / "packed.json").read_text())["rows"][0]["variant"]
        == "particlenet-tiny"
    )


def test_particlenet_switches_to_the_packed_graph_at_run_time() -> None:
    model = particlenet().eval()
    batch = make_batch((0, 1, 4, 11), scatter=True, seed=8)
    with torch.no_grad():
        dense = model(batch)
        packed = model.use_graph("packed")(batch)
    assert model.graph == "packed" and "graph" not in model.config
    assert (dense.jet - packed.jet).abs().max() <= 1e-5
    assert (dense.particles - packed.particles).abs().max() <= 1e-5
    assert model.use_graph("dense").graph == "dense"
    with pytest.raises(ValueError, match="expected 'dense' or 'packed', found 'sparse'"):
        model.use_graph("sparse")
    assert particlenet(missing_neighbours="zero_features").use_graph("packed").graph == "packed"
