"""kernels/gemm.cu on the CPU emulation: every instantiation, plain and transposed operands, strided views, batches,
every epilogue, and the fused backward (activation derivative while loading, bias gradient in the same pass),
against float64 numpy with an error bound per element.

Each output element of a K-term dot product computed in precision eps is within (K + c) * eps * (|A| @ |B|) of
the exact value (c counts the few roundings around it: bias, activation); the checks use that bound element by
element, so a wrong element fails however small the matrix is, and unwritten elements (NaN) always fail.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from gradcore.backend import kernels

INSTANTIATIONS = [(dtype, tile) for dtype, tiles in kernels.GEMM_TILES.items() for tile in tiles]
# (M, K, N): a single element, odd sizes that are multiples of no tile, exact multiples, thin and long shapes.
SHAPES = [(1, 1, 1), (17, 33, 65), (130, 70, 257), (64, 64, 128), (3, 200, 5), (129, 1, 127), (33, 17, 31)]
ACTIVATIONS = ["none", "relu", "clamp", "sigmoid"]
CLAMP = (-0.5, 0.7)


def operand(rng, rows: int, cols: int, dtype: str, transposed: bool, padded: bool = False):
    """Returns (array, op(array) in float64) where op(array) is rows x cols.

    ``transposed``: the array holds op(array)'s transpose, as a (cols x rows) matrix for trans=True.
    ``padded``: the array is a strided view into a larger NaN-filled buffer, so that reading one element
    beyond the view (in its row or past its last row) puts a NaN into the result.
    """
    stored_shape = (cols, rows) if transposed else (rows, cols)
    values = rng.standard_normal(stored_shape).astype(dtype)
    if padded:
        buffer = np.full((stored_shape[0] + 2, stored_shape[1] + 3), np.nan, dtype=dtype)
        buffer[1:-1, 1:-2] = values
        values = buffer[1:-1, 1:-2]
    exact = values.astype(np.float64)
    return values, (exact.T if transposed else exact)


def assert_within(out, reference, scale, terms: int, dtype: str, what: str) -> None:
    """Asserts |out - reference| <= (terms + 4) * eps * scale + 4 * eps * |reference| for every element."""
    eps = np.finfo(dtype).eps
    out = np.asarray(out, dtype=np.float64)
    assert out.shape == reference.shape, f"{what}: shape {out.shape} != {reference.shape}"
    assert not np.isnan(out).any(), f"{what}: {np.isnan(out).sum()} elements unwritten or NaN"
    bound = (terms + 4) * eps * scale + 4 * eps * np.abs(reference) + np.finfo(dtype).tiny
    error = np.abs(out - reference)
    bad = np.argwhere(error > bound)
    assert bad.size == 0, (f"{what}: {len(bad)} elements off, first at {tuple(bad[0])}: "
                           f"{out[tuple(bad[0])]} vs {reference[tuple(bad[0])]}")


def activate(z, activation: str):
    if activation == "relu":
        return np.maximum(z, 0)
    if activation == "clamp":
        return np.minimum(np.maximum(z, CLAMP[0]), CLAMP[1])
    if activation == "sigmoid":
        return 1 / (1 + np.exp(-z))
    return z


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("shape_index", range(len(SHAPES)))
def test_product_of_every_instantiation_on_odd_shapes(launcher, dtype, tile, shape_index):
    m, k, n = SHAPES[shape_index]
    # The shapes take turns at the four transpose combinations; the next test covers all four on one shape.
    trans_a, trans_b = list(itertools.product([False, True], repeat=2))[shape_index % 4]
    rng = np.random.default_rng(shape_index)
    a, a64 = operand(rng, m, k, dtype, trans_a, padded=shape_index % 2 == 1)
    b, b64 = operand(rng, k, n, dtype, trans_b, padded=shape_index % 3 == 1)
    out = kernels.gemm(a, b, trans_a=trans_a, trans_b=trans_b, tile=tile, launcher=launcher)
    assert out.dtype == dtype
    assert_within(out, a64 @ b64, np.abs(a64) @ np.abs(b64), k, dtype, f"{tile} {dtype} {m}x{k}x{n}")


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
def test_transposed_operands_are_read_in_place(launcher, dtype, tile, trans_a, trans_b):
    rng = np.random.default_rng(1)
    m, k, n = 17, 33, 65
    a, a64 = operand(rng, m, k, dtype, trans_a)
    b, b64 = operand(rng, k, n, dtype, trans_b)
    out = kernels.gemm(a, b, trans_a=trans_a, trans_b=trans_b, tile=tile, launcher=launcher)
    assert_within(out, a64 @ b64, np.abs(a64) @ np.abs(b64), k, dtype, f"trans {trans_a} {trans_b}")
    # A transposed view (swapped strides) with no flag is the same product as the flag on the stored array.
    if trans_a or trans_b:
        view = kernels.gemm(a.T if trans_a else a, b.T if trans_b else b, tile=tile, launcher=launcher)
        np.testing.assert_array_equal(view, out)


@pytest.mark.parametrize("dtype", list(kernels.GEMM_TILES))
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("shape", [(17, 33, 65), (130, 70, 257)])
def test_fused_epilogue_bias_and_activation(launcher, dtype, activation, with_bias, shape):
    m, k, n = shape
    rng = np.random.default_rng(hash((activation, with_bias)) % 2**32)
    x, x64 = operand(rng, m, k, dtype, False)
    weight, w64t = operand(rng, k, n, dtype, True)  # stored (n, k), as nn.Linear holds it
    bias = rng.standard_normal(n).astype(dtype) if with_bias else None
    bias64 = bias.astype(np.float64) if with_bias else np.zeros(n)
    clamp = {"clamp_min": CLAMP[0], "clamp_max": CLAMP[1]} if activation == "clamp" else {}
    out, z = kernels.gemm(x, weight, trans_b=True, bias=bias, activation=activation, return_preactivation=True,
                          launcher=launcher, **clamp)
    z64 = x64 @ w64t + bias64
    scale = np.abs(x64) @ np.abs(w64t) + np.abs(bias64)
    assert_within(z, z64, scale, k, dtype, "pre-activation")
    assert_within(out, activate(z64, activation), scale, k, dtype, f"{activation} output")
    # The activation is applied to the very pre-activation the kernel wrote: exactly for relu and clamp, to a
    # few units in the last place for sigmoid.
    if activation == "sigmoid":
        assert_within(out, activate(z.astype(np.float64), activation), 0, 0, dtype, "sigmoid of z")
    else:
        np.testing.assert_array_equal(out, activate(z.astype(np.float64), activation).astype(dtype))


def linear_reference_grads(grad, x64, w64, saved, activation):
    """float64 gradients of activation(x @ w.T + b), the derivative taken from the kernel's own saved tensor."""
    g, s = grad.astype(np.float64), None if saved is None else saved.astype(np.float64)
    if activation == "relu":
        d_z = np.where(s <= 0, 0.0, g)
    elif activation == "clamp":
        d_z = np.where((s >= CLAMP[0]) & (s <= CLAMP[1]), g, 0.0)
    elif activation == "sigmoid":
        d_z = g * (1 - s) * s
    else:
        d_z = g
    return d_z, d_z @ w64, d_z.T @ x64, d_z.sum(axis=0)


@pytest.mark.parametrize("dtype", list(kernels.GEMM_TILES))
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (17, 33, 65), (130, 70, 257)])
def test_fused_linear_backward(launcher, dtype, activation, shape):
    m, k, n = shape
    rng = np.random.default_rng(7)
    x, x64 = operand(rng, m, k, dtype, False)
    weight, _ = operand(rng, n, k, dtype, False)
    w64 = weight.astype(np.float64)
    bias = rng.standard_normal(n).astype(dtype)
    clamp = {"clamp_min": CLAMP[0], "clamp_max": CLAMP[1]} if activation == "clamp" else {}
    _, saved = kernels.linear_forward(x, weight, bias, activation, launcher=launcher, **clamp)
    assert (saved is None) == (activation == "none")
    grad = rng.standard_normal((m, n)).astype(dtype)
    gx, gw, gb = kernels.linear_backward(grad, x, weight, saved, activation, launcher=launcher, **clamp)
    d_z, gx64, gw64, gb64 = linear_reference_grads(grad, x64, w64, saved, activation)
    abs_dz = np.abs(d_z)
    assert_within(gx, gx64, abs_dz @ np.abs(w64), n + 3, dtype, "grad_x")
    assert_within(gw, gw64, abs_dz.T @ np.abs(x64), m + 3, dtype, "grad_weight")
    assert_within(gb, gb64, abs_dz.sum(axis=0), m + 3, dtype, "grad_bias")


@pytest.mark.parametrize("dtype", list(kernels.GEMM_TILES))
def test_linear_backward_computes_only_what_is_needed(launcher, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 9)).astype(dtype)
    weight = rng.standard_normal((11, 9)).astype(dtype)
    _, saved = kernels.linear_forward(x, weight, None, "sigmoid", launcher=launcher)
    grad = rng.standard_normal((40, 11)).astype(dtype)
    full = kernels.linear_backward(grad, x, weight, saved, "sigmoid", launcher=launcher)
    before = len(launcher.launches)
    only_bias = kernels.linear_backward(grad, x, weight, saved, "sigmoid", needs_input_grad=(False, False, True),
                                        launcher=launcher)
    assert only_bias[0] is None and only_bias[1] is None
    assert [kernel for kernel, _, _ in launcher.launches[before:]] == ["gradcore::sigmoid_backward<%s>" % (
        "float" if dtype == "float32" else "double")]
    np.testing.assert_allclose(only_bias[2], full[2], rtol=10 * np.finfo(dtype).eps * 40, atol=1e-6)
    no_bias = kernels.linear_backward(grad, x, weight, saved, "sigmoid", needs_input_grad=(True, True, False),
                                      launcher=launcher)
    assert no_bias[2] is None
    np.testing.assert_array_equal(no_bias[0], full[0])
    np.testing.assert_array_equal(no_bias[1], full[1])


@pytest.mark.parametrize("dtype", list(kernels.GEMM_TILES))
def test_clamp_gradient_passes_at_the_bounds_and_relu_gradient_does_not_at_zero(launcher, dtype):
    # Small integers make every product and sum exact, so many pre-activations land exactly on the bounds.
    rng = np.random.default_rng(5)
    x = rng.integers(-2, 3, size=(24, 6)).astype(dtype)
    weight = rng.integers(-2, 3, size=(10, 6)).astype(dtype)
    z = x.astype(np.float64) @ weight.T.astype(np.float64)
    assert (z == 0).any() and (z == 3).any()
    grad = rng.standard_normal((24, 10)).astype(dtype)

    y, saved = kernels.linear_forward(x, weight, None, "clamp", 0.0, 3.0, launcher=launcher)
    np.testing.assert_array_equal(saved, z)
    np.testing.assert_array_equal(y, np.clip(z, 0, 3))
    gx, gw, _ = kernels.linear_backward(grad, x, weight, saved, "clamp", 0.0, 3.0, launcher=launcher)
    d_z = np.where((z >= 0) & (z <= 3), grad, 0)  # inclusive, as PyTorch's clamp
    np.testing.assert_allclose(gx, d_z @ weight, rtol=1e-5)
    np.testing.assert_allclose(gw, d_z.T @ x, rtol=1e-5)

    y, saved = kernels.linear_forward(x, weight, None, "relu", launcher=launcher)
    gx, _, _ = kernels.linear_backward(grad, x, weight, saved, "relu", needs_input_grad=(True, False, False),
                                       launcher=launcher)
    np.testing.assert_allclose(gx, np.where(z > 0, grad, 0) @ weight, rtol=1e-5)  # 0 at z == 0, as relu


@pytest.mark.parametrize("dtype", list(kernels.GEMM_TILES))
def test_batched_products_broadcast_a_batch_of_one(launcher, dtype):
    rng = np.random.default_rng(11)
    a = rng.standard_normal((3, 19, 21)).astype(dtype)
    b = rng.standard_normal((1, 21, 23)).astype(dtype)
    out = kernels.gemm(a, b, launcher=launcher)
    assert out.shape == (3, 19, 23)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert_within(out, a64 @ b64, np.abs(a64) @ np.abs(b64), 21, dtype, "batched")
    out_t = kernels.gemm(b, a, trans_a=True, trans_b=True, launcher=launcher)  # (1 -> 3, 23, 19)
    assert_within(out_t, np.swapaxes(b64, 1, 2) @ np.swapaxes(a64, 1, 2),
                  np.swapaxes(np.abs(b64), 1, 2) @ np.swapaxes(np.abs(a64), 1, 2), 21, dtype, "batched, transposed")


def test_empty_inner_dimension_gives_the_bias(launcher):
    x = np.zeros((5, 0), dtype=np.float32)
    weight = np.zeros((4, 0), dtype=np.float32)
    bias = np.arange(4, dtype=np.float32)
    y, _ = kernels.linear_forward(x, weight, bias, launcher=launcher)
    np.testing.assert_array_equal(y, np.broadcast_to(bias, (5, 4)))


def test_tile_choice_fills_the_multiprocessors():
    # Large tiles only when their grid still covers every multiprocessor.
    assert kernels.choose_tile(4096, 4096, "float32", 132) == "large"
    assert kernels.choose_tile(256, 1024, "float32", 132) == "small"
    assert kernels.choose_tile(1024, 1024, "float32", 132) == "medium"
    assert kernels.choose_tile(1, 1, "float64", 132) == "small"


def test_launch_shape_follows_the_tile(launcher):
    a = np.ones((130, 70), dtype=np.float32)
    b = np.ones((70, 257), dtype=np.float32)
    kernels.gemm(a, b, tile="medium", launcher=launcher)
    kernel, grid, block = launcher.launches[-1]
    assert kernel == "gradcore::gemm<float, 64, 64, 8, 4, 4>"
    assert grid == (5, 3, 1) and block == (256, 1, 1)  # ceil(257 / 64), ceil(130 / 64); (64 / 4) ** 2 threads


def test_wrong_arguments_fail_at_the_wrapper(launcher):
    a = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="inner dimensions"):
        kernels.gemm(a, np.ones((5, 2), dtype=np.float32), launcher=launcher)
    with pytest.raises(TypeError, match="float32"):
        kernels.gemm(a, np.ones((4, 2), dtype=np.float64), launcher=launcher)
    with pytest.raises(ValueError, match="bias"):
        kernels.gemm(a, np.ones((4, 2), dtype=np.float32), bias=np.ones(3, dtype=np.float32), launcher=launcher)
    with pytest.raises(ValueError, match="activation"):
        kernels.gemm(a, np.ones((4, 2), dtype=np.float32), activation="tanh", launcher=launcher)
    with pytest.raises(TypeError, match="float32 or float64"):
        kernels.gemm(a.astype(np.int64), a.T.astype(np.int64), launcher=launcher)
