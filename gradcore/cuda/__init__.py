"""``gradcore.cuda``: whether CUDA can be used, and the CUDA devices' state.

On a machine without a GPU, a driver or CuPy, ``is_available()`` is False and ``device_count()`` 0 (neither
ever raises); the seeding and memory functions then do nothing, as in PyTorch, and the functions that need a
device (``current_device``, ``synchronize``) raise RuntimeError saying what is missing.

Streams (``Stream``, ``current_stream``, ``stream``) live in ``streams.py``; CUDA graphs captured by hand
(``CUDAGraph``, ``graph``, ``make_graphed_callables``) in ``graphs.py``.
"""
from __future__ import annotations

from typing import Optional, Union

from ..backend import cuda as _backend
from ..backend import device as _device

__all__ = ["is_available", "device_count", "current_device", "set_device", "device", "synchronize",
           "manual_seed", "manual_seed_all", "memory_allocated", "empty_cache",
           "Stream", "current_stream", "default_stream", "stream",
           "CUDAGraph", "graph", "graph_pool_handle", "is_current_stream_capturing", "make_graphed_callables"]

_DeviceLike = Optional[Union[int, str, _device]]


def is_available() -> bool:
    """Returns a bool indicating if CUDA is currently available (False without CuPy, a driver or a GPU)."""
    return _backend.is_available()


def device_count() -> int:
    """Returns the number of GPUs available (0 without CuPy, a driver or a GPU)."""
    return _backend.device_count()


def current_device() -> int:
    """Returns the index of a currently selected device."""
    return _backend.current_device()


def _device_backend(device: _DeviceLike):
    """Returns the backend of a CUDA device: an index, a string, a device, or None (the current one)."""
    if device is None:
        return _backend.get_backend(None)
    device = _device(device)
    if device.type != "cuda":
        raise ValueError(f"Expected a cuda device, but got: {device}")
    return _backend.get_backend(device.index)


def set_device(device: _DeviceLike) -> None:
    """Sets the current CUDA device: ops on tensors of other GPUs must run with their GPU current."""
    backend = _device_backend(device)
    backend.xp.cuda.runtime.setDevice(backend.index)


class device:
    """Context-manager that changes the selected CUDA device (``with gradcore.cuda.device(1): ...``)."""

    def __init__(self, device: _DeviceLike) -> None:
        self._index = None if device is None or (isinstance(device, int) and device < 0) else \
            _device_backend(device).index
        self._previous = None

    def __enter__(self) -> device:
        if self._index is not None:
            self._previous = current_device()
            set_device(self._index)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            set_device(self._previous)


def synchronize(device: _DeviceLike = None) -> None:
    """Waits for all kernels in all streams on a CUDA device to complete (the current device by default)."""
    _device_backend(device).synchronize()


def manual_seed(seed: int) -> None:
    """Sets the seed for generating random numbers for the current GPU (silently ignored without CUDA)."""
    if is_available():
        _backend.get_backend(None).manual_seed(seed)


def manual_seed_all(seed: int) -> None:
    """Sets the seed for generating random numbers on all GPUs (silently ignored without CUDA)."""
    if is_available():
        for index in range(device_count()):
            _backend.get_backend(index).manual_seed(seed)


def memory_allocated(device: _DeviceLike = None) -> int:
    """Returns the current GPU memory occupied by tensors in bytes for a given device (0 without CUDA)."""
    if not is_available():
        return 0
    return _device_backend(device).memory_allocated()


def empty_cache() -> None:
    """Releases all unoccupied cached memory held for the GPUs (does nothing without CUDA)."""
    for index in range(device_count()):
        _backend.get_backend(index).empty_cache()


# After the functions above, which the graphs use.
from .streams import Stream, current_stream, default_stream, stream  # noqa: E402
from .graphs import (CUDAGraph, graph, graph_pool_handle, is_current_stream_capturing,  # noqa: E402
                     make_graphed_callables)
