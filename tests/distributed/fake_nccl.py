"""A stand-in for ``cupy.cuda.nccl`` (and the stream and event types it needs) on top of the CuPy test double.

``install(monkeypatch)`` puts it into ``fake_cupy.cuda`` for one test. A communicator of world size 1 works
alone; a larger one runs its collectives through MPI on the host memory behind the double's "device"
pointers, so that ``mpiexec -n 2`` runs the NCCL backend's code end to end without a GPU. Every call is
logged with the stream it was queued on (``Communicator.calls``): the backend must use its side stream, never
the caller's.
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

    def wait_event(self, event) -> None:
        self.waited_for.append(event)

    def synchronize(self) -> None:
        pass

    def is_capturing(self) -> bool:
        return False  # this double never captures (the CuPy test double's own streams do)


class Event:
    """``cupy.cuda.Event``: the double runs synchronously, so an event is done once recorded."""

    def __init__(self, block: bool = False, disable_timing: bool = False, interprocess: bool = False) -> None:
        self.stream = None

    def record(self, stream=None) -> None:
        self.stream = stream if stream is not None else current_stream

    @property
    def done(self) -> bool:
        return self.stream is not None

    def synchronize(self) -> None:
        pass


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

    def _log(self, name: str, stream: int, **details) -> None:
        if self.destroyed:
            raise RuntimeError("ncclInvalidUsage: the communicator was destroyed")
        NcclCommunicator.calls.append(dict(details, name=name, stream=stream))

    def allReduce(self, send: int, recv: int, count: int, datatype: int, op: int, stream: int) -> None:
        self._log("allReduce", stream, count=count, datatype=datatype, op=op)
        source, target = _host(send, count, datatype), _host(recv, count, datatype)
        if self.size == 1:
            target[...] = source
            return
        gathered = np.empty((self.size, count), source.dtype)
        self.comm.Allgather(source.copy(), gathered)
        target[...] = _numpy_op[op].reduce(gathered, axis=0)

    def bcast(self, buffer: int, count: int, datatype: int, root: int, stream: int) -> None:
        self._log("bcast", stream, count=count, root=root)
        if self.size > 1:
            self.comm.Bcast(_host(buffer, count, datatype), root=root)

    def allGather(self, send: int, recv: int, count: int, datatype: int, stream: int) -> None:
        self._log("allGather", stream, count=count)
        source, target = _host(send, count, datatype), _host(recv, count * self.size, datatype)
        if self.size == 1:
            target[...] = source
        else:
            self.comm.Allgather(source.copy(), target)

    def reduceScatter(self, send: int, recv: int, count: int, datatype: int, op: int, stream: int) -> None:
        self._log("reduceScatter", stream, count=count, op=op)
        source = _host(send, count * self.size, datatype).reshape(self.size, count)
        target = _host(recv, count, datatype)
        if self.size == 1:
            target[...] = source[0]
            return
        gathered = np.empty((self.size, self.size, count), source.dtype)
        self.comm.Allgather(source.copy(), gathered)
        target[...] = _numpy_op[op].reduce(gathered[:, self.rank_id], axis=0)

    def send(self, buffer: int, count: int, datatype: int, peer: int, stream: int) -> None:
        self._log("send", stream, count=count, peer=peer)
        self.comm.Send(_host(buffer, count, datatype).copy(), dest=peer)

    def recv(self, buffer: int, count: int, datatype: int, peer: int, stream: int) -> None:
        self._log("recv", stream, count=count, peer=peer)
        self.comm.Recv(_host(buffer, count, datatype), source=peer)

    def destroy(self) -> None:
        self.destroyed = True


_unique_ids = itertools.count(1)


def get_unique_id() -> tuple:
    first = next(_unique_ids)
    return (first,) + (7,) * 127


nccl = types.SimpleNamespace(NcclCommunicator=NcclCommunicator, get_unique_id=get_unique_id, available=True)
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
