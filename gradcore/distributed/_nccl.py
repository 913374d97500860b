"""The "nccl" backend: CUDA tensors through ``cupy.cuda.nccl``, on a stream of its own.

Each collective waits (on the device) for the work already queued on the caller's current stream, runs on the
backend's side stream and records an event; ``Work.wait()`` makes the caller's current stream wait for that event,
as PyTorch's NCCL work does, so the host does not block and the caller's later kernels see the result.

No wait is unbounded. As in PyTorch, ``Work.wait(timeout)``, and every ``wait()`` when ``TORCH_NCCL_BLOCKING_WAIT``
is 1, also block the host, polling the collective's event until the deadline; the host waits of the backend
itself (``barrier``, the handshakes, ``destroy``) poll the same way. A watchdog thread checks the collectives in
flight against the group's timeout. Past it, the communicator is aborted (NCCL's kernels then return, so no
stream stays blocked) and ``DistBackendError`` is raised: at once by a blocking wait, or, for a collective the
watchdog caught, by the next use of the group or of the work. Tensors of a timed-out collective hold undefined
values, and the group cannot be used again.
"""
from __future__ import annotations

import importlib
import os
import pickle
import sys
import threading
import time

import numpy as np

from ..backend import cuda as _cuda_backend
from ._environment import launched_by_mpi, rank_and_world_size
from ._group import ProcessGroup, ReduceOp, _check_same
from ._store import share_bytes
from ._work import _FIRST_POLL_S, _LONGEST_POLL_S, DistBackendError, Work

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
        self.blocking_wait = os.environ.get("TORCH_NCCL_BLOCKING_WAIT", "0").lower() in ("1", "true")
        self._launched = 0
        self._in_flight: list = []  # the _Collective records the watchdog checks
        self._watch_lock = threading.Lock()
        self._failure: DistBackendError | None = None  # set once a collective timed out (the group is aborted)
        self._stop_watching = threading.Event()
        self._watchdog: threading.Thread | None = None

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

    def _launch(self, description: str, call, keep_alive: tuple, finish=None, *, op_type: str, numel_in: int,
                numel_out: int) -> Work:
        self._check_not_failed()
        cuda = self.cupy.cuda
        inputs_ready = cuda.Event(disable_timing=True)
        inputs_ready.record(cuda.get_current_stream())
        self.stream.wait_event(inputs_ready)
        call(self.stream.ptr)
        done = cuda.Event(disable_timing=True)
        done.record(self.stream)
        self._launched += 1
        collective = _Collective(done, self._launched, op_type, numel_in, numel_out, description)
        self._watch(collective)
        held = [keep_alive]  # the arrays stay allocated until the caller's stream waited for the transfer

        def test() -> bool:
            if collective.error is not None:
                raise collective.error
            return bool(done.done)

        def block(timeout_s: float | None) -> None:
            if collective.error is not None:
                raise collective.error
            cuda.get_current_stream().wait_event(done)
            if timeout_s is not None or self.blocking_wait:
                self._wait_on_host(collective, timeout_s, blocking_wait=True)
            held.clear()
        return Work(test, description, self.timeout_s, self.rank, finish, block)

    # -- bounded waits ---------------------------------------------------------------------------------
    def _check_not_failed(self) -> None:
        if self._failure is not None:
            raise DistBackendError(f"[Rank {self.rank}] the NCCL communicator was aborted after a collective timed "
                                   f"out; the process group cannot be used any more. {self._failure}")

    def _wait_on_host(self, collective: "_Collective", timeout_s: float | None, blocking_wait: bool = False) -> None:
        """Polls the collective's event until it is done; past the deadline, aborts the group and raises."""
        limit_s = self.timeout_s if timeout_s is None else timeout_s
        deadline = (collective.started if timeout_s is None else time.monotonic()) + limit_s
        pause = _FIRST_POLL_S
        while not collective.done.done:
            if collective.error is not None or self._failure is not None:
                break
            if time.monotonic() > deadline:
                self._time_out(collective, limit_s, blocking_wait)
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_POLL_S)
        # The watchdog may have aborted the group meanwhile (the event is then done, with undefined results).
        if collective.error is not None or self._failure is not None:
            raise collective.error or self._failure

    def _time_out(self, collective: "_Collective", limit_s: float, blocking_wait: bool) -> None:
        with self._watch_lock:
            if collective.error is None:
                ran_ms = int((time.monotonic() - collective.started) * 1000)
                work = collective.describe(limit_s)
                if blocking_wait:
                    message = (f"[Rank {self.rank}] Work {work} timed out in blocking wait: it ran for {ran_ms} "
                               f"milliseconds ({collective.description}).")
                else:
                    message = (f"[Rank {self.rank}] Watchdog caught collective operation timeout: {work} ran for "
                               f"{ran_ms} milliseconds before timing out ({collective.description}).")
                collective.error = DistBackendError(
                    "Some NCCL operations have failed or timed out. Due to the asynchronous nature of CUDA kernels, "
                    "subsequent GPU operations might run on corrupted/incomplete data. " + message)
                self._abort(collective.error)
        raise collective.error

    def _abort(self, error: DistBackendError) -> None:
        """Fails every collective still in flight with ``error`` and aborts the communicator (holding the lock)."""
        first = self._failure is None
        if first:
            self._failure = error
        for pending in self._in_flight:
            if pending.error is None:
                pending.error = error
        self._in_flight.clear()
        if first:
            self.comm.abort()  # NCCL's kernels return: the streams waiting for them move on

    def _watch(self, collective: "_Collective") -> None:
        with self._watch_lock:
            self._in_flight.append(collective)
            if self._watchdog is None and self.timeout_s != float("inf"):
                self._watchdog = threading.Thread(target=self._watch_in_flight, daemon=True,
                                                  name="gradcore-nccl-watchdog")
                self._watchdog.start()

    def _watch_in_flight(self) -> None:
        interval = min(1.0, max(1e-3, self.timeout_s / 20))
        while not self._stop_watching.wait(interval):
            with self._watch_lock:
                self._in_flight = [c for c in self._in_flight if c.error is None and not c.done.done]
                late = [c for c in self._in_flight if time.monotonic() - c.started > self.timeout_s]
            if late:
                try:
                    self._time_out(late[0], self.timeout_s, blocking_wait=False)
                except DistBackendError as error:
                    print(error, file=sys.stderr, flush=True)
                return

    def _synchronize(self, description: str) -> None:
        """Waits on the host, within the group's timeout, for everything queued on the side stream."""
        self._check_not_failed()
        cuda = self.cupy.cuda
        done = cuda.Event(disable_timing=True)
        done.record(self.stream)
        self._wait_on_host(_Collective(done, self._launched, "SYNCHRONIZE", 0, 0, description), None)

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
                            (array,), self._averaged(array, op), op_type="ALLREDUCE", numel_in=count,
                            numel_out=count)

    def broadcast(self, tensor, src: int) -> Work:
        array = self.check_tensor(tensor, "broadcast")
        self.check_rank(src, "broadcast", "src")
        self.fingerprint_check("BROADCAST", [tensor])
        pointer, count, datatype = array.data.ptr, array.size, self._datatype(array)
        return self._launch(f"broadcast from rank {src} of shape {list(tensor.shape)} {tensor.dtype}",
                            lambda stream: self.comm.bcast(pointer, count, datatype, src, stream), (array,),
                            op_type="BROADCAST", numel_in=count, numel_out=count)

    def all_gather(self, tensor_list: list, tensor) -> Work:
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
                                                               stream), (array, staging), scatter_rows,
                            op_type="ALLGATHER", numel_in=count, numel_out=count * self.size)

    def reduce_scatter(self, output, input_list: list, op: ReduceOp) -> Work:
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
                            (array, staging), self._averaged(array, op), op_type="REDUCE_SCATTER",
                            numel_in=count * self.size, numel_out=count)

    def reduce(self, tensor, dst: int, op: ReduceOp) -> Work:
        array = self.check_tensor(tensor, "reduce")
        nccl_op = self._op(op, array, "reduce")
        self.fingerprint_check("REDUCE", [tensor])
        pointer, count, datatype = array.data.ptr, array.size, self._datatype(array)
        return self._launch(f"reduce (op {op.name}) to rank {dst} of shape {list(tensor.shape)} {tensor.dtype}",
                            lambda stream: self.comm.reduce(pointer, pointer, count, datatype, nccl_op, dst, stream),
                            (array,), self._averaged(array, op) if self.rank == dst else None, op_type="REDUCE",
                            numel_in=count, numel_out=count)

    # NCCL has no gather, scatter or all-to-all: as PyTorch does, they are sends and receives in one NCCL group
    # (a rank's transfer to itself included), which NCCL runs together.
    def _grouped(self, description: str, transfers: list, op_type: str) -> Work:
        def call(stream) -> None:
            self.nccl.groupStart()
            try:
                for kind, array, peer in transfers:
                    count, datatype = array.size, self._datatype(array)
                    if kind == "send":
                        self.comm.send(array.data.ptr, count, datatype, peer, stream)
                    else:
                        self.comm.recv(array.data.ptr, count, datatype, peer, stream)
            finally:
                self.nccl.groupEnd()
        numel_in = sum(a.size for kind, a, _ in transfers if kind == "send")
        numel_out = sum(a.size for kind, a, _ in transfers if kind == "recv")
        return self._launch(description, call, tuple(a for _, a, _ in transfers), op_type=op_type,
                            numel_in=numel_in, numel_out=numel_out)

    def gather(self, gather_list: list, tensor, dst: int) -> Work:
        array, outputs = self.rooted_arrays("gather", tensor, gather_list, "gather_list", dst, "GATHER")
        transfers = [("send", array, dst)] + [("recv", out, r) for r, out in enumerate(outputs)]
        return self._grouped(f"gather to rank {dst} of shape {list(tensor.shape)} {tensor.dtype}", transfers,
                             "GATHER")

    def scatter(self, tensor, scatter_list: list, src: int) -> Work:
        array, inputs = self.rooted_arrays("scatter", tensor, scatter_list, "scatter_list", src, "SCATTER")
        transfers = [("send", a, r) for r, a in enumerate(inputs)] + [("recv", array, src)]
        return self._grouped(f"scatter from rank {src} of shape {list(tensor.shape)} {tensor.dtype}", transfers,
                             "SCATTER")

    def all_to_all(self, output_list: list, input_list: list) -> Work:
        outputs, inputs = self.all_to_all_arrays(output_list, input_list)
        transfers = [("send", a, r) for r, a in enumerate(inputs)] + [("recv", a, r) for r, a in enumerate(outputs)]
        return self._grouped(f"all_to_all of {len(inputs)} tensors ({inputs[0].dtype})", transfers, "ALLTOALL")

    def send(self, tensor, dst: int, tag: int) -> Work:
        array = self.check_tensor(tensor, "send")
        self.check_rank(dst, "send", "dst")
        count, datatype = array.size, self._datatype(array)
        return self._launch(f"send to rank {dst} of shape {list(tensor.shape)} {tensor.dtype}",
                            lambda stream: self.comm.send(array.data.ptr, count, datatype, dst, stream), (array,),
                            op_type="SEND", numel_in=count, numel_out=count)

    def recv(self, tensor, src: int | None, tag: int):
        if src is None:
            raise ValueError("recv(): the 'nccl' backend needs src (NCCL cannot receive from any rank)")
        array = self.check_tensor(tensor, "recv")
        self.check_rank(src, "recv", "src")
        count, datatype = array.size, self._datatype(array)
        work = self._launch(f"recv from rank {src} of shape {list(tensor.shape)} {tensor.dtype}",
                            lambda stream: self.comm.recv(array.data.ptr, count, datatype, src, stream), (array,),
                            op_type="RECV", numel_in=count, numel_out=count)
        return work, None

    def barrier(self) -> Work:
        # NCCL has no barrier: an all-reduce of one element that the host then waits for is one.
        token = self.cupy.zeros(1, np.float32)
        work = self.all_reduce_array(token, "barrier")
        self._synchronize("barrier")
        return work

    def all_reduce_array(self, array, description: str) -> Work:
        pointer = array.data.ptr
        return self._launch(description, lambda stream: self.comm.allReduce(
            pointer, pointer, array.size, self._datatype(array), self.nccl.NCCL_SUM, stream), (array,),
            op_type="ALLREDUCE", numel_in=array.size, numel_out=array.size)

    def _all_gather_bytes(self, payload: np.ndarray, description: str) -> np.ndarray:
        device_payload = self.cupy.asarray(payload)
        rows = self.cupy.empty((self.size, payload.size), np.uint8)
        self._launch(description, lambda stream: self.comm.allGather(
            device_payload.data.ptr, rows.data.ptr, payload.size, self.nccl.NCCL_UINT8, stream),
            (device_payload, rows), op_type="ALLGATHER", numel_in=payload.size, numel_out=rows.size)
        self._synchronize(description)
        return self.cupy.asnumpy(rows)

    def destroy(self) -> None:
        self._stop_watching.set()
        if self._watchdog is not None:
            self._watchdog.join()
            self._watchdog = None
        if self._failure is not None:
            return  # aborted: the communicator's resources are gone already
        self._synchronize("destroy_process_group")
        self.comm.destroy()


class _Collective:
    """One collective in flight: its completion event, when it started and how a time-out error names it."""

    __slots__ = ("done", "started", "sequence", "op_type", "numel_in", "numel_out", "description", "error")

    def __init__(self, done, sequence: int, op_type: str, numel_in: int, numel_out: int, description: str) -> None:
        self.done = done
        self.started = time.monotonic()
        self.sequence = sequence
        self.op_type, self.numel_in, self.numel_out = op_type, numel_in, numel_out
        self.description = description
        self.error: DistBackendError | None = None

    def describe(self, limit_s: float) -> str:
        return (f"WorkNCCL(SeqNum={self.sequence}, OpType={self.op_type}, NumelIn={self.numel_in}, "
                f"NumelOut={self.numel_out}, Timeout(ms)={int(limit_s * 1000)})")
