"""``DistributedSampler``: each rank's share of a dataset, as ``torch.utils.data.distributed`` draws it."""
from __future__ import annotations

import math
from typing import Iterator, Optional

from ...creation import randperm
from ...generator import Generator
from . import Dataset, Sampler

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler[int]):
    """Sampler that restricts data loading to a subset of the dataset, one disjoint subset per rank.

    With ``shuffle`` the order is a permutation drawn from a generator seeded with ``seed + epoch`` (call
    ``set_epoch`` before each epoch for a new order), the same on every rank and the same as PyTorch's. The
    indices are padded by repeating the first ones so that every rank gets as many (or, with ``drop_last``,
    the tail that does not divide evenly is dropped); rank ``r`` takes every ``num_replicas``-th from ``r``.
    """

    def __init__(self, dataset: Dataset, num_replicas: Optional[int] = None, rank: Optional[int] = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            from ... import distributed as dist
            if num_replicas is None:
                num_replicas = dist.get_world_size()
            if rank is None:
                rank = dist.get_rank()
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        length = len(dataset)  # type: ignore[arg-type]
        if drop_last and length % num_replicas != 0:
            # Every rank gets the same number of samples: the ones beyond a multiple of num_replicas are dropped.
            self.num_samples = math.ceil((length - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(length / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        length = len(self.dataset)  # type: ignore[arg-type]
        if self.shuffle:
            generator = Generator()
            generator.manual_seed(self.seed + self.epoch)
            indices = randperm(length, generator=generator).tolist()
        else:
            indices = list(range(length))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[:self.total_size]
        assert len(indices) == self.total_size
        own = indices[self.rank:self.total_size:self.num_replicas]
        assert len(own) == self.num_samples
        return iter(own)

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch: with ``shuffle``, each epoch draws another order (the same on every rank)."""
        self.epoch = epoch
