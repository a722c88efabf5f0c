"""foundation: pretrained backbones for particle-physics detector data.

The top level exposes the version and :func:`load_pretrained` (a model from a checkpoint
folder, a registered name or a Hub repo: ``foundation.load_pretrained("jetformer-tiny.sim300k")``),
imported on first use; everything else lives in the submodules (``foundation.data``,
``foundation.models``, ``foundation.hub``, ``foundation.training``...). Nothing is seeded,
printed or downloaded at import time.
"""

from foundation.lazy import lazy_exports

__version__ = "0.1.0"

__getattr__ = lazy_exports(__name__, {"load_pretrained": "loading"})

__all__ = ["__version__", "load_pretrained"]
