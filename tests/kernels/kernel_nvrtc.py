"""NVRTC without a GPU: loads CuPy's low-level NVRTC binding and compiles the kernel families for an architecture.

``cupy.cuda.compiler`` asks the device for its architecture, so it needs a GPU; the binding in
``cupy_backends.cuda.libs.nvrtc`` only needs libnvrtc, which the PyPI package nvidia-cuda-nvrtc-cu12 ships. CuPy
usually finds that library by itself; where it does not, it is loaded here from the package's folder first, so
that CuPy's own lookup of the same soname finds it already in the process.
"""
from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass
from pathlib import Path

from gradcore.backend import kernels


def _preload_from_wheel() -> str | None:
    """Loads libnvrtc from the nvidia-cuda-nvrtc wheel globally; returns the path, or None without the wheel."""
    try:
        import nvidia.cuda_nvrtc
    except ImportError:
        return None
    for folder in nvidia.cuda_nvrtc.__path__:
        for library in sorted(Path(folder, "lib").glob("libnvrtc.so*")):
            if "alt" in library.name or "builtins" in library.name:
                continue
            ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
            return str(library)
    return None


def load_nvrtc():
    """Returns ``(nvrtc module, None)``, or ``(None, why)`` when NVRTC cannot be loaded here."""
    try:
        from cupy_backends.cuda.libs import nvrtc
    except Exception as exc:  # noqa: BLE001  (ImportError, or a CuPy build that fails to import)
        return None, f"CuPy's NVRTC binding does not import ({type(exc).__name__}: {exc}); pip install cupy-cuda12x"
    try:
        nvrtc.getVersion()
        return nvrtc, None
    except Exception as first:  # noqa: BLE001
        preloaded = _preload_from_wheel()
        if preloaded is None:
            return None, (f"libnvrtc is not found ({type(first).__name__}: {first}); "
                          "pip install nvidia-cuda-nvrtc-cu12")
        try:
            nvrtc.getVersion()
            return nvrtc, None
        except Exception as exc:  # noqa: BLE001
            return None, f"libnvrtc from {preloaded} does not load: {type(exc).__name__}: {exc}"


@dataclass
class Compiled:
    cubin: bytes
    lowered_names: dict  # name expression -> mangled symbol
    log: str
    ptx: str = ""

    def ptx_of(self, name: str) -> str:
        """Returns the PTX of one instantiation (by its name expression): its .entry up to the next one."""
        symbol = self.lowered_names[name]
        start = self.ptx.index(f".entry {symbol}(")
        end = self.ptx.find(".entry ", start + 1)
        return self.ptx[start:] if end < 0 else self.ptx[start:end]

    def spill_bytes(self) -> dict:
        """Returns each kernel's spill-store bytes, read off ptxas's report (empty without the report)."""
        found = re.findall(r"Function properties for (\S+)\s*\n.*?(\d+) bytes spill stores", self.log)
        return {symbol: int(count) for symbol, count in found}


def compile_family(nvrtc, family: str, arch: str) -> Compiled:
    """Compiles one family with the loader's build options for ``arch`` (e.g. "sm_90") into a cubin (and PTX)."""
    program = nvrtc.createProgram(kernels.source(family), kernels.FAMILY_SOURCES[family], [], [])
    try:
        for name in kernels.NAME_EXPRESSIONS[family]:
            nvrtc.addNameExpression(program, name)
        options = [*kernels.BUILD_OPTIONS, f"-arch={arch}", "--ptxas-options=-v"]
        try:
            nvrtc.compileProgram(program, options)
        except Exception as exc:
            raise AssertionError(f"NVRTC failed on {family} for {arch}:\n{nvrtc.getProgramLog(program)}") from exc
        log = nvrtc.getProgramLog(program)
        lowered = {name: nvrtc.getLoweredName(program, name) for name in kernels.NAME_EXPRESSIONS[family]}
        ptx = nvrtc.getPTX(program)
        ptx = ptx.decode() if isinstance(ptx, bytes) else ptx
        return Compiled(nvrtc.getCUBIN(program), lowered, log, ptx.rstrip("\0"))
    finally:
        nvrtc.destroyProgram(program)
