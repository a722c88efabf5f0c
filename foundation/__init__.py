"""foundation: pretrained backbones for particle-physics detector data.

The top-level package only exposes the version; import what you need from the submodules
(``foundation.data``, ``foundation.models``, ``foundation.simulation``...). Nothing is seeded,
printed or downloaded at import time.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
