"""Input checks shared by the backbones: a wrong batch gets a clear error, not a deep traceback."""

from __future__ import annotations

from foundation.data.batch import JetBatch
from foundation.models.layers.masking import is_exporting


def check_batch(owner: str, batch: JetBatch, in_features: int, in_jet_features: int = 0) -> None:
    """Raise if ``batch`` does not have the feature widths a backbone was built for.

    Skipped while tracing or exporting (the shapes are then symbolic).

    Args:
        owner: the backbone's class name, for the message.
        batch: the input.
        in_features: expected particle features ``F``.
        in_jet_features: expected jet-level inputs ``J`` (0: the backbone reads none).

    Raises:
        ValueError: naming the field, the expected and the found width, and the fix.
    """
    if is_exporting():
        return
    found = batch.particles.shape[-1]
    if found != in_features:
        raise ValueError(
            f"{owner}: JetBatch.particles has {found} features per particle, the backbone was "
            f"built for in_features={in_features}; rebuild it with in_features={found} or feed "
            "the feature set it was trained on"
        )
    if in_jet_features and batch.jet.shape[-1] != in_jet_features:
        raise ValueError(
            f"{owner}: JetBatch.jet has {batch.jet.shape[-1]} jet-level inputs, the backbone was "
            f"built for in_jet_features={in_jet_features}"
        )
