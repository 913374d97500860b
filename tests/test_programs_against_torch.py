"""Public-notebook style programs run unchanged under gradcore and PyTorch: the printed output must be the same.

Each program in ``tests/programs/`` takes the library to import as its argument. It runs in a separate process
on the CPU (whatever ``--device`` the suite runs under), once per library, and the two outputs are compared
whole: losses, random draws and sampled text.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = Path(__file__).resolve().parent / "programs"


def run_program(script: str, library: str) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, str(PROGRAMS / script), library], check=False, cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{library}: exit status {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch as the oracle")
@pytest.mark.parametrize("script", ["char_mlp_sampling.py"])
def test_program_prints_what_it_prints_under_pytorch(script):
    ours = run_program(script, "gradcore")
    theirs = run_program(script, "torch")
    assert ours == theirs
    assert len(ours.splitlines()) == 9  # the loss and eight names
