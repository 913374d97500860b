"""The "nccl" backend: CUDA tensors through ``cupy.cuda.nccl``, on a stream of its own.

Each collective waits (on the device) for the work already queued on the caller's current stream, runs on the
backend's side stream and records an event; ``Work.wait()`` makes the caller's current stream wait for that event,
as PyTorch's NCCL work does, so the host never blocks and the caller's later kernels see the result.
"""
from __future__ import annotations

import importlib
import os
import pickle

import numpy as np

from ..backend import cuda as _cuda_backend
from ._environment import launched_by_mpi, rank_and_world_size
from ._group import ProcessGroup, ReduceOp
from ._store import share_bytes
from ._work import Work

# numpy dtype name -> NCCL datatype constant name
_NCCL_DTYPES = {"int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32", "uint32": "NCCL_UINT32",
                "int64": "NCCL_INT64", "uint64": "NCCL_UINT64", "float16": "NCCL_FLOAT16",
                "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64", "bool": "NCCL_UINT8"}
_NCCL_OPS = {ReduceOp.SUM: "NCCL_SUM", ReduceOp.PRODUCT: "NCCL_PROD", ReduceOp.MIN: "NCCL_MIN",
             ReduceOp.MAX: "NCCL_MAX", ReduceOp.AVG: "NCCL_SUM"}


def load_nccl():
    """Returns ``(cupy, cupy.cuda.nccl)``; raises RuntimeError saying what to install when either is missing."""
    cupy = _cuda_backend._load_cupy()
    if cupy is None:
        raise RuntimeError("the 'nccl' backend needs CuPy: pip install 'gradcore[cuda]' "
                           f"({_cuda_backend._import_error})")
    nccl = getattr(cupy.cuda, "nccl", None)
    if nccl is None:
        try:
            nccl = importlib.import_module(cupy.__name__ + ".cuda.nccl")
        except Exception as error:  # noqa: BLE001  (ImportError, or a broken NCCL install raising at import)
            raise RuntimeError(f"the 'nccl' backend needs CuPy's NCCL binding ({error})") from None
    if not getattr(nccl, "available", True):
        raise RuntimeError("the 'nccl' backend needs the NCCL library: pip install 'gradcore[cuda]' "
                           "(it brings nvidia-nccl-cu12)")
    return cupy, nccl


class NCCLProcessGroup(ProcessGroup):
    """One NCCL communicator over one GPU per rank (NCCL refuses two ranks on the same GPU)."""

    backend = "nccl"
    device_type = "cuda"

    def __init__(self, rank: int, world_size: int, timeout_s: float, check_collectives: bool, device_id) -> None:
        self.cupy, self.nccl = cupy, nccl = load_nccl()
        if rank == -1 or world_size == -1:
            found = rank_and_world_size()
            if found is None:
                raise ValueError("Error initializing gradcore.distributed using env:// rendezvous: environment "
                                 "variable RANK expected, but not set (or start the job with mpiexec)")
            rank = found[0] if rank == -1 else rank
            world_size = found[1] if world_size == -1 else world_size
        if not 0 <= rank < world_size:
            raise ValueError(f"init_process_group(): invalid rank {rank} for world size {world_size}")
        super().__init__(rank, world_size, timeout_s, check_collectives)
        if device_id is not None:  # the communicator belongs to the device current when it is made
            from .. import cuda
            cuda.set_device(device_id)
        unique_id = self._share_unique_id(nccl)
        self.comm = nccl.NcclCommunicator(world_size, unique_id, rank)
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self._dtypes = {name: getattr(nccl, constant) for name, constant in _NCCL_DTYPES.items()}
        self._native_average = getattr(nccl, "NCCL_AVG", None)

    def _share_unique_id(self, nccl):
        if self.size == 1:
            return nccl.get_unique_id()
        if launched_by_mpi():
            try:
                from mpi4py import MPI
            except ImportError:
                MPI = None
            if MPI is not None:
                return MPI.COMM_WORLD.bcast(nccl.get_unique_id() if self.rank == 0 else None, root=0)
        address, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
        if address is None or port is None:
            raise ValueError("Error initializing gradcore.distributed using env:// rendezvous: environment variable "
                             f"{'MASTER_ADDR' if address is None else 'MASTER_PORT'} expected, but not set")
        payload = pickle.dumps(nccl.get_unique_id()) if self.rank == 0 else None
        return pickle.loads(share_bytes(payload, self.rank, self.size, address, int(port), self.timeout_s))

    # -- launching on the side stream -----------------------------------------------------------------
    def _datatype(self, array) -> int:
        try:
            return self._dtypes[array.dtype.name]
        except KeyError:
            raise ValueError(f"the 'nccl' backend cannot transfer tensors of dtype {array.dtype.name}") from None

    def _op(self, op: ReduceOp, array, function: str) -> int:
        if not isinstance(op, ReduceOp):
            raise TypeError(f"{function}(): op must be a ReduceOp, not {type(op).__name__}")
        if op is ReduceOp.AVG and self._native_average is not None:
            return self._native_average
        return getattr(self.nccl, _NCCL_OPS[op])

    def _launch(self, description: str, call, keep_alive: tuple, finish=None) -> Work:
        cuda = self.cupy.cuda
        inputs_ready = cuda.Event(disable_timing=True)
        inputs_ready.record(cuda.get_current_stream())
        self.stream.wait_event(inputs_ready)
        call(self.stream.ptr)
        done = cuda.Event(disable_timing=True)
        done.record(self.stream)
        held = [keep_alive]  # the arrays stay allocated until the caller's stream waited for the transfer

        def block_current_stream() -> None:
            cuda.get_current_stream().wait_event(done)
            held.clear()
        return Work(lambda: bool(done.done), description, self.timeout_s, self.rank, finish, block_current_stream)

    def _averaged(self, array, op: ReduceOp):
        if op is ReduceOp.AVG and self._native_average is None:
            def divide() -> None:
                self.cupy.true_divide(array, self.size, out=array)
            return divide
        return None

    def all_reduce(self, tensor, op: ReduceOp) -> Work:
        array = self.check_tensor(tensor, "all_reduce")
        nccl_op = self._op(op, array, "all_reduce")
        self.fingerprint_check("ALLREDUCE", [tensor])
        pointer, count, datatype = array.data.ptr, array.size, self._datatype(array)
        return self._launch(f"all_reduce (op {op.name}) of shape {list(tensor.shape)} {tensor.dtype}",
                            lambda stream: self.comm.allReduce(pointer, pointer, count, datatype, nccl_op, stream),
                            (array,), self._averaged(array, op))

    def broadcast(self, tensor, src: int) -> Work:
        array = self.check_tensor(tensor, "broadcast")
        self.check_rank(src, "broadcast", "src")
        self.fingerprint_check("BROADCAST", [tensor])
        pointer, count, datatype = array.data.ptr, array.size, self._datatype(array)
        return self._launch(f"broadcast from rank {src} of shape {list(tensor.shape)} {tensor.dtype}",
                            lambda stream: self.comm.bcast(pointer, count, datatype, src, stream), (array,))

    def all_gather(self, tensor_list: list, tensor) -> Work:
        from ._mpi import _check_same
        array = self.check_tensor(tensor, "all_gather")
        outputs = [self.check_tensor(t, "all_gather", "tensor_list") for t in tensor_list]
        _check_same(tensor, tensor_list, "all_gather", "tensor_list", self.size)
        self.fingerprint_check("ALLGATHER", [tensor])
        staging = self.cupy.empty((self.size,) + array.shape, array.dtype)
        count, datatype = array.size, self._datatype(array)

        def scatter_rows() -> None:
            for index, output in enumerate(outputs):
                output[...] = staging[index]
        return self._launch(f"all_gather of shape {list(tensor.shape)} {tensor.dtype}",
                            lambda stream: self.comm.allGather(array.data.ptr, staging.data.ptr, count, datatype,
                                                               stream), (array, staging), scatter_rows)

    def reduce_scatter(self, output, input_list: list, op: ReduceOp) -> Work:
        from ._mpi import _check_same
        array = self.check_tensor(output, "reduce_scatter", "output")
        inputs = [self.check_tensor(t, "reduce_scatter", "input_list") for t in input_list]
        _check_same(output, input_list, "reduce_scatter", "input_list", self.size)
        nccl_op = self._op(op, array, "reduce_scatter")
        self.fingerprint_check("REDUCE_SCATTER", [output])
        staging = self.cupy.stack(inputs)
        count, datatype = array.size, self._datatype(array)
        return self._launch(f"reduce_scatter (op {op.name}) of shape {list(output.shape)} {output.dtype}",
                            lambda stream: self.comm.reduceScatter(staging.data.ptr, array.data.ptr, count, datatype,
                                                                   nccl_op, stream),
                            (array, staging), self._averaged(array, op))

    def send(self, tensor, dst: int, tag: int) -> Work:
        array = self.check_tensor(tensor, "send")
        self.check_rank(dst, "send", "dst")
        count, datatype = array.size, self._datatype(array)
        return self._launch(f"send to rank {dst} of shape {list(tensor.shape)} {tensor.dtype}",
                            lambda stream: self.comm.send(array.data.ptr, count, datatype, dst, stream), (array,))

    def recv(self, tensor, src: int | None, tag: int):
        if src is None:
            raise ValueError("recv(): the 'nccl' backend needs src (NCCL cannot receive from any rank)")
        array = self.check_tensor(tensor, "recv")
        self.check_rank(src, "recv", "src")
        count, datatype = array.size, self._datatype(array)
        work = self._launch(f"recv from rank {src} of shape {list(tensor.shape)} {tensor.dtype}",
                            lambda stream: self.comm.recv(array.data.ptr, count, datatype, src, stream), (array,))
        return work, None

    def barrier(self) -> Work:
        # NCCL has no barrier: an all-reduce of one element that the host then waits for is one.
        token = self.cupy.zeros(1, np.float32)
        work = self.all_reduce_array(token, "barrier")
        self.stream.synchronize()
        return work

    def all_reduce_array(self, array, description: str) -> Work:
        pointer = array.data.ptr
        return self._launch(description, lambda stream: self.comm.allReduce(
            pointer, pointer, array.size, self._datatype(array), self.nccl.NCCL_SUM, stream), (array,))

    def _all_gather_bytes(self, payload: np.ndarray, description: str) -> np.ndarray:
        device_payload = self.cupy.asarray(payload)
        rows = self.cupy.empty((self.size, payload.size), np.uint8)
        self._launch(description, lambda stream: self.comm.allGather(
            device_payload.data.ptr, rows.data.ptr, payload.size, self.nccl.NCCL_UINT8, stream),
            (device_payload, rows))
        self.stream.synchronize()
        return self.cupy.asnumpy(rows)

    def destroy(self) -> None:
        self.stream.synchronize()
        self.comm.destroy()
