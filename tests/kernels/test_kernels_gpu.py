"""The kernels on a real GPU through CuPy's RawModule: the same checks as the emulated tests, plus what the emulation
cannot show (the module compiles for the device's own architecture and loads; launches report no CUDA error;
results repeat bit for bit, which a race between threads would break). Skipped without a usable GPU."""
from __future__ import annotations

import numpy as np
import pytest

from gradcore.backend import kernels


@pytest.fixture
def cupy():
    """The real CuPy with a usable GPU (asked directly: the CUDA backend may hold the CuPy test double)."""
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001  (no CuPy, no driver, no device)
        pytest.skip(f"needs CuPy and a CUDA GPU: {type(exc).__name__}: {exc}")
    if count < 1:
        pytest.skip("needs a CUDA GPU: none is visible")
    return cupy

INSTANTIATIONS = [(dtype, tile) for dtype, tiles in kernels.GEMM_TILES.items() for tile in tiles]


def _relative_error(out, reference) -> float:
    out = np.asarray(out, dtype=np.float64)
    assert not np.isnan(out).any()
    return float(np.linalg.norm(out - reference) / max(np.linalg.norm(reference), 1e-300))


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (17, 33, 65), (130, 70, 257), (512, 384, 640)])
def test_gemm_on_the_gpu(cupy, dtype, tile, shape):
    m, k, n = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m)).astype(dtype)  # read transposed
    b = rng.standard_normal((n, k)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype)
    a_gpu, b_gpu, bias_gpu = cupy.asarray(a), cupy.asarray(b), cupy.asarray(bias)
    out = kernels.gemm(a_gpu, b_gpu, trans_a=True, trans_b=True, bias=bias_gpu, activation="sigmoid", tile=tile)
    again = kernels.gemm(a_gpu, b_gpu, trans_a=True, trans_b=True, bias=bias_gpu, activation="sigmoid", tile=tile)
    cupy.cuda.runtime.deviceSynchronize()
    reference = 1 / (1 + np.exp(-(a.T.astype(np.float64) @ b.T.astype(np.float64) + bias)))
    assert _relative_error(cupy.asnumpy(out), reference) < (1e-5 if dtype == "float32" else 1e-13)
    assert cupy.array_equal(out, again), "two runs differ: a race"


@pytest.mark.parametrize("dtype", list(kernels.GEMM_TILES))
@pytest.mark.parametrize("activation", ["none", "relu", "clamp", "sigmoid"])
def test_fused_linear_backward_on_the_gpu(cupy, dtype, activation):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((256, 784)).astype(dtype)
    w = (rng.standard_normal((1024, 784)) / 28).astype(dtype)
    b = rng.standard_normal(1024).astype(dtype)
    g = rng.standard_normal((256, 1024)).astype(dtype)
    bounds = {"clamp_min": -0.5, "clamp_max": 0.7} if activation == "clamp" else {}
    _, saved = kernels.linear_forward(cupy.asarray(x), cupy.asarray(w), cupy.asarray(b), activation, **bounds)
    gx, gw, gb = kernels.linear_backward(cupy.asarray(g), cupy.asarray(x), cupy.asarray(w), saved, activation,
                                         **bounds)
    s = None if saved is None else cupy.asnumpy(saved).astype(np.float64)
    d_z = {"none": lambda: g, "relu": lambda: np.where(s <= 0, 0, g),
           "clamp": lambda: np.where((s >= -0.5) & (s <= 0.7), g, 0), "sigmoid": lambda: g * (1 - s) * s}[activation]()
    d_z = d_z.astype(np.float64)
    tolerance = 1e-5 if dtype == "float32" else 1e-13
    assert _relative_error(cupy.asnumpy(gx), d_z @ w) < tolerance
    assert _relative_error(cupy.asnumpy(gw), d_z.T @ x) < tolerance
    assert _relative_error(cupy.asnumpy(gb), d_z.sum(axis=0)) < tolerance


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_elementwise_on_the_gpu(cupy, dtype):
    x = np.random.default_rng(2).standard_normal(1 << 20).astype(dtype) * 50
    x[:4] = [1e4, -1e4, np.nan, 0.0]
    y = cupy.asnumpy(kernels.sigmoid_forward(cupy.asarray(x)))
    assert y[0] == 1 and y[1] == 0 and np.isnan(y[2]) and y[3] == 0.5
    e = np.exp(-np.abs(x[4:].astype(np.float64)))
    reference = np.where(x[4:] >= 0, 1 / (1 + e), e / (1 + e))
    assert np.max(np.abs(y[4:] - reference) / np.maximum(reference, np.finfo(dtype).tiny)) < 8 * np.finfo(dtype).eps
    clamped = cupy.asnumpy(kernels.clamp_forward(cupy.asarray(x), -1.0, 2.0))
    np.testing.assert_array_equal(clamped[3:], np.clip(x[3:], -1.0, 2.0))
    grad = np.ones_like(x)
    dx = cupy.asnumpy(kernels.clamp_backward(cupy.asarray(grad), cupy.asarray(x), -1.0, 2.0))
    np.testing.assert_array_equal(dx, np.where((x >= -1) & (x <= 2), 1, 0).astype(dtype))
