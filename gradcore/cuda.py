"""``gradcore.cuda``: whether CUDA can be used, and the CUDA devices' state. Never raises on a machine without a GPU."""
from __future__ import annotations

from .backend import cuda as _backend

__all__ = ["is_available", "device_count", "current_device", "synchronize", "manual_seed", "manual_seed_all",
           "memory_allocated", "empty_cache"]


def is_available() -> bool:
    """True when CuPy imports and a CUDA GPU is visible; False otherwise (never raises)."""
    return _backend.is_available()


def device_count() -> int:
    """Number of visible CUDA devices (0 without CuPy or a GPU)."""
    return _backend.device_count()


def _require() -> None:
    if not is_available():
        raise RuntimeError(_backend.unavailable_reason())


def current_device() -> int:
    """Index of the current CUDA device."""
    _require()
    return int(_backend._cupy.cuda.runtime.getDevice())


def synchronize(device=None) -> None:
    """Waits for all work queued on a CUDA device to finish."""
    _require()
    index = device if isinstance(device, int) else None
    _backend.get_backend(index).synchronize()


def manual_seed(seed: int) -> None:
    """Seeds the current CUDA device's generator (does nothing without CUDA, as in PyTorch)."""
    if is_available():
        _backend.get_backend(None).manual_seed(seed)


def manual_seed_all(seed: int) -> None:
    """Seeds every CUDA device's generator (does nothing without CUDA)."""
    if is_available():
        for index in range(device_count()):
            _backend.get_backend(index).manual_seed(seed)


def memory_allocated(device=None) -> int:
    """Bytes currently held by tensors on a CUDA device (0 without CUDA)."""
    if not is_available():
        return 0
    return int(_backend._cupy.get_default_memory_pool().used_bytes())


def empty_cache() -> None:
    """Returns cached, unused GPU memory to the driver (does nothing without CUDA)."""
    if is_available():
        _backend._cupy.get_default_memory_pool().free_all_blocks()
