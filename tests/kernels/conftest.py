"""Fixtures of the kernel tests: the CPU emulation of the CUDA sources and NVRTC, each built or loaded once, and
``kernels_on_fake_cuda``, which makes the ops' kernel paths run on the CuPy test double through the emulation.

Where the C++ compiler or NVRTC is missing, the tests that need it are skipped with the reason; with
GRADCORE_REQUIRE_KERNEL_TOOLS=1 (set by CI, which has both) they fail instead, so that a CI machine that lost
a tool cannot pass by skipping.
"""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import fake_cupy  # (on the path through tests/conftest.py)
import kernel_emulation  # (needs the path above)
import kernel_nvrtc


def _missing(reason: str):
    if os.environ.get("GRADCORE_REQUIRE_KERNEL_TOOLS") == "1":
        pytest.fail(f"{reason} (GRADCORE_REQUIRE_KERNEL_TOOLS=1: CI must have it)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def emulation_build():
    """Returns ({family: shared library}, compiler output) of the CPU build of every kernel family."""
    cxx = kernel_emulation.compiler()
    if cxx is None:
        _missing("no C++ compiler (g++ or c++, or $CXX) to build the CPU emulation of the CUDA kernels")
    return kernel_emulation.build_once(cxx)


@pytest.fixture(scope="session")
def launcher(emulation_build):
    """An emulated launcher (two pretend multiprocessors) over the session's build."""
    return kernel_emulation.EmulatedLauncher(emulation_build[0], multiprocessors=2)


@pytest.fixture(scope="session")
def nvrtc():
    module, reason = kernel_nvrtc.load_nvrtc()
    if module is None:
        _missing(f"NVRTC is unavailable: {reason}")
    return module


class CountingFakeCudaLauncher(kernel_emulation.CountingLauncher):
    """Runs the emulated kernels on the CuPy test double's arrays and counts the launches by kernel name
    (``.counts``); what a kernel path returns is a double's "cuda" array like every other op's."""

    def __init__(self, emulated) -> None:
        super().__init__(emulated, fake_cupy)


@pytest.fixture
def kernels_on_fake_cuda(fake_cuda, emulation_build):
    """The CuPy test double with the emulated kernels installed for its arrays: ops on "cuda" tensors take their
    kernel paths, as on a GPU. Yields the counting launcher (``.counts`` by kernel name)."""
    from gradcore.backend import kernels

    spy = CountingFakeCudaLauncher(kernel_emulation.EmulatedLauncher(emulation_build[0], multiprocessors=2))
    with kernels.use_launcher_for(fake_cupy.ndarray, spy):
        yield spy
