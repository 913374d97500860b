"""Helpers the op families share: operand conversion, broadcasting checks, dims and gradient reduction."""
from __future__ import annotations

from .._dtypes import from_numpy_dtype, result_type
from ..autograd.grad_mode import state as _grad_state
from .._capture.trace import SymbolicScalar
from ..backend import CPU, CPU_ARRAY as _ndarray, array_module, backend_of, to_device

_iinfo = CPU.xp.iinfo
from ..tensor import Tensor, make_tensor

__all__ = ["Tensor", "make_tensor", "array_module", "binary_operands", "broadcast_shapes", "normalize_dim",
           "normalize_dims", "reduce_grad", "check_same_device", "result_type", "as_tensor_like", "meta", "arith",
           "negated"]


def check_same_device(*tensors) -> None:
    """Raises PyTorch's RuntimeError when tensors live on different devices."""
    first = None
    for t in tensors:
        if isinstance(t, Tensor):
            if first is None:
                first = t
            elif (t._data.__class__ is not first._data.__class__ or t._data.__class__ is not _ndarray) and \
                    t.device != first.device:
                raise RuntimeError(
                    "Expected all tensors to be on the same device, but found at least two devices, "
                    f"{first.device} and {t.device}!"
                )


def broadcast_shapes(a: tuple, b: tuple) -> tuple:
    """Returns the broadcast of two shapes, or raises PyTorch's RuntimeError naming the sizes."""
    if a == b:
        return a
    n = max(len(a), len(b))
    pa = (1,) * (n - len(a)) + tuple(a)
    pb = (1,) * (n - len(b)) + tuple(b)
    out = []
    for i, (x, y) in enumerate(zip(pa, pb)):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise RuntimeError(
                f"The size of tensor a ({x}) must match the size of tensor b ({y}) at non-singleton dimension {i}"
            )
    return tuple(out)


def binary_operands(a, b):
    """Returns (array_a, array_b, dtype) for a binary op over tensors and Python scalars, after type promotion.

    Python scalars keep the tensor's dtype unless they are of a higher category (a float with an integer
    tensor gives the default float dtype), as in PyTorch.
    """
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            da, db = a._data, b._data
            if da.__class__ is not db.__class__ or da.__class__ is not _ndarray:
                da, db = _same_device(a, b)
            if da.shape != db.shape:
                broadcast_shapes(da.shape, db.shape)
            if da.dtype == db.dtype:
                return da, db, from_numpy_dtype(da.dtype)
            dtype = result_type(a, b)
            np_dtype = dtype.numpy
            # A bool operand (a mask) needs no converted copy: the array library's loops take it as it is.
            return (da if da.dtype == np_dtype or da.dtype.kind == "b" else da.astype(np_dtype),
                    db if db.dtype == np_dtype or db.dtype.kind == "b" else db.astype(np_dtype), dtype)
        da = a._data
        if b.__class__ is float and da.__class__ is _ndarray and da.dtype.kind == "f":
            # The usual case of a float tensor and a Python float, as _with_scalar would: the array's dtype wins.
            return da, b, from_numpy_dtype(da.dtype)
        return _with_scalar(a, b)
    if isinstance(b, Tensor):
        db, scalar, dtype = _with_scalar(b, a)
        return scalar, db, dtype
    raise TypeError(f"expected at least one Tensor operand, got {type(a).__name__} and {type(b).__name__}")


def arith(op, a, b):
    """``op(a, b)`` in a backward formula, where ``op`` is an operator function (``operator.mul``, ...) and ``a``
    or ``b`` a floating point tensor (a gradient).

    A backward runs without recording unless ``create_graph=True``: then the arithmetic is done on the arrays,
    with the op's own operands and type promotion, and wrapped once, without a node for a graph nobody keeps.
    When a graph is recorded it goes through the differentiable op, so that the gradient can be differentiated.
    """
    if _grad_state.enabled:
        return op(a, b)
    if b.__class__ is float:  # a gradient scaled by a Python float: the gradient's float dtype is kept
        da = a._data
        if da.__class__ is _ndarray and da.dtype.kind == "f":
            return make_tensor(op(da, b))
    da, db, _ = binary_operands(a, b)
    return make_tensor(op(da, db))


def negated(grad: Tensor) -> Tensor:
    """``-grad`` in a backward formula (see ``arith``)."""
    if _grad_state.enabled:
        return -grad
    return make_tensor(-grad._data)


def _same_device(a: Tensor, b: Tensor):
    """Returns both arrays on one device: a 0-d CPU tensor joins the other's device, as in PyTorch."""
    da, db = a._data, b._data
    if da.__class__ is _ndarray and da.ndim == 0 and db.__class__ is not _ndarray:
        return to_device(da, backend_of(db)), db
    if db.__class__ is _ndarray and db.ndim == 0 and da.__class__ is not _ndarray:
        return da, to_device(db, backend_of(da))
    check_same_device(a, b)
    return da, db


def _with_scalar(t: Tensor, value):
    """Returns (array, scalar, dtype) for a tensor combined with a Python number."""
    data = t._data
    kind = data.dtype.kind
    cls = value.__class__
    if cls is SymbolicScalar:
        # A Python number that a capture follows (gradcore.compile): where it fits the tensor's dtype it stays
        # symbolic, so that a replay computes with the number of its own call; elsewhere its value is guarded.
        if value.value.__class__ is float and kind == "f" or value.value.__class__ is int and kind == "f":
            return data, value, from_numpy_dtype(data.dtype)
        value = value.value_guarded()
        cls = value.__class__
    if cls is float:
        fits = kind == "f"
    elif cls is int:
        # An integer out of the dtype's range wraps around in PyTorch; numpy refuses it as a weak scalar.
        fits = kind == "f" or (kind in "iu" and _int_fits(value, data.dtype))
    elif cls is bool:
        fits = True
    else:
        _check_scalar(value)
        fits = False
    if fits and data.__class__ is _ndarray:
        # numpy treats Python scalars as weakly typed: the array's dtype wins, as it should.
        return data, value, from_numpy_dtype(data.dtype)
    dtype = result_type(t, value)
    np_dtype = dtype.numpy
    if cls is int and np_dtype.kind in "iu" and not _int_fits(value, np_dtype):
        bits = 8 * np_dtype.itemsize
        value = value % (1 << bits)
        if np_dtype.kind == "i" and value >= 1 << (bits - 1):
            value -= 1 << bits
    return (data if data.dtype == np_dtype else data.astype(np_dtype)), np_dtype.type(value), dtype


def _int_fits(value: int, np_dtype) -> bool:
    info = _iinfo(np_dtype)
    return info.min <= value <= info.max


def _check_scalar(value) -> None:
    if not isinstance(value, (int, float, bool)):
        raise TypeError(
            f"unsupported operand type: expected a Tensor or a Python number, but got {type(value).__name__}"
        )


def as_tensor_like(value, like: Tensor) -> Tensor:
    """Returns ``value`` as a tensor on ``like``'s device (Python scalars take ``like``'s dtype category rules)."""
    if isinstance(value, Tensor):
        return value
    _check_scalar(value)
    dtype = result_type(like, value)
    xp = array_module(like._data)
    return make_tensor(xp.asarray(value, dtype=dtype.numpy))


def normalize_dim(dim, ndim: int) -> int:
    """Wraps a negative dim and checks its range the way PyTorch does (0-d tensors accept 0 and -1)."""
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"dim must be an int, but got {type(dim).__name__}")
    span = max(ndim, 1)
    if dim < -span or dim >= span:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-span}, {span - 1}], but got {dim})")
    return dim + span if dim < 0 else dim


def normalize_dims(dim, ndim: int, empty_means_all: bool = False) -> tuple:
    """Returns a sorted tuple of non-negative dims; None means all of them (and so does an empty list or tuple
    with ``empty_means_all``, as for PyTorch's sum, mean, std, var, logsumexp and norm)."""
    if dim is None or (empty_means_all and isinstance(dim, (list, tuple)) and not dim):
        return tuple(range(ndim))
    if isinstance(dim, (list, tuple)):
        dims = tuple(normalize_dim(d, ndim) for d in dim)
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"dim {dims} appears multiple times in the list of dims")
        return tuple(sorted(dims)) if ndim else ()
    # A 0-d tensor accepts dim 0 and -1 only (checked before it is dropped).
    d = normalize_dim(dim, ndim)
    return (d,) if ndim else ()


def reduce_grad(grad: Tensor, shape: tuple, dtype) -> Tensor:
    """Sums a broadcast gradient back to an input's shape and casts it to the input's dtype (a numpy dtype)."""
    if grad._data.shape != shape:
        from .shape import sum_to_size

        grad = sum_to_size(grad, shape)
    if grad._data.dtype != dtype:
        grad = grad.to(from_numpy_dtype(dtype))
    return grad


def meta(x):
    """What a backward needs to reduce a gradient to an operand: its shape and numpy dtype (None for scalars)."""
    if isinstance(x, Tensor):
        data = x._data
        return (data.shape, data.dtype)
    return None


#: PyTorch's message for a write into memory that several elements share (an expanded tensor).
OVERLAPPING_WRITE = (
    "unsupported operation: more than one element of the written-to tensor refers to a single memory location. "
    "Please clone() the tensor before performing the operation."
)


class quiet_float_errors:
    """Silences the array library's floating point warnings about ``array`` (log(0), 0/0): PyTorch returns
    inf/nan without a word."""

    def __init__(self, array) -> None:
        xp = array_module(array)
        self.state = xp.errstate(all="ignore") if hasattr(xp, "errstate") else None

    def __enter__(self):
        if self.state is not None:
            self.state.__enter__()

    def __exit__(self, *exc):
        if self.state is not None:
            self.state.__exit__(*exc)


def return_type(name: str, fields: list, module: str, qualname: str) -> type:
    """A named tuple for an op's several results (``values``, ``indices``), printed as PyTorch prints its
    ``torch.return_types``: ``gradcore.return_types.sort(`` then one ``field=value`` per line.

    ``module`` and ``qualname`` say where the class is defined, so that results pickle and copy.
    """
    import collections

    base = collections.namedtuple(name, fields)

    def __repr__(self) -> str:
        body = ",\n".join(f"{field}={value!r}" for field, value in zip(self._fields, self))
        return f"gradcore.return_types.{name}(\n{body})"

    return type(name, (base,), {"__slots__": (), "__repr__": __repr__, "__module__": module,
                                "__qualname__": qualname})
