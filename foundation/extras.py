"""Optional dependencies: which extra of ``foundation-jets`` brings which module.

The core install loads checkpoints, runs inference, reads the public datasets and exports to
ONNX. Simulation (Pythia 8, FastJet), training (Lightning, TensorBoard, scikit-learn,
matplotlib) and the PyTorch Geometric backbones come with extras. An import site of an optional
module wraps it in :func:`requires_extra`, so that a missing package is a
:class:`MissingExtraError` naming the extra to install instead of a bare
``ModuleNotFoundError``::

    with requires_extra("sim"):
        import fastjet
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

DISTRIBUTION = "foundation-jets"

EXTRAS: dict[str, tuple[str, str]] = {
    "sim": ("simulation (Pythia 8, FastJet)", "pythia8mc, fastjet"),
    "train": (
        "training, evaluation, studies and baselines",
        "lightning, tensorboard, scikit-learn, matplotlib",
    ),
    "pyg": ("PyTorch Geometric backbones and packed graphs", "torch-geometric"),
}
"""``{extra: (what it enables, the packages it installs)}``; mirrors ``pyproject.toml``."""

_OWN_PACKAGES = frozenset({"foundation", "heads"})


class MissingExtraError(ImportError):
    """An optional package is not installed; the message names the extra that brings it."""


def install_hint(extra: str) -> str:
    """The pip command that installs ``extra`` (e.g. ``pip install 'foundation-jets[sim]'``)."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


@contextlib.contextmanager
def requires_extra(extra: str) -> Iterator[None]:
    """Turn a ``ModuleNotFoundError`` raised inside the block into a :class:`MissingExtraError`.

    Args:
        extra: the extra of ``foundation-jets`` that installs the imported packages.

    Raises:
        KeyError: ``extra`` is not one of :data:`EXTRAS` (a typo at an import site).
        MissingExtraError: a module imported in the block is not installed.
    """
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra {extra!r}; known extras: {', '.join(sorted(EXTRAS))}")
    try:
        yield
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] in _OWN_PACKAGES:
            raise  # a module of this library is missing: a bug, not an extra
        purpose, packages = EXTRAS[extra]
        missing = error.name or str(error)
        raise MissingExtraError(
            f"{missing!r} is not installed: {purpose} needs the [{extra}] extra ({packages}); "
            f"install it with `{install_hint(extra)}` (or `pip install -e '.[{extra}]'` in a "
            "source checkout)",
            name=error.name,
        ) from error
