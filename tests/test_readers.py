"""Readers: each exact file layout round-trips, formats are detected, bad input gives DataError."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pytest
import uproot
from synthetic import (
    random_records,
    write_jetclass_root,
    write_quark_gluon_npz,
    write_top_landscape_hdf5,
)

from foundation.data.readers import detect_format, list_readers, read_file, read_jets
from foundation.data.readers.pandas_hdf5 import pickled_strings
from foundation.data.readers.quark_gluon_npz import pdg_properties
from foundation.data.records import VECTOR_FIELDS, JetRecords
from foundation.data.schema import JETCLASS_LABELS, QUARK_GLUON_LABELS, TOP_LABELS
from foundation.errors import DataError

FORMATS = ("jetclass_ttree", "jetclass_rntuple", "top_table", "top_fixed", "quark_gluon")
_LABELS = {"jetclass": JETCLASS_LABELS, "top": TOP_LABELS, "quark": QUARK_GLUON_LABELS}
_SUFFIX = {"jetclass": ".root", "top": ".h5", "quark": ".npz"}


def _labels_of(kind: str) -> tuple[str, ...]:
    return _LABELS[kind.split("_")[0]]


def write(kind: str, records: JetRecords, folder: Path, name: str = "jets") -> Path:
    """Write ``records`` in the layout ``kind`` (one of FORMATS)."""
    family = kind.split("_")[0]
    path = folder / f"{name}{_SUFFIX[family]}"
    if family == "jetclass":
        return write_jetclass_root(records, path, layout=kind.split("_")[1])
    if family == "top":
        return write_top_landscape_hdf5(records, path, max_particles=40, layout=kind.split("_")[1])
    return write_quark_gluon_npz(records, path)


def sample(kind: str, n_jets: int = 12, truth: bool = False) -> JetRecords:
    return random_records(
        n_jets, mean_particles=8, seed=3, label_names=_labels_of(kind), truth=truth
    )


@pytest.mark.parametrize("kind", FORMATS)
def test_round_trip(kind: str, tmp_path: Path) -> None:
    records = sample(kind)
    path = write(kind, records, tmp_path)
    read = read_jets(path)
    assert read.n_jets == records.n_jets
    assert read.label_names == _labels_of(kind)
    np.testing.assert_array_equal(read.labels, records.labels)
    np.testing.assert_array_equal(read.counts, np.minimum(records.counts, 40))
    compared = ("part_px", "part_py") if kind == "quark_gluon" else VECTOR_FIELDS  # QG: massive
    for name in compared:
        np.testing.assert_allclose(
            read.particles[name], records.particles[name], rtol=1e-5, atol=1e-4
        )
    assert read.sources == (str(path),)
    for name in ("jet_pt", "jet_eta", "jet_phi", "jet_energy"):
        assert read.jets[name].shape == (records.n_jets,)
    if kind.startswith("jetclass"):
        np.testing.assert_array_equal(read.event_id, records.event_id)
        assert set(read.particle_fields) == set(records.particle_fields)
    else:
        np.testing.assert_array_equal(read.event_id, np.arange(records.n_jets))


@pytest.mark.parametrize("layout", ["ttree", "rntuple"])
def test_simulated_root_truth(layout: str, tmp_path: Path) -> None:
    records = random_records(10, mean_particles=6, seed=4, truth=True)
    read = read_jets(write_jetclass_root(records, tmp_path / "sim.root", layout=layout))
    assert set(read.truth) == set(records.truth)
    for name, values in records.truth.items():
        np.testing.assert_allclose(read.truth[name], values)
    assert read.truth["part_vertex"].dtype == np.int32
    np.testing.assert_allclose(read.jets["jet_tau3"], records.jets["jet_tau3"])
    np.testing.assert_array_equal(read.event_id, records.event_id)


def test_jetclass_without_event_id_uses_jet_index(tmp_path: Path) -> None:
    records = sample("jetclass")
    read = read_jets(write_jetclass_root(records, tmp_path / "a.root", event_id=False))
    np.testing.assert_array_equal(read.event_id, np.arange(records.n_jets))


def test_top_landscape_ignores_padding_and_has_no_identity(tmp_path: Path) -> None:
    records = sample("top")
    read = read_jets(write(kind="top_table", records=records, folder=tmp_path))
    assert read.particle_fields == ("part_px", "part_py", "part_pz", "part_energy")
    assert (read.particles["part_energy"] > 0).all()


def test_quark_gluon_identity_from_pdgid() -> None:
    props = pdg_properties(np.array([211, -211, 22, 11, -13, 2112, 130, 321, 999]))
    np.testing.assert_array_equal(props["part_charge"], [1, -1, 0, -1, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(props["part_isChargedHadron"], [1, 1, 0, 0, 0, 0, 0, 1, 1 * 0])
    np.testing.assert_array_equal(props["part_isNeutralHadron"], [0, 0, 0, 0, 0, 1, 1, 0, 1])
    np.testing.assert_array_equal(props["part_isPhoton"], [0, 0, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(props["part_isElectron"], [0, 0, 0, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(props["part_isMuon"], [0, 0, 0, 0, 1, 0, 0, 0, 0])
    np.testing.assert_allclose(props["mass"][:2], 0.13957)


def test_quark_gluon_four_vectors(tmp_path: Path) -> None:
    data = np.zeros((2, 3, 4))
    data[0, 0] = [100.0, 0.5, 0.3, 211]
    data[0, 1] = [50.0, -0.2, 1.0, 22]
    data[1, 0] = [10.0, 0.0, -3.0, -11]
    path = tmp_path / "QG_jets.npz"
    np.savez(path, X=data, y=np.array([1.0, 0.0]))
    read = read_jets(path)
    np.testing.assert_array_equal(read.counts, [2, 1])
    mt = np.sqrt(100.0**2 + 0.13957**2)
    np.testing.assert_allclose(read.particles["part_energy"][0], mt * np.cosh(0.5), rtol=1e-6)
    np.testing.assert_allclose(read.particles["part_pz"][0], mt * np.sinh(0.5), rtol=1e-6)
    np.testing.assert_allclose(read.particles["part_px"][1], 50 * np.cos(1.0), rtol=1e-6)
    np.testing.assert_array_equal(read.particles["part_charge"], [1, 0, 1])
    assert read.label_names == QUARK_GLUON_LABELS
    np.testing.assert_array_equal(read.labels, [1, 0])


@pytest.mark.parametrize("layout", ["table", "fixed"])
def test_pandas_written_top_landscape(layout: str, tmp_path: Path) -> None:
    if importlib.util.find_spec("pandas") is None or importlib.util.find_spec("tables") is None:
        pytest.skip("pandas and tables are needed to write the reference file")
    import pandas as pd

    columns: dict[str, np.ndarray] = {}
    energy = np.array([[5.0, 3.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    for i in range(3):
        columns[f"E_{i}"] = energy[:, i]
        for c in ("PX", "PY", "PZ"):
            columns[f"{c}_{i}"] = energy[:, i] * 0.5
    for name in ("truthE", "truthPX", "truthPY", "truthPZ"):
        columns[name] = np.ones(3, dtype=np.float32)
    columns["ttv"] = np.zeros(3, dtype=np.int64)
    columns["is_signal_new"] = np.array([1, 0, 1])
    path = tmp_path / "train.h5"
    pd.DataFrame(columns).to_hdf(path, key="table", format=layout)
    read = read_jets(path)
    np.testing.assert_array_equal(read.counts, [2, 1, 0])
    np.testing.assert_allclose(read.particles["part_energy"], [5, 3, 2])
    np.testing.assert_allclose(read.particles["part_px"], [2.5, 1.5, 1])
    np.testing.assert_array_equal(read.labels, [1, 0, 1])


def test_pickled_strings_without_unpickling() -> None:
    python3 = b"(lp0\nVE_0\np1\naVPX_0\np2\naVis_signal_new\np3\na."
    python2 = b"(lp1\nS'E_0'\np2\naS'PX_0'\np3\nag2\na."
    assert pickled_strings(python3) == ["E_0", "PX_0", "is_signal_new"]
    assert pickled_strings(python2) == ["E_0", "PX_0", "E_0"]


def test_detect_format(tmp_path: Path) -> None:
    assert list_readers() == ["jetclass", "quark_gluon", "top_landscape"]
    expected = {
        "jetclass_ttree": "jetclass",
        "top_table": "top_landscape",
        "quark_gluon": "quark_gluon",
    }
    for kind, name in expected.items():
        path = write(kind, sample(kind, 3), tmp_path)
        assert detect_format(path) == name
        renamed = path.rename(tmp_path / f"no_extension_{kind}")
        assert detect_format(renamed) == name
        assert read_file(renamed).n_jets == 3


def test_read_several_files_and_glob(tmp_path: Path) -> None:
    first = write_jetclass_root(random_records(4, 5, seed=1), tmp_path / "a.root")
    second = write_jetclass_root(random_records(6, 5, seed=2), tmp_path / "b.root")
    both = read_jets([first, second])
    assert both.n_jets == 10 and both.sources == (str(first), str(second))
    assert read_jets(str(tmp_path / "*.root")).n_jets == 10
    np.testing.assert_array_equal(both.select(slice(4, 10)).counts, read_jets(second).counts)


def test_records_select_and_concat() -> None:
    records = random_records(7, 4, seed=5, truth=True)
    picked = records.select([5, 1])
    np.testing.assert_array_equal(picked.counts, records.counts[[5, 1]])
    offsets = records.offsets
    expected = np.concatenate(
        [records.particles["part_px"][offsets[i] : offsets[i + 1]] for i in (5, 1)]
    )
    np.testing.assert_array_equal(picked.particles["part_px"], expected)
    np.testing.assert_array_equal(picked.truth["part_origin"].shape, expected.shape)
    again = JetRecords.concat([records.select(slice(0, 3)), records.select(slice(3, 7))])
    np.testing.assert_array_equal(again.particles["part_energy"], records.particles["part_energy"])
    np.testing.assert_array_equal(again.event_id, records.event_id)


# ----------------------------------------------------------------------------- bad input


def assert_data_error(path: Path, field: str, error: pytest.ExceptionInfo[DataError]) -> None:
    message = str(error.value)
    assert path.name in message, message
    assert field in message, message
    assert "expected" in message and "found" in message


@pytest.mark.parametrize("kind", FORMATS)
def test_empty_file(kind: str, tmp_path: Path) -> None:
    path = tmp_path / f"empty{_SUFFIX[kind.split('_')[0]]}"
    path.write_bytes(b"")
    with pytest.raises(DataError) as error:
        read_jets(path)
    assert_data_error(path, "file", error)


@pytest.mark.parametrize("kind", FORMATS)
def test_truncated_file(kind: str, tmp_path: Path) -> None:
    path = write(kind, sample(kind, 40), tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as error:
        read_jets(path)
    assert path.name in str(error.value)


@pytest.mark.parametrize("kind", FORMATS)
def test_garbage_with_right_extension(kind: str, tmp_path: Path) -> None:
    path = tmp_path / f"garbage{_SUFFIX[kind.split('_')[0]]}"
    path.write_bytes(b"this is not a jet file at all")
    with pytest.raises(DataError) as error:
        read_jets(path)
    assert_data_error(path, "file", error)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        read_jets(tmp_path / "nothing.root")
    assert "nothing.root" in str(error.value)


@pytest.mark.parametrize("kind", FORMATS)
def test_nan_in_a_field(kind: str, tmp_path: Path) -> None:
    records = sample(kind)
    px = records.particles["part_px"].copy()
    px[5] = np.nan
    bad = JetRecords(
        counts=records.counts,
        particles={**records.particles, "part_px": px},
        jets=records.jets,
        labels=records.labels,
        label_names=records.label_names,
        event_id=records.event_id,
    )
    path = write(kind, bad, tmp_path)
    with pytest.raises(DataError) as error:
        read_jets(path)
    field = {"jetclass": "part_px", "top": "PX_i", "quark": "X"}[kind.split("_")[0]]
    assert_data_error(path, field, error)
    assert "NaN" in str(error.value)


def _write_tree(path: Path, content: dict) -> Path:
    with uproot.recreate(path) as file:
        file.mktree("tree", content)
    return path


def _jagged(values: list[list[float]]) -> ak.Array:
    return ak.Array([np.asarray(v, dtype=np.float32) for v in values])


def test_jetclass_missing_branch(tmp_path: Path) -> None:
    parts = {k: _jagged([[1.0, 2.0], [3.0]]) for k in ("px", "py", "pz")}
    path = _write_tree(
        tmp_path / "x.root", {"part": ak.zip(parts), "label_QCD": np.ones(2, np.int32)}
    )
    with pytest.raises(DataError) as error:
        read_jets(path)
    assert_data_error(path, "part_energy", error)


def test_jetclass_missing_labels(tmp_path: Path) -> None:
    parts = {k: _jagged([[1.0], [3.0]]) for k in ("px", "py", "pz", "energy")}
    path = _write_tree(tmp_path / "x.root", {"part": ak.zip(parts), "jet_pt": np.ones(2)})
    with pytest.raises(DataError) as error:
        read_jets(path)
    assert_data_error(path, "label_", error)


def test_jetclass_labels_not_one_hot(tmp_path: Path) -> None:
    parts = {k: _jagged([[1.0], [3.0]]) for k in ("px", "py", "pz", "energy")}
    content = {"part": ak.zip(parts), "label_QCD": np.array([1, 1]), "label_Tbqq": np.array([0, 1])}
    path = _write_tree(tmp_path / "x.root", content)
    with pytest.raises(DataError) as error:
        read_jets(path)
    assert_data_error(path, "label_", error)
    assert "jet 1" in str(error.value)


def test_jetclass_wrong_shape_and_mismatched_counts(tmp_path: Path) -> None:
    parts = {k: _jagged([[1.0], [3.0]]) for k in ("px", "py", "pz", "energy")}
    content = {
        "part": ak.zip(parts),
        "label_QCD": np.ones(2, np.int32),
        "jet": ak.zip({"pt": _jagged([[1.0], []])}),
    }
    path = _write_tree(tmp_path / "x.root", content)
    with pytest.raises(DataError) as error:
        read_jets(path)
    assert_data_error(path, "jet_pt", error)
    path = tmp_path / "y.root"
    with uproot.recreate(path) as file:
        file.mktree(
            "tree",
            {
                "part": ak.zip({k: _jagged([[1.0], [3.0]]) for k in ("px", "py", "pz")}),
                "q": ak.zip({"part_energy": _jagged([[1.0, 2.0], [3.0]])}),
                "label_QCD": np.ones(2, np.int32),
            },
            field_name=lambda outer, inner: inner if outer == "q" else f"{outer}_{inner}",
        )
    with pytest.raises(DataError) as error:
        read_jets(path)
    assert_data_error(path, "part_energy", error)


def test_jetclass_no_tree_and_no_jets(tmp_path: Path) -> None:
    path = tmp_path / "other.root"
    with uproot.recreate(path) as file:
        file["events"] = {"x": np.ones(3)}
    with pytest.raises(DataError) as error:
        read_jets(path)
    assert_data_error(path, "tree", error)
    empty = random_records(2, 3, seed=0).select(slice(0, 0))
    path = write_jetclass_root(empty, tmp_path / "empty_tree.root")
    with pytest.raises(DataError) as error:
        read_jets(path)
    assert_data_error(path, "tree", error)


def test_top_landscape_missing_column_and_key(tmp_path: Path) -> None:
    path = write("top_table", sample("top"), tmp_path)
    with h5py.File(path, "a") as file:
        table = file["table/table"]
        kind = table.attrs["values_block_1_kind"].replace(b"is_signal_new", b"other_column")
        table.attrs["values_block_1_kind"] = kind
    with pytest.raises(DataError) as error:
        read_jets(path)
    assert_data_error(path, "is_signal_new", error)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as file:
        file["data"] = np.zeros(3)
    with pytest.raises(DataError) as error:
        read_jets(other)
    assert_data_error(other, "table", error)


def test_top_landscape_bad_labels(tmp_path: Path) -> None:
    records = sample("jetclass")  # labels 0..9: not a binary top label
    path = write("top_fixed", records, tmp_path)
    with pytest.raises(DataError) as error:
        read_jets(path)
    assert_data_error(path, "is_signal_new", error)


def test_quark_gluon_missing_key_wrong_shape_and_pickle(tmp_path: Path) -> None:
    path = tmp_path / "missing.npz"
    np.savez(path, X=np.zeros((2, 3, 4)))
    with pytest.raises(DataError) as error:
        read_jets(path)
    assert_data_error(path, "y", error)
    path = tmp_path / "shape.npz"
    np.savez(path, X=np.ones((2, 3, 3)), y=np.zeros(2))
    with pytest.raises(DataError) as error:
        read_jets(path)
    assert_data_error(path, "X", error)
    assert "(2, 3, 3)" in str(error.value)
    path = tmp_path / "labels.npz"
    np.savez(path, X=np.ones((2, 3, 4)), y=np.zeros(5))
    with pytest.raises(DataError) as error:
        read_jets(path)
    assert_data_error(path, "y", error)
    path = tmp_path / "pickled.npz"
    np.savez(path, X=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    with pytest.raises(DataError) as error:
        read_jets(path)
    assert_data_error(path, "X", error)


def test_files_with_different_labels(tmp_path: Path) -> None:
    first = write("jetclass_ttree", sample("jetclass"), tmp_path, "a")
    second = write("top_table", sample("top"), tmp_path, "b")
    with pytest.raises(DataError) as error:
        read_jets([first, second])
    assert_data_error(second, "label_names", error)
