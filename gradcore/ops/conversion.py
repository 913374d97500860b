"""Copies and conversions that stay in the graph: clone, dtype and device changes, fill and copy_ values."""
from __future__ import annotations

from ..autograd.function import Function
from ..backend import backend_of, to_device
from ._util import Tensor, array_module, binary_operands, meta, reduce_grad, result_type

__all__ = ["Clone", "ToDtype", "ToDevice", "fill", "copy_value", "remainder", "rounding"]


class Clone(Function):
    node_name = "CloneBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        return x._data.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


class ToDtype(Function):
    node_name = "ToCopyBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        data = x._data
        if data.dtype.kind == "f" and not dtype.is_floating_point:
            # NaN, inf and out-of-range floats cast to integers without a word, to the values PyTorch's CPU
            # casts give (the array library's own casts give the same values, with a RuntimeWarning).
            from ._util import quiet_float_errors

            with quiet_float_errors(data):
                return data.astype(dtype.numpy)
        return data.astype(dtype.numpy)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(ctx.dtype) if ctx.dtype.is_floating_point else None, None


class ToDevice(Function):
    node_name = "ToCopyBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, backend):
        ctx.source = backend_of(x._data)
        return to_device(x._data, backend)

    @staticmethod
    def backward(ctx, grad):
        return ToDevice.apply(grad, ctx.source), None


class Fill(Function):
    node_name = "FillBackward0"
    builtin = True
    operands = 2

    @staticmethod
    def forward(ctx, x, value):
        data = x._data
        ctx.value_meta = meta(value)
        out = array_module(data).empty_like(data)
        out[...] = value._data if isinstance(value, Tensor) else value
        return out

    @staticmethod
    def backward(ctx, grad):
        g_value = None
        if ctx.needs_input_grad[1]:
            g_value = reduce_grad(grad.sum(), *ctx.value_meta)
        return grad * 0 if ctx.needs_input_grad[0] else None, g_value


def fill(input: Tensor, value) -> Tensor:
    """Returns a tensor like ``input`` filled with ``value`` (the out-of-place form of ``fill_``)."""
    return Fill.apply(input, value)


def copy_value(destination: Tensor, source: Tensor) -> Tensor:
    """Returns ``source`` broadcast to ``destination``'s shape, dtype and device (the value ``copy_`` writes)."""
    value = source.to(device=destination.device, dtype=destination.dtype)
    value = value.expand(destination.shape)
    return Clone.apply(value) if value is source else value


class Remainder(Function):
    node_name = "RemainderBackward0"
    builtin = True
    operands = 2

    @staticmethod
    def forward(ctx, a, b):
        da, db, _ = binary_operands(a, b)
        ctx.meta = (meta(a), meta(b))
        ctx.save_for_backward(a, b)
        if not result_type(a, b).is_floating_point:
            from .elementwise import check_integer_divisor

            check_integer_divisor(db)
        return array_module(da if isinstance(a, Tensor) else db).remainder(da, db)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ga = reduce_grad(grad, *ctx.meta[0]) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:
            gb = reduce_grad(-grad * (a / b).floor(), *ctx.meta[1])
        return ga, gb


def remainder(a, b):
    """Returns the remainder of a division, with the sign of the divisor (Python's %)."""
    return Remainder.apply(a, b)


class Rounding(Function):
    node_name = "RoundBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, how):
        data = x._data
        return getattr(array_module(data), "rint" if how == "round" else how)(data)

    @staticmethod
    def backward(ctx, grad):
        return grad * 0, None


def rounding(input: Tensor, how: str) -> Tensor:
    """floor, ceil or round (half to even); their gradient is zero."""
    if not input.dtype.is_floating_point:
        return input.clone()
    return Rounding.apply(input, how)
