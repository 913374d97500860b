"""``python -m benchmarks``: runs the CPU benchmarks (see run.py)."""

import sys
from pathlib import Path

from benchmarks.run import main

sys.exit(main(command=[Path(sys.executable).name, "-m", "benchmarks"]))
