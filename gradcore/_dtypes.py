"""Data types: the ``gradcore.float32``-style objects, their numpy equivalents, and type promotion."""
from __future__ import annotations

import builtins

import numpy as _np

__all__ = ["dtype", "promote_types", "result_type", "get_default_dtype", "set_default_dtype"]

# Categories order the kinds of number: a value of a higher category never fits a lower one.
_BOOL, _INT, _FLOAT = 0, 1, 2


class dtype:
    """A tensor element type, such as ``gradcore.float32``."""

    __slots__ = ("name", "itemsize", "is_floating_point", "is_signed", "category", "numpy", "legacy_name")

    def __init__(self, name: str, numpy_name: str, category: int, legacy_name: str) -> None:
        self.name = name
        self.numpy = _np.dtype(numpy_name)
        self.itemsize = self.numpy.itemsize
        self.category = category
        self.is_floating_point = category == _FLOAT
        self.is_signed = self.numpy.kind in "if"
        self.legacy_name = legacy_name

    @property
    def is_complex(self) -> bool:
        return False

    def to_real(self) -> "dtype":
        return self

    def __repr__(self) -> str:
        return f"gradcore.{self.name}"

    def __reduce__(self):
        return self.name


float16 = dtype("float16", "float16", _FLOAT, "Half")
float32 = dtype("float32", "float32", _FLOAT, "Float")
float64 = dtype("float64", "float64", _FLOAT, "Double")
uint8 = dtype("uint8", "uint8", _INT, "Byte")
int8 = dtype("int8", "int8", _INT, "Char")
int16 = dtype("int16", "int16", _INT, "Short")
int32 = dtype("int32", "int32", _INT, "Int")
int64 = dtype("int64", "int64", _INT, "Long")
bool_ = dtype("bool", "bool", _BOOL, "Bool")

ALL_DTYPES = (float16, float32, float64, uint8, int8, int16, int32, int64, bool_)
_FROM_NUMPY = {d.numpy: d for d in ALL_DTYPES}

_default_float = float32


def get_default_dtype() -> dtype:
    """Returns the default floating point dtype (``gradcore.float32`` unless changed)."""
    return _default_float


def set_default_dtype(d: dtype) -> None:
    """Sets the default floating point dtype, used for Python floats and creation functions."""
    global _default_float
    if not isinstance(d, dtype) or not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default_float = d


def from_numpy_dtype(np_dtype) -> dtype:
    """Returns the gradcore dtype of a numpy dtype, or raises TypeError for unsupported ones."""
    try:
        return _FROM_NUMPY[np_dtype]
    except KeyError:
        d = _np.dtype(np_dtype)
        if d in _FROM_NUMPY:
            return _FROM_NUMPY[d]
        raise TypeError(
            f"can't convert np.ndarray of type {d}. The only supported types are: "
            "float64, float32, float16, int64, int32, int16, int8, uint8, and bool."
        ) from None


def to_dtype(d) -> dtype:
    """Accepts a gradcore dtype, a numpy dtype or a Python type and returns the gradcore dtype."""
    if isinstance(d, dtype):
        return d
    if d is builtins.float:
        return float64
    if d is builtins.int:
        return int64
    if d is builtins.bool:
        return bool_
    try:
        return from_numpy_dtype(_np.dtype(d))
    except TypeError:
        raise TypeError(f"expected a gradcore dtype, got {d!r}") from None


def promote_types(a: dtype, b: dtype) -> dtype:
    """Returns the smallest dtype both ``a`` and ``b`` can be converted to, by PyTorch's rules."""
    if a is b:
        return a
    if a.category != b.category:
        return a if a.category > b.category else b
    return _FROM_NUMPY[_np.promote_types(a.numpy, b.numpy)]


def scalar_dtype(value) -> dtype:
    """Returns the dtype a Python scalar takes on its own (bool, int64 or the default float)."""
    if isinstance(value, builtins.bool):
        return bool_
    if isinstance(value, builtins.int):
        return int64
    if isinstance(value, builtins.float):
        return _default_float
    raise TypeError(f"unsupported scalar type {type(value).__name__}")


def _combine(higher, lower):
    # A lower-priority group only matters when it is of a higher category than the higher-priority one.
    if higher is None:
        return lower
    if lower is None:
        return higher
    if lower.category > higher.category:
        return promote_types(higher, lower)
    return higher


def result_type(*operands) -> dtype:
    """Returns the dtype of an op over tensors and Python scalars, following PyTorch's promotion rules.

    Tensors with dimensions decide first; zero-dimensional tensors and then Python scalars only
    take part when they are of a higher category (bool < integer < floating point).
    """
    dim_result = zero_result = scalar_result = None
    for op in operands:
        d = getattr(op, "dtype", None)
        if d is not None:
            if op.ndim:
                dim_result = d if dim_result is None else promote_types(dim_result, d)
            else:
                zero_result = d if zero_result is None else promote_types(zero_result, d)
        else:
            s = scalar_dtype(op)
            scalar_result = s if scalar_result is None else promote_types(scalar_result, s)
    return _combine(dim_result, _combine(zero_result, scalar_result))


def can_cast(from_: dtype, to: dtype) -> bool:
    """True when a value of ``from_`` may be written into a tensor of ``to`` (no category downgrade)."""
    return from_.category <= to.category
