"""Task heads: one small module each, registered by name.

Every head reads :class:`~foundation.models.base.Features` (and the batch, for pair features and
padding) and returns a dict of named outputs; it declares its ``level``, the target it reads, its
loss, its metrics and its ``output_names`` (used as ONNX output names). It owns its task: the
targets the data must provide, the arguments the data determines, how its predictions are
collected (:class:`~heads.predictions.Collector`) and scored (see :class:`heads.base.Head`).
A new head is one module that registers a :class:`Head` subclass with :func:`register_head`.

Built-in heads: ``jet_classification``, ``jet_regression``, ``particle_classification``,
``pair_classification`` and ``masked_particle`` (with :func:`heads.masked_particle.mask_particles`);
the collection and scoring of each live in :mod:`heads.evaluation`.
"""

from heads.base import Head
from heads.predictions import Collector, HeadPredictions, PredictionStep, ScoreSettings
from heads.registry import (
    create_head,
    get_head_class,
    list_heads,
    register_head,
    unregister_head,
)

__all__ = [
    "Collector",
    "Head",
    "HeadPredictions",
    "PredictionStep",
    "ScoreSettings",
    "create_head",
    "get_head_class",
    "list_heads",
    "register_head",
    "unregister_head",
]
