"""Physics processes: Pythia 8 settings, jet definition, selection and label of each sample."""

from __future__ import annotations

from dataclasses import dataclass

from foundation.data import schema

_HADRONIC_W = ("24:onMode = off", "24:onIfAny = 1 2 3 4 5")
_HADRONIC_Z = ("23:onMode = off", "23:onIfAny = 1 2 3 4 5")
_INVISIBLE_Z = ("23:onMode = off", "23:onIfAny = 12 14 16")
_HIGGS_ZNUNU = ("HiggsSM:ffbar2HZ = on", *_INVISIBLE_Z, "25:onMode = off")
_TTBAR = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on")
_Z_PLUS_PARTON = (
    "WeakBosonAndParton:qqbar2gmZg = on",
    "WeakBosonAndParton:qg2gmZq = on",
    "WeakZ0:gmZmode = 2",
)
_W_PLUS_PARTON = ("WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on")


@dataclass(frozen=True)
class Process:
    """One simulated sample.

    Attributes:
        name: short name used on the command line and in file names.
        description: what is generated.
        settings: Pythia 8 settings specific to the process (beam energy etc. are common).
        label: the label branch set to 1 for its jets.
        label_names: the label set of the family (JetClass ten classes, or quark/gluon).
        resonance: PDG id of the resonance whose decay products the jet must contain (0 = none).
        leptons_required: number of charged leptons (e, mu) among the resonance's decay products
            (for H -> l nu q q'), or None when not constrained.
        jet_radius: anti-kT radius R.
        pt_range: accepted jet pT range in GeV (detector level).
        eta_max: accepted |eta| (or |y| when ``use_rapidity``) of the jet axis.
        use_rapidity: select on rapidity instead of pseudorapidity.
        pthat_margin: the generated pTHat range is ``pt_range`` widened by these factors.
        parton_label: label jets by the flavour of the matched outgoing hard parton (quark/gluon).
        shard_variants: settings that alternate between shards (shard ``i`` takes variant
            ``i % len``), for decays Pythia cannot select per event: H -> W+ W- -> l nu q q'
            makes the W+ leptonic in even shards and the W- in odd ones, so every event has
            exactly one lepton instead of the 37 % that a common W decay table gives.
    """

    name: str
    description: str
    settings: tuple[str, ...]
    label: str
    label_names: tuple[str, ...] = schema.JETCLASS_LABELS
    resonance: int = 0
    leptons_required: int | None = None
    jet_radius: float = 0.8
    pt_range: tuple[float, float] = (500.0, 1000.0)
    eta_max: float = 2.0
    use_rapidity: bool = False
    pthat_margin: tuple[float, float] = (0.8, 1.1)
    parton_label: bool = False
    shard_variants: tuple[tuple[str, ...], ...] = ()

    def pythia_settings(
        self, pt_range: tuple[float, float] | None = None, shard_index: int = 0
    ) -> list[str]:
        """Pythia settings of the hard process for one shard, including its pTHat window."""
        low, high = pt_range or self.pt_range
        variant = (
            self.shard_variants[shard_index % len(self.shard_variants)]
            if self.shard_variants
            else ()
        )
        return [
            *self.settings,
            *variant,
            f"PhaseSpace:pTHatMin = {low * self.pthat_margin[0]:.1f}",
            f"PhaseSpace:pTHatMax = {high * self.pthat_margin[1]:.1f}",
        ]


def _jetclass(name: str, description: str, label: str, settings: tuple[str, ...], **kw) -> Process:
    return Process(name=name, description=description, label=label, settings=settings, **kw)


PROCESSES: dict[str, Process] = {
    process.name: process
    for process in (
        _jetclass(
            "qcd",
            "QCD multijet (HardQCD:all)",
            "label_QCD",
            ("HardQCD:all = on",),
            pthat_margin=(0.85, 1.0),
        ),
        _jetclass(
            "hbb",
            "H -> b b~ recoiling against Z -> nu nu",
            "label_Hbb",
            (*_HIGGS_ZNUNU, "25:onIfMatch = 5 -5"),
            resonance=25,
        ),
        _jetclass(
            "hcc",
            "H -> c c~ recoiling against Z -> nu nu",
            "label_Hcc",
            (*_HIGGS_ZNUNU, "25:onIfMatch = 4 -4"),
            resonance=25,
        ),
        _jetclass(
            "hgg",
            "H -> g g recoiling against Z -> nu nu",
            "label_Hgg",
            (*_HIGGS_ZNUNU, "25:onIfMatch = 21 21"),
            resonance=25,
        ),
        _jetclass(
            "h4q",
            "H -> W W* -> 4 quarks recoiling against Z -> nu nu",
            "label_H4q",
            (*_HIGGS_ZNUNU, "25:onIfMatch = 24 -24", *_HADRONIC_W),
            resonance=25,
        ),
        _jetclass(
            "hqql",
            "H -> W W* -> l nu q q' (l = e, mu) recoiling against Z -> nu nu",
            "label_Hqql",
            (*_HIGGS_ZNUNU, "25:onIfMatch = 24 -24", "24:onMode = off"),
            resonance=25,
            leptons_required=1,
            shard_variants=(
                ("24:onPosIfAny = 11 13", "24:onNegIfAny = 1 2 3 4 5"),
                ("24:onPosIfAny = 1 2 3 4 5", "24:onNegIfAny = 11 13"),
            ),
        ),
        _jetclass(
            "zqq", "Z -> q q~ + parton", "label_Zqq", (*_Z_PLUS_PARTON, *_HADRONIC_Z), resonance=23
        ),
        _jetclass(
            "wqq", "W -> q q' + parton", "label_Wqq", (*_W_PLUS_PARTON, *_HADRONIC_W), resonance=24
        ),
        _jetclass(
            "tbqq",
            "t t~ with t -> b W -> b q q'",
            "label_Tbqq",
            (*_TTBAR, *_HADRONIC_W),
            resonance=6,
            leptons_required=0,
        ),
        _jetclass(
            "tbl",
            "t t~ with t -> b W -> b l nu (l = e, mu)",
            "label_Tbl",
            (*_TTBAR, "24:onMode = off", "24:onIfAny = 11 13"),
            resonance=6,
            leptons_required=1,
        ),
        Process(
            name="qg",
            description="Z(-> nu nu) + jet, quark or gluon by the outgoing hard parton",
            settings=(*_Z_PLUS_PARTON, *_INVISIBLE_Z),
            label="",
            label_names=schema.QUARK_GLUON_LABELS,
            jet_radius=0.4,
            pt_range=(500.0, 550.0),
            eta_max=1.7,
            use_rapidity=True,
            pthat_margin=(0.9, 1.15),
            parton_label=True,
        ),
    )
}
"""Every process by name: the ten JetClass classes and quark/gluon."""

ALIASES: dict[str, tuple[str, ...]] = {
    "top": ("tbqq",),
    "toptagging": ("qcd", "tbqq"),
    "jetclass": tuple(name for name in PROCESSES if name != "qg"),
    "quarkgluon": ("qg",),
}
"""Names that expand to several processes (or to one under a friendlier name)."""


def resolve_processes(spec: str) -> list[Process]:
    """Turn ``"qcd,tbqq"`` or an alias such as ``"jetclass"`` into processes, in order.

    Raises:
        KeyError: a name is neither a process nor an alias (the message lists both).
    """
    names: list[str] = []
    for part in (piece.strip() for piece in spec.split(",")):
        if not part:
            continue
        expanded = ALIASES.get(part, (part,))
        for name in expanded:
            if name not in PROCESSES:
                raise KeyError(
                    f"unknown process {name!r}; processes: {', '.join(PROCESSES)}; "
                    f"aliases: {', '.join(ALIASES)}"
                )
            if name not in names:
                names.append(name)
    if not names:
        raise KeyError(f"no process given in {spec!r}")
    return [PROCESSES[name] for name in names]
