"""Activations: sigmoid, relu, clamp, softmax, log_softmax, leaky_relu, gelu and erf, finite for extreme inputs."""
from __future__ import annotations

import math

from .. import _dtypes
from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..backend import kernels
from ._util import Tensor, array_module, make_tensor, normalize_dim, result_type

__all__ = ["sigmoid", "relu", "clamp", "softmax", "log_softmax", "leaky_relu", "gelu", "erf"]


def _float_data(x: Tensor):
    d = x._data
    return d if x.dtype.is_floating_point else d.astype(_dtypes.get_default_dtype().numpy)


# Sigmoid, relu and clamp run our CUDA kernels (kernels/elementwise.cu) where ``kernels.runs_on`` says their
# arrays qualify (float32/float64 on a CUDA device); everywhere else they keep the array-module code. A kernel
# computes a backward only while no graph is being recorded (grad mode is off inside backward unless
# create_graph=True): its result has no history, so a gradient that will itself be differentiated is computed
# with tensor ops instead.

def _backward_launcher(grad: Tensor, saved: Tensor):
    """Returns the launcher for an elementwise backward kernel over ``grad`` and ``saved``, or None."""
    if is_grad_enabled() or grad.shape != saved.shape:
        return None
    return kernels.runs_on(grad._data, saved._data)


class Sigmoid(Function):
    node_name = "SigmoidBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        data = _float_data(x)
        launcher = kernels.runs_on(data)
        if launcher is not None:
            out = kernels.sigmoid_forward(data, launcher=launcher)
        else:
            xp = array_module(data)
            # exp(-|x|) never overflows; both branches are exact where they are used.
            e = xp.exp(-xp.abs(data))
            out = xp.where(data >= 0, 1 / (1 + e), e / (1 + e)).astype(data.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        launcher = _backward_launcher(grad, out)
        if launcher is not None:
            return make_tensor(kernels.sigmoid_backward(grad._data, out._data, launcher=launcher))
        return grad * out * (1 - out)


class Relu(Function):
    node_name = "ReluBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        data = x._data
        launcher = kernels.runs_on(data)
        if launcher is not None:
            out = kernels.clamp_forward(data, 0, None, launcher=launcher)
        else:
            out = array_module(data).maximum(data, 0).astype(data.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        launcher = _backward_launcher(grad, out)
        if launcher is not None:
            return make_tensor(kernels.relu_backward(grad._data, out._data, launcher=launcher))
        if not is_grad_enabled():  # no graph to record: one array product instead of a mask op and a mul op
            return make_tensor(grad._data * (out._data > 0))
        return grad * make_tensor(out._data > 0)


class Clamp(Function):
    node_name = "ClampBackward1"
    builtin = True

    @staticmethod
    def forward(ctx, x, low, high):
        dtype = result_type(*(v for v in (x, low, high) if v is not None))
        data = x._data if x._data.dtype == dtype.numpy else x._data.astype(dtype.numpy)
        # The kernel writes an output of its input's type: only where the result keeps x's dtype.
        launcher = kernels.runs_on(data) if data is x._data else None
        if launcher is not None:
            out = kernels.clamp_forward(data, low, high, launcher=launcher)
            if ctx.needs_input_grad[0]:
                # x itself, not a mask: clamp_backward tests the bounds on x in the pass that applies them. An
                # in-place clamp_ hands forward a snapshot of x, so the result never overwrites what is saved.
                ctx.bounds = (low, high)
                ctx.save_for_backward(x)
            return out
        xp = array_module(data)
        out = data
        if low is not None:
            out = xp.maximum(out, dtype.numpy.type(low))
        if high is not None:
            out = xp.minimum(out, dtype.numpy.type(high))
        if out is data:
            out = data.copy()
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(_inside(data, low, high))
        return out

    @staticmethod
    def backward(ctx, grad):
        (saved,) = ctx.saved_tensors
        if not isinstance(saved, Tensor):  # the array path saved the mask
            if not is_grad_enabled():
                return make_tensor(grad._data * saved), None, None
            return grad * make_tensor(saved), None, None
        low, high = ctx.bounds
        launcher = _backward_launcher(grad, saved)
        if launcher is not None:
            grad_x = make_tensor(kernels.clamp_backward(grad._data, saved._data, low, high, launcher=launcher))
        else:
            grad_x = grad * make_tensor(_inside(saved._data, low, high))
        return grad_x, None, None


def _inside(data, low, high):
    """Returns where the clamp gradient passes: low <= data <= high, a bound that is None passing everything."""
    inside = True
    if low is not None:
        inside = data >= low
    if high is not None:
        inside = (data <= high) & inside
    return inside


def sigmoid(input):
    """Returns 1 / (1 + exp(-input)), finite for any input."""
    return Sigmoid.apply(input)


def relu(input):
    """Returns max(input, 0)."""
    return Relu.apply(input)


def clamp(input, min=None, max=None):
    """Clamps every element into [min, max]; the gradient passes where min <= input <= max."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        from .elementwise import maximum, minimum

        out = input
        if min is not None:
            out = maximum(out, min if isinstance(min, Tensor) else make_tensor(array_module(input._data).asarray(min, dtype=input.dtype.numpy)))
        if max is not None:
            out = minimum(out, max if isinstance(max, Tensor) else make_tensor(array_module(input._data).asarray(max, dtype=input.dtype.numpy)))
        return out
    for name, v in (("min", min), ("max", max)):
        if v is not None and not isinstance(v, (int, float)):
            raise TypeError(f"clamp(): argument '{name}' must be Number, not {type(v).__name__}")
    return Clamp.apply(input, min, max)


class Softmax(Function):
    node_name = "SoftmaxBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, dim):
        data = _float_data(x)
        xp = array_module(data)
        if data.ndim == 0:
            out = xp.ones_like(data)
        else:
            shifted = data - data.max(axis=dim, keepdims=True)
            e = xp.exp(shifted)
            out = e / e.sum(axis=dim, keepdims=True)
        ctx.dim = dim
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        dim = ctx.dim if out.ndim else None
        return out * (grad - (grad * out).sum(dim=dim, keepdim=True)), None


class LogSoftmax(Function):
    node_name = "LogSoftmaxBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, dim):
        data = _float_data(x)
        xp = array_module(data)
        if data.ndim == 0:
            out = xp.zeros_like(data)
        else:
            shifted = data - data.max(axis=dim, keepdims=True)
            out = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        ctx.dim = dim
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        dim = ctx.dim if out.ndim else None
        return grad - out.exp() * grad.sum(dim=dim, keepdim=True), None


def _softmax_dim(input, dim):
    if dim is None:
        # PyTorch's legacy implicit choice, kept so old code runs.
        dim = 0 if input.ndim in (0, 1, 3) else 1
    return normalize_dim(dim, input.ndim)


def softmax(input, dim=None, dtype=None):
    """Returns exp(input) normalised to sum to one along ``dim``."""
    if dtype is not None:
        input = input.to(dtype)
    return Softmax.apply(input, _softmax_dim(input, dim))


def log_softmax(input, dim=None, dtype=None):
    """Returns log(softmax(input)) computed without overflow."""
    if dtype is not None:
        input = input.to(dtype)
    return LogSoftmax.apply(input, _softmax_dim(input, dim))


class LeakyRelu(Function):
    node_name = "LeakyReluBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, negative_slope):
        data = x._data
        positive = data > 0
        # Keeping the mask (not x) lets an in-place leaky_relu overwrite x without invalidating backward.
        ctx.positive, ctx.negative_slope = positive, negative_slope
        return array_module(data).where(positive, data, data * data.dtype.type(negative_slope))

    @staticmethod
    def backward(ctx, grad):
        # The slope applies at 0 too, as in PyTorch.
        slope = make_tensor(array_module(ctx.positive).where(ctx.positive, 1.0, ctx.negative_slope).astype(grad.dtype.numpy))
        return grad * slope, None


def leaky_relu(input, negative_slope: float = 0.01):
    """Returns max(0, input) + negative_slope * min(0, input)."""
    return LeakyRelu.apply(input, negative_slope)


# erf has no numpy counterpart, so it is evaluated with array arithmetic that numpy and CuPy share.
_ERF_SERIES_TERMS = 50  # enough for |x| <= 3: the last term is below 1e-17 of the sum
_ERFC_FRACTION_DEPTH = 60  # enough for |x| >= 3: the truncated continued fraction is exact to ~1e-17
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _erf_array(data):
    """erf of a float array to float64 accuracy.

    For |x| <= 3 the series erf(x) = 2/sqrt(pi) exp(-x^2) sum_n (2x^2)^n x / (1*3*...*(2n+1)) has only
    positive terms, so it loses nothing to cancellation.  For |x| > 3, erfc(|x|) comes from its continued
    fraction exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + (2/2)/(x + (3/2)/(x + ...)))), evaluated from the bottom.
    """
    xp = array_module(data)
    x = data.astype(xp.float64)
    a = xp.abs(x)

    small = xp.minimum(a, 3.0)
    two_x2 = 2.0 * small * small
    term = small.copy()
    total = small.copy()
    for n in range(1, _ERF_SERIES_TERMS):
        term = term * two_x2 / (2 * n + 1)
        total = total + term
    erf_small = _TWO_OVER_SQRT_PI * xp.exp(-small * small) * total

    large = xp.maximum(a, 3.0)
    fraction = large
    for k in range(_ERFC_FRACTION_DEPTH, 0, -1):
        fraction = large + (k / 2.0) / fraction
    erf_large = 1.0 - xp.exp(-large * large) / (math.sqrt(math.pi) * fraction)

    out = xp.sign(x) * xp.where(a <= 3.0, erf_small, erf_large)
    return out.astype(data.dtype, copy=False)


class Erf(Function):
    node_name = "ErfBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _erf_array(_float_data(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((-(x * x)).exp() * _TWO_OVER_SQRT_PI)


def erf(input):
    """Returns the error function 2/sqrt(pi) * integral from 0 to input of exp(-t^2) dt."""
    return Erf.apply(input)


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_SCALE = math.sqrt(2.0 / math.pi)
_TANH_CUBIC = 0.044715


def _sigmoid_array(data):
    """1 / (1 + exp(-x)) of an array, without overflow (exp only sees -|x|)."""
    xp = array_module(data)
    e = xp.exp(-xp.abs(data))
    return xp.where(data >= 0, 1 / (1 + e), e / (1 + e))


class Gelu(Function):
    node_name = "GeluBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, approximate):
        data = _float_data(x)
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        if approximate == "tanh":
            # 0.5 * (1 + tanh(u)) = sigmoid(2u): no cancellation where tanh(u) is close to -1.
            inner = _TANH_SCALE * (data + _TANH_CUBIC * data * data * data)
            return (data * _sigmoid_array(2.0 * inner)).astype(data.dtype, copy=False)
        return (0.5 * data * (1.0 + _erf_array(data * _SQRT_HALF))).astype(data.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        # Written with tensor ops so that the gradient is itself differentiable (double backward).
        (x,) = ctx.saved_tensors
        if ctx.approximate == "tanh":
            # d/dx x * s(2u) = s + 2x s (1 - s) du/dx, with s = sigmoid(2u).
            inner = (x + x * x * x * _TANH_CUBIC) * _TANH_SCALE
            s = sigmoid(inner * 2)
            d_inner = (x * x * (3 * _TANH_CUBIC) + 1) * _TANH_SCALE
            return grad * (s + x * 2 * s * (1 - s) * d_inner), None
        cdf = (erf(x * _SQRT_HALF) + 1) * 0.5
        pdf = (x * x * -0.5).exp() * _INV_SQRT_2PI
        return grad * (cdf + x * pdf), None


def gelu(input, approximate: str = "none"):
    """Returns x * Phi(x), Phi the standard normal CDF; ``approximate='tanh'`` uses the tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    return Gelu.apply(input, approximate)
