"""PNG plots of training runs (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

_LABELS = {"train_step": "train (steps)", "train": "train (epoch mean)", "val": "validation"}


def plot_loss_curves(
    history: Mapping[str, Sequence[Sequence[float]]], path: Path, title: str = ""
) -> Path:
    """Plot the loss history (``{"train_step"|"train"|"val": [[step, loss], ...]}``) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4), dpi=100)
    for key, label in _LABELS.items():
        points = history.get(key) or []
        if not points:
            continue
        steps, values = zip(*points, strict=True)
        style = {"alpha": 0.4, "linewidth": 1} if key == "train_step" else {"marker": "o"}
        axis.plot(steps, values, label=label, **style)
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("loss")
    if title:
        axis.set_title(title)
    if axis.get_legend_handles_labels()[0]:
        axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
