"""Physics validation of simulated jets: plots and a table of checks that the data is physical.

Checks (each reported with its measured value and the expected range):

- soft-drop mass peaks near m_t, m_W, m_Z and m_H for the corresponding classes;
- the QCD jet pT spectrum falls;
- gluon jets have more candidates than quark jets;
- tracks from b-hadron decays have larger |d0|/sigma(d0) than other tracks;
- the detector-to-particle-level jet pT response is near one with a resolution of a few percent.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from foundation.data.schema import JETCLASS_LABELS, ORIGIN_CLASSES, QUARK_GLUON_LABELS, TREE_NAME
from foundation.errors import DataError
from foundation.extras import requires_extra

_BRANCHES = (
    "jet_pt",
    "jet_sdmass",
    "jet_nparticles",
    "jet_truth_pt",
    "part_d0val",
    "part_d0err",
    "part_charge",
    "part_origin",
)
MASS_WINDOWS: dict[str, tuple[float, float]] = {
    "label_Tbqq": (140.0, 200.0),
    "label_Wqq": (65.0, 95.0),
    "label_Zqq": (75.0, 105.0),
    "label_Hbb": (100.0, 140.0),
    "label_Hcc": (100.0, 140.0),
    "label_Hgg": (100.0, 140.0),
    "label_H4q": (100.0, 140.0),
}
"""Expected position of the soft-drop mass peak (GeV) per class."""


@dataclass
class Check:
    """One validation check: what was measured, what was expected, and whether it holds."""

    name: str
    value: float
    expected: str
    passed: bool
    jets: int


def _read(paths: list[Path]) -> dict[str, np.ndarray]:
    """Read the validation branches and labels of simulated files into numpy arrays."""
    import awkward as ak
    import uproot

    columns: dict[str, list] = {}
    labels = [*JETCLASS_LABELS, *QUARK_GLUON_LABELS]
    for path in paths:
        try:
            with uproot.open(path) as file:
                tree = file[TREE_NAME]
                present = [name for name in (*_BRANCHES, *labels) if name in tree]
                missing = [name for name in _BRANCHES if name not in tree]
                if missing:
                    raise DataError(
                        path,
                        missing[0],
                        "a simulated file with truth branches",
                        "the branch is missing",
                    )
                arrays = tree.arrays(present, library="ak")
        except DataError:
            raise
        except Exception as error:
            raise DataError(
                path, "<file>", "a readable ROOT file", f"{type(error).__name__}: {error}"
            ) from None
        for name in (*_BRANCHES, *labels):
            value = arrays[name] if name in present else np.zeros(len(arrays), dtype=bool)
            columns.setdefault(name, []).append(value)
    result: dict[str, np.ndarray] = {}
    for name, parts in columns.items():
        joined = ak.concatenate(parts)
        result[name] = joined if name.startswith("part_") else ak.to_numpy(joined)
    return {name: value for name, value in result.items() if name in _BRANCHES or value.any()}


def _peak(values: np.ndarray, low: float = 20.0, high: float = 300.0, width: float = 10.0) -> float:
    """Centre of the most populated bin of a histogram (the mass peak)."""
    counts, edges = np.histogram(values, bins=np.arange(low, high + width, width))
    index = int(np.argmax(counts))
    return float(0.5 * (edges[index] + edges[index + 1]))


def run_checks(data: dict[str, np.ndarray]) -> list[Check]:
    """Evaluate every check that the sample allows (a class absent from it is skipped)."""
    import awkward as ak

    checks: list[Check] = []
    for label, (low, high) in MASS_WINDOWS.items():
        if label in data and data[label].sum() >= 20:
            masses = data["jet_sdmass"][data[label].astype(bool)]
            peak = _peak(masses)
            checks.append(
                Check(
                    f"soft-drop mass peak, {label[6:]} (GeV)",
                    peak,
                    f"{low:.0f}-{high:.0f}",
                    low <= peak <= high,
                    len(masses),
                )
            )
    if "label_QCD" in data and data["label_QCD"].sum() >= 50:
        pt = data["jet_pt"][data["label_QCD"].astype(bool)]
        counts = np.histogram(pt, bins=[500, 600, 700, 800])[0]
        ratio = float(counts[1] / max(counts[0], 1))
        checks.append(
            Check(
                "QCD jets in pT 600-700 / 500-600",
                ratio,
                "< 1 (falling)",
                bool(counts[0] > counts[1] > counts[2]),
                len(pt),
            )
        )
    if (
        "label_gluon" in data
        and data["label_gluon"].sum() >= 20
        and data["label_quark"].sum() >= 20
    ):
        gluon = data["jet_nparticles"][data["label_gluon"].astype(bool)].mean()
        quark = data["jet_nparticles"][data["label_quark"].astype(bool)].mean()
        checks.append(
            Check(
                "mean candidates, gluon / quark jets",
                float(gluon / quark),
                "> 1",
                bool(gluon > quark),
                int(data["label_gluon"].sum() + data["label_quark"].sum()),
            )
        )
    charged = ak.flatten(data["part_charge"] != 0)
    significance = np.abs(ak.to_numpy(ak.flatten(data["part_d0val"]))) / np.maximum(
        ak.to_numpy(ak.flatten(data["part_d0err"])), 1e-9
    )
    origin = ak.to_numpy(ak.flatten(data["part_origin"]))
    charged = ak.to_numpy(charged)
    from_b = charged & (origin == ORIGIN_CLASSES.index("b_hadron"))
    prompt = (
        charged
        & (origin != ORIGIN_CLASSES.index("b_hadron"))
        & (origin != ORIGIN_CLASSES.index("c_hadron"))
    )
    if from_b.sum() >= 20 and prompt.sum() >= 20:
        ratio = float(np.median(significance[from_b]) / np.median(significance[prompt]))
        checks.append(
            Check(
                "median |d0|/sigma(d0), b-hadron / prompt tracks",
                ratio,
                "> 2",
                ratio > 2,
                int(from_b.sum()),
            )
        )
    response = data["jet_pt"] / data["jet_truth_pt"]
    median = float(np.median(response))
    checks.append(
        Check(
            "jet pT response median (reco / particle level)",
            median,
            "0.95-1.05",
            0.95 <= median <= 1.05,
            len(response),
        )
    )
    low, high = np.percentile(response, [16, 84])
    resolution = float((high - low) / 2 / median)
    checks.append(
        Check(
            "jet pT resolution (half 16-84% width / median)",
            resolution,
            "0.01-0.08",
            0.01 <= resolution <= 0.08,
            len(response),
        )
    )
    return checks


def _plots(data: dict[str, np.ndarray], out: Path) -> list[Path]:
    import awkward as ak

    with requires_extra("train"):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

    written = []
    figure, axis = plt.subplots(figsize=(6, 4))
    for label in ("label_QCD", *MASS_WINDOWS):
        if label in data and data[label].sum() > 0:
            masses = data["jet_sdmass"][data[label].astype(bool)]
            axis.hist(
                masses, bins=np.arange(0, 305, 5), histtype="step", density=True, label=label[6:]
            )
    axis.set_xlabel("soft-drop mass [GeV]")
    axis.set_ylabel("density")
    axis.legend(fontsize=7)
    written.append(out / "sdmass.png")
    figure.savefig(written[-1], dpi=100, bbox_inches="tight")
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(6, 4))
    axis.hist(data["jet_pt"], bins=np.arange(450, 1050, 25), histtype="step", label="all jets")
    if "label_QCD" in data:
        axis.hist(
            data["jet_pt"][data["label_QCD"].astype(bool)],
            bins=np.arange(450, 1050, 25),
            histtype="step",
            label="QCD",
        )
    axis.set_yscale("log")
    axis.set_xlabel("jet pT [GeV]")
    axis.legend()
    written.append(out / "jet_pt.png")
    figure.savefig(written[-1], dpi=100, bbox_inches="tight")
    plt.close(figure)

    if "label_gluon" in data:
        figure, axis = plt.subplots(figsize=(6, 4))
        for label in QUARK_GLUON_LABELS:
            selected = data["jet_nparticles"][data[label].astype(bool)]
            axis.hist(
                selected, bins=np.arange(0, 120, 3), histtype="step", density=True, label=label[6:]
            )
        axis.set_xlabel("candidates per jet")
        axis.legend()
        written.append(out / "multiplicity_quark_gluon.png")
        figure.savefig(written[-1], dpi=100, bbox_inches="tight")
        plt.close(figure)

    figure, axis = plt.subplots(figsize=(6, 4))
    charged = ak.to_numpy(ak.flatten(data["part_charge"] != 0))
    significance = np.abs(ak.to_numpy(ak.flatten(data["part_d0val"]))) / np.maximum(
        ak.to_numpy(ak.flatten(data["part_d0err"])), 1e-9
    )
    origin = ak.to_numpy(ak.flatten(data["part_origin"]))
    for index, name in enumerate(ORIGIN_CLASSES):
        selected = significance[charged & (origin == index)]
        if len(selected):
            axis.hist(
                np.clip(selected, 0, 49.9),
                bins=np.arange(0, 50.5, 0.5),
                histtype="step",
                density=True,
                label=name,
            )
    axis.set_yscale("log")
    axis.set_xlabel("|d0| / sigma(d0) of tracks")
    axis.legend()
    written.append(out / "d0_significance.png")
    figure.savefig(written[-1], dpi=100, bbox_inches="tight")
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(6, 4))
    axis.hist(
        data["jet_pt"] / data["jet_truth_pt"], bins=np.linspace(0.7, 1.3, 61), histtype="step"
    )
    axis.set_xlabel("jet pT response (detector / particle level)")
    written.append(out / "response.png")
    figure.savefig(written[-1], dpi=100, bbox_inches="tight")
    plt.close(figure)
    return written


def format_table(checks: list[Check]) -> str:
    """The checks as a Markdown table."""
    lines = ["| check | value | expected | jets | ok |", "| --- | ---: | --- | ---: | --- |"]
    for check in checks:
        lines.append(
            f"| {check.name} | {check.value:.3f} | {check.expected} | {check.jets} | "
            f"{'yes' if check.passed else 'NO'} |"
        )
    return "\n".join(lines)


def validate(paths: list[Path], out: Path) -> list[Check]:
    """Make the validation plots and table for simulated files; write them into ``out``.

    Writes ``validation.md``, ``validation.json`` and PNG plots; returns the checks.
    """
    if not paths:
        raise FileNotFoundError("no simulated .root files to validate")
    data = _read(paths)
    out.mkdir(parents=True, exist_ok=True)
    checks = run_checks(data)
    plots = _plots(data, out)
    (out / "validation.md").write_text(format_table(checks) + "\n")
    (out / "validation.json").write_text(
        json.dumps(
            {
                "files": [str(p) for p in paths],
                "checks": [asdict(c) for c in checks],
                "plots": [p.name for p in plots],
            },
            indent=2,
        )
    )
    return checks
