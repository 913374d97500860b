"""A stand-in for CuPy, so that the CUDA backend's code paths run on a machine without a GPU.

"GPU" arrays are numpy arrays of a distinct subclass, ``ndarray``, that remembers the fake device it lives on.
Like CuPy's arrays they refuse to meet plain numpy arrays in an operation (TypeError), reductions give 0-d
arrays rather than scalars, they expose ``__cuda_array_interface__``, ``.device.id``, ``.data.ptr`` and a CUDA
DLPack device, and numpy functions called on them dispatch to this module (as CuPy's ``__array_function__``
does). So a tensor moved to "cuda" really lives in another array type: an op that forgets a transfer, mixes
devices or calls numpy on device memory where CuPy would fail fails here too.

What it cannot check (a GPU run, ``pytest --device cuda``, does): CuPy's own kernels, numerics, dtype rules;
functions numpy has and CuPy lacks (only ``errstate`` is hidden); ``numpy.asarray`` on device memory (numpy
accepts an ndarray subclass silently, CuPy raises); streams, asynchrony and real memory accounting (the memory
pool reports 0 bytes); peer copies between GPUs.
"""
from __future__ import annotations

import ctypes
import time
import types

import numpy as np

__version__ = "0.0-fake"

_state = {"current": 0, "count": 1}

# Names of numpy that CuPy does not have, hidden so that code relying on them fails here as on a GPU.
_MISSING_IN_CUPY = {"errstate", "seterr", "geterr"}

# Creation functions copy host data to the device; every other function refuses host arrays, as CuPy does.
_ACCEPT_HOST = {"asarray", "array", "ascontiguousarray"}


class Device:
    """``cupy.cuda.Device``: a device index, and a context manager that makes it current."""

    def __init__(self, device=None) -> None:
        self.id = _state["current"] if device is None else int(device)
        if not 0 <= self.id < _state["count"]:
            raise RuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {self.id}")

    def __enter__(self):
        self._previous = _state["current"]
        _state["current"] = self.id
        return self

    def __exit__(self, *exc) -> None:
        _state["current"] = self._previous

    def synchronize(self) -> None:
        pass


class _Pointer:
    def __init__(self, ptr: int) -> None:
        self.ptr = ptr

    def copy_from_device(self, src: _Pointer, size: int) -> None:
        """Copies ``size`` bytes from another device pointer (``cupy.cuda.MemoryPointer.copy_from_device``;
        unchecked, as there)."""
        ctypes.memmove(self.ptr, src.ptr, size)


class _FakeCudaCapsule:
    """What ``__dlpack__`` of a fake array returns: numpy and PyTorch cannot import it (as device memory)."""

    def __init__(self, array) -> None:
        self.array = array


def _device_of(values, found=None):
    """Returns the one fake device among (nested) values, or None; raises when arrays of two devices meet."""
    for v in values:
        if isinstance(v, ndarray):
            if found is not None and found != v._device_id:
                raise ValueError("Array device must be same as the current device: "
                                 f"array device = {v._device_id} while current = {found}")
            found = v._device_id
        elif isinstance(v, (list, tuple)):
            found = _device_of(v, found)
    return found


def _unwrap(value, accept_host: bool = False):
    """Returns the numpy view of fake arrays (recursively); numpy arrays raise unless host data is allowed."""
    if isinstance(value, ndarray):
        return value.view(np.ndarray)
    if isinstance(value, np.ndarray) and not accept_host:
        raise TypeError(f"Unsupported type {type(value)}")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, accept_host) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, accept_host) for k, v in value.items()}
    return value


def _wrap(value, device: int | None):
    """Returns numpy results as fake arrays on ``device`` (numpy scalars become 0-d arrays, as in CuPy)."""
    if isinstance(value, (np.ndarray, np.generic)):
        out = np.asarray(value).view(ndarray)
        out._device_id = _state["current"] if device is None else device
        return out
    if isinstance(value, (list, tuple)):
        return type(value)(_wrap(v, device) for v in value)
    return value


class ndarray(np.ndarray):
    """A "device" array: numpy memory tagged with a fake GPU index."""

    _device_id = 0

    def __array_finalize__(self, obj) -> None:
        self._device_id = getattr(obj, "_device_id", _state["current"])

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out", ())
        device = _device_of(inputs + tuple(out))
        with np.errstate(all="ignore"):  # CuPy returns inf and nan without warnings
            result = getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs))
        if method == "at":
            return None
        if out:
            return out[0] if len(out) == 1 else out
        return _wrap(result, device)

    def __array_function__(self, func, types, args, kwargs):
        device = _device_of(args + tuple(kwargs.values()))
        with np.errstate(all="ignore"):
            return _wrap(func(*_unwrap(args), **_unwrap(kwargs)), device)

    def __getitem__(self, key):
        return _wrap(self.view(np.ndarray)[_unwrap(key, accept_host=True)], self._device_id)

    def __setitem__(self, key, value) -> None:
        self.view(np.ndarray)[_unwrap(key, accept_host=True)] = _unwrap(value, accept_host=True)

    def copy(self, order="C"):
        """Returns a copy on the current device (how CuPy copies between GPUs)."""
        return _wrap(self.view(np.ndarray).copy(order=order), _state["current"])

    # Methods that numpy implements in C and that would give numpy scalars or plain arrays.
    def argmax(self, *args, **kwargs):
        return _wrap(self.view(np.ndarray).argmax(*args, **kwargs), self._device_id)

    def argmin(self, *args, **kwargs):
        return _wrap(self.view(np.ndarray).argmin(*args, **kwargs), self._device_id)

    def nonzero(self):
        return _wrap(self.view(np.ndarray).nonzero(), self._device_id)

    @property
    def device(self) -> Device:
        return Device(self._device_id)

    @property
    def data(self) -> _Pointer:
        return _Pointer(self.__array_interface__["data"][0])

    @property
    def __cuda_array_interface__(self) -> dict:
        return dict(self.__array_interface__, version=3)

    def get(self) -> np.ndarray:
        """Returns a host copy (``cupy.ndarray.get``)."""
        return self.view(np.ndarray).copy()

    def __dlpack_device__(self) -> tuple:
        return (2, self._device_id)  # kDLCUDA

    def __dlpack__(self, **kwargs):
        return _FakeCudaCapsule(self)


def asnumpy(array) -> np.ndarray:
    """Returns a host copy of a fake array (a numpy array unchanged)."""
    return array.get() if isinstance(array, ndarray) else np.asarray(array)


def from_dlpack(obj):
    """Imports a fake device array through DLPack without a copy; host memory is refused."""
    capsule = obj.__dlpack__()
    if not isinstance(capsule, _FakeCudaCapsule):
        # BufferError, not TypeError: the DLPack protocol's error for memory a consumer cannot import.
        raise BufferError("fake CuPy imports only fake device memory through DLPack")  # noqa: TRY004
    return capsule.array.view(ndarray)


class _MemoryPool:
    def used_bytes(self) -> int:
        return 0

    def free_all_blocks(self) -> None:
        pass


_pool = _MemoryPool()


def get_default_memory_pool() -> _MemoryPool:
    return _pool


class _RandomState:
    """``cupy.random.RandomState``: numpy's PCG64 stream, on the current fake device."""

    def __init__(self, seed=None) -> None:
        self._generator = np.random.Generator(np.random.PCG64(seed))

    def random_sample(self, size=None, dtype=float):
        return _wrap(self._generator.random(size, dtype=dtype), None)

    def standard_normal(self, size=None, dtype=float):
        return _wrap(self._generator.standard_normal(size, dtype=dtype), None)

    def randint(self, low, high=None, size=None, dtype=int):
        return _wrap(self._generator.integers(low, high, size=size, dtype=dtype), None)

    def permutation(self, n):
        return _wrap(self._generator.permutation(n), None)


class _Generator:
    """``cupy.random.Generator`` (what ``cupy.random.default_rng`` returns): numpy's, on the current fake device."""

    def __init__(self, seed=None) -> None:
        self._generator = np.random.default_rng(seed)

    def random(self, size=None, dtype=np.float64):
        return _wrap(self._generator.random(size, dtype=dtype), None)

    def standard_normal(self, size=None, dtype=np.float64):
        return _wrap(self._generator.standard_normal(size, dtype=dtype), None)

    def integers(self, low, high=None, size=None, dtype=np.int64):
        return _wrap(self._generator.integers(low, high, size=size, dtype=dtype), None)


class Event:
    """``cupy.cuda.Event``: records the host clock (the double computes synchronously, so it has finished)."""

    def __init__(self) -> None:
        self._time = None

    def record(self, stream=None) -> None:
        self._time = time.perf_counter()

    def synchronize(self) -> None:
        pass


def get_elapsed_time(start: Event, end: Event) -> float:
    """Milliseconds between two recorded events (``cupy.cuda.get_elapsed_time``)."""
    if start._time is None or end._time is None:
        raise RuntimeError("cudaErrorInvalidResourceHandle: an event was not recorded")
    return (end._time - start._time) * 1e3


def _device_properties(index: int) -> dict:
    """``cupy.cuda.runtime.getDeviceProperties``: the few fields a caller may print, for a pretend device."""
    Device(index)  # an invalid ordinal raises, as on a GPU
    return {"name": b"fake CUDA device (CuPy test double)", "major": 0, "minor": 0, "multiProcessorCount": 2,
            "totalGlobalMem": 0}


def _get_device_count() -> int:
    return _state["count"]


def _get_device() -> int:
    return _state["current"]


def _set_device(index: int) -> None:
    _state["current"] = Device(index).id


cuda = types.SimpleNamespace(
    Device=Device,
    Event=Event,
    get_elapsed_time=get_elapsed_time,
    runtime=types.SimpleNamespace(getDeviceCount=_get_device_count, getDevice=_get_device,
                                  setDevice=_set_device, getDeviceProperties=_device_properties,
                                  driverGetVersion=lambda: 0, runtimeGetVersion=lambda: 0),
)
random = types.SimpleNamespace(RandomState=_RandomState, default_rng=_Generator)
cupyx = types.SimpleNamespace(scatter_add=lambda target, index, values: np.add.at(target, index, values))


def _function(name: str, function):
    """Wraps a numpy function so that it takes and returns fake arrays (host arrays only for creation)."""
    accept_host = name in _ACCEPT_HOST

    def call(*args, **kwargs):
        device = _device_of(args + tuple(kwargs.values()))
        if accept_host and args and type(args[0]) is np.ndarray:
            args = (args[0].copy(),) + args[1:]  # host data is copied to the device, never shared
        with np.errstate(all="ignore"):
            result = function(*_unwrap(args, accept_host), **_unwrap(kwargs, accept_host))
        return _wrap(result, device)

    call.__name__ = name
    return call


def broadcast_to(array, shape):
    """Like CuPy's, a writable view (numpy's broadcast_to is read-only); repeated elements share memory."""
    data = _unwrap(array)
    lead = len(shape) - data.ndim
    strides = (0,) * lead + tuple(0 if size == 1 and target != 1 else stride
                                  for size, target, stride in zip(data.shape, tuple(shape)[lead:], data.strides))
    return _wrap(np.lib.stride_tricks.as_strided(data, shape=tuple(shape), strides=strides), array._device_id)


def __getattr__(name: str):
    # Everything else is numpy's: dtypes and ufuncs as they are (ufuncs reach fake arrays through
    # __array_ufunc__), functions wrapped so that results are device arrays.
    if name in _MISSING_IN_CUPY or name.startswith("__"):
        raise AttributeError(f"module 'cupy' (test double) has no attribute '{name}'")
    attr = getattr(np, name)
    if isinstance(attr, (type, np.ufunc)) or not callable(attr):
        return attr
    return _function(name, attr)


def reset(count: int = 1) -> None:
    """Starts afresh with ``count`` fake GPUs, device 0 current."""
    _state["current"], _state["count"] = 0, count
