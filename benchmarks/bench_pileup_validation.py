"""Pileup validation: jet mass and multiplicity of the same events in four conditions.

Each hard-scatter event (one Pythia stream per process) is reconstructed twice with the jetclass2
card's detector: once alone (``no_pileup``), once with the card's pileup (Poisson mean 50, z
spread 53 mm, the primary vertex spread too). The pileup candidates are then written four ways:
as they are (``pileup``), after charged-hadron subtraction (``pileup_chs``), after CHS and
PUPPI (``pileup_chs_puppi``, what the jetclass2 card writes), and after CHS and only PUPPI's
neutral pT threshold (``pileup_chs_threshold``: every PUPPI weight 1, which is what Delphes'
RunPUPPI computes when no track enters its median, as when its tracks' ``RecoObj::charge``,
never set in RunPUPPI.cc, reads 0). Jets are selected as
``foundation simulate`` selects them, in each condition separately, and compared on the jets
found in every condition (same event, axes within dR < 0.4 of the no-pileup jet).

    python benchmarks/bench_pileup_validation.py --jets 200 --seed 11

writes ``benchmarks/results/pileup_validation.{json,md}``. The per-event steps are the runner's
own (``_reconstruct_event`` and its pileup overlay), so the comparison runs what a simulation
runs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from foundation.simulation import truth  # noqa: E402
from foundation.simulation.card import load_card  # noqa: E402
from foundation.simulation.delphes_card import DelphesCard  # noqa: E402
from foundation.simulation.detector import Candidates, Detector  # noqa: E402
from foundation.simulation.generator import Generator  # noqa: E402
from foundation.simulation.jets import EventTruth, JetTable, select_jets, substructure  # noqa: E402
from foundation.simulation.pileup_mitigation import mitigate  # noqa: E402
from foundation.simulation.processes import PROCESSES, Process  # noqa: E402
from foundation.simulation.runner import (  # noqa: E402
    EVENTS_PER_CALL,
    ShardSpec,
    _Pileup,
    _reconstruct_event,
)

CONDITIONS = ("no_pileup", "pileup", "pileup_chs", "pileup_chs_threshold", "pileup_chs_puppi")
MATCH_RADIUS = 0.4
TOP_WINDOW = (140.0, 200.0)
"""Soft-drop mass window of the top peak (as in foundation.simulation.validate)."""
MAX_EVENTS = 20_000


def _cards(card: DelphesCard) -> dict[str, DelphesCard]:
    """The card of each reconstruction: without pileup, and with pileup but no mitigation."""
    off = replace(card.pileup, charged_subtraction=None, puppi=None)
    return {
        "no_pileup": replace(
            card, pileup=replace(off, mean_interactions=0.0, spread_primary_vertex=False)
        ),
        "pileup": replace(card, pileup=off),
    }


def simulate(
    process: Process, n_jets: int, seed: int, card: DelphesCard
) -> tuple[dict[str, JetTable], dict[str, float]]:
    """Jets of every condition from one stream of hard events (until each has ``n_jets``)."""
    cards = _cards(card)
    chs = replace(card.pileup, puppi=None)
    puppi = card.pileup.puppi
    assert puppi is not None
    no_tracks = tuple(replace(region, rms_pt_min=math.inf) for region in puppi.regions)
    threshold = replace(card.pileup, puppi=replace(puppi, regions=no_tracks))
    pt_range = process.pt_range
    spec = ShardSpec(process.name, 0, n_jets, seed, pt_range, card, Path("unused.root"))
    generator = Generator(process.pythia_settings(pt_range, 0), spec.pythia_seed)
    steps = {}
    for offset, (name, condition_card) in enumerate(cards.items()):
        rng = np.random.default_rng(spec.pythia_seed + offset)
        steps[name] = (
            Detector(condition_card, rng),
            _Pileup(condition_card, spec.pythia_seed, rng),
        )
    tables = {name: JetTable() for name in CONDITIONS}
    candidates_per_event = {name: [] for name in CONDITIONS}
    interactions = []
    n_events = 0
    while min(len(table) for table in tables.values()) < n_jets and n_events < MAX_EVENTS:
        batch = generator.generate(EVENTS_PER_CALL)
        events: dict[str, list[tuple[Candidates, EventTruth]]] = {name: [] for name in CONDITIONS}
        for position in range(len(batch)):
            event = batch.event(position)
            event_id = (spec.pythia_seed << 24) | (n_events + position)
            alone = _reconstruct_event(event, event_id, process, generator, *steps["no_pileup"])
            if alone is None:
                continue
            detector, pileup = steps["pileup"]
            overlaid = _reconstruct_event(event, event_id, process, generator, detector, pileup)
            assert overlaid is not None  # the same event passes the same generator-level filter
            candidates, event_truth = overlaid
            interactions.append(pileup.interactions)
            events["no_pileup"].append(alone)
            events["pileup"].append(overlaid)
            events["pileup_chs"].append(
                (mitigate(candidates, chs, pileup.interactions), event_truth)
            )
            events["pileup_chs_threshold"].append(
                (mitigate(candidates, threshold, pileup.interactions), event_truth)
            )
            events["pileup_chs_puppi"].append(
                (mitigate(candidates, card.pileup, pileup.interactions), event_truth)
            )
            for name in CONDITIONS:
                candidates_per_event[name].append(len(events[name][-1][0]))
        n_events += len(batch)
        for name in CONDITIONS:
            select_jets(process, pt_range, events[name], tables[name])
    info = {
        "events": n_events,
        "reconstructed_events": len(interactions),
        "mean_interactions": float(np.mean(interactions)) if interactions else 0.0,
        **{
            f"candidates_per_event_{name}": float(np.mean(counts)) if counts else 0.0
            for name, counts in candidates_per_event.items()
        },
    }
    return tables, info


def _jet_arrays(table: JetTable, radius: float) -> dict[str, np.ndarray]:
    """Per-jet arrays: kinematics, soft-drop mass, counts and the pileup share of each jet."""
    arrays = {name: np.asarray(values, dtype=np.float64) for name, values in table.jets.items()}
    arrays["event_id"] = np.asarray(table.jets["event_id"], dtype=np.int64)  # beyond 2^53
    arrays.update({k: np.asarray(v, np.float64) for k, v in substructure(table, radius).items()})
    pileup_pt, pileup_count, charged, neutral = [], [], [], []
    for px, py, origin, charge in zip(
        table.particles["px"],
        table.particles["py"],
        table.particles["origin"],
        table.particles["charge"],
        strict=True,
    ):
        pt = np.hypot(px, py)
        from_pileup = origin == truth.PILEUP
        pileup_pt.append(float(pt[from_pileup].sum() / max(pt.sum(), 1e-12)))
        pileup_count.append(int(from_pileup.sum()))
        charged.append(int((charge != 0).sum()))
        neutral.append(int((charge == 0).sum()))
    arrays["pileup_pt_fraction"] = np.asarray(pileup_pt)
    arrays["pileup_constituents"] = np.asarray(pileup_count, dtype=np.float64)
    arrays["charged_constituents"] = np.asarray(charged, dtype=np.float64)
    arrays["neutral_constituents"] = np.asarray(neutral, dtype=np.float64)
    return arrays


def match(jets: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """For each condition, the index of the jet matched to each no-pileup jet (found in all).

    Returns:
        ``{condition: [M] int}`` aligned across conditions.
    """
    reference = jets["no_pileup"]
    chosen = {name: [] for name in CONDITIONS}
    for index in range(len(reference["event_id"])):
        found = {}
        for name in CONDITIONS:
            other = jets[name]
            same = np.flatnonzero(other["event_id"] == reference["event_id"][index])
            if len(same) == 0:
                break
            delta_phi = (
                np.remainder(
                    other["jet_phi"][same] - reference["jet_phi"][index] + np.pi, 2 * np.pi
                )
                - np.pi
            )
            distance = np.hypot(other["jet_eta"][same] - reference["jet_eta"][index], delta_phi)
            if distance.min() >= MATCH_RADIUS:
                break
            found[name] = int(same[np.argmin(distance)])
        else:
            for name in CONDITIONS:
                chosen[name].append(found[name])
    return {name: np.asarray(indices, dtype=np.int64) for name, indices in chosen.items()}


def summarize(arrays: dict[str, np.ndarray], process: Process) -> dict[str, float]:
    """The figures of one condition on the matched jets."""
    mass, truth_mass = arrays["jet_mass"], arrays["jet_truth_mass"]
    summary = {
        "jet_mass_mean": float(mass.mean()),
        "jet_mass_median": float(np.median(mass)),
        "jet_mass_minus_truth_mean": float((mass - truth_mass).mean()),
        "jet_mass_minus_truth_std": float((mass - truth_mass).std()),
        "jet_sdmass_mean": float(arrays["jet_sdmass"].mean()),
        "jet_sdmass_median": float(np.median(arrays["jet_sdmass"])),
        "jet_nparticles_mean": float(arrays["jet_nparticles"].mean()),
        "jet_nparticles_median": float(np.median(arrays["jet_nparticles"])),
        "charged_constituents_mean": float(arrays["charged_constituents"].mean()),
        "neutral_constituents_mean": float(arrays["neutral_constituents"].mean()),
        "pileup_constituents_mean": float(arrays["pileup_constituents"].mean()),
        "pileup_pt_fraction_mean": float(arrays["pileup_pt_fraction"].mean()),
        "jet_pt_response_mean": float((arrays["jet_pt"] / arrays["jet_truth_pt"]).mean()),
    }
    if process.resonance == 6:
        low, high = TOP_WINDOW
        sdmass = arrays["jet_sdmass"]
        summary["sdmass_in_top_window"] = float(((sdmass >= low) & (sdmass < high)).mean())
    return summary


ROWS = (
    ("jets", "matched jets", "{:.0f}"),
    ("jet_mass_mean", "mass mean (GeV)", "{:.1f}"),
    ("jet_mass_minus_truth_mean", "mass − particle-level mass, mean (GeV)", "{:+.1f}"),
    ("jet_mass_minus_truth_std", "mass − particle-level mass, std (GeV)", "{:.1f}"),
    ("jet_sdmass_median", "soft-drop mass median (GeV)", "{:.1f}"),
    ("sdmass_in_top_window", "soft-drop mass in 140–200 GeV", "{:.2f}"),
    ("jet_nparticles_mean", "constituents mean", "{:.1f}"),
    ("charged_constituents_mean", "charged constituents mean", "{:.1f}"),
    ("neutral_constituents_mean", "neutral constituents mean", "{:.1f}"),
    ("pileup_constituents_mean", "constituents from pileup (truth) mean", "{:.1f}"),
    ("pileup_pt_fraction_mean", "pT share from pileup (truth)", "{:.3f}"),
    ("jet_pt_response_mean", "pT / particle-level pT", "{:.3f}"),
)


def markdown(result: dict[str, Any]) -> str:
    """The result as a short markdown report."""
    lines = [
        "# Pileup validation: jet mass and multiplicity",
        "",
        f"Command: `{result['command']}` ({result['wall_seconds']:.0f} s on 1 core, shared "
        "machine). Card "
        f"`{result['card']}` (digest {result['card_digest']}): pileup Poisson mean "
        f"{result['mean_interactions']:g}, CHS and PUPPI as JetClass-II's Delphes card. The same "
        "hard events in each column; jets matched to the no-pileup jet (same event, dR < 0.4).",
        "",
    ]
    for name, process in result["processes"].items():
        info = process["info"]
        lines += [
            f"## {name}",
            "",
            f"{info['events']} events, {info['reconstructed_events']} reconstructed, "
            f"{info['mean_interactions']:.1f} pileup interactions on average; candidates per "
            "event: "
            + ", ".join(
                f"{condition} {info[f'candidates_per_event_{condition}']:.0f}"
                for condition in CONDITIONS
            )
            + ".",
            "",
            "| | " + " | ".join(CONDITIONS) + " |",
            "| --- | " + " | ".join("---:" for _ in CONDITIONS) + " |",
        ]
        for key, label, pattern in ROWS:
            if key != "jets" and key not in process["conditions"]["no_pileup"]:
                continue
            cells = [
                pattern.format(
                    process["matched_jets"] if key == "jets" else process["conditions"][c][key]
                )
                for c in CONDITIONS
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jets", type=int, default=200, help="jets per process and condition")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--process", default="tbqq,qcd", help="comma-separated processes")
    parser.add_argument("--card", default="jetclass2", help="a delphes card with pileup settings")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    card = load_card(args.card)
    if not isinstance(card, DelphesCard) or card.pileup.puppi is None:
        parser.error(f"--card {args.card}: expected a delphes card with pileup.puppi settings")
    start = time.perf_counter()
    result: dict[str, Any] = {
        "command": "python benchmarks/bench_pileup_validation.py " + " ".join(sys.argv[1:]),
        "card": card.name,
        "card_digest": card.digest(),
        "mean_interactions": card.pileup.mean_interactions,
        "seed": args.seed,
        "processes": {},
    }
    for name in args.process.split(","):
        process = PROCESSES[name]
        tables, info = simulate(process, args.jets, args.seed, card)
        jets = {c: _jet_arrays(tables[c], process.jet_radius) for c in CONDITIONS}
        matched = match(jets)
        result["processes"][name] = {
            "info": info,
            "selected_jets": {c: len(tables[c]) for c in CONDITIONS},
            "matched_jets": len(matched["no_pileup"]),
            "conditions": {
                c: summarize({k: v[matched[c]] for k, v in jets[c].items()}, process)
                for c in CONDITIONS
            },
        }
        print(f"{name}: {len(matched['no_pileup'])} matched jets", flush=True)
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pileup_validation.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "pileup_validation.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
