"""Backbones: a registry of architectures sharing one contract (JetBatch in, Features out)."""
