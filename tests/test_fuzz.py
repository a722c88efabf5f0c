"""Property-based fuzzing (issue 17) of the readers, the recipe loader and ``load_pretrained``.

The only outcomes allowed are a result or one of the project's errors (:mod:`foundation.errors`,
:mod:`foundation.hub.errors`, :class:`~foundation.training.typed.RecipeError`) with a one-line
message. Example counts are bounded so that the whole module takes well under a minute.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import awkward as ak
import h5py
import numpy as np
import pytest
import uproot
import yaml
from conftest import make_model, save

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from foundation import load_pretrained  # noqa: E402
from foundation.data.readers import read_file  # noqa: E402
from foundation.data.records import JetRecords  # noqa: E402
from foundation.errors import DataError, OutputExistsError  # noqa: E402
from foundation.hub.errors import CheckpointError  # noqa: E402
from foundation.training.recipe import Recipe, load_recipe  # noqa: E402
from foundation.training.typed import RecipeError  # noqa: E402

PROJECT_ERRORS = (DataError, OutputExistsError, CheckpointError, RecipeError)
FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure reproduces
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)


def outcome(call, *args: Any, **kwargs: Any) -> Any:
    """Run ``call``: a result, or a project error with a one-line message; nothing else."""
    try:
        return call(*args, **kwargs)
    except PROJECT_ERRORS as error:
        message = str(error)
        assert message and "\n" not in message, f"multi-line message: {message!r}"
        assert len(message) < 2000, f"unbounded message ({len(message)} characters)"
        return error


# -------------------------------------------------------------------------------- arrays
DTYPES = st.sampled_from(["f4", "f8", "i4", "i8", "u1", "?", "f2"])
SPECIALS = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e30])


@st.composite
def arrays(draw, ndim: tuple[int, int] = (0, 4), side: int = 5) -> np.ndarray:
    shape = tuple(draw(st.lists(st.integers(0, side), min_size=ndim[0], max_size=ndim[1])))
    dtype = np.dtype(draw(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = rng.normal(size=shape) * draw(st.sampled_from([1.0, 100.0]))
    if values.size and dtype.kind == "f" and draw(st.booleans()):
        flat = values.reshape(-1)
        flat[draw(st.integers(0, flat.size - 1))] = draw(SPECIALS)
    with np.errstate(invalid="ignore", over="ignore"):
        return values.astype(dtype)


def check_records(records: Any) -> None:
    if isinstance(records, JetRecords):
        assert records.n_jets >= 1
        for values in records.particles.values():
            assert len(values) == records.n_particles
            if values.dtype.kind == "f":
                assert np.isfinite(values).all()


# --------------------------------------------------------------------------- quark gluon
@FUZZ
@given(
    x=st.one_of(arrays(), arrays(ndim=(3, 3)).map(lambda a: a[..., :4] if a.ndim == 3 else a)),
    y=arrays(ndim=(0, 2)),
    ragged=st.booleans(),
    drop=st.sampled_from([None, "X", "y"]),
)
@pytest.mark.slow  # hypothesis writes and reads many files
def test_quark_gluon_npz(x: np.ndarray, y: np.ndarray, ragged: bool, drop: str | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "qg.npz"
        content: dict[str, Any] = {"X": x, "y": y}
        if ragged:  # an object array: pickle, which the reader must refuse
            content["X"] = np.array([np.zeros(2), np.zeros(3)], dtype=object)
        if drop:
            content.pop(drop)
        np.savez(path, **content)
        check_records(outcome(read_file, path))


# ------------------------------------------------------------------------- top landscape
@FUZZ
@given(
    n_jets=st.integers(0, 4),
    n_particles=st.integers(0, 3),
    values=arrays(ndim=(2, 2), side=8),
    labels=arrays(ndim=(1, 1), side=5),
    layout=st.sampled_from(["table", "fixed", "junk"]),
    columns=st.sampled_from(["ok", "missing_label", "short_names"]),
)
@pytest.mark.slow  # hypothesis writes and reads many files
def test_top_landscape_hdf5(
    n_jets: int,
    n_particles: int,
    values: np.ndarray,
    labels: np.ndarray,
    layout: str,
    columns: str,
) -> None:
    names = [f"{c}_{i}" for i in range(n_particles) for c in ("E", "PX", "PY", "PZ")]
    names += ["is_signal_new"] if columns != "missing_label" else []
    if columns == "short_names":
        names = names[:-1]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "top.h5"
        with h5py.File(path, "w") as file:
            group = file.create_group("table")
            if layout == "junk":
                group.create_dataset("table", data=values)
            elif layout == "fixed":
                group.attrs["pandas_type"] = np.bytes_(b"frame")
                group.attrs["nblocks"] = np.int64(1)
                group.create_dataset("axis0", data=np.array(names, dtype="S"))
                group.create_dataset("block0_items", data=np.array(names, dtype="S"))
                group.create_dataset("block0_values", data=values)
            else:
                group.attrs["pandas_type"] = np.bytes_(b"frame_table")
                body = "".join(f"V{s}\np{i + 1}\na" for i, s in enumerate(names))
                pickle = f"(lp0\n{body}.".encode()
                group.attrs["non_index_axes"] = np.bytes_(pickle)
                block = values if values.shape[1] else np.zeros((len(values), 1), values.dtype)
                shape = (block.shape[1],)
                dtype = np.dtype([("index", "<i8"), ("values_block_0", block.dtype, shape)])
                rows = np.zeros(min(n_jets, len(block)), dtype=dtype)
                rows["values_block_0"] = block[: len(rows)]
                table = group.create_dataset("table", data=rows)
                table.attrs["values_block_0_kind"] = np.bytes_(pickle)
        check_records(outcome(read_file, path))


# ------------------------------------------------------------------------- jetclass ROOT
@FUZZ
@given(
    counts=st.lists(st.integers(0, 4), min_size=0, max_size=4),
    drop=st.sampled_from([None, "part_px", "part_energy", "label_QCD", "labels"]),
    special=st.one_of(st.none(), SPECIALS),
    label_values=st.lists(st.integers(-1, 2), min_size=0, max_size=4),
    dtype=st.sampled_from(["f4", "f8", "i4"]),
    seed=st.integers(0, 2**16),
)
@pytest.mark.slow  # hypothesis writes and reads many files
def test_jetclass_root(
    counts: list[int],
    drop: str | None,
    special: float | None,
    label_values: list[int],
    dtype: str,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    n_jets = len(counts)
    flat = rng.normal(size=sum(counts)).astype(dtype)
    if special is not None and flat.size and dtype != "i4":
        flat[rng.integers(flat.size)] = special
    sizes = np.asarray(counts, dtype=np.int64)
    fields = {name: ak.unflatten(flat, sizes) for name in ("px", "py", "pz", "energy")}
    content: dict[str, Any] = {"part": ak.zip(fields)} if n_jets else {}
    labels = np.resize(np.asarray(label_values or [1], np.int32), n_jets)
    if n_jets:
        content["label_QCD"] = labels
        content["label_Tbqq"] = 1 - labels
        content["jet_pt"] = rng.normal(size=n_jets).astype(dtype)
    if drop == "labels":
        content = {k: v for k, v in content.items() if not k.startswith("label_")}
    elif drop == "part_px" and "part" in content:
        content["part"] = ak.zip({k: v for k, v in fields.items() if k != "px"})
    elif drop and drop in content:
        content.pop(drop)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "jets.root"
        with uproot.recreate(path) as file:
            if content:
                file.mktree("tree", content)
            else:
                file["other"] = "no tree"
        check_records(outcome(read_file, path))


@FUZZ
@given(data=st.binary(min_size=0, max_size=300), suffix=st.sampled_from([".root", ".h5", ".npz"]))
@pytest.mark.slow  # hypothesis writes and reads many files
def test_random_bytes_in_every_format(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"jets{suffix}"
        path.write_bytes(data)
        check_records(outcome(read_file, path))


# -------------------------------------------------------------------------------- recipes
KEYS = st.sampled_from(
    [
        "name",
        "description",
        "data",
        "model",
        "finetune",
        "optimizer",
        "trainer",
        "output",
        "files",
        "cache",
        "batch_size",
        "max_particles",
        "backbone",
        "heads",
        "top",
        "type",
        "kwargs",
        "lr",
        "max_epochs",
        "mode",
        "split",
        "train",
        "simulate",
        "jets",
        "pt_range",
        "betas",
        "folder",
        "weight",
        "hidden",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5)
    ),
    max_leaves=25,
)


@FUZZ
@given(tree=st.dictionaries(KEYS, TREES, max_size=6))
@pytest.mark.slow  # hypothesis: many recipes
def test_recipe_loader_on_random_trees(tree: dict, tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(tree))
    result = outcome(load_recipe, path)
    assert isinstance(result, (Recipe, RecipeError))


NUMBERS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0, -1, 1e308, 10**400, 100_000_000]),
    st.floats(-1e6, 1e6),
)
VALID_RECIPE: dict[str, Any] = {
    "name": "fuzz",
    "data": {
        "cache": "somewhere",
        "batch_size": 8,
        "split": {"train": 0.8, "val": 0.1, "test": 0.1},
    },
    "model": {"backbone": "pfn-tiny", "heads": {"top": {"type": "jet_classification"}}},
    "optimizer": {"lr": 0.001, "betas": [0.9, 0.999]},
    "trainer": {"max_epochs": 2, "seed": 0},
}


@FUZZ
@given(data=st.data())
@pytest.mark.slow  # hypothesis: many recipes
def test_recipe_loader_on_mutated_valid_recipes(data: st.DataObject, tmp_path: Path) -> None:
    tree = json.loads(json.dumps(VALID_RECIPE))
    paths = _paths(tree)
    if data.draw(st.booleans()):  # values more often than whole sections
        paths = [path for path in paths if not isinstance(_at(tree, path), (dict, list))]
    for _ in range(data.draw(st.integers(1, 3))):
        *parents, last = data.draw(st.sampled_from(paths))
        node: Any = tree
        try:
            for key in parents:
                node = node[key]
            node[last] = data.draw(st.one_of(NUMBERS, NUMBERS, SCALARS, TREES))
        except (IndexError, KeyError, TypeError):
            continue
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(tree))
    result = outcome(load_recipe, path)
    if isinstance(result, Recipe):  # what passes the check is usable
        json.dumps(result.to_dict(), allow_nan=False)
        assert 0 < result.optimizer.lr <= 10 and 1 <= result.data.max_particles <= 4096


@FUZZ
@given(text=st.text(max_size=200))
def test_recipe_loader_on_random_text(text: str, tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    outcome(load_recipe, path)


@FUZZ
@given(
    key=st.lists(KEYS, min_size=0, max_size=4).map(".".join),
    value=st.one_of(st.text(max_size=30), TREES.map(lambda tree: json.dumps(tree))),
)
@pytest.mark.slow  # hypothesis: many recipes
def test_set_overrides(key: str, value: str, tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    base = {
        "data": {"cache": "somewhere"},
        "model": {"backbone": "pfn-tiny", "heads": {"top": {"type": "jet_classification"}}},
    }
    path.write_text(yaml.safe_dump(base))
    outcome(load_recipe, path, [f"{key}={value}"])


# ------------------------------------------------------------------------ load_pretrained
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**40), 2**40),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=8),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            found += _paths(item, (*prefix, position))
    return found


def _at(tree: Any, path: tuple) -> Any:
    for key in path:
        tree = tree[key]
    return tree


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(make_model("pfn-tiny"), tmp_path_factory.mktemp("fuzz") / "ckpt")


@settings(FUZZ, max_examples=60)  # a model is built per example
@given(data=st.data())
@pytest.mark.slow  # hypothesis: many checkpoint folders
def test_load_pretrained_with_mutated_config(checkpoint: Path, data: st.DataObject) -> None:
    config = json.loads((checkpoint / "config.json").read_text())
    paths = _paths(config)
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(paths))
        node = config
        try:  # an earlier mutation may have removed or replaced the path
            for key in where[:-1]:
                node = node[key]
        except (IndexError, KeyError, TypeError):
            continue
        if not isinstance(node, (dict, list)):
            continue
        if isinstance(node, dict) and data.draw(st.booleans()):
            node.pop(where[-1], None)
        else:
            try:
                node[where[-1]] = data.draw(JSON_VALUES)
            except (IndexError, KeyError, TypeError):
                continue
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "ckpt"
        copy.mkdir()
        for name in ("model.safetensors", "README.md"):
            if (checkpoint / name).is_file():
                (copy / name).write_bytes((checkpoint / name).read_bytes())
        text = json.dumps(config)  # NaN / Infinity as Python's JSON writes them
        (copy / "config.json").write_text(text)
        sums = [
            f"{hashlib.sha256((copy / p.name).read_bytes()).hexdigest()}  {p.name}"
            for p in sorted(copy.iterdir())
        ]
        (copy / "SHA256SUMS").write_text("\n".join(sums) + "\n")
        result = outcome(load_pretrained, copy)
        if not isinstance(result, Exception):
            json.dumps(config, allow_nan=False)  # NaN / inf never load silently
            assert all(
                math.isfinite(float(v.float().abs().max()))
                for v in result.state_dict().values()
                if v.numel()
            )
