"""Names shared by every file format, reader and model: branches, labels, truth and features.

Files use the JetClass branch names so that real JetClass files load unchanged; simulated files
add the truth branches listed in :data:`TRUTH_JET_BRANCHES` and :data:`TRUTH_PARTICLE_BRANCHES`.
"""

from __future__ import annotations

TREE_NAME = "tree"
"""Name of the TTree in JetClass-format ROOT files."""

METADATA_KEY = "foundation_metadata"
"""Name of the TObjString holding the JSON provenance (seeds, card, versions) in simulated files."""

PARTICLE_BRANCHES: tuple[str, ...] = (
    "part_px",
    "part_py",
    "part_pz",
    "part_energy",
    "part_deta",
    "part_dphi",
    "part_d0val",
    "part_d0err",
    "part_dzval",
    "part_dzerr",
    "part_charge",
    "part_isChargedHadron",
    "part_isNeutralHadron",
    "part_isPhoton",
    "part_isElectron",
    "part_isMuon",
)
"""Per-particle (jagged) branches of a JetClass file, in JetClass order."""

JET_BRANCHES: tuple[str, ...] = (
    "jet_pt",
    "jet_eta",
    "jet_phi",
    "jet_energy",
    "jet_nparticles",
    "jet_sdmass",
    "jet_tau1",
    "jet_tau2",
    "jet_tau3",
    "jet_tau4",
)
"""Per-jet branches of a JetClass file."""

JETCLASS_LABELS: tuple[str, ...] = (
    "label_QCD",
    "label_Hbb",
    "label_Hcc",
    "label_Hgg",
    "label_H4q",
    "label_Hqql",
    "label_Zqq",
    "label_Wqq",
    "label_Tbqq",
    "label_Tbl",
)
"""The ten JetClass one-hot label branches; the class index is the position in this tuple."""

QUARK_GLUON_LABELS: tuple[str, ...] = ("label_gluon", "label_quark")
"""Label branches of quark/gluon files; index 1 (quark) matches ``y = 1`` of the public npz."""

TOP_LABELS: tuple[str, ...] = ("label_QCD", "label_Tbqq")
"""Two-class top tagging labels; index 1 (top) matches ``is_signal_new = 1`` of Top Landscape."""

EVENT_ID_BRANCH = "event_id"
"""Unique integer of the generated event a jet came from (splits are made on it)."""

TRUTH_JET_BRANCHES: tuple[str, ...] = (
    "jet_truth_pt",
    "jet_truth_eta",
    "jet_truth_phi",
    "jet_truth_mass",
    "jet_truth_parton_id",
)
"""Particle-level truth of simulated jets: the same jet clustered from stable generator
particles (neutrinos excluded) and the PDG id of the matched hard parton (0 when none)."""

TRUTH_PARTICLE_BRANCHES: tuple[str, ...] = ("part_origin", "part_vertex")
"""Per-candidate truth of simulated jets: origin class index and production-vertex index."""

ORIGIN_CLASSES: tuple[str, ...] = ("hard_decay", "b_hadron", "c_hadron", "other", "pileup")
"""Origin classes of ``part_origin``:

- ``hard_decay``: produced by the decay of the jet's resonance (t, W, Z, H) — a prompt decay
  product or a hadron whose string is (by energy) mostly made of the resonance's decay partons;
- ``b_hadron``: a decay product (at any depth) of a weakly decaying b hadron;
- ``c_hadron``: a decay product of a c hadron that does not itself come from a b hadron;
- ``other``: fragmentation of QCD radiation, initial-state radiation and underlying event;
- ``pileup``: from an overlaid pileup interaction.
"""

NO_VERTEX = -1
"""``part_vertex`` of candidates without a track (neutral candidates): no vertex is measured."""

PRIMARY_VERTEX = 0
"""``part_vertex`` of tracks from the hard-scatter primary vertex; displaced vertices count
from 1."""

PARTICLE_FEATURES_FULL: tuple[str, ...] = (
    "part_pt_log",
    "part_e_log",
    "part_logptrel",
    "part_logerel",
    "part_deltaR",
    "part_charge",
    "part_isChargedHadron",
    "part_isNeutralHadron",
    "part_isPhoton",
    "part_isElectron",
    "part_isMuon",
    "part_d0",
    "part_d0err",
    "part_dz",
    "part_dzerr",
    "part_deta",
    "part_dphi",
)
"""The 17 ParT particle features (JetClass ``full`` set), in ParT order."""

FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "kin": (
        "part_pt_log",
        "part_e_log",
        "part_logptrel",
        "part_logerel",
        "part_deltaR",
        "part_deta",
        "part_dphi",
    ),
    "kinpid": (
        "part_pt_log",
        "part_e_log",
        "part_logptrel",
        "part_logerel",
        "part_deltaR",
        "part_charge",
        "part_isChargedHadron",
        "part_isNeutralHadron",
        "part_isPhoton",
        "part_isElectron",
        "part_isMuon",
        "part_deta",
        "part_dphi",
    ),
    "full": PARTICLE_FEATURES_FULL,
}
"""Particle feature subsets (ParT's kin / kinpid / full)."""

PAIR_FEATURES: tuple[str, ...] = ("pair_ln_delta", "pair_ln_kt", "pair_ln_z", "pair_ln_m2")
"""The 4 ParT pair features computed from two particles' 4-vectors: ln Δ, ln kT, ln z, ln m²."""

JET_INPUTS: tuple[str, ...] = ("jet_pt_log", "jet_eta", "jet_mass_log1p", "jet_nparticles")
"""Jet-level model inputs ``J`` (see :func:`foundation.data.features.jet_inputs`): ln pT (0 for
a jet of zero pT), pseudorapidity, ln(1 + mass / GeV) and the number of particles before
truncation."""
