"""Activations: sigmoid, relu, clamp, softmax and log_softmax, written to stay finite for extreme inputs."""
from __future__ import annotations

from .. import _dtypes
from ..autograd.function import Function
from ._util import Tensor, array_module, make_tensor, normalize_dim, result_type

__all__ = ["sigmoid", "relu", "clamp", "softmax", "log_softmax"]


def _float_data(x: Tensor):
    d = x._data
    return d if x.dtype.is_floating_point else d.astype(_dtypes.get_default_dtype().numpy)


class Sigmoid(Function):
    node_name = "SigmoidBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        data = _float_data(x)
        xp = array_module(data)
        # exp(-|x|) never overflows; both branches are exact where they are used.
        e = xp.exp(-xp.abs(data))
        out = xp.where(data >= 0, 1 / (1 + e), e / (1 + e)).astype(data.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)


class Relu(Function):
    node_name = "ReluBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        data = x._data
        out = array_module(data).maximum(data, 0).astype(data.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * make_tensor(out._data > 0)


class Clamp(Function):
    node_name = "ClampBackward1"
    builtin = True

    @staticmethod
    def forward(ctx, x, low, high):
        dtype = result_type(*(v for v in (x, low, high) if v is not None))
        data = x._data if x._data.dtype == dtype.numpy else x._data.astype(dtype.numpy)
        xp = array_module(data)
        out = data
        if low is not None:
            out = xp.maximum(out, dtype.numpy.type(low))
        if high is not None:
            out = xp.minimum(out, dtype.numpy.type(high))
        if out is data:
            out = data.copy()
        if ctx.needs_input_grad[0]:
            inside = True
            if low is not None:
                inside = data >= low
            if high is not None:
                inside = (data <= high) & inside
            ctx.save_for_backward(inside)
        return out

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * make_tensor(inside), None, None


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
