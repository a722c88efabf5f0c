"""``python -m foundation.cli``: the ``foundation`` command (used under ``torchrun``)."""

import sys

from foundation.cli import main

sys.exit(main())
