"""Every kernel family builds: with NVRTC for sm_80 and sm_90 (no GPU needed), and for the CPU emulation, from the
same source text and the same list of instantiations; and the emulation itself catches what it claims to."""
from __future__ import annotations

import ctypes
import re
import subprocess
from pathlib import Path

import kernel_emulation
import kernel_nvrtc
import numpy as np
import pytest

from gradcore.backend import kernels

# Builds and subprocesses that --device does not reach: the session without --device runs them.
pytestmark = pytest.mark.device_independent

FAMILIES = list(kernels.FAMILY_SOURCES)
# No kernel spills (benchmarks/gemm_static.py --check, run by CI, fails on the same condition): a spill in the
# GEMM's k-loop costs a local-memory round trip per step.
MAX_SPILL_BYTES = 0


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


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_gemm_vector_path_compiles_to_vector_loads(nvrtc, arch):
    """The vector path's reads become single vector instructions (ld.global[.nc].v4.f32, .v2.f64, ...) of the
    width the loader assumes; the emulation cannot show this, as the host runs any load."""
    compiled = kernel_nvrtc.compile_family(nvrtc, "gemm", arch)
    for dtype, tiles in kernels.GEMM_TILES.items():
        bits = 8 * np.dtype(dtype).itemsize
        for tile in tiles:
            name = kernels.name_expression("gemm", dtype, tile)
            widths = set(re.findall(rf"ld\.global(?:\.nc)?\.v(\d)\.f{bits}", compiled.ptx_of(name)))
            assert widths == {str(w) for w in kernels.gemm_vector_widths(dtype, tile)}, (name, widths)


def test_emulation_builds_without_warnings(emulation_build):
    _, log = emulation_build
    assert "warning" not in log, log


def test_every_source_documents_its_launch_shape():
    for name in kernels.FAMILY_SOURCES.values():
        text = (kernels.KERNEL_DIR / name).read_text()
        assert "Launch shape" in text and "One thread computes" in text, name


def test_gemm_parameters_follow_the_kernel_signature():
    """The loader builds the GEMM's argument list by the names of GEMM_PARAMETERS: they must be the kernel's
    parameters, in its order (a swapped pair of like-typed arguments would compile and compute nonsense)."""
    text = (kernels.KERNEL_DIR / "gemm.cu").read_text()
    signature = re.search(r"\ngemm\((.*?)\)\s*(?://[^\n]*)?\n\{", text, re.DOTALL).group(1)
    signature = re.sub(r"//[^\n]*", "", signature)
    names = tuple(re.findall(r"(\w+)\s*(?:,|$)", signature.strip()))
    assert names == kernels.GEMM_PARAMETERS


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


def emulated_run(tmp_path: Path, name: str, text: str):
    """Compiles ``text`` with the emulation header into a shared library; returns its ``run`` function."""
    cxx = kernel_emulation.compiler()
    if cxx is None:
        pytest.skip("no C++ compiler")
    (tmp_path / f"{name}.cpp").write_text(text)
    subprocess.run([cxx, *kernel_emulation.CXX_FLAGS, "-include", str(kernel_emulation.HEADER), f"{name}.cpp",
                    "-o", f"{name}.so"], cwd=tmp_path, check=True)
    return ctypes.CDLL(str(tmp_path / f"{name}.so")).run


def test_emulation_reports_a_barrier_that_not_every_thread_reaches(tmp_path: Path):
    run = emulated_run(tmp_path, "divergent", DIVERGENT)
    out = np.zeros(64, dtype=np.float32)
    assert run(out.ctypes.data_as(ctypes.c_void_p)) == 2  # LAUNCH_DIVERGENT_SYNCTHREADS, and no hang


MISALIGNED = r"""
struct alignas(16) Four {
    float v[4];
};
__global__ void vector_load(const float* in, float* out) {
    const float* p = in + threadIdx.x;  // thread 0 aligned, thread 1 one element off
    Four f = {};
    if (CUDA_EMULATION_ALIGNED(p, sizeof(Four))) f = *reinterpret_cast<const Four*>(p);
    out[threadIdx.x] = f.v[0];
}
extern "C" int run(const float* in, float* out, unsigned threads) {
    const float* i = in;
    float* o = out;
    void* args[] = {&i, &o};
    return cuda_emulation::launch(&vector_load, dim3{1, 1, 1}, dim3{threads, 1, 1}, args);
}
"""


def test_emulation_reports_a_misaligned_vector_access(tmp_path: Path):
    run = emulated_run(tmp_path, "misaligned", MISALIGNED)
    buffer = np.zeros(16, dtype=np.float32)
    start = (-buffer.ctypes.data % 16) // 4  # the first 16-byte aligned element
    out = np.zeros(2, dtype=np.float32)
    pointer = ctypes.c_void_p
    aligned = pointer(buffer.ctypes.data + 4 * start)
    assert run(aligned, out.ctypes.data_as(pointer), ctypes.c_uint(1)) == 0
    assert run(aligned, out.ctypes.data_as(pointer), ctypes.c_uint(2)) == 4  # LAUNCH_MISALIGNED_ACCESS
