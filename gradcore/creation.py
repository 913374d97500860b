"""Creation functions: ``tensor``, ``zeros``, ``randn``, ``arange``, ..., ``from_numpy`` and the random seed."""
from __future__ import annotations

import builtins
import math

from . import _dtypes
from . import backend as _backend
from ._dtypes import from_numpy_dtype, get_default_dtype, to_dtype
from .backend import CPU, backend_of, device as _device, get_backend, get_default_device, set_default_device, to_device
from .backend import cuda as _cuda_backend
from .generator import Generator, default_generator
from .tensor import Tensor, _data_to_array, _shape_from_args, make_tensor

__all__ = ["tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "zeros_like", "ones_like",
           "empty_like", "full_like", "rand", "randn", "randint", "rand_like", "randn_like", "randperm", "arange",
           "eye", "linspace", "manual_seed", "seed", "initial_seed", "scalar_tensor", "from_dlpack",
           "set_default_device", "get_default_device"]

# DLPack device types (the DLDeviceType enumeration of dlpack.h) that CuPy, rather than numpy, imports.
_DLPACK_CUDA = 2


def _finish(array, requires_grad: bool) -> Tensor:
    t = make_tensor(array)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer_dtype(array, data) -> _dtypes.dtype:
    """Python numbers take PyTorch's defaults; numpy arrays keep their dtype."""
    if hasattr(data, "dtype") and not isinstance(data, (list, tuple)):
        d = from_numpy_dtype(array.dtype)
        return d
    kind = array.dtype.kind
    if kind == "b":
        return _dtypes.bool_
    if kind in "iu":
        return _dtypes.int64
    if kind == "f":
        return get_default_dtype()
    if array.size == 0:
        return get_default_dtype()
    raise TypeError(f"new(): invalid data type '{array.dtype}'")


def tensor(data, *, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """Constructs a tensor with no autograd history by copying ``data``.

    ``data`` is a number, nested lists, an array or a tensor. Without ``device``, a tensor or a CuPy array keeps its device; other data goes to the default device.
    """
    if device is None and isinstance(data, Tensor):
        device = data.device
    elif device is None and hasattr(data, "__cuda_array_interface__"):
        device = backend_of(data).device
    backend = get_backend(device)
    if isinstance(data, Tensor) or hasattr(data, "__cuda_array_interface__"):
        source = data._data if isinstance(data, Tensor) else data
        array = to_device(source, backend)
        if array is source:
            array = array.copy()
        inferred = from_numpy_dtype(array.dtype)
    else:
        host = CPU.xp.asarray(_data_to_array(data))
        # A requested dtype converts the data directly (0.1 must not pass through the default float32 first).
        inferred = _infer_dtype(host, data) if dtype is None else to_dtype(dtype)
        array = backend.array(host, dtype=inferred.numpy) if backend is CPU else backend.asarray(host, dtype=inferred.numpy)
    target = to_dtype(dtype) if dtype is not None else inferred
    if array.dtype != target.numpy:
        array = array.astype(target.numpy)
    return _finish(array, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Returns ``data`` as a tensor, sharing memory when it already is an array or tensor of the right kind."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype) if (device is not None or dtype is not None) else data
    if hasattr(data, "__array_interface__") or hasattr(data, "__cuda_array_interface__"):
        t = make_tensor(data)
        if device is None and hasattr(data, "__array_interface__"):
            device = get_default_device()  # host arrays go to the default device, device arrays stay put
        return t.to(device=device, dtype=dtype) if (device is not None or dtype is not None) else t
    return tensor(data, dtype=dtype, device=device)


def scalar_tensor(value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return tensor(value, dtype=dtype or get_default_dtype(), device=device, requires_grad=requires_grad)


def from_numpy(array) -> Tensor:
    """Returns a tensor sharing memory with a numpy array (changes to one show in the other)."""
    if not isinstance(array, CPU.xp.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    from_numpy_dtype(array.dtype)  # raises TypeError for unsupported dtypes
    return make_tensor(array)


def from_dlpack(ext_tensor) -> Tensor:
    """Converts a tensor from an external library into a gradcore tensor, sharing its memory (no copy).

    ``ext_tensor`` is any object with ``__dlpack__`` and ``__dlpack_device__`` (a numpy or CuPy array, a
    PyTorch tensor, a gradcore tensor): host memory becomes a CPU tensor, CUDA memory a tensor on the same
    GPU.
    """
    if not hasattr(ext_tensor, "__dlpack__") or not hasattr(ext_tensor, "__dlpack_device__"):
        raise TypeError(
            "from_dlpack() expects an object with __dlpack__ and __dlpack_device__, "
            f"got {type(ext_tensor).__name__}"
        )
    device_type, index = ext_tensor.__dlpack_device__()
    if int(device_type) == _DLPACK_CUDA:
        backend = get_backend(_backend.device("cuda", int(index)))
        with backend.xp.cuda.Device(backend.index):
            array = backend.xp.from_dlpack(ext_tensor)
    else:
        array = CPU.xp.from_dlpack(ext_tensor)  # host memory; numpy raises BufferError for other devices
    from_numpy_dtype(array.dtype)  # raises TypeError for dtypes gradcore does not have
    return make_tensor(array)


def _creation(fill, args, dtype, device, requires_grad, default=None, generator=None):
    shape = _shape_from_args(args)
    d = to_dtype(dtype) if dtype is not None else (default or get_default_dtype())
    backend = _random_backend(device, generator) if generator is not None else get_backend(device)
    return _finish(fill(backend, shape, d.numpy), requires_grad)


def _random_backend(device, generator):
    """The backend whose stream draws the numbers: the generator's own when one is given."""
    if generator is None:
        return get_backend(device)
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a gradcore.Generator, not {type(generator).__name__}")
    if device is not None and _device(device).type != generator.device.type:
        raise RuntimeError(
            f"Expected a '{_device(device).type}' device type for generator but found '{generator.device.type}'"
        )
    return generator._backend


def zeros(*size, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    """Returns a tensor of zeros."""
    return _creation(lambda b, s, d: b.zeros(s, d), size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    """Returns a tensor of ones."""
    return _creation(lambda b, s, d: b.ones(s, d), size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False, out=None, memory_format=None) -> Tensor:
    """Returns an uninitialised tensor."""
    return _creation(lambda b, s, d: b.empty(s, d), size, dtype, device, requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Returns a tensor filled with ``fill_value`` (its dtype follows the value when not given)."""
    default = _dtypes.scalar_dtype(fill_value) if isinstance(fill_value, (int, float, bool)) else None
    return _creation(lambda b, s, d: b.full(s, fill_value, d), (tuple(size),), dtype, device, requires_grad, default)


def _like(input: Tensor, dtype, device):
    return (dtype if dtype is not None else input.dtype), (device if device is not None else input.device)


def zeros_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    d, dev = _like(input, dtype, device)
    return zeros(input.shape, dtype=d, device=dev, requires_grad=requires_grad)


def ones_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    d, dev = _like(input, dtype, device)
    return ones(input.shape, dtype=d, device=dev, requires_grad=requires_grad)


def empty_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    d, dev = _like(input, dtype, device)
    return empty(input.shape, dtype=d, device=dev, requires_grad=requires_grad)


def full_like(input: Tensor, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    d, dev = _like(input, dtype, device)
    return full(input.shape, fill_value, dtype=d, device=dev, requires_grad=requires_grad)


def _random_dtype(dtype, name: str):
    d = to_dtype(dtype) if dtype is not None else get_default_dtype()
    if not d.is_floating_point:
        raise RuntimeError(f"\"{name}\" not implemented for '{d.legacy_name}'")
    return d


def rand(*size, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Returns numbers drawn uniformly from [0, 1)."""
    d = _random_dtype(dtype, "check_uniform_bounds")
    return _creation(lambda b, s, nd: b.rand(s, nd), size, d, device, requires_grad, generator=generator)


def randn(*size, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Returns numbers drawn from the standard normal distribution."""
    d = _random_dtype(dtype, "normal_kernel_cpu")
    return _creation(lambda b, s, nd: b.randn(s, nd), size, d, device, requires_grad, generator=generator)


def rand_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    d, dev = _like(input, dtype, device)
    return rand(input.shape, dtype=d, device=dev, requires_grad=requires_grad)


def randn_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    d, dev = _like(input, dtype, device)
    return randn(input.shape, dtype=d, device=dev, requires_grad=requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad: bool = False) -> Tensor:
    """Returns integers drawn uniformly from [low, high)."""
    if size is None:
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    d = to_dtype(dtype) if dtype is not None else _dtypes.int64
    backend = _random_backend(device, generator)
    return _finish(backend.randint(low, high, tuple(size), d.numpy), requires_grad)


def randperm(n: int, *, generator=None, dtype=None, device=None) -> Tensor:
    """Returns a random permutation of 0 .. n-1."""
    d = to_dtype(dtype) if dtype is not None else _dtypes.int64
    backend = _random_backend(device, generator)
    return make_tensor(backend.asarray(backend.permutation(n), dtype=d.numpy))


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Returns ``start, start+step, ...`` up to (not including) ``end``."""
    if end is None:
        start, end = 0, start
    values = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if dtype is None:
        d = get_default_dtype() if any(isinstance(v, float) for v in values) else _dtypes.int64
    else:
        d = to_dtype(dtype)
    start, end, step = values
    if not all(math.isfinite(v) for v in (start, end)):
        raise RuntimeError(f"unsupported range: {start:g} -> {end:g}")
    if (step > 0 and end < start) or (step < 0 and end > start):
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    n = builtins.max(0, math.ceil((end - start) / step))
    backend = get_backend(device)
    array = backend.arange(0, n, 1, d.numpy if not d.is_floating_point else "float64") * step + start
    return _finish(array.astype(d.numpy), requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Returns ``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    d = to_dtype(dtype) if dtype is not None else get_default_dtype()
    backend = get_backend(device)
    return _finish(backend.linspace(start, end, steps, "float64").astype(d.numpy), requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Returns a 2-d tensor with ones on the diagonal."""
    if n < 0:
        raise RuntimeError(f"n must be greater or equal to 0, got {n}")
    if m is not None and m < 0:
        raise RuntimeError(f"m must be greater or equal to 0, got {m}")
    d = to_dtype(dtype) if dtype is not None else get_default_dtype()
    backend = get_backend(device)
    return _finish(backend.eye(n, n if m is None else m, d.numpy), requires_grad)


def manual_seed(seed: int):
    """Seeds the random generators of every device (CPU, and CUDA when available)."""
    seed = int(seed)
    CPU.manual_seed(seed)
    if _cuda_backend.is_available():
        for index in range(_cuda_backend.device_count()):
            _cuda_backend.get_backend(index).manual_seed(seed)
    return default_generator


def seed() -> int:
    """Seeds the generators with a non-deterministic number and returns it."""
    value = int(CPU.xp.random.SeedSequence().entropy % (2**63))
    manual_seed(value)
    return value


def initial_seed() -> int:
    """Returns the seed of the CPU generator."""
    return CPU.initial_seed()


def _legacy_class(name: str, dtype) -> type:
    """The legacy typed constructors: ``FloatTensor([1, 2])``, ``IntTensor(2, 4)``."""
    return type(name, (Tensor,), {"__slots__": (), "_legacy_dtype": dtype, "__module__": "gradcore"})


FloatTensor = _legacy_class("FloatTensor", _dtypes.float32)
DoubleTensor = _legacy_class("DoubleTensor", _dtypes.float64)
HalfTensor = _legacy_class("HalfTensor", _dtypes.float16)
LongTensor = _legacy_class("LongTensor", _dtypes.int64)
IntTensor = _legacy_class("IntTensor", _dtypes.int32)
ShortTensor = _legacy_class("ShortTensor", _dtypes.int16)
CharTensor = _legacy_class("CharTensor", _dtypes.int8)
ByteTensor = _legacy_class("ByteTensor", _dtypes.uint8)
BoolTensor = _legacy_class("BoolTensor", _dtypes.bool_)

_ = backend_of
