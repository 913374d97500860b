#!/usr/bin/env python3
"""Run gradcore's CPU benchmarks: ``python -m benchmarks`` and ``python benchmarks/run.py`` come here.

Every option goes to ``benchmarks/cpu.py`` unchanged (``--quick``, ``--workloads``, ``--repeats``,
``--threads``, ``--out``, ``--impl-module``; ``--help`` lists them), and the exit status is its own. The repository root goes
first on ``sys.path``, so the benchmarks measure this working tree whether or not gradcore is installed.

Usage::

    python -m benchmarks                        # the full CPU run; writes benchmarks/results/cpu.md
    python -m benchmarks --quick                # a smoke test
    python benchmarks/run.py --workloads a,b --repeats 60 --out /tmp/cpu.md
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None, command: list[str] | None = None) -> int:
    """Run the CPU benchmarks with ``argv`` (default: the command line's options); return the exit status."""
    if str(REPO_ROOT) not in sys.path[:1]:
        sys.path.insert(0, str(REPO_ROOT))
    # cpu.py imports only the standard library at import time: it pins the thread counts before numpy loads.
    from benchmarks import cpu

    if command is None:
        command = [Path(sys.executable).name, sys.argv[0]]
    return cpu.main(argv, command=command)


if __name__ == "__main__":
    sys.exit(main())
