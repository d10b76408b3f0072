"""``python -m toolchain.sweep``: the same as ``fpga-sweep``."""

import sys

from toolchain.sweep.cli import main

sys.exit(main())
