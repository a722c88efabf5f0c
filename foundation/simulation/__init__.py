"""Detector-level jet simulation: Pythia 8, a parametrized detector, FastJet, JetClass-format files."""
