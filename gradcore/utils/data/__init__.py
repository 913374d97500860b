"""``gradcore.utils.data``: datasets, samplers, ``default_collate`` and ``DataLoader``.

Batches are loaded in the calling process (``num_workers`` is accepted and ignored). The random numbers a
shuffling ``DataLoader`` draws come from the same generator, in the same order and through the same
transforms as PyTorch's, so the same seed gives the same batches as PyTorch. As in PyTorch the parts live
in the modules ``dataset``, ``sampler`` and ``dataloader``; this package re-exports them.
"""

from __future__ import annotations

from . import dataloader, dataset, sampler  # noqa: F401  (importable modules, as in PyTorch)
from .dataloader import DataLoader, default_collate, default_convert
from .dataset import ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                      WeightedRandomSampler)
from .distributed import DistributedSampler  # noqa: E402  (it builds on Sampler and Dataset, imported above)

__all__ = [
    "BatchSampler",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "default_collate",
    "default_convert",
    "random_split",
]
