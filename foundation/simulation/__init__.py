"""Detector-level jet simulation: Pythia 8, parametrized detector, FastJet, JetClass files."""
