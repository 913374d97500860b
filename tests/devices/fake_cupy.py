"""A stand-in for CuPy, so that the CUDA backend's code paths run on a machine without a GPU.

"GPU" arrays are numpy arrays of a distinct subclass, ``ndarray``, that remembers the fake device it lives on.
Like CuPy's arrays they refuse to meet plain numpy arrays in an operation (TypeError), reductions give 0-d
arrays rather than scalars, they expose ``__cuda_array_interface__``, ``.device.id``, ``.data.ptr`` and a CUDA
DLPack device, and numpy functions called on them dispatch to this module (as CuPy's ``__array_function__``
does). So a tensor moved to "cuda" really lives in another array type: an op that forgets a transfer, mixes
devices or calls numpy on device memory where CuPy would fail fails here too.

Streams and CUDA graphs: ``cuda.Stream`` (``with stream:`` makes it current) can ``begin_capture()``; while
the current stream captures, every device operation is recorded and, as on a GPU, not run: ufuncs (``out=``
included), module functions, methods that compute (``astype``, ``copy``, reductions, ``@`` ...),
``__setitem__`` and the kernel launches that the emulated launcher hands to ``launch_on_current_stream``. To
know a result's shape and dtype the double does compute it during the capture, then puts back every array the
operation was given (so nothing it wrote stays written) and fills the fresh result with garbage (NaN, all-ones
bits), the uninitialized memory of a GPU; a kernel launch is only recorded. ``end_capture()`` returns a
``cuda.graph.Graph`` whose ``launch()`` runs the recorded operations in order on the same arrays: an operation
that wrote into an array writes into it, and one whose result was a fresh array writes its new result into
that same array (the static addresses of a CUDA graph). Views need no recording (they are the same memory),
nor does ``empty`` (it writes nothing). ``counters`` counts what ran: ``"operations"`` (device operations run
one by one, kernel launches included), ``"kernel_launches"`` (of those, launches through
``launch_on_current_stream``) and ``"graph_launches"``; what a graph launch runs is not counted again. What
CUDA forbids during capture raises ``cuda.runtime.CUDARuntimeError`` as on a GPU and invalidates the capture
(``end_capture`` then raises ``cudaErrorStreamCaptureInvalidated``): synchronizing, reading device values on
the host (``get``, ``asnumpy``, ``float``/``int``/``bool``, ``item``, ``tolist``), copying host data to the
device (``asarray`` of numpy arrays, lists or Python numbers, host index arrays, host values assigned with
``__setitem__``: CUDA refuses a copy from pageable memory, and one from CuPy's pinned staging buffer would be
replayed from a buffer reused since), and work on the legacy default stream while a capture runs
(``cudaErrorStreamCaptureImplicit``).

What it cannot check (a GPU run, ``pytest --device cuda``, does): CuPy's own kernels, numerics, dtype rules;
functions numpy has and CuPy lacks (only ``errstate`` is hidden); ``numpy.asarray`` on device memory (numpy
accepts an ndarray subclass silently, CuPy raises); asynchrony between streams (everything runs at once, in
program order) and real memory accounting (the memory pool reports 0 bytes; a graph keeps every array it
touches alive, where a GPU graph needs its memory kept alive by its owner); peer copies between GPUs.
"""
from __future__ import annotations

import collections
import contextlib
import ctypes
import itertools
import time
import types
from typing import Callable

import numpy as np

__version__ = "0.0-fake"

_state = {"current": 0, "count": 1}

#: What ran on the fake devices (see the module docstring); ``reset`` clears it.
counters: collections.Counter = collections.Counter()

# Names of numpy that CuPy does not have, hidden so that code relying on them fails here as on a GPU.
_MISSING_IN_CUPY = {"errstate", "seterr", "geterr"}

# Creation functions copy host data to the device; every other function refuses host arrays, as CuPy does.
_ACCEPT_HOST = {"asarray", "array", "ascontiguousarray"}


class Device:
    """``cupy.cuda.Device``: a device index, and a context manager that makes it current."""

    def __init__(self, device=None) -> None:
        self.id = _state["current"] if device is None else int(device)
        if not 0 <= self.id < _state["count"]:
            raise RuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {self.id}")

    def __enter__(self):
        self._previous = _state["current"]
        _state["current"] = self.id
        return self

    def __exit__(self, *exc) -> None:
        _state["current"] = self._previous

    def synchronize(self) -> None:
        _refuse_during_capture()


# -- streams and stream capture ------------------------------------------------------------------------------

class CUDARuntimeError(RuntimeError):
    """``cupy.cuda.runtime.CUDARuntimeError``: a CUDA runtime call failed with ``status``."""

    _MESSAGES = {
        401: "cudaErrorIllegalState: the operation cannot be performed in the present state",
        900: "cudaErrorStreamCaptureUnsupported: operation not permitted when stream is capturing",
        901: "cudaErrorStreamCaptureInvalidated: operation failed due to a previous error during capture",
        906: "cudaErrorStreamCaptureImplicit: operation would make the legacy stream depend on a capturing "
             "blocking stream",
    }

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(self._MESSAGES.get(status, f"cudaError {status}"))


_ILLEGAL_STATE, _CAPTURE_UNSUPPORTED, _CAPTURE_INVALIDATED, _CAPTURE_IMPLICIT = 401, 900, 901, 906
_STREAM_CAPTURE_MODES = {"global": 0, "thread_local": 1, "relaxed": 2}  # cudaStreamCaptureMode values
_stream_handles = itertools.count(1)
_current_streams: list = []  # the streams made current by ``with stream:`` / ``use()``, innermost last
_capturing_streams: list = []  # the streams that capture now


class Stream:
    """``cupy.cuda.Stream``: a queue of device work that can be captured into a CUDA graph.

    The double runs every operation at once, so a stream only decides whether an operation is recorded: it is
    when the current stream captures.
    """

    null: Stream  # the legacy default stream (set below)

    def __init__(self, null: bool = False, non_blocking: bool = False, ptds: bool = False,
                 priority=None) -> None:
        self.ptr = 0 if null else next(_stream_handles)
        self.device_id = -1 if null else _state["current"]
        self.non_blocking = non_blocking
        self.priority = priority
        self._recorded: list | None = None  # the operations recorded since begin_capture, while capturing
        self._invalidated = False
        self._capture_mode: int | None = None

    def __repr__(self) -> str:
        return f"<Stream {self.ptr} (device {self.device_id})>"

    def __enter__(self) -> Stream:
        _current_streams.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _current_streams.pop()

    def use(self) -> Stream:
        """Makes this stream current (until another ``use`` or the end of an enclosing ``with``)."""
        if _current_streams:
            _current_streams[-1] = self
        else:
            _current_streams.append(self)
        return self

    def synchronize(self) -> None:
        """Waits for the stream's work; refused while a capture runs (cudaStreamSynchronize)."""
        _refuse_during_capture()

    @property
    def done(self) -> bool:
        _refuse_during_capture()
        return True

    def record(self, event: Event | None = None) -> Event:
        event = Event() if event is None else event
        event.record(self)
        return event

    def wait_event(self, event: Event) -> None:
        pass  # the double runs everything in program order already

    def is_capturing(self) -> bool:
        return self._recorded is not None

    def begin_capture(self, mode: int | None = None) -> None:
        """Starts recording the operations queued on this stream (the default mode is relaxed, as in CuPy)."""
        if self.ptr == 0:
            raise CUDARuntimeError(_CAPTURE_UNSUPPORTED)  # the legacy stream cannot capture
        if self._recorded is not None:
            raise CUDARuntimeError(_ILLEGAL_STATE)
        self._capture_mode = _STREAM_CAPTURE_MODES["relaxed"] if mode is None else int(mode)
        self._recorded, self._invalidated = [], False
        _capturing_streams.append(self)

    def end_capture(self) -> Graph:
        """Stops recording and returns the graph of the recorded operations (raises if the capture failed)."""
        if self._recorded is None:
            raise CUDARuntimeError(_ILLEGAL_STATE)
        recorded, self._recorded = self._recorded, None
        _capturing_streams.remove(self)
        if self._invalidated:
            raise CUDARuntimeError(_CAPTURE_INVALIDATED)
        return Graph(recorded)


Stream.null = Stream(null=True)


def get_current_stream(device_id: int = -1) -> Stream:
    """``cupy.cuda.get_current_stream``: the innermost stream made current, else the legacy default stream."""
    return _current_streams[-1] if _current_streams else Stream.null


def _refuse_during_capture() -> None:
    """Raises what CUDA raises for a synchronizing call (a host transfer, a sync) while a capture runs, and
    invalidates the captures, as CUDA does."""
    if _capturing_streams:
        for stream in _capturing_streams:
            stream._invalidated = True
        raise CUDARuntimeError(_CAPTURE_UNSUPPORTED)


def _capturing_stream() -> Stream | None:
    """Returns the current stream when it captures; None when nothing is being captured on it. Work on the
    legacy default stream while another stream captures raises (cudaErrorStreamCaptureImplicit)."""
    if not _capturing_streams:
        return None
    stream = get_current_stream()
    if stream._recorded is not None:
        return stream
    if stream.ptr == 0:
        for capturing in _capturing_streams:
            capturing._invalidated = True
        raise CUDARuntimeError(_CAPTURE_IMPLICIT)
    return None


def _arrays_in(value) -> list:
    """Returns the numpy arrays in (nested) values, in order."""
    if isinstance(value, np.ndarray):
        return [value.view(np.ndarray)]
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in _arrays_in(v)]
    if isinstance(value, dict):
        return [a for v in value.values() for a in _arrays_in(v)]
    return []


class _RecordedOperation:
    """One device operation of a capture: ``run`` does it; results that were fresh arrays at capture receive
    the new values, so that later operations (and the user) find them at the same address."""

    def __init__(self, run: Callable, result, operands) -> None:
        self.run = run
        self.name = getattr(run, "__name__", "operation")
        inputs = _arrays_in(operands)
        # A result that shares memory with an operand is a view or an ``out=``: running again updates it.
        self.fresh = [(position, value) for position, value in enumerate(_flat_values(result))
                      if isinstance(value, np.ndarray)
                      and not any(np.may_share_memory(value.view(np.ndarray), operand) for operand in inputs)]

    def __call__(self) -> None:
        result = self.run()
        if self.fresh:
            values = _flat_values(result)
            for position, array in self.fresh:
                np.copyto(array.view(np.ndarray), values[position], casting="unsafe")


def _flat_values(value) -> list:
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in _flat_values(v)]
    return [value]


def _execute(run: Callable, operands=(), result_of: Callable = lambda value: value):
    """Runs a device operation and returns ``result_of`` its value; while the current stream captures, records
    it instead: the operation is computed only for the shape of its result, every array among ``operands``
    gets its values back, and a fresh result is filled with garbage (see the module docstring)."""
    stream = _capturing_stream() if _capturing_streams else None
    if stream is None:
        counters["operations"] += 1
        return result_of(run())
    saved = [(array, array.copy()) for array in _arrays_in(operands) if array.flags.writeable]
    try:
        result = result_of(run())
    finally:
        for array, values in saved:
            np.copyto(array, values)
    operation = _RecordedOperation(run, result, operands)
    for _, array in operation.fresh:
        _poison(array.view(np.ndarray))
    stream._recorded.append(operation)
    return result


def _poison(array: np.ndarray) -> None:
    """Fills an array with what uninitialized device memory may hold: NaN, all-ones bits, True."""
    if array.dtype.kind in "fc":
        array[...] = np.nan
    elif array.dtype.kind == "b":
        array[...] = True
    elif array.dtype.kind in "iu":
        array[...] = -1 if array.dtype.kind == "i" else np.iinfo(array.dtype).max


def launch_on_current_stream(launch: Callable[[], None]) -> None:
    """Runs a kernel launch now or, when the current stream captures, records it without running it (how a
    ``cuLaunchKernel`` on the current stream becomes a node of a CUDA graph). The emulated kernel launcher
    launches through this."""
    stream = _capturing_stream()  # a launch on the legacy stream during a capture raises before it runs
    if stream is None:
        counters["operations"] += 1
        counters["kernel_launches"] += 1
        launch()
    else:
        stream._recorded.append(_RecordedOperation(launch, None, ()))


class Graph:
    """``cupy.cuda.graph.Graph``: the operations recorded by a stream capture, run again by ``launch``."""

    def __init__(self, operations: list) -> None:
        self._operations = tuple(operations)

    def __len__(self) -> int:
        return len(self._operations)

    def launch(self, stream: Stream | None = None) -> None:
        """Runs the recorded operations in order (itself recorded when launched inside another capture)."""
        with contextlib.nullcontext() if stream is None else stream:
            capturing = _capturing_stream()
            if capturing is None:
                counters["graph_launches"] += 1
                self._replay()
            else:
                capturing._recorded.append(_RecordedOperation(self._replay, None, ()))

    def _replay(self) -> None:
        for operation in self._operations:
            operation()

    def upload(self, stream: Stream | None = None) -> None:
        pass

    def debug_dot_str(self, flags: int = 0) -> str:
        """Returns a DOT digraph with one node per recorded operation, chained in order."""
        lines = ["digraph CapturedGraph {"]
        for index, operation in enumerate(self._operations):
            lines.append(f'  op{index} [label="{operation.name}"];')
            if index:
                lines.append(f"  op{index - 1} -> op{index};")
        return "\n".join(lines + ["}"])


class MemoryPool:
    """``cupy.cuda.MemoryPool``: numpy allocates the double's memory, so the pool only answers queries."""

    def malloc(self, size: int) -> _Pointer:
        return _Pointer(0)

    def used_bytes(self) -> int:
        return 0

    def total_bytes(self) -> int:
        return 0

    def free_all_blocks(self) -> None:
        pass


_allocators: list = []  # the allocators made current by ``using_allocator``, innermost last


@contextlib.contextmanager
def using_allocator(allocator=None):
    """``cupy.cuda.using_allocator``: makes ``allocator`` the thread's allocator inside the block."""
    _allocators.append(allocator)
    try:
        yield
    finally:
        _allocators.pop()


def get_allocator():
    return _allocators[-1] if _allocators else _pool.malloc


class _Pointer:
    def __init__(self, ptr: int) -> None:
        self.ptr = ptr

    def copy_from_device(self, src: _Pointer, size: int) -> None:
        """Copies ``size`` bytes from another device pointer (``cupy.cuda.MemoryPointer.copy_from_device``;
        unchecked, as there)."""
        ctypes.memmove(self.ptr, src.ptr, size)


class _FakeCudaCapsule:
    """What ``__dlpack__`` of a fake array returns: numpy and PyTorch cannot import it (as device memory)."""

    def __init__(self, array) -> None:
        self.array = array


def _device_of(values, found=None):
    """Returns the one fake device among (nested) values, or None; raises when arrays of two devices meet."""
    for v in values:
        if isinstance(v, ndarray):
            if found is not None and found != v._device_id:
                raise ValueError("Array device must be same as the current device: "
                                 f"array device = {v._device_id} while current = {found}")
            found = v._device_id
        elif isinstance(v, (list, tuple)):
            found = _device_of(v, found)
    return found


def _unwrap(value, accept_host: bool = False):
    """Returns the numpy view of fake arrays (recursively); numpy arrays raise unless host data is allowed."""
    if isinstance(value, ndarray):
        return value.view(np.ndarray)
    if isinstance(value, np.ndarray) and not accept_host:
        raise TypeError(f"Unsupported type {type(value)}")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, accept_host) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, accept_host) for k, v in value.items()}
    return value


def _holds_host_array(value) -> bool:
    """Whether (nested) values hold a numpy array that is not device memory."""
    if isinstance(value, np.ndarray):
        return not isinstance(value, ndarray)
    if isinstance(value, (list, tuple)):
        return any(_holds_host_array(v) for v in value)
    return False


def _run_quietly(function, *args, **kwargs):
    with np.errstate(all="ignore"):  # CuPy returns inf and nan without warnings
        return function(*args, **kwargs)


# Functions and methods that allocate without writing: nothing to do again at a replay.
_WRITES_NOTHING = {"empty", "empty_like"}
# ndarray methods that numpy implements in C (so that neither __array_ufunc__ nor __array_function__ sees
# them) and that compute: each runs on the numpy view, gives a device array, and is recorded during a capture.
_COMPUTING_METHODS = ("astype", "reshape", "ravel", "flatten", "fill", "dot", "take", "repeat", "sort",
                      "argsort", "cumsum", "cumprod", "round", "argmax", "argmin", "nonzero", "transpose",
                      "swapaxes", "squeeze", "diagonal", "conj", "clip", "max", "min", "sum", "mean", "prod",
                      "any", "all", "std", "var")
# Methods that read device memory on the host: a synchronizing copy, refused during a capture.
_HOST_READS = ("item", "tolist", "__float__", "__int__", "__index__", "__bool__", "__complex__")


def _wrap(value, device: int | None):
    """Returns numpy results as fake arrays on ``device`` (numpy scalars become 0-d arrays, as in CuPy)."""
    if isinstance(value, (np.ndarray, np.generic)):
        out = np.asarray(value).view(ndarray)
        out._device_id = _state["current"] if device is None else device
        return out
    if isinstance(value, (list, tuple)):
        return type(value)(_wrap(v, device) for v in value)
    return value


class ndarray(np.ndarray):
    """A "device" array: numpy memory tagged with a fake GPU index."""

    _device_id = 0

    def __array_finalize__(self, obj) -> None:
        self._device_id = getattr(obj, "_device_id", _state["current"])

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out", ())
        device = _device_of(inputs + tuple(out))
        arrays, options = _unwrap(inputs), _unwrap(kwargs)

        def run():
            return _run_quietly(getattr(ufunc, method), *arrays, **options)

        run.__name__ = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"

        def result_of(value):
            if method == "at":
                return None
            if out:
                return out[0] if len(out) == 1 else out
            return _wrap(value, device)

        return _execute(run, (arrays, options), result_of)

    def __array_function__(self, func, types, args, kwargs):
        device = _device_of(args + tuple(kwargs.values()))
        arguments, options = _unwrap(args), _unwrap(kwargs)

        def run():
            return _run_quietly(func, *arguments, **options)

        run.__name__ = func.__name__
        if func.__name__ in _WRITES_NOTHING:
            return _wrap(run(), device)
        return _execute(run, (arguments, options), lambda value: _wrap(value, device))

    def __getitem__(self, key):
        if _capturing_streams and _holds_host_array(key):
            _refuse_during_capture()  # a host index array is copied to the device first
        source, index = self.view(np.ndarray), _unwrap(key, accept_host=True)

        def run():
            return source[index]

        run.__name__ = "getitem"
        return _execute(run, (source, index), lambda value: _wrap(value, self._device_id))

    def __setitem__(self, key, value) -> None:
        if _capturing_streams and (_holds_host_array(key) or _holds_host_array(value)):
            _refuse_during_capture()  # host data is copied to the device first
        target, index = self.view(np.ndarray), _unwrap(key, accept_host=True)
        values = _unwrap(value, accept_host=True)

        def run():
            target[index] = values

        run.__name__ = "setitem"
        _execute(run, (target, index, values))

    def copy(self, order="C"):
        """Returns a copy on the current device (how CuPy copies between GPUs)."""
        source = self.view(np.ndarray)

        def run():
            return source.copy(order=order)

        run.__name__ = "copy"
        return _execute(run, source, lambda value: _wrap(value, _state["current"]))

    def _compute(self, name: str, args: tuple, kwargs: dict):
        """Runs ndarray method ``name`` on the numpy view: a device array (or None) as result, recorded."""
        source = self.view(np.ndarray)
        method = getattr(source, name)
        arguments, options = _unwrap(args), _unwrap(kwargs)

        def run():
            return _run_quietly(method, *arguments, **options)

        run.__name__ = name
        return _execute(run, (source, arguments, options), lambda value: _wrap(value, self._device_id))

    def _read_on_host(self, name: str, args: tuple):
        _refuse_during_capture()
        return getattr(self.view(np.ndarray), name)(*args)

    @property
    def device(self) -> Device:
        return Device(self._device_id)

    @property
    def data(self) -> _Pointer:
        return _Pointer(self.__array_interface__["data"][0])

    @property
    def __cuda_array_interface__(self) -> dict:
        return dict(self.__array_interface__, version=3)

    def set(self, arr, stream=None) -> None:
        """Copies a host array of the same shape and dtype into this array (``cupy.ndarray.set``)."""
        _refuse_during_capture()
        if not isinstance(arr, np.ndarray) or isinstance(arr, ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, not {type(arr).__name__}")
        if arr.shape != self.shape or arr.dtype != self.dtype:
            raise ValueError(f"Shape or dtype mismatch: {arr.shape} {arr.dtype} into {self.shape} {self.dtype}")
        counters["operations"] += 1
        np.copyto(self.view(np.ndarray), arr)

    def get(self, stream=None, order="C", out=None) -> np.ndarray:
        """Returns a host copy (``cupy.ndarray.get``)."""
        _refuse_during_capture()
        return self.view(np.ndarray).copy()

    def __dlpack_device__(self) -> tuple:
        return (2, self._device_id)  # kDLCUDA

    def __dlpack__(self, **kwargs):
        return _FakeCudaCapsule(self)


def _computing_method(name: str):
    def method(self, *args, **kwargs):
        return self._compute(name, args, kwargs)

    method.__name__ = name
    return method


def _host_read(name: str):
    def method(self, *args):
        return self._read_on_host(name, args)

    method.__name__ = name
    return method


for _name in _COMPUTING_METHODS:
    setattr(ndarray, _name, _computing_method(_name))
for _name in _HOST_READS:
    setattr(ndarray, _name, _host_read(_name))


def asnumpy(array) -> np.ndarray:
    """Returns a host copy of a fake array (a numpy array unchanged)."""
    return array.get() if isinstance(array, ndarray) else np.asarray(array)


def from_dlpack(obj):
    """Imports a fake device array through DLPack without a copy; host memory is refused."""
    capsule = obj.__dlpack__()
    if not isinstance(capsule, _FakeCudaCapsule):
        # BufferError, not TypeError: the DLPack protocol's error for memory a consumer cannot import.
        raise BufferError("fake CuPy imports only fake device memory through DLPack")  # noqa: TRY004
    return capsule.array.view(ndarray)


_pool = MemoryPool()


def get_default_memory_pool() -> MemoryPool:
    return _pool


class _RandomState:
    """``cupy.random.RandomState``: numpy's PCG64 stream, on the current fake device."""

    def __init__(self, seed=None) -> None:
        self._generator = np.random.Generator(np.random.PCG64(seed))

    def random_sample(self, size=None, dtype=float):
        return _draw(lambda: self._generator.random(size, dtype=dtype))

    def standard_normal(self, size=None, dtype=float):
        return _draw(lambda: self._generator.standard_normal(size, dtype=dtype))

    def randint(self, low, high=None, size=None, dtype=int):
        return _draw(lambda: self._generator.integers(low, high, size=size, dtype=dtype))

    def permutation(self, n):
        return _draw(lambda: self._generator.permutation(n))


class _Generator:
    """``cupy.random.Generator`` (what ``cupy.random.default_rng`` returns): numpy's, on the current fake device."""

    def __init__(self, seed=None) -> None:
        self._generator = np.random.default_rng(seed)

    def random(self, size=None, dtype=np.float64):
        return _draw(lambda: self._generator.random(size, dtype=dtype))

    def standard_normal(self, size=None, dtype=np.float64):
        return _draw(lambda: self._generator.standard_normal(size, dtype=dtype))

    def integers(self, low, high=None, size=None, dtype=np.int64):
        return _draw(lambda: self._generator.integers(low, high, size=size, dtype=dtype))


class Event:
    """``cupy.cuda.Event``: records the host clock (the double computes synchronously, so it has finished)."""

    def __init__(self) -> None:
        self._time = None

    def record(self, stream=None) -> None:
        self._time = time.perf_counter()

    def synchronize(self) -> None:
        _refuse_during_capture()


def get_elapsed_time(start: Event, end: Event) -> float:
    """Milliseconds between two recorded events (``cupy.cuda.get_elapsed_time``)."""
    _refuse_during_capture()
    if start._time is None or end._time is None:
        raise RuntimeError("cudaErrorInvalidResourceHandle: an event was not recorded")
    return (end._time - start._time) * 1e3


def _draw(draw: Callable):
    """Returns a random draw as a device array; recorded during a capture, so that each replay draws anew."""
    return _execute(draw, (), lambda value: _wrap(value, None))


def _device_properties(index: int) -> dict:
    """``cupy.cuda.runtime.getDeviceProperties``: the few fields a caller may print, for a pretend device."""
    Device(index)  # an invalid ordinal raises, as on a GPU
    return {"name": b"fake CUDA device (CuPy test double)", "major": 0, "minor": 0, "multiProcessorCount": 2,
            "totalGlobalMem": 0}


def _get_device_count() -> int:
    return _state["count"]


def _get_device() -> int:
    return _state["current"]


def _set_device(index: int) -> None:
    _state["current"] = Device(index).id


cuda = types.SimpleNamespace(
    Device=Device,
    Event=Event,
    Stream=Stream,
    get_current_stream=get_current_stream,
    get_elapsed_time=get_elapsed_time,
    graph=types.SimpleNamespace(Graph=Graph),
    MemoryPool=MemoryPool,
    using_allocator=using_allocator,
    get_allocator=get_allocator,
    runtime=types.SimpleNamespace(getDeviceCount=_get_device_count, getDevice=_get_device,
                                  setDevice=_set_device, getDeviceProperties=_device_properties,
                                  driverGetVersion=lambda: 0, runtimeGetVersion=lambda: 0,
                                  CUDARuntimeError=CUDARuntimeError,
                                  streamCaptureModeGlobal=_STREAM_CAPTURE_MODES["global"],
                                  streamCaptureModeThreadLocal=_STREAM_CAPTURE_MODES["thread_local"],
                                  streamCaptureModeRelaxed=_STREAM_CAPTURE_MODES["relaxed"]),
)
random = types.SimpleNamespace(RandomState=_RandomState, default_rng=_Generator)
cupyx = types.SimpleNamespace(scatter_add=lambda target, index, values: np.add.at(target, index, values))


def _function(name: str, function):
    """Wraps a numpy function so that it takes and returns fake arrays (host arrays only for creation)."""
    accept_host = name in _ACCEPT_HOST

    def call(*args, **kwargs):
        device = _device_of(args + tuple(kwargs.values()))
        if _capturing_streams and accept_host and args and not isinstance(args[0], ndarray):
            _refuse_during_capture()  # numpy arrays, lists and Python numbers are host data
        if accept_host and args and type(args[0]) is np.ndarray:
            args = (args[0].copy(),) + args[1:]  # host data is copied to the device, never shared
        arguments, options = _unwrap(args, accept_host), _unwrap(kwargs, accept_host)

        def run():
            return _run_quietly(function, *arguments, **options)

        run.__name__ = name
        if name in _WRITES_NOTHING:
            return _wrap(run(), device)
        return _execute(run, (arguments, options), lambda value: _wrap(value, device))

    call.__name__ = name
    return call


def broadcast_to(array, shape):
    """Like CuPy's, a writable view (numpy's broadcast_to is read-only); repeated elements share memory."""
    data = _unwrap(array)
    lead = len(shape) - data.ndim
    strides = (0,) * lead + tuple(0 if size == 1 and target != 1 else stride
                                  for size, target, stride in zip(data.shape, tuple(shape)[lead:], data.strides))
    return _wrap(np.lib.stride_tricks.as_strided(data, shape=tuple(shape), strides=strides), array._device_id)


def as_strided(x, shape=None, strides=None):
    """``cupy.lib.stride_tricks.as_strided``: a view of a device array's memory with the given shape and strides
    (in bytes), unchecked as in CuPy; host arrays are refused."""
    if not isinstance(x, ndarray):
        raise TypeError(f"Unsupported type {type(x)}")
    data = x.view(np.ndarray)
    view = np.lib.stride_tricks.as_strided(data, shape=x.shape if shape is None else tuple(shape),
                                           strides=x.strides if strides is None else tuple(strides))
    return _wrap(view, x._device_id)


lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(as_strided=as_strided))


def __getattr__(name: str):
    # Everything else is numpy's: dtypes and ufuncs as they are (ufuncs reach fake arrays through
    # __array_ufunc__), functions wrapped so that results are device arrays.
    if name in _MISSING_IN_CUPY or name.startswith("__"):
        raise AttributeError(f"module 'cupy' (test double) has no attribute '{name}'")
    attr = getattr(np, name)
    if isinstance(attr, (type, np.ufunc)) or not callable(attr):
        return attr
    return _function(name, attr)


def reset(count: int = 1) -> None:
    """Starts afresh with ``count`` fake GPUs, device 0 current, the default stream current and no capture."""
    _state["current"], _state["count"] = 0, count
    counters.clear()
    _current_streams.clear()
    _allocators.clear()
    for stream in list(_capturing_streams):
        stream._recorded = None
    _capturing_streams.clear()
