"""The CUDA backend over CuPy. CuPy is optional: without it (or without a GPU) CUDA is simply unavailable."""
from __future__ import annotations

from .cpu import Backend

_cupy = None
_import_error: str | None = None
_backends: dict[int, "CudaBackend"] = {}


def _load_cupy():
    """Imports CuPy once; returns the module or None and remembers why it failed."""
    global _cupy, _import_error
    if _cupy is None and _import_error is None:
        try:
            import cupy

            _cupy = cupy
        except Exception as exc:  # ImportError, or a broken CUDA install raising at import
            _import_error = f"{type(exc).__name__}: {exc}"
    return _cupy


def device_count() -> int:
    """Number of visible CUDA devices; 0 without CuPy, a driver or a GPU. Never raises."""
    cupy = _load_cupy()
    if cupy is None:
        return 0
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:
        return 0


def is_available() -> bool:
    """True when CuPy imports and at least one GPU is visible. Never raises."""
    return device_count() > 0


def unavailable_reason() -> str:
    """Says what is missing for CUDA tensors and how to get it."""
    if _load_cupy() is None:
        return (
            "gradcore was installed without CUDA support: CuPy is not installed "
            f"({_import_error}). Install it with: pip install \"gradcore[cuda]\""
        )
    return "CuPy is installed but no CUDA GPU (or driver) was found on this machine"


class CudaBackend(Backend):
    """CuPy arrays on one GPU."""

    def _make_generator(self, seed):
        return self.xp.random.default_rng(seed)

    def rand(self, shape, dtype):
        with self.xp.cuda.Device(self.index):
            return self.generator.random(shape, dtype=self.xp.float64).astype(dtype, copy=False)

    def randn(self, shape, dtype):
        with self.xp.cuda.Device(self.index):
            return self.generator.standard_normal(shape, dtype=self.xp.float64).astype(dtype, copy=False)

    def to_numpy(self, array):
        return self.xp.asnumpy(array)

    def from_host_or_device(self, array):
        with self.xp.cuda.Device(self.index):
            return self.xp.asarray(array)

    def data_ptr(self, array) -> int:
        return int(array.data.ptr)

    def scatter_add(self, target, index, values) -> None:
        import cupyx

        cupyx.scatter_add(target, index, values)

    def synchronize(self) -> None:
        self.xp.cuda.Device(self.index).synchronize()


def get_backend(index: int | None) -> CudaBackend:
    """Returns the backend of CUDA device ``index`` (the current device when None)."""
    if not is_available():
        raise RuntimeError(unavailable_reason())
    cupy = _cupy
    if index is None:
        index = cupy.cuda.runtime.getDevice()
    if index >= device_count():
        raise RuntimeError(f"CUDA error: invalid device ordinal {index} (found {device_count()} device(s))")
    backend = _backends.get(index)
    if backend is None:
        backend = _backends[index] = CudaBackend(cupy, "cuda", index)
    return backend


def backend_of(array) -> CudaBackend:
    """Returns the backend that owns a CuPy array."""
    cupy = _cupy
    if cupy is not None and isinstance(array, cupy.ndarray):
        return get_backend(array.device.id)
    raise TypeError(f"expected a numpy or CuPy array, got {type(array).__name__}")
