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
