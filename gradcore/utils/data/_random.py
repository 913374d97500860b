"""The random streams that samplers, ``random_split`` and ``DataLoader`` draw from, as PyTorch's do."""

from __future__ import annotations

from typing import Any

from ...backend import CPU
from ...generator import Generator, default_generator

_INT64_LIMIT = 1 << 63


def _random_stream(generator: Any):
    """Returns the CPU random stream behind ``generator``.

    None, and the object ``gradcore.manual_seed`` returns (PyTorch's default generator), mean the global CPU
    generator; any other object must draw ``random_uint64`` words and ``permutation``s itself, as
    ``gradcore.Generator`` does.
    """
    if generator is None or generator is default_generator:
        return CPU.generator
    if isinstance(generator, Generator):
        return generator._backend.generator
    if hasattr(generator, "random_uint64") and hasattr(generator, "permutation"):
        return generator
    raise TypeError(f"generator must be None or a CPU random generator, got {type(generator).__name__}")


def _draw_seed(stream) -> int:
    """Draws a seed the way ``torch.empty((), dtype=torch.int64).random_()`` does: a 64-bit word mod 2**63."""
    return int(stream.random_uint64(1)[0]) % _INT64_LIMIT


def _fresh_stream(seed: int):
    return type(CPU.generator)(seed)




def uniform_float64(stream, n: int):
    """``n`` uniform float64 numbers in [0, 1), one 64-bit word each, as PyTorch's CPU kernels draw them."""
    words = stream.random_uint64(n) & CPU.xp.uint64((1 << 53) - 1)
    return words.astype(CPU.xp.float64) * 2.0**-53
