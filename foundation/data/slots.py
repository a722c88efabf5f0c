"""Particle slots per jet: the default ``N`` and its upper bound, defined once.

A checkpoint's feature schema records the ``max_particles`` it was trained with; a checkpoint
written before that field existed means :data:`DEFAULT_MAX_PARTICLES` (the JetClass convention).
"""

from __future__ import annotations

DEFAULT_MAX_PARTICLES = 128
"""Particle slots per jet when nothing says otherwise (JetClass; softest particles dropped)."""

MAX_PARTICLES = 4096
"""Upper bound of ``max_particles`` (a JetClass jet has at most ~150 particles)."""
