"""Comparisons and logical ops: results are bool tensors outside the graph."""
from __future__ import annotations

import numpy as np

from ._util import Tensor, array_module, binary_operands, check_same_device, make_tensor

__all__ = ["compare", "logical_op", "logical_not", "bitwise_not", "equal", "allclose", "isnan", "isinf",
           "isfinite", "eq", "ne", "lt", "le", "gt", "ge", "isclose"]


def compare(a, b, name: str) -> Tensor:
    """Returns the bool tensor of an elementwise comparison (``name`` is the array function: 'equal', 'less', ...)."""
    if not isinstance(b, (Tensor, int, float, bool)):
        if name in ("equal", "not_equal") and (b is None or isinstance(b, (str, list, tuple, dict))):
            return NotImplemented if b is None else _not_comparable(a, name)
        raise TypeError(f"unsupported operand type for comparison: Tensor and {type(b).__name__}")
    da, db, _ = binary_operands(a, b)
    return make_tensor(getattr(array_module(da if isinstance(a, Tensor) else db), name)(da, db))


def _not_comparable(a, name):
    raise TypeError(f"unsupported operand type for {name}: Tensor")


def logical_op(a, b, name: str) -> Tensor:
    da, db, dtype = binary_operands(a, b)
    if dtype.is_floating_point:
        raise RuntimeError(f"\"{name}_cpu\" not implemented for '{dtype.legacy_name}'")
    return make_tensor(getattr(array_module(da if isinstance(a, Tensor) else db), name)(da, db))


def logical_not(input: Tensor) -> Tensor:
    return make_tensor(array_module(input._data).logical_not(input._data))


def bitwise_not(input: Tensor) -> Tensor:
    if input.dtype.is_floating_point:
        raise RuntimeError(f"\"bitwise_not_cpu\" not implemented for '{input.dtype.legacy_name}'")
    return make_tensor(array_module(input._data).invert(input._data))


def eq(input, other):
    return compare(input, other, "equal")


def ne(input, other):
    return compare(input, other, "not_equal")


def lt(input, other):
    return compare(input, other, "less")


def le(input, other):
    return compare(input, other, "less_equal")


def gt(input, other):
    return compare(input, other, "greater")


def ge(input, other):
    return compare(input, other, "greater_equal")


def _require_tensors(name: str, input, other) -> None:
    for position, (argument, value) in enumerate((("input", input), ("other", other)), start=1):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name}(): argument '{argument}' (position {position}) must be Tensor, not "
                            f"{type(value).__name__}")


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape and elements."""
    _require_tensors("equal", input, other)
    check_same_device(input, other)
    if input.shape != other.shape:
        return False
    return bool(array_module(input._data).array_equal(input._data, other._data))


def isclose(input: Tensor, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    da, db, dtype = binary_operands(input, other)
    xp = array_module(da)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN, and handled below
        close = xp.isclose(da, db, rtol=rtol, atol=atol, equal_nan=equal_nan)
        if dtype.is_floating_point:
            # As PyTorch: infinite values are close only to an equal infinity, even under an infinite atol.
            finite_or_same = xp.isfinite(da - db) | (da == db)
            if equal_nan:
                finite_or_same |= xp.isnan(da) & xp.isnan(db)
            close &= finite_or_same
    return make_tensor(close)


def allclose(input: Tensor, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """True when every element satisfies |input - other| <= atol + rtol * |other|."""
    _require_tensors("allclose", input, other)
    if input.dtype != other.dtype:  # PyTorch compares tensors of one dtype only
        raise RuntimeError(f"{input.dtype.legacy_name} did not match {other.dtype.legacy_name}")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value < 0:
            raise RuntimeError(f"{name} must be greater than or equal to zero, but got {value:g}")
    return bool(isclose(input, other, rtol, atol, equal_nan)._data.all())


def isnan(input: Tensor) -> Tensor:
    return make_tensor(array_module(input._data).isnan(input._data))


def isinf(input: Tensor) -> Tensor:
    return make_tensor(array_module(input._data).isinf(input._data))


def isfinite(input: Tensor) -> Tensor:
    return make_tensor(array_module(input._data).isfinite(input._data))
