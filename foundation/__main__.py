"""``python -m foundation``: the ``foundation`` command (same as ``python -m foundation.cli``)."""

import sys

from foundation.cli import main

if __name__ == "__main__":
    sys.exit(main())
