"""Every kernel instantiation on the CPU emulation under AddressSanitizer with UndefinedBehaviorSanitizer, and
separately under ThreadSanitizer (kernel_sanitizers.py), on small odd shapes; and one planted bug per class that
each must catch, which shows that the builds really are sanitized and that a report fails the run."""
from __future__ import annotations

import os

import kernel_emulation
import kernel_sanitizers
import pytest


# The sanitized builds do not depend on --device: they run in the plain (CPU) session only, not again in CI's
# --device fake-cuda-kernels sessions.
pytestmark = pytest.mark.device_independent


def _missing(reason: str):
    if os.environ.get("GRADCORE_REQUIRE_KERNEL_TOOLS") == "1":
        pytest.fail(f"{reason} (GRADCORE_REQUIRE_KERNEL_TOOLS=1: CI must have it)", pytrace=False)
    pytest.skip(reason)


def compiler_with(sanitizer: str) -> str:
    cxx = kernel_emulation.compiler()
    if cxx is None:
        _missing("no C++ compiler for the sanitized emulation builds")
    if kernel_sanitizers.runtime(cxx, sanitizer) is None:
        _missing(f"{cxx} has no runtime for {sanitizer} ({kernel_sanitizers.SANITIZERS[sanitizer]['runtime']})")
    return cxx


@pytest.mark.parametrize("sanitizer", list(kernel_sanitizers.SANITIZERS))
def test_every_instantiation_runs_clean_under_the_sanitizer(sanitizer):
    cxx = compiler_with(sanitizer)
    libraries = kernel_sanitizers.build_families(cxx, sanitizer)
    result = kernel_sanitizers.run_under(cxx, sanitizer, ["all", *(f"{f}={p}" for f, p in libraries.items())])
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    assert "every instantiation ran" in result.stdout


# The planted bugs, one per class. Each `run(out)` gets 64 floats of numpy memory.
PLANTED = {
    # A write one element past the output (65 threads, 64 elements): a heap overflow, for AddressSanitizer.
    "heap_overflow": ("address_undefined", "heap-buffer-overflow", r"""
__global__ void past_the_end(float* out) { out[threadIdx.x] = 1.0f; }
extern "C" int run(float* out) {
    float* p = out;
    void* args[] = {&p};
    return cuda_emulation::launch(&past_the_end, dim3{1, 1, 1}, dim3{65, 1, 1}, args);
}
"""),
    # A shared tile of a template one element too small for the block: inside one static object, where ASan sees
    # no red zone; UBSan's bounds check knows the array's extent.
    "shared_overflow": ("address_undefined", "out of bounds", r"""
template <int N>
__global__ void staged(float* out) {
    __shared__ float tile[N];
    __shared__ float after[N];
    tile[threadIdx.x] = (float)threadIdx.x;
    after[threadIdx.x % N] = 0.0f;
    __syncthreads();
    out[threadIdx.x] = tile[threadIdx.x] + after[threadIdx.x % N];
}
extern "C" int run(float* out) {
    float* p = out;
    void* args[] = {&p};
    return cuda_emulation::launch(&staged<8>, dim3{1, 1, 1}, dim3{9, 1, 1}, args);
}
"""),
    # A missing __syncthreads() between a shared write and another thread's read of it.
    "missing_barrier": ("thread", "data race", r"""
__global__ void racy(float* out) {
    __shared__ float cell[64];
    cell[threadIdx.x] = (float)threadIdx.x;
    out[threadIdx.x] = cell[(threadIdx.x + 1) % blockDim.x];
}
extern "C" int run(float* out) {
    float* p = out;
    void* args[] = {&p};
    return cuda_emulation::launch(&racy, dim3{1, 1, 1}, dim3{4, 1, 1}, args);
}
"""),
}


@pytest.mark.parametrize("bug", list(PLANTED))
def test_a_planted_bug_is_caught(bug):
    sanitizer, report, source = PLANTED[bug]
    cxx = compiler_with(sanitizer)
    library = kernel_sanitizers.compile_source(cxx, sanitizer, source, bug)
    result = kernel_sanitizers.run_under(cxx, sanitizer, ["planted", str(library)], timeout=120)
    assert result.returncode != 0, f"{sanitizer} missed the planted {bug}:\n{result.stdout}{result.stderr}"
    assert report in result.stderr, result.stderr[-4000:]
    assert "ran to the end" not in result.stdout
