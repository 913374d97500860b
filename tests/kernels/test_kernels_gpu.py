"""The kernels on a real GPU through CuPy's RawModule: the same checks as the emulated tests, plus what the emulation
cannot show (the module compiles for the device's own architecture and loads; launches report no CUDA error;
results repeat bit for bit, which a race between threads would break). Every output is allocated full of NaN
and compared element by element with float64 numpy computed from the inputs. Skipped without a usable GPU."""
from __future__ import annotations

import numpy as np
import pytest

from gradcore.backend import kernels
from test_gemm_oracle import (CLAMP, activate, assert_matches, derivative_from_preactivation, dyadic,  # noqa: E402
                              seed_of)


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


class PoisoningLauncher(kernels.CupyLauncher):
    """The GPU launcher with every output allocated full of NaN, so that an element a kernel fails to write
    cannot pass for a right value left in recycled memory."""

    def empty(self, shape: tuple, dtype: str):
        import cupy

        return cupy.full(shape, np.nan, dtype=dtype)


@pytest.fixture
def poisoned(cupy):
    return PoisoningLauncher()


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (17, 33, 65), (130, 70, 257), (512, 384, 640)])
def test_gemm_on_the_gpu(cupy, poisoned, dtype, tile, shape):
    """Element by element against float64 numpy: multiples of 1/8 make every product and sum exact, so the
    pre-activation must be exact and the sigmoid within a few units in the last place."""
    m, k, n = shape
    seed = seed_of("gpu gemm", dtype, tile, shape)
    rng = np.random.default_rng(seed)
    a, b, bias = dyadic(rng, (k, m)), dyadic(rng, (n, k)), dyadic(rng, (n,))  # a and b read transposed
    a_gpu, b_gpu, bias_gpu = (cupy.asarray(v.astype(dtype)) for v in (a, b, bias))
    out, z = kernels.gemm(a_gpu, b_gpu, trans_a=True, trans_b=True, bias=bias_gpu, activation="sigmoid",
                          return_preactivation=True, tile=tile, launcher=poisoned)
    again = kernels.gemm(a_gpu, b_gpu, trans_a=True, trans_b=True, bias=bias_gpu, activation="sigmoid", tile=tile,
                         launcher=poisoned)
    cupy.cuda.runtime.deviceSynchronize()
    z64 = a.T @ b.T + bias
    what = f"{tile} {dtype} {m}x{k}x{n}"
    assert_matches(cupy.asnumpy(z), z64, rounding=0, dtype=dtype, what=f"{what} pre-activation", seed=seed)
    y64 = 1 / (1 + np.exp(-z64))
    assert_matches(cupy.asnumpy(out), y64, rounding=8 * y64, dtype=dtype, what=f"{what} sigmoid", seed=seed)
    assert cupy.array_equal(out, again), f"{what}: two runs differ: a race"


@pytest.mark.parametrize("dtype", list(kernels.GEMM_TILES))
@pytest.mark.parametrize("activation", ["none", "relu", "clamp", "sigmoid"])
def test_fused_linear_backward_on_the_gpu(cupy, poisoned, dtype, activation):
    """The saved tensor on its own, then the gradients with the derivative taken at the exact pre-activation
    computed from the inputs (not from the kernel's saved tensor), element by element."""
    seed = seed_of("gpu linear", dtype, activation)
    rng = np.random.default_rng(seed)
    x, w, b, g = dyadic(rng, (256, 784)), dyadic(rng, (1024, 784)), dyadic(rng, (1024,)), dyadic(rng, (256, 1024))
    x_gpu, w_gpu, b_gpu, g_gpu = (cupy.asarray(v.astype(dtype)) for v in (x, w, b, g))
    clamp = {"clamp_min": CLAMP[0], "clamp_max": CLAMP[1]} if activation == "clamp" else {}
    _, saved = kernels.linear_forward(x_gpu, w_gpu, b_gpu, activation, launcher=poisoned, **clamp)
    gx, gw, gb = kernels.linear_backward(g_gpu, x_gpu, w_gpu, saved, activation, launcher=poisoned, **clamp)
    z64 = x @ w.T + b
    y64 = activate(z64, activation)
    what = f"linear {dtype} {activation}"
    rounding = 8 if activation == "sigmoid" else 0
    if activation == "none":
        assert saved is None
    else:
        expected_saved = z64 if activation == "clamp" else y64
        assert_matches(cupy.asnumpy(saved), expected_saved, rounding=rounding * np.abs(expected_saved), dtype=dtype,
                       what=f"{what} saved", seed=seed)
    d_z = g * derivative_from_preactivation(z64, activation)
    if activation == "sigmoid":
        abs_dz = np.abs(d_z) + np.abs(g) * 4 * np.finfo(dtype).eps
        bounds = {"x": (1024 + 8) * (abs_dz @ np.abs(w)), "w": (256 + 8) * (abs_dz.T @ np.abs(x)),
                  "b": (256 + 8) * abs_dz.sum(axis=0)}
    else:
        bounds = {"x": 0, "w": 0, "b": 0}
    assert_matches(cupy.asnumpy(gx), d_z @ w, rounding=bounds["x"], dtype=dtype, what=f"{what} grad_x", seed=seed)
    assert_matches(cupy.asnumpy(gw), d_z.T @ x, rounding=bounds["w"], dtype=dtype, what=f"{what} grad_w", seed=seed)
    assert_matches(cupy.asnumpy(gb), d_z.sum(axis=0), rounding=bounds["b"], dtype=dtype, what=f"{what} grad_b",
                   seed=seed)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_elementwise_on_the_gpu(cupy, poisoned, dtype):
    x = np.random.default_rng(2).standard_normal(1 << 20).astype(dtype) * 50
    x[:4] = [1e4, -1e4, np.nan, 0.0]
    y = cupy.asnumpy(kernels.sigmoid_forward(cupy.asarray(x), launcher=poisoned))
    assert y[0] == 1 and y[1] == 0 and np.isnan(y[2]) and y[3] == 0.5
    e = np.exp(-np.abs(x[4:].astype(np.float64)))
    reference = np.where(x[4:] >= 0, 1 / (1 + e), e / (1 + e))
    assert np.max(np.abs(y[4:] - reference) / np.maximum(reference, np.finfo(dtype).tiny)) < 8 * np.finfo(dtype).eps
    clamped = cupy.asnumpy(kernels.clamp_forward(cupy.asarray(x), -1.0, 2.0, launcher=poisoned))
    np.testing.assert_array_equal(clamped[3:], np.clip(x[3:], -1.0, 2.0))
    grad = np.ones_like(x)
    dx = cupy.asnumpy(kernels.clamp_backward(cupy.asarray(grad), cupy.asarray(x), -1.0, 2.0,
                                               launcher=poisoned))
    np.testing.assert_array_equal(dx, np.where((x >= -1) & (x <= 2), 1, 0).astype(dtype))
