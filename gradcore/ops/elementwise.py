"""Elementwise arithmetic and math: + - * / ** and the unary functions, with broadcasting-aware gradients."""
from __future__ import annotations

import operator

from ..autograd.function import Function
from ..autograd.grad_mode import state as _grad_state
from ._util import (Tensor, arith, array_module, as_tensor_like, binary_operands, check_same_device, make_tensor, meta,
                    negated, quiet_float_errors, reduce_grad, result_type)
from .. import _dtypes

__all__ = ["add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sqrt", "abs", "sin", "cos", "tanh",
           "maximum", "minimum", "where", "sign", "rsub", "reciprocal", "square", "log1p", "expm1", "log2", "log10",
           "nan_to_num", "clamp", "power_array", "write_out", "check_integer_divisor"]


class Add(Function):
    node_name = "AddBackward0"
    builtin = True
    operands = 2

    @staticmethod
    def forward(ctx, a, b, alpha=1):
        da, db, _ = binary_operands(a, b)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            ctx.meta = (meta(a), meta(b))
            ctx.alpha = alpha
        return da + db if alpha == 1 else da + db * alpha

    @staticmethod
    def backward(ctx, grad):
        meta_a, meta_b = ctx.meta
        ga = reduce_grad(grad, *meta_a) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:
            gb = reduce_grad(grad if ctx.alpha == 1 else arith(operator.mul, grad, ctx.alpha), *meta_b)
        return ga, gb, None


def check_bool_subtraction(a, b) -> None:
    """Raises PyTorch's RuntimeError where either operand of a subtraction is bool (a bool tensor or a Python
    bool): numpy would compute it, PyTorch refuses it, with a message that depends on whether both are bool."""
    is_bool = [isinstance(x, bool) or (isinstance(x, Tensor) and x.dtype is _dtypes.bool_) for x in (a, b)]
    if all(is_bool):
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                           "Use the `^` or `logical_xor()` operator instead.")
    if any(is_bool):
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. "
                           "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.")


class Sub(Function):
    node_name = "SubBackward0"
    builtin = True
    operands = 2

    @staticmethod
    def forward(ctx, a, b, alpha=1):
        check_bool_subtraction(a, b)
        da, db, dtype = binary_operands(a, b)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            ctx.meta = (meta(a), meta(b))
            ctx.alpha = alpha
        return da - db if alpha == 1 else da - db * alpha

    @staticmethod
    def backward(ctx, grad):
        meta_a, meta_b = ctx.meta
        ga = reduce_grad(grad, *meta_a) if ctx.needs_input_grad[0] else None
        if ctx.needs_input_grad[1]:
            gb = reduce_grad(negated(grad) if ctx.alpha == 1 else arith(operator.mul, grad, -ctx.alpha), *meta_b)
        else:
            gb = None
        return ga, gb, None


class RsubScalar(Function):
    """``number - x`` (``x.__rsub__``): one operand, as PyTorch's ``RsubBackward1``."""

    node_name = "RsubBackward1"
    builtin = True

    @staticmethod
    def forward(ctx, x, number):
        check_bool_subtraction(number, x)
        dn, dx, _ = binary_operands(number, x)
        if ctx.needs_input_grad[0]:
            ctx.meta = meta(x)
        return dn - dx

    @staticmethod
    def backward(ctx, grad):
        return reduce_grad(negated(grad), *ctx.meta), None


class Mul(Function):
    node_name = "MulBackward0"
    builtin = True
    operands = 2

    @staticmethod
    def forward(ctx, a, b):
        da, db, _ = binary_operands(a, b)
        needs = ctx.needs_input_grad
        if needs[0] or needs[1]:
            ctx.meta = (meta(a), meta(b))
            ctx.save_for_backward(a if needs[1] else None, b if needs[0] else None)
        return da * db

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        meta_a, meta_b = ctx.meta
        needs = ctx.needs_input_grad
        if needs[0] and needs[1] and a is b and not _grad_state.enabled and not ctx._post_hooks:
            # x * x: both gradients are grad * x, whose sum 2 (grad * x) is exact; one array instead of three
            # (two products and their sum), handed to the first slot only.
            both = reduce_grad(arith(operator.mul, grad, a), *meta_a)
            if both._data.base is None and both is not grad:
                both._data *= 2
                return both, None
            return both, both
        ga = reduce_grad(arith(operator.mul, grad, b), *meta_a) if needs[0] else None
        gb = reduce_grad(arith(operator.mul, grad, a), *meta_b) if needs[1] else None
        return ga, gb


class Div(Function):
    node_name = "DivBackward0"
    builtin = True
    operands = 2

    @staticmethod
    def forward(ctx, a, b, rounding_mode=None):
        dtype = result_type(a, b)
        if rounding_mode is None and not dtype.is_floating_point:
            dtype = _dtypes.get_default_dtype()
        da, db, _ = binary_operands(as_float(a, dtype), as_float(b, dtype))
        ctx.meta = (meta(a), meta(b))
        ctx.rounding_mode = rounding_mode
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)
        if rounding_mode is None:
            with quiet_float_errors(da if isinstance(a, Tensor) else db):
                return da / db
        xp = array_module(da if isinstance(a, Tensor) else db)
        if not dtype.is_floating_point:
            check_integer_divisor(db)
        if rounding_mode == "floor":
            return xp.floor_divide(da, db)
        if rounding_mode == "trunc":
            q = xp.trunc(da / db) if dtype.is_floating_point else xp.fix(da / db).astype(dtype.numpy)
            return q
        raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        if ctx.rounding_mode is not None:
            return tuple(None if m is None else make_tensor(array_module(grad._data).zeros(m[0], m[1]))
                         for m in ctx.meta) + (None,)
        meta_a, meta_b = ctx.meta
        with quiet_float_errors(grad._data):
            ga = reduce_grad(arith(operator.truediv, grad, b), *meta_a) if ctx.needs_input_grad[0] else None
            if ctx.needs_input_grad[1]:
                gb = arith(operator.truediv, arith(operator.mul, negated(grad), a), arith(operator.mul, b, b))
                gb = reduce_grad(gb, *meta_b)
            else:
                gb = None
        return ga, gb, None


def check_integer_divisor(divisor) -> None:
    """Integer division and remainder by zero raise, as in PyTorch (numpy would return 0 with a warning)."""
    if (divisor == 0).any() if hasattr(divisor, "any") else divisor == 0:
        raise RuntimeError("ZeroDivisionError")


def as_float(x, dtype):
    """Casts an integer tensor to the float dtype of a true division (scalars stay Python numbers)."""
    if isinstance(x, Tensor) and x.dtype is not dtype and not x.dtype.is_floating_point:
        return x.to(dtype)
    return x


class Pow(Function):
    node_name = "PowBackward0"
    builtin = True
    operands = 2

    @staticmethod
    def forward(ctx, a, b):
        da, db, dtype = binary_operands(a, b)
        if not dtype.is_floating_point and isinstance(b, (int, Tensor)) and not isinstance(b, bool):
            negative = (db < 0).any() if isinstance(b, Tensor) else b < 0
            if negative:
                raise RuntimeError("Integers to negative integer powers are not allowed.")
        ctx.meta = (meta(a), meta(b))
        with quiet_float_errors(da if isinstance(a, Tensor) else db):
            out = power_array(da, db)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            ctx.save_for_backward(a, b, out if ctx.needs_input_grad[1] else None)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        meta_a, meta_b = ctx.meta
        ga = gb = None
        if ctx.needs_input_grad[0]:
            if isinstance(b, Tensor):
                ga = grad * b * a ** (b - 1)
                ga = where(b == 0, 0.0, ga)
            elif b == 0:
                ga = arith(operator.mul, grad, 0.0)
            elif b == 2:
                ga = arith(operator.mul, grad, arith(operator.mul, a, 2.0))
            else:
                with quiet_float_errors(grad._data):
                    ga = arith(operator.mul, arith(operator.mul, grad, b), arith(_power, a, b - 1))
            ga = reduce_grad(ga, *meta_a)
        if ctx.needs_input_grad[1]:
            base = a if isinstance(a, Tensor) else as_tensor_like(a, b)
            # d/db a**b = a**b * log(a); PyTorch takes it as 0 where a == 0 and b >= 0.
            gb = grad * where((base == 0) & (b >= 0), 0.0, out * log(base))
            gb = reduce_grad(gb, *meta_b)
        return ga, gb


def power_array(base, exponent):
    """``base ** exponent`` on arrays, with small exponents of a float array computed by multiplying.

    The array library's general power goes through exp and log, about a hundred times slower than a product
    for x**3; PyTorch takes the same shortcuts (x*x, x*x*x, 1/(x*x), sqrt, 1/sqrt, 1/x), with the same rounding.
    """
    if exponent.__class__ in (int, float) and getattr(base, "dtype", None) is not None and base.dtype.kind == "f":
        if exponent == 2:
            return base * base
        if exponent == 3:
            return base * base * base
        if exponent == -2:
            return 1 / (base * base)
        if exponent == -3:  # the backward of x.pow(-2)
            return 1 / (base * base * base)
        if exponent == 1:
            return base.copy()
        if exponent == -1:
            return 1 / base
        if exponent == 0.5:
            return array_module(base).sqrt(base)
    return base ** exponent


def _power(a, b):
    """``a ** b`` for the ``arith`` helper: tensors through the op, arrays through ``power_array``."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return a ** b
    return power_array(a, b)


class Neg(Function):
    node_name = "NegBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        if x.dtype is _dtypes.bool_:
            raise RuntimeError(
                "Negation, the `-` operator, on a bool tensor is not supported. "
                "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead."
            )
        return -x._data

    @staticmethod
    def backward(ctx, grad):
        return negated(grad)


def _float_input(x: Tensor):
    """Unary math on integer tensors computes in the default float dtype, as in PyTorch."""
    d = x._data
    if x.dtype.is_floating_point:
        return d
    return d.astype(_dtypes.get_default_dtype().numpy)


class Exp(Function):
    node_name = "ExpBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        out = array_module(x._data).exp(_float_input(x))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return arith(operator.mul, grad, out)


class Log(Function):
    node_name = "LogBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with quiet_float_errors(x._data):
            return array_module(x._data).log(_float_input(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        with quiet_float_errors(grad._data):
            return arith(operator.truediv, grad, x)


class Log1p(Function):
    node_name = "Log1PBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with quiet_float_errors(x._data):
            return array_module(x._data).log1p(_float_input(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (x + 1)


class Expm1(Function):
    node_name = "Expm1Backward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        out = array_module(x._data).expm1(_float_input(x))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (out + 1)


class Sqrt(Function):
    node_name = "SqrtBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        with quiet_float_errors(x._data):
            out = array_module(x._data).sqrt(_float_input(x))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        with quiet_float_errors(grad._data):
            return arith(operator.truediv, grad, arith(operator.mul, out, 2))


class Abs(Function):
    node_name = "AbsBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return array_module(x._data).abs(x._data)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * sign(x)


class Sign(Function):
    node_name = "SignBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        ctx.meta = (x.shape, x.dtype)
        return array_module(x._data).sign(x._data)

    @staticmethod
    def backward(ctx, grad):
        return grad * 0


class Sin(Function):
    node_name = "SinBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return array_module(x._data).sin(_float_input(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * cos(x)


class Cos(Function):
    node_name = "CosBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return array_module(x._data).cos(_float_input(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return -grad * sin(x)


class Tanh(Function):
    node_name = "TanhBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        out = array_module(x._data).tanh(_float_input(x))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return arith(operator.mul, grad, arith(operator.sub, 1, arith(operator.mul, out, out)))


class Maximum(Function):
    node_name = "MaximumBackward0"
    builtin = True
    operands = 2
    largest = True

    @staticmethod
    def forward(ctx, a, b):
        da, db, _ = binary_operands(a, b)
        ctx.meta = (meta(a), meta(b))
        ctx.save_for_backward(a, b)
        xp = array_module(da)
        return (xp.maximum if ctx._forward_cls.largest else xp.minimum)(da, db)

    @staticmethod
    def backward(ctx, grad):
        return _select_backward(ctx, grad, greater=ctx._forward_cls.largest)


class Minimum(Maximum):
    node_name = "MinimumBackward0"
    largest = False


def _select_backward(ctx, grad, greater: bool):
    """Gradient of maximum/minimum: to the chosen input, split in half on ties (as PyTorch does).

    Where either operand is NaN (the result is NaN), no comparison holds and both operands get the whole
    gradient, as in PyTorch.
    """
    a, b = ctx.saved_tensors
    xp = array_module(a._data)
    da, db = a._data, b._data
    loses_a = (da < db) if greater else (da > db)
    loses_b = (da > db) if greater else (da < db)
    ties = da == db
    dtype = grad.dtype.numpy
    share_a = make_tensor(xp.where(ties, 0.5, xp.where(loses_a, 0.0, 1.0)).astype(dtype))
    share_b = make_tensor(xp.where(ties, 0.5, xp.where(loses_b, 0.0, 1.0)).astype(dtype))
    meta_a, meta_b = ctx.meta
    ga = reduce_grad(grad * share_a, *meta_a) if ctx.needs_input_grad[0] else None
    gb = reduce_grad(grad * share_b, *meta_b) if ctx.needs_input_grad[1] else None
    return ga, gb


class Where(Function):
    node_name = "WhereBackward0"
    builtin = True
    operands = 3

    @staticmethod
    def forward(ctx, condition, a, b):
        cond = condition._data
        if cond.dtype != bool:
            raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype {condition.dtype.legacy_name}")
        da, db, _ = binary_operands(a, b)
        ctx.meta = (meta(a), meta(b))
        ctx.save_for_backward(cond)
        return array_module(cond).where(cond, da, db)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        keep = make_tensor(cond)
        meta_a, meta_b = ctx.meta
        ga = reduce_grad(grad * keep, *meta_a) if ctx.needs_input_grad[1] else None
        gb = reduce_grad(grad * ~keep, *meta_b) if ctx.needs_input_grad[2] else None
        return None, ga, gb


# -- the function forms -------------------------------------------------------------------------

def _check_tensor(x, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")


def write_out(result: Tensor, out, name: str):
    """Writes ``result`` into ``out`` (resized when its shape differs, as PyTorch does) and returns ``out``.

    The result's dtype must cast to ``out``'s under PyTorch's rules (no float into an integer tensor).
    """
    if out is None:
        return result
    if not isinstance(out, Tensor):
        raise TypeError(f"argument 'out' must be Tensor, not {type(out).__name__}")
    check_same_device(result, out)
    if not _dtypes.can_cast(result.dtype, out.dtype):
        raise RuntimeError(f"result type {result.dtype.legacy_name} can't be cast to the desired output type "
                           f"{out.dtype.legacy_name}")
    from ..autograd.grad_mode import is_grad_enabled

    if is_grad_enabled() and (out.requires_grad or result.requires_grad):
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic "
                           "differentiation, but one of the arguments requires grad.")
    value = result._data.astype(out.dtype.numpy, copy=False)
    if tuple(out.shape) != tuple(value.shape):
        if out.numel() != 0:
            import warnings

            warnings.warn(f"An output with one or more elements was resized since it had shape {list(out.shape)}, "
                          f"which does not match the required output shape {list(value.shape)}.", UserWarning,
                          stacklevel=3)
        out._data = value.copy()
    else:
        out._data[...] = value
    out._version_counter.value += 1
    return out


def add(input, other, *, alpha=1, out=None):
    """Returns ``input + alpha * other`` (broadcasting, with type promotion)."""
    return write_out(Add.apply(input, other, alpha), out, "add")


def sub(input, other, *, alpha=1, out=None):
    """Returns ``input - alpha * other``."""
    return write_out(Sub.apply(input, other, alpha), out, "sub")


def rsub(input, other, *, alpha=1):
    """Returns ``other - alpha * input``."""
    return Sub.apply(other, input, alpha) if alpha == 1 else Sub.apply(other, input * alpha)


def mul(input, other, *, out=None):
    """Returns ``input * other``."""
    return write_out(Mul.apply(input, other), out, "mul")


def div(input, other, *, rounding_mode=None, out=None):
    """Returns ``input / other`` (true division unless ``rounding_mode`` is 'trunc' or 'floor')."""
    return write_out(Div.apply(input, other, rounding_mode), out, "div")


def pow(input, exponent, *, out=None):
    """Returns ``input ** exponent``."""
    return write_out(Pow.apply(input, exponent), out, "pow")


def neg(input):
    """Returns ``-input``."""
    _check_tensor(input, "neg")
    return Neg.apply(input)


def exp(input):
    """Returns the exponential of each element."""
    _check_tensor(input, "exp")
    return Exp.apply(input)


def log(input):
    """Returns the natural logarithm of each element."""
    _check_tensor(input, "log")
    return Log.apply(input)


def log1p(input):
    """Returns log(1 + input), accurate for small values."""
    _check_tensor(input, "log1p")
    return Log1p.apply(input)


def expm1(input):
    """Returns exp(input) - 1, accurate for small values."""
    _check_tensor(input, "expm1")
    return Expm1.apply(input)


def sqrt(input):
    """Returns the square root of each element."""
    _check_tensor(input, "sqrt")
    return Sqrt.apply(input)


def abs(input):
    """Returns the absolute value of each element."""
    _check_tensor(input, "abs")
    return Abs.apply(input)


def sign(input):
    """Returns -1, 0 or 1 by the sign of each element (its gradient is zero)."""
    _check_tensor(input, "sign")
    return Sign.apply(input)


def sin(input):
    """Returns the sine of each element."""
    _check_tensor(input, "sin")
    return Sin.apply(input)


def cos(input):
    """Returns the cosine of each element."""
    _check_tensor(input, "cos")
    return Cos.apply(input)


def tanh(input):
    """Returns the hyperbolic tangent of each element."""
    _check_tensor(input, "tanh")
    return Tanh.apply(input)


def reciprocal(input):
    """Returns 1 / input."""
    return Div.apply(1.0, input, None)


def square(input):
    """Returns input ** 2."""
    return Pow.apply(input, 2)


def maximum(input, other):
    """Returns the elementwise maximum of two tensors."""
    _check_tensor(input, "maximum")
    if not isinstance(other, Tensor):
        raise TypeError(f"maximum(): argument 'other' (position 2) must be Tensor, not {type(other).__name__}")
    return Maximum.apply(input, other)


def minimum(input, other):
    """Returns the elementwise minimum of two tensors."""
    _check_tensor(input, "minimum")
    if not isinstance(other, Tensor):
        raise TypeError(f"minimum(): argument 'other' (position 2) must be Tensor, not {type(other).__name__}")
    return Minimum.apply(input, other)


def where(condition, input=None, other=None):
    """Returns elements of ``input`` where ``condition`` holds and of ``other`` elsewhere.

    With only a condition, returns the indices of its non-zero elements, one tensor per dim.
    """
    if input is None and other is None:
        from .indexing import nonzero

        return nonzero(condition, as_tuple=True)
    if not isinstance(condition, Tensor):
        raise TypeError(f"where(): argument 'condition' (position 1) must be Tensor, not {type(condition).__name__}")
    check_same_device(input, other, condition)
    return Where.apply(condition, input, other)


# -- logarithms in other bases, nan_to_num ---------------------------------------------------------

class Log2(Function):
    node_name = "Log2Backward0"
    builtin = True
    # d/dx log_b(x) = 1 / (x ln b)
    log_of_base = 0.6931471805599453

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        xp = array_module(x._data)
        with quiet_float_errors(x._data):
            return (xp.log2 if ctx._forward_cls is Log2 else xp.log10)(_float_input(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        with quiet_float_errors(grad._data):
            return arith(operator.truediv, grad, arith(operator.mul, x, ctx._forward_cls.log_of_base))


class Log10(Log2):
    node_name = "Log10Backward0"
    log_of_base = 2.302585092994046


def log2(input):
    """Returns the logarithm to the base 2 of each element."""
    _check_tensor(input, "log2")
    return Log2.apply(input)


def log10(input):
    """Returns the logarithm to the base 10 of each element."""
    _check_tensor(input, "log10")
    return Log10.apply(input)


class NanToNum(Function):
    """Replaces NaN, +inf and -inf by finite numbers; the gradient flows only through finite elements."""

    node_name = "NanToNumBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, nan, posinf, neginf):
        data = x._data
        xp = array_module(data)
        ctx.save_for_backward(x)
        if data.dtype.kind != "f":
            return data.copy()
        return xp.nan_to_num(data, copy=True, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        finite = make_tensor(array_module(x._data).isfinite(x._data))
        return where(finite, grad, 0.0), None, None, None


def nan_to_num(input, nan: float = 0.0, posinf=None, neginf=None):
    """Returns ``input`` with NaN replaced by ``nan``, +inf by ``posinf`` and -inf by ``neginf`` (the dtype's
    largest and lowest finite numbers by default)."""
    _check_tensor(input, "nan_to_num")
    return NanToNum.apply(input, nan, posinf, neginf)


# -- clamp with tensor bounds ------------------------------------------------------------------------

class ClampBetween(Function):
    """``min(max(input, low), high)`` with tensor bounds (None for a missing one).

    The gradient goes to ``input`` wherever low <= input <= high, bounds included, and to a bound where it was
    the value taken (input strictly beyond it), as in PyTorch: no split at equality, unlike maximum/minimum.
    """

    node_name = "ClampBackward0"
    builtin = True
    operands = 3

    @staticmethod
    def forward(ctx, x, low, high):
        data = x._data
        xp = array_module(data)
        out = data
        if low is not None:
            out = xp.maximum(out, low._data.astype(data.dtype, copy=False))
        if high is not None:
            out = xp.minimum(out, high._data.astype(data.dtype, copy=False))
        if out is data:
            out = data.copy()
        ctx.meta = (meta(x), meta(low), meta(high))
        ctx.save_for_backward(x, low, high)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, low, high = ctx.saved_tensors
        data = x._data
        xp = array_module(data)
        inside = xp.ones(data.shape, dtype=bool)
        if low is not None:
            inside = inside & (data >= low._data)
        if high is not None:
            inside = inside & (data <= high._data)
        zero = 0.0
        g_x = reduce_grad(where(make_tensor(xp.asarray(inside)), grad, zero), *ctx.meta[0])
        g_low = g_high = None
        if low is not None and ctx.needs_input_grad[1]:
            below = data < low._data
            if high is not None:
                below = below & (low._data <= high._data)  # with low > high the result is high
            g_low = reduce_grad(where(make_tensor(xp.asarray(below)), grad, zero), *ctx.meta[1])
        if high is not None and ctx.needs_input_grad[2]:
            above = (data > high._data) if low is None else ((xp.maximum(data, low._data) > high._data))
            g_high = reduce_grad(where(make_tensor(xp.asarray(above)), grad, zero), *ctx.meta[2])
        return g_x, g_low, g_high


def clamp(input, min=None, max=None):
    """Clamps every element into [min, max] (numbers or tensors); the gradient passes where min <= input <= max."""
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        if not isinstance(input, Tensor):
            raise TypeError(f"clamp(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
        bounds = [b if b is None or isinstance(b, Tensor) else as_tensor_like(b, input) for b in (min, max)]
        check_same_device(input, *[b for b in bounds if b is not None])
        return ClampBetween.apply(input, *bounds)
    from .activation import clamp as clamp_by_numbers

    return clamp_by_numbers(input, min, max)
