"""The "mpi" backend: CPU tensors' numpy arrays handed to mpi4py's non-blocking calls, in place."""
from __future__ import annotations

import sys
import threading
import time
import traceback

import numpy as np

from ._group import ProcessGroup, ReduceOp, _check_same
from ._work import Work


def _load_mpi():
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise RuntimeError("the 'mpi' backend needs mpi4py and an MPI library: pip install 'gradcore[distributed]' "
                           f"(mpi4py, mpich) ({error})") from None
    return MPI


class MPIProcessGroup(ProcessGroup):
    """The ranks of ``MPI.COMM_WORLD`` (a duplicate of it, so that user MPI traffic never meets ours).

    Every operation is a non-blocking MPI call on the tensor's own memory (``Iallreduce`` with ``MPI.IN_PLACE``,
    ``Ibcast``, ...), returned as a ``Work``; the blocking forms wait on it. ``AVG`` is a sum divided by the world
    size in place on completion, as MPI has no average. ``all_gather`` and ``reduce_scatter`` take lists of
    separate tensors, which MPI cannot address as one buffer: they go through one contiguous staging array.

    MPI moves a non-blocking collective on only inside MPI calls. So that a transfer started during backward
    (``DistributedDataParallel``'s buckets) advances while backward computes, a progress thread polls the
    requests in flight every ``PROGRESS_INTERVAL_S``; numpy releases the interpreter lock in its products, so
    the polls run beside them. The thread sleeps while nothing is in flight.
    """

    PROGRESS_INTERVAL_S = 2e-4

    backend = "mpi"
    device_type = "cpu"

    def __init__(self, timeout_s: float, check_collectives: bool) -> None:
        self.MPI = MPI = _load_mpi()
        self.comm = MPI.COMM_WORLD.Dup()
        super().__init__(self.comm.Get_rank(), self.comm.Get_size(), timeout_s, check_collectives)
        self._ops = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
                     ReduceOp.MIN: MPI.MIN, ReduceOp.MAX: MPI.MAX}
        self._previous_excepthook = None
        # MPI_THREAD_MULTIPLE (mpi4py's default) lets the progress thread call MPI; one request is never tested
        # by two threads at once (the lock).
        self._lock = threading.Lock()
        self._in_flight: list = []
        self._work_arrived = threading.Event()
        self._stopping = False
        self._progress_thread = None
        if self.size > 1:
            self._abort_on_uncaught_exception()
            if MPI.Query_thread() == MPI.THREAD_MULTIPLE:
                self._progress_thread = threading.Thread(target=self._make_progress, daemon=True,
                                                         name="gradcore-mpi-progress")
                self._progress_thread.start()

    def _make_progress(self) -> None:
        while True:
            self._work_arrived.wait()
            if self._stopping:
                return
            with self._lock:
                self._in_flight = [pending for pending in self._in_flight if not pending.test()]
                # Under the lock, as destroy() sets _stopping: a clear after destroy's set would leave this
                # thread waiting for ever, and destroy() joining it.
                if not self._in_flight and not self._stopping:
                    self._work_arrived.clear()
            time.sleep(self.PROGRESS_INTERVAL_S)

    def _abort_on_uncaught_exception(self) -> None:
        # A rank that ends with an exception would otherwise wait in MPI's finalisation for ranks that wait for
        # it in a collective: aborting the job ends them all at once, with this rank's traceback printed first.
        previous = sys.excepthook
        comm = self.comm

        def abort_job(kind, value, tb) -> None:
            traceback.print_exception(kind, value, tb)
            sys.stderr.flush()
            comm.Abort(1)

        sys.excepthook = abort_job
        self._previous_excepthook = previous

    def _work(self, request, description: str, finish=None, status=None) -> Work:
        lock = self._lock
        pending = _Pending(request, status)

        def test() -> bool:
            with lock:
                return pending.test()
        if self._progress_thread is not None:
            with lock:
                self._in_flight.append(pending)
            self._work_arrived.set()
        return Work(test, description, self.timeout_s, self.rank, finish)

    def _mpi_op(self, op: ReduceOp, array: np.ndarray, function: str):
        if not isinstance(op, ReduceOp):
            raise TypeError(f"{function}(): op must be a ReduceOp, not {type(op).__name__}")
        if op is ReduceOp.AVG and array.dtype.kind not in "fc":
            raise ValueError(f"{function}(): ReduceOp.AVG needs a floating-point tensor, got {array.dtype}")
        return self._ops[op]

    def _averaged(self, array: np.ndarray, op: ReduceOp):
        if op is not ReduceOp.AVG:
            return None

        def divide() -> None:
            np.true_divide(array, self.size, out=array)
        return divide

    def all_reduce(self, tensor, op: ReduceOp) -> Work:
        array = self.check_tensor(tensor, "all_reduce")
        mpi_op = self._mpi_op(op, array, "all_reduce")
        self.fingerprint_check("ALLREDUCE", [tensor])
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, array, mpi_op)
        return self._work(request, f"all_reduce (op {op.name}) of shape {list(tensor.shape)} {tensor.dtype}",
                          self._averaged(array, op))

    def broadcast(self, tensor, src: int) -> Work:
        array = self.check_tensor(tensor, "broadcast")
        self.check_rank(src, "broadcast", "src")
        self.fingerprint_check("BROADCAST", [tensor])
        request = self.comm.Ibcast(array, root=src)
        return self._work(request, f"broadcast from rank {src} of shape {list(tensor.shape)} {tensor.dtype}")

    def all_gather(self, tensor_list: list, tensor) -> Work:
        array = self.check_tensor(tensor, "all_gather")
        outputs = [self.check_tensor(t, "all_gather", "tensor_list") for t in tensor_list]
        _check_same(tensor, tensor_list, "all_gather", "tensor_list", self.size)
        self.fingerprint_check("ALLGATHER", [tensor])
        staging = np.empty((self.size,) + array.shape, array.dtype)
        request = self.comm.Iallgather(array, staging)

        def scatter_rows() -> None:
            for output, row in zip(outputs, staging):
                output[...] = row
        return self._work(request, f"all_gather of shape {list(tensor.shape)} {tensor.dtype}", scatter_rows)

    def reduce_scatter(self, output, input_list: list, op: ReduceOp) -> Work:
        array = self.check_tensor(output, "reduce_scatter", "output")
        inputs = [self.check_tensor(t, "reduce_scatter", "input_list") for t in input_list]
        _check_same(output, input_list, "reduce_scatter", "input_list", self.size)
        mpi_op = self._mpi_op(op, array, "reduce_scatter")
        self.fingerprint_check("REDUCE_SCATTER", [output])
        staging = np.stack(inputs) if inputs else np.empty((0,) + array.shape, array.dtype)
        request = self.comm.Ireduce_scatter_block(staging, array, mpi_op)
        divide = self._averaged(array, op)

        def finish() -> None:
            del staging_alive[:]  # the staging array was kept until MPI finished reading it
            if divide is not None:
                divide()
        staging_alive = [staging]
        return self._work(request, f"reduce_scatter (op {op.name}) of shape {list(output.shape)} {output.dtype}",
                          finish)

    def reduce(self, tensor, dst: int, op: ReduceOp) -> Work:
        array = self.check_tensor(tensor, "reduce")
        mpi_op = self._mpi_op(op, array, "reduce")
        self.fingerprint_check("REDUCE", [tensor])
        if self.rank == dst:
            request = self.comm.Ireduce(self.MPI.IN_PLACE, array, mpi_op, root=dst)
        else:
            request = self.comm.Ireduce(array, None, mpi_op, root=dst)
        return self._work(request, f"reduce (op {op.name}) to rank {dst} of shape {list(tensor.shape)} "
                          f"{tensor.dtype}", self._averaged(array, op) if self.rank == dst else None)

    def gather(self, gather_list: list, tensor, dst: int) -> Work:
        array, outputs = self.rooted_arrays("gather", tensor, gather_list, "gather_list", dst, "GATHER")
        staging = np.empty((self.size,) + array.shape, array.dtype) if self.rank == dst else None
        request = self.comm.Igather(array, staging, root=dst)

        def scatter_rows() -> None:
            for output, row in zip(outputs, staging):
                output[...] = row
        return self._work(request, f"gather to rank {dst} of shape {list(tensor.shape)} {tensor.dtype}",
                          scatter_rows if self.rank == dst else None)

    def scatter(self, tensor, scatter_list: list, src: int) -> Work:
        array, inputs = self.rooted_arrays("scatter", tensor, scatter_list, "scatter_list", src, "SCATTER")
        staging = np.stack(inputs) if self.rank == src else None
        request = self.comm.Iscatter(staging, array, root=src)
        staging_alive = [staging]  # kept until MPI has read it
        return self._work(request, f"scatter from rank {src} of shape {list(tensor.shape)} {tensor.dtype}",
                          staging_alive.clear)

    def all_to_all(self, output_list: list, input_list: list) -> Work:
        outputs, inputs = self.all_to_all_arrays(output_list, input_list)
        # Each direction as one contiguous array with counts and offsets per rank (MPI_Ialltoallv): the
        # tensors may differ in size from rank to rank.
        send_counts = np.array([a.size for a in inputs], np.int64)
        receive_counts = np.array([a.size for a in outputs], np.int64)
        dtype = inputs[0].dtype if inputs else outputs[0].dtype
        send = np.concatenate([a.reshape(-1) for a in inputs]).astype(dtype, copy=False)
        received = np.empty(int(receive_counts.sum()), dtype)
        request = self.comm.Ialltoallv(
            [send, (send_counts.tolist(), _offsets(send_counts))],
            [received, (receive_counts.tolist(), _offsets(receive_counts))])

        def copy_out() -> None:
            del send_alive[:]
            for output, start, count in zip(outputs, _offsets(receive_counts), receive_counts):
                output[...] = received[start:start + count].reshape(output.shape)
        send_alive = [send]
        return self._work(request, f"all_to_all of {len(inputs)} tensors ({dtype})", copy_out)

    def send(self, tensor, dst: int, tag: int) -> Work:
        array = self.check_tensor(tensor, "send")
        self.check_rank(dst, "send", "dst")
        request = self.comm.Isend(array, dest=dst, tag=tag)
        return self._work(request, f"send to rank {dst} (tag {tag}) of shape {list(tensor.shape)} {tensor.dtype}")

    def recv(self, tensor, src: int | None, tag: int) -> tuple[Work, object]:
        """Returns the work and an ``MPI.Status`` that names the sender once the work completes."""
        array = self.check_tensor(tensor, "recv")
        source = self.MPI.ANY_SOURCE if src is None else self.check_rank(src, "recv", "src")
        status = self.MPI.Status()
        request = self.comm.Irecv(array, source=source, tag=tag)
        sender = "any rank" if src is None else f"rank {src}"
        return self._work(request, f"recv from {sender} (tag {tag}) of shape {list(tensor.shape)} {tensor.dtype}",
                          status=status), status

    def barrier(self) -> Work:
        self.fingerprint_check("BARRIER", [])
        return self._work(self.comm.Ibarrier(), "barrier")

    def _all_gather_bytes(self, payload: np.ndarray, description: str) -> np.ndarray:
        rows = np.empty((self.size, payload.size), np.uint8)
        self._work(self.comm.Iallgather(payload, rows), description).wait()
        return rows

    def destroy(self) -> None:
        if self._progress_thread is not None:
            with self._lock:
                self._stopping = True
                self._work_arrived.set()
            self._progress_thread.join()
            self._progress_thread = None
        if self._previous_excepthook is not None:
            sys.excepthook = self._previous_excepthook
            self._previous_excepthook = None
        self.comm.Free()


class _Pending:
    """A request in flight and whether it completed: testing a completed request again would reset its status."""

    __slots__ = ("request", "status", "done")

    def __init__(self, request, status) -> None:
        self.request = request
        self.status = status
        self.done = False

    def test(self) -> bool:
        if not self.done:
            self.done = self.request.Test(self.status) if self.status is not None else self.request.Test()
        return self.done


def _offsets(counts) -> list:
    """Where each rank's part starts in a flat array of parts of ``counts`` elements."""
    return [0] + np.cumsum(counts)[:-1].tolist()
