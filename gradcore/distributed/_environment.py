"""Rank and world size from the launcher's environment: ``mpiexec`` (MPICH, Open MPI, Slurm) or PyTorch's variables."""
from __future__ import annotations

import os

# (rank variable, world size variable), in the order they are tried: PyTorch's own first, as set by torchrun or
# by hand, then those of MPICH's Hydra and other PMI launchers, Open MPI and Slurm.
_RANK_AND_SIZE_VARIABLES = (("RANK", "WORLD_SIZE"), ("PMI_RANK", "PMI_SIZE"),
                            ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS"))


def launched_by_mpi() -> bool:
    """Returns whether an MPI launcher started this process (so that MPI can tell the rank and the world size)."""
    return any(rank in os.environ for rank, _ in _RANK_AND_SIZE_VARIABLES[1:])


def rank_and_world_size() -> tuple[int, int] | None:
    """Returns ``(rank, world_size)`` read from the environment, or None when no launcher set them."""
    for rank_name, size_name in _RANK_AND_SIZE_VARIABLES:
        if rank_name in os.environ and size_name in os.environ:
            try:
                return int(os.environ[rank_name]), int(os.environ[size_name])
            except ValueError:
                raise ValueError(f"Error initializing gradcore.distributed: environment variables {rank_name}="
                                 f"{os.environ[rank_name]!r} and {size_name}={os.environ[size_name]!r} must be "
                                 "integers") from None
    return None


def debug_level() -> str:
    """Returns ``TORCH_DISTRIBUTED_DEBUG`` (OFF, INFO or DETAIL), read as PyTorch reads it."""
    level = os.environ.get("TORCH_DISTRIBUTED_DEBUG", "OFF").upper()
    if level not in ("OFF", "INFO", "DETAIL"):
        raise ValueError(f"The value of TORCH_DISTRIBUTED_DEBUG must be OFF, INFO, or DETAIL, but is {level}")
    return level
