"""CUDA streams, as ``torch.cuda.Stream``, ``current_stream`` and ``stream``, over CuPy's streams.

Every CuPy operation and every launch of gradcore's kernels runs on CuPy's current stream, so making a stream
current (``with gradcore.cuda.stream(s):``) puts the work of the block on it; this is how
``gradcore.cuda.graph`` captures a block on a side stream.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional

from ..backend import cuda as _backend
from ..backend import device as _device

__all__ = ["Stream", "current_stream", "default_stream", "stream"]


def _cuda_backend(device, what: str):
    """Returns the backend of a CUDA device (the current one for None); raises RuntimeError naming ``what``
    when CUDA cannot be used."""
    if not _backend.is_available():
        raise RuntimeError(f"{what} requires CUDA support: {_backend.unavailable_reason()}")
    if device is None:
        return _backend.get_backend(None)
    device = _device(device)
    if device.type != "cuda":
        raise ValueError(f"Expected a cuda device, but got: {device}")
    return _backend.get_backend(device.index)


class Stream:
    """Wrapper around a CUDA stream: a linear sequence of work on one device (``torch.cuda.Stream``).

    ``Stream()`` creates a new stream on the current device (``device=`` picks another); a stream does not
    synchronize with the default stream.
    """

    def __init__(self, device=None, priority: int = 0) -> None:
        backend = _cuda_backend(device, "gradcore.cuda.Stream")
        with backend.xp.cuda.Device(backend.index):
            self._cupy_stream = backend.xp.cuda.Stream(non_blocking=True)
        self._backend = backend
        self.priority = priority

    @classmethod
    def _of(cls, cupy_stream, backend) -> Stream:
        """Wraps an existing CuPy stream."""
        stream = cls.__new__(cls)
        stream._cupy_stream, stream._backend, stream.priority = cupy_stream, backend, 0
        return stream

    @property
    def device(self) -> _device:
        return _device("cuda", self._backend.index)

    @property
    def cuda_stream(self) -> int:
        """The raw ``cudaStream_t`` handle (0 for the legacy default stream)."""
        return int(self._cupy_stream.ptr)

    def synchronize(self) -> None:
        """Waits for all the kernels in this stream to complete."""
        self._cupy_stream.synchronize()

    def query(self) -> bool:
        """Returns True if all the work submitted to this stream has completed."""
        return bool(self._cupy_stream.done)

    def wait_stream(self, stream: Stream) -> None:
        """Makes all future work submitted to this stream wait for the work queued on ``stream`` so far."""
        self._cupy_stream.wait_event(stream._cupy_stream.record())

    def __enter__(self) -> Stream:
        self._cupy_stream.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._cupy_stream.__exit__(*exc)

    def __eq__(self, other) -> bool:
        return (isinstance(other, Stream) and self.cuda_stream == other.cuda_stream
                and self._backend.index == other._backend.index)

    def __hash__(self) -> int:
        return hash((self.cuda_stream, self._backend.index))

    def __repr__(self) -> str:
        return f"<gradcore.cuda.Stream device={self.device} cuda_stream={self.cuda_stream:#x}>"


def current_stream(device=None) -> Stream:
    """Returns the currently selected Stream for a given device (the current device by default)."""
    backend = _cuda_backend(device, "gradcore.cuda.current_stream")
    with backend.xp.cuda.Device(backend.index):
        return Stream._of(backend.xp.cuda.get_current_stream(), backend)


def default_stream(device=None) -> Stream:
    """Returns the default Stream for a given device (the legacy default stream, handle 0)."""
    backend = _cuda_backend(device, "gradcore.cuda.default_stream")
    return Stream._of(backend.xp.cuda.Stream.null, backend)


@contextlib.contextmanager
def stream(stream: Optional[Stream]) -> Iterator[Optional[Stream]]:
    """Context-manager that selects a given stream: the block's CUDA work is queued on it (None: a no-op)."""
    if stream is None:
        yield None
        return
    with stream:
        yield stream
