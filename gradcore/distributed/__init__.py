"""``gradcore.distributed``: collectives across processes with ``torch.distributed``'s names.

Two backends: "mpi" (CPU tensors, through mpi4py, ranks started by ``mpiexec``) and "nccl" (CUDA tensors, through
``cupy.cuda.nccl``). A script written for PyTorch runs after ``import gradcore.distributed as dist``::

    dist.init_process_group("mpi")             # under mpiexec -n 2 python script.py
    dist.all_reduce(t, op=dist.ReduceOp.SUM)   # every rank now holds the sum
    dist.destroy_process_group()

Only the default (world) group exists; every function takes ``group=None`` for it.
"""
from __future__ import annotations

import datetime

from ._environment import debug_level
from ._group import ProcessGroup, ReduceOp
from ._work import DistBackendError, DistError, Work, completed_work

__all__ = ["ReduceOp", "Work", "DistError", "DistBackendError", "ProcessGroup", "init_process_group",
           "destroy_process_group", "is_available", "is_initialized", "is_mpi_available", "is_nccl_available",
           "get_rank", "get_world_size", "get_backend", "all_reduce", "broadcast", "all_gather", "reduce_scatter",
           "reduce", "gather", "scatter", "all_to_all", "all_to_all_single", "send", "recv", "isend", "irecv",
           "barrier"]

#: PyTorch's default collective timeout.
default_pg_timeout = datetime.timedelta(minutes=30)

_default_group: ProcessGroup | None = None
_NOT_INITIALIZED = "Default process group has not been initialized, please make sure to call init_process_group."


def is_available() -> bool:
    """Returns True: the distributed package is part of gradcore (its backends may still be missing)."""
    return True


def is_mpi_available() -> bool:
    """Returns whether mpi4py (and so the "mpi" backend) can be imported."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_nccl_available() -> bool:
    """Returns whether CuPy's NCCL binding (and so the "nccl" backend) can be imported."""
    from ._nccl import load_nccl
    try:
        load_nccl()
    except RuntimeError:
        return False
    return True


def is_initialized() -> bool:
    """Returns whether the default process group has been initialized."""
    return _default_group is not None


def _group(group) -> ProcessGroup:
    if group is not None and group is not _default_group:
        if isinstance(group, ProcessGroup):
            raise ValueError("this process group was destroyed; create a new one with init_process_group")
        raise TypeError(f"group must be None (the default group), not {type(group).__name__}")
    if _default_group is None:
        raise ValueError(_NOT_INITIALIZED)
    return _default_group


def init_process_group(backend: str | None = None, init_method: str | None = None,
                       timeout: datetime.timedelta | None = None, world_size: int = -1, rank: int = -1,
                       store=None, group_name: str = "", pg_options=None, device_id=None) -> None:
    """Initializes the default process group.

    ``backend`` is "mpi" (the default; rank and world size come from ``mpiexec``) or "nccl" (rank and world size
    from ``mpiexec``'s environment or ``RANK``/``WORLD_SIZE``; the NCCL unique id travels over MPI when
    ``mpiexec`` started the job, else through a TCP store at ``MASTER_ADDR``:``MASTER_PORT``). ``timeout`` bounds
    every collective (30 minutes by default): a rank that does not take part makes the others raise
    ``DistBackendError`` after it. ``TORCH_DISTRIBUTED_DEBUG=DETAIL`` checks before each collective that all
    ranks run the same one on tensors of the same shapes and dtypes.
    """
    global _default_group
    if _default_group is not None:
        raise ValueError("trying to initialize the default process group twice!")
    if init_method not in (None, "env://"):
        raise ValueError(f"init_method {init_method!r} is not supported: use the launcher's environment (env://)")
    if store is not None:
        raise ValueError("store is not supported: the ranks meet through MPI or MASTER_ADDR/MASTER_PORT")
    name = "mpi" if backend is None else str(backend).lower()
    timeout_s = (default_pg_timeout if timeout is None else timeout).total_seconds()
    check_collectives = debug_level() == "DETAIL"
    if name == "mpi":
        from ._mpi import MPIProcessGroup
        group = MPIProcessGroup(timeout_s, check_collectives)
        for given, actual, what in ((world_size, group.size, "world_size"), (rank, group.rank, "rank")):
            if given != -1 and given != actual:
                group.destroy()
                raise ValueError(f"init_process_group(): {what}={given} differs from MPI's {actual}: with the 'mpi' "
                                 "backend, mpiexec sets the rank and the world size")
    elif name == "nccl":
        from ._nccl import NCCLProcessGroup
        group = NCCLProcessGroup(rank, world_size, timeout_s, check_collectives, device_id)
    else:
        raise ValueError(f"Invalid backend: '{backend}'; gradcore.distributed has the 'mpi' and 'nccl' backends")
    _default_group = group


def destroy_process_group(group=None) -> None:
    """Destroys the default process group; ``init_process_group`` may then be called again."""
    global _default_group
    if _default_group is None:
        raise AssertionError("Process group cannot be None")
    _group(group)
    _default_group.destroy()
    _default_group = None


def get_rank(group=None) -> int:
    """Returns the rank of the current process in the group."""
    return _group(group).rank


def get_world_size(group=None) -> int:
    """Returns the number of processes in the group."""
    return _group(group).size


def get_backend(group=None) -> str:
    """Returns the backend of the group: "mpi" or "nccl"."""
    return _group(group).backend


def _finish(work: Work, async_op: bool) -> Work | None:
    if async_op:
        return work
    work.wait()
    return None


def all_reduce(tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False) -> Work | None:
    """Reduces the tensor across all ranks in place, so that every rank holds the result."""
    return _finish(_group(group).all_reduce(tensor, op), async_op)


def broadcast(tensor, src: int | None = None, group=None, async_op: bool = False,
              group_src: int | None = None) -> Work | None:
    """Broadcasts the tensor of rank ``src`` to every rank, in place."""
    source = src if src is not None else group_src
    if source is None:
        raise ValueError("broadcast(): either src or group_src must be given")
    return _finish(_group(group).broadcast(tensor, source), async_op)


def all_gather(tensor_list: list, tensor, group=None, async_op: bool = False) -> Work | None:
    """Gathers every rank's ``tensor`` into ``tensor_list`` (entry i from rank i) on every rank."""
    return _finish(_group(group).all_gather(list(tensor_list), tensor), async_op)


def reduce_scatter(output, input_list: list, op: ReduceOp = ReduceOp.SUM, group=None,
                   async_op: bool = False) -> Work | None:
    """Reduces ``input_list[i]`` across ranks into ``output`` of rank i."""
    return _finish(_group(group).reduce_scatter(output, list(input_list), op), async_op)


def _root(given: int | None, group_given: int | None, default: int | None = None) -> int:
    """The root rank of a rooted collective from ``dst``/``src`` or ``group_dst``/``group_src`` (one group only:
    the same numbers)."""
    if given is not None and group_given is not None:
        raise ValueError("Can't specify both group_rank and global_rank")
    root = given if given is not None else group_given if group_given is not None else default
    if root is None:
        raise ValueError("Must specify global_rank or group_rank")
    return root


def _same_dtype(*tensors) -> None:
    dtypes = [t.dtype for t in tensors]
    for dtype in dtypes[1:]:
        if dtype != dtypes[0]:
            raise ValueError(f"Invalid usage of tensors with different dtypesFound {dtypes[0]} and  {dtype}")


def _tensor_list(value, name: str) -> list:
    from ..tensor import Tensor
    if not isinstance(value, list):
        raise TypeError(f"Invalid function argument. Expected parameter `{name}` of type List[Tensor] but got "
                        f"{type(value)} instead.")
    if not all(isinstance(t, Tensor) for t in value):
        raise TypeError(f"Invalid function argument. Expected parameter `{name}` of type List[Tensor] but got "
                        f"{type(value)} with elements of type {[type(t) for t in value]}.")
    return value


def reduce(tensor, dst: int | None = None, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False,
           group_dst: int | None = None) -> Work | None:
    """Reduces the tensor across all ranks into rank ``dst``'s tensor (in place); the others' are unchanged."""
    pg = _group(group)
    return _finish(pg.reduce(tensor, pg.check_rank(_root(dst, group_dst), "reduce", "dst"), op), async_op)


def gather(tensor, gather_list: list | None = None, dst: int | None = None, group=None, async_op: bool = False,
           group_dst: int | None = None) -> Work | None:
    """Gathers every rank's ``tensor`` into ``gather_list`` (entry i from rank i) on rank ``dst`` (0 by default);
    the other ranks pass no list."""
    pg = _group(group)
    gather_list = _tensor_list(gather_list, "gather_list") if gather_list else []
    _same_dtype(tensor, *gather_list)
    root = pg.check_rank(_root(dst, group_dst, 0), "gather", "dst")
    if root == pg.rank and not gather_list:
        raise ValueError("Argument ``gather_list`` must be specified on destination rank.")
    if root != pg.rank and gather_list:
        raise ValueError("Argument ``gather_list`` must NOT be specified on non-destination ranks.")
    return _finish(pg.gather(gather_list, tensor, root), async_op)


def scatter(tensor, scatter_list: list | None = None, src: int | None = None, group=None, async_op: bool = False,
            group_src: int | None = None) -> Work | None:
    """Sends ``scatter_list[i]`` of rank ``src`` (0 by default) into ``tensor`` of rank i; the other ranks pass no
    list."""
    pg = _group(group)
    scatter_list = _tensor_list(scatter_list, "scatter_list") if scatter_list else []
    _same_dtype(tensor, *scatter_list)
    root = pg.check_rank(_root(src, group_src, 0), "scatter", "src")
    if root == pg.rank and not scatter_list:
        raise ValueError("Argument ``scatter_list`` must be specified on source rank.")
    if root != pg.rank and scatter_list:
        raise ValueError("Argument ``scatter_list`` must NOT be specified on non-source ranks.")
    return _finish(pg.scatter(tensor, scatter_list, root), async_op)


def all_to_all(output_tensor_list: list, input_tensor_list: list, group=None, async_op: bool = False) -> Work | None:
    """Sends ``input_tensor_list[i]`` to rank i and receives rank i's into ``output_tensor_list[i]``; the tensors
    may differ in size from one rank to another."""
    outputs = _tensor_list(output_tensor_list, "output_tensor_list")
    inputs = _tensor_list(input_tensor_list, "input_tensor_list")
    _same_dtype(*outputs, *inputs)
    return _finish(_group(group).all_to_all(outputs, inputs), async_op)


def all_to_all_single(output, input, output_split_sizes: list | None = None, input_split_sizes: list | None = None,
                      group=None, async_op: bool = False) -> Work | None:
    """``all_to_all`` on the rows (first dimension) of one tensor: ``input`` is split into one part per rank
    (``input_split_sizes`` rows each, equal parts by default), and the parts received fill ``output`` in rank
    order (``output_split_sizes``)."""
    pg = _group(group)
    _same_dtype(output, input)
    input_parts = _split_rows(input, input_split_sizes, pg.size, "input")
    output_parts = _split_rows(output, output_split_sizes, pg.size, "output")
    return _finish(pg.all_to_all(output_parts, input_parts), async_op)


def _split_rows(tensor, sizes, world_size: int, name: str) -> list:
    if tensor.dim() == 0:
        raise ValueError(f"all_to_all_single(): the {name} tensor must have at least one dimension")
    rows = tensor.shape[0]
    if sizes is None or len(sizes) == 0:
        if rows % world_size:
            raise ValueError(f"all_to_all_single(): the {name} tensor's {rows} rows do not split into {world_size} "
                             "equal parts; give the split sizes")
        sizes = [rows // world_size] * world_size
    sizes = [int(n) for n in sizes]
    if len(sizes) != world_size or sum(sizes) != rows or min(sizes) < 0:
        raise ValueError(f"all_to_all_single(): {name}_split_sizes {sizes} must hold {world_size} sizes adding up "
                         f"to the {rows} rows of {name}")
    parts, start = [], 0
    for n in sizes:
        parts.append(tensor[start:start + n])
        start += n
    return parts


def _check_peer(group: ProcessGroup, peer: int | None, what: str) -> int:
    if peer is None:
        raise ValueError(f"{what} rank must be given")
    if peer == group.rank:
        raise ValueError(f"Invalid {what} rank: {what} rank should not be the same as the rank of the current "
                         "process.")
    return peer


def isend(tensor, dst: int | None = None, group=None, tag: int = 0) -> Work:
    """Sends the tensor to rank ``dst`` without waiting; returns the work handle."""
    pg = _group(group)
    return pg.send(tensor, _check_peer(pg, dst, "destination"), tag)


def send(tensor, dst: int | None = None, group=None, tag: int = 0) -> None:
    """Sends the tensor to rank ``dst`` and waits until it was handed over."""
    isend(tensor, dst, group, tag).wait()


def irecv(tensor, src: int | None = None, group=None, tag: int = 0) -> Work:
    """Receives into the tensor from rank ``src`` (any rank when None) without waiting; returns the work handle."""
    pg = _group(group)
    if src is not None:
        _check_peer(pg, src, "source")
    work, _ = pg.recv(tensor, src, tag)
    return work


def recv(tensor, src: int | None = None, group=None, tag: int = 0) -> int:
    """Receives into the tensor from rank ``src`` (any rank when None); returns the sender's rank."""
    pg = _group(group)
    if src is not None:
        _check_peer(pg, src, "source")
    work, status = pg.recv(tensor, src, tag)
    work.wait()
    return src if src is not None else status.Get_source()


def barrier(group=None, async_op: bool = False, device_ids=None, timeout=None) -> Work | None:
    """Waits until every rank of the group reached the barrier."""
    pg = _group(group)
    if pg.size == 1:
        return _finish(completed_work(pg.rank, "barrier"), async_op)
    work = pg.barrier()
    if async_op:
        return work
    work.wait(timeout)
    return None
