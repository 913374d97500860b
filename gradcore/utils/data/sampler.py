"""Samplers: the orders in which a ``DataLoader`` visits a dataset's indices."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from ...backend import CPU
from ...tensor import Tensor
from ._random import _draw_seed, _fresh_stream, _random_stream

__all__ = ["BatchSampler", "RandomSampler", "Sampler", "SequentialSampler", "SubsetRandomSampler",
           "WeightedRandomSampler"]

T_co = TypeVar("T_co", covariant=True)


class Sampler(Generic[T_co]):
    """Base class for all samplers: an iterable over dataset indices (or lists of indices)."""

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError


class SequentialSampler(Sampler[int]):
    """Samples elements sequentially, always in the same order."""

    def __init__(self, data_source: Any) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """Samples elements randomly: a fresh permutation each pass, or with ``replacement`` ``num_samples``
    independent draws (made 32 at a time, as PyTorch makes them).

    Without a generator, each pass seeds a new stream from one draw of the global generator, so that
    ``manual_seed`` fixes the order of every epoch.
    """

    def __init__(
        self,
        data_source: Any,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: Any = None,
    ) -> None:
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={replacement}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(
                f"num_samples should be a positive integer value, but got num_samples={self.num_samples}"
            )

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        if self.generator is None:
            stream = _fresh_stream(_draw_seed(CPU.generator))
        else:
            stream = _random_stream(self.generator)
        if self.replacement:
            for _ in range(self.num_samples // 32):
                yield from stream.integers(0, n, 32).tolist() if hasattr(stream, "integers") else \
                    _integers(stream, n, 32)
            rest = self.num_samples % 32
            yield from stream.integers(0, n, rest).tolist() if hasattr(stream, "integers") else \
                _integers(stream, n, rest)
            return
        for _ in range(self.num_samples // n):
            yield from stream.permutation(n).tolist()
        yield from stream.permutation(n).tolist()[: self.num_samples % n]

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list[int]]):
    """Wraps another sampler to yield lists of ``batch_size`` indices (the last one shorter unless dropped)."""

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(
                f"batch_size should be a positive integer value, but got batch_size={batch_size}"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")  # noqa: TRY004
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        count = len(self.sampler)  # type: ignore[arg-type]
        return count // self.batch_size if self.drop_last else math.ceil(count / self.batch_size)




def _integers(stream, n: int, count: int) -> list[int]:
    """``count`` integers in [0, n) from a stream that draws only words (``randint``'s transform)."""
    words = stream.random_uint64(count) if n >= 1 << 28 else stream.random_uint32(count)
    return [int(word) % n for word in words]


class SubsetRandomSampler(Sampler[int]):
    """Samples elements randomly from a given list of indices, without replacement (a permutation each pass)."""

    def __init__(self, indices: Sequence[int], generator: Any = None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        stream = _random_stream(self.generator)
        for i in stream.permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """Samples ``num_samples`` indices in [0, len(weights)) with probabilities proportional to ``weights``.

    The draw is PyTorch's: ``multinomial(weights, num_samples, replacement, generator=generator)``, so the same
    seed gives PyTorch's indices, with and without replacement.
    """

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator: Any = None) -> None:
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got replacement={replacement}")
        values = weights.detach().to("cpu").numpy() if isinstance(weights, Tensor) else weights
        weights_array = CPU.xp.asarray(values, dtype=CPU.xp.float64)
        if weights_array.ndim != 1:
            raise ValueError("weights should be a 1d sequence but given weights have shape "
                             f"{tuple(weights_array.shape)}")
        from ... import creation

        # On the CPU whatever the default device: the draw uses the CPU generator, as a DataLoader does.
        self.weights = creation.tensor(weights_array, device="cpu")
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        # multinomial checks the weights (negative, NaN, all zero) with PyTorch's messages.
        from ...ops.sampling import multinomial

        drawn = multinomial(self.weights, self.num_samples, self.replacement, generator=self.generator)
        yield from drawn.tolist()

    def __len__(self) -> int:
        return self.num_samples
