"""The one builder behind every registered variant (timm's ``build_model_with_cfg`` in small)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, TypeVar

from foundation.models.base import Backbone

BackboneT = TypeVar("BackboneT", bound=Backbone)


def build_backbone(
    cls: type[BackboneT], defaults: Mapping[str, Any], overrides: Mapping[str, Any]
) -> BackboneT:
    """Build ``cls`` from a variant's defaults, updated by the caller's keyword arguments.

    Args:
        cls: the architecture class.
        defaults: the variant's constructor arguments.
        overrides: arguments given to :func:`~foundation.models.registry.create_backbone`
            (``in_features`` at least; a saved ``config`` rebuilds the exact model).

    Raises:
        TypeError: an argument is not accepted by ``cls`` (the message lists those that are),
            or ``in_features`` is missing.
    """
    accepted = [name for name in inspect.signature(cls).parameters if name != "self"]
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise TypeError(
            f"{cls.__name__} got unknown argument(s) {unknown}; accepted: {', '.join(accepted)}"
        )
    arguments = {**defaults, **overrides}
    if "in_features" not in arguments:
        raise TypeError(
            f"{cls.__name__} needs in_features (the particle feature count F of the JetBatch), "
            "e.g. create_backbone(name, in_features=17)"
        )
    return cls(**arguments)
