"""Gradient clipping: ``clip_grad_norm_``, ``clip_grad_value_``, ``get_total_norm`` and ``clip_grads_with_norm_``."""
from __future__ import annotations

import math
from typing import Iterable

from ... import creation
from ...autograd.grad_mode import no_grad
from ...backend import array_module
from ...tensor import Tensor, make_tensor

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]


def _tensor_list(tensors: Tensor | Iterable[Tensor]) -> list[Tensor]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _vector_norm_array(data, norm_type: float):
    """The ``norm_type``-norm of all elements of an array, as a 0-d array of the array's dtype."""
    xp = array_module(data)
    return xp.asarray(_vector_norm(xp, data, norm_type), dtype=data.dtype)


def _vector_norm(xp, data, norm_type: float):
    magnitude = xp.abs(data)
    if norm_type == math.inf:
        return magnitude.max() if data.size else xp.zeros((), dtype=data.dtype)
    if norm_type == -math.inf:
        return magnitude.min() if data.size else xp.asarray(math.inf, dtype=data.dtype)
    if norm_type == 0:
        return xp.asarray((data != 0).sum(), dtype=data.dtype)
    if norm_type == 1:
        return magnitude.sum()
    if norm_type == 2:
        return xp.sqrt((magnitude * magnitude).sum())
    return (magnitude ** norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(tensors: Tensor | Iterable[Tensor], norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> Tensor:
    """Compute the norm of an iterable of tensors: the ``norm_type``-norm of their individual norms."""
    tensors = [t for t in _tensor_list(tensors) if t is not None]
    norm_type = float(norm_type)
    if not tensors:
        return creation.tensor(0.0)
    norms = [_vector_norm_array(t._data, norm_type) for t in tensors]
    xp = array_module(norms[0])
    dtype = tensors[0]._data.dtype
    total = _vector_norm_array(xp.stack([n.astype(dtype) for n in norms]), norm_type)
    total_norm = make_tensor(xp.asarray(total, dtype=dtype))
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot be "
            "clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`")
    return total_norm


def clip_grads_with_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, total_norm: Tensor,
                          foreach: bool | None = None) -> None:
    """Scale the gradients of ``parameters`` by ``max_norm / (total_norm + 1e-6)`` when that is below 1."""
    grads = [p.grad for p in _tensor_list(parameters) if p.grad is not None]
    if not grads:
        return
    xp = array_module(total_norm._data)
    coefficient = xp.asarray(float(max_norm) / (total_norm._data + 1e-6), dtype=total_norm._data.dtype)
    clamped = xp.minimum(coefficient, 1.0)
    with no_grad():
        for g in grads:
            # Multiplied even where the coefficient is 1, as PyTorch does (it avoids a device sync).
            g._data *= clamped.astype(g._data.dtype)
            g._version_counter.value += 1


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Clip the gradient norm of an iterable of parameters, in place; returns the total norm before clipping.

    The norm is computed over all gradients together, as if they were concatenated into a single vector.
    ``foreach`` is accepted for PyTorch's signature: gradcore runs one loop either way.
    """
    parameters = _tensor_list(parameters)
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_norm(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Deprecated spelling of ``clip_grad_norm_``."""
    import warnings

    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of `torch.nn.utils.clip_grad_norm_`.",
                  FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None) -> None:
    """Clip the gradients of an iterable of parameters at the specified value, in place: into [-v, v]."""
    clip_value = float(clip_value)
    with no_grad():
        for p in _tensor_list(parameters):
            if p.grad is not None:
                p.grad.clamp_(-clip_value, clip_value)
