"""Random sampling from distributions: multinomial, bernoulli, normal and exponential.

On the CPU each draws, for the same seed, the numbers PyTorch's CPU kernels draw: the same 53-bit (or 24-bit)
uniforms from the generator's stream, in the same order, transformed the same way.
"""
from __future__ import annotations

import math

from ..autograd.function import Function
from ..backend import backend_of
from ._util import Tensor, array_module, make_tensor, meta

__all__ = ["multinomial", "bernoulli", "normal", "exponential_fill", "bernoulli_fill", "check_normal_std",
           "check_uniform_range"]


def _backend(like_data, generator):
    """The backend whose stream draws: the generator's own when one is given, else the tensor's device's."""
    if generator is None:
        return backend_of(like_data)
    from ..generator import Generator

    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a gradcore.Generator, not {type(generator).__name__}")
    device_type = backend_of(like_data).device_type
    if generator.device.type != device_type:
        raise RuntimeError(f"Expected a '{device_type}' device type for generator but found "
                           f"'{generator.device.type}'")
    return generator._backend


def _in_memory_order(data, fill):
    """Returns ``fill(shape)`` laid out so that its draws follow ``data``'s memory order.

    PyTorch's kernels fill a tensor in the order its elements lie in memory, so a transposed (column-major)
    tensor takes its draws column by column. ``fill`` draws in C order for the shape it is given; here it is
    given the dims from outermost to innermost in memory and the result is transposed back.
    """
    if data.ndim < 2 or data.flags.c_contiguous:
        return fill(data.shape)
    order = sorted(range(data.ndim), key=lambda d: -abs(data.strides[d]))
    if not data.transpose(order).flags.c_contiguous:
        return fill(data.shape)  # not dense: PyTorch fills a fresh contiguous tensor
    inverse = sorted(range(data.ndim), key=lambda d: order[d])
    return fill(tuple(data.shape[d] for d in order)).transpose(inverse)


def exponential_fill(data, lambd: float, generator=None):
    """Returns an array like ``data`` drawn from the exponential distribution of rate ``lambd``."""
    if not data.dtype.kind == "f":
        raise RuntimeError(f"exponential_ expects a floating point tensor, but got a tensor of dtype {data.dtype}")
    if not (lambd > 0 and math.isfinite(lambd)):
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd:g}")
    backend = _backend(data, generator)
    return _in_memory_order(data, lambda shape: backend.exponential(shape, float(lambd), data.dtype))


def bernoulli_fill(data, p, generator=None):
    """Returns an array like ``data`` holding 1 with probability ``p`` (a number or a tensor) and 0 otherwise.

    A number p is compared with one 53-bit uniform per element. A float32 (or narrower) tensor of p is compared
    with 24-bit float32 uniforms, a float64 one with 53-bit uniforms, as PyTorch's kernels do.
    """
    backend = _backend(data, generator)
    xp = array_module(data)
    if isinstance(p, Tensor):
        if not p.dtype.is_floating_point:
            raise RuntimeError(f"expected probabilities tensor to have floating type, got {p.dtype}")
        probabilities = p._data
        if probabilities.size and not bool(((probabilities >= 0) & (probabilities <= 1)).all()):
            raise RuntimeError("Expected p_in >= 0 && p_in <= 1 to be true, but got false.  (Could this error "
                               "message be improved?  If so, please report an enhancement request to PyTorch.)")
        probabilities = xp.broadcast_to(probabilities, data.shape)
        if probabilities.dtype == xp.float64:
            draws = _in_memory_order(data, backend.uniform_double)
        else:
            draws = _in_memory_order(data, lambda shape: backend.rand(shape, xp.float32))
            probabilities = probabilities.astype(xp.float32)
        return (draws < probabilities).astype(data.dtype)
    p = float(p)
    if not 0 <= p <= 1:
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p:g}")
    return (_in_memory_order(data, backend.uniform_double) < p).astype(data.dtype)


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """Returns 0/1 draws, each 1 with the probability in ``input`` (or ``p`` when given), in ``input``'s dtype."""
    if not isinstance(input, Tensor):
        raise TypeError(f"bernoulli(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    data = input._data
    # The result is a fresh contiguous tensor (PyTorch's legacy contiguous empty_like): draws in C order.
    result = array_module(data).empty(data.shape, dtype=data.dtype)
    return make_tensor(bernoulli_fill(result, input if p is None else p, generator))


def multinomial(input, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """Returns ``num_samples`` category indices per row drawn with the probabilities (weights) in ``input``.

    Without replacement, or for one sample, the draw is the index of the largest ``p / q`` with ``q``
    exponential (the Gumbel-max trick, as PyTorch's CPU path does); with replacement each sample is a 53-bit
    uniform looked up in the row's normalized cumulative distribution.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"multinomial(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    if input.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: "
                           f"{input.dtype.legacy_name}")
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    n_categories = input.shape[-1]
    if not replacement and num_samples > n_categories:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    if n_categories > 1 << 24:
        raise RuntimeError(f"number of categories cannot exceed 2^24")
    data = input._data
    xp = array_module(data)
    rows = data.reshape(-1, n_categories)
    if not replacement or num_samples == 1:
        if not bool(((rows < math.inf) & (rows >= 0)).all()):  # NaN fails both
            raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
        if bool((rows.sum(axis=1) == 0).any()):
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        q = exponential_fill(xp.empty_like(data), 1.0, generator)
        with xp.errstate(divide="ignore", invalid="ignore") if xp.__name__ == "numpy" else _nothing():
            keys = (data / q).reshape(rows.shape)
        if num_samples == 1:
            result = xp.argmax(keys, axis=-1)[:, None]
        else:
            from .sorting import _sorted_indices

            result = _sorted_indices(keys, 1, descending=True)[:, :num_samples]
        return make_tensor(result.astype("int64").reshape(input.shape[:-1] + (num_samples,)))
    return make_tensor(_multinomial_with_replacement(rows, num_samples, _backend(data, generator))
                       .reshape(input.shape[:-1] + (num_samples,)))


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _multinomial_with_replacement(rows, num_samples: int, backend):
    """Draws with replacement: per row, the cumulative sums (in the rows' dtype) divided by their total, and for
    each sample the first category whose cumulative probability is not below a 53-bit uniform."""
    xp = array_module(rows)
    out = xp.empty((rows.shape[0], num_samples), dtype="int64")
    for i in range(rows.shape[0]):
        row = rows[i]
        if bool((row < 0).any()):
            raise RuntimeError("invalid multinomial distribution (encountering probability entry < 0)")
        if not bool(xp.isfinite(row).all()):
            raise RuntimeError("invalid multinomial distribution (encountering probability entry = infinity or NaN)")
        # Summed one element after the other in the dtype, as the kernel's loop does.
        cumulative = xp.cumsum(row, dtype=row.dtype)
        total = cumulative[-1] if cumulative.size else row.dtype.type(0)
        if not total > 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        cumulative = cumulative / total
        draws = backend.uniform_double((num_samples,))
        # The first slot with cumulative >= u (a binary search for the leftmost such slot).
        out[i] = xp.searchsorted(cumulative.astype(xp.float64), draws, side="left")
    return xp.minimum(out, rows.shape[1] - 1)


def check_normal_std(std) -> None:
    if isinstance(std, Tensor):
        data = std._data
        if data.size and not bool((data >= 0).all()):
            raise RuntimeError("normal expects all elements of std >= 0.0")
    elif not std >= 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std:g}")


def check_uniform_range(low, high, dtype) -> None:
    if low > high:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={low:g} > to={high:g}")


class NormalDraw(Function):
    """A draw from normal(mean, std) in the graph: the output of ``normal`` with a tensor mean and a tensor std,
    whose gradient for both is zero, as PyTorch defines it. ``NormalDrawOfMean`` and ``NormalDrawOfStd`` are the
    overloads with one tensor (PyTorch's ``NormalBackward1`` and ``NormalBackward2``)."""

    node_name = "NormalBackward3"
    builtin = True
    operands = 2

    @staticmethod
    def forward(ctx, mean, std, values):
        ctx.meta = (meta(mean), meta(std))
        return values

    @staticmethod
    def backward(ctx, grad):
        xp = array_module(grad._data)
        return tuple(make_tensor(xp.zeros(m[0], dtype=m[1])) for m in ctx.meta) + (None,)


class NormalDrawOfMean(Function):
    node_name = "NormalBackward1"
    builtin = True

    @staticmethod
    def forward(ctx, tensor, values):
        ctx.meta = meta(tensor)
        return values

    @staticmethod
    def backward(ctx, grad):
        shape, dtype = ctx.meta
        return make_tensor(array_module(grad._data).zeros(shape, dtype=dtype)), None


class NormalDrawOfStd(NormalDrawOfMean):
    node_name = "NormalBackward2"


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad: bool = False,
           out=None) -> Tensor:
    """Returns numbers drawn from normal distributions with the given means and standard deviations.

    ``mean`` and ``std`` may be tensors (broadcast together) or numbers; with two numbers, ``size`` gives the
    shape. Draws are made as ``normal_(0, 1)`` (``normal_(0, std)`` for a number std) on the result, then scaled
    and shifted, as in PyTorch.
    """
    from .. import creation

    if out is not None:
        raise RuntimeError("normal(): out= is not supported")
    check_normal_std(std)
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        if size is not None:
            raise TypeError("normal(): size is only accepted with a number mean and std")
        like = mean if isinstance(mean, Tensor) else std
        if not like.dtype.is_floating_point:
            raise RuntimeError(f'"normal_kernel_cpu" not implemented for \'{like.dtype.legacy_name}\'')
        xp = array_module(like._data)
        shape = like.shape
        if isinstance(mean, Tensor) and isinstance(std, Tensor):
            from ._util import broadcast_shapes

            shape = broadcast_shapes(tuple(mean.shape), tuple(std.shape))
        backend = _backend(like._data, generator)
        np_dtype = like._data.dtype
        if isinstance(std, Tensor):
            draws = backend.normal(tuple(shape), 0.0, 1.0, np_dtype)
            draws = draws * std._data.astype(np_dtype, copy=False)
        else:
            draws = backend.normal(tuple(shape), 0.0, float(std), np_dtype)
        mean_data = mean._data if isinstance(mean, Tensor) else xp.asarray(mean, dtype=np_dtype)
        values = (draws + mean_data).astype(np_dtype, copy=False)
        # PyTorch records the draw with a zero gradient for mean and std (no reparameterisation).
        if not isinstance(std, Tensor):
            return NormalDrawOfMean.apply(mean, values)
        if not isinstance(mean, Tensor):
            return NormalDrawOfStd.apply(std, values)
        return NormalDraw.apply(mean, std, values)
    if size is None:
        raise TypeError("normal() received an invalid combination of arguments: two numbers need a size")
    if isinstance(size, int):
        size = (size,)
    target = creation.empty(tuple(size), dtype=dtype, device=device)
    if not target.dtype.is_floating_point:
        raise RuntimeError(f'"normal_kernel_cpu" not implemented for \'{target.dtype.legacy_name}\'')
    backend = _backend(target._data, generator)
    result = make_tensor(backend.normal(tuple(size), float(mean), float(std), target._data.dtype))
    return result.requires_grad_() if requires_grad else result

