"""Pileup as JetClass-II has it: the card's optional settings, charged-hadron subtraction, PUPPI
weights on hand-built events, and the pileup-off path left untouched."""

from __future__ import annotations

import copy
import math
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import delphes_card

from foundation.errors import DataError
from foundation.simulation import card as card_module
from foundation.simulation.card import load_card, parse_card
from foundation.simulation.delphes_card import DelphesCard, PuppiCard, PuppiRegion
from foundation.simulation.detector import (
    CHARGED_HADRON,
    ELECTRON,
    NEUTRAL_HADRON,
    PHOTON,
    Candidates,
    GenParticles,
)
from foundation.simulation.pileup_mitigation import mitigate, pileup_tracks, to_primary_frame
from foundation.simulation.puppi import (
    NEUTRAL,
    PILEUP_CHARGED,
    PRIMARY_CHARGED,
    alpha,
    median_and_rms,
    puppi_weights,
    vertex_count,
)
from foundation.simulation.runner import _Pileup

CARDS = Path(card_module.__file__).parent / "cards"
REGION = PuppiRegion(
    abs_eta_min=0.0,
    abs_eta_max=2.5,
    pt_min=0.0,
    cone=0.4,
    rms_pt_min=0.1,
    rms_scale=1.0,
    neutral_pt_min=0.0,
    neutral_pt_slope=0.0,
    low_pu_correction=False,
)


def _card(**region: object) -> PuppiCard:
    return PuppiCard(min_weight=0.0, vertex_efficiency=0.7, regions=(replace(REGION, **region),))


@pytest.fixture(scope="module")
def jetclass2() -> DelphesCard:
    return delphes_card("jetclass2")


# ---------------------------------------------------------------- the cards


def test_jetclass_card_keeps_its_digest_and_has_no_mitigation() -> None:
    # The corpus simulated with the jetclass card records this digest: it must never change.
    card = load_card("jetclass")
    assert card.digest() == "c38cc3ce991e28d6"
    assert card.to_dict()["pileup"] == {"mean_interactions": 0.0, "z_sigma": 50.0}
    assert not card.pileup.changes_reconstruction


def test_jetclass2_card_has_the_jetclass2_numbers(jetclass2: DelphesCard) -> None:
    pileup = jetclass2.pileup
    # delphes_card_CMS_JetClassII.tcl l.102, l.111, l.105, l.699, l.787, l.792-802
    assert (pileup.mean_interactions, pileup.z_sigma, pileup.z_max) == (50.0, 53.0, 250.0)
    assert pileup.spread_primary_vertex
    assert pileup.charged_subtraction is not None
    assert pileup.charged_subtraction.z_resolution == 0.1
    assert pileup.puppi is not None and pileup.puppi.min_weight == 0.05
    central, forward = pileup.puppi.regions
    assert (central.abs_eta_max, central.rms_pt_min, central.neutral_pt_slope) == (2.5, 0.1, 0.006)
    assert (forward.abs_eta_max, forward.rms_pt_min, forward.neutral_pt_slope) == (10.0, 0.5, 0.013)
    assert central.cone == forward.cone == 0.4
    # the detector sections are the jetclass card's
    jetclass = load_card("jetclass")
    assert isinstance(jetclass, DelphesCard)
    assert jetclass2.ecal == jetclass.ecal and jetclass2.tracking == jetclass.tracking
    # --pileup changes the mean only; the mitigation stays
    assert jetclass2.with_pileup(140).pileup.puppi == pileup.puppi
    # the shards' metadata records every pileup setting
    written = jetclass2.to_dict()["pileup"]
    assert written["puppi"]["regions"][1]["neutral_pt_slope"] == 0.013
    assert written["spread_primary_vertex"] is True


def _raw() -> dict:
    return yaml.safe_load((CARDS / "jetclass2.yaml").read_text())


@pytest.mark.parametrize(
    ("mutate", "field", "text"),
    [
        (lambda d: d["pileup"].pop("charged_subtraction"), "pileup.puppi", "charged_subtraction"),
        (lambda d: d["pileup"]["puppi"].update(min_weight=1.5), "puppi.min_weight", "[0, 1]"),
        (
            lambda d: d["pileup"]["puppi"]["regions"][0].update(abs_eta_max=0.0),
            "regions[0].abs_eta_max",
            "> abs_eta_min",
        ),
        (lambda d: d["pileup"]["puppi"]["regions"][1].update(cone=0), "regions[1].cone", "> 0"),
        (
            lambda d: d["pileup"]["puppi"]["regions"][0].update(low_pu_correction="yes"),
            "regions[0].low_pu_correction",
            "true or false",
        ),
        (lambda d: d["pileup"].update(z_maxx=1.0), "pileup.z_maxx", "did you mean 'z_max'"),
        (
            lambda d: d["pileup"]["charged_subtraction"].update(z_resolution=-0.1),
            "charged_subtraction.z_resolution",
            ">= 0",
        ),
        (lambda d: d["pileup"]["puppi"].update(regions=[]), "puppi.regions", "non-empty"),
    ],
)
def test_bad_pileup_settings_name_file_field_and_value(mutate, field: str, text: str) -> None:
    data = copy.deepcopy(_raw())
    mutate(data)
    with pytest.raises(DataError) as error:
        parse_card(data, "my_card.yaml")
    message = str(error.value)
    assert "my_card.yaml" in message and field in message and text in message
    assert "found" in message


# ---------------------------------------------------------------- PUPPI


def test_alpha_sums_primary_charged_in_the_cone_and_skips_the_particle_itself() -> None:
    # particle 0 at (0, 0); references at dR 0.1 (pT 2), 0.2 (pT 3), 0.5 (outside, pT 100) and
    # one on top of particle 0 (dR^2 < 1e-4, skipped); particle 5 across the phi wrap
    eta = np.array([0.0, 0.1, 0.0, 0.5, 0.001, 0.0])
    phi = np.array([0.0, 0.0, 0.2, 0.0, 0.0, math.pi - 0.05])
    pt = np.array([1.0, 2.0, 3.0, 100.0, 50.0, 1.0])
    reference = np.array([False, True, True, True, True, False])
    cone = np.full(6, 0.4)
    found = alpha(pt, eta, phi, cone, reference)
    assert found[0] == pytest.approx(math.log(4 / 0.01 + 9 / 0.04))
    np.testing.assert_allclose(found[5], 0.0)  # no reference in its cone: 0
    wrapped = alpha(
        np.array([1.0, 2.0]),
        np.array([0.0, 0.0]),
        np.array([-math.pi + 0.05, math.pi - 0.05]),
        np.full(2, 0.4),
        np.array([False, True]),
    )
    assert wrapped[0] == pytest.approx(math.log(4 / 0.1**2))


def test_median_and_rms_follow_the_delphes_rules() -> None:
    values = np.array([4.0, 0.0, -1.0, 3.0, 0.0, 2.0])
    # sorted [-1, 0, 0, 2, 3, 4]: the median skips past the last 0 (index 2): index 2 + 2 = 4
    median, rms = median_and_rms(values, np.array([]), REGION)
    assert median == 3.0
    assert rms == pytest.approx(math.sqrt((16 + 1 + 0 + 1) / 4))  # zeros left out
    low = replace(REGION, low_pu_correction=True)
    median, rms = median_and_rms(values, np.array([]), low)  # no primary tracks: no shift
    assert (median, rms) == pytest.approx((3.0, math.sqrt((16 + 1 + 0) / 3)))
    # one of two primary values below the median: adjust = 1 / (1 + 0.5 * 6)
    median, rms = median_and_rms(values, np.array([1.0, 5.0]), low)
    before = math.sqrt(17 / 3)
    shift = math.sqrt(statistics.NormalDist().inv_cdf((1 + 0.25) / 2) ** 2 * before)
    assert (median, rms) == pytest.approx((3.0 - shift, before - shift))
    assert median_and_rms(np.array([]), np.array([1.0]), REGION) is None


def _event(rng: np.random.Generator, soft_primary: int = 0) -> dict[str, np.ndarray]:
    """A hard jet of primary-vertex tracks at (0, 0), ``soft_primary`` soft primary tracks
    anywhere, and 400 soft pileup tracks (away from the jet when there are no soft ones)."""
    pileup_eta = rng.uniform(-2.4, 2.4, 400)
    pileup_phi = rng.uniform(-math.pi, math.pi, 400)
    if soft_primary == 0:
        away = np.hypot(pileup_eta, pileup_phi) > 1.0
        pileup_eta, pileup_phi = pileup_eta[away], pileup_phi[away]
    primary = 20 + soft_primary
    return {
        "pt": np.concatenate(
            [
                np.full(20, 20.0),
                rng.uniform(0.5, 2.0, soft_primary),
                rng.uniform(0.3, 1.5, len(pileup_eta)),
            ]
        ),
        "eta": np.concatenate(
            [rng.normal(0.0, 0.05, 20), rng.uniform(-2.4, 2.4, soft_primary), pileup_eta]
        ),
        "phi": np.concatenate(
            [rng.normal(0.0, 0.05, 20), rng.uniform(-math.pi, math.pi, soft_primary), pileup_phi]
        ),
        "category": np.concatenate(
            [np.full(primary, PRIMARY_CHARGED), np.full(len(pileup_eta), PILEUP_CHARGED)]
        ),
    }


def _with_neutrals(event: dict[str, np.ndarray], neutrals: list[tuple[float, float, float]]):
    pt, eta, phi = (np.array(column, dtype=float) for column in zip(*neutrals, strict=True))
    return (
        np.concatenate([event["pt"], pt]),
        np.concatenate([event["eta"], eta]),
        np.concatenate([event["phi"], phi]),
        np.concatenate([event["category"], np.full(len(pt), NEUTRAL)]),
    )


def test_neutral_near_the_primary_jet_keeps_weight_one_and_isolated_neutral_gets_zero() -> None:
    event = _event(np.random.default_rng(1))
    # a neutral inside the hard jet; an isolated one among pileup; one in no region (eta 3)
    pt, eta, phi, category = _with_neutrals(event, [(5.0, 0.05, 0.03), (1.0, 1.6, 2.5)])
    card = _card()
    weights = puppi_weights(pt, eta, phi, category, card, interactions=50)
    near, isolated = weights[-2:]
    assert near > 0.99
    assert isolated < 0.01
    np.testing.assert_array_equal(weights[category == PRIMARY_CHARGED], 1.0)
    np.testing.assert_array_equal(weights[category == PILEUP_CHARGED], 0.0)
    # outside every region (|eta| > 2.5 here) a neutral keeps weight 1
    pt, eta, phi, category = _with_neutrals(event, [(1.0, 3.0, 2.5)])
    assert puppi_weights(pt, eta, phi, category, card, interactions=50)[-1] == 1.0


def test_weights_below_the_minimum_and_soft_neutrals_are_zero() -> None:
    rng = np.random.default_rng(2)
    event = _event(rng, soft_primary=60)
    count = 300
    neutrals = list(
        zip(
            rng.uniform(0.5, 3.0, count),
            rng.uniform(-0.6, 0.6, count),
            rng.uniform(-0.6, 0.6, count),
            strict=True,
        )
    )
    pt, eta, phi, category = _with_neutrals(event, neutrals)
    raw = puppi_weights(pt, eta, phi, category, _card(), interactions=50)[-count:]
    assert np.any((raw > 0) & (raw < 0.05)) and np.any(raw > 0.5)  # the cut has work to do
    cut = replace(_card(), min_weight=0.05)
    weights = puppi_weights(pt, eta, phi, category, cut, interactions=50)[-count:]
    np.testing.assert_array_equal(weights, np.where(raw < 0.05, 0.0, raw))
    # neutral threshold: 0.2 + 0.006 x NPV with NPV = int(0.7 x 51) = 35
    assert vertex_count(cut, 50, category) == 35
    assert vertex_count(cut, 50, np.array([PRIMARY_CHARGED, NEUTRAL])) == 1
    slope = replace(cut, regions=(replace(REGION, neutral_pt_min=0.2, neutral_pt_slope=0.006),))
    threshold = 0.2 + 0.006 * 35
    weights = puppi_weights(pt, eta, phi, category, slope, interactions=50)[-count:]
    kept = (raw >= 0.05) & (raw * pt[-count:] >= threshold)
    np.testing.assert_array_equal(weights, np.where(kept, raw, 0.0))


def test_without_pileup_tracks_every_neutral_keeps_weight_one() -> None:
    event = _event(np.random.default_rng(3))
    primary = event["category"] == PRIMARY_CHARGED
    pt, eta, phi, category = _with_neutrals(
        {key: value[primary] for key, value in event.items()}, [(2.0, 1.5, 2.0), (3.0, 0.1, 0.0)]
    )
    weights = puppi_weights(pt, eta, phi, category, _card(), interactions=0)
    np.testing.assert_array_equal(weights, 1.0)


# ---------------------------------------------------------------- charged-hadron subtraction


def _candidates(rows: list[tuple[float, float, float, int, int, float]]) -> Candidates:
    """Candidates from (pT, eta, phi, kind, source, production z); charged unless a photon or
    a neutral hadron."""
    pt, eta, phi, kind, source, z = (np.array(column) for column in zip(*rows, strict=True))
    charged = ~np.isin(kind, (PHOTON, NEUTRAL_HADRON))
    count = len(pt)
    return Candidates(
        px=pt * np.cos(phi),
        py=pt * np.sin(phi),
        pz=pt * np.sinh(eta),
        energy=pt * np.cosh(eta),
        charge=np.where(charged, 1.0, 0.0).astype(np.float32),
        kind=kind.astype(np.int8),
        d0=np.zeros(count),
        d0_error=np.zeros(count),
        dz=np.where(charged, z, 0.0),
        dz_error=np.zeros(count),
        origin=np.zeros(count, dtype=np.int8),
        source=source.astype(np.int32),
        vertex_x=np.where(charged, 0.0, np.nan),
        vertex_y=np.where(charged, 0.0, np.nan),
        vertex_z=np.where(charged, z, np.nan),
    )


def test_charged_subtraction_removes_pileup_tracks_beyond_the_z_resolution(
    jetclass2: DelphesCard,
) -> None:
    candidates = _candidates(
        [
            (10.0, 0.0, 0.0, CHARGED_HADRON, 0, 0.0),  # primary vertex: kept
            (10.0, 0.0, 0.1, CHARGED_HADRON, 0, 0.5),  # primary vertex, displaced decay: kept
            (2.0, 0.5, 1.0, CHARGED_HADRON, 3, 12.0),  # pileup at 12 mm: removed
            (2.0, 0.5, 1.2, CHARGED_HADRON, 4, 0.05),  # pileup within 0.1 mm: kept
            (2.0, 0.5, 1.4, ELECTRON, 3, -8.0),  # pileup electron: removed
            (4.0, 0.2, 0.0, PHOTON, 3, 0.0),  # neutrals are never removed by CHS
        ]
    )
    np.testing.assert_array_equal(
        pileup_tracks(candidates, 0.1), [False, False, True, False, True, False]
    )
    chs = replace(jetclass2.pileup, puppi=None)
    kept = mitigate(candidates, chs, interactions=10)
    np.testing.assert_array_equal(kept.source, [0, 0, 4, 3])
    np.testing.assert_array_equal(kept.px, candidates.px[[0, 1, 3, 5]])


def test_puppi_scales_neutral_momenta_and_keeps_leptons(jetclass2: DelphesCard) -> None:
    rows = [(20.0, 0.05 * k, 0.02 * k, CHARGED_HADRON, 0, 0.0) for k in range(10)]
    rows += [(0.8, 1.5, -2.0 + 0.3 * k, CHARGED_HADRON, 1 + k, 5.0 + k) for k in range(10)]
    rows += [
        (5.0, 0.1, 0.1, ELECTRON, 0, 0.0),  # primary electron: bypasses PUPPI, kept
        (3.0, 0.12, 0.05, PHOTON, 0, 0.0),  # neutral in the hard jet: weight ~ 1
        (0.9, 1.55, -1.0, NEUTRAL_HADRON, 4, 0.0),  # neutral among pileup: removed
    ]
    candidates = _candidates(rows)
    kept = mitigate(candidates, jetclass2.pileup, interactions=10)
    assert (kept.kind == ELECTRON).sum() == 1
    assert (kept.source[kept.charge != 0] == 0).all()  # every pileup track is 50+ mm away
    neutral = kept.charge == 0
    assert neutral.sum() == 1 and kept.kind[neutral][0] == PHOTON
    weight = kept.energy[neutral][0] / candidates.energy[-2]
    assert 0.9 < weight <= 1.0
    np.testing.assert_allclose(kept.px[neutral], candidates.px[-2] * weight)


def test_primary_frame_shifts_track_dz_and_production_z_only() -> None:
    candidates = _candidates(
        [(10.0, 0.0, 0.0, CHARGED_HADRON, 0, 30.0), (4.0, 0.2, 0.0, PHOTON, 0, 0.0)]
    )
    shifted = to_primary_frame(candidates, 30.0)
    np.testing.assert_allclose(shifted.dz, [0.0, 0.0])
    np.testing.assert_allclose(shifted.vertex_z[:1], [0.0])
    assert np.isnan(shifted.vertex_z[1])
    assert to_primary_frame(candidates, 0.0) is candidates


# ---------------------------------------------------------------- the runner's pileup step


def _particles(count: int) -> GenParticles:
    zeros = np.zeros(count)
    return GenParticles(
        px=np.ones(count),
        py=zeros,
        pz=zeros,
        energy=np.ones(count),
        vx=zeros,
        vy=zeros,
        vz=zeros.copy(),
        charge=np.ones(count),
        pdg_id=np.full(count, 211),
        origin=np.zeros(count, dtype=np.int8),
        source=np.zeros(count, dtype=np.int32),
    )


def test_pileup_off_leaves_particles_candidates_and_random_stream_alone() -> None:
    for name in ("jetclass", "default"):
        rng = np.random.default_rng(5)
        state = copy.deepcopy(rng.bit_generator.state)
        pileup = _Pileup(load_card(name), seed=1, rng=rng)
        particles = _particles(3)
        assert pileup.overlay(particles) is particles
        candidates = _candidates([(10.0, 0.0, 0.0, CHARGED_HADRON, 0, 0.0)])
        assert pileup.finish(candidates) is candidates
        assert rng.bit_generator.state == state


def test_spread_primary_vertex_moves_the_event_and_finish_moves_it_back(
    jetclass2: DelphesCard,
) -> None:
    card = jetclass2.with_pileup(0)  # no Pythia: only the primary vertex is drawn
    pileup = _Pileup(card, seed=1, rng=np.random.default_rng(7))
    moved = pileup.overlay(_particles(2))
    assert pileup.primary_z != 0.0 and abs(pileup.primary_z) <= 250.0
    np.testing.assert_allclose(moved.vz, pileup.primary_z)
    track = _candidates([(10.0, 0.0, 0.0, CHARGED_HADRON, 0, pileup.primary_z)])
    np.testing.assert_allclose(pileup.finish(track).dz, 0.0, atol=1e-12)


# ---------------------------------------------------------------- the validation benchmark


def test_validation_matches_jets_of_the_same_event_across_conditions() -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_pileup_validation.py"
    spec = importlib.util.spec_from_file_location("bench_pileup_validation", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    big = (1 << 60) + 1  # event ids beyond 2^53 must not collide
    reference = {
        "event_id": np.array([big, big + 1, 7]),
        "jet_eta": np.array([0.5, -1.0, 0.0]),
        "jet_phi": np.array([3.1, 0.0, 1.0]),
    }
    shifted = {
        "event_id": np.array([7, big, big + 1, big]),
        "jet_eta": np.array([0.0, -0.5, -1.05, 0.52]),
        "jet_phi": np.array([1.0, 0.0, 0.05, -3.1]),  # across the phi wrap
    }
    jets = {name: shifted for name in bench.CONDITIONS}
    jets["no_pileup"] = reference
    jets["pileup"] = {key: value[:3] for key, value in shifted.items()}  # loses the wrapped jet
    matched = bench.match(jets)
    np.testing.assert_array_equal(matched["no_pileup"], [1, 2])
    np.testing.assert_array_equal(matched["pileup_chs"], [2, 0])
