"""The CPU backend: numpy arrays, numpy's random generator."""
from __future__ import annotations

import numpy as np


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
        """Re-seeds this device's generator."""
        self._seed = int(seed)
        self._generator = self._make_generator(self._seed)

    def _make_generator(self, seed):
        return np.random.default_rng(seed)

    @property
    def generator(self):
        if self._generator is None:
            self.manual_seed(np.random.SeedSequence().entropy % (2**63))
        return self._generator

    def initial_seed(self) -> int:
        self.generator  # noqa: B018  (creates the generator and its seed)
        return self._seed

    def rand(self, shape, dtype):
        """Uniform numbers in [0, 1)."""
        return self.generator.random(shape, dtype=np.float64).astype(dtype, copy=False)

    def randn(self, shape, dtype):
        """Standard normal numbers."""
        return self.generator.standard_normal(shape, dtype=np.float64).astype(dtype, copy=False)

    def randint(self, low, high, shape, dtype):
        return self.generator.integers(low, high, size=shape).astype(dtype, copy=False)

    def permutation(self, n):
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
