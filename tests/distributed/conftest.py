"""The tests that start ``mpiexec`` (marked ``mpiexec``) run their ranks as CPU processes of their own, which the
``--device`` option of the suite does not reach: under ``--device`` other than cpu they would repeat the CPU
run's work exactly, so they run once, in the CPU run, and are skipped with that reason in the others. The
NCCL path under the CuPy double runs in-process (test_nccl.py) under every ``--device``."""
from __future__ import annotations

import pytest


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "mpiexec: starts mpiexec; runs in the CPU run of the suite only")


def pytest_collection_modifyitems(config, items) -> None:
    device = config.getoption("--device", default="cpu")
    if device == "cpu":
        return
    skip = pytest.mark.skip(reason=f"--device {device}: mpiexec runs CPU processes that --device does not reach; "
                                   "the CPU run of the suite runs this test")
    for item in items:
        if item.get_closest_marker("mpiexec") is not None:
            item.add_marker(skip)
