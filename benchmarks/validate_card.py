"""Old detector card beside new: every particle input of the JetClass networks, as histograms.

Run by hand on two folders of simulated shards (same processes and seed, two cards)::

    foundation simulate --process jetclass --jets 100 --seed 777 --card default \\
        --out /tmp/sim_default
    foundation simulate --process jetclass --jets 100 --seed 777 --card jetclass --out /tmp/sim_jc
    python benchmarks/validate_card.py --old /tmp/sim_default --new /tmp/sim_jc \\
        --out benchmarks/results/validate_card

Writes ``impact_parameters.png`` (d0, sigma(d0), dz, sigma(dz) and the significances d0/sigma(d0),
dz/sigma(dz) of tracks from b-hadron decays, from c-hadron decays and from the primary vertex),
``inputs.png`` (identity fractions, candidates per jet, constituent pT, soft-drop mass, and the
ParticleNet inputs tanh(d0), tanh(dz), part_deta) and ``summary.json`` (means and fractions).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from foundation.data.schema import ORIGIN_CLASSES, PRIMARY_VERTEX

IDENTITIES = ("ChargedHadron", "NeutralHadron", "Photon", "Electron", "Muon")
BRANCHES = (
    "part_px",
    "part_py",
    "part_deta",
    "part_d0val",
    "part_d0err",
    "part_dzval",
    "part_dzerr",
    "part_charge",
    "part_origin",
    "part_vertex",
    "jet_nparticles",
    "jet_sdmass",
    *(f"part_is{name}" for name in IDENTITIES),
)
ORIGINS = {
    "b-hadron decay": lambda a: a["part_origin"] == ORIGIN_CLASSES.index("b_hadron"),
    "c-hadron decay": lambda a: a["part_origin"] == ORIGIN_CLASSES.index("c_hadron"),
    "prompt (primary vertex)": lambda a: a["part_vertex"] == PRIMARY_VERTEX,
}
TRACK_QUANTITIES = {
    "d0 [mm]": (lambda a: a["part_d0val"], np.linspace(-1.0, 1.0, 81)),
    "sigma(d0) [mm]": (lambda a: a["part_d0err"], np.linspace(0.0, 0.4, 81)),
    "dz [mm]": (lambda a: a["part_dzval"], np.linspace(-1.5, 1.5, 81)),
    "sigma(dz) [mm]": (lambda a: a["part_dzerr"], np.linspace(0.0, 0.6, 81)),
    "d0 / sigma(d0)": (
        lambda a: a["part_d0val"] / np.where(a["part_d0err"] > 0, a["part_d0err"], np.nan),
        np.linspace(-30, 30, 81),
    ),
    "dz / sigma(dz)": (
        lambda a: a["part_dzval"] / np.where(a["part_dzerr"] > 0, a["part_dzerr"], np.nan),
        np.linspace(-30, 30, 81),
    ),
}


def read(folder: Path) -> ak.Array:
    """Every shard of ``folder`` (the branches above), concatenated."""
    paths = sorted(folder.glob("*.root"))
    if not paths:
        raise FileNotFoundError(f"{folder}: no .root shards")
    arrays = []
    for path in paths:
        with uproot.open(path) as file:
            arrays.append(file["tree"].arrays(list(BRANCHES)))
    return ak.concatenate(arrays)


def _flat(values: ak.Array) -> np.ndarray:
    return np.asarray(ak.to_numpy(ak.flatten(values, axis=None)), dtype=np.float64)


def track_values(arrays: ak.Array, origin: str, quantity: str) -> np.ndarray:
    """``quantity`` of the tracks (charged candidates) of one origin, flat, without NaN."""
    tracks = arrays["part_charge"] != 0
    chosen = tracks & ORIGINS[origin](arrays)
    values = _flat(TRACK_QUANTITIES[quantity][0](arrays)[chosen])
    return values[np.isfinite(values)]


def summary(arrays: ak.Array) -> dict[str, float]:
    """Means and fractions that tell the cards apart at a glance."""
    n = _flat(ak.num(arrays["part_px"]))
    result = {"jets": len(n), "candidates_per_jet": float(n.mean())}
    total = n.sum()
    for name in IDENTITIES:
        result[f"fraction_{name}"] = float(_flat(arrays[f"part_is{name}"]).sum() / total)
    tracks = arrays["part_charge"] != 0
    result["fraction_tracks_without_identity"] = float(
        _flat(tracks & (arrays["part_isChargedHadron"] + arrays["part_isElectron"]
                        + arrays["part_isMuon"] == 0)).sum() / total
    )  # fmt: skip
    for origin in ORIGINS:
        for quantity in ("sigma(d0) [mm]", "sigma(dz) [mm]"):
            values = track_values(arrays, origin, quantity)
            result[f"median {quantity} {origin}"] = float(np.median(values)) if len(values) else 0
        significance = track_values(arrays, origin, "d0 / sigma(d0)")
        result[f"fraction |d0/sigma| > 3 {origin}"] = (
            float((np.abs(significance) > 3).mean()) if len(significance) else 0.0
        )
    return result


def _histogram(axis, values: np.ndarray, bins: np.ndarray, label: str, color: str) -> None:
    clipped = np.clip(values, bins[0], bins[-1])
    axis.hist(clipped, bins=bins, density=True, histtype="step", label=label, color=color, lw=1.3)


def plot_impact_parameters(old: ak.Array, new: ak.Array, labels: tuple[str, str], path: Path):
    """One panel per (quantity, origin): old and new card overlaid, normalised, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(TRACK_QUANTITIES), len(ORIGINS), figsize=(4.2 * len(ORIGINS), 2.6 * 6)
    )
    for row, (quantity, (_, bins)) in enumerate(TRACK_QUANTITIES.items()):
        for column, origin in enumerate(ORIGINS):
            axis = axes[row, column]
            for arrays, label, color in ((old, labels[0], "tab:blue"), (new, labels[1], "tab:red")):
                values = track_values(arrays, origin, quantity)
                _histogram(axis, values, bins, f"{label} ({len(values)} tracks)", color)
            axis.set_yscale("log")
            axis.set_xlabel(f"{quantity} (clipped to the range)")
            if row == 0:
                axis.set_title(f"tracks from {origin}")
            axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def plot_inputs(old: ak.Array, new: ak.Array, labels: tuple[str, str], path: Path) -> None:
    """Identity fractions, multiplicity, constituent pT, soft-drop mass and three inputs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 4, figsize=(18, 7.5))
    pairs = ((old, labels[0], "tab:blue"), (new, labels[1], "tab:red"))
    axis = axes[0, 0]
    positions = np.arange(len(IDENTITIES) + 1)
    for shift, (arrays, label, color) in zip((-0.2, 0.2), pairs, strict=True):
        info = summary(arrays)
        heights = [info[f"fraction_{name}"] for name in IDENTITIES]
        heights.append(info["fraction_tracks_without_identity"])
        axis.bar(positions + shift, heights, width=0.4, label=label, color=color)
    axis.set_xticks(positions, [*IDENTITIES, "track, no id"], rotation=30, fontsize=8)
    axis.set_ylabel("fraction of constituents")
    axis.legend(fontsize=8)
    panels = (
        (axes[0, 1], "candidates per jet", lambda a: _flat(ak.num(a["part_px"])),
         np.arange(0, 151, 3), False),
        (axes[0, 2], "constituent pT [GeV]",
         lambda a: _flat(np.hypot(a["part_px"], a["part_py"])), np.logspace(-1.5, 3, 61), True),
        (axes[0, 3], "soft-drop mass [GeV]", lambda a: _flat(a["jet_sdmass"]),
         np.linspace(0, 300, 61), False),
        (axes[1, 0], "tanh(part_d0val), tracks",
         lambda a: _flat(np.tanh(a["part_d0val"][a["part_charge"] != 0])),
         np.linspace(-1, 1, 81), True),
        (axes[1, 1], "tanh(part_dzval), tracks",
         lambda a: _flat(np.tanh(a["part_dzval"][a["part_charge"] != 0])),
         np.linspace(-1, 1, 81), True),
        (axes[1, 2], "part_d0err (clipped to [0, 1]), tracks",
         lambda a: np.clip(_flat(a["part_d0err"][a["part_charge"] != 0]), 0, 1),
         np.linspace(0, 1, 81), True),
        (axes[1, 3], "part_deta", lambda a: _flat(a["part_deta"]), np.linspace(-0.9, 0.9, 73),
         False),
    )  # fmt: skip
    for axis, title, values, bins, log in panels:
        for arrays, label, color in pairs:
            _histogram(axis, values(arrays), bins, label, color)
        axis.set_xlabel(title)
        if log:
            axis.set_yscale("log")
        if bins[0] > 0 and bins[-1] / bins[0] > 100:
            axis.set_xscale("log")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="shards made with the old card")
    parser.add_argument("--new", type=Path, required=True, help="shards made with the new card")
    parser.add_argument("--old-label", default="default card")
    parser.add_argument("--new-label", default="jetclass card")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args()
    old, new = read(args.old), read(args.new)
    labels = (args.old_label, args.new_label)
    args.out.mkdir(parents=True, exist_ok=True)
    plot_impact_parameters(old, new, labels, args.out / "impact_parameters.png")
    plot_inputs(old, new, labels, args.out / "inputs.png")
    result = {args.old_label: summary(old), args.new_label: summary(new)}
    (args.out / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    for key in result[args.old_label]:
        print(
            f"{key:<50} {result[args.old_label][key]:>10.4g} {result[args.new_label][key]:>10.4g}"
        )


if __name__ == "__main__":
    main()
