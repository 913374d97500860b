"""Builds the CUDA sources of ``kernels/`` for the CPU through ``kernels/emulation/cuda_emulation.h`` and launches
them through ctypes, behind the same launcher interface as ``gradcore.backend.kernels.CupyLauncher``.

Each family's source is the exact text that the GPU loader hands to NVRTC (``kernels.source``); a generated
registry maps every name expression of ``kernels.NAME_EXPRESSIONS`` to its instantiation, and one exported
function launches a kernel by that name with cuLaunchKernel's argument convention (an array of pointers to the
argument values). The shared libraries are cached in the temporary directory, keyed by a hash of everything
that goes into them, so they are compiled once, not once per test.
"""
from __future__ import annotations

import collections
import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from gradcore.backend import kernels

HEADER = kernels.KERNEL_DIR / "emulation" / "cuda_emulation.h"
# -O1: quick to build and still fast enough; the kernels' arithmetic must not depend on the optimisation level.
CXX_FLAGS = ("-std=c++20", "-O1", "-pthread", "-shared", "-fPIC", "-Wall", "-Wextra", "-Wno-unknown-pragmas")
GUARD_ELEMENTS = 64  # more than a tile row, so that an off-by-one-tile write lands in a guard
GUARD_VALUE = 1234.5
LAUNCH_ERRORS = {1: "unknown kernel name", 2: "threads of one block made different numbers of __syncthreads() calls",
                 3: "invalid launch shape (0 or more than 1024 threads, or an empty grid)",
                 4: "misaligned vector access (a GPU faults on it)"}


def compiler() -> str | None:
    """Returns the C++ compiler to build with (``$CXX``, else g++ or c++), or None when there is none."""
    for name in (os.environ.get("CXX"), "g++", "c++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def translation_unit(family: str) -> str:
    """Returns the C++ file for one family: its CUDA source, the registry of its instantiations, the entry point."""
    entries = "\n".join(
        f'    {{"{name}", [](dim3 g, dim3 b, void** a) {{ return cuda_emulation::launch(&{name}, g, b, a); }}}},'
        for name in kernels.NAME_EXPRESSIONS[family]
    )
    return f"""// Generated from kernels/{kernels.FAMILY_SOURCES[family]} for the CPU emulation; not for editing.
{kernels.source(family)}

#include <cstring>

namespace {{
struct Entry {{
    const char* name;
    int (*launch)(dim3, dim3, void**);
}};
const Entry entries[] = {{
{entries}
}};
}}  // namespace

extern "C" int gradcore_emulate_{family}(const char* name, unsigned gx, unsigned gy, unsigned gz,
                                         unsigned bx, unsigned by, unsigned bz, void** args) {{
    for (const Entry& entry : entries) {{
        if (std::strcmp(entry.name, name) == 0) return entry.launch(dim3{{gx, gy, gz}}, dim3{{bx, by, bz}}, args);
    }}
    return cuda_emulation::LAUNCH_UNKNOWN_KERNEL;
}}
"""


def build(cxx: str) -> tuple:
    """Compiles (or finds in the cache) one shared library per family; returns ({family: path}, warnings)."""
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True).stdout
    units = {family: translation_unit(family) for family in kernels.FAMILY_SOURCES}
    key = hashlib.sha256("\0".join([version, HEADER.read_text(), *CXX_FLAGS, *units.values()]).encode()).hexdigest()
    cache = Path(tempfile.gettempdir()) / "gradcore-kernel-emulation" / key[:24]
    libraries = {family: cache / f"{family}.so" for family in units}
    log_path = cache / "compiler.log"
    if all(path.exists() for path in libraries.values()):
        return libraries, log_path.read_text() if log_path.exists() else ""
    work = Path(tempfile.mkdtemp(prefix="gradcore-emulation-"))
    try:
        processes = {}
        for family, text in units.items():  # the families compile in parallel
            (work / f"{family}.cpp").write_text(text)
            command = [cxx, *CXX_FLAGS, "-include", str(HEADER), f"{family}.cpp", "-o", f"{family}.so"]
            processes[family] = subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE,
                                                 stderr=subprocess.STDOUT, text=True)
        log = ""
        for family, process in processes.items():
            output, _ = process.communicate()
            if process.returncode:
                raise RuntimeError(f"the emulation build of {family} failed:\n{output}")
            log += output
        cache.mkdir(parents=True, exist_ok=True)
        for family in units:
            os.replace(work / f"{family}.so", libraries[family])  # atomic: a parallel run sees all or nothing
        log_path.write_text(log)
        return libraries, log
    finally:
        shutil.rmtree(work, ignore_errors=True)


_session_builds: dict = {}  # compiler -> what ``build`` returned, for ``build_once``


def build_once(cxx: str) -> tuple:
    """``build``, at most once per process and compiler: the kernel tests and ``--device fake-cuda-kernels``
    share one build (and one look at the compiler) per test session."""
    if cxx not in _session_builds:
        _session_builds[cxx] = build(cxx)
    return _session_builds[cxx]


class EmulatedLauncher:
    """Runs kernels on the CPU with numpy arrays, as ``CupyLauncher`` runs them on a GPU with CuPy arrays.

    ``multiprocessors`` stands in for the device's count, which the wrappers use to size grids and choose
    tiles: a small count makes the elementwise grid-stride loops take several turns on small arrays.
    ``record_launches=False`` leaves ``launches`` empty, for a launcher that lives as long as a whole test
    session (a list that grows with every launch would show up in the suite's memory tests).
    """

    xp = np

    def __init__(self, libraries: dict, multiprocessors: int = 2, *, record_launches: bool = True) -> None:
        self._entries = {}
        for family, path in libraries.items():
            library = ctypes.CDLL(str(path))
            entry = getattr(library, f"gradcore_emulate_{family}")
            entry.restype = ctypes.c_int
            entry.argtypes = [ctypes.c_char_p] + [ctypes.c_uint] * 6 + [ctypes.POINTER(ctypes.c_void_p)]
            self._entries[family] = entry
        self._multiprocessors = multiprocessors
        self._record_launches = record_launches
        self.launches: list = []  # (kernel, grid, block) of every launch, for tests of the launch shapes
        self.last_arguments: list = []  # the (kind, value) arguments of the latest launch
        self.last_gemm_arguments: list = []  # those of the latest GEMM launch (split-K adds a second pass)
        self._guarded: list = []  # the buffers of the outputs allocated since the last launch

    def multiprocessor_count(self) -> int:
        return self._multiprocessors

    def empty(self, shape: tuple, dtype: str) -> np.ndarray:
        """Returns an output array poisoned with NaN, between two guard bands that every launch must leave alone.

        An element the kernel fails to write stays NaN and fails the comparison; a write past either end of
        the array changes a guard and fails the launch.
        """
        count = int(np.prod(shape))
        buffer = np.full(count + 2 * GUARD_ELEMENTS, GUARD_VALUE, dtype=dtype)
        buffer[GUARD_ELEMENTS:GUARD_ELEMENTS + count] = np.nan
        self._guarded.append(buffer)
        return buffer[GUARD_ELEMENTS:GUARD_ELEMENTS + count].reshape(shape)

    def _check_guards(self, kernel: str) -> None:
        for buffer in self._guarded:
            bands = np.concatenate([buffer[:GUARD_ELEMENTS], buffer[-GUARD_ELEMENTS:]])
            if not np.all(bands == GUARD_VALUE):
                raise RuntimeError(f"emulated launch of {kernel} wrote outside an output array")

    def launch(self, kernel: str, grid: tuple, block: tuple, args, dtype: np.dtype) -> None:
        scalar_type = ctypes.c_float if dtype == np.float32 else ctypes.c_double
        values = []
        for kind, value in args:
            if kind == "ptr":
                if value is not None and not isinstance(value, np.ndarray):
                    raise TypeError(f"emulated launch of {kernel}: expected a numpy array, got {type(value)}")
                values.append(ctypes.c_void_p(None if value is None else value.ctypes.data))
            elif kind == "i64":
                values.append(ctypes.c_int64(int(value)))
            elif kind == "i32":
                values.append(ctypes.c_int32(int(value)))
            else:
                values.append(scalar_type(float(value)))
        pointers = (ctypes.c_void_p * len(values))(*[ctypes.addressof(v) for v in values])
        try:
            family = kernels.family_of(kernel)
        except (KeyError, IndexError):
            family = "elementwise"  # any family: the entry point answers "unknown kernel name"
        if self._record_launches:
            self.launches.append((kernel, tuple(grid), tuple(block)))
        self.last_arguments = list(args)
        if kernel.startswith("gradcore::gemm<"):
            self.last_gemm_arguments = self.last_arguments
        status = self._entries[family](kernel.encode(), *grid, *block, pointers)
        if status:
            raise RuntimeError(f"emulated launch of {kernel} failed: {LAUNCH_ERRORS.get(status, status)}")
        try:
            self._check_guards(kernel)
        finally:
            self._guarded = []


class CountingLauncher:
    """Runs the emulated kernels on the arrays of a numpy-backed array module (the CuPy test double's) and counts
    the launches by kernel name.

    The emulated launcher allocates numpy outputs; here they are viewed as ``array_module.ndarray`` (the same
    memory, guard bands included), so that what a kernel path returns is a device array like every other op's.

    Each launch goes through the array module's ``launch_on_current_stream`` when it has one (the CuPy test
    double does): it runs at once and, while the current stream captures, is recorded into the CUDA graph, so
    that every launch of the graph runs (and counts) it again with the same arguments, as a GPU does.
    """

    def __init__(self, emulated: EmulatedLauncher, array_module) -> None:
        self._emulated = emulated
        self.xp = array_module
        self.counts: collections.Counter = collections.Counter()

    def multiprocessor_count(self) -> int:
        return self._emulated.multiprocessor_count()

    def empty(self, shape: tuple, dtype: str):
        return self._emulated.empty(shape, dtype).view(self.xp.ndarray)

    def launch(self, kernel: str, grid: tuple, block: tuple, args, dtype) -> None:
        # "gradcore::gemm<float, 32, 32, 16, 4, 4>" counts as "gemm", "gradcore::relu_backward<double>" as
        # "relu_backward".
        name = kernel.split("::")[1].split("<")[0]
        args = tuple(args)

        def launch_kernel() -> None:
            self.counts[name] += 1
            self._emulated.launch(kernel, grid, block, args, dtype)

        launch_kernel.__name__ = name
        on_current_stream = getattr(self.xp, "launch_on_current_stream", None)
        if on_current_stream is None:
            launch_kernel()
        else:
            on_current_stream(launch_kernel)
