"""The CPU emulation of the kernels built under the compiler's sanitizers, and a runner that launches every
instantiation on small odd shapes in a child process with the sanitizer's runtime preloaded.

Two builds: AddressSanitizer with UndefinedBehaviorSanitizer (out-of-bounds memory, and, through UBSan's bounds
check, an index past a fixed-size array such as a shared-memory tile, which ASan alone misses inside one static
object), and ThreadSanitizer (the emulation runs one host thread per CUDA thread, so a missing __syncthreads()
between a shared-memory write and another thread's read is a data race between host threads). Any report ends
the child with a non-zero status (``halt_on_error``). The runtime is preloaded because Python itself is not
built with the sanitizer, and a sanitized shared library needs its runtime loaded first.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import kernel_emulation

SANITIZERS = {
    "address_undefined": {
        "flags": ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"),
        "runtime": "libasan.so",
        # Python's own allocations outlive the run: leaks are not what is checked.
        "environment": {"ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:exitcode=66",
                        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:exitcode=66"},
    },
    "thread": {
        "flags": ("-fsanitize=thread",),
        "runtime": "libtsan.so",
        "environment": {"TSAN_OPTIONS": "halt_on_error=1:exitcode=66"},
    },
}
RUNNER = Path(__file__).with_name("sanitized_run.py")


def runtime(cxx: str, sanitizer: str) -> str | None:
    """Returns the path of the sanitizer's runtime library of ``cxx``, or None where it has none."""
    name = SANITIZERS[sanitizer]["runtime"]
    found = subprocess.run([cxx, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return found if found and os.path.isabs(found) and os.path.exists(found) else None


def compile_source(cxx: str, sanitizer: str, source: str, name: str) -> Path:
    """Compiles C++ ``source`` (with the emulation header) into a sanitized shared library, cached by content."""
    flags = (*kernel_emulation.CXX_FLAGS, *SANITIZERS[sanitizer]["flags"])
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True).stdout
    key = hashlib.sha256("\0".join([version, kernel_emulation.HEADER.read_text(), *flags, source]).encode())
    folder = Path(tempfile.gettempdir()) / "gradcore-kernel-sanitizers" / key.hexdigest()[:24]
    library = folder / f"{name}.so"
    if library.exists():
        return library
    folder.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gradcore-sanitized-", dir=folder))
    (work / f"{name}.cpp").write_text(source)
    result = subprocess.run([cxx, *flags, "-include", str(kernel_emulation.HEADER), f"{name}.cpp", "-o",
                             f"{name}.so"], cwd=work, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"the {sanitizer} build of {name} failed:\n{result.stdout}{result.stderr}")
    os.replace(work / f"{name}.so", library)  # atomic: a parallel run sees all or nothing
    return library


def build_families(cxx: str, sanitizer: str) -> dict:
    """Returns {family: sanitized shared library} for every kernel family."""
    from gradcore.backend import kernels

    return {family: compile_source(cxx, sanitizer, kernel_emulation.translation_unit(family), family)
            for family in kernels.FAMILY_SOURCES}


def run_under(cxx: str, sanitizer: str, arguments: list, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs ``python sanitized_run.py ARGUMENTS`` with the sanitizer's runtime preloaded."""
    environment = dict(os.environ, **SANITIZERS[sanitizer]["environment"])
    environment["LD_PRELOAD"] = runtime(cxx, sanitizer)
    root = Path(__file__).resolve().parents[2]
    environment["PYTHONPATH"] = os.pathsep.join([str(root), str(RUNNER.parent), environment.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, str(RUNNER), *arguments], env=environment, capture_output=True,
                          text=True, timeout=timeout)
