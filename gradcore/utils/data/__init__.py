"""``gradcore.utils.data``: datasets, samplers, ``default_collate`` and ``DataLoader``.

Batches are loaded in the calling process (``num_workers`` is accepted and ignored). The random numbers a
shuffling ``DataLoader`` draws come from the same generator, in the same order and through the same
transforms as PyTorch's, so the same seed gives the same batches as PyTorch.
"""

from __future__ import annotations

import collections.abc
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Callable, Generic, TypeVar

from ... import creation
from ..._dtypes import float64, int64
from ...backend import CPU, CPU_ARRAY
from ...backend import device as Device
from ...generator import Generator, default_generator
from ...ops.shape import stack
from ...tensor import Tensor

__all__ = [
    "BatchSampler",
    "DataLoader",
    "Dataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "TensorDataset",
    "default_collate",
    "random_split",
]

T_co = TypeVar("T_co", covariant=True)

_INT64_LIMIT = 1 << 63


# -- random numbers ---------------------------------------------------------------------------------------
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


# -- datasets ---------------------------------------------------------------------------------------------
class Dataset(Generic[T_co]):
    """An abstract class representing a dataset: subclasses define ``__getitem__`` (and usually ``__len__``)."""

    def __getitem__(self, index: int) -> T_co:
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")


class TensorDataset(Dataset):
    """Dataset wrapping tensors: sample ``i`` is the tuple of each tensor's ``i``-th row."""

    def __init__(self, *tensors: Tensor) -> None:
        if any(t.size(0) != tensors[0].size(0) for t in tensors):
            raise AssertionError("Size mismatch between tensors")
        self.tensors = tensors

    def __getitem__(self, index: Any) -> tuple:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].size(0)

    def batch(self, indices: Sequence[int]) -> list:
        """Returns the rows ``indices`` of every tensor: what default_collate makes of those samples."""
        rows = _index_tensor(list(indices))
        return [t[rows.to(t.device)] for t in self.tensors]


def _index_tensor(indices: list):
    return creation.tensor(indices, dtype=int64)


class Subset(Dataset):
    """Subset of a dataset at specified indices."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Dataset, lengths: Sequence[int | float], generator: Any = None) -> list[Subset]:
    """Randomly split a dataset into non-overlapping new datasets of given lengths (or fractions summing to 1)."""
    total = len(dataset)  # type: ignore[arg-type]
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [math.floor(total * fraction) for fraction in lengths]
        # The elements left over by flooring go one each to the subsets in turn.
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != total:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    order = _random_stream(generator).permutation(total).tolist()
    subsets, offset = [], 0
    for length in lengths:
        subsets.append(Subset(dataset, order[offset : offset + length]))
        offset += length
    return subsets


# -- samplers ---------------------------------------------------------------------------------------------
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
    """Samples elements randomly (a fresh permutation each pass), without replacement.

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
        if replacement:
            raise NotImplementedError("RandomSampler(replacement=True) is not supported")
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


# -- collation --------------------------------------------------------------------------------------------
def _is_numpy(obj: Any) -> bool:
    """True for numpy arrays and numpy scalars (which default_collate and default_convert turn into tensors)."""
    return type(obj).__module__ == "numpy" and not isinstance(obj, (str, bytes))


def _numpy_to_tensor(obj: Any) -> Tensor:
    if obj.dtype.kind not in "biuf":
        raise TypeError(
            "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
            f"found {obj.dtype}"
        )
    # A numpy scalar goes through a 0-d array, which keeps its dtype and its exact value.
    return creation.as_tensor(obj if isinstance(obj, CPU_ARRAY) else CPU.xp.asarray(obj))


def default_convert(data: Any) -> Any:
    """Converts numpy arrays (also inside lists, tuples and dicts) to tensors, leaving everything else as is."""
    if _is_numpy(data):
        return _numpy_to_tensor(data) if data.dtype.kind in "biuf" else data
    if isinstance(data, collections.abc.Mapping):
        return type(data)({key: default_convert(value) for key, value in data.items()})  # type: ignore[call-arg]
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (list, tuple)):
        return type(data)(default_convert(d) for d in data)
    return data


def default_collate(batch: Sequence[Any]) -> Any:
    """Puts each data field into a tensor with outer dimension batch size.

    Tensors and numpy arrays are stacked; Python floats become a float64 tensor and ints (bools) an int64
    (bool) one; strings stay a list; dicts, named tuples and sequences are collated field by field (a tuple
    of fields comes back as a list, as in PyTorch).
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(list(batch), 0)
    if _is_numpy(elem):  # arrays and numpy scalars alike
        return stack([_numpy_to_tensor(b) for b in batch], 0)
    if isinstance(elem, bool):
        return creation.tensor(list(batch))
    if isinstance(elem, float):
        # Made from a float64 array, so that each value is stored exactly as the Python float holds it.
        return creation.as_tensor(CPU.xp.asarray(list(batch), dtype=float64.numpy))
    if isinstance(elem, int):
        return creation.tensor(list(batch))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(collated)  # type: ignore[call-arg]
        except TypeError:
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(samples) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(e) != len(elem) for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = [default_collate(list(samples)) for samples in zip(*batch)]
        if isinstance(elem, tuple):
            return transposed
        try:
            return type(elem)(transposed)  # type: ignore[call-arg]
        except TypeError:
            return transposed
    raise TypeError(
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        f"found {type(elem)}"
    )


def _move_to(data: Any, device: Device) -> Any:
    """Returns ``data`` with every tensor in it (also inside lists, tuples and dicts) moved to ``device``."""
    if isinstance(data, Tensor):
        return data.to(device)
    if isinstance(data, collections.abc.Mapping):
        moved = {key: _move_to(value, device) for key, value in data.items()}
        try:
            return type(data)(moved)  # type: ignore[call-arg]
        except TypeError:
            return moved
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(_move_to(d, device) for d in data))
    if isinstance(data, (list, tuple)):
        return type(data)(_move_to(d, device) for d in data)
    return data


# -- the loader -------------------------------------------------------------------------------------------
class DataLoader(Generic[T_co]):
    """Combines a dataset and a sampler, and provides an iterable over the given dataset.

    ``batch_size`` samples are drawn per batch (in order, or in a new random order each pass with
    ``shuffle=True``; ``generator`` fixes that order, otherwise the global seed does) and merged by
    ``collate_fn`` (``default_collate``); ``drop_last`` drops a last incomplete batch.

    gradcore's own extension: ``device`` (a device or a string such as ``'cuda'``) moves every tensor of each
    batch there with ``.to(device)``, so batches arrive already on the model's device.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Iterable | None = None,
        batch_sampler: Iterable[list] | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[list], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable | None = None,
        multiprocessing_context: Any = None,
        generator: Any = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
        device: Device | str | None = None,
    ) -> None:
        if num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; use num_workers=0 to disable multiprocessing."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                    "and drop_last"
                )
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError(
                "batch_size=None option disables auto-batching and is mutually exclusive with drop_last"
            )

        if sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.generator = generator
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.device = Device(device) if device is not None else None
        if collate_fn is None:
            collate_fn = default_collate if batch_sampler is not None else default_convert
        self.collate_fn = collate_fn

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)  # type: ignore[arg-type]
        return len(self.sampler)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        # Each pass draws a base seed, which PyTorch hands to its worker processes. No worker uses it here,
        # but drawing it keeps the random stream in step with PyTorch's: the same seed gives the same shuffles,
        # and the same numbers to whatever the training loop draws next.
        _draw_seed(_random_stream(self.generator))
        return self._batches()

    def _batches(self) -> Iterator[Any]:
        if self.batch_sampler is not None:
            # A TensorDataset batch under the default collate is each tensor indexed by the batch's indices:
            # the same tensors as stacking the samples, in one indexing op per tensor instead of one per sample.
            whole_batches = isinstance(self.dataset, TensorDataset) and self.collate_fn is default_collate
            for indices in self.batch_sampler:
                if whole_batches:
                    yield self._deliver(self.dataset.batch(indices))
                else:
                    yield self._deliver(self.collate_fn([self.dataset[i] for i in indices]))
        else:
            for index in self.sampler:
                yield self._deliver(self.collate_fn(self.dataset[index]))

    def _deliver(self, batch: Any) -> Any:
        return batch if self.device is None else _move_to(batch, self.device)


from .distributed import DistributedSampler  # noqa: E402  (it builds on Sampler, defined above)
