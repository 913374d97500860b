"""Every kernel family builds: with NVRTC for sm_80 and sm_90 (no GPU needed), and for the CPU emulation, from the
same source text and the same list of instantiations; and the emulation itself catches what it claims to."""
from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import kernel_emulation
import kernel_nvrtc
import numpy as np
import pytest

from gradcore.backend import kernels

FAMILIES = list(kernels.FAMILY_SOURCES)
# Spilling a few bytes is ptxas's choice; a register array moved to local memory (a run-time index into it)
# spills hundreds.
MAX_SPILL_BYTES = 64


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_nvrtc_compiles_every_instantiation(nvrtc, family, arch):
    compiled = kernel_nvrtc.compile_family(nvrtc, family, arch)
    assert compiled.cubin[:4] == b"\x7fELF", "NVRTC returned no cubin"
    assert set(compiled.lowered_names) == set(kernels.NAME_EXPRESSIONS[family])
    for name, symbol in compiled.lowered_names.items():
        assert symbol.startswith("_Z") and symbol.encode() in compiled.cubin, f"{name} is not in the cubin"
    assert "warning" not in compiled.log.lower(), compiled.log
    spills = compiled.spill_bytes()
    assert set(spills) == set(compiled.lowered_names.values()), "ptxas reported no resource usage"
    assert max(spills.values()) <= MAX_SPILL_BYTES, spills


def test_emulation_builds_without_warnings(emulation_build):
    _, log = emulation_build
    assert "warning" not in log, log


def test_every_source_documents_its_launch_shape():
    for name in kernels.FAMILY_SOURCES.values():
        text = (kernels.KERNEL_DIR / name).read_text()
        assert "Launch shape" in text and "One thread computes" in text, name


def test_an_unknown_kernel_name_is_refused(launcher):
    with pytest.raises(RuntimeError, match="unknown kernel name"):
        launcher.launch("gradcore::gemm<float, 1, 1, 1, 1, 1>", (1, 1, 1), (1, 1, 1), [], np.dtype("float32"))


DIVERGENT = r"""
__global__ void early_return(float* out) {
    __shared__ float cell[64];
    if (threadIdx.x == 3) return;  // leaves before the barrier: undefined on a GPU
    cell[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = cell[63 - threadIdx.x];
}
extern "C" int run(float* out) {
    float* p = out;
    void* args[] = {&p};
    return cuda_emulation::launch(&early_return, dim3{2, 1, 1}, dim3{64, 1, 1}, args);
}
"""


def test_emulation_reports_a_barrier_that_not_every_thread_reaches(tmp_path: Path):
    cxx = kernel_emulation.compiler()
    if cxx is None:
        pytest.skip("no C++ compiler")
    (tmp_path / "divergent.cpp").write_text(DIVERGENT)
    subprocess.run([cxx, *kernel_emulation.CXX_FLAGS, "-include", str(kernel_emulation.HEADER), "divergent.cpp",
                    "-o", "divergent.so"], cwd=tmp_path, check=True)
    run = ctypes.CDLL(str(tmp_path / "divergent.so")).run
    out = np.zeros(64, dtype=np.float32)
    assert run(out.ctypes.data_as(ctypes.c_void_p)) == 2  # LAUNCH_DIVERGENT_SYNCTHREADS, and no hang
