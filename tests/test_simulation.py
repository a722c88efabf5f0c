"""Simulation: detector card, processes, truth, detector response, shards, resume and the CLI."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from foundation.cli import main
from foundation.data import schema
from foundation.errors import DataError, OutputExistsError
from foundation.simulation import truth
from foundation.simulation.card import load_card, parse_card
from foundation.simulation.detector import (
    CHARGED_HADRON,
    NEUTRAL_HADRON,
    PHOTON,
    Detector,
    GenParticles,
)
from foundation.simulation.processes import PROCESSES, resolve_processes
from foundation.simulation.runner import plan_shards, run_shards, select_batch_shards
from foundation.simulation.writer import read_metadata

# ---------------------------------------------------------------- card and processes


def test_default_card_loads_and_has_a_stable_digest() -> None:
    """The card named ``default`` (no longer the library's default) loads unchanged by name."""
    card = load_card("default")
    assert card.name == "generic-lhc-v1" and card.model == "parametric"
    assert card.tracker.eta_max == 2.5
    assert card.pileup.mean_interactions == 0
    assert card.digest() == "fd9e328496d2ba2e"
    assert card.with_pileup(20).digest() != card.digest()


@pytest.mark.parametrize(
    ("mutate", "field", "text"),
    [
        (lambda d: d["tracker"].update(eta_mx=2.0), "tracker.eta_mx", "did you mean 'eta_max'"),
        (lambda d: d["ecal"].update(threshold=-1), "ecal.threshold", "non-negative"),
        (lambda d: d["tracker"].update(efficiency_high_pt=1.5), "efficiency_high_pt", "[0, 1]"),
        (lambda d: d.update(hcall={}), "hcall", "did you mean 'hcal'"),
        (lambda d: d["pileup"].pop("z_sigma"), "pileup", "missing"),
    ],
)
def test_bad_card_names_field_and_value(mutate, field: str, text: str) -> None:
    import yaml

    from foundation.simulation import card as card_module

    path = Path(card_module.__file__).parent / "cards" / "default.yaml"
    data = yaml.safe_load(path.read_text())
    mutate(data)
    with pytest.raises(DataError) as error:
        parse_card(data, "my_card.yaml")
    assert "my_card.yaml" in str(error.value)
    assert field in str(error.value)
    assert text in str(error.value)


def test_card_path_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="shipped cards"):
        load_card("no-such-card")
    broken = tmp_path / "broken.yaml"
    broken.write_text("tracker: [1, 2\n")
    with pytest.raises(DataError, match=r"broken\.yaml"):
        load_card(broken)


def test_processes_and_aliases() -> None:
    assert len([p for p in PROCESSES.values() if p.label_names == schema.JETCLASS_LABELS]) == 10
    assert {p.label for p in resolve_processes("jetclass")} == set(schema.JETCLASS_LABELS)
    assert [p.name for p in resolve_processes("toptagging")] == ["qcd", "tbqq"]
    assert [p.name for p in resolve_processes("qcd, qcd,top")] == ["qcd", "tbqq"]
    with pytest.raises(KeyError, match="unknown process 'tbbq'"):
        resolve_processes("tbbq")


@pytest.mark.parametrize("shard_index", [0, 1])
def test_hqql_shards_alternate_the_leptonic_w(shard_index: int) -> None:
    from foundation.simulation.generator import Generator

    settings = PROCESSES["hqql"].pythia_settings(shard_index=shard_index)
    assert settings != PROCESSES["hqql"].pythia_settings(shard_index=shard_index + 1)
    batch = Generator(settings, seed=11).generate(20)
    leptonic_w = []
    for position in range(len(batch)):
        event = batch.event(position)
        for w in np.flatnonzero(np.abs(event["pdg_id"]) == 24):
            products = event["pdg_id"][event["daughter1"][w] : event["daughter2"][w] + 1]
            last_copy = not np.isin(np.abs(products), 24).any()
            if last_copy and np.isin(np.abs(products), (11, 13)).any():
                leptonic_w.append(int(event["pdg_id"][w]))
    assert leptonic_w == [24 if shard_index == 0 else -24] * 20


# ---------------------------------------------------------------- truth


@pytest.mark.parametrize(
    ("pdg_id", "has_b", "has_c"),
    [
        (511, True, False),
        (-521, True, False),
        (5122, True, False),
        (421, False, True),
        (4122, False, True),
        (553, False, False),
        (443, False, False),
        (211, False, False),
        (22, False, False),
        (541, True, True),
    ],
)
def test_heavy_flavour_content(pdg_id: int, has_b: bool, has_c: bool) -> None:
    ids = np.array([pdg_id])
    assert truth.contains_quark(ids, 5)[0] == has_b
    assert truth.contains_quark(ids, 4)[0] == has_c


def _toy_event() -> dict[str, np.ndarray]:
    """A hand-made record: H -> b b~, each b hadronises; one B decays to a D which decays.

    index: 0 system, 1 H (status -22), 2 b, 3 b~ (decay products, -23), 4 gluon (ISR, -41),
    5-7 string copies (-71: b, g, b~), 8 B0 (-83), 9 pi+ (83, prompt from the b/g/b~ string),
    10 D0 (-91, from B0), 11 pi- (91, from B0), 12 K- (91, from D0), 13 pi+ (91, from D0),
    14 pi0-like photon from the ISR-only string (84), 15 ISR string copy (-71).
    """
    status = np.array([-11, -22, -23, -23, -41, -71, -71, -71, -83, 83, -91, 91, 91, 91, 84, -71])
    pdg = np.array([90, 25, 5, -5, 21, 5, 21, -5, 511, 211, 421, -211, -321, 211, 22, 21])
    mother1 = np.array([0, 0, 1, 1, 0, 2, 4, 3, 5, 5, 8, 8, 10, 10, 15, 4])
    mother2 = np.array([0, 0, 0, 0, 0, 0, 0, 0, 7, 7, 0, 0, 0, 0, 15, 0])
    # The b/g/b~ string: b and b~ carry most of the energy, so its hadrons are from the decay.
    energy = np.array([0, 125, 60, 60, 30, 60, 10, 60, 50, 20, 30, 20, 15, 15, 5, 30.0])
    zeros = np.zeros(len(status))
    daughter1 = np.array([0, 2, 5, 7, 6, 8, 8, 8, 10, 0, 12, 0, 0, 0, 0, 14])
    daughter2 = np.array([0, 3, 0, 0, 15, 9, 9, 9, 11, 0, 13, 0, 0, 0, 0, 0])
    return {
        "status": status,
        "pdg_id": pdg,
        "mother1": mother1,
        "mother2": mother2,
        "daughter1": daughter1,
        "daughter2": daughter2,
        "energy": energy,
        "px": zeros,
        "py": zeros,
        "pz": zeros,
        "vx": zeros,
        "vy": zeros,
        "vz": zeros,
    }


def test_origins_follow_decays_and_strings() -> None:
    event = _toy_event()
    decays = truth.resonance_decays(event, 25)
    assert [list(d) for d in decays] == [[2, 3]]
    origin = truth.particle_origins(event, decays[0])
    assert origin[9] == truth.HARD_DECAY  # prompt hadron of the b b~ string
    assert origin[11] == truth.B_HADRON  # direct B decay product
    assert origin[12] == truth.B_HADRON and origin[13] == truth.B_HADRON  # via the D: still b
    assert origin[14] == truth.OTHER  # ISR string


def test_charm_without_bottom_is_c_hadron() -> None:
    event = _toy_event()
    event["pdg_id"] = event["pdg_id"].copy()
    event["pdg_id"][8] = 413  # make the first hadron a D*+ instead of a B0
    origin = truth.particle_origins(event, np.array([2, 3]))
    assert origin[11] == truth.C_HADRON
    assert origin[12] == truth.C_HADRON


# ---------------------------------------------------------------- detector


def _particles(**columns: list[float]) -> GenParticles:
    count = len(columns["px"])
    defaults = {name: [0.0] * count for name in ("vx", "vy", "vz", "charge", "origin", "source")}
    defaults.update(columns)
    arrays = {name: np.asarray(value, dtype=float) for name, value in defaults.items()}
    arrays["pdg_id"] = np.asarray(columns["pdg_id"], dtype=int)
    arrays["origin"] = arrays["origin"].astype(np.int8)
    arrays["source"] = arrays["source"].astype(np.int32)
    return GenParticles(**arrays)


def test_track_impact_parameter_from_displaced_vertex() -> None:
    card = load_card("default")
    # A 50 GeV pi+ produced at x = 1 mm moving along y: d0 = 1 mm, dz = 0.
    particles = _particles(
        px=[0.0], py=[50.0], pz=[0.0], energy=[50.0002], vx=[1.0], charge=[1.0], pdg_id=[211]
    )
    found = []
    for seed in range(40):
        candidates = Detector(card, np.random.default_rng(seed)).reconstruct(particles)
        if len(candidates):
            assert candidates.kind[0] == CHARGED_HADRON
            found.append(candidates.d0[0] / candidates.d0_error[0])
    assert 30 <= len(found) <= 40  # 97 % efficiency
    expected_error = np.hypot(
        card.tracker.d0_resolution_constant, card.tracker.d0_resolution_pt / 50
    )
    assert abs(np.mean(found) - 1.0 / expected_error) < 3.0


def test_neutral_particles_in_one_cell_merge_and_soft_cells_vanish() -> None:
    card = load_card("default")
    particles = _particles(
        px=[20.0, 10.0, 0.0, 0.1],
        py=[0.0, 0.0, 30.0, 0.0],
        pz=[0.0, 0.0, 0.0, 0.0],
        energy=[20.0, 10.0, 30.0, 0.1],
        pdg_id=[22, 22, 130, 22],
        origin=[1, 3, 3, 3],
    )
    candidates = Detector(card, np.random.default_rng(0)).reconstruct(particles)
    kinds = sorted(candidates.kind.tolist())
    assert kinds == [PHOTON, NEUTRAL_HADRON]  # two photons share a cell; the 0.1 GeV one is lost
    photon = candidates.kind == PHOTON
    assert abs(candidates.energy[photon][0] - 30.0) < 3.0
    assert candidates.origin[photon][0] == 1  # the most energetic particle gives the truth
    assert np.all(candidates.d0_error == 0)


def test_muons_skip_calorimeters_and_neutrinos_never_reach_the_detector() -> None:
    card = load_card("default")
    particles = _particles(px=[0.0], py=[0.0], pz=[0.0], energy=[0.0], pdg_id=[13])
    particles = _particles(
        px=[40.0], py=[0.0], pz=[500.0], energy=[503.6], pdg_id=[13], charge=[-1.0]
    )
    candidates = Detector(card, np.random.default_rng(0)).reconstruct(particles)
    assert len(candidates) == 0  # |eta| ~ 3.2: outside the tracker, muons leave no cell


# ---------------------------------------------------------------- shards end to end


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    specs = plan_shards(
        resolve_processes("tbqq,qcd"), 12, out, seed=5, card=load_card("default"), shard_size=6
    )
    run_shards(specs, show_progress=False)
    return out


@pytest.mark.slow  # Pythia runs (the small_sample fixture)
def test_shards_hold_jetclass_branches_and_truth(small_sample: Path) -> None:
    files = sorted(small_sample.glob("*.root"))
    assert [f.name for f in files] == [
        "qcd_00000.root",
        "qcd_00001.root",
        "tbqq_00000.root",
        "tbqq_00001.root",
    ]
    for path in files:
        with uproot.open(path) as file:
            tree = file[schema.TREE_NAME]
            assert tree.num_entries == 6
            names = set(tree.keys())
            for branch in (
                *schema.PARTICLE_BRANCHES,
                *schema.JET_BRANCHES,
                *schema.JETCLASS_LABELS,
                *schema.TRUTH_JET_BRANCHES,
                *schema.TRUTH_PARTICLE_BRANCHES,
                schema.EVENT_ID_BRANCH,
            ):
                assert branch in names, branch
            arrays = tree.arrays(
                [
                    "part_px",
                    "part_py",
                    "part_energy",
                    "part_origin",
                    "part_vertex",
                    "part_charge",
                    "jet_pt",
                    "jet_nparticles",
                    "jet_sdmass",
                    "jet_tau1",
                    "jet_tau2",
                    "label_Tbqq",
                    "label_QCD",
                    "event_id",
                ]
            )
        process = path.name.split("_")[0]
        assert np.all(arrays["label_Tbqq"] == (process == "tbqq"))
        assert np.all(arrays["label_QCD"] == (process == "qcd"))
        pt = ak.sum(arrays["part_px"], axis=1) ** 2 + ak.sum(arrays["part_py"], axis=1) ** 2
        assert np.allclose(np.sqrt(ak.to_numpy(pt)), arrays["jet_pt"], rtol=1e-3)
        assert np.all(ak.num(arrays["part_px"]) == arrays["jet_nparticles"])
        assert np.all((arrays["jet_pt"] >= 500) & (arrays["jet_pt"] < 1000))
        assert np.all(np.isfinite(arrays["jet_tau1"])) and np.all(arrays["jet_tau2"] >= 0)
        assert np.mean(arrays["jet_tau2"]) < np.mean(arrays["jet_tau1"])
        flat_origin = ak.flatten(arrays["part_origin"])
        assert np.all((flat_origin >= 0) & (flat_origin < len(schema.ORIGIN_CLASSES)))
        neutral = ak.flatten(arrays["part_charge"] == 0)
        assert np.all(ak.flatten(arrays["part_vertex"])[neutral] == schema.NO_VERTEX)
        assert np.all(ak.flatten(arrays["part_vertex"])[~neutral] >= 0)
        metadata = read_metadata(path)
        assert metadata["n_jets"] == 6 and metadata["seed"] == 5
        assert metadata["card"]["tracker"]["eta_max"] == 2.5


@pytest.mark.slow  # Pythia runs (the small_sample fixture)
def test_event_ids_are_unique_across_shards(small_sample: Path) -> None:
    ids = []
    for path in small_sample.glob("*.root"):
        with uproot.open(path) as file:
            ids.append(file[schema.TREE_NAME]["event_id"].array(library="np"))
    ids = np.concatenate(ids)
    events, counts = np.unique(ids, return_counts=True)
    assert counts.max() <= 2  # at most the two leading jets of one event
    assert len(events) >= len(ids) // 2


@pytest.mark.slow  # Pythia runs (small_sample)
def test_rerun_skips_finished_shards_and_refuses_other_requests(small_sample: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in small_sample.glob("*.root")}
    specs = plan_shards(
        resolve_processes("tbqq,qcd"),
        12,
        small_sample,
        seed=5,
        card=load_card("default"),
        shard_size=6,
    )
    assert run_shards(specs, show_progress=False) == []
    assert before == {p.name: p.stat().st_mtime_ns for p in small_sample.glob("*.root")}
    other = plan_shards(
        resolve_processes("qcd"), 6, small_sample, seed=6, card=load_card("default"), shard_size=6
    )
    with pytest.raises(OutputExistsError, match="--overwrite"):
        run_shards(other, show_progress=False)
    assert before == {p.name: p.stat().st_mtime_ns for p in small_sample.glob("*.root")}


@pytest.mark.slow  # Pythia runs (small_sample and one more shard)
def test_same_seed_gives_identical_jets(tmp_path: Path, small_sample: Path) -> None:
    specs = plan_shards(
        resolve_processes("tbqq"), 6, tmp_path, seed=5, card=load_card("default"), shard_size=6
    )
    run_shards(specs, show_progress=False)
    with (
        uproot.open(tmp_path / "tbqq_00000.root") as new,
        uproot.open(small_sample / "tbqq_00000.root") as old,
    ):
        for branch in ("part_px", "part_d0val", "jet_sdmass", "event_id"):
            assert ak.all(new["tree"][branch].array() == old["tree"][branch].array()), branch


def test_batch_shard_selection_partitions_the_request(tmp_path: Path) -> None:
    specs = plan_shards(resolve_processes("jetclass"), 25, tmp_path, 1, load_card("default"), 10)
    assert len(specs) == 30
    parts = [select_batch_shards(specs, job, 4) for job in range(4)]
    assert sorted(s.path for part in parts for s in part) == sorted(s.path for s in specs)
    assert [s.process for s in specs[:10]] == [p.name for p in resolve_processes("jetclass")]
    assert {s.index for s in specs[:10]} == {0} and specs[-1].n_jets == 5
    with pytest.raises(ValueError, match="I/N"):
        select_batch_shards(specs, 4, 4)
    assert len({s.pythia_seed for s in specs}) == len(specs)


@pytest.mark.slow  # Pythia runs
def test_cli_simulates_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arguments = [
        "simulate",
        "--process",
        "wqq",
        "--jets",
        "3",
        "--out",
        str(tmp_path / "w"),
        "--no-progress",
        "--seed",
        "3",
    ]
    assert main(arguments) == 0
    assert "made 3 jets" in capsys.readouterr().out
    assert main(arguments) == 0
    assert "1 were already done" in capsys.readouterr().out
    assert main(["simulate", "--process", "nope", "--jets", "3", "--out", str(tmp_path)]) == 1
    assert "unknown process" in capsys.readouterr().err


@pytest.mark.slow  # Pythia runs (small_sample)
def test_validation_robust_physics_on_a_small_sample(small_sample: Path, tmp_path: Path) -> None:
    from foundation.simulation.validate import validate

    checks = {c.name: c for c in validate(sorted(small_sample.glob("*.root")), tmp_path / "v")}
    for name in (
        "sdmass.png",
        "jet_pt.png",
        "d0_significance.png",
        "response.png",
        "validation.md",
        "validation.json",
    ):
        assert (tmp_path / "v" / name).stat().st_size > 0, name
    assert checks["jet pT response median (reco / particle level)"].passed
    assert checks["median |d0|/sigma(d0), b-hadron / prompt tracks"].value > 2
    with (
        uproot.open(small_sample / "tbqq_00000.root") as top,
        uproot.open(small_sample / "qcd_00000.root") as qcd,
    ):
        top_mass = np.median(top["tree"]["jet_sdmass"].array(library="np"))
        qcd_mass = np.median(qcd["tree"]["jet_sdmass"].array(library="np"))
    assert 120 < top_mass < 220 and qcd_mass < top_mass


def test_validation_names_a_file_without_truth(tmp_path: Path) -> None:
    from foundation.simulation.validate import validate

    path = tmp_path / "plain.root"
    with uproot.recreate(path) as file:
        file.mktree("tree", {"jet_pt": np.float32})
        file["tree"].extend({"jet_pt": np.array([500.0], dtype=np.float32)})
    with pytest.raises(DataError, match=r"plain\.root"):
        validate([path], tmp_path / "v")


@pytest.mark.slow  # Pythia runs, with pileup events
def test_pileup_overlay_adds_pileup_candidates(tmp_path: Path) -> None:
    card = load_card("default").with_pileup(8)
    specs = plan_shards(resolve_processes("qcd"), 3, tmp_path, seed=4, card=card, shard_size=3)
    run_shards(specs, show_progress=False)
    with uproot.open(specs[0].path) as file:
        arrays = file["tree"].arrays(["part_origin", "part_vertex", "part_dzval", "part_charge"])
    origin = ak.flatten(arrays["part_origin"])
    pileup = origin == truth.PILEUP
    assert ak.sum(pileup) > 0
    charged_pileup = pileup & (ak.flatten(arrays["part_charge"]) != 0)
    # Pileup tracks come from other interactions along the beam: large |dz|, their own vertices.
    assert np.median(np.abs(ak.to_numpy(ak.flatten(arrays["part_dzval"])[charged_pileup]))) > 1.0
    assert ak.all(ak.flatten(arrays["part_vertex"])[charged_pileup] >= 1)
    assert read_metadata(specs[0].path)["card"]["pileup"]["mean_interactions"] == 8
