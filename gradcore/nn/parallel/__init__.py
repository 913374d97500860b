"""``gradcore.nn.parallel``: ``DistributedDataParallel``, data parallelism over ``gradcore.distributed``."""
from .distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
