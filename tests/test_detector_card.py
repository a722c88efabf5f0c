"""The JetClass (``model: delphes``) detector card: tables, propagation, particle flow, output."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import delphes_card

from foundation.errors import DataError
from foundation.simulation import card as card_module
from foundation.simulation.card import load_card, parse_card
from foundation.simulation.delphes_card import DelphesCard, binned_lookup
from foundation.simulation.detector import (
    CHARGED_HADRON,
    ELECTRON,
    NEUTRAL_HADRON,
    OTHER_CHARGED,
    PHOTON,
    Detector,
    GenParticles,
)
from foundation.simulation.jets import kept_constituents, relative_eta
from foundation.simulation.propagation import propagate

CARDS = Path(card_module.__file__).parent / "cards"


@pytest.fixture(scope="module")
def jetclass() -> DelphesCard:
    return delphes_card("jetclass")


def _raw() -> dict:
    return yaml.safe_load((CARDS / "jetclass.yaml").read_text())


# ---------------------------------------------------------------- the card and its tables


def test_default_card_is_unchanged_and_jetclass_card_loads(jetclass: DelphesCard) -> None:
    # The default card's digest names old checkpoints' data: it must never change.
    assert load_card("default").digest() == "fd9e328496d2ba2e"
    assert load_card("default").model == "parametric"
    assert jetclass.model == "delphes"
    assert jetclass.propagation.bz == 3.8
    assert jetclass.output.deta_sign_flip
    assert jetclass.with_pileup(50).digest() != jetclass.digest()
    assert jetclass.to_dict()["impact_parameters"]["pt_edges"][-1] == "inf"


def test_jetclass_is_the_default_card_and_every_default_follows_it(jetclass: DelphesCard) -> None:
    """One constant names the library's default card; the CLI and the recipes take it from there
    (the old ``default`` card is pinned by name where results were measured with it)."""
    import argparse

    from foundation.cli import simulate as simulate_cli
    from foundation.training.recipe import SimulateConfig
    from foundation.training.sources import simulation_folder

    assert card_module.DEFAULT_CARD == "jetclass"
    assert load_card().digest() == jetclass.digest()
    assert SimulateConfig().card == card_module.DEFAULT_CARD
    commands = argparse.ArgumentParser().add_subparsers()
    simulate_cli.register(commands)
    parser = commands.choices["simulate"]
    assert parser.parse_args(["--out", "x"]).card == card_module.DEFAULT_CARD
    assert parser.parse_args(["--out", "x", "--card", "default"]).card == "default"
    # Folders of the old card keep their names; the new default names its card.
    assert simulation_folder(SimulateConfig(process="qcd", jets=10)).name == "qcd-10-s1-jetclass"
    pinned = SimulateConfig(process="qcd", jets=10, card="default")
    assert simulation_folder(pinned).name == "qcd-10-s1"


def test_binned_lookup_edges_are_lo_exclusive_hi_inclusive() -> None:
    eta_edges, pt_edges = (0.0, 1.0, 2.5), (0.5, 1.0, math.inf)
    values = ((1.0, 2.0), (3.0, 4.0))
    pt = np.array([0.5, 0.50001, 1.0, 1.00001, 1e6, 0.7, 0.7, 0.7, 0.7])
    eta = np.array([0.3, 0.3, -0.3, 0.3, 0.3, 1.0, -1.00001, 2.5, 2.50001])
    found = binned_lookup(eta_edges, pt_edges, values, pt, eta)
    np.testing.assert_array_equal(found, [0.0, 1.0, 1.0, 2.0, 2.0, 1.0, 3.0, 3.0, 0.0])


def test_impact_parameter_tables_match_the_delphes_card(jetclass: DelphesCard) -> None:
    ip = jetclass.impact_parameters
    pt = np.array([0.18, 0.2, 1.0, 50.0, 134.713, 500.0, 500.0, 2.0])
    eta = np.array([0.5, 0.5, 1.2, -0.1, 0.5, 2.4, 2.6, 0.9])
    # delphes_card.tcl l.199 (0.3543), l.241 (0.0926), l.228 (0.0110), l.231 (0.0109),
    # l.300 (0.0137)
    np.testing.assert_allclose(
        ip.d0_error(pt, eta), [0.0, 0.3543, 0.0926, 0.0110, 0.0109, 0.0137, 0.0, 0.0524]
    )
    # l.303 (0.3693), l.404 (0.0850)
    np.testing.assert_allclose(ip.dz_error(pt[:2], eta[:2]), [0.0, 0.3693])
    np.testing.assert_allclose(ip.dz_error(np.array([500.0]), np.array([-2.0])), [0.0850])


def test_calorimeter_towers_fractions_and_resolution(jetclass: DelphesCard) -> None:
    ecal, hcal = jetclass.ecal, jetclass.hcal
    assert ecal.eta_edges[0] == -5.0 and ecal.eta_edges[-1] == 5.0
    centre = ecal.eta_edges.index(-1.479)
    assert ecal.eta_edges[centre + 1] == pytest.approx(-1.4616)
    assert ecal.phi_bins[centre] == 360  # bin (-1.479, -1.4616]
    assert hcal.phi_bins[hcal.eta_edges.index(0.0)] == 72  # bin (0, 0.087]: 5 degrees
    assert hcal.phi_bins[hcal.eta_edges.index(1.74) - 1] == 36  # bin (1.653, 1.74]
    ids = np.array([211, -11, 22, 310, 13, 2112])
    np.testing.assert_allclose(ecal.fractions(ids), [0.0, 1.0, 1.0, 0.3, 0.0, 0.0])
    np.testing.assert_allclose(hcal.fractions(ids), [1.0, 0.0, 0.0, 0.7, 0.0, 1.0])
    # sigma(E) = (1 + 0.64 eta^2) sqrt(0.008^2 E^2 + 0.11^2 E + 0.4^2) in the barrel
    expected = (1 + 0.64 * 0.25) * math.sqrt((0.008 * 10) ** 2 + 0.11**2 * 10 + 0.4**2)
    assert ecal.sigma(np.array([10.0]), np.array([0.5]))[0] == pytest.approx(expected)
    assert hcal.sigma(np.array([4.0]), np.array([3.5]))[0] == pytest.approx(
        math.sqrt((0.13 * 4) ** 2 + 2.7**2 * 4)
    )


@pytest.mark.parametrize(
    ("mutate", "field", "text"),
    [
        (lambda d: d.update(model="geant"), "model", "parametric, delphes"),
        (lambda d: d["propagation"].update(half_lenght=1.0), "half_lenght", "half_length"),
        (
            lambda d: d["tracking"]["muon"]["efficiency"]["values"][0].append(0.5),
            "tracking.muon.efficiency.values[0]",
            "2 values",
        ),
        (
            lambda d: d["tracking"]["electron"]["efficiency"]["values"][1].__setitem__(0, 1.5),
            "tracking.electron.efficiency.values",
            "[0, 1]",
        ),
        (
            lambda d: d["impact_parameters"]["abs_eta_edges"].__setitem__(2, 0.5),
            "impact_parameters.abs_eta_edges",
            "strictly increasing",
        ),
        (
            lambda d: d["impact_parameters"]["d0_resolution"].pop(),
            "impact_parameters.d0_resolution",
            "3 rows",
        ),
        (lambda d: d["ecal"]["energy_fractions"].pop("default"), "energy_fractions", "default"),
        (lambda d: d["hcal"]["towers"][0].update(phi_bins=0), "phi_bins", "positive integer"),
        (lambda d: d["output"].update(deta_sign_flip="yes"), "output.deta_sign_flip", "true"),
        (lambda d: d.pop("pileup"), "<top level>", "missing"),
    ],
)
def test_bad_jetclass_card_names_field_and_value(mutate, field: str, text: str) -> None:
    data = copy.deepcopy(_raw())
    mutate(data)
    with pytest.raises(DataError) as error:
        parse_card(data, "my_card.yaml")
    message = str(error.value)
    assert "my_card.yaml" in message and field in message and text in message


# ---------------------------------------------------------------- propagation


def _one(value: float) -> np.ndarray:
    return np.array([value], dtype=np.float64)


def test_displaced_track_impact_parameters() -> None:
    # Produced at (0, 1, 3) mm moving along +x: the production point is the closest approach
    # for either charge, so d0 = (x p_y - y p_x) / pT = -1 mm and dz = 3 mm exactly.
    for charge in (1.0, -1.0):
        out = propagate(
            _one(5.0), _one(0.0), _one(2.0), _one(0.0), _one(1.0), _one(3.0), _one(charge),
            1290.0, 3000.0, 3.8,
        )  # fmt: skip
        assert out.d0[0] == pytest.approx(-1.0, abs=1e-9)
        assert out.dz[0] == pytest.approx(3.0, abs=1e-9)
        assert out.phi_d[0] == pytest.approx(0.0, abs=1e-9)


def test_helix_d0_is_the_distance_of_the_circle_to_the_beam_line() -> None:
    rng = np.random.default_rng(3)
    n = 200
    px, py = rng.normal(0, 2, n), rng.normal(0, 2, n)
    pz = rng.normal(0, 5, n)
    x, y, z = rng.normal(0, 5, n), rng.normal(0, 5, n), rng.normal(0, 5, n)
    charge = rng.choice([-1.0, 1.0], n)
    out = propagate(px, py, pz, x, y, z, charge, 1290.0, 3000.0, 3.8)
    pt = np.hypot(px, py)
    radius = pt / (charge * 3.8 * 0.299792458) * 1000.0
    phi0 = np.arctan2(py, px)
    centre = np.hypot(x + radius * np.sin(phi0), y - radius * np.cos(phi0))
    np.testing.assert_allclose(
        np.abs(out.d0), np.abs(centre - np.abs(radius)), rtol=1e-6, atol=1e-9
    )
    # Stiff tracks: the helix is a straight line from the vertex.
    stiff = propagate(px * 1e5, py * 1e5, pz * 1e5, x, y, z, charge, 1290.0, 3000.0, 3.8)
    np.testing.assert_allclose(stiff.d0, (x * py - y * px) / pt, atol=1e-4)
    central = np.abs(np.arcsinh(pz / pt)) < 1.5  # vertices ~5 mm from the origin move eta a little
    assert np.all(np.abs(stiff.eta - np.arcsinh(pz / pt))[central] < 0.05)


def test_soft_track_curls_and_leaves_through_the_end_cap() -> None:
    # pT = 0.5 GeV: helix diameter 0.88 m < 1.29 m, so it exits at |z| = 3 m at large eta.
    out = propagate(
        _one(0.5), _one(0.0), _one(0.3), _one(0.0), _one(0.0), _one(0.0), _one(1.0),
        1290.0, 3000.0, 3.8,
    )  # fmt: skip
    assert out.inside[0]
    assert out.eta[0] > np.arcsinh(0.3 / 0.5) + 0.5
    produced_outside = propagate(
        _one(1.0), _one(0.0), _one(0.0), _one(1300.0), _one(0.0), _one(0.0), _one(0.0),
        1290.0, 3000.0, 3.8,
    )  # fmt: skip
    assert not produced_outside.inside[0]


# ---------------------------------------------------------------- detector and output


def _particles(rows: list[tuple[float, float, float, int, float]]) -> GenParticles:
    """(pT, eta, phi, pdg id, charge) rows -> prompt generator particles."""
    masses = {211: 0.13957, 2112: 0.93957, 22: 0.0, 11: 0.000511, 3222: 1.18937}
    pt, eta, phi = (np.array([row[k] for row in rows]) for k in range(3))
    pdg = np.array([row[3] for row in rows], dtype=np.int32)
    mass = np.array([masses[abs(int(p))] for p in pdg])
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    count = len(rows)
    zeros = np.zeros(count)
    return GenParticles(
        px=px,
        py=py,
        pz=pz,
        energy=np.sqrt(px**2 + py**2 + pz**2 + mass**2),
        vx=zeros,
        vy=zeros,
        vz=zeros,
        charge=np.array([row[4] for row in rows]),
        pdg_id=pdg,
        origin=np.zeros(count, dtype=np.int8),
        source=np.zeros(count, dtype=np.int32),
    )


def test_jetclass_detector_tracks_towers_and_identities(jetclass: DelphesCard) -> None:
    event = _particles(
        [
            (100.0, 0.3, 0.5, 2112, 0.0),  # neutron: a neutral hadron of the HCAL
            (40.0, -0.8, 2.0, 22, 0.0),  # photon: ECAL
            (0.5, 1.0, -2.0, 22, 0.0),  # soft photon: below the ECAL thresholds
            (30.0, 1.2, -1.0, 211, 1.0),  # charged pion: a track
            (25.0, 0.1, -2.5, 11, -1.0),  # electron: a track, identified
            (20.0, -0.2, 1.0, 3222, 1.0),  # Sigma+: a track with no identity flag
        ]
    )
    # sigma(d0) at each track's (pT, eta) give or take the momentum smearing, before any
    # calorimeter rescaling: one of the table's values
    errors = np.asarray(jetclass.impact_parameters.d0_resolution).ravel()

    kinds = []
    for seed in range(20):
        candidates = Detector(jetclass, np.random.default_rng(seed)).reconstruct(event)
        kinds.append(sorted(candidates.kind.tolist()))
        tracks = candidates.charge != 0
        assert np.isin(candidates.d0_error[tracks], errors).all()
        assert np.all(candidates.d0_error[~tracks] == 0)
        neutral = candidates.kind == NEUTRAL_HADRON
        assert neutral.sum() >= 1 and candidates.energy[neutral].max() > 30
    # With the card's efficiencies (0.95 barrel) most seeds find every track; the HCAL may add
    # a second neutral hadron (a significant upward fluctuation of the pion's tower).
    expected = {CHARGED_HADRON, ELECTRON, OTHER_CHARGED, PHOTON, NEUTRAL_HADRON}
    assert sum(set(found) == expected for found in kinds) >= 12


def test_tracks_take_the_tower_energy_without_a_significant_excess(jetclass: DelphesCard) -> None:
    # A lone 5 GeV pion: its HCAL tower (sigma ~ 3.4 GeV) mostly has no significant excess, so
    # the track is rescaled to the calorimeter energy, or removed when the tower is below threshold.
    event = _particles([(5.0, 0.2, 0.3, 211, 1.0)])
    momenta = []
    for seed in range(200):
        candidates = Detector(jetclass, np.random.default_rng(seed)).reconstruct(event)
        tracks = candidates.charge != 0
        momenta.extend(np.hypot(candidates.px, candidates.py)[tracks].tolist())
    momenta = np.asarray(momenta)
    assert 50 < len(momenta) < 200
    assert np.std(momenta) > 0.5  # the calorimeter's resolution, not the tracker's


def test_deta_sign_flip_and_constituent_filter() -> None:
    eta = np.array([0.5, 1.5])
    np.testing.assert_allclose(relative_eta(eta, 1.0, False), [-0.5, 0.5])
    np.testing.assert_allclose(relative_eta(eta, 1.0, True), [-0.5, 0.5])
    np.testing.assert_allclose(relative_eta(-eta, -1.0, True), [-0.5, 0.5])
    np.testing.assert_allclose(relative_eta(eta, 0.0, True), [-0.5, -1.5])  # sign(0) = -1
    conventions = load_card("jetclass").output
    px = np.array([1.0, 0.0, 1.0, 1e-3])
    py = np.array([0.0, 0.0, 0.0, 0.0])
    pz = np.array([2.0, 1.0, 2e4, 1.0])
    np.testing.assert_array_equal(
        kept_constituents(px, py, pz, conventions), [True, False, False, False]
    )
    assert kept_constituents(px, py, pz, load_card("default").output).all()


@pytest.mark.slow  # Pythia runs
def test_jetclass_card_shards_follow_the_ntupliser(tmp_path: Path) -> None:
    import awkward as ak
    import uproot

    from foundation.simulation.processes import resolve_processes
    from foundation.simulation.runner import plan_shards, run_shards

    card = load_card("jetclass")
    specs = plan_shards(resolve_processes("tbqq"), 3, tmp_path, seed=9, card=card, shard_size=3)
    run_shards(specs, show_progress=False)
    with uproot.open(specs[0].path) as file:
        jets = file["tree"].arrays()
    pt = np.hypot(jets["part_px"], jets["part_py"])
    eta = np.arcsinh(jets["part_pz"] / pt)
    sign = np.where(jets["jet_eta"] > 0, 1.0, -1.0)
    assert ak.all(abs(jets["part_deta"] - sign * (eta - jets["jet_eta"])) < 1e-4)
    assert ak.all(pt > 0) and ak.all(abs(eta) <= 5)
    assert np.all(np.asarray(ak.num(jets["part_px"])) == np.asarray(jets["jet_nparticles"]))
    charged = jets["part_charge"] != 0
    assert ak.all(jets["part_d0err"][~charged] == 0)
    assert ak.all((jets["part_isChargedHadron"] == 0) | charged)
    errors = set(np.asarray(card.impact_parameters.d0_resolution).ravel().tolist()) | {0.0}
    found = np.asarray(ak.flatten(jets["part_d0err"][charged]), dtype=np.float64)
    assert all(min(abs(e - v) for v in errors) < 1e-6 for e in found)
