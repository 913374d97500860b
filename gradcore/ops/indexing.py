"""Indexing and slicing (views for basic indices, copies for index tensors) and item assignment."""
from __future__ import annotations

import warnings

from ..autograd.function import Function
from ..backend import backend_of, put_along_axis, to_device
from ._util import Tensor, array_module, check_same_device, make_tensor, meta, normalize_dim, reduce_grad

__all__ = ["index", "index_put", "narrow", "select", "nonzero", "gather_backward", "masked_fill", "gather",
           "index_select", "index_add", "scatter", "scatter_add", "one_hot"]

_BASIC = (int, slice, type(None), type(Ellipsis))


def normalize_key(key, data):
    """Turns a user index into one the array library understands, and says whether it is basic (a view).

    Index tensors become arrays; boolean masks become the index arrays of their True elements so that
    reading, writing and scatter-adding all see the same positions.
    """
    if not isinstance(key, tuple):
        key = (key,)
    basic = True
    converted = []
    # The dim of ``data`` the next index applies to (None once an Ellipsis makes it depend on what follows).
    position = 0
    for k in key:
        if isinstance(k, bool):
            k = make_tensor(array_module(data).asarray(k))
        if isinstance(k, Tensor):
            if k._data.__class__ is not data.__class__:
                if k.device.type != "cpu":
                    raise RuntimeError(
                        "indices should be either on cpu or on the same device as the indexed tensor "
                        f"({make_tensor(data).device})"
                    )
                k = make_tensor(to_device(k._data, backend_of(data)))  # CPU indices are welcome anywhere
            if k.dtype.is_floating_point:
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            k = k._data
        elif isinstance(k, (list, range)):
            k = array_module(data).asarray(k)
            if k.dtype.kind == "f":
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        elif not isinstance(k, _BASIC) and not hasattr(k, "dtype"):
            raise IndexError(
                "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are valid indices "
                f"(got {type(k).__name__})"
            )
        if isinstance(k, _BASIC) and not isinstance(k, bool):
            if isinstance(k, slice) and k.step is not None and k.step <= 0:
                raise ValueError("step must be greater than zero")
            converted.append(k)
            if k is Ellipsis:
                position = None
            elif k is not None and position is not None:
                position += 1
            continue
        basic = False
        if k.dtype == "uint8":
            # A uint8 index is a mask, as in PyTorch (which deprecates it in favour of bool).
            warnings.warn("indexing with dtype uint8 is now deprecated, please use a dtype bool "
                          "instead.", UserWarning, stacklevel=3)
            k = k.astype(bool)
        if k.dtype == bool:
            if position is not None:
                _check_mask_shape(k.shape, data.shape, position)
                position += k.ndim
            converted.extend(k.nonzero())
        else:
            converted.append(k)
            if position is not None:
                position += 1
    key = tuple(converted)
    if basic and not any(k is Ellipsis for k in key):
        key = key + (Ellipsis,)  # an all-integer index then gives a 0-d view, not a copied scalar
    return key, basic


def _check_mask_shape(mask_shape: tuple, shape: tuple, position: int) -> None:
    """A boolean mask must match the sizes of the dims it indexes, as PyTorch checks on read and on write."""
    for j, size in enumerate(mask_shape):
        dim = position + j
        if dim < len(shape) and size != shape[dim]:
            raise IndexError(f"The shape of the mask {list(mask_shape)} at index {j} does not match the shape of "
                             f"the indexed tensor {list(shape)} at index {dim}")


def _index_error(exc: IndexError, data=None) -> IndexError:
    message = str(exc)
    if message.startswith("too many indices") and data is not None:
        return IndexError(f"too many indices for tensor of dimension {data.ndim}")
    return IndexError(message.replace("axis", "dimension"))


def _expand_error(region: tuple, value_shape: tuple) -> RuntimeError:
    """PyTorch's message when a value does not broadcast to the indexed region."""
    n = len(region)
    padded = (1,) * (n - len(value_shape)) + tuple(value_shape) if len(value_shape) <= n else tuple(value_shape)
    for i, (want, have) in enumerate(zip(region, padded[-n:] if n else ())):
        if have != 1 and have != want:
            return RuntimeError(
                f"The expanded size of the tensor ({want}) must match the existing size ({have}) at non-singleton "
                f"dimension {i}.  Target sizes: {list(region)}.  Tensor sizes: {list(value_shape)}"
            )
    return RuntimeError(
        f"shape mismatch: value tensor of shape {list(value_shape)} cannot be broadcast to indexing result of "
        f"shape {list(region)}"
    )


def _keep_key(ctx, key: tuple) -> None:
    """Keeps an index for backward: index arrays as saved values (freed after backward, as PyTorch frees saved
    indices), ints and slices as plain settings (a second backward through them works, as in PyTorch)."""
    if any(hasattr(k, "dtype") for k in key):
        ctx.save_for_backward(key)
        ctx.key = None
    else:
        ctx.key = key


def _kept_key(ctx) -> tuple:
    return ctx.key if ctx.key is not None else ctx.saved_tensors[0]


class Index(Function):
    node_name = "IndexBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, key):
        ctx.input_shape = x.shape
        _keep_key(ctx, key)
        try:
            return x._data[key]
        except IndexError as exc:
            raise _index_error(exc, x._data) from None

    @staticmethod
    def backward(ctx, grad):
        key = _kept_key(ctx)
        return IndexBackward.apply(grad, key, ctx.input_shape), None


class BasicIndex(Index):
    node_name = "SliceBackward0"
    is_view = True

    @staticmethod
    def write_back(base, new_value, key):
        return IndexPut.apply(base, new_value, key)


class SelectIndex(BasicIndex):
    node_name = "SelectBackward0"


class IndexBackward(Function):
    """Scatters a gradient into zeros of the input's shape (adding where an index repeats)."""

    node_name = "IndexPutBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, grad, key, shape):
        _keep_key(ctx, key)
        data = grad._data
        out = array_module(data).zeros(shape, dtype=data.dtype)
        if any(hasattr(k, "dtype") for k in key):
            backend_of(out).scatter_add(out, key, data)
        else:
            out[key] = data
        return out

    @staticmethod
    def backward(ctx, grad):
        key = _kept_key(ctx)
        return Index.apply(grad, key), None, None


def index(input, key):
    """Returns ``input[key]``: a view for ints, slices, None and Ellipsis; a copy for index tensors."""
    key, basic = normalize_key(key, input._data)
    if basic:
        cls = SelectIndex if len(key) == 2 and isinstance(key[0], int) else BasicIndex
        out = cls.apply(input, key)
    else:
        out = Index.apply(input, key)
    return out


class IndexPut(Function):
    """``out = base.clone(); out[key] = value`` as one differentiable op (the history of ``base[key] = value``)."""

    node_name = "IndexPutBackward0"
    builtin = True
    operands = 2

    @staticmethod
    def forward(ctx, base, value, key):
        out = base._data.copy()
        value_data = value._data if isinstance(value, Tensor) else value
        try:
            out[key] = value_data
        except ValueError:
            raise _expand_error(base._data[key].shape, tuple(getattr(value, "shape", ()))) from None
        except IndexError as exc:
            raise _index_error(exc, base._data) from None
        _keep_key(ctx, key)
        ctx.value_meta = meta(value)
        return out

    @staticmethod
    def backward(ctx, grad):
        key = _kept_key(ctx)
        g_base = IndexPut.apply(grad, 0.0, key) if ctx.needs_input_grad[0] else None
        g_value = None
        if ctx.needs_input_grad[1]:
            g_value = reduce_grad(Index.apply(grad, key), *ctx.value_meta)
        return g_base, g_value, None


def index_put(input, key, value):
    """Returns a copy of ``input`` with ``input[key] = value`` (normalizes the key first)."""
    key, _ = normalize_key(key, input._data)
    return IndexPut.apply(input, value, key)


def narrow(input, dim: int, start: int, length: int):
    """Returns the view ``input[..., start:start+length, ...]`` along ``dim``."""
    d = normalize_dim(dim, input.ndim)
    size = input.shape[d]
    if start < 0:
        start += size
    if start < 0 or start + length > size or length < 0:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    key = (slice(None),) * d + (slice(start, start + length),)
    return index(input, key)


def select(input, dim: int, idx: int):
    """Returns the view of ``input`` at index ``idx`` of ``dim`` (that dim removed)."""
    d = normalize_dim(dim, input.ndim)
    size = input.shape[d]
    if not -size <= idx < size:
        raise IndexError(f"select(): index {idx} out of range for tensor of size {list(input.shape)} at dimension {d}")
    return index(input, (slice(None),) * d + (idx,))


def nonzero(input, *, as_tuple: bool = False):
    """Returns the indices of non-zero elements: an (n, ndim) tensor, or one tensor per dim with ``as_tuple``."""
    data = input._data
    xp = array_module(data)
    idx = xp.nonzero(data) if data.ndim else xp.nonzero(data.reshape(1))
    if as_tuple:
        return tuple(make_tensor(i.astype("int64")) for i in idx)
    return make_tensor(xp.stack(idx, axis=1).astype("int64") if idx else xp.zeros((0, 0), dtype="int64"))


class PutAlongDim(Function):
    """Places a gradient at the selected indices of zeros (the backward of max/min along a dim)."""

    node_name = "ValueSelectingReductionBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, grad, dim, indices, shape):
        data = grad._data
        xp = array_module(data)
        work_shape = shape or (1,)
        out = xp.zeros(work_shape, dtype=data.dtype)
        put_along_axis(out, indices, data.reshape(indices.shape), dim)
        ctx.dim, ctx.grad_shape = dim, grad.shape
        ctx.save_for_backward(indices)
        return out.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        return GatherAlongDim.apply(grad, ctx.dim, indices, ctx.grad_shape), None, None, None


class GatherAlongDim(Function):
    node_name = "GatherBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, dim, indices, out_shape):
        data = x._data
        ctx.dim, ctx.shape = dim, x.shape
        ctx.save_for_backward(indices)
        return array_module(data).take_along_axis(data.reshape(data.shape or (1,)), indices, axis=dim).reshape(out_shape)

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        return PutAlongDim.apply(grad, ctx.dim, indices, ctx.shape), None, None, None


def gather_backward(grad, dim: int, indices, shape: tuple):
    """Returns zeros of ``shape`` holding ``grad`` at ``indices`` along ``dim``."""
    return PutAlongDim.apply(grad, dim, indices, shape)


def masked_fill(input, mask, value):
    """Returns ``input`` with ``value`` where ``mask`` is True."""
    from .elementwise import where

    from ._util import broadcast_shapes

    if not isinstance(mask, Tensor):
        raise TypeError(f"masked_fill(): argument 'mask' (position 1) must be Tensor, not {type(mask).__name__}")
    if mask.dtype.name != "bool":
        raise RuntimeError("masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{_C_TYPE_NAMES.get(mask.dtype.name, mask.dtype.name)}")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError("masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value.ndim} dimension(s).")
    elif not isinstance(value, (int, float, bool)):
        raise TypeError(f"masked_fill() received an invalid combination of arguments - got (Tensor, "
                        f"{type(value).__name__}), but expected one of:\n * (Tensor mask, Tensor value)\n"
                        " * (Tensor mask, Number value)")
    check_same_device(input, mask)
    broadcast_shapes(tuple(mask.shape), tuple(input.shape))
    if not isinstance(value, Tensor):
        value = make_tensor(array_module(input._data).asarray(value, dtype=input.dtype.numpy))
    return where(mask, value.to(input.dtype), input)


#: The C type names PyTorch's messages give for dtypes.
_C_TYPE_NAMES = {"uint8": "unsigned char", "int8": "signed char", "int16": "short int", "int32": "int",
                 "int64": "long int", "float16": "c10::Half", "float32": "float", "float64": "double"}


def assign(data, key, value) -> None:
    """Writes ``value`` into ``data[key]`` with PyTorch's error messages."""
    try:
        data[key] = value
    except ValueError:
        raise _expand_error(data[key].shape, tuple(getattr(value, "shape", ()))) from None
    except IndexError as exc:
        raise _index_error(exc, data) from None


def _along_dim_key(index_data, dim: int) -> tuple:
    """The advanced-indexing key that picks ``x[i0, .., index[i0, .., ik], .., ik]`` for every position of index."""
    xp = array_module(index_data)
    key = list(xp.ix_(*(xp.arange(n) for n in index_data.shape))) if index_data.ndim else []
    key[dim] = index_data
    return tuple(key)


class Gather(Function):
    node_name = "GatherBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, dim, index_data):
        key, ctx.shape = _along_dim_key(index_data, dim), x.shape
        _keep_key(ctx, key)
        return x._data[key]

    @staticmethod
    def backward(ctx, grad):
        key = _kept_key(ctx)
        return ScatterAddInto.apply(grad, key, ctx.shape), None, None


class ScatterAddInto(Function):
    """Adds a gradient into zeros of the input's shape at the gathered positions (repeats accumulate)."""

    node_name = "ScatterAddBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, grad, key, shape):
        data = grad._data
        out = array_module(data).zeros(shape, dtype=data.dtype)
        backend_of(out).scatter_add(out, key, data)
        _keep_key(ctx, key)
        return out

    @staticmethod
    def backward(ctx, grad):
        return Index.apply(grad, _kept_key(ctx)), None, None


def gather(input, dim: int, index, *, sparse_grad: bool = False):
    """Gathers values along ``dim``: ``out[i][j][k] = input[i][index[i][j][k]][k]`` (for dim=1)."""
    if not isinstance(index, Tensor) or index.dtype.name not in ("int64", "int32"):
        raise RuntimeError("gather(): Expected dtype int32/int64 for index")
    d = normalize_dim(dim, input.ndim)
    if index.ndim != input.ndim:
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    for i, (n_index, n_input) in enumerate(zip(index.shape, input.shape)):
        if i != d and n_index > n_input:
            raise RuntimeError(
                f"Size does not match at dimension {i} expected index {list(index.shape)} to be no larger than "
                f"self {list(input.shape)} apart from dimension {d}"
            )
    data = index._data
    size = input.shape[d] if input.ndim else 1
    if data.size and (data.min() < 0 or data.max() >= size):
        # Negative indices are out of bounds here, as in PyTorch: gather does not wrap them.
        raise RuntimeError(f"index {int(data.max() if data.max() >= size else data.min())} is out of bounds for dimension {d} with size {size}")
    data = data.astype("int64", copy=False)
    if input.ndim == 0:
        return input.clone()
    return Gather.apply(input, d, data)


# -- index_select, index_add, scatter, one_hot ------------------------------------------------------

def _check_index_tensor(index, name: str, dtypes=("int64",)) -> None:
    if not isinstance(index, Tensor):
        raise TypeError(f"{name}(): argument 'index' (position 3) must be Tensor, not {type(index).__name__}")
    if index.dtype.name not in dtypes:
        kinds = " or ".join("Long" if d == "int64" else "Int" for d in dtypes)
        raise RuntimeError(f"{name}(): Expected dtype {kinds} for index")


class IndexSelect(Index):
    node_name = "IndexSelectBackward0"


def index_select(input, dim: int, index):
    """Returns the slices of ``input`` along ``dim`` at the positions in the 1-d ``index``."""
    _check_index_tensor(index, "index_select", ("int64", "int32"))
    if index.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    d = normalize_dim(dim, input.ndim)
    check_same_device(input, index)
    size = input.shape[d] if input.ndim else 1
    data = index._data.reshape(-1)
    if data.size and (data.min() < 0 or data.max() >= size):
        if d == 1 and input.ndim > 1:
            # PyTorch's CPU kernel for dim 1 says it its own way, naming the first index out of range.
            bad = int(data[(data < 0) | (data >= size)][0])
            raise RuntimeError(f"INDICES element is out of DATA bounds, id={bad} axis_dim={size}")
        raise IndexError("index out of range in self")
    if input.ndim == 0:
        return input.reshape(1)[make_tensor(data)].reshape(index.shape)
    return IndexSelect.apply(input, (slice(None),) * d + (data.astype("int64"),))


class IndexAdd(Function):
    """``out = input.clone(); out[..., index[i], ...] += alpha * source[..., i, ...]`` along a dim."""

    node_name = "IndexAddBackward0"
    builtin = True
    operands = 2

    @staticmethod
    def forward(ctx, x, source, dim, index_data, alpha):
        out = x._data.copy()
        key = (slice(None),) * dim + (index_data,)
        values = source._data if alpha == 1 else source._data * alpha
        backend_of(out).scatter_add(out, key, values.astype(out.dtype, copy=False))
        ctx.key, ctx.alpha, ctx.source_meta = key, alpha, meta(source)
        return out

    @staticmethod
    def backward(ctx, grad):
        g_source = None
        if ctx.needs_input_grad[1]:
            g_source = Index.apply(grad, ctx.key)
            if ctx.alpha != 1:
                g_source = g_source * ctx.alpha
        return grad, g_source, None, None, None


def index_add(input, dim: int, index, source, *, alpha=1):
    """Returns ``input`` with ``alpha * source`` added at the positions ``index`` along ``dim``."""
    _check_index_tensor(index, "index_add", ("int64", "int32"))
    d = normalize_dim(dim, input.ndim)
    data = index._data.reshape(-1)
    size = input.shape[d] if input.ndim else 1
    if data.size and (data.min() < 0 or data.max() >= size):
        if d == 1 and input.ndim > 1:
            # PyTorch's CPU kernel for dim 1 says it its own way, naming the first index out of range.
            bad = int(data[(data < 0) | (data >= size)][0])
            raise RuntimeError(f"INDICES element is out of DATA bounds, id={bad} axis_dim={size}")
        raise IndexError("index out of range in self")
    return IndexAdd.apply(input, source, d, data.astype("int64"), alpha)


def _check_scatter(name: str, input, dim: int, index, src) -> int:
    """Checks a scatter's arguments as PyTorch does and returns the wrapped dim."""
    if not isinstance(index, Tensor) or index.dtype.name not in ("int64", "int32"):
        raise RuntimeError(f"{name}(): Expected dtype int32/int64 for index")
    d = normalize_dim(dim, input.ndim)
    if isinstance(src, Tensor) and src.dtype is not input.dtype:
        raise RuntimeError(f"{name}(): Expected self.dtype to be equal to src.dtype")
    if index.ndim != input.ndim and index.numel() > 0 and not (index.ndim <= 1 and input.ndim <= 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as self tensor")
    if isinstance(src, Tensor) and index.ndim != src.ndim and index.numel() > 0 and not (index.ndim <= 1 and src.ndim <= 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as src tensor")
    for i in range(index.ndim):
        n_index = index.shape[i]
        if i != d and input.ndim and n_index > input.shape[i]:
            raise RuntimeError(f"Expected index {list(index.shape)} to be no larger than self {list(input.shape)} "
                               f"apart from dimension {d} and to be no larger size than src "
                               f"{list(src.shape) if isinstance(src, Tensor) else []}")
        if isinstance(src, Tensor) and src.ndim and n_index > src.shape[i]:
            raise RuntimeError(f"Expected index {list(index.shape)} to be no larger than self {list(input.shape)} "
                               f"apart from dimension {d} and to be no larger size than src {list(src.shape)}")
    data = index._data
    size = input.shape[d] if input.ndim else 1
    if data.size and (data.min() < 0 or data.max() >= size):
        bad = int(data.min() if data.min() < 0 else data.max())
        raise RuntimeError(f"index {bad} is out of bounds for dimension {d} with size {size}")
    return d


def _source_block(src_data, index_shape: tuple):
    """The part of ``src`` a scatter reads: its leading ``index.shape`` block."""
    return src_data[tuple(slice(0, n) for n in index_shape)]


class Scatter(Function):
    """``out = input.clone(); out[pos(index)] = src`` (or added with ``accumulate``) along a dim."""

    node_name = "ScatterBackward0"
    builtin = True
    operands = 2
    accumulate = False

    @staticmethod
    def forward(ctx, x, src, dim, index_data):
        out = x._data.copy()
        key = _along_dim_key(index_data, dim)
        if isinstance(src, Tensor):
            values = _source_block(src._data, index_data.shape)
        else:
            values = array_module(out).asarray(src, dtype=out.dtype)
        if ctx._forward_cls.accumulate:
            backend_of(out).scatter_add(out, key, array_module(out).broadcast_to(values, index_data.shape))
        else:
            out[key] = values
        ctx.key, ctx.src_shape = key, (src.shape if isinstance(src, Tensor) else None)
        return out

    @staticmethod
    def backward(ctx, grad):
        g_input = g_src = None
        if ctx.needs_input_grad[0]:
            # Scattered positions were overwritten (scatter) or added to (scatter_add).
            g_input = grad if ctx._forward_cls.accumulate else IndexPut.apply(grad, 0.0, ctx.key)
        if ctx.needs_input_grad[1]:
            picked = Index.apply(grad, ctx.key)
            if tuple(picked.shape) != tuple(ctx.src_shape):
                # src may be larger than index: its other elements were not read.
                block = tuple(slice(0, n) for n in picked.shape)
                g_src = IndexPut.apply(make_tensor(array_module(grad._data).zeros(ctx.src_shape, grad._data.dtype)),
                                       picked, block)
            else:
                g_src = picked
        return g_input, g_src, None, None


class ScatterAdd(Scatter):
    node_name = "ScatterAddBackward0"
    accumulate = True


_SCATTER_REDUCTIONS = {"add": "add", "multiply": "multiply"}


def scatter(input, dim: int, index, src=None, *, value=None, reduce=None):
    """Returns ``input`` with ``src`` (a tensor or a number) written at the positions ``index`` along ``dim``.

    ``out[index[i][j]][j] = src[i][j]`` for dim=0. ``reduce='add'`` or ``'multiply'`` combines instead.
    """
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter() missing required argument 'src' or 'value'")
    d = _check_scatter("scatter", input, dim, index, src)
    if index.numel() == 0:
        return input.clone()
    if reduce is not None:
        if reduce not in _SCATTER_REDUCTIONS:
            raise RuntimeError(f"reduce argument must be either add or multiply. Got {reduce}")
        from ..autograd.grad_mode import is_grad_enabled

        if is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad for t in (input, src)):
            # PyTorch has no derivative for scatter with reduce: say so now rather than at backward.
            raise RuntimeError("derivative for aten::scatter is not implemented")
        # Unbuffered add/multiply at repeated positions: done on the host, where numpy has them for every ufunc.
        backend = backend_of(input._data)
        out = backend.to_numpy(input._data).copy()
        xp = array_module(out)
        key = _along_dim_key(backend.to_numpy(index._data).astype("int64"), d)
        values = backend.to_numpy(_source_block(src._data, index.shape)) if isinstance(src, Tensor) else src
        values = xp.broadcast_to(xp.asarray(values, dtype=out.dtype), tuple(index.shape))
        (xp.add if reduce == "add" else xp.multiply).at(out, key, values)
        return make_tensor(backend.asarray(out))
    return Scatter.apply(input, src, d, index._data.astype("int64", copy=False))


def scatter_add(input, dim: int, index, src):
    """Returns ``input`` with ``src`` added at the positions ``index`` along ``dim`` (repeats accumulate)."""
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_add(): argument 'src' (position 4) must be Tensor, not {type(src).__name__}")
    d = _check_scatter("scatter_add", input, dim, index, src)
    if index.numel() == 0:
        return input.clone()
    return ScatterAdd.apply(input, src, d, index._data.astype("int64", copy=False))


def one_hot(tensor, num_classes: int = -1):
    """Returns an int64 tensor of shape ``tensor.shape + (num_classes,)`` with a one at each class index."""
    if not isinstance(tensor, Tensor) or tensor.dtype.name != "int64":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    data = tensor._data
    xp = array_module(data)
    if num_classes == -1:
        if data.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(data.max()) + 1
    if data.size and data.min() < 0:
        raise RuntimeError("Class values must be non-negative.")
    if data.size and data.max() >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    out = (data[..., None] == xp.arange(num_classes)).astype("int64")
    return make_tensor(out)
