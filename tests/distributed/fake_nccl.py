"""A stand-in for ``cupy.cuda.nccl`` (and the stream and event types it needs) on top of the CuPy test double.

``install(monkeypatch)`` puts it into ``fake_cupy.cuda`` for one test. A communicator of world size 1 works
alone; a larger one runs its collectives through MPI on the host memory behind the double's "device"
pointers, so that ``mpiexec -n 2`` runs the NCCL backend's code end to end without a GPU. Every call is
logged with the stream it was queued on (``Communicator.calls``): the backend must use its side stream, never
the caller's.

A communicator whose ``hang`` is set stands for one whose peers never join: its operations do not run and
leave their stream stuck, so that no event recorded on it after them completes, until ``abort()`` (as
``ncclCommAbort`` makes NCCL's kernels return). Synchronizing a stuck stream, which would block for ever on a
GPU, raises ``AssertionError`` here.
"""
from __future__ import annotations

import ctypes
import itertools
import types

import numpy as np

_ids = itertools.count(1000)

# NCCL's datatype and reduction constants, mapped back to numpy here.
DTYPES = {"NCCL_INT8": np.int8, "NCCL_UINT8": np.uint8, "NCCL_INT32": np.int32, "NCCL_UINT32": np.uint32,
          "NCCL_INT64": np.int64, "NCCL_UINT64": np.uint64, "NCCL_FLOAT16": np.float16,
          "NCCL_FLOAT32": np.float32, "NCCL_FLOAT64": np.float64}
OPS = {"NCCL_SUM": np.add, "NCCL_PROD": np.multiply, "NCCL_MAX": np.maximum, "NCCL_MIN": np.minimum}


class Stream:
    """``cupy.cuda.Stream``: a handle (``ptr``) that remembers the events it was told to wait for."""

    def __init__(self, null: bool = False, non_blocking: bool = False) -> None:
        self.ptr = 0 if null else next(_ids)
        self.waited_for: list = []
        self.stuck = False
        _streams[self.ptr] = self

    def wait_event(self, event) -> None:
        self.waited_for.append(event)

    def synchronize(self) -> None:
        if self.stuck:
            raise AssertionError("synchronize() on a stream behind a collective that never completes: on a GPU "
                                 "this would block for ever")

    def is_capturing(self) -> bool:
        return False  # this double never captures (the CuPy test double's own streams do)


class Event:
    """``cupy.cuda.Event``: the double runs synchronously, so an event is done once recorded, unless it was
    recorded on a stuck stream (done once the stream is released)."""

    def __init__(self, block: bool = False, disable_timing: bool = False, interprocess: bool = False) -> None:
        self.stream = None

    def record(self, stream=None) -> None:
        self.stream = stream if stream is not None else current_stream

    @property
    def done(self) -> bool:
        return self.stream is not None and not self.stream.stuck

    def synchronize(self) -> None:
        if not self.done:
            raise AssertionError("synchronize() on an event that never completes: on a GPU this would block for ever")


_streams: dict = {}
current_stream = Stream(null=True)


def _host(pointer: int, count: int, datatype: int) -> np.ndarray:
    """The ``count`` elements at a device pointer of the double (host memory) as a numpy array."""
    dtype = np.dtype(_numpy_dtype[datatype])
    buffer = (ctypes.c_char * (count * dtype.itemsize)).from_address(pointer)
    return np.frombuffer(buffer, dtype=dtype)


class NcclCommunicator:
    """``cupy.cuda.nccl.NcclCommunicator(ndev, unique_id, rank)``."""

    calls: list = []

    def __init__(self, ndev: int, unique_id, rank: int) -> None:
        if not isinstance(unique_id, tuple) or len(unique_id) != 128:
            raise TypeError("the unique id must be the 128-byte tuple get_unique_id returns")
        self.size, self.rank_id = ndev, rank
        self.mpi = None
        if ndev > 1:
            from mpi4py import MPI
            self.mpi = MPI
            self.comm = MPI.COMM_WORLD
            # Every rank must have been handed rank 0's id.
            ids = self.comm.allgather(unique_id)
            if any(i != ids[0] for i in ids):
                raise RuntimeError("ncclInvalidUsage: the ranks were given different unique ids")
        self.destroyed = False
        self.aborted = False
        self.hang = False
        self._stuck: list = []

    def _log(self, name: str, stream: int, **details) -> bool:
        """Logs a call; returns False when the operation must not run (the communicator hangs)."""
        if self.destroyed or self.aborted:
            raise RuntimeError("ncclInvalidUsage: the communicator was destroyed or aborted")
        NcclCommunicator.calls.append(dict(details, name=name, stream=stream))
        if self.hang:
            _streams[stream].stuck = True
            self._stuck.append(_streams[stream])
            return False
        return True

    def abort(self) -> None:
        NcclCommunicator.calls.append({"name": "abort"})
        self.aborted = True
        for stream in self._stuck:
            stream.stuck = False

    def allReduce(self, send: int, recv: int, count: int, datatype: int, op: int, stream: int) -> None:
        if not self._log("allReduce", stream, count=count, datatype=datatype, op=op):
            return
        source, target = _host(send, count, datatype), _host(recv, count, datatype)
        if self.size == 1:
            target[...] = source
            return
        gathered = np.empty((self.size, count), source.dtype)
        self.comm.Allgather(source.copy(), gathered)
        target[...] = _numpy_op[op].reduce(gathered, axis=0)

    def bcast(self, buffer: int, count: int, datatype: int, root: int, stream: int) -> None:
        if not self._log("bcast", stream, count=count, root=root):
            return
        if self.size > 1:
            self.comm.Bcast(_host(buffer, count, datatype), root=root)

    def allGather(self, send: int, recv: int, count: int, datatype: int, stream: int) -> None:
        if not self._log("allGather", stream, count=count):
            return
        source, target = _host(send, count, datatype), _host(recv, count * self.size, datatype)
        if self.size == 1:
            target[...] = source
        else:
            self.comm.Allgather(source.copy(), target)

    def reduceScatter(self, send: int, recv: int, count: int, datatype: int, op: int, stream: int) -> None:
        if not self._log("reduceScatter", stream, count=count, op=op):
            return
        source = _host(send, count * self.size, datatype).reshape(self.size, count)
        target = _host(recv, count, datatype)
        if self.size == 1:
            target[...] = source[0]
            return
        gathered = np.empty((self.size, self.size, count), source.dtype)
        self.comm.Allgather(source.copy(), gathered)
        target[...] = _numpy_op[op].reduce(gathered[:, self.rank_id], axis=0)

    def reduce(self, send: int, recv: int, count: int, datatype: int, op: int, root: int, stream: int) -> None:
        if not self._log("reduce", stream, count=count, op=op, root=root):
            return
        source = _host(send, count, datatype)
        if self.size == 1:
            _host(recv, count, datatype)[...] = source
            return
        gathered = np.empty((self.size, count), source.dtype)
        self.comm.Allgather(source.copy(), gathered)
        if self.rank_id == root:
            _host(recv, count, datatype)[...] = _numpy_op[op].reduce(gathered, axis=0)

    def send(self, buffer: int, count: int, datatype: int, peer: int, stream: int) -> None:
        if not self._log("send", stream, count=count, peer=peer):
            return
        data = _host(buffer, count, datatype).copy()
        if _group:
            _group[-1].append(("send", self, data, peer))
        else:
            self.comm.Send(data, dest=peer)

    def recv(self, buffer: int, count: int, datatype: int, peer: int, stream: int) -> None:
        if not self._log("recv", stream, count=count, peer=peer):
            return
        target = _host(buffer, count, datatype)
        if _group:
            _group[-1].append(("recv", self, target, peer))
        else:
            self.comm.Recv(target, source=peer)

    def destroy(self) -> None:
        self.destroyed = True


_unique_ids = itertools.count(1)
_group: list = []  # the transfers queued since groupStart(), run together by groupEnd()


def groupStart() -> None:
    _group.append([])


def groupEnd() -> None:
    """Runs the queued sends and receives together, as NCCL does: sends to oneself meet receives from oneself
    in order, the others go over MPI without blocking, so that no order of posting can deadlock."""
    transfers = _group.pop()
    to_self = [t for t in transfers if t[3] == t[1].rank_id]
    sends = [t[2] for t in to_self if t[0] == "send"]
    receives = [t[2] for t in to_self if t[0] == "recv"]
    if len(sends) != len(receives):
        raise RuntimeError("ncclInvalidUsage: unmatched send/recv to oneself in a group")
    for data, target in zip(sends, receives):
        target[...] = data
    requests = []
    for kind, communicator, buffer, peer in transfers:
        if peer == communicator.rank_id:
            continue
        if kind == "send":
            requests.append(communicator.comm.Isend(buffer, dest=peer))
        else:
            requests.append(communicator.comm.Irecv(buffer, source=peer))
    if requests:
        from mpi4py import MPI
        MPI.Request.Waitall(requests)


def get_unique_id() -> tuple:
    first = next(_unique_ids)
    return (first,) + (7,) * 127


nccl = types.SimpleNamespace(NcclCommunicator=NcclCommunicator, get_unique_id=get_unique_id, available=True,
                             groupStart=groupStart, groupEnd=groupEnd)
_numpy_dtype, _numpy_op = {}, {}
for _value, (_name, _dtype) in enumerate(DTYPES.items()):
    setattr(nccl, _name, _value)
    _numpy_dtype[_value] = _dtype
for _value, (_name, _op) in enumerate(OPS.items()):
    setattr(nccl, _name, _value)
    _numpy_op[_value] = _op


def install(fake_cupy, setattr_) -> None:
    """Adds the NCCL binding, streams and events to the CuPy test double (``setattr_``: monkeypatch's)."""
    setattr_(fake_cupy.cuda, "nccl", nccl, raising=False)
    setattr_(fake_cupy.cuda, "Stream", Stream, raising=False)
    setattr_(fake_cupy.cuda, "Event", Event)
    setattr_(fake_cupy.cuda, "get_current_stream", lambda: current_stream, raising=False)
