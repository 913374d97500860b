"""Smoke test of ``benchmarks/ddp.py``: its quick mode runs gradcore on 1 and 2 processes and writes a complete
report (about 8 s). It checks the harness, never the speed; the PyTorch half runs in the full benchmark."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mpi_launch import ROOT, mpiexec

pytestmark = pytest.mark.mpiexec


def test_quick_report(tmp_path: Path) -> None:
    mpiexec()  # skips without mpi4py, fails without mpiexec, as the other MPI tests
    out = tmp_path / "ddp.md"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ddp.py"), "--quick", "--libraries",
                             "gradcore", "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    text = out.read_text()
    for row in ("| gradcore | 1 |", "| gradcore | 2 |", "## Scaling", "GPU (NCCL): not measured on a GPU."):
        assert row in text, text
    assert "2.55 MiB" in text  # the wide MLP's 669,706 float32 gradients
