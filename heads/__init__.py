"""Task heads: one small module each, registered by name.

Every head reads :class:`~foundation.models.base.Features` (and the batch, for pair features and
padding) and returns a dict of named outputs; it declares its ``level``, the target it reads, its
loss, its metrics and its ``output_names`` (used as ONNX output names).

Built-in heads: ``jet_classification``, ``jet_regression``, ``particle_classification``,
``pair_classification`` and ``masked_particle`` (with :func:`heads.masked_particle.mask_particles`).
"""

from heads.base import Head
from heads.registry import create_head, get_head_class, list_heads, register_head

__all__ = ["Head", "create_head", "get_head_class", "list_heads", "register_head"]
