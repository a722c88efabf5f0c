"""The detector card: a YAML file of every number of the parametrized detector, validated."""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from foundation.errors import DataError
from foundation.simulation.delphes_card import DelphesCard, OutputConventions, parse_delphes_card

DEFAULT_CARD = "jetclass"
"""The card used when none is named (``foundation simulate``, ``data.simulate``, the benchmarks):
JetClass's own Delphes card and ntupliser conventions, whose jets the JetClass-trained
ParticleNet (full inputs) recognises at 0.841 against 0.465 for the ``default`` card's (README,
zero-shot table). The ``default`` card (``generic-lhc-v1``) stays loadable by name, unchanged:
what was measured with it (``jetformer-tiny.sim20k`` / ``.sim300k``, the benchmark-suite
recipes, the quickstart) pins it."""
MODELS = ("parametric", "delphes")
"""Detector models a card may name with ``model:`` (absent = ``parametric``, the ``default``
card's)."""


@dataclass(frozen=True)
class TrackerCard:
    """Inner tracker: acceptance, efficiency, momentum and impact-parameter resolution."""

    eta_max: float
    pt_min: float
    efficiency_low_pt: float
    efficiency_high_pt: float
    efficiency_pt_threshold: float
    pt_resolution_constant: float
    pt_resolution_slope: float
    d0_resolution_constant: float
    d0_resolution_pt: float
    dz_resolution_constant: float
    dz_resolution_pt: float


@dataclass(frozen=True)
class CalorimeterCard:
    """One calorimeter: acceptance, cell size, energy resolution and cell threshold."""

    eta_max: float
    cell_eta: float
    cell_phi: float
    stochastic: float
    constant: float
    noise: float
    threshold: float


@dataclass(frozen=True)
class IdentificationCard:
    """Lepton identification efficiencies of tracked electrons and muons."""

    electron_efficiency: float
    muon_efficiency: float


@dataclass(frozen=True)
class PileupCard:
    """Overlay of minimum-bias interactions (off when ``mean_interactions`` is 0)."""

    mean_interactions: float
    z_sigma: float


@dataclass(frozen=True)
class DetectorCard:
    """Every number of the parametrized detector (see ``cards/default.yaml`` for units)."""

    name: str
    tracker: TrackerCard
    ecal: CalorimeterCard
    hcal: CalorimeterCard
    identification: IdentificationCard
    pileup: PileupCard

    @property
    def model(self) -> str:
        """The detector model of this card (a property: the card's digest is unchanged by it)."""
        return "parametric"

    @property
    def output(self) -> OutputConventions:
        """How jets are written: ``eta - jet_eta``, two leading jets an event, every constituent."""
        return OutputConventions()

    def to_dict(self) -> dict[str, Any]:
        """The card as a plain dictionary (what is written in file metadata)."""
        return asdict(self)

    def digest(self) -> str:
        """A short sha256 of the card's content, recorded with every simulated shard."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_pileup(self, mean_interactions: float) -> DetectorCard:
        """A copy with another mean number of pileup interactions."""
        pileup = PileupCard(mean_interactions=mean_interactions, z_sigma=self.pileup.z_sigma)
        return DetectorCard(
            name=self.name,
            tracker=self.tracker,
            ecal=self.ecal,
            hcal=self.hcal,
            identification=self.identification,
            pileup=pileup,
        )


_SectionT = TypeVar("_SectionT")


def _section(source: str, name: str, values: Any, cls: type[_SectionT]) -> _SectionT:
    """Validate one section of the card into its dataclass, naming any bad key or value."""
    if not isinstance(values, dict):
        raise DataError(source, name, "a mapping of settings", type(values).__name__)
    expected = [field.name for field in fields(cls)]  # type: ignore[arg-type]
    for key in values:
        if key not in expected:
            close = difflib.get_close_matches(str(key), expected, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(expected)}"
            raise DataError(source, f"{name}.{key}", "a known setting", "an unknown key", hint)
    missing = [key for key in expected if key not in values]
    if missing:
        raise DataError(source, name, f"settings {', '.join(expected)}", f"{missing} missing")
    parsed = {}
    for key in expected:
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise DataError(source, f"{name}.{key}", "a non-negative number", repr(value))
        parsed[key] = float(value)
    return cls(**parsed)


AnyCard = DetectorCard | DelphesCard
"""A validated card of either detector model."""


def parse_card(data: Any, source: str = "<card>") -> AnyCard:
    """Validate a card given as a dictionary (as read from YAML); ``model:`` picks the schema."""
    if not isinstance(data, dict):
        raise DataError(source, "<top level>", "a mapping", type(data).__name__)
    model = data.get("model", "parametric")
    if model not in MODELS:
        raise DataError(source, "model", f"one of {', '.join(MODELS)}", repr(model))
    if model == "delphes":
        return parse_delphes_card(data, source)
    data = {key: value for key, value in data.items() if key != "model"}
    sections = {
        "tracker": TrackerCard,
        "ecal": CalorimeterCard,
        "hcal": CalorimeterCard,
        "identification": IdentificationCard,
        "pileup": PileupCard,
    }
    known = ["name", *sections]
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known sections: {known}"
            raise DataError(source, str(key), "a known section", "an unknown key", hint)
    parsed = {name: _section(source, name, data.get(name), cls) for name, cls in sections.items()}
    for name in ("tracker", "identification"):
        section = parsed[name]
        for key, value in asdict(section).items():
            if "efficiency" in key and key != "efficiency_pt_threshold" and value > 1:
                raise DataError(source, f"{name}.{key}", "an efficiency in [0, 1]", value)
    return DetectorCard(name=str(data.get("name", "unnamed")), **parsed)


def load_card(card: str | Path = DEFAULT_CARD) -> AnyCard:
    """Load a detector card: a shipped name or a YAML path (no argument: :data:`DEFAULT_CARD`).

    Shipped names: ``jetclass`` (the default), ``jetclass2`` (with JetClass-II's pileup) and
    ``default`` (``generic-lhc-v1``, the parametrized detector of the earlier results).
    """
    path = Path(card)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"detector card {path} does not exist")
        text = path.read_text()
        source = str(path)
    else:
        shipped = resources.files("foundation.simulation") / "cards" / f"{card}.yaml"
        if not shipped.is_file():
            names = sorted(
                entry.name.removesuffix(".yaml")
                for entry in (resources.files("foundation.simulation") / "cards").iterdir()
                if entry.name.endswith(".yaml")
            )
            raise KeyError(f"unknown detector card {card!r}; shipped cards: {names}, or a path")
        text = shipped.read_text()
        source = f"foundation/simulation/cards/{card}.yaml"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise DataError(source, "<yaml>", "valid YAML", str(error).splitlines()[0]) from None
    return parse_card(data, source)
