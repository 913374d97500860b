"""The backend layer: maps a device to its array module and owns everything that differs between them.

Ops never import numpy or CuPy for their math: they ask ``array_module(array)`` for the module that
owns an array (numpy for ``cpu``, CuPy for ``cuda``) and call it.  Creation, random generators,
transfers and dtype mapping live in the per-device ``Backend`` objects of ``cpu.py`` and ``cuda.py``.
"""
from __future__ import annotations

import numpy as _np

from . import cpu as _cpu
from . import cuda as _cuda

__all__ = ["device", "Backend", "CPU", "CPU_ARRAY", "get_backend", "backend_of", "array_module", "to_device",
           "reshape_view", "put_along_axis", "set_default_device", "get_default_device"]


class device:
    """A device a tensor lives on: ``device('cpu')``, ``device('cuda')``, ``device('cuda', 0)``, ``device('cuda:0')``."""

    __slots__ = ("type", "index")

    def __init__(self, type: str | int | device, index: int | None = None) -> None:
        if isinstance(type, device):
            self.type, self.index = type.type, type.index
            return
        if isinstance(type, int) and not isinstance(type, bool):
            # device(0) names CUDA device 0, as in PyTorch.
            if type < 0:
                raise RuntimeError(f"Device index must not be negative, got {type}")
            self.type, self.index = "cuda", type
            return
        if not isinstance(type, str):
            raise TypeError(f"device() expected a string or a device, but got {type.__class__.__name__}")
        kind = type
        if ":" in type:
            if index is not None:
                raise ValueError(f"type (string) must not include an index because index was passed explicitly: {type}")
            kind, _, idx = type.partition(":")
            if not idx.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}'")
            index = int(idx)
        if kind not in ("cpu", "cuda"):
            raise RuntimeError(f"Expected one of cpu, cuda device type at start of device string: {type}")
        if index is not None and (not isinstance(index, int) or index < 0):
            raise RuntimeError(f"Device index must not be negative, got {index}")
        self.type = kind
        self.index = index

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (RuntimeError, ValueError):
                return False
        return isinstance(other, device) and self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"


Backend = _cpu.Backend
CPU = _cpu.CPU_BACKEND
#: The array type of the CPU backend; a type check against it is the cheapest "is this on the CPU?".
CPU_ARRAY = _np.ndarray
#: numpy's scalar types: a reduction of a numpy array to 0-d returns one of these instead of an array.
CPU_SCALAR_TYPES = frozenset(_np.dtype(c).type for c in "efdbhilqBHILQ?")

# The backend that creation functions use when no device is given (``set_default_device``).
_default_backend: Backend = CPU


def get_backend(dev) -> Backend:
    """Returns the backend for a device, a device string or index, or None (the default device, the CPU)."""
    if dev is None:
        return _default_backend
    if dev.__class__ is not device:
        dev = device(dev)
    if dev.type == "cpu":
        return CPU
    return _cuda.get_backend(dev.index)


def set_default_device(dev) -> None:
    """Sets the device that tensors are created on when no device is given (None means the CPU)."""
    global _default_backend
    _default_backend = CPU if dev is None else get_backend(dev)


def get_default_device() -> device:
    """Returns the device that tensors are created on when no device is given."""
    return _default_backend.device


def backend_of(array) -> Backend:
    """Returns the backend that owns an array."""
    if type(array) is _np.ndarray:
        return CPU
    if getattr(type(array), "_gc_array_class", None) is _np.ndarray:  # a numpy array traced by a capture
        return CPU
    return _cuda.backend_of(array)


def array_module(array):
    """Returns the array module (numpy or CuPy) that owns ``array``.

    For an array traced by a capture (``gradcore.compile``) it is that module seen through the capture, so that
    the module's functions are recorded too.
    """
    if type(array) is _np.ndarray:
        return _np
    proxy = getattr(type(array), "_gc_module_proxy", None)
    if proxy is not None:
        return proxy(backend_of(array).xp)
    return backend_of(array).xp


def to_device(array, target: Backend):
    """Returns ``array`` on the target backend's device (the same object when it is already there)."""
    source = backend_of(array)
    if source is target:
        return array
    if target is CPU:
        return source.to_numpy(array)
    return target.from_host_or_device(array)


def broadcast_view(array, shape: tuple):
    """Returns a writable view of ``array`` broadcast to ``shape`` (repeated elements share memory).

    numpy's own broadcast_to is read-only, which would refuse a write through a row of an expanded tensor that
    PyTorch allows; writes into elements that share memory are refused by the tensor before they happen.
    """
    if type(array) is not _np.ndarray:
        return array_module(array).broadcast_to(array, shape)
    lead = len(shape) - array.ndim
    strides = (0,) * lead + tuple(
        0 if size == 1 and target != 1 else stride
        for size, target, stride in zip(array.shape, shape[lead:], array.strides)
    )
    if array.flags.c_contiguous:
        # The same view as as_strided's, built directly over the array's memory (several times cheaper; the
        # view keeps the array as its base and its writeable flag).
        return _np.ndarray(shape, array.dtype, buffer=array, strides=strides)
    return _np.lib.stride_tricks.as_strided(array, shape=shape, strides=strides)


def reshape_view(array, shape: tuple):
    """Returns a view of ``array`` with ``shape``, or None when no view has that shape (only a copy would).

    numpy says so through ``reshape(copy=False)``; CuPy (which has that argument only from version 14 on) is
    asked through its backend.
    """
    if type(array) is _np.ndarray or backend_of(array) is CPU:
        try:
            return _np.reshape(array, shape, copy=False)
        except ValueError:
            return None
    return backend_of(array).reshape_view(array, shape)


def put_along_axis(target, indices, values, axis: int) -> None:
    """Writes ``values`` into ``target`` at ``indices`` along ``axis``, in place (numpy's ``put_along_axis``)."""
    if type(target) is _np.ndarray or backend_of(target) is CPU:
        _np.put_along_axis(target, indices, values, axis=axis)
    else:
        backend_of(target).put_along_axis(target, indices, values, axis)
