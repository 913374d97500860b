"""Split-K (kernels/gemm.cu, ``gemm_split_reduce``; gradcore/backend/kernels.py, ``split_k``) against float64 numpy
computed from the inputs alone.

A product whose output tiles give fewer than two blocks per multiprocessor is split along K: the GEMM's z-slices
write partial products into a workspace and a second pass adds them in a fixed order and applies the epilogue.
The launcher here reports enough multiprocessors for every case to split, on shapes that fit no tile (M, N and
K not multiples of the tile, K not a multiple of the slice), for every tile of both dtypes, every epilogue, the
prologue and the row sums of ``linear_backward``. The data are multiples of 1/8 (``test_gemm_oracle``), so every
partial sum is exact and the results must equal the oracle exactly (sigmoid to a few units in the last place),
whatever the order of the additions. Every output and the workspace are NaN-poisoned by the emulated launcher:
an unwritten element of either reaches the result as a NaN.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from test_gemm_oracle import (ACTIVATIONS, CLAMP, INSTANTIATIONS, activate, assert_matches,
                              derivative_from_preactivation, dyadic, placed, seed_of)

from gradcore.backend import kernels

MULTIPROCESSORS = 8  # with the shapes below (2 x 2 tiles), a target of 16 blocks: 3 slices of K


class SplittingLauncher:
    """Forwards to the emulated launcher, reports ``multiprocessors`` of them, and records every launch as
    (kernel, grid, {parameter: value} for a GEMM, else the raw arguments)."""

    def __init__(self, emulated, multiprocessors: int = MULTIPROCESSORS) -> None:
        self._emulated = emulated
        self._multiprocessors = multiprocessors
        self.xp = emulated.xp
        self.calls: list = []

    def multiprocessor_count(self) -> int:
        return self._multiprocessors

    def empty(self, shape: tuple, dtype: str):
        return self._emulated.empty(shape, dtype)

    def launch(self, kernel: str, grid: tuple, block: tuple, args, dtype) -> None:
        self._emulated.launch(kernel, grid, block, args, dtype)
        values = [value for _, value in args]
        if kernel.startswith("gradcore::gemm<"):
            self.calls.append((kernel, tuple(grid), dict(zip(kernels.GEMM_PARAMETERS, values))))
        else:
            self.calls.append((kernel, tuple(grid), values))

    def gemm_launches(self) -> list:
        return [(grid, arguments) for kernel, grid, arguments in self.calls if kernel.startswith("gradcore::gemm<")]

    def kernel_names(self) -> list:
        return [kernel.split("::")[1].split("<")[0] for kernel, _, _ in self.calls]


@pytest.fixture
def splitting(launcher, monkeypatch):
    monkeypatch.setattr(kernels, "_GEMM_PLANS", {})  # plans depend on the multiprocessor count
    return SplittingLauncher(launcher)


def odd_shape(dtype: str, tile: str, path: str) -> tuple:
    """(M, K, N): two tiles each way, the last ones partial; K five steps and a bit, so that it splits into three
    slices, the last one shorter. "vector": every extent a multiple of 4 (both operands fit vector loads);
    "scalar": all odd."""
    bm, bn, bk, _tm, _tn = kernels.GEMM_TILES[dtype][tile]
    if path == "vector":
        return bm + 12, 5 * bk + 4, bn + 20
    return bm + 3, 5 * bk + 3, bn + 5


def assert_split(splitting, dtype: str, tile: str, k: int, what: str) -> None:
    """The last GEMM launch was split along K into slices of whole steps, the last one shorter, and was followed
    by the second pass."""
    grid, arguments = splitting.gemm_launches()[-1]
    bk = kernels.GEMM_TILES[dtype][tile][2]
    splits, chunk, last = grid[2], arguments["k_size"], arguments["k_last"]
    assert splits > 1, f"{what}: not split (grid {grid})"
    assert chunk % bk == 0 and 0 < last < chunk and (splits - 1) * chunk + last == k, (what, splits, chunk, last)
    assert splitting.kernel_names()[-1] == "gemm_split_reduce", what


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("path", ["vector", "scalar"])
def test_split_k_epilogue_on_odd_shapes(splitting, dtype, tile, activation, path):
    """op(A) op(B) + bias and its activation, split along K, with and without a bias and the pre-activation."""
    m, k, n = odd_shape(dtype, tile, path)
    width = max(kernels.gemm_vector_widths(dtype, tile))
    seed = seed_of("split-k epilogue", dtype, tile, activation, path)
    rng = np.random.default_rng(seed)
    a64, b64 = dyadic(rng, (m, k)), dyadic(rng, (n, k))  # nn.Linear's layout: B transposed
    a, b = placed(a64, dtype, path, width), placed(b64, dtype, path, width)
    clamp = {"clamp_min": CLAMP[0], "clamp_max": CLAMP[1]} if activation == "clamp" else {}
    for with_bias in (False, True):
        bias64 = dyadic(rng, (n,)) if with_bias else np.zeros(n)
        bias = bias64.astype(dtype) if with_bias else None
        what = f"split-K {tile} {dtype} {path} {activation} bias={with_bias}"
        out, z = kernels.gemm(a, b, trans_b=True, bias=bias, activation=activation, return_preactivation=True,
                              tile=tile, launcher=splitting, **clamp)
        assert_split(splitting, dtype, tile, k, what)
        flags = splitting.gemm_launches()[-1][1]
        assert (flags["a_vector"], flags["b_vector"]) == (int(path == "vector"),) * 2, what
        z64 = a64 @ b64.T + bias64
        assert_matches(z, z64, rounding=0, dtype=dtype, what=f"{what}: pre-activation", seed=seed)
        assert_matches(out, activate(z64, activation), rounding=4 if activation == "sigmoid" else 0, dtype=dtype,
                       what=f"{what}: output", seed=seed)
        alone = kernels.gemm(a, b, trans_b=True, bias=bias, activation=activation, tile=tile, launcher=splitting,
                             **clamp)
        np.testing.assert_array_equal(alone, out, err_msg=f"{what} (seed {seed})")


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_split_k_linear_forward_and_backward(splitting, dtype, tile, activation):
    """``linear_forward`` and ``linear_backward`` where the products split: the forward epilogue and saved
    tensor, and grad_weight's product with the prologue and the bias gradient as row sums of its slices (K is the
    batch there). The oracle differentiates at the exact pre-activation computed from x, w and b."""
    bm, bn, bk, _tm, _tn = kernels.GEMM_TILES[dtype][tile]
    rows, in_features, out_features = 5 * bk + 3, bn + 5, bm + 3  # grad_weight is out x in over K = rows
    seed = seed_of("split-k linear", dtype, tile, activation)
    rng = np.random.default_rng(seed)
    x64, w64 = dyadic(rng, (rows, in_features)), dyadic(rng, (out_features, in_features))
    b64, g64 = dyadic(rng, (out_features,)), dyadic(rng, (rows, out_features))
    x, weight, grad = (values.astype(dtype) for values in (x64, w64, g64))
    clamp = {"clamp_min": CLAMP[0], "clamp_max": CLAMP[1]} if activation == "clamp" else {}
    what = f"split-K linear {tile} {dtype} {activation}"
    y, saved = kernels.linear_forward(x, weight, b64.astype(dtype), activation, tile=tile, launcher=splitting,
                                      **clamp)
    z64 = x64 @ w64.T + b64
    rounding = 4 if activation == "sigmoid" else 0
    assert_matches(y, activate(z64, activation), rounding=rounding * np.abs(activate(z64, activation)),
                   dtype=dtype, what=f"{what}: output", seed=seed)
    splitting.calls.clear()
    gx, gw, gb = kernels.linear_backward(grad, x, weight, saved, activation, tile=tile, launcher=splitting, **clamp)
    (_, grad_x_launch), (grid, grad_w_launch) = splitting.gemm_launches()
    assert grid[2] > 1 and grad_w_launch["row_sums"] is not None, f"{what}: grad_weight not split ({grid})"
    assert grad_w_launch["k_size"] % bk == 0 and grad_w_launch["k_last"] < grad_w_launch["k_size"], what
    assert (grad_w_launch["saved"] is None) == (activation == "none"), what
    assert splitting.kernel_names()[-1] == "gemm_split_reduce", what
    d_z = g64 * derivative_from_preactivation(z64, activation)
    if activation == "sigmoid":
        abs_dz = np.abs(d_z) + np.abs(g64) * 4 * np.finfo(dtype).eps
        bounds = {"x": (out_features + 8) * (abs_dz @ np.abs(w64)), "w": (rows + 8) * (abs_dz.T @ np.abs(x64)),
                  "b": (rows + 8) * abs_dz.sum(axis=0)}
    else:
        bounds = {"x": 0, "w": 0, "b": 0}
    assert_matches(gx, d_z @ w64, rounding=bounds["x"], dtype=dtype, what=f"{what}: grad_x", seed=seed)
    assert_matches(gw, d_z.T @ x64, rounding=bounds["w"], dtype=dtype, what=f"{what}: grad_weight", seed=seed)
    assert_matches(gb, d_z.sum(axis=0), rounding=bounds["b"], dtype=dtype, what=f"{what}: grad_bias", seed=seed)


@pytest.mark.parametrize("dtype", list(kernels.GEMM_TILES))
def test_split_k_repeats_bit_for_bit(splitting, dtype):
    """On data whose sums round, the split product is the same, bit for bit, on every run (the slices are added
    in a fixed order), and within rounding of float64."""
    rng = np.random.default_rng(seed_of("split-k repeat", dtype))
    m, k, n = 37, 301, 45
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype)
    runs = [kernels.gemm(a, b, bias=bias, activation="sigmoid", return_preactivation=True, launcher=splitting)
            for _ in range(3)]
    assert splitting.gemm_launches()[-1][0][2] > 1, "not split"
    for out, z in runs[1:]:
        assert out.tobytes() == runs[0][0].tobytes() and z.tobytes() == runs[0][1].tobytes()
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    reference = a64 @ b64 + bias
    bound = (k + 2) * np.finfo(dtype).eps * (np.abs(a64) @ np.abs(b64) + np.abs(bias))
    assert np.all(np.abs(runs[0][1] - reference) <= bound)


def test_split_count_reaches_two_blocks_per_multiprocessor_where_k_allows():
    """``split_k``: enough slices for two blocks per multiprocessor (H100: 132), whole steps of BK each, the slices
    covering K exactly once; no split where the tiles already fill the GPU or K has fewer than two steps."""
    for tiles in (1, 2, 8, 40, 131):
        for k in (32, 100, 1000, 4099, 100000):
            splits, chunk = kernels.split_k(tiles, k, 16, 132)
            assert splits > 1, (tiles, k)
            assert chunk % 16 == 0 and (splits - 1) * chunk < k <= splits * chunk, (tiles, k, splits, chunk)
            assert tiles * splits >= 2 * 132 or splits >= min(k // 16, 64), (tiles, k, splits)
            assert splits <= 2 * max(math.ceil(264 / tiles), 1), (tiles, k, splits)
    # The example of issue 13: 64 x 1000 x 100 on 32 x 32 tiles is 2 x 4 = 8 blocks; split, 264 or more.
    splits, chunk = kernels.split_k(8, 1000, 16, 132)
    assert 8 * splits >= 2 * 132 and splits == math.ceil(1000 / chunk)
    assert kernels.split_k(264, 1000, 16, 132) == (1, 1000)  # already two blocks per multiprocessor
    assert kernels.split_k(8, 31, 16, 132) == (1, 31)  # fewer than two steps of K


def test_batches_and_small_k_are_not_split(splitting):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((3, 9, 70)).astype(np.float32), rng.standard_normal((3, 70, 11)).astype(np.float32)
    out = kernels.gemm(a, b, launcher=splitting)
    assert splitting.gemm_launches()[-1][0][2] == 3 and splitting.kernel_names()[-1] == "gemm"
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)
    kernels.gemm(a[0, :, :8], b[0, :8], launcher=splitting)
    assert splitting.gemm_launches()[-1][0][2] == 1 and splitting.kernel_names()[-1] == "gemm"
