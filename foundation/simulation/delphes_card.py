"""The ``delphes`` detector model's card: binned tables of a Delphes card, validated.

A card with ``model: delphes`` (``cards/jetclass.yaml``) describes the detector the way a Delphes
card does: efficiencies and impact-parameter resolutions tabulated per (pT, |eta|) bin, calorimeter
towers as eta edges with a number of phi bins each, energy fractions per PDG id, particle-flow
thresholds, and the ntupliser's output conventions. Parsing turns it into frozen dataclasses; any
bad key or value is a :class:`~foundation.errors.DataError` naming the card and the field.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from foundation.errors import DataError


@dataclass(frozen=True)
class BinnedTable:
    """Values on a (|eta|, pT) grid; bins are ``lo < x <= hi`` and 0 outside every bin."""

    abs_eta_edges: tuple[float, ...]
    pt_edges: tuple[float, ...]
    values: tuple[tuple[float, ...], ...]

    def lookup(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """The value of the bin of each (pT, eta), 0 outside the table.

        Shapes:
            - pt, eta: ``[P]``; output ``[P]`` float64.
        """
        return binned_lookup(self.abs_eta_edges, self.pt_edges, self.values, pt, eta)


def _bin_index(edges: tuple[float, ...], value: np.ndarray) -> np.ndarray:
    """Bin of each value for ``lo < x <= hi`` bins (-1 below or at the first edge, or above)."""
    index = np.searchsorted(np.asarray(edges), value, side="left") - 1
    return np.where((index >= 0) & (index < len(edges) - 1), index, -1)


def binned_lookup(
    eta_edges: tuple[float, ...],
    pt_edges: tuple[float, ...],
    values: tuple[tuple[float, ...], ...],
    pt: np.ndarray,
    eta: np.ndarray,
) -> np.ndarray:
    """Table value at each (pT, |eta|), 0 outside (the Delphes ``(lo < x) * (x <= hi)`` sums).

    Shapes:
        - pt, eta: ``[P]``; values ``[len(eta_edges) - 1][len(pt_edges) - 1]``; output ``[P]``.
    """
    eta_bin = _bin_index(eta_edges, np.abs(eta))
    pt_bin = _bin_index(pt_edges, pt)
    inside = (eta_bin >= 0) & (pt_bin >= 0)
    table = np.asarray(values, dtype=np.float64)
    return np.where(inside, table[np.maximum(eta_bin, 0), np.maximum(pt_bin, 0)], 0.0)


@dataclass(frozen=True)
class MomentumResolution:
    """sigma(pT)/pT = sqrt(constant^2 + pT^2 slope^2) per |eta| bin (0 outside)."""

    abs_eta_edges: tuple[float, ...]
    constant: tuple[float, ...]
    slope: tuple[float, ...]

    def relative(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """Relative pT resolution of each track. Shapes: ``[P]`` in, ``[P]`` out."""
        index = _bin_index(self.abs_eta_edges, np.abs(eta))
        constant = np.asarray(self.constant)[np.maximum(index, 0)]
        slope = np.asarray(self.slope)[np.maximum(index, 0)]
        return np.where(index >= 0, np.hypot(constant, pt * slope), 0.0)


@dataclass(frozen=True)
class SpeciesTracking:
    """Tracking of one kind of charged particle: efficiency table and momentum resolution."""

    efficiency: BinnedTable
    momentum_resolution: MomentumResolution


@dataclass(frozen=True)
class TrackingCard:
    """Tracking of charged hadrons, electrons and muons (Delphes Efficiency + MomentumSmearing)."""

    charged_hadron: SpeciesTracking
    electron: SpeciesTracking
    muon: SpeciesTracking
    keep_momentum_smearing: bool


@dataclass(frozen=True)
class PropagationCard:
    """The magnetic-field cylinder (mm) and field (T) of Delphes' ParticlePropagator."""

    radius: float
    half_length: float
    bz: float


@dataclass(frozen=True)
class ImpactParameterCard:
    """d0 and dz resolutions (mm) per (pT, |eta|) bin, as TrackSmearing tabulates them."""

    pt_edges: tuple[float, ...]
    abs_eta_edges: tuple[float, ...]
    d0_resolution: tuple[tuple[float, ...], ...]
    dz_resolution: tuple[tuple[float, ...], ...]

    def d0_error(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """sigma(d0) in mm per track (0 outside the table). Shapes: ``[P]`` in and out."""
        return binned_lookup(self.abs_eta_edges, self.pt_edges, self.d0_resolution, pt, eta)

    def dz_error(self, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """sigma(dz) in mm per track (0 outside the table). Shapes: ``[P]`` in and out."""
        return binned_lookup(self.abs_eta_edges, self.pt_edges, self.dz_resolution, pt, eta)


@dataclass(frozen=True)
class ResolutionRange:
    """sigma(E) = (a + b (|eta| - eta0)^2) sqrt(constant^2 E^2 + stochastic^2 E + noise^2) in GeV,
    for |eta| up to ``abs_eta_max`` (and above the previous range's)."""

    abs_eta_max: float
    a: float
    b: float
    eta0: float
    constant: float
    stochastic: float
    noise: float


@dataclass(frozen=True)
class TowerCalorimeterCard:
    """One Delphes SimpleCalorimeter: towers, energy fractions, resolution and eflow thresholds.

    ``eta_edges`` are all tower eta edges in increasing order; ``phi_bins[k]`` is the number of
    equal phi bins of the eta bin ``(eta_edges[k], eta_edges[k + 1]]``.
    """

    eta_edges: tuple[float, ...]
    phi_bins: tuple[int, ...]
    energy_fractions: tuple[tuple[int, float], ...]
    default_fraction: float
    resolution: tuple[ResolutionRange, ...]
    energy_min: float
    energy_significance_min: float
    smear_tower_center: bool

    def fractions(self, pdg_id: np.ndarray) -> np.ndarray:
        """Fraction of each particle's energy deposited here. Shapes: ``[P]`` in and out."""
        codes = np.array(sorted(code for code, _ in self.energy_fractions), dtype=np.int64)
        values = dict(self.energy_fractions)
        table = np.array([values[code] for code in codes.tolist()] + [self.default_fraction])
        absolute = np.abs(pdg_id)
        position = np.minimum(np.searchsorted(codes, absolute), len(codes) - 1)
        found = codes[position] == absolute
        return np.where(found, table[position], self.default_fraction)

    def sigma(self, energy: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """Absolute energy resolution (GeV) at each (E, tower-centre eta), 0 beyond the last
        range. Shapes: ``[T]``."""
        absolute = np.abs(eta)
        limits = np.array([entry.abs_eta_max for entry in self.resolution])
        index = np.searchsorted(limits, absolute, side="left")
        inside = index < len(limits)
        index = np.minimum(index, len(limits) - 1)
        columns = np.array(
            [[e.a, e.b, e.eta0, e.constant, e.stochastic, e.noise] for e in self.resolution]
        )[index]
        a, b, eta0, constant, stochastic, noise = columns.T
        factor = a + b * (absolute - eta0) ** 2
        value = factor * np.sqrt((constant * energy) ** 2 + stochastic**2 * energy + noise**2)
        return np.where(inside, value, 0.0)


@dataclass(frozen=True)
class IdentificationRules:
    """Which track PDG ids count as charged hadrons (JetClass's rename.py)."""

    charged_hadron_pdg_ids: tuple[int, ...]


@dataclass(frozen=True)
class OutputConventions:
    """How jets and constituents are written (the ntupliser's choices).

    Attributes:
        deta_sign_flip: ``part_deta = sign(jet_eta) (eta - jet_eta)`` (sign(0) = -1) instead of
            ``eta - jet_eta``.
        max_jets_per_event: leading jets of an event considered (0 = all).
        constituent_max_abs_pz: constituents with ``|pz|`` above it are dropped (inf = none).
        constituent_max_abs_eta: constituents with ``|eta|`` above it are dropped.
        constituent_min_pt: constituents with ``pT <=`` it are dropped (-inf = none).
    """

    deta_sign_flip: bool = False
    max_jets_per_event: int = 2
    constituent_max_abs_pz: float = math.inf
    constituent_max_abs_eta: float = math.inf
    constituent_min_pt: float = -math.inf


@dataclass(frozen=True)
class ChargedSubtractionCard:
    """Charged-hadron subtraction (Delphes TrackPileUpSubtractor + RecoPuFilter).

    A track of a pileup interaction whose production point is farther than ``z_resolution``
    (mm) along the beam from the primary vertex is removed; closer ones cannot be told apart
    from the primary vertex's tracks and are kept.
    """

    z_resolution: float


@dataclass(frozen=True)
class PuppiRegion:
    """PUPPI settings of one |eta| range (one column of the Delphes RunPUPPI parameters).

    Attributes:
        abs_eta_min, abs_eta_max: the range (the first region holding a particle's |eta| is
            used; a particle in none keeps weight 1).
        pt_min: particles below this pT belong to no region (weight 1).
        cone: radius of the cone in which alpha sums the primary vertex's charged particles.
        rms_pt_min: only charged particles above this pT enter the median and RMS of alpha.
        rms_scale: factor on the RMS.
        neutral_pt_min, neutral_pt_slope: a neutral whose weighted pT is below
            ``neutral_pt_min + neutral_pt_slope * NPV`` gets weight 0.
        low_pu_correction: RMS from the values below the median only, and median and RMS
            lowered by the share of primary-vertex particles below the median.
    """

    abs_eta_min: float
    abs_eta_max: float
    pt_min: float
    cone: float
    rms_pt_min: float
    rms_scale: float
    neutral_pt_min: float
    neutral_pt_slope: float
    low_pu_correction: bool


@dataclass(frozen=True)
class PuppiCard:
    """PUPPI weights for neutral candidates (Delphes RunPUPPI with metric 5 and charged inputs).

    Attributes:
        min_weight: weights below it are set to 0 (the particle is dropped).
        vertex_efficiency: NPV = int(vertex_efficiency x number of vertices) when any pileup
            track is present (1 otherwise), for the neutral pT threshold.
        regions: the |eta| ranges and their settings.
    """

    min_weight: float
    vertex_efficiency: float
    regions: tuple[PuppiRegion, ...]


@dataclass(frozen=True)
class DelphesPileupCard:
    """Overlay of minimum-bias interactions (off when ``mean_interactions`` is 0) and its
    mitigation.

    The optional settings are off by default and left out of :meth:`DelphesCard.to_dict` when
    off, so a card without them keeps its digest.

    Attributes:
        mean_interactions: Poisson mean of the number of pileup interactions per event.
        z_sigma: mm, Gaussian spread of the interactions along the beam.
        z_max: mm, the spread is cut at ``|z| <= z_max`` (None = not cut).
        spread_primary_vertex: the hard-scatter vertex is drawn from the same distribution
            (False: at z = 0); track ``dz`` and production points are then written relative to
            it, as the JetClass-II ntupliser does.
        charged_subtraction: remove the tracks of pileup vertices (None = off).
        puppi: PUPPI weights for neutral candidates (None = off; needs charged_subtraction).
    """

    mean_interactions: float
    z_sigma: float
    z_max: float | None = None
    spread_primary_vertex: bool = False
    charged_subtraction: ChargedSubtractionCard | None = None
    puppi: PuppiCard | None = None

    @property
    def changes_reconstruction(self) -> bool:
        """Whether any optional setting acts after the detector (frame shift or mitigation)."""
        return (
            self.spread_primary_vertex
            or self.charged_subtraction is not None
            or self.puppi is not None
        )


_PILEUP_REQUIRED = ("mean_interactions", "z_sigma")
_PILEUP_OPTIONAL = ("z_max", "spread_primary_vertex", "charged_subtraction", "puppi")


@dataclass(frozen=True)
class DelphesCard:
    """Every number of a ``model: delphes`` card (see ``cards/jetclass.yaml``)."""

    name: str
    propagation: PropagationCard
    tracking: TrackingCard
    impact_parameters: ImpactParameterCard
    ecal: TowerCalorimeterCard
    hcal: TowerCalorimeterCard
    identification: IdentificationRules
    output: OutputConventions
    pileup: DelphesPileupCard
    model: str = "delphes"

    def to_dict(self) -> dict[str, Any]:
        """The card as a plain dictionary of JSON types (infinities as the string "inf").

        Optional pileup settings that are off are left out (a card without them keeps the
        digest it had before they existed).
        """
        data = asdict(self)
        data["pileup"] = {
            key: value
            for key, value in data["pileup"].items()
            if key in _PILEUP_REQUIRED or value not in (None, False)
        }
        return _plain(data)

    def digest(self) -> str:
        """A short sha256 of the card's content, recorded with every simulated shard."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_pileup(self, mean_interactions: float) -> DelphesCard:
        """A copy with another mean number of pileup interactions."""
        return replace(self, pileup=replace(self.pileup, mean_interactions=mean_interactions))


def _plain(value: Any) -> Any:
    """Tuples as lists and infinite floats as "inf"/"-inf", recursively (strict JSON)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


# --- validation -----------------------------------------------------------------------------


class _Reader:
    """Typed access to a parsed YAML tree; every error names the card and the dotted field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def mapping(
        self, value: Any, field: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise DataError(self.source, field, "a mapping of settings", type(value).__name__)
        known = (*keys, *optional)
        for key in value:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
                raise DataError(
                    self.source, f"{field}.{key}", "a known setting", "an unknown key", hint
                )
        missing = [key for key in keys if key not in value]
        if missing:
            raise DataError(self.source, field, f"settings {', '.join(keys)}", f"{missing} missing")
        return value

    def number(self, value: Any, field: str, minimum: float = 0.0) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise DataError(self.source, field, "a number", repr(value))
        if value < minimum:
            raise DataError(self.source, field, f"a number >= {minimum}", repr(value))
        return float(value)

    def flag(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            raise DataError(self.source, field, "true or false", repr(value))
        return value

    def numbers(self, value: Any, field: str, minimum: float = -math.inf) -> tuple[float, ...]:
        if not isinstance(value, list) or not value:
            raise DataError(self.source, field, "a non-empty list of numbers", repr(value))
        return tuple(self.number(v, f"{field}[{i}]", minimum) for i, v in enumerate(value))

    def edges(self, value: Any, field: str) -> tuple[float, ...]:
        edges = self.numbers(value, field, minimum=-math.inf)
        if len(edges) < 2 or any(b <= a for a, b in itertools.pairwise(edges)):
            raise DataError(self.source, field, "at least 2 strictly increasing edges", edges)
        return edges

    def grid(
        self, value: Any, field: str, rows: int, columns: int
    ) -> tuple[tuple[float, ...], ...]:
        if not isinstance(value, list) or len(value) != rows:
            found = len(value) if isinstance(value, list) else type(value).__name__
            raise DataError(self.source, field, f"{rows} rows (one per |eta| bin)", found)
        grid = []
        for index, row in enumerate(value):
            numbers = self.numbers(row, f"{field}[{index}]", minimum=0.0)
            if len(numbers) != columns:
                raise DataError(
                    self.source, f"{field}[{index}]", f"{columns} values (one per pT bin)", len(row)
                )
            grid.append(numbers)
        return tuple(grid)


def _table(reader: _Reader, value: Any, field: str, bounded: bool) -> BinnedTable:
    data = reader.mapping(value, field, ("pt_edges", "abs_eta_edges", "values"))
    pt_edges = reader.edges(data["pt_edges"], f"{field}.pt_edges")
    eta_edges = reader.edges(data["abs_eta_edges"], f"{field}.abs_eta_edges")
    values = reader.grid(data["values"], f"{field}.values", len(eta_edges) - 1, len(pt_edges) - 1)
    if bounded and any(v > 1 for row in values for v in row):
        raise DataError(reader.source, f"{field}.values", "efficiencies in [0, 1]", values)
    return BinnedTable(eta_edges, pt_edges, values)


def _species(reader: _Reader, value: Any, field: str) -> SpeciesTracking:
    data = reader.mapping(value, field, ("efficiency", "momentum_resolution"))
    resolution = reader.mapping(
        data["momentum_resolution"],
        f"{field}.momentum_resolution",
        ("abs_eta_edges", "constant", "slope"),
    )
    edges = reader.edges(resolution["abs_eta_edges"], f"{field}.momentum_resolution.abs_eta_edges")
    constant = reader.numbers(resolution["constant"], f"{field}.momentum_resolution.constant", 0.0)
    slope = reader.numbers(resolution["slope"], f"{field}.momentum_resolution.slope", 0.0)
    for name, values in (("constant", constant), ("slope", slope)):
        if len(values) != len(edges) - 1:
            raise DataError(
                reader.source,
                f"{field}.momentum_resolution.{name}",
                f"{len(edges) - 1} values (one per |eta| bin)",
                len(values),
            )
    return SpeciesTracking(
        efficiency=_table(reader, data["efficiency"], f"{field}.efficiency", bounded=True),
        momentum_resolution=MomentumResolution(edges, constant, slope),
    )


def _tower_edges(reader: _Reader, value: Any, field: str) -> tuple[float, ...]:
    """A group's upper edges: an explicit list or ``{start, step, count}``."""
    if isinstance(value, dict):
        data = reader.mapping(value, field, ("start", "step", "count"))
        start = reader.number(data["start"], f"{field}.start", -math.inf)
        step = reader.number(data["step"], f"{field}.step", 1e-9)
        count = data["count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise DataError(reader.source, f"{field}.count", "a positive integer", repr(count))
        return tuple(round(start + step * index, 9) for index in range(count))
    return reader.numbers(value, field)


def _calorimeter(reader: _Reader, value: Any, field: str) -> TowerCalorimeterCard:
    keys = (
        "towers",
        "energy_fractions",
        "resolution",
        "energy_min",
        "energy_significance_min",
        "smear_tower_center",
    )
    data = reader.mapping(value, field, keys)
    if not isinstance(data["towers"], list) or not data["towers"]:
        raise DataError(reader.source, f"{field}.towers", "a list of tower groups", data["towers"])
    upper: dict[float, int] = {}
    for index, group in enumerate(data["towers"]):
        where = f"{field}.towers[{index}]"
        group = reader.mapping(group, where, ("edges", "phi_bins"))
        phi_bins = group["phi_bins"]
        if isinstance(phi_bins, bool) or not isinstance(phi_bins, int) or phi_bins < 1:
            raise DataError(reader.source, f"{where}.phi_bins", "a positive integer", phi_bins)
        for edge in _tower_edges(reader, group["edges"], f"{where}.edges"):
            if edge in upper:
                raise DataError(reader.source, f"{where}.edges", "edges given once", edge)
            upper[edge] = phi_bins
    edges = tuple(sorted(upper))
    if len(edges) < 2:
        raise DataError(reader.source, f"{field}.towers", "at least 2 eta edges", len(edges))
    fractions = data["energy_fractions"]
    if not isinstance(fractions, dict) or "default" not in fractions:
        raise DataError(
            reader.source, f"{field}.energy_fractions", "a mapping with a 'default'", fractions
        )
    pairs = []
    for key, fraction in fractions.items():
        where = f"{field}.energy_fractions.{key}"
        number = reader.number(fraction, where)
        if number > 1:
            raise DataError(reader.source, where, "a fraction in [0, 1]", number)
        if key == "default":
            continue
        if isinstance(key, bool) or not isinstance(key, int):
            raise DataError(reader.source, where, "an integer |PDG id| or 'default'", repr(key))
        pairs.append((abs(key), number))
    if not isinstance(data["resolution"], list) or not data["resolution"]:
        raise DataError(
            reader.source, f"{field}.resolution", "a list of |eta| ranges", data["resolution"]
        )
    ranges = []
    for index, entry in enumerate(data["resolution"]):
        where = f"{field}.resolution[{index}]"
        entry = reader.mapping(entry, where, tuple(ResolutionRange.__dataclass_fields__))
        ranges.append(
            ResolutionRange(**{k: reader.number(v, f"{where}.{k}") for k, v in entry.items()})
        )
    if any(b.abs_eta_max <= a.abs_eta_max for a, b in itertools.pairwise(ranges)):
        raise DataError(
            reader.source,
            f"{field}.resolution",
            "increasing abs_eta_max",
            [r.abs_eta_max for r in ranges],
        )
    return TowerCalorimeterCard(
        eta_edges=edges,
        phi_bins=tuple(upper[edge] for edge in edges[1:]),
        energy_fractions=tuple(pairs),
        default_fraction=float(fractions["default"]),
        resolution=tuple(ranges),
        energy_min=reader.number(data["energy_min"], f"{field}.energy_min"),
        energy_significance_min=reader.number(
            data["energy_significance_min"], f"{field}.energy_significance_min"
        ),
        smear_tower_center=reader.flag(data["smear_tower_center"], f"{field}.smear_tower_center"),
    )


def _impact_parameters(reader: _Reader, value: Any) -> ImpactParameterCard:
    field = "impact_parameters"
    data = reader.mapping(
        value, field, ("pt_edges", "abs_eta_edges", "d0_resolution", "dz_resolution")
    )
    pt_edges = reader.edges(data["pt_edges"], f"{field}.pt_edges")
    eta_edges = reader.edges(data["abs_eta_edges"], f"{field}.abs_eta_edges")
    shape = (len(eta_edges) - 1, len(pt_edges) - 1)
    return ImpactParameterCard(
        pt_edges=pt_edges,
        abs_eta_edges=eta_edges,
        d0_resolution=reader.grid(data["d0_resolution"], f"{field}.d0_resolution", *shape),
        dz_resolution=reader.grid(data["dz_resolution"], f"{field}.dz_resolution", *shape),
    )


def _puppi(reader: _Reader, value: Any) -> PuppiCard:
    field = "pileup.puppi"
    data = reader.mapping(value, field, ("min_weight", "vertex_efficiency", "regions"))
    fractions = {}
    for key in ("min_weight", "vertex_efficiency"):
        fractions[key] = reader.number(data[key], f"{field}.{key}")
        if fractions[key] > 1:
            raise DataError(reader.source, f"{field}.{key}", "a number in [0, 1]", fractions[key])
    regions = data["regions"]
    if not isinstance(regions, list) or not regions:
        raise DataError(
            reader.source, f"{field}.regions", "a non-empty list of |eta| ranges", regions
        )
    parsed = []
    for index, entry in enumerate(regions):
        where = f"{field}.regions[{index}]"
        names = tuple(PuppiRegion.__dataclass_fields__)
        entry = reader.mapping(entry, where, names)
        values: dict[str, Any] = {
            key: reader.number(entry[key], f"{where}.{key}")
            for key in names
            if key != "low_pu_correction"
        }
        values["low_pu_correction"] = reader.flag(
            entry["low_pu_correction"], f"{where}.low_pu_correction"
        )
        for key in ("cone", "rms_scale"):
            if values[key] <= 0:
                raise DataError(reader.source, f"{where}.{key}", "a number > 0", values[key])
        if values["abs_eta_max"] <= values["abs_eta_min"]:
            raise DataError(
                reader.source,
                f"{where}.abs_eta_max",
                f"a number > abs_eta_min ({values['abs_eta_min']})",
                values["abs_eta_max"],
            )
        parsed.append(PuppiRegion(**values))
    return PuppiCard(regions=tuple(parsed), **fractions)


def _pileup(reader: _Reader, value: Any) -> DelphesPileupCard:
    data = reader.mapping(value, "pileup", _PILEUP_REQUIRED, _PILEUP_OPTIONAL)
    settings: dict[str, Any] = {
        key: reader.number(data[key], f"pileup.{key}") for key in _PILEUP_REQUIRED
    }
    if "z_max" in data:
        settings["z_max"] = reader.number(data["z_max"], "pileup.z_max", 1e-9)
    if "spread_primary_vertex" in data:
        settings["spread_primary_vertex"] = reader.flag(
            data["spread_primary_vertex"], "pileup.spread_primary_vertex"
        )
    if "charged_subtraction" in data:
        subtraction = reader.mapping(
            data["charged_subtraction"], "pileup.charged_subtraction", ("z_resolution",)
        )
        settings["charged_subtraction"] = ChargedSubtractionCard(
            reader.number(subtraction["z_resolution"], "pileup.charged_subtraction.z_resolution")
        )
    if "puppi" in data:
        if "charged_subtraction" not in data:
            raise DataError(
                reader.source,
                "pileup.puppi",
                "pileup.charged_subtraction as well (PUPPI takes the vertex of each track from it)",
                "no pileup.charged_subtraction",
            )
        settings["puppi"] = _puppi(reader, data["puppi"])
    return DelphesPileupCard(**settings)


def _output(reader: _Reader, value: Any) -> OutputConventions:
    keys = tuple(OutputConventions.__dataclass_fields__)
    data = reader.mapping(value, "output", keys)
    jets = data["max_jets_per_event"]
    if isinstance(jets, bool) or not isinstance(jets, int) or jets < 0:
        raise DataError(reader.source, "output.max_jets_per_event", "an integer >= 0", jets)
    return OutputConventions(
        deta_sign_flip=reader.flag(data["deta_sign_flip"], "output.deta_sign_flip"),
        max_jets_per_event=jets,
        constituent_max_abs_pz=reader.number(
            data["constituent_max_abs_pz"], "output.constituent_max_abs_pz"
        ),
        constituent_max_abs_eta=reader.number(
            data["constituent_max_abs_eta"], "output.constituent_max_abs_eta"
        ),
        constituent_min_pt=reader.number(
            data["constituent_min_pt"], "output.constituent_min_pt", -math.inf
        ),
    )


DELPHES_SECTIONS = (
    "name",
    "model",
    "propagation",
    "tracking",
    "impact_parameters",
    "ecal",
    "hcal",
    "identification",
    "output",
    "pileup",
)


def parse_delphes_card(data: dict[str, Any], source: str) -> DelphesCard:
    """Validate a ``model: delphes`` card given as a dictionary (as read from YAML)."""
    reader = _Reader(source)
    data = reader.mapping(data, "<top level>", DELPHES_SECTIONS)
    propagation = reader.mapping(
        data["propagation"], "propagation", ("radius", "half_length", "bz")
    )
    tracking = reader.mapping(
        data["tracking"],
        "tracking",
        ("charged_hadron", "electron", "muon", "keep_momentum_smearing"),
    )
    identification = reader.mapping(
        data["identification"], "identification", ("charged_hadron_pdg_ids",)
    )
    pdg_ids = identification["charged_hadron_pdg_ids"]
    if not isinstance(pdg_ids, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in pdg_ids
    ):
        raise DataError(
            source, "identification.charged_hadron_pdg_ids", "a list of integer PDG ids", pdg_ids
        )
    return DelphesCard(
        name=str(data["name"]),
        propagation=PropagationCard(
            **{k: reader.number(v, f"propagation.{k}", 1e-9) for k, v in propagation.items()}
        ),
        tracking=TrackingCard(
            charged_hadron=_species(reader, tracking["charged_hadron"], "tracking.charged_hadron"),
            electron=_species(reader, tracking["electron"], "tracking.electron"),
            muon=_species(reader, tracking["muon"], "tracking.muon"),
            keep_momentum_smearing=reader.flag(
                tracking["keep_momentum_smearing"], "tracking.keep_momentum_smearing"
            ),
        ),
        impact_parameters=_impact_parameters(reader, data["impact_parameters"]),
        ecal=_calorimeter(reader, data["ecal"], "ecal"),
        hcal=_calorimeter(reader, data["hcal"], "hcal"),
        identification=IdentificationRules(tuple(abs(v) for v in pdg_ids)),
        output=_output(reader, data["output"]),
        pileup=_pileup(reader, data["pileup"]),
    )
