"""Starting ``mpiexec -n N`` from a test: where it lives, with a bounded run time."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("mpi_worker.py")


def mpiexec() -> str:
    """Returns the ``mpiexec`` installed with mpich next to this Python (the test extra), else the one on PATH."""
    pytest.importorskip("mpi4py", reason="the distributed tests need mpi4py and mpich (the test extra)")
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.fail("mpi4py is installed but no mpiexec was found next to sys.executable or on PATH: "
                    "pip install mpich")
    return found


def run_mpi(ranks: int, arguments: list, timeout_s: float = 60, env: dict | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    """Runs ``mpiexec -n ranks python arguments...`` from the repository root; fails the test past ``timeout_s``."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = str(ROOT) + os.pathsep + environment.get("PYTHONPATH", "")
    environment.setdefault("OMP_NUM_THREADS", "1")  # ranks share the cores
    environment.update(env or {})
    command = [mpiexec(), "-n", str(ranks), sys.executable, *map(str, arguments)]
    try:
        result = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True,
                                timeout=timeout_s)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{' '.join(command)} did not finish within {timeout_s} s:\n{error.stdout}\n{error.stderr}")
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def check_results(stdout: str, ranks: int, name: str) -> None:
    """Fails unless every rank printed ``PASS name`` (and shows a rank's failure when one printed ``FAIL``)."""
    for rank in range(ranks):
        if f"rank {rank} PASS {name}" in stdout:
            continue
        failure = [line for line in stdout.splitlines() if line.startswith(f"rank {rank} FAIL {name}")]
        pytest.fail(failure[0].replace(" | ", "\n") if failure else f"rank {rank} did not report {name}:\n{stdout}")
