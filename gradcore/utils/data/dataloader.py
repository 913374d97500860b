"""``DataLoader`` and the default ways of merging samples into batches (``default_collate``,
``default_convert``)."""

from __future__ import annotations

import collections.abc
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Callable, Generic, TypeVar

from ... import creation
from ..._dtypes import float64
from ...backend import CPU, CPU_ARRAY
from ...backend import device as Device
from ...ops.shape import stack
from ...tensor import Tensor
from ._random import _draw_seed, _random_stream
from .dataset import Dataset, IterableDataset, TensorDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader", "default_collate", "default_convert"]

T_co = TypeVar("T_co", covariant=True)


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

        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            # The dataset decides the order: PyTorch refuses the options that would choose one.
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, but got "
                                 f"shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, but got "
                                 f"sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified batch_sampler option, "
                                 f"but got batch_sampler={batch_sampler}")
            sampler = _InfiniteConstantSampler()
            batch_sampler = None
        elif sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not self._iterable:
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
            batching = batch_size is not None if self._iterable else batch_sampler is not None
            collate_fn = default_collate if batching else default_convert
        self.collate_fn = collate_fn

    def __len__(self) -> int:
        if self._iterable:
            length = len(self.dataset)  # type: ignore[arg-type]  (a TypeError without __len__, as PyTorch)
            if self.batch_size is None:
                return length
            return length // self.batch_size if self.drop_last else -(-length // self.batch_size)
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
        if self._iterable:
            yield from self._iterable_batches()
            return
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

    def _iterable_batches(self) -> Iterator[Any]:
        samples = iter(self.dataset)  # type: ignore[call-overload]
        if self.batch_size is None:
            for sample in samples:
                yield self._deliver(self.collate_fn(sample))
            return
        batch: list = []
        for sample in samples:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self._deliver(self.collate_fn(batch))
                batch = []
        if batch and not self.drop_last:
            yield self._deliver(self.collate_fn(batch))


class _InfiniteConstantSampler:
    """The sampler of a DataLoader over an IterableDataset: it yields None forever, the dataset chooses."""

    def __iter__(self) -> Iterator[None]:
        while True:
            yield None
