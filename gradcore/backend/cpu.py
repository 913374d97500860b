"""The CPU backend: numpy arrays, and the PyTorch-compatible generator of ``cpu_random.py``."""
from __future__ import annotations

import numpy as np

import math

from .cpu_random import CPUGenerator, fused_multiply_add_float32, fused_multiply_add_float64

_libm_log1p = np.frompyfunc(math.log1p, 1, 1)


class Backend:
    """What one device needs from its array library: creation, random numbers, transfers.

    The CPU backend is this class over numpy; the CUDA backend subclasses it over CuPy.
    """

    def __init__(self, xp, device_type: str, index: int | None = None) -> None:
        self.xp = xp
        self.device_type = device_type
        self.index = index
        self._generator = None
        self._seed = None

    # -- devices ---------------------------------------------------------------------------------
    @property
    def device(self):
        from . import device

        return device(self.device_type, self.index)

    # -- creation --------------------------------------------------------------------------------
    def asarray(self, data, dtype=None):
        """Returns an array of this device (a copy only when needed) with a numpy dtype."""
        return self.xp.asarray(data, dtype=dtype)

    def array(self, data, dtype=None):
        """Returns a new array of this device that owns its memory."""
        return self.xp.array(data, dtype=dtype, copy=True)

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        return self.xp.zeros(shape, dtype=dtype)

    def ones(self, shape, dtype):
        return self.xp.ones(shape, dtype=dtype)

    def full(self, shape, value, dtype):
        return self.xp.full(shape, value, dtype=dtype)

    def arange(self, start, end, step, dtype):
        return self.xp.arange(start, end, step, dtype=dtype)

    def linspace(self, start, end, steps, dtype):
        return self.xp.linspace(start, end, steps, dtype=dtype)

    def eye(self, n, m, dtype):
        return self.xp.eye(n, m, dtype=dtype)

    # -- random numbers --------------------------------------------------------------------------
    def manual_seed(self, seed: int) -> None:
        """Re-seeds this device's generator; a negative seed counts modulo 2**64, as in PyTorch."""
        seed = int(seed)
        if not -(1 << 63) <= seed < 1 << 64:
            raise ValueError("Overflow when unpacking long long")
        self._seed = seed % (1 << 64)
        self._generator = self._make_generator(self._seed)

    def _make_generator(self, seed):
        return CPUGenerator(seed)

    @property
    def generator(self):
        """Returns this device's generator; unseeded, it is seeded from the OS like PyTorch's default one."""
        if self._generator is None:
            self.manual_seed(np.random.SeedSequence().entropy % (1 << 63))
        return self._generator

    def initial_seed(self) -> int:
        """Returns the seed of this device's generator: the one given to manual_seed, or the one it drew."""
        self.generator  # noqa: B018  (creates the generator and its seed)
        return self._seed

    def rand(self, shape, dtype):
        """Returns uniform numbers in [0, 1)."""
        return self.generator.random(shape, dtype=dtype)

    def randn(self, shape, dtype):
        """Returns standard normal numbers."""
        return self.generator.standard_normal(shape, dtype=dtype)

    def uniform(self, shape, low: float, high: float, dtype):
        """Returns numbers drawn uniformly from [low, high): ``u * (high - low) + low`` fused, in the dtype."""
        dtype = np.dtype(dtype)
        if dtype == np.float64:
            draws = self.rand(shape, np.float64)
            low, span = np.float64(low), np.float64(high) - np.float64(low)
            fused = fused_multiply_add_float64
        else:
            draws = self.rand(shape, np.float32)
            low, span = np.float32(low), np.float32(high) - np.float32(low)
            fused = fused_multiply_add_float32
        if self.xp is np:
            return fused(draws, span, low).astype(dtype, copy=False)
        return (draws * span + low).astype(dtype, copy=False)

    def normal(self, shape, mean: float, std: float, dtype):
        """Returns normal numbers with the given mean and standard deviation: ``n * std + mean`` fused.

        Element-wise draws (fewer than 16) are float64 numbers whatever the dtype, scaled before rounding.
        """
        dtype = np.dtype(dtype)
        elementwise = math.prod(shape) < 16
        if dtype == np.float64 or elementwise:
            draws = self.randn(shape, np.float64)
            std, mean, fused = np.float64(std), np.float64(mean), fused_multiply_add_float64
        else:
            draws = self.randn(shape, np.float32)
            std, mean, fused = np.float32(std), np.float32(mean), fused_multiply_add_float32
        if self.xp is np:
            return fused(draws, std, mean).astype(dtype, copy=False)
        return (draws * std + mean).astype(dtype, copy=False)

    def uniform_double(self, shape):
        """Returns float64 numbers in [0, 1), one 53-bit draw each: what PyTorch's samplers compare against."""
        if isinstance(self.generator, CPUGenerator):
            return self.generator.random(shape, np.float64)
        return self.rand(shape, np.float64)

    def exponential(self, shape, lambd: float, dtype):
        """Returns numbers drawn from the exponential distribution of rate ``lambd``: ``-1/lambd * log1p(-u)``
        computed in float64 from one 53-bit uniform ``u`` per element, then rounded to the dtype."""
        draws = self.uniform_double(shape)
        if self.xp is np:
            # The C library's log1p, as PyTorch's kernel calls it (numpy's own differs in the last bit).
            values = np.asarray(_libm_log1p(-draws.reshape(-1)), dtype=np.float64).reshape(draws.shape)
        else:
            values = self.xp.log1p(-draws)
        return ((-1.0 / lambd) * values).astype(dtype, copy=False)

    def normal_one_by_one(self, shape, mean: float, std: float, dtype):
        """Returns normal numbers drawn one by one in float64 and scaled before rounding (``n * std + mean``
        fused): PyTorch's path for a tensor that is not contiguous."""
        if not isinstance(self.generator, CPUGenerator):
            return self.normal(shape, mean, std, dtype)
        draws = self.generator.standard_normal_one_by_one(math.prod(shape)).reshape(shape)
        return fused_multiply_add_float64(draws, np.float64(std), np.float64(mean)).astype(dtype, copy=False)

    def randint(self, low, high, shape, dtype):
        """Returns integers drawn uniformly from [low, high)."""
        return self.generator.integers(low, high, size=shape).astype(dtype, copy=False)

    def permutation(self, n):
        """Returns a random permutation of 0 .. n-1."""
        return self.generator.permutation(n)

    # -- memory and transfers --------------------------------------------------------------------
    def to_numpy(self, array):
        return array

    def from_host_or_device(self, array):
        return np.asarray(array)

    def data_ptr(self, array) -> int:
        return array.__array_interface__["data"][0]

    def scatter_add(self, target, index, values) -> None:
        """Adds ``values`` into ``target[index]``, accumulating repeated indices."""
        np.add.at(target, index, values)

    def synchronize(self) -> None:
        pass


CPU_BACKEND = Backend(np, "cpu")
