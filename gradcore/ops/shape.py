"""Shape ops: views that share memory with their input (view, transpose, permute, ...), and concatenation."""
from __future__ import annotations

import math

from ..autograd.function import Function
from ..autograd.grad_mode import state as _grad_state
from ..backend import broadcast_view, reshape_view
from ._util import OVERLAPPING_WRITE, Tensor, array_module, check_same_device, make_tensor, normalize_dim, result_type

__all__ = ["view", "reshape", "flatten", "transpose", "t", "permute", "unsqueeze", "squeeze", "expand",
           "sum_to_size", "cat", "stack", "broadcast_shapes_or_none", "broadcast_to", "contiguous", "unbind",
           "split", "chunk", "movedim", "tril", "triu", "roll", "flip", "repeat", "tile", "repeat_interleave"]


def _infer_shape(shape: tuple, numel: int) -> tuple:
    """Resolves one -1 in a target shape and checks that the element count matches."""
    shape = tuple(shape)
    for s in shape:
        if not isinstance(s, int) or isinstance(s, bool):
            raise TypeError(f"shape must be a sequence of ints, but got an element of type {type(s).__name__}")
    unknown = [i for i, s in enumerate(shape) if s == -1]
    if len(unknown) > 1:
        raise RuntimeError("only one dimension can be inferred")
    if any(s < -1 for s in shape):
        raise RuntimeError(f"invalid shape dimension {min(shape)}")
    known = math.prod(s for s in shape if s != -1)
    if unknown:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = shape[:unknown[0]] + (numel // known,) + shape[unknown[0] + 1:]
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


class View(Function):
    node_name = "ViewBackward0"
    builtin = True
    is_view = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        data = x._data
        shape = _infer_shape(shape, data.size)
        out = reshape_view(data, shape)
        if out is None:
            raise RuntimeError(
                f"view size is not compatible with input tensor's size and stride (at least one dimension spans "
                f"across two contiguous subspaces). Use .reshape(...) instead. (input shape {list(x.shape)}, "
                f"requested {list(shape)})"
            )
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.input_shape), None

    @staticmethod
    def write_back(base, new_value, shape):
        return new_value.reshape(base.shape)


class Reshape(Function):
    """reshape that copies: used only when no view of the input has the requested shape."""

    node_name = "CloneBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return array_module(x._data).reshape(x._data.copy(), shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.input_shape), None


def view(input, *shape):
    """Returns a tensor over the same memory with another shape (fails if no such view exists)."""
    shape = _shape_arg(shape)
    if len(shape) == 1 and not isinstance(shape[0], int) and hasattr(shape[0], "numpy"):
        raise TypeError("view(dtype) is not supported")
    return View.apply(input, shape)


def reshape(input, *shape):
    """Returns a tensor with the given shape: a view when possible, else a copy."""
    shape = _infer_shape(_shape_arg(shape), input._data.size)
    if shape == input.shape:
        return View.apply(input, shape)
    if reshape_view(input._data, shape) is None:
        return Reshape.apply(input, shape)
    return View.apply(input, shape)


def flatten(input, start_dim: int = 0, end_dim: int = -1):
    """Flattens dims ``start_dim`` .. ``end_dim`` into one."""
    if input.ndim == 0:
        return reshape(input, (1,))
    start = normalize_dim(start_dim, input.ndim)
    end = normalize_dim(end_dim, input.ndim)
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shape = input.shape
    new_shape = shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:]
    return reshape(input, new_shape)


class Permute(Function):
    node_name = "PermuteBackward0"
    builtin = True
    is_view = True

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return array_module(x._data).transpose(x._data, dims)

    @staticmethod
    def backward(ctx, grad):
        inverse = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inverse[d] = i
        return grad.permute(tuple(inverse)), None

    @staticmethod
    def write_back(base, new_value, dims):
        inverse = [0] * len(dims)
        for i, d in enumerate(dims):
            inverse[d] = i
        return new_value.permute(tuple(inverse))


class Transpose(Function):
    node_name = "TransposeBackward0"
    builtin = True
    is_view = True

    @staticmethod
    def forward(ctx, x, dim0, dim1):
        ctx.dims = (dim0, dim1)
        return array_module(x._data).swapaxes(x._data, dim0, dim1)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(*ctx.dims), None, None

    @staticmethod
    def write_back(base, new_value, dim0, dim1):
        return new_value.transpose(dim0, dim1)


class TransposeMatrix(Transpose):
    node_name = "TBackward0"


def permute(input, *dims):
    """Returns a view with the dims reordered."""
    dims = _shape_arg(dims)
    if len(dims) != input.ndim:
        raise RuntimeError(
            f"permute(sparse_coo): number of dimensions in the tensor input does not match the length of the "
            f"desired ordering of dimensions i.e. input.dim() = {input.ndim} is not equal to len(dims) = {len(dims)}"
        )
    dims = tuple(normalize_dim(d, input.ndim) for d in dims)
    if len(set(dims)) != len(dims):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return Permute.apply(input, dims)


def transpose(input, dim0: int, dim1: int):
    """Returns a view with two dims swapped."""
    if input.ndim == 0:
        normalize_dim(dim0, 0), normalize_dim(dim1, 0)
        return View.apply(input, ())
    d0, d1 = normalize_dim(dim0, input.ndim), normalize_dim(dim1, input.ndim)
    return Transpose.apply(input, d0, d1)


def t(input):
    """Transposes a tensor of at most 2 dims."""
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    if input.ndim < 2:
        return View.apply(input, input.shape)
    return TransposeMatrix.apply(input, 0, 1)


def movedim(input, source: int, destination: int):
    """Moves one dim to another position."""
    n = input.ndim
    src, dst = normalize_dim(source, n), normalize_dim(destination, n)
    order = [d for d in range(n) if d != src]
    order.insert(dst, src)
    return permute(input, tuple(order))


class Unsqueeze(View):
    """A view that inserts a dim of size one (its own node name, as in PyTorch)."""

    node_name = "UnsqueezeBackward0"


class Squeeze(View):
    """squeeze() of every dim of size one; ``SqueezeDim`` and ``SqueezeDims`` take one dim or several."""

    node_name = "SqueezeBackward0"


class SqueezeDim(View):
    node_name = "SqueezeBackward1"


class SqueezeDims(View):
    node_name = "SqueezeBackward2"


def unsqueeze(input, dim: int):
    """Returns a view with a dim of size one inserted at ``dim``."""
    d = normalize_dim(dim, input.ndim + 1)
    shape = input.shape
    return Unsqueeze.apply(input, shape[:d] + (1,) + shape[d:])


def squeeze(input, dim=None):
    """Returns a view without the dims of size one (or only ``dim``, when it has size one)."""
    shape = input.shape
    if dim is None:
        new = tuple(s for s in shape if s != 1)
        node = Squeeze
    else:
        node = SqueezeDims if isinstance(dim, (tuple, list)) else SqueezeDim
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        dims = {normalize_dim(d, input.ndim) for d in dims}
        new = tuple(s for i, s in enumerate(shape) if not (i in dims and s == 1))
    return node.apply(input, new)


class Expand(Function):
    node_name = "ExpandBackward0"
    builtin = True
    is_view = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return broadcast_view(x._data, shape)

    @staticmethod
    def backward(ctx, grad):
        return sum_to_size(grad, ctx.input_shape), None

    @staticmethod
    def write_back(base, new_value, shape):
        raise RuntimeError(OVERLAPPING_WRITE)


def expand(input, *sizes):
    """Returns a broadcast view with the given sizes (-1 keeps a size); no memory is copied."""
    sizes = _shape_arg(sizes)
    shape = input.shape
    if len(sizes) < len(shape):
        raise RuntimeError(
            f"expand(torch.FloatTensor{{{list(shape)}}}, size={list(sizes)}): the number of sizes provided "
            f"({len(sizes)}) must be greater or equal to the number of dimensions in the tensor ({len(shape)})"
        )
    padded = (1,) * (len(sizes) - len(shape)) + shape
    out = []
    for i, (want, have) in enumerate(zip(sizes, padded)):
        if want < -1 and i < len(sizes) - len(shape):
            raise RuntimeError("numel: integer multiplication overflow")
        if want == -1:
            if i < len(sizes) - len(shape):
                raise RuntimeError(f"The expanded size of the tensor (-1) isn't allowed in a leading, non-existing dimension {i}")
            want = have
        elif have != 1 and want != have:
            raise RuntimeError(
                f"The expanded size of the tensor ({want}) must match the existing size ({have}) at non-singleton "
                f"dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: {list(shape)}"
            )
        out.append(want)
    out = tuple(out)
    if out == shape:
        return View.apply(input, shape)
    return Expand.apply(input, out)


def broadcast_to(input, shape):
    """Same as ``expand`` with a full shape."""
    return expand(input, tuple(shape))


def broadcast_shapes_or_none(target: tuple, shape: tuple):
    """Returns the broadcast of the two shapes, or None when they do not broadcast."""
    n = max(len(target), len(shape))
    pa = (1,) * (n - len(target)) + tuple(target)
    pb = (1,) * (n - len(shape)) + tuple(shape)
    out = []
    for x, y in zip(pa, pb):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return tuple(out)


class SumToSize(Function):
    """Sums a broadcast gradient back to a smaller shape (the backward of broadcasting)."""

    node_name = "SumToSizeBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return _sum_to(x._data, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.expand(ctx.input_shape), None


def _sum_to(data, shape: tuple):
    lead = data.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and data.shape[lead + i] != 1
    )
    out = data.sum(axis=axes, keepdims=True) if axes else data
    return out.reshape(shape)


def sum_to_size(input, *shape):
    """Returns ``input`` summed over the dims where ``shape`` has size one (or lacks the dim)."""
    shape = _shape_arg(shape)
    if input.shape == shape:
        return input
    if not _grad_state.enabled and not input._requires_grad:
        # Nothing to record (a gradient being reduced in backward): no node.
        return make_tensor(_sum_to(input._data, shape))
    return SumToSize.apply(input, shape)


class Contiguous(Function):
    node_name = "CloneBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x):
        return array_module(x._data).ascontiguousarray(x._data)

    @staticmethod
    def backward(ctx, grad):
        return grad


def contiguous(input):
    """Returns the tensor itself when its memory is contiguous, else a contiguous copy."""
    if input.is_contiguous():
        return input
    return Contiguous.apply(input)


def _promoted_arrays(tensors) -> list:
    """The tensors' arrays in their common dtype (``result_type``), converted only where they differ."""
    dtype = result_type(*tensors).numpy
    return [t._data if t._data.dtype == dtype else t._data.astype(dtype) for t in tensors]


class Cat(Function):
    node_name = "CatBackward0"
    builtin = True
    operands = -1

    @staticmethod
    def forward(ctx, *tensors, dim):
        arrays = _promoted_arrays(tensors)
        ctx.dim = dim
        ctx.sizes = [t.shape[dim] if t.ndim else 0 for t in tensors]
        ctx.meta = [(t.shape, t.dtype) for t in tensors]
        return array_module(arrays[0]).concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        grads = []
        start = 0
        for i, (size, (shape, dtype)) in enumerate(zip(ctx.sizes, ctx.meta)):
            if ctx.needs_input_grad[i]:
                g = grad.narrow(ctx.dim, start, size)
                grads.append(g if g.dtype is dtype else g.to(dtype))
            else:
                grads.append(None)
            start += size
        return tuple(grads)


class Stack(Function):
    """Stacking along a new dim: one node linked to every input, as PyTorch's ``StackBackward0``."""

    node_name = "StackBackward0"
    builtin = True
    operands = -1

    @staticmethod
    def forward(ctx, *tensors, dim):
        arrays = _promoted_arrays(tensors)
        ctx.dim = dim
        ctx.dtypes = [t.dtype for t in tensors]
        return array_module(arrays[0]).stack(arrays, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        grads = []
        for i, dtype in enumerate(ctx.dtypes):
            if ctx.needs_input_grad[i]:
                g = grad.select(ctx.dim, i)
                grads.append(g if g.dtype is dtype else g.to(dtype))
            else:
                grads.append(None)
        return tuple(grads)


def cat(tensors, dim: int = 0):
    """Concatenates tensors along an existing dim."""
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"cat(): argument 'tensors' (position 1) must be tuple of Tensors, not {type(tensors).__name__}")
    if len(tensors) == 0:
        raise ValueError("cat(): expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got {type(t).__name__}")
    check_same_device(*tensors)
    # PyTorch skips 1-d empty tensors when concatenating.
    used = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or [tensors[0]]
    ref = used[0]
    if ref.ndim == 0:
        raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
    d = normalize_dim(dim, ref.ndim)
    for i, t in enumerate(tensors):
        if t.ndim == 1 and t.shape[0] == 0:
            continue
        if t.ndim != ref.ndim:
            raise RuntimeError(
                f"Tensors must have same number of dimensions: got {ref.ndim} and {t.ndim}"
            )
        for k in range(ref.ndim):
            if k != d and t.shape[k] != ref.shape[k]:
                raise RuntimeError(
                    f"Sizes of tensors must match except in dimension {d}. Expected size {ref.shape[k]} but got "
                    f"size {t.shape[k]} for tensor number {i} in the list."
                )
    return Cat.apply(*used, dim=d)


def stack(tensors, dim: int = 0):
    """Stacks tensors of equal shape along a new dim."""
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"stack(): argument 'tensors' (position 1) must be tuple of Tensors, not {type(tensors).__name__}")
    if len(tensors) == 0:
        raise RuntimeError("stack expects a non-empty TensorList")
    shape = tensors[0].shape
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 0, but got {type(t).__name__}")
        if t.shape != shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(shape)} at entry 0 and "
                f"{list(t.shape)} at entry {i}"
            )
    d = normalize_dim(dim, len(shape) + 1)
    check_same_device(*tensors)
    return Stack.apply(*tensors, dim=d)


def unbind(input, dim: int = 0) -> tuple:
    """Returns the slices along ``dim`` as a tuple of views."""
    d = normalize_dim(dim, input.ndim)
    return tuple(input.select(d, i) for i in range(input.shape[d]))


def split(input, split_size_or_sections, dim: int = 0) -> tuple:
    """Splits into chunks of a given size (the last may be smaller) or of the given sizes."""
    d = normalize_dim(dim, input.ndim)
    size = input.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step < 0:
            raise RuntimeError(f"split expects split_size be non-negative, but got split_size={step}")
        if step == 0:
            if size != 0:
                raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of "
                                   f"{size}")
            return (input.narrow(d, 0, 0),)
        sizes = [min(step, size - s) for s in range(0, size, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != size:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's size at dimension "
                f"{d}), but got split_sizes={sizes}"
            )
    out, start = [], 0
    for s in sizes:
        out.append(input.narrow(d, start, s))
        start += s
    return tuple(out)


def chunk(input, chunks: int, dim: int = 0) -> tuple:
    """Splits into ``chunks`` nearly equal parts."""
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = normalize_dim(dim, input.ndim)
    step = max(1, -(-input.shape[d] // chunks))
    return split(input, step, d)


# -- copies that rearrange or repeat elements ------------------------------------------------------

class Triangle(Function):
    """The lower (tril) or upper (triu) triangle of the last two dims; the gradient keeps the same triangle."""

    node_name = "TrilBackward0"
    builtin = True
    upper = False

    @staticmethod
    def forward(ctx, x, diagonal):
        ctx.diagonal = diagonal
        xp = array_module(x._data)
        return (xp.triu if ctx._forward_cls.upper else xp.tril)(x._data, diagonal)

    @staticmethod
    def backward(ctx, grad):
        return ctx._forward_cls.apply(grad, ctx.diagonal), None


class UpperTriangle(Triangle):
    node_name = "TriuBackward0"
    upper = True


def _triangle(input, diagonal: int, upper: bool):
    name = "triu" if upper else "tril"
    if input.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")
    return (UpperTriangle if upper else Triangle).apply(input, int(diagonal))


def tril(input, diagonal: int = 0):
    """Returns the lower triangle of the last two dims (elements on and below the ``diagonal``-th diagonal)."""
    return _triangle(input, diagonal, upper=False)


def triu(input, diagonal: int = 0):
    """Returns the upper triangle of the last two dims (elements on and above the ``diagonal``-th diagonal)."""
    return _triangle(input, diagonal, upper=True)


def _int_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


class Roll(Function):
    node_name = "RollBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, shifts, dims):
        ctx.shifts, ctx.dims = shifts, dims
        data = x._data
        xp = array_module(data)
        if dims is None:
            return xp.roll(data.reshape(-1), shifts).reshape(data.shape)
        return xp.roll(data, shifts, axis=dims)

    @staticmethod
    def backward(ctx, grad):
        back = tuple(-s for s in ctx.shifts) if isinstance(ctx.shifts, tuple) else -ctx.shifts
        return Roll.apply(grad, back, ctx.dims), None, None


def roll(input, shifts, dims=None):
    """Returns ``input`` rolled by ``shifts`` along ``dims`` (over the flattened tensor when ``dims`` is None)."""
    if dims is None:
        shift = _int_tuple(shifts)
        if len(shift) != 1:
            raise RuntimeError(f"roll(): shifts and dims must have the same size, got {len(shift)} and 0")
        return Roll.apply(input, int(shift[0]), None)
    shifts, dims = _int_tuple(shifts), _int_tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
    dims = tuple(normalize_dim(d, input.ndim) for d in dims)
    if input.ndim == 0:
        return input.clone()
    return Roll.apply(input, tuple(int(s) for s in shifts), dims)


class Flip(Function):
    node_name = "FlipBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return array_module(x._data).flip(x._data, axis=dims).copy() if dims else x._data.copy()

    @staticmethod
    def backward(ctx, grad):
        return Flip.apply(grad, ctx.dims), None


def flip(input, dims):
    """Returns a copy of ``input`` with the order of elements reversed along ``dims``."""
    dims = tuple(normalize_dim(d, input.ndim) for d in _int_tuple(dims))
    for i, d in enumerate(dims):
        if d in dims[:i]:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
    return Flip.apply(input, dims if input.ndim else ())


class Repeat(Function):
    """Tiles ``input`` ``repeats[i]`` times along each dim; the gradient sums the copies."""

    node_name = "RepeatBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, repeats):
        data = x._data
        padded = (1,) * (len(repeats) - data.ndim) + data.shape
        ctx.padded, ctx.repeats, ctx.input_shape = padded, repeats, x.shape
        return array_module(data).tile(data.reshape(padded), repeats)

    @staticmethod
    def backward(ctx, grad):
        # Split every dim into (copy, element) and sum over the copies.
        split_shape = tuple(s for pair in zip(ctx.repeats, ctx.padded) for s in pair)
        summed = grad.reshape(split_shape).sum(tuple(range(0, 2 * len(ctx.repeats), 2)))
        return summed.reshape(ctx.input_shape), None


def repeat(input, *sizes):
    """Returns ``input`` repeated ``sizes[i]`` times along each dim (new leading dims for extra sizes)."""
    repeats = _shape_arg(sizes)
    if len(repeats) < input.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of "
                           "tensor")
    if any(r < 0 for r in repeats):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(repeats)}: {list(repeats)}")
    return Repeat.apply(input, repeats)


def tile(input, dims):
    """Returns ``input`` repeated along each dim as ``repeat`` does, padding ``dims`` with ones in front."""
    dims = _int_tuple(dims) if not isinstance(dims, int) else (dims,)
    dims = (1,) * (input.ndim - len(dims)) + tuple(dims)
    return repeat(input, dims)


class RepeatInterleave(Function):
    """Repeats each element (slice) along a dim; the gradient sums each element's copies."""

    node_name = "RepeatInterleaveBackward0"
    builtin = True

    @staticmethod
    def forward(ctx, x, repeats, dim):
        ctx.repeats, ctx.dim, ctx.size = repeats, dim, x.shape[dim]
        return array_module(x._data).repeat(x._data, repeats, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        xp = array_module(grad._data)
        counts = ctx.repeats if isinstance(ctx.repeats, list) else [ctx.repeats] * ctx.size
        owner = make_tensor(xp.repeat(xp.arange(ctx.size), counts))
        # Each output slice adds into the slice it was copied from.
        shape = list(grad.shape)
        shape[ctx.dim] = ctx.size
        from .indexing import index_add

        zeros = make_tensor(xp.zeros(tuple(shape), dtype=grad._data.dtype))
        return index_add(zeros, ctx.dim, owner, grad), None, None


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Returns ``input`` with each element repeated ``repeats`` times along ``dim`` (flattened when None).

    With only a tensor of repeats, returns ``arange(len(repeats))`` with each index repeated that often.
    """
    if repeats is None:
        counts = input
        if counts.ndim > 1 or counts.dtype.is_floating_point:
            raise RuntimeError("repeat_interleave only accept 1D vector as repeat")
        xp = array_module(counts._data)
        data = [int(c) for c in counts.reshape(-1).tolist()]
        if any(c < 0 for c in data):
            raise RuntimeError("repeats can not be negative")
        return make_tensor(xp.repeat(xp.arange(len(data), dtype="int64"), data))
    if dim is None:
        input = input.reshape(-1)
        d = 0
    else:
        d = normalize_dim(dim, input.ndim)
        if input.ndim == 0:
            input = input.reshape(1)
    if isinstance(repeats, Tensor):
        if repeats.ndim > 1:
            raise RuntimeError("repeat_interleave only accept 1D vector as repeat")
        # Python ints: the array libraries take a list of repeats (CuPy takes no device array).
        counts = [int(c) for c in repeats.reshape(-1).tolist()]
        if len(counts) == 1:
            counts = counts[0]
        elif len(counts) != input.shape[d]:
            raise RuntimeError("repeats must have the same size as input along dim, but got repeats.size(0) = "
                               f"{len(counts)} and input.size({d}) = {input.shape[d]}")
    else:
        counts = int(repeats)
    if (counts < 0) if isinstance(counts, int) else any(c < 0 for c in counts):
        raise RuntimeError("repeats can not be negative")
    out = RepeatInterleave.apply(input, counts, d)
    if output_size is not None and out.shape[d] != output_size:
        raise RuntimeError(f"allocated size does not match required size")
    return out
