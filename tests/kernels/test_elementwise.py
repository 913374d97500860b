"""kernels/elementwise.cu on the CPU emulation: clamp, relu backward and sigmoid, both dtypes, against PyTorch's
semantics (NaN, infinities, bounds hit exactly, min > max) and a long-double sigmoid reference."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gradcore.backend import kernels

DTYPES = ["float32", "float64"]
# 1 element; a partial block; one block and one more element; sizes for which the grid-stride loop of the
# emulated launcher (2 pretend multiprocessors: 32 blocks of 256 threads) takes several turns.
SIZES = [1, 255, 257, 10007, 40000]


def inputs(size: int, dtype: str, seed: int = 0) -> np.ndarray:
    """Normal values, with the special values PyTorch gives rules for placed at the front."""
    x = (np.random.default_rng(seed).standard_normal(size) * 3).astype(dtype)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -0.5, 0.7, 1e4, -1e4, 88.0, -88.0, -745.0],
                        dtype=dtype)
    count = min(size, len(specials))
    x[:count] = specials[:count]
    return x


def assert_same(out, expected) -> None:
    """Bit-for-bit equality, NaN where NaN is expected."""
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("bounds", [(-0.5, 0.7), (0.0, None), (None, 0.7), (1.0, -1.0), (np.nan, None)])
def test_clamp_forward_and_backward_match_pytorch(launcher, dtype, size, bounds):
    x = inputs(size, dtype)
    grad = inputs(size, dtype, seed=1)[::-1].copy()  # NaN and infinite gradients meet every mask value
    low, high = bounds
    out = kernels.clamp_forward(x, low, high, launcher=launcher)
    tx = torch.tensor(x, requires_grad=True)
    expected = torch.clamp(tx, min=low, max=high)
    assert_same(out, expected.detach().numpy())
    expected.backward(torch.tensor(grad))
    assert_same(kernels.clamp_backward(grad, x, low, high, launcher=launcher), tx.grad.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_relu_backward_matches_pytorch(launcher, dtype, size):
    x = inputs(size, dtype)
    grad = inputs(size, dtype, seed=2)[::-1].copy()
    tx = torch.tensor(x, requires_grad=True)
    y = torch.relu(tx)
    y.backward(torch.tensor(grad))
    assert_same(kernels.relu_backward(grad, y.detach().numpy(), launcher=launcher), tx.grad.numpy())


def sigmoid_long_double(x: np.ndarray) -> np.ndarray:
    """A sigmoid reference carried in extended precision (80-bit on x86) where the platform has it."""
    wide = x.astype(np.longdouble)
    e = np.exp(-np.abs(wide))
    return np.where(wide >= 0, 1 / (1 + e), e / (1 + e))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_sigmoid_forward_is_exact_and_finite(launcher, dtype, size):
    x = inputs(size, dtype)
    y = kernels.sigmoid_forward(x, launcher=launcher)
    finite = ~np.isnan(x)
    assert np.isnan(y[~finite]).all()
    assert np.isfinite(y[finite]).all() and (y[finite] >= 0).all() and (y[finite] <= 1).all()
    reference = sigmoid_long_double(x[finite])
    info = np.finfo(dtype)
    # Relative error within 4 units in the last place, down to the smallest normal number.
    error = np.abs(y[finite].astype(np.longdouble) - reference)
    bound = 4 * info.eps * np.abs(reference) + info.tiny
    assert (error <= bound).all(), f"worst relative error {np.max(error / np.maximum(reference, info.tiny))}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_saturates_exactly_at_extremes(launcher, dtype):
    x = np.array([1e4, -1e4, 50.0, -50.0, np.inf, -np.inf], dtype=dtype)
    y = kernels.sigmoid_forward(x, launcher=launcher)
    assert y[0] == 1 and y[1] == 0 and y[4] == 1 and y[5] == 0
    assert 0 < y[3] < 1e-21  # exp(-50) keeps its relative precision instead of rounding 1 - 1 to 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_sigmoid_backward_matches_pytorch_formula(launcher, dtype, size):
    x = inputs(size, dtype)
    y = kernels.sigmoid_forward(x, launcher=launcher)
    grad = inputs(size, dtype, seed=3)[::-1].copy()
    out = kernels.sigmoid_backward(grad, y, launcher=launcher)
    # grad * (1 - y) * y rounded in the dtype after each operation, in PyTorch's order.
    one = np.asarray(1, dtype=dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        expected = grad * (one - y) * y
    assert_same(out, expected)


def test_non_contiguous_inputs_and_launch_shape(launcher):
    x = inputs(1000, "float32").reshape(20, 50)[:, ::2]  # strided view: copied to contiguous first
    out = kernels.clamp_forward(x, -0.5, 0.7, launcher=launcher)
    assert out.shape == (20, 25)
    assert_same(out, torch.clamp(torch.tensor(x), -0.5, 0.7).numpy())
    _, grid, block = launcher.launches[-1]
    assert block == (256, 1, 1) and grid == (2, 1, 1)  # ceil(500 / 256)
    kernels.sigmoid_forward(np.zeros(10**6, dtype=np.float32), launcher=launcher)
    assert launcher.launches[-1][1] == (2 * 16, 1, 1)  # at most 16 blocks per multiprocessor


def test_mismatched_arguments_fail_at_the_wrapper(launcher):
    with pytest.raises(ValueError, match="shapes differ"):
        kernels.sigmoid_backward(np.ones(3, np.float32), np.ones(4, np.float32), launcher=launcher)
    with pytest.raises(TypeError, match="float32"):
        kernels.clamp_backward(np.ones(3, np.float32), np.ones(3, np.float64), 0, 1, launcher=launcher)


# -- bias_activation and activation_backward: the GEMM's epilogue and prologue for products cuBLAS computes --

MATRIX_SHAPES = [(1, 1), (17, 33), (130, 70), (1000, 3), (3, 1000)]
ACTIVATIONS = ["none", "relu", "clamp", "sigmoid"]
CLAMP = (-0.5, 0.7)


def clamp_bounds(activation: str) -> dict:
    return {"clamp_min": CLAMP[0], "clamp_max": CLAMP[1]} if activation == "clamp" else {}


def activate_like_the_kernel(pre: np.ndarray, activation: str) -> np.ndarray:
    """The activation of a pre-activation in its own dtype: relu and clamp exactly, sigmoid in float64."""
    if activation == "relu":
        return np.maximum(pre, 0)
    if activation == "clamp":
        return np.minimum(np.maximum(pre, pre.dtype.type(CLAMP[0])), pre.dtype.type(CLAMP[1]))
    if activation == "sigmoid":
        return 1 / (1 + np.exp(-pre.astype(np.float64)))
    return pre


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", MATRIX_SHAPES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_bias_activation(launcher, dtype, activation, shape, with_bias):
    _, cols = shape
    rng = np.random.default_rng(41)
    z = (rng.standard_normal(shape) * 2).astype(dtype)
    bias = rng.standard_normal(cols).astype(dtype) if with_bias else None
    original = z.copy()
    y, saved = kernels.bias_activation(z, bias, activation, launcher=launcher, **clamp_bounds(activation))
    pre = original + bias if with_bias else original  # rounded in the dtype, as the kernel adds
    assert y.shape == shape and y.dtype == dtype and y is not z
    expected = activate_like_the_kernel(pre, activation)
    if activation == "sigmoid":
        assert not np.isnan(y).any()
        np.testing.assert_allclose(y, expected, rtol=4 * np.finfo(dtype).eps, atol=np.finfo(dtype).tiny)
    else:
        assert_same(y, expected)
    # saved as linear_forward defines it.
    if activation == "none":
        assert saved is None
    elif activation == "clamp":
        assert_same(saved, pre)
        assert saved is z  # contiguous: the pre-activation went into z itself, in the same pass
    else:
        assert saved is y
    if activation != "clamp" or not with_bias:
        assert_same(z, original)  # z is written only where the pre-activation must be kept


@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_activation_on_a_transposed_product_leaves_it_alone(launcher, dtype):
    rng = np.random.default_rng(42)
    z = rng.standard_normal((33, 17)).astype(dtype).T  # (17, 33), not contiguous: copied first
    original = z.copy()
    bias = rng.standard_normal(33).astype(dtype)
    y, saved = kernels.bias_activation(z, bias, "clamp", *CLAMP, launcher=launcher)
    assert_same(saved, original + bias)
    assert_same(y, activate_like_the_kernel(original + bias, "clamp"))
    assert_same(z, original)
    kernel, grid, block = launcher.launches[-1]
    assert kernel == f"gradcore::bias_activation<{'float' if dtype == 'float32' else 'double'}>"
    assert block == (256, 1, 1) and grid == (3, 1, 1)  # ceil(561 / 256)


def gradient_and_saved(rng, shape, dtype: str, activation: str) -> tuple:
    """An upstream gradient and what the forward pass saved: relu's output with exact zeros, sigmoid's output,
    clamp's pre-activation with values on both bounds."""
    grad = rng.standard_normal(shape).astype(dtype)
    z = rng.standard_normal(shape) * 2
    z.reshape(-1)[:2] = CLAMP[: z.size]
    if activation == "relu":
        return grad, np.maximum(z, 0).astype(dtype)
    if activation == "sigmoid":
        return grad, (1 / (1 + np.exp(-z))).astype(dtype)
    return grad, z.astype(dtype)


def derivative_in_dtype(grad, saved, activation: str):
    """grad * activation'(saved) as activation.cuh computes it, in the arrays' dtype."""
    t = grad.dtype.type
    if activation == "relu":
        return np.where(saved <= 0, t(0), grad)
    if activation == "clamp":
        return np.where((saved >= t(CLAMP[0])) & (saved <= t(CLAMP[1])), grad, t(0))
    if activation == "sigmoid":
        return grad * (t(1) - saved) * saved
    return grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", MATRIX_SHAPES)
def test_activation_backward_with_column_sums(launcher, dtype, activation, shape):
    rng = np.random.default_rng(43)
    grad, saved = gradient_and_saved(rng, shape, dtype, activation)
    dz, sums = kernels.activation_backward(grad, saved, activation, column_sums=True, launcher=launcher,
                                           **clamp_bounds(activation))
    expected = derivative_in_dtype(grad, saved, activation)
    assert_same(dz, expected)
    if activation == "none":
        assert dz is grad  # nothing to multiply: the kernel only summed it
    rows = shape[0]
    exact = expected.astype(np.float64)
    assert sums.shape == (shape[1],) and sums.dtype == dtype and not np.isnan(sums).any()
    error = np.abs(sums - exact.sum(axis=0))
    bound = (rows + 8) * np.finfo(dtype).eps * np.abs(exact).sum(axis=0)
    assert (error <= bound).all(), f"column sums off by up to {error.max()}"
    # Without column sums: the same dz from the elementwise kernel, and no sums.
    alone, none = kernels.activation_backward(grad, saved, activation, column_sums=False, launcher=launcher,
                                              **clamp_bounds(activation))
    assert none is None
    assert_same(alone, dz)


@pytest.mark.parametrize("dtype", DTYPES)
def test_column_sums_are_deterministic_and_owned_by_blocks(launcher, dtype):
    """A 2-d grid: blocks of 32 columns by blocks of rows (each thread covering at least 4 rows), each writing
    its partial sums, then one pass that adds them per column in a fixed order; one launch where one block of
    rows covers the matrix. The sums repeat bit for bit."""
    rng = np.random.default_rng(44)
    grad, saved = gradient_and_saved(rng, (300, 1000), dtype, "sigmoid")
    first = kernels.activation_backward(grad, saved, "sigmoid", column_sums=True, launcher=launcher)
    (kernel, grid, block), (second_pass, sum_grid, _) = launcher.launches[-2:]
    assert kernel.startswith("gradcore::activation_backward<") and second_pass.startswith("gradcore::column_sums<")
    # 32 columns per block: ceil(1000 / 32) blocks across; 8 rows of threads x 4 rows each: ceil(300 / 32) down.
    assert block == (32, 8, 1) and grid == (32, 10, 1)
    assert sum_grid == (4, 1, 1)  # one thread per column: ceil(1000 / 256) blocks
    second = kernels.activation_backward(grad, saved, "sigmoid", column_sums=True, launcher=launcher)
    assert first[1].tobytes() == second[1].tobytes()
    exact = derivative_in_dtype(grad, saved, "sigmoid").astype(np.float64)
    bound = 308 * np.finfo(dtype).eps * np.abs(exact).sum(axis=0)
    assert (np.abs(first[1] - exact.sum(axis=0)) <= bound).all()
    kernels.activation_backward(grad[:, :3], saved[:, :3], "sigmoid", column_sums=True, launcher=launcher)
    (_, grid, block), _ = launcher.launches[-2:]
    assert block == (4, 64, 1) and grid == (1, 2, 1)  # narrow: 4 columns, 64 rows of threads, 256 rows a block
    kernels.activation_backward(grad[:32], saved[:32], "sigmoid", column_sums=True, launcher=launcher)
    kernel, grid, block = launcher.launches[-1]
    assert kernel.startswith("gradcore::activation_backward<") and grid == (32, 1, 1)  # one pass


def test_row_blocks_are_bounded_and_follow_the_shape_alone():
    assert kernels._column_sum_launch(1, 1) == ((1, 1, 1), (1, 256, 1))
    assert kernels._column_sum_launch(10**7, 64) == ((2, kernels.COLUMN_SUM_MAX_ROW_BLOCKS, 1), (32, 8, 1))
    assert kernels._column_sum_launch(33, 1000)[0] == (32, 2, 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_backward_masks_select_rather_than_multiply(launcher, dtype):
    # A NaN or infinite gradient where the mask is off gives 0, as PyTorch's threshold and clamp backward do.
    grad = np.array([[np.nan, np.inf, 1.0], [-np.inf, 2.0, np.nan]], dtype=dtype)
    saved = np.array([[0.0, -1.0, 3.0], [-2.0, 0.5, 0.0]], dtype=dtype)
    dz, sums = kernels.activation_backward(grad, saved, "relu", column_sums=True, launcher=launcher)
    assert_same(dz, np.array([[0, 0, 1], [0, 2, 0]], dtype=dtype))
    assert_same(sums, np.array([0, 2, 1], dtype=dtype))


def test_empty_and_wrong_arguments(launcher):
    dz, sums = kernels.activation_backward(np.ones((0, 4), np.float32), np.ones((0, 4), np.float32), "relu",
                                           column_sums=True, launcher=launcher)
    assert dz.shape == (0, 4)
    assert_same(sums, np.zeros(4, np.float32))
    y, saved = kernels.bias_activation(np.ones((0, 4), np.float32), np.ones(4, np.float32), "relu",
                                       launcher=launcher)
    assert y.shape == (0, 4) and saved is y
    with pytest.raises(ValueError, match="saved tensor"):
        kernels.activation_backward(np.ones((2, 2), np.float32), None, "relu", launcher=launcher)
    with pytest.raises(ValueError, match="2-d"):
        kernels.activation_backward(np.ones(3, np.float32), np.ones(3, np.float32), "relu", column_sums=True,
                                    launcher=launcher)
    with pytest.raises(ValueError, match="shapes differ"):
        kernels.activation_backward(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32), "relu",
                                    column_sums=True, launcher=launcher)
    with pytest.raises(ValueError, match="bias"):
        kernels.bias_activation(np.ones((2, 3), np.float32), np.ones(2, np.float32), "relu", launcher=launcher)
    with pytest.raises(TypeError, match="float32"):
        kernels.bias_activation(np.ones((2, 3), np.float32), np.ones(3, np.float64), "relu", launcher=launcher)
    with pytest.raises(ValueError, match="activation"):
        kernels.bias_activation(np.ones((2, 3), np.float32), activation="tanh", launcher=launcher)
