"""``gradcore.accelerator``: the device-neutral view of the accelerator, as ``torch.accelerator``.

gradcore's one accelerator is CUDA (through CuPy). PyTorch reports the accelerator its build was compiled
for; gradcore has no such build step, so it reports CUDA exactly when a CUDA device can be used. A program
written as PyTorch's examples are (``current_accelerator().type if is_available() else "cpu"``) then picks
the same device either way.
"""
from __future__ import annotations

from . import cuda as _cuda
from .backend import device as _device

__all__ = ["is_available", "current_accelerator", "device_count", "current_device_index", "set_device_index",
           "synchronize"]


def is_available() -> bool:
    """Returns whether an accelerator (a CUDA device) is available at run time."""
    return _cuda.is_available()


def current_accelerator(check_available: bool = False) -> _device | None:
    """Returns the device of the accelerator (``device(type='cuda')``, no index), or None when there is none.

    ``check_available`` is accepted for PyTorch's signature; without a CUDA device there is no accelerator to
    return either way (see the module's docstring).
    """
    return _device("cuda") if _cuda.is_available() else None


def device_count() -> int:
    """Returns the number of accelerator devices (0 without one)."""
    return _cuda.device_count() if _cuda.is_available() else 0


def current_device_index() -> int:
    """Returns the index of the current accelerator device, or -1 when there is none."""
    return _cuda.current_device() if _cuda.is_available() else -1


def set_device_index(device) -> None:
    """Sets the current accelerator device (an index or a device); a no-op for a negative index, as PyTorch."""
    if isinstance(device, int) and device < 0:
        return
    _cuda.set_device(device)


def synchronize(device=None) -> None:
    """Waits for all work queued on the accelerator device to finish (nothing to wait for without one)."""
    if _cuda.is_available():
        _cuda.synchronize(device)


current_device_idx = current_device_index
set_device_idx = set_device_index
