"""The numerical checking tools themselves: gradcheck, gradgradcheck and detect_anomaly."""

import numpy as np
import pytest

import gradcore
from gradcore.autograd import Function, gradcheck, gradgradcheck


def leaf(*shape, seed=0, low=-1.0, high=1.0):
    values = np.random.default_rng(seed).uniform(low, high, size=shape)
    return gradcore.tensor(values, dtype=gradcore.float64, requires_grad=True)


class Square(Function):
    """x**2 with a correct hand-written backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


class WrongSquare(Function):
    """x**2 whose backward is off by a factor 1.5: gradcheck must notice."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3 * x * grad


class MulWrongSecondGrad(Function):
    """a*b whose gradient for the second input is wrong; the first is right."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad * b, grad * (a + 1)


class MyFunc(Function):
    """Doubles its input; its backward produces NaN."""

    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


# --------------------------------------------------------------------------------------
# gradcheck
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn, n_inputs",
    [
        pytest.param(lambda x: x.exp().sum(), 1, id="scalar_output"),
        pytest.param(lambda x: x.tanh() * 3, 1, id="tensor_output"),
        pytest.param(lambda a, b: a @ b.t(), 2, id="two_inputs"),
        pytest.param(lambda x: (x.sin(), x.cos() * 2), 1, id="tuple_output"),
        pytest.param(lambda x: Square.apply(x), 1, id="custom_function"),
    ],
)
def test_gradcheck_passes_on_correct_functions(fn, n_inputs):
    inputs = tuple(leaf(3, 3, seed=i) for i in range(n_inputs))
    assert gradcheck(fn, inputs) is True


def test_gradcheck_accepts_single_tensor_input_and_keywords():
    assert gradcheck(lambda x: x.sigmoid(), leaf(4), eps=1e-6, atol=1e-5, rtol=1e-3) is True


def test_gradcheck_ignores_inputs_not_requiring_grad():
    # The constant operand takes no part in the check; only x's Jacobian is compared.
    const = gradcore.tensor(np.array([1.0, 2.0, 3.0]), dtype=gradcore.float64)
    assert gradcheck(lambda x, c: x * c, (leaf(3), const)) is True


def test_gradcheck_raises_on_wrong_backward():
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        gradcheck(WrongSquare.apply, (leaf(3, seed=1),))


def test_gradcheck_error_is_runtime_error_subclass():
    with pytest.raises(RuntimeError) as info:
        gradcheck(WrongSquare.apply, (leaf(2, 2, seed=2),))
    assert isinstance(info.value, RuntimeError)
    assert "Jacobian mismatch" in str(info.value)


def test_gradcheck_reports_the_offending_input():
    # Only input 1 has a wrong gradient, so the message must point at it.
    a, b = leaf(3, seed=3), leaf(3, seed=4)
    with pytest.raises(RuntimeError, match="Jacobian mismatch") as info:
        gradcheck(MulWrongSecondGrad.apply, (a, b))
    assert "input 1" in str(info.value)


def test_gradcheck_raise_exception_false_returns_false():
    assert gradcheck(WrongSquare.apply, (leaf(3, seed=5),), raise_exception=False) is False


def test_gradcheck_raise_exception_false_still_true_when_correct():
    assert gradcheck(Square.apply, (leaf(3, seed=6),), raise_exception=False) is True


def test_gradcheck_tolerances_are_used():
    # A backward that is off by 0.5% passes with rtol=1e-2 and fails with the default rtol=1e-3.
    class SlightlyOff(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3

        @staticmethod
        def backward(ctx, grad):
            return grad * 3.015

    x = leaf(3, seed=7)
    assert gradcheck(SlightlyOff.apply, (x,), rtol=1e-2) is True
    assert gradcheck(SlightlyOff.apply, (x,), raise_exception=False) is False


def test_gradcheck_leaves_inputs_unchanged():
    # Finite differences perturb the inputs; they must be restored afterwards.
    x = leaf(2, 3, seed=8)
    before = x.detach().numpy().copy()
    gradcheck(lambda t: t.exp(), (x,))
    np.testing.assert_array_equal(x.detach().numpy(), before)


# --------------------------------------------------------------------------------------
# gradgradcheck
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda x: x.exp() * x.sin(), id="exp_sin"),
        pytest.param(lambda x: (x @ x.t()).tanh(), id="matmul_tanh"),
        pytest.param(lambda x: x.softmax(-1), id="softmax"),
        pytest.param(lambda x: Square.apply(x), id="custom_function_differentiable_backward"),
    ],
)
def test_gradgradcheck_passes_on_smooth_functions(fn):
    assert gradgradcheck(fn, (leaf(3, 3, seed=9),)) is True


def test_gradgradcheck_raises_when_double_backward_is_wrong():
    # First derivatives are right; the backward is computed with a detached input,
    # so its own derivative with respect to x is lost.
    class DetachedSquare(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x.detach() * grad

    x = leaf(3, seed=10)
    assert gradcheck(DetachedSquare.apply, (x,)) is True
    with pytest.raises(RuntimeError):
        gradgradcheck(DetachedSquare.apply, (x,))
    assert gradgradcheck(DetachedSquare.apply, (x,), raise_exception=False) is False


# --------------------------------------------------------------------------------------
# detect_anomaly
# --------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_detect_anomaly_names_function_returning_nan():
    x = leaf(3, seed=11)
    with gradcore.autograd.detect_anomaly():
        y = MyFunc.apply(x).sum()
        message = "Function 'MyFuncBackward' returned nan values in its 0th output"
        with pytest.raises(RuntimeError, match=message):
            y.backward()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_without_detect_anomaly_nan_gradient_propagates_silently():
    # Anomaly mode is off by default: NaN gradients are not an error.
    x = leaf(3, seed=12)
    MyFunc.apply(x).sum().backward()
    assert np.isnan(x.grad.numpy()).all()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_detect_anomaly_passes_when_gradients_are_finite():
    x = leaf(3, seed=13)
    with gradcore.autograd.detect_anomaly():
        (x.exp() * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(x.detach().numpy()))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_detect_anomaly_is_scoped_to_the_with_block():
    x = leaf(3, seed=14)
    with gradcore.autograd.detect_anomaly():
        pass
    MyFunc.apply(x).sum().backward()  # no longer checked: must not raise
    assert np.isnan(x.grad.numpy()).all()
