"""Reductions: sum, mean, max/min (with and without dim), amax/amin, var/std, logsumexp, argmax/argmin."""
from __future__ import annotations

import builtins
import operator

from .. import _dtypes
from .._arg_errors import refuses_keepdim_and_keepdims
from .._keepdim import KEEPDIM_NOT_GIVEN, resolve_keepdim
from ..autograd.function import Function
from ..autograd.grad_mode import state as _grad_state
from ..backend import broadcast_view
from ._util import (Tensor, arith, array_module, make_tensor, normalize_dim, normalize_dims, quiet_float_errors,
                    return_type)

__all__ = ["sum", "mean", "max", "min", "amax", "amin", "var", "std", "logsumexp", "argmax", "argmin",
           "all", "any", "prod", "norm", "cumsum", "cumprod"]


def _expand_back(grad: Tensor, input_shape: tuple, dims: tuple, keepdim: bool) -> Tensor:
    """Broadcasts the gradient of a reduction back over the reduced dims (a view: nothing is copied)."""
    reshape = not keepdim and dims and len(dims) < len(input_shape)
    if reshape:
        shape = list(input_shape)
        for d in dims:
            shape[d] = 1
    if not _grad_state.enabled:
        # Nothing to record (no create_graph): the broadcast array itself, without the nodes of two view ops.
        data = grad._data
        return make_tensor(broadcast_view(data.reshape(tuple(shape)) if reshape else data, input_shape))
    if reshape:
        grad = grad.reshape(tuple(shape))
    return grad.expand(input_shape)


def _count(shape: tuple, dims: tuple) -> int:
    n = 1
    for d in dims:
        n *= shape[d]
    return n


class Sum(Function):
    node_name = "SumBackward1"
    builtin = True

    @staticmethod
    def forward(ctx, x, dims, keepdim, dtype):
        ctx.input_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        data = x._data
        if dtype is None and data.dtype.kind != "f":
            dtype = _dtypes.int64
        # axis=None is numpy's fast path for a full reduction.
        axis = None if len(dims) == data.ndim and not keepdim else dims
        return data.sum(axis=axis, keepdims=keepdim, dtype=None if dtype is None else dtype.numpy)

    @staticmethod
    def backward(ctx, grad):
        return _expand_back(grad, ctx.input_shape, ctx.dims, ctx.keepdim), None, None, None


class SumAll(Sum):
    node_name = "SumBackward0"


@refuses_keepdim_and_keepdims("sum", needs_dim=True)
def sum(input, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None, dtype=None):
    """Returns the sum over ``dim`` (all elements when None)."""
    keepdim = resolve_keepdim("sum", keepdim, keepdims)
    if not isinstance(input, Tensor):
        raise TypeError(f"sum(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    dims = normalize_dims(dim, input.ndim, empty_means_all=True)
    if dim is None and not keepdim:
        return SumAll.apply(input, dims, False, dtype)
    return Sum.apply(input, dims, keepdim, dtype)


class Mean(Function):
    node_name = "MeanBackward1"
    builtin = True

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.input_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        ctx.count = _count(x.shape, dims)
        return x._data.mean(axis=dims, keepdims=keepdim) if x._data.size else \
            array_module(x._data).full(_reduced_shape(x.shape, dims, keepdim), float("nan"), dtype=x._data.dtype)

    @staticmethod
    def backward(ctx, grad):
        return _expand_back(arith(operator.truediv, grad, ctx.count), ctx.input_shape, ctx.dims, ctx.keepdim), None, None


class MeanAll(Mean):
    node_name = "MeanBackward0"


def _reduced_shape(shape, dims, keepdim):
    if keepdim:
        return tuple(1 if i in dims else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in dims)


@refuses_keepdim_and_keepdims("mean", needs_dim=True)
def mean(input, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None, dtype=None):
    """Returns the mean over ``dim`` (all elements when None); needs a floating point input."""
    keepdim = resolve_keepdim("mean", keepdim, keepdims)
    if dtype is not None:
        input = input.to(dtype)
    if not input.dtype.is_floating_point:
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. "
            f"Got: {input.dtype.legacy_name}"
        )
    dims = normalize_dims(dim, input.ndim, empty_means_all=True)
    if dim is None and not keepdim:
        return MeanAll.apply(input, dims, False)
    return Mean.apply(input, dims, keepdim)


class Amax(Function):
    """amax/amin, and max()/min() without dim: the gradient is shared evenly among tied extremes."""

    node_name = "AmaxBackward0"
    builtin = True
    largest = True
    nan_is_extreme = False

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        data = x._data
        empty_dims = [d for d in dims if data.shape[d] == 0]
        if empty_dims or (data.size == 0 and not dims):
            if len(dims) == data.ndim:
                raise RuntimeError(
                    "max(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim "
                    "with the 'dim' argument."
                )
            raise IndexError(f"amax(): Expected reduction dim {empty_dims[0]} to have non-zero size.")
        reduce = data.max if ctx._forward_cls.largest else data.min
        out = reduce(axis=dims, keepdims=True)
        ctx.input_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        if builtins.any(ctx.needs_input_grad):
            is_extreme = data == out
            if ctx._forward_cls.nan_is_extreme and data.dtype.kind == "f":
                # max()/min() of all elements give a NaN result's gradient to the NaN elements, as PyTorch does
                # (amax/amin compare with ==, which no NaN passes).
                xp = array_module(data)
                is_extreme = is_extreme | (xp.isnan(data) & xp.isnan(out))
            ctx.save_for_backward(is_extreme)
        return out if keepdim else out.reshape(_reduced_shape(x.shape, dims, False))

    @staticmethod
    def backward(ctx, grad):
        (is_extreme,) = ctx.saved_tensors
        share = is_extreme / is_extreme.sum(axis=ctx.dims, keepdims=True)
        g = _expand_back(grad, ctx.input_shape, ctx.dims, ctx.keepdim)
        return g * make_tensor(share.astype(grad.dtype.numpy)), None, None


class Amin(Amax):
    node_name = "AminBackward0"
    largest = False


class MaxAll(Amax):
    node_name = "MaxBackward1"
    nan_is_extreme = True


class MinAll(Amax):
    node_name = "MinBackward1"
    largest = False
    nan_is_extreme = True


def amax(input, dim=(), keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
    """Returns the maximum over ``dim`` (all dims when empty)."""
    keepdim = resolve_keepdim("amax", keepdim, keepdims)
    dims = normalize_dims(None if dim == () else dim, input.ndim)
    return Amax.apply(input, dims, keepdim)


def amin(input, dim=(), keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
    """Returns the minimum over ``dim`` (all dims when empty)."""
    keepdim = resolve_keepdim("amin", keepdim, keepdims)
    dims = normalize_dims(None if dim == () else dim, input.ndim)
    return Amin.apply(input, dims, keepdim)


_MaxResult = return_type("max", ["values", "indices"], __name__, "_MaxResult")
_MinResult = return_type("min", ["values", "indices"], __name__, "_MinResult")


class MaxDim(Function):
    """max/min along one dim: values and indices; the gradient goes to the selected index."""

    node_name = "MaxBackward0"
    builtin = True
    largest = True

    @staticmethod
    def forward(ctx, x, dim, keepdim):
        data = x._data
        xp = array_module(data)
        if data.ndim == 0:
            data = data.reshape(1)
        if data.shape[dim] == 0:
            raise IndexError(
                f"max(): Expected reduction dim {dim} to have non-zero size."
            )
        indices = (xp.argmax if ctx._forward_cls.largest else xp.argmin)(data, axis=dim)
        indices = xp.expand_dims(indices, dim)
        values = xp.take_along_axis(data, indices, axis=dim)
        ctx.input_shape, ctx.dim, ctx.keepdim = x.shape, dim, keepdim
        ctx.save_for_backward(indices)
        if not keepdim or x.ndim == 0:
            values = values.reshape(_reduced_shape(x.shape, (dim,), False) if x.ndim else ())
            indices = indices.reshape(values.shape)
        ctx.mark_non_differentiable(indices)
        return values, indices.astype(_dtypes.int64.numpy)  # a new array: the saved one stays an array

    @staticmethod
    def backward(ctx, grad, grad_indices):
        (indices,) = ctx.saved_tensors
        from .indexing import gather_backward

        g = grad if ctx.keepdim or not ctx.input_shape else grad.unsqueeze(ctx.dim)
        return gather_backward(g, ctx.dim, indices, ctx.input_shape), None, None


class MinDim(MaxDim):
    node_name = "MinBackward0"
    largest = False


def _extreme(input, dim, keepdim, other, largest: bool):
    if isinstance(dim, Tensor):
        other, dim = dim, None
    if other is not None:
        from .elementwise import maximum, minimum

        return maximum(input, other) if largest else minimum(input, other)
    if dim is None:
        return (MaxAll if largest else MinAll).apply(input, normalize_dims(None, input.ndim), False)
    d = normalize_dim(dim, input.ndim)
    values, indices = (MaxDim if largest else MinDim).apply(input, d, keepdim)
    return (_MaxResult if largest else _MinResult)(values, indices)


@refuses_keepdim_and_keepdims("max", needs_dim=True)
def max(input, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None, other=None):
    """Returns the maximum of all elements, or (values, indices) along ``dim``, or ``maximum(input, other)``."""
    keepdim = resolve_keepdim("max", keepdim, keepdims)
    return _extreme(input, dim, keepdim, other, largest=True)


@refuses_keepdim_and_keepdims("min", needs_dim=True)
def min(input, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None, other=None):
    """Returns the minimum of all elements, or (values, indices) along ``dim``, or ``minimum(input, other)``."""
    keepdim = resolve_keepdim("min", keepdim, keepdims)
    return _extreme(input, dim, keepdim, other, largest=False)


class Var(Function):
    node_name = "VarBackward0"
    builtin = True
    take_sqrt = False

    @staticmethod
    def forward(ctx, x, dims, correction, keepdim):
        data = x._data
        xp = array_module(data)
        n = _count(x.shape, dims)
        mean_ = data.mean(axis=dims, keepdims=True) if data.size else data.sum(axis=dims, keepdims=True)
        centered = data - mean_
        divisor = n - correction
        with quiet_float_errors(data):
            out = (centered * centered).sum(axis=dims, keepdims=keepdim) / builtins.max(divisor, 0)
            if ctx._forward_cls.take_sqrt:
                out = xp.sqrt(out)
        out = xp.asarray(out, dtype=data.dtype)
        ctx.input_shape, ctx.dims, ctx.keepdim, ctx.divisor = x.shape, dims, keepdim, divisor
        ctx.save_for_backward(x, out if ctx._forward_cls.take_sqrt else None)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        centered = x - x.mean(dim=ctx.dims, keepdim=True)
        if ctx._forward_cls.take_sqrt:
            # Where the deviation is 0 (constant input) the gradient is 0, as in PyTorch, not 0/0.
            from .elementwise import where

            with quiet_float_errors(grad._data):
                scale = where(out == 0, 0.0, grad / (out * ctx.divisor))
        else:
            scale = grad * (2.0 / ctx.divisor)
        return _expand_back(scale, ctx.input_shape, ctx.dims, ctx.keepdim) * centered, None, None, None


class Std(Var):
    node_name = "StdBackward0"
    take_sqrt = True


def _correction(unbiased, correction) -> float:
    if correction is not None:
        if unbiased is not None:
            raise RuntimeError("var: can't pass both unbiased and correction")
        return correction
    if unbiased is None:
        return 1
    return 1 if unbiased else 0


@refuses_keepdim_and_keepdims("var")
def var(input, dim=None, unbiased=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None, correction=None):
    """Returns the variance over ``dim`` (Bessel's correction unless ``unbiased=False`` or ``correction=0``)."""
    keepdim = resolve_keepdim("var", keepdim, keepdims)
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"std and var only support floating point and complex dtypes, got {input.dtype.legacy_name}")
    dims = normalize_dims(dim, input.ndim, empty_means_all=True)
    return Var.apply(input, dims, _correction(unbiased, correction), keepdim)


@refuses_keepdim_and_keepdims("std")
def std(input, dim=None, unbiased=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None, correction=None):
    """Returns the standard deviation over ``dim`` (Bessel's correction by default)."""
    keepdim = resolve_keepdim("std", keepdim, keepdims)
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"std and var only support floating point and complex dtypes, got {input.dtype.legacy_name}")
    dims = normalize_dims(dim, input.ndim, empty_means_all=True)
    return Std.apply(input, dims, _correction(unbiased, correction), keepdim)


class LogSumExp(Function):
    node_name = "LogsumexpBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        data = x._data
        xp = array_module(data)
        if not x.dtype.is_floating_point:
            data = data.astype(_dtypes.get_default_dtype().numpy)
        if data.size == 0:
            out = xp.full(_reduced_shape(x.shape, dims, True), -xp.inf, dtype=data.dtype)
        else:
            peak = data.max(axis=dims, keepdims=True)
            peak = xp.where(xp.isfinite(peak), peak, 0)  # all -inf (or inf) rows: keep the plain formula
            with quiet_float_errors(data):
                out = xp.log(xp.exp(data - peak).sum(axis=dims, keepdims=True)) + peak
        ctx.input_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        result = out if keepdim else out.reshape(_reduced_shape(x.shape, dims, False))
        ctx.save_for_backward(x, result)
        return result

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        from .elementwise import exp

        g = _expand_back(grad, ctx.input_shape, ctx.dims, ctx.keepdim)
        return g * exp(x - _expand_back(out, ctx.input_shape, ctx.dims, ctx.keepdim)), None, None


def logsumexp(input, dim=KEEPDIM_NOT_GIVEN, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
    """Returns log(sum(exp(input))) over ``dim`` (which must be given), computed without overflow."""
    if dim is KEEPDIM_NOT_GIVEN:
        raise TypeError('logsumexp() missing 1 required positional arguments: "dim"')
    keepdim = resolve_keepdim("logsumexp", keepdim, keepdims)
    dims = normalize_dims(dim, input.ndim, empty_means_all=True)
    return LogSumExp.apply(input, dims, keepdim)


def _arg_extreme(input, dim, keepdim, largest: bool):
    data = input._data
    xp = array_module(data)
    fn = xp.argmax if largest else xp.argmin
    if data.size == 0:
        if dim is None:
            raise IndexError(f"{'argmax' if largest else 'argmin'}(): Expected reduction dim to be specified for "
                             "input.numel() == 0.")
        d = normalize_dim(dim, input.ndim)
        if data.ndim == 0 or data.shape[d] == 0:
            raise IndexError(f"{'argmax' if largest else 'argmin'}(): Expected reduction dim {d} to have non-zero "
                             "size.")
    if dim is None:
        out = fn(data.reshape(-1))
        if keepdim:
            out = xp.asarray(out).reshape((1,) * data.ndim)
        return make_tensor(xp.asarray(out, dtype=_dtypes.int64.numpy))
    d = normalize_dim(dim, input.ndim)
    if data.ndim == 0:
        return make_tensor(xp.zeros((), dtype=_dtypes.int64.numpy))
    out = fn(data, axis=d)
    if keepdim:
        out = xp.expand_dims(out, d)
    return make_tensor(xp.asarray(out, dtype=_dtypes.int64.numpy))


def argmax(input, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
    """Returns the index of the maximum (over the flattened tensor when ``dim`` is None)."""
    keepdim = resolve_keepdim("argmax", keepdim, keepdims)
    return _arg_extreme(input, dim, keepdim, True)


def argmin(input, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
    """Returns the index of the minimum (over the flattened tensor when ``dim`` is None)."""
    keepdim = resolve_keepdim("argmin", keepdim, keepdims)
    return _arg_extreme(input, dim, keepdim, False)


@refuses_keepdim_and_keepdims("all")
def all(input, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
    """Returns True where all elements (over ``dim``) are non-zero."""
    keepdim = resolve_keepdim("all", keepdim, keepdims)
    dims = normalize_dims(dim, input.ndim)
    return make_tensor(array_module(input._data).asarray(input._data.astype(bool).all(axis=dims, keepdims=keepdim)))


@refuses_keepdim_and_keepdims("any")
def any(input, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
    """Returns True where any element (over ``dim``) is non-zero."""
    keepdim = resolve_keepdim("any", keepdim, keepdims)
    dims = normalize_dims(dim, input.ndim)
    return make_tensor(array_module(input._data).asarray(input._data.astype(bool).any(axis=dims, keepdims=keepdim)))


class Prod(Function):
    node_name = "ProdBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.input_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        ctx.save_for_backward(x)
        data = x._data
        dtype = None if x.dtype.is_floating_point else _dtypes.int64.numpy
        return data.prod(axis=dims, keepdims=keepdim, dtype=dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        # Product of the other elements, without dividing (exact with zeros): exclusive cumulative products.
        xp = array_module(x._data)
        data = x._data
        moved = xp.moveaxis(data, ctx.dims, tuple(range(len(ctx.dims)))) if ctx.dims else data[None]
        flat = moved.reshape((-1,) + moved.shape[len(ctx.dims):]) if ctx.dims else moved
        ones = xp.ones((1,) + flat.shape[1:], dtype=flat.dtype)
        before = xp.cumprod(xp.concatenate([ones, flat[:-1]]), axis=0)
        after = xp.flip(xp.cumprod(xp.concatenate([ones, xp.flip(flat, 0)[:-1]]), axis=0), 0)
        others = (before * after).reshape(moved.shape)
        others = xp.moveaxis(others, tuple(range(len(ctx.dims))), ctx.dims) if ctx.dims else others[0]
        g = _expand_back(grad, ctx.input_shape, ctx.dims, ctx.keepdim)
        return g * make_tensor(others), None, None


@refuses_keepdim_and_keepdims("prod", needs_dim=True)
def prod(input, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
    """Returns the product over ``dim`` (all elements when None)."""
    keepdim = resolve_keepdim("prod", keepdim, keepdims)
    dims = normalize_dims(dim, input.ndim)
    return Prod.apply(input, dims, keepdim)


class Norm2(Function):
    """The 2-norm over ``dims``: its gradient is x / norm, and 0 where the norm is 0 (as in PyTorch)."""

    node_name = "LinalgVectorNormBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        data = x._data
        xp = array_module(data)
        out = xp.asarray(xp.sqrt((data * data).sum(axis=dims, keepdims=keepdim)), dtype=data.dtype)
        ctx.input_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        from .elementwise import where

        x, out = ctx.saved_tensors
        norm = _expand_back(out, ctx.input_shape, ctx.dims, ctx.keepdim)
        g = _expand_back(grad, ctx.input_shape, ctx.dims, ctx.keepdim)
        return where(norm == 0, 0.0, g * x / norm), None, None


class NormP(Function):
    """The p-norm over ``dims`` for a finite p other than 0 and 2.

    Its gradient is ``x * |x|**(p-2) / norm**(p-1)``, taken as 0 where x is 0 and where the norm is 0, as in
    PyTorch (the plain formula gives 0 * inf = NaN there for p < 2).
    """

    node_name = "LinalgVectorNormBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, p, dims, keepdim):
        data = x._data
        xp = array_module(data)
        with quiet_float_errors(data):
            out = (xp.abs(data) ** p).sum(axis=dims, keepdims=keepdim) ** (1.0 / p)
        out = xp.asarray(out, dtype=data.dtype)
        ctx.p, ctx.input_shape, ctx.dims, ctx.keepdim = p, x.shape, dims, keepdim
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        data = x._data
        xp = array_module(data)
        norm = _expand_back(out, ctx.input_shape, ctx.dims, ctx.keepdim)._data
        g = _expand_back(grad, ctx.input_shape, ctx.dims, ctx.keepdim)._data
        p = ctx.p
        with quiet_float_errors(data):
            scale = data * xp.abs(data) ** (p - 2) / norm ** (p - 1)
        scale = xp.where((data == 0) | (norm == 0), 0, scale).astype(data.dtype)
        return make_tensor(g * scale), None, None, None


class NormZero(Function):
    """The number of non-zero elements over ``dims`` (the "0-norm"); it passes no gradient."""

    node_name = "LinalgVectorNormBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        data = x._data
        return array_module(data).asarray((data != 0).sum(axis=dims, keepdims=keepdim), dtype=data.dtype)

    @staticmethod
    def backward(ctx, grad):
        # No gradient at all (the input's .grad stays None), as PyTorch's backward of the 0-norm gives.
        return None, None, None


def norm(input, p=2, dim=None, keepdim: bool = False, dtype=None):
    """Returns the p-norm (2 by default) over ``dim`` (all elements when None).

    ``p`` may be any number, ``inf`` (the largest absolute value), ``-inf`` (the smallest) or 0 (the number of
    non-zero elements).
    """
    if p is None or p == "fro":
        p = 2
    if isinstance(p, str):
        raise RuntimeError(f"norm(): unsupported norm type {p!r} for a vector norm")
    if dtype is not None:
        input = input.to(dtype)
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as input. "
                           f"Got {input.dtype.legacy_name}")
    dims = normalize_dims(dim, input.ndim, empty_means_all=True)
    if input.ndim == 0:
        dims = ()
    if p == 2:
        return Norm2.apply(input, dims, keepdim)
    from .elementwise import abs as _abs

    if p == float("inf") or p == float("-inf"):
        # The largest (smallest) absolute value; amax/amin share the gradient among ties and abs gives it its
        # sign (0 at 0), as PyTorch does.
        extreme = Amax if p > 0 else Amin
        if input.numel() == 0 and (not dims or builtins.any(input.shape[d] == 0 for d in dims)):
            raise RuntimeError(f"linalg.vector_norm cannot compute the {p} norm on an empty tensor because the "
                               "operation does not have an identity")
        return extreme.apply(_abs(input), dims if dims else tuple(range(input.ndim)), keepdim)
    if p == 0:
        return NormZero.apply(input, dims if dims or input.ndim == 0 else tuple(range(input.ndim)), keepdim)
    if p == 1:
        return sum(_abs(input), dim, keepdim)
    return NormP.apply(input, float(p), dims if dims or input.ndim == 0 else tuple(range(input.ndim)), keepdim)


# -- cumulative sums and products ------------------------------------------------------------------

def _cumulative_dtype(input, dtype):
    """Integer and bool inputs accumulate in int64, as in PyTorch; ``dtype`` casts the input first."""
    if dtype is not None:
        return _dtypes.to_dtype(dtype)
    return input.dtype if input.dtype.is_floating_point else _dtypes.int64


class Cumsum(Function):
    node_name = "CumsumBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        data = x._data
        # Floats accumulate in float64 and round once per element, as PyTorch's CPU kernel does.
        work = "float64" if data.dtype.kind == "f" else None
        out = array_module(data).cumsum(data.reshape(data.shape or (1,)), axis=dim, dtype=work)
        return out.reshape(data.shape).astype(data.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        # Every output from position i on holds input i: the gradient is the reversed cumulative sum.
        from .shape import flip

        if grad.ndim == 0:
            return grad, None
        return flip(Cumsum.apply(flip(grad, ctx.dim), ctx.dim), ctx.dim), None


def cumsum(input, dim: int, *, dtype=None):
    """Returns the cumulative sum of ``input`` along ``dim``."""
    d = normalize_dim(dim, input.ndim)
    target = _cumulative_dtype(input, dtype)
    if target is not input.dtype:
        input = input.to(target)
    return Cumsum.apply(input, d)


class Cumprod(Function):
    node_name = "CumprodBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        data = x._data
        work = "float64" if data.dtype.kind == "f" else None
        out = array_module(data).cumprod(data.reshape(data.shape or (1,)), axis=dim, dtype=work)
        out = out.reshape(data.shape).astype(data.dtype, copy=False)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        if grad.ndim == 0:
            return grad, None
        data = x._data
        xp = array_module(data)
        if not (data == 0).any():
            # d out_k / d x_i = out_k / x_i for k >= i: a reversed cumulative sum of grad * out, over x.
            from .shape import flip

            d = ctx.dim
            return flip(Cumsum.apply(flip(grad * out, d), d), d) / x, None
        # With zeros, out_k / x_i is undefined: take the product of the other factors directly,
        # prod_{j<i} x_j * prod_{i<j<=k} x_j, for each pair i <= k.
        moved = xp.moveaxis(data, ctx.dim, -1)
        g = xp.moveaxis(grad._data, ctx.dim, -1)
        n = moved.shape[-1]
        result = xp.zeros_like(moved)
        before = xp.concatenate([xp.ones_like(moved[..., :1]), xp.cumprod(moved, axis=-1)[..., :-1]], axis=-1)
        for i in range(n):
            after = xp.cumprod(moved[..., i + 1:], axis=-1)
            partial = xp.concatenate([xp.ones_like(moved[..., :1]), after], axis=-1)
            result[..., i] = before[..., i] * (g[..., i:] * partial).sum(axis=-1)
        return make_tensor(xp.moveaxis(result, -1, ctx.dim)), None


def cumprod(input, dim: int, *, dtype=None):
    """Returns the cumulative product of ``input`` along ``dim``."""
    d = normalize_dim(dim, input.ndim)
    target = _cumulative_dtype(input, dtype)
    if target is not input.dtype:
        input = input.to(target)
    return Cumprod.apply(input, d)
