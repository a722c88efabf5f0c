"""foundation: pretrained backbones for particle-physics detector data.

The top level exposes the version and :func:`load_pretrained` (a model from a checkpoint
folder, a registered name or a Hub repo: ``foundation.load_pretrained("jetformer-tiny.sim300k")``),
imported on first use; everything else lives in the submodules (``foundation.data``,
``foundation.models``, ``foundation.hub``, ``foundation.training``...). Nothing is seeded,
printed or downloaded at import time.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``load_pretrained``, imported on first use (then kept here)."""
    if name != "load_pretrained":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from foundation.loading import load_pretrained

    globals()[name] = load_pretrained
    return load_pretrained


__all__ = ["__version__", "load_pretrained"]
