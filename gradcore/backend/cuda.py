"""The CUDA backend over CuPy (any cupy-cuda12x / cupy-cuda13x build: the code only says ``import cupy``).

CuPy is optional. Without it, or without an NVIDIA driver or GPU, CUDA is simply unavailable: the queries
here return False or 0, and only an attempt to put a tensor on a CUDA device raises, saying what is missing.
"""
from __future__ import annotations

import numpy as _np

from .cpu import Backend

_cupy = None  # the cupy module once imported
_cupyx = None  # its companion module (scatter_add)
_import_error: str | None = None  # why ``import cupy`` failed
_device_count: int | None = None  # asked once: the visible devices do not change while a process runs
_device_error: str | None = None  # why counting the devices failed
_backends: dict = {}  # device index -> CudaBackend


def _load_cupy():
    """Imports CuPy once; returns the module or None and remembers why it failed."""
    global _cupy, _cupyx, _import_error
    if _cupy is None and _import_error is None:
        try:
            import cupy
            import cupyx

            _cupy, _cupyx = cupy, cupyx
        except Exception as exc:  # noqa: BLE001  (ImportError, or a broken CUDA install raising at import)
            _import_error = f"{type(exc).__name__}: {exc}"
    return _cupy


def device_count() -> int:
    """Returns the number of visible CUDA devices: 0 without CuPy, a driver or a GPU. Never raises."""
    global _device_count, _device_error
    if _device_count is None:
        cupy = _load_cupy()
        if cupy is None:
            return 0
        try:
            _device_count = int(cupy.cuda.runtime.getDeviceCount())
        except Exception as exc:  # noqa: BLE001  (CUDARuntimeError: no driver, one too old, no device)
            _device_count, _device_error = 0, f"{type(exc).__name__}: {exc}"
    return _device_count


def is_available() -> bool:
    """Returns True when CuPy imports and at least one GPU is visible. Never raises."""
    return device_count() > 0


def unavailable_reason() -> str:
    """Says what is missing for CUDA tensors and how to get it."""
    if _load_cupy() is None:
        return (
            "gradcore was installed without CUDA support: CuPy is not installed "
            f"({_import_error}). Install it with: pip install \"gradcore[cuda]\" "
            "(for CUDA 13 drivers: pip install \"gradcore[cuda13]\")"
        )
    count = device_count()
    if count:
        return f"CUDA is available ({count} device(s))"
    version = getattr(_cupy, "__version__", "?")
    return (
        f"CuPy {version} is installed, but no CUDA GPU is usable on this machine: "
        f"{_device_error or 'no device found'}. CUDA tensors need an NVIDIA GPU with its driver installed "
        "(nvidia-smi lists them), and a CuPy build for the driver's CUDA version "
        "(pip install \"gradcore[cuda]\" gives cupy-cuda12x)"
    )


class CudaBackend(Backend):
    """CuPy arrays on one GPU: every allocation is made with that GPU current."""

    def _on_device(self):
        return self.xp.cuda.Device(self.index)

    # -- creation --------------------------------------------------------------------------------
    def asarray(self, data, dtype=None):
        with self._on_device():
            return self.xp.asarray(data, dtype=dtype)

    def array(self, data, dtype=None):
        with self._on_device():
            return self.xp.array(data, dtype=dtype, copy=True)

    def empty(self, shape, dtype):
        with self._on_device():
            return self.xp.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        with self._on_device():
            return self.xp.zeros(shape, dtype=dtype)

    def ones(self, shape, dtype):
        with self._on_device():
            return self.xp.ones(shape, dtype=dtype)

    def full(self, shape, value, dtype):
        with self._on_device():
            return self.xp.full(shape, value, dtype=dtype)

    def arange(self, start, end, step, dtype):
        with self._on_device():
            return self.xp.arange(start, end, step, dtype=dtype)

    def linspace(self, start, end, steps, dtype):
        with self._on_device():
            return self.xp.linspace(start, end, steps, dtype=dtype)

    def eye(self, n, m, dtype):
        with self._on_device():
            return self.xp.eye(n, m, dtype=dtype)

    # -- random numbers --------------------------------------------------------------------------
    # CuPy's RandomState (cuRAND) draws other numbers than PyTorch's CUDA generator: seeded runs repeat
    # themselves, but do not reproduce PyTorch's CUDA numbers. It draws float32 and float64 only, so
    # float16 is rounded from float32.
    def _make_generator(self, seed):
        with self._on_device():
            return self.xp.random.RandomState(seed)

    def rand(self, shape, dtype):
        draw = dtype if _np.dtype(dtype) in (_np.float32, _np.float64) else _np.float32
        with self._on_device():
            return self.generator.random_sample(tuple(shape), dtype=draw).astype(dtype, copy=False)

    def randn(self, shape, dtype):
        draw = dtype if _np.dtype(dtype) in (_np.float32, _np.float64) else _np.float32
        with self._on_device():
            return self.generator.standard_normal(tuple(shape), dtype=draw).astype(dtype, copy=False)

    def randint(self, low, high, shape, dtype):
        if int(low) >= int(high):
            raise RuntimeError(
                f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
        with self._on_device():
            values = self.generator.randint(low, high, size=tuple(shape), dtype=_np.int64)
            return values.astype(dtype, copy=False)

    def permutation(self, n):
        if int(n) < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
        with self._on_device():
            return self.generator.permutation(int(n)).astype(_np.int64, copy=False)

    # -- memory and transfers --------------------------------------------------------------------
    def to_numpy(self, array):
        return self.xp.asnumpy(array)

    def from_host_or_device(self, array):
        """Returns ``array`` (a numpy array, or a CuPy array on any GPU) as a CuPy array on this GPU."""
        with self._on_device():
            if isinstance(array, self.xp.ndarray):
                # asarray would hand back an array of another GPU unchanged; copy() lands on the current one.
                return array if array.device.id == self.index else array.copy()
            return self.xp.asarray(array)

    def data_ptr(self, array) -> int:
        return int(array.data.ptr)

    def scatter_add(self, target, index, values) -> None:
        """Adds ``values`` into ``target[index]``, accumulating repeated indices."""
        with self._on_device():
            _cupyx.scatter_add(target, index, values)

    def reshape_view(self, array, shape):
        """Returns a view of ``array`` with ``shape``, or None when only a copy can have that shape."""
        # CuPy's reshape copies when it must (older CuPy has no copy=False); a copy starts at a new address.
        with self._on_device():
            out = self.xp.reshape(array, shape)
        if out.size and out.data.ptr != array.data.ptr:
            return None
        return out

    def put_along_axis(self, target, indices, values, axis: int) -> None:
        """Writes ``values`` into ``target`` at ``indices`` along ``axis``, in place (CuPy 13 lacks it)."""
        with self._on_device():
            if hasattr(self.xp, "put_along_axis"):
                self.xp.put_along_axis(target, indices, values, axis)
            else:
                put_along_axis_by_indexing(self.xp, target, indices, values, axis)

    def synchronize(self) -> None:
        """Waits for all work queued on this GPU."""
        self.xp.cuda.Device(self.index).synchronize()

    def memory_allocated(self) -> int:
        """Returns the bytes of this GPU's memory pool that hold live arrays."""
        with self._on_device():
            return int(self.xp.get_default_memory_pool().used_bytes())

    def empty_cache(self) -> None:
        """Returns this GPU's cached, unused blocks to the driver."""
        with self._on_device():
            self.xp.get_default_memory_pool().free_all_blocks()


def put_along_axis_by_indexing(xp, target, indices, values, axis: int) -> None:
    """``put_along_axis`` through advanced indexing, for array modules that lack it."""
    # Every other axis is indexed by an open grid over the target's extent, which broadcasts against the
    # indices exactly as numpy's put_along_axis broadcasts them.
    grid = list(xp.ix_(*[xp.arange(n) for n in target.shape]))
    grid[axis] = indices
    target[tuple(grid)] = values


def current_device() -> int:
    """Returns the index of the current CUDA device (raises when CUDA is unavailable)."""
    if not is_available():
        raise RuntimeError(unavailable_reason())
    return int(_cupy.cuda.runtime.getDevice())


def get_backend(index: int | None) -> CudaBackend:
    """Returns the backend of CUDA device ``index`` (the current device when None)."""
    if index is None:
        index = current_device()
    backend = _backends.get(index)
    if backend is not None:
        return backend
    if not is_available():
        raise RuntimeError(unavailable_reason())
    if index >= device_count():
        raise RuntimeError(
            f"CUDA error: invalid device ordinal (device index {index}, "
            f"but {device_count()} device(s) are visible)"
        )
    backend = _backends[index] = CudaBackend(_cupy, "cuda", index)
    return backend


def backend_of(array) -> CudaBackend:
    """Returns the backend that owns a CuPy array."""
    cupy = _cupy
    if cupy is not None and isinstance(array, cupy.ndarray):
        index = array.device.id
        backend = _backends.get(index)
        return backend if backend is not None else get_backend(index)
    raise TypeError(f"expected a numpy or CuPy array, got {type(array).__name__}")
