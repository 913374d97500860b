"""gradcore: a small PyTorch-compatible autograd library on numpy (CPU) and CuPy (CUDA).

``import gradcore as torch`` gives PyTorch's names for tensors, autograd and the core ops.
"""
from __future__ import annotations

from . import _dtypes
from ._dtypes import (dtype, float16, float32, float64, int8, int16, int32, int64, uint8, get_default_dtype,
                      set_default_dtype, promote_types)
from .backend import device, get_default_device, set_default_device
from .generator import Generator, default_generator
from .tensor import Size, Tensor
from . import autograd
from .autograd import enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad, set_grad_enabled
from .creation import (BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor, HalfTensor, IntTensor,
                       LongTensor, ShortTensor, arange, as_tensor, empty, empty_like, eye, from_dlpack, from_numpy,
                       full, full_like, initial_seed, linspace, manual_seed, ones, ones_like, rand, rand_like, randint,
                       randn, randn_like, randperm, scalar_tensor, seed, tensor, zeros, zeros_like)
from .ops.activation import erf, log_softmax, relu, sigmoid, softmax
from .ops.compare import allclose, eq, equal, ge, gt, isclose, isfinite, isinf, isnan, le, logical_not, lt, ne
from .ops.elementwise import (abs, add, clamp, cos, div, exp, expm1, log, log1p, log2, log10, maximum, minimum, mul,
                              nan_to_num, neg, pow, reciprocal, rsub, sign, sin, sqrt, square, sub, tanh, where)
from .ops.indexing import (gather, index_add, index_select, masked_fill, narrow, nonzero, scatter, scatter_add,
                           select)
from .ops.linalg import bmm, dot, einsum, matmul, mm
from .ops.reduction import (all, amax, amin, any, argmax, argmin, cumprod, cumsum, logsumexp, max, mean, min, norm,
                            prod, std, sum, var)
from .ops.sampling import bernoulli, multinomial, normal
from .ops.shape import (broadcast_to, cat, chunk, flatten, flip, movedim, permute, repeat_interleave, reshape, roll,
                        split, squeeze, stack, t, tile, transpose, tril, triu, unbind, unsqueeze)
from .ops.sorting import argsort, histc, histogram, sort, topk
from . import cuda
from ._capture import compile
from . import jit

bool = _dtypes.bool_
float = float32
double = float64
half = float16
long = int64
int = int32
short = int16

# PyTorch's aliases of the same functions.
subtract = sub
multiply = mul
divide = true_divide = div
negative = neg
absolute = abs
clip = clamp
concat = concatenate = cat
swapaxes = transpose
result_type = _dtypes.result_type
is_tensor = lambda obj: isinstance(obj, Tensor)  # noqa: E731


def clone(input: Tensor) -> Tensor:
    """Returns a copy of ``input`` that stays in the graph."""
    return input.clone()


def detach(input: Tensor) -> Tensor:
    """Returns ``input`` detached from the graph (sharing memory)."""
    return input.detach()


def numel(input: Tensor) -> int:
    """Returns the number of elements of ``input``."""
    return input.numel()


def is_floating_point(input: Tensor) -> bool:
    return input.dtype.is_floating_point


def get_device(input: Tensor) -> int:
    return -1 if input.device.type == "cpu" else input.device.index


_SUBMODULES = {"nn", "optim", "utils", "accelerator", "distributed"}
_LAZY = {"save": "serialization", "load": "serialization"}


def __getattr__(name: str):
    # nn, optim, utils, distributed and serialization load on first use: the core imports nothing it does not need.
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'gradcore' has no attribute '{name}'")


__version__ = "0.1.0"
