"""``Generator``: a random number generator object, as ``torch.Generator``, and the default one."""
from __future__ import annotations

from .backend import CPU, device as _device, get_backend

__all__ = ["Generator", "default_generator"]

# The seed a new PyTorch generator starts from, so that an unseeded Generator draws PyTorch's numbers too.
DEFAULT_SEED = 67280421310721


class Generator:
    """A random number generator with its own state; pass it as ``generator=`` to sampling functions."""

    def __init__(self, device="cpu") -> None:
        self.device = _device(device)
        shared = get_backend(self.device)
        # A private backend of the same kind holds this generator's own stream.
        self._backend = type(shared)(shared.xp, shared.device_type, shared.index)
        self._backend.manual_seed(DEFAULT_SEED)

    def manual_seed(self, seed: int) -> "Generator":
        """Sets the seed and returns the generator."""
        self._backend.manual_seed(seed)
        return self

    def initial_seed(self) -> int:
        """Returns the seed the generator was last seeded with."""
        return self._backend.initial_seed()

    def seed(self) -> int:
        """Seeds the generator from a non-deterministic source and returns that seed."""
        value = int(CPU.xp.random.SeedSequence().entropy % (1 << 63))
        self.manual_seed(value)
        return value

    # The words samplers draw from (see gradcore.utils.data).
    def random_uint64(self, n: int):
        return self._backend.generator.random_uint64(n)

    def permutation(self, n: int):
        return self._backend.generator.permutation(n)

    def __repr__(self) -> str:
        return f"<gradcore.Generator object at {hex(id(self))}>"


class _DefaultGenerator(Generator):
    """The generator ``manual_seed`` seeds: the CPU backend's own stream."""

    def __init__(self) -> None:
        self.device = _device("cpu")
        self._backend = CPU


default_generator = _DefaultGenerator()
