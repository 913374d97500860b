"""``Tensor``: a thin header over a backend array (data, grad, grad_fn, version counter, device).

Every operator and method delegates to an op in ``gradcore.ops``; this file holds what is the
tensor's own: its attributes, conversions, autograd bookkeeping and the in-place machinery.
"""
from __future__ import annotations

import math
import warnings
import weakref
from typing import Any

from . import _dtypes
from ._arg_errors import refuses_keepdim_and_keepdims as _refuses_keepdim_and_keepdims
from ._keepdim import KEEPDIM_NOT_GIVEN
from ._dtypes import can_cast, from_numpy_dtype, result_type, to_dtype
from .autograd import function as _function
from .autograd.grad_mode import enable_grad, no_grad, state as _grad_state
from .backend import CPU, CPU_ARRAY as _ndarray, array_module, backend_of, device as _device, get_backend, to_device

__all__ = ["Tensor", "Size", "make_tensor"]

_CPU_DEVICE = _device("cpu")


class _VersionCounter:
    """Counts in-place changes; shared by a tensor, its views and its detached aliases."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Size(tuple):
    """The shape of a tensor: a tuple of ints."""

    def __repr__(self) -> str:
        return f"gradcore.Size({list(self)})"

    def numel(self) -> int:
        """Returns the number of elements a tensor of this shape holds."""
        return math.prod(self)

    def __getitem__(self, item):
        result = tuple.__getitem__(self, item)
        return Size(result) if isinstance(item, slice) else result

    def __add__(self, other):
        return Size(tuple.__add__(self, tuple(other)))


def _coerce(data):
    """Returns a proper backend array for what an op produced (numpy turns 0-d results into scalars)."""
    if hasattr(data, "__cuda_array_interface__") or isinstance(data, _ndarray):
        return data  # a device array, or a numpy array of a subclass (traced by a capture)
    return CPU.xp.asarray(data)


_new = object.__new__


def make_tensor(data, requires_grad: bool = False) -> "Tensor":
    """Wraps a backend array in a new tensor without copying (the fast internal constructor)."""
    if data.__class__ is not _ndarray:
        data = _coerce(data)
    t = _new(Tensor)
    t._data = data
    t._requires_grad = requires_grad
    t._grad_fn = None
    t._output_nr = 0
    t._version_counter = _VersionCounter()
    t._base = None
    t._grad = None
    t._backward_hooks = None
    t._accumulator_ref = None
    t._post_accumulate_grad_hooks = None
    return t


def _shape_from_args(args) -> tuple:
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    for a in args:
        if not isinstance(a, int) or isinstance(a, bool):
            raise TypeError(f"expected a sequence of ints for the size, but got an element of type {type(a).__name__}")
        if a < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {a}: {list(args)}")
    return tuple(args)


class Tensor:
    """A multi-dimensional array that can record the operations applied to it for automatic differentiation."""

    # "__dict__" lets users attach attributes (``p.tag = ...``) as PyTorch's tensors do; the dict is only
    # created when the first one is set, so tensors without them cost one pointer more.
    __slots__ = ("_data", "_requires_grad", "_grad_fn", "_output_nr", "_version_counter", "_base", "_view_chain",
                 "_view_base_fn", "_grad", "_backward_hooks", "_accumulator_ref", "_post_accumulate_grad_hooks",
                 "__dict__", "__weakref__")
    __array_priority__ = 1000
    __array_ufunc__ = None  # numpy defers to our reflected operators: ndarray * tensor gives a tensor
    _legacy_dtype: Any = None

    def __init__(self, *args, **kwargs) -> None:
        # The legacy constructor: Tensor(sizes...) or Tensor(data), always of the default dtype (or the
        # subclass's, for FloatTensor and friends).
        dtype = self._legacy_dtype or _dtypes.get_default_dtype()
        device = kwargs.pop("device", None)
        if kwargs:
            raise TypeError(f"Tensor(): unexpected keyword arguments {sorted(kwargs)}")
        backend = get_backend(device)
        if len(args) == 1 and not isinstance(args[0], int):
            data = args[0]
            if isinstance(data, Tensor):
                data = data._data
            array = backend.array(_data_to_array(data), dtype=dtype.numpy)
        else:
            shape = _shape_from_args(args)
            array = backend.zeros(shape, dtype.numpy)
        fresh = make_tensor(array)
        for name in Tensor.__slots__[:-2]:
            if name not in ("_view_chain", "_view_base_fn"):
                object.__setattr__(self, name, getattr(fresh, name))

    # -- attributes -----------------------------------------------------------------------------
    @property
    def data(self) -> "Tensor":
        """The same memory as a tensor outside the graph, with its own version counter."""
        return make_tensor(self._data)

    @data.setter
    def data(self, value: "Tensor") -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(value).__name__}")
        self._data = value._data

    @property
    def grad(self):
        """The gradient accumulated by backward (None until then)."""
        if self._grad is None and self._grad_fn is not None and not self.retains_grad:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad attribute "
                "won't be populated during autograd.backward(). If you indeed want the .grad field to be populated "
                "for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor.",
                UserWarning,
                stacklevel=2,
            )
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type {type(value).__name__}")
            if value.shape != self.shape:
                raise RuntimeError(
                    f"assigned grad has data of a different size: grad {list(value.shape)} vs tensor {list(self.shape)}"
                )
            if value.dtype is not self.dtype:
                raise RuntimeError(f"assigned grad has data of a different type: {value.dtype} vs {self.dtype}")
            if value._data.__class__ is not self._data.__class__ or value.device != self.device:
                raise RuntimeError(f"assigned grad has data located on a different device: {value.device} vs {self.device}")
        self._grad = value

    @grad.deleter
    def grad(self) -> None:
        self._grad = None

    @property
    def requires_grad(self) -> bool:
        """Whether operations on this tensor are recorded for differentiation."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    @property
    def grad_fn(self):
        """The backward node of the op that made this tensor (None for leaves)."""
        if self._base is not None:
            self._refresh_view_history()
        return self._grad_fn

    @property
    def is_leaf(self) -> bool:
        """True for tensors not made by a recorded op (user-created, or not requiring grad)."""
        return self.grad_fn is None

    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    @property
    def dtype(self) -> _dtypes.dtype:
        return from_numpy_dtype(self._data.dtype)

    @property
    def device(self) -> _device:
        if self._data.__class__ is _ndarray:
            return _CPU_DEVICE
        return backend_of(self._data).device

    @property
    def _backend(self):
        return backend_of(self._data)

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def _version(self) -> int:
        return self._version_counter.value

    @property
    def T(self) -> "Tensor":
        """The tensor with its dims reversed."""
        return _shape.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self) -> "Tensor":
        """The tensor with its last two dims swapped."""
        return _shape.transpose(self, -2, -1)

    @property
    def retains_grad(self) -> bool:
        """True when ``retain_grad()`` was called on this non-leaf tensor."""
        fn = self._grad_fn
        if fn is None or not fn._retained:
            return False
        ref = fn._retained.get(self._output_nr)
        return ref is not None and ref() is self

    @property
    def itemsize(self) -> int:
        return self._data.itemsize

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    @property
    def names(self):
        return (None,) * self.ndim

    # -- sizes ----------------------------------------------------------------------------------
    def size(self, dim: int | None = None):
        """Returns the shape, or the size of one dim."""
        if dim is None:
            return Size(self._data.shape)
        if self._data.ndim == 0 and isinstance(dim, int):
            raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
        return self._data.shape[_util.normalize_dim(dim, self.ndim)]

    def dim(self) -> int:
        """Returns the number of dims."""
        return self._data.ndim

    def numel(self) -> int:
        """Returns the number of elements."""
        return self._data.size

    nelement = numel

    def element_size(self) -> int:
        return self._data.itemsize

    def stride(self, dim: int | None = None):
        """Returns the strides in elements (or of one dim)."""
        strides = tuple(s // self._data.itemsize for s in self._data.strides)
        return strides if dim is None else strides[_util.normalize_dim(dim, self.ndim)]

    def is_contiguous(self, memory_format=None) -> bool:
        return bool(self._data.flags.c_contiguous)

    def data_ptr(self) -> int:
        """Returns the address of the first element of self tensor (a device address for CUDA tensors)."""
        return backend_of(self._data).data_ptr(self._data)

    def storage_offset(self) -> int:
        base = self._base._data if self._base is not None else self._data
        return (self.data_ptr() - backend_of(base).data_ptr(base)) // self._data.itemsize

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def is_complex(self) -> bool:
        return False

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    # -- conversions ----------------------------------------------------------------------------
    def item(self):
        """Returns the value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        return self._data.reshape(()).item()

    def tolist(self):
        """Returns the data as (nested) Python lists of numbers."""
        return backend_of(self._data).to_numpy(self._data).tolist()

    def numpy(self, *, force: bool = False):
        """Returns the tensor as a NumPy ndarray sharing its memory (CPU tensors that need no grad only).

        With ``force=True`` a tensor that requires grad is read anyway, and a CUDA tensor is copied to the host.
        """
        if self._data.__class__ is not _ndarray and backend_of(self._data) is not CPU:
            if force:
                return backend_of(self._data).to_numpy(self._data)
            raise TypeError(
                f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() to copy the tensor to "
                "host memory first."
            )
        if self._requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self._data

    def __array__(self, dtype=None, copy=None):
        """Returns the tensor's memory as a numpy array (``numpy.asarray(tensor)``); CUDA tensors raise TypeError."""
        if self._data.__class__ is not _ndarray and backend_of(self._data) is not CPU:
            self.numpy()  # raises PyTorch's TypeError: device memory is never converted implicitly
        if self._requires_grad:
            # numpy() refuses it too: the values would leave the graph unnoticed.
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        array = self._data
        if dtype is not None and array.dtype != dtype:
            if copy is False:
                raise ValueError(f"converting a {self.dtype} tensor to {dtype} needs a copy, but copy=False was given")
            return array.astype(dtype)
        return array.copy() if copy else array

    def _python_scalar(self):
        if self._data.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return self.item()

    def __float__(self) -> float:
        return float(self._python_scalar())

    def __int__(self) -> int:
        return int(self._python_scalar())

    def __index__(self) -> int:
        if self.dtype.is_floating_point or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __complex__(self):
        return complex(self.item())

    def to(self, *args, **kwargs) -> "Tensor":
        """Performs Tensor dtype and/or device conversion: ``to(device)``, ``to(dtype)``, ``to(device, dtype)``,
        ``to(other)``.

        Returns the tensor itself when it already has the dtype and device (unless ``copy=True``). The conversion
        is differentiable: gradients flow back to this tensor's device and dtype.
        """
        target_device, target_dtype, copy = _parse_to(self, *args, **kwargs)
        out = self
        if target_device is not None:
            backend = get_backend(target_device)
            if backend is not backend_of(self._data):
                out = _conversion.ToDevice.apply(out, backend)
        if target_dtype is not None and target_dtype is not out.dtype:
            out = _conversion.ToDtype.apply(out, target_dtype)
        if copy and out is self:
            out = self.clone()
        return out

    def cpu(self, memory_format=None) -> "Tensor":
        """Returns a copy of this object in CPU memory (the object itself when it is there already)."""
        return self.to(_CPU_DEVICE)

    def cuda(self, device=None, non_blocking: bool = False, memory_format=None) -> "Tensor":
        """Returns a copy of this object in CUDA memory (the object itself when it is there already).

        ``device`` is a CUDA device, its index, or None for the current CUDA device. Without a usable GPU, or
        without CuPy, raises RuntimeError saying which is missing.
        """
        if device is None:
            device = _device("cuda")
        else:
            device = _device(device)
            if device.type != "cuda":
                raise RuntimeError(f"Invalid device, must be cuda device (got {device})")
        return self.to(device)

    def type(self, dtype=None, non_blocking: bool = False, **kwargs):
        """Returns the type name if ``dtype`` is not given, else casts this object to the given type.

        A type name (``'gradcore.cuda.FloatTensor'``, also spelt ``'torch.…'``) or a legacy class
        (``gradcore.FloatTensor``) names a device as well; a dtype keeps the device. The tensor itself is
        returned when it already is of that type.
        """
        if dtype is None:
            prefix = "gradcore." if self.device.type == "cpu" else "gradcore.cuda."
            return f"{prefix}{self.dtype.legacy_name}Tensor"
        device = None
        if isinstance(dtype, str):
            module, _, name = dtype.rpartition(".")
            legacy = name[:-len("Tensor")] if name.endswith("Tensor") else None
            matches = [d for d in _dtypes.ALL_DTYPES if d.legacy_name == legacy]
            if not matches or module.split(".")[0] not in ("gradcore", "torch") or module.count(".") > 1 or (
                    "." in module and not module.endswith(".cuda")):
                raise ValueError(f"invalid type: '{dtype}'")
            dtype, device = matches[0], ("cuda" if module.endswith(".cuda") else "cpu")
        elif isinstance(dtype, type) and issubclass(dtype, Tensor):
            if dtype._legacy_dtype is None:
                raise ValueError(f"invalid type: '{dtype.__name__}'")
            dtype, device = dtype._legacy_dtype, "cpu"
        return self.to(device=device, dtype=to_dtype(dtype), non_blocking=non_blocking)

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.to(other.dtype)

    def float(self) -> "Tensor":
        return self.to(_dtypes.float32)

    def double(self) -> "Tensor":
        return self.to(_dtypes.float64)

    def half(self) -> "Tensor":
        return self.to(_dtypes.float16)

    def long(self) -> "Tensor":
        return self.to(_dtypes.int64)

    def int(self) -> "Tensor":
        return self.to(_dtypes.int32)

    def short(self) -> "Tensor":
        return self.to(_dtypes.int16)

    def char(self) -> "Tensor":
        return self.to(_dtypes.int8)

    def byte(self) -> "Tensor":
        return self.to(_dtypes.uint8)

    def bool(self) -> "Tensor":
        return self.to(_dtypes.bool_)

    # -- autograd -------------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False, inputs=None) -> None:
        """Computes the gradient of this tensor with respect to the graph's leaves and accumulates it into ``.grad``."""
        from .autograd import backward

        backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def detach(self) -> "Tensor":
        """Returns a tensor over the same memory, outside the graph (it shares the version counter)."""
        t = make_tensor(self._data)
        t._version_counter = self._version_counter
        return t

    def detach_(self) -> "Tensor":
        """Detaches this tensor from the graph in place, making it a leaf."""
        if self._base is not None and self._base._requires_grad:
            raise RuntimeError(
                "Can't detach views in-place. Use detach() instead. If you are using DistributedDataParallel (DDP) "
                "for training, this is a view of a tensor that requires grad."
            )
        self._grad_fn = None
        self._requires_grad = False
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Sets whether autograd records operations on this (leaf) tensor; returns the tensor."""
        if not isinstance(requires_grad, bool):
            raise TypeError(f"requires_grad_(): argument 'requires_grad' must be bool, not {type(requires_grad).__name__}")
        if self.grad_fn is not None:
            if requires_grad:
                return self
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a computed variable "
                "in a subgraph that doesn't require differentiation use var_no_grad = var.detach()."
            )
        if requires_grad and not self.dtype.is_floating_point:
            raise RuntimeError(
                f"only Tensors of floating point and complex dtype can require gradients (got {self.dtype})"
            )
        self._requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Makes this non-leaf tensor keep its gradient in ``.grad`` during backward."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        fn = self.grad_fn
        if fn is None:
            return
        if fn._retained is None:
            fn._retained = {}
        fn._retained[self._output_nr] = weakref.ref(self)
        fn._hooked = True

    def register_hook(self, hook):
        """Registers ``hook(grad)``, called with this tensor's gradient; it may return a replacement."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        fn = self.grad_fn
        if fn is not None:
            return fn._add_tensor_hook(self._output_nr, hook)
        if self._backward_hooks is None:
            self._backward_hooks = []
        self._backward_hooks.append(hook)
        self._grad_accumulator()._hooked = True
        return _function._RemovableHandle(self._backward_hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Registers ``hook(tensor)``, called with this leaf after its ``.grad`` was accumulated in backward.

        Returns a handle whose ``remove()`` unregisters the hook. ``DistributedDataParallel`` uses it to learn
        when a parameter's gradient is ready.
        """
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        hooks = getattr(self, "_post_accumulate_grad_hooks", None)  # a Parameter may not have set the slot yet
        if hooks is None:
            hooks = self._post_accumulate_grad_hooks = []
        hooks.append(hook)
        return _function._RemovableHandle(hooks, hook)

    def _grad_accumulator(self):
        ref = self._accumulator_ref
        node = ref() if ref is not None else None
        if node is None:
            node = _function.AccumulateGrad(self)
            self._accumulator_ref = weakref.ref(node)
        return node

    def _alias(self) -> "Tensor":
        """A tensor over the same memory and version counter, carrying this tensor's current history."""
        t = make_tensor(self._data)
        t._version_counter = self._version_counter
        t._grad_fn = self._grad_fn
        t._output_nr = self._output_nr
        t._requires_grad = self._requires_grad
        if self._requires_grad and self._grad_fn is None:
            t._accumulator_ref = weakref.ref(self._grad_accumulator())
        return t

    def _make_view_of(self, source: "Tensor", cls, args: tuple) -> None:
        """Records that this tensor is a view of ``source`` made by ``cls.apply(source, *args)``."""
        if source._base is not None:
            self._base = source._base
            self._view_chain = source._view_chain + ((cls, args),)
        else:
            self._base = source
            self._view_chain = ((cls, args),)
        self._version_counter = source._version_counter
        self._view_base_fn = self._base._grad_fn

    def _refresh_view_history(self) -> None:
        """Rebuilds a view's history when its base was changed in place after the view was made."""
        base = self._base
        if self._view_base_fn is base._grad_fn:
            return
        with enable_grad():
            t = base
            for cls, args in self._view_chain:
                t = cls.apply(t, *args)
        self._grad_fn = t._grad_fn
        self._output_nr = t._output_nr
        self._requires_grad = t._requires_grad
        self._view_base_fn = base._grad_fn

    # -- in-place machinery ---------------------------------------------------------------------
    def _check_inplace(self) -> None:
        if _grad_state.enabled:
            if self._requires_grad and self._base is None and self._grad_fn is None:
                raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
            base = self._base
            if base is not None and base._requires_grad and base._grad_fn is None:
                raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")
        strides = self._data.strides
        if 0 in strides and any(st == 0 and n > 1 for st, n in zip(strides, self._data.shape)):
            raise RuntimeError(_util.OVERLAPPING_WRITE)

    def _inplace(self, compute, operands: tuple = (), fast=None, snapshot: bool = True) -> "Tensor":
        """Runs an in-place op: ``compute(alias)`` gives the new value out of place (recorded when needed),
        which is written into this tensor's memory; ``fast(data)`` writes directly when nothing is recorded.

        Recording works the same for every in-place op: the tensor takes the history of the new value
        and, for a view, its base takes the history of writing that value into the base. ``snapshot=False``
        is for ops whose backward never reads the old value: they skip copying it.
        """
        self._check_inplace()
        record = _grad_state.enabled and (
            self._requires_grad or any(isinstance(o, Tensor) and o._requires_grad for o in operands)
        )
        if not record:
            if fast is not None:
                fast(self._data)
            else:
                with no_grad():
                    value = compute(self)
                self._write(value)
            self._version_counter.value += 1
            return self
        if self._base is not None:
            self._refresh_view_history()
        # The op sees a snapshot of the old value: what it saves for backward must not be overwritten below.
        old = self._alias()
        if snapshot:
            old._data = self._data.copy()
            old._version_counter = _VersionCounter()
        value = self._fitted(compute(old))
        # A view's base history is worked out before anything is written: if it cannot be, nothing changes.
        new_base = _write_back(self._base._alias(), self._view_chain, value) if self._base is not None else None
        self._data[...] = value._data
        self._version_counter.value += 1
        self._take_history(value._grad_fn, value._output_nr, value, new_base)
        return self

    def _take_history(self, grad_fn, output_nr: int, value: "Tensor", new_base: "Tensor | None" = None) -> None:
        """Makes ``grad_fn`` (which produced ``value``, this tensor's new content) this tensor's history.

        For a view, the base takes the history of writing the value into it (``new_base``, worked out here
        when not given), and the view's own history is rebuilt from the base's when next used. A retain_grad()
        moves to the new history, as in PyTorch.
        """
        retained = self.retains_grad
        if retained:
            del self._grad_fn._retained[self._output_nr]  # the old value's gradient is not this tensor's
        if self._base is not None:
            base = self._base
            if new_base is None:
                new_base = _write_back(base._alias(), self._view_chain, value)
            base._grad_fn, base._output_nr, base._requires_grad = new_base._grad_fn, new_base._output_nr, True
            self._requires_grad = True
            self._view_base_fn = None
        else:
            self._grad_fn, self._output_nr, self._requires_grad = grad_fn, output_nr, True
        if retained:
            self.retain_grad()

    def _check_cast(self, dtype) -> None:
        """Raises PyTorch's error when an in-place result of ``dtype`` cannot be stored in this tensor."""
        if not can_cast(dtype, self.dtype):
            raise RuntimeError(
                f"result type {dtype.legacy_name} can't be cast to the desired output type {self.dtype.legacy_name}"
            )

    def _fitted(self, value: "Tensor") -> "Tensor":
        """Checks that an in-place result fits this tensor and returns it in this tensor's dtype."""
        self._check_cast(value.dtype)
        if value.shape != self.shape:
            raise RuntimeError(
                f"output with shape {list(self.shape)} doesn't match the broadcast shape {list(value.shape)}"
            )
        return value if value.dtype is self.dtype else value.to(self.dtype)

    def _write(self, value: "Tensor") -> "Tensor":
        """Checks that an in-place result fits this tensor and copies it into this tensor's memory."""
        value = self._fitted(value)
        self._data[...] = value._data
        return value

    def _arith_inplace(self, other, name: str, alpha=1) -> "Tensor":
        if isinstance(alpha, float) and not self.dtype.is_floating_point:
            raise RuntimeError("For integral input tensors, argument alpha must not be a floating point number.")
        if name == "subtract":
            _ew.check_bool_subtraction(self, other)

        def fast(data):
            # The same operands, promotion, device and broadcast checks as the out-of-place op.
            _, operand, dtype = _util.binary_operands(self, other)
            if name == "true_divide" and not dtype.is_floating_point:
                dtype = _dtypes.get_default_dtype()
            self._check_cast(dtype)
            if isinstance(other, Tensor) and other._data.shape != data.shape:
                broadcast = _util.broadcast_shapes(data.shape, other._data.shape)
                if broadcast != data.shape:
                    raise RuntimeError(
                        f"output with shape {list(self.shape)} doesn't match the broadcast shape {list(broadcast)}"
                    )
            if alpha != 1:
                operand = operand * alpha
            getattr(array_module(data), name)(data, operand, out=data, casting="unsafe")

        op = _INPLACE_ARITHMETIC[name]
        if name in ("add", "subtract"):
            def compute(alias):
                return op(alias, other, alpha=alpha)
        else:
            def compute(alias):
                return op(alias, other)
        # Only mul_ and div_ keep the old value for their backward.
        return self._inplace(compute, (other,), fast, snapshot=name in ("multiply", "true_divide"))

    def add_(self, other, *, alpha=1) -> "Tensor":
        """In-place ``self += alpha * other``."""
        return self._arith_inplace(other, "add", alpha)

    def sub_(self, other, *, alpha=1) -> "Tensor":
        """In-place ``self -= alpha * other``."""
        return self._arith_inplace(other, "subtract", alpha)

    def mul_(self, other) -> "Tensor":
        """In-place ``self *= other``."""
        return self._arith_inplace(other, "multiply")

    def div_(self, other, *, rounding_mode=None) -> "Tensor":
        """In-place ``self /= other``."""
        if rounding_mode is not None:
            return self._inplace(lambda a: _ew.div(a, other, rounding_mode=rounding_mode), (other,))
        return self._arith_inplace(other, "true_divide")

    def pow_(self, exponent) -> "Tensor":
        return self._inplace(lambda a: _ew.pow(a, exponent), (exponent,))

    def neg_(self) -> "Tensor":
        return self._inplace(lambda a: _ew.neg(a))

    def exp_(self) -> "Tensor":
        return self._inplace(lambda a: _ew.exp(a))

    def log_(self) -> "Tensor":
        return self._inplace(lambda a: _ew.log(a))

    def sqrt_(self) -> "Tensor":
        return self._inplace(lambda a: _ew.sqrt(a))

    def abs_(self) -> "Tensor":
        return self._inplace(lambda a: _ew.abs(a))

    def tanh_(self) -> "Tensor":
        return self._inplace(lambda a: _ew.tanh(a))

    def sigmoid_(self) -> "Tensor":
        return self._inplace(lambda a: _act.sigmoid(a))

    def relu_(self) -> "Tensor":
        return self._inplace(lambda a: _act.relu(a))

    def clamp_(self, min=None, max=None) -> "Tensor":
        """In-place clamp into [min, max]."""
        operands = (min, max)
        if not any(isinstance(v, Tensor) for v in operands):
            _act.clamp(make_tensor(self._data[:0] if self.ndim else self._data), min, max)  # validates arguments

            def fast(data):
                self._check_cast(result_type(*(v for v in (self, min, max) if v is not None)))
                xp = array_module(data)
                if min is not None:
                    xp.maximum(data, min, out=data, casting="unsafe")
                if max is not None:
                    xp.minimum(data, max, out=data, casting="unsafe")

            return self._inplace(lambda a: _ew.clamp(a, min, max), operands, fast)
        return self._inplace(lambda a: _ew.clamp(a, min, max), operands)

    clip_ = clamp_

    def zero_(self) -> "Tensor":
        """Fills the tensor with zeros in place."""
        return self.fill_(0)

    def fill_(self, value) -> "Tensor":
        """Fills the tensor with ``value`` in place."""
        if isinstance(value, Tensor) and value.ndim != 0:
            raise RuntimeError(
                f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} dimensions."
            )

        def fast(data):
            data[...] = value._data if isinstance(value, Tensor) else value

        return self._inplace(lambda a: _conversion.fill(a, value), (value,), fast, snapshot=False)

    def copy_(self, src: "Tensor", non_blocking: bool = False) -> "Tensor":
        """Copies ``src`` (broadcast, converted to this dtype and device) into this tensor."""
        if not isinstance(src, Tensor):
            raise TypeError(f"copy_(): argument 'other' (position 1) must be Tensor, not {type(src).__name__}")
        if _util.broadcast_shapes(self.shape, src.shape) != self.shape:
            raise RuntimeError(
                f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                f"{list(_util.broadcast_shapes(self.shape, src.shape))}"
            )

        def fast(data):
            data[...] = to_device(src._data, backend_of(data))

        def compute(alias):
            return _conversion.copy_value(alias, src)

        return self._inplace(compute, (src,), fast, snapshot=False)

    def masked_fill_(self, mask, value) -> "Tensor":
        return self._inplace(lambda a: _idx.masked_fill(a, mask, value), (value,))

    def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None) -> "Tensor":
        """Fills with numbers drawn uniformly from [a, b)."""
        self._check_inplace()
        _sampling.check_uniform_range(a, b, self.dtype)
        backend = generator._backend if generator is not None else backend_of(self._data)
        # Drawn in the order the elements lie in memory, as PyTorch fills them (a transposed tensor by columns).
        values = _sampling._in_memory_order(self._data, lambda shape: backend.uniform(shape, a, b, self._data.dtype))
        with no_grad():
            return self.copy_(make_tensor(values))

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None) -> "Tensor":
        """Fills with numbers drawn from a normal distribution."""
        self._check_inplace()
        _sampling.check_normal_std(std)
        backend = generator._backend if generator is not None else backend_of(self._data)
        data = self._data
        if data.flags.c_contiguous:
            values = backend.normal(data.shape, mean, std, data.dtype)
        else:
            # PyTorch draws a tensor that is not contiguous one number at a time, in memory order.
            values = _sampling._in_memory_order(data, lambda shape: backend.normal_one_by_one(shape, mean, std,
                                                                                             data.dtype))
        with no_grad():
            return self.copy_(make_tensor(values))

    def __setitem__(self, key, value) -> None:
        if isinstance(value, Tensor):
            _util.check_same_device(self, value)
        elif not isinstance(value, (int, float, bool)):
            value = _creation.tensor(value, dtype=self.dtype, device=self.device)
        k, _ = _idx.normalize_key(key, self._data)

        def fast(data):
            _idx.assign(data, k, value._data if isinstance(value, Tensor) else value)

        self._inplace(lambda a: _idx.IndexPut.apply(a, value, k), (value,), fast, snapshot=False)

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    # -- operators --------------------------------------------------------------------------------
    def __add__(self, other):
        return _ew.Add.apply(self, other, 1)

    def __radd__(self, other):
        return _ew.Add.apply(other, self, 1)

    def __sub__(self, other):
        return _ew.Sub.apply(self, other, 1)

    def __rsub__(self, other):
        if other.__class__ in (int, float):
            return _ew.RsubScalar.apply(self, other)
        return _ew.Sub.apply(other, self, 1)

    def __mul__(self, other):
        return _ew.Mul.apply(self, other)

    def __rmul__(self, other):
        return _ew.Mul.apply(other, self)

    def __truediv__(self, other):
        return _ew.Div.apply(self, other, None)

    def __rtruediv__(self, other):
        return _ew.Div.apply(other, self, None)

    def __floordiv__(self, other):
        return _ew.Div.apply(self, other, "floor")

    def __rfloordiv__(self, other):
        return _ew.Div.apply(other, self, "floor")

    def __mod__(self, other):
        return _conversion.remainder(self, other)

    def __pow__(self, exponent):
        return _ew.Pow.apply(self, exponent)

    def __rpow__(self, base):
        return _ew.Pow.apply(base, self)

    def __matmul__(self, other):
        return _linalg.matmul(self, other)

    def __rmatmul__(self, other):
        return _linalg.matmul(other, self)

    def __neg__(self):
        return _ew.Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ew.Abs.apply(self)

    def __invert__(self):
        return _compare.logical_not(self) if self.dtype is _dtypes.bool_ else _compare.bitwise_not(self)

    def __and__(self, other):
        return _compare.logical_op(self, other, "bitwise_and")

    __rand__ = __and__

    def __or__(self, other):
        return _compare.logical_op(self, other, "bitwise_or")

    __ror__ = __or__

    def __xor__(self, other):
        return _compare.logical_op(self, other, "bitwise_xor")

    __rxor__ = __xor__

    def __eq__(self, other):
        return _compare.compare(self, other, "equal")

    def __ne__(self, other):
        return _compare.compare(self, other, "not_equal")

    def __lt__(self, other):
        return _compare.compare(self, other, "less")

    def __le__(self, other):
        return _compare.compare(self, other, "less_equal")

    def __gt__(self, other):
        return _compare.compare(self, other, "greater")

    def __ge__(self, other):
        return _compare.compare(self, other, "greater_equal")

    __hash__ = object.__hash__

    def __getitem__(self, key):
        return _idx.index(self, key)

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(_shape.unbind(self, 0))

    def __contains__(self, element) -> bool:
        return bool((self == element).any())

    def __repr__(self) -> str:
        return _formatting.tensor_repr(self)

    def __format__(self, spec: str) -> str:
        # A 0-d tensor formats as its number, even without a spec (f"{loss}" prints 2.19..., as in PyTorch);
        # a subclass such as Parameter keeps its repr there.
        if self._data.ndim == 0 and (spec or type(self) is Tensor):
            return format(self.item(), spec)
        return repr(self)

    def __reduce_ex__(self, protocol):
        # Pickling keeps the values, dtype, device and requires_grad of a leaf (as PyTorch does);
        # gradcore.save writes files that load without running any code.
        if not self.is_leaf:
            raise RuntimeError(
                "Only Tensors created explicitly by the user (graph leaves) support the pickle protocol; "
                "call .detach() first."
            )
        host = backend_of(self._data).to_numpy(self._data)
        if host is self._data:
            host = host.copy()  # copy.copy() goes through here too, and must not share memory
        if self.__dict__:  # attributes the user attached are restored by pickle, as in PyTorch
            return (_rebuild_tensor, (host, str(self.device), self._requires_grad), dict(self.__dict__))
        return (_rebuild_tensor, (host, str(self.device), self._requires_grad))

    def __deepcopy__(self, memo):
        if not self.is_leaf:
            raise RuntimeError(
                "Only Tensors created explicitly by the user (graph leaves) support the deepcopy protocol at the moment."
            )
        t = make_tensor(self._data.copy(), self._requires_grad)
        if self._grad is not None:
            t._grad = make_tensor(self._grad._data.copy())
        memo[id(self)] = t
        if self.__dict__:  # attributes the user attached travel with the copy, as in PyTorch
            import copy

            t.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return t

    # -- methods that delegate to ops ------------------------------------------------------------
    def clone(self, *, memory_format=None) -> "Tensor":
        """Returns a copy that stays in the graph (its gradient flows back to this tensor)."""
        return _conversion.Clone.apply(self)

    def contiguous(self, memory_format=None) -> "Tensor":
        return _shape.contiguous(self)

    def add(self, other, *, alpha=1):
        return _ew.add(self, other, alpha=alpha)

    def sub(self, other, *, alpha=1):
        return _ew.sub(self, other, alpha=alpha)

    subtract = sub

    def mul(self, other):
        return _ew.mul(self, other)

    multiply = mul

    def div(self, other, *, rounding_mode=None):
        return _ew.div(self, other, rounding_mode=rounding_mode)

    divide = true_divide = div

    def pow(self, exponent):
        return _ew.pow(self, exponent)

    def neg(self):
        return _ew.neg(self)

    negative = neg

    def exp(self):
        return _ew.exp(self)

    def log(self):
        return _ew.log(self)

    def log1p(self):
        return _ew.log1p(self)

    def expm1(self):
        return _ew.expm1(self)

    def sqrt(self):
        return _ew.sqrt(self)

    def rsqrt(self):
        return _ew.reciprocal(_ew.sqrt(self))

    def abs(self):
        return _ew.abs(self)

    absolute = abs

    def sign(self):
        return _ew.sign(self)

    def sin(self):
        return _ew.sin(self)

    def cos(self):
        return _ew.cos(self)

    def tanh(self):
        return _ew.tanh(self)

    def reciprocal(self):
        return _ew.reciprocal(self)

    def square(self):
        return _ew.square(self)

    def sigmoid(self):
        return _act.sigmoid(self)

    def relu(self):
        return _act.relu(self)

    def clamp(self, min=None, max=None):
        return _ew.clamp(self, min, max)

    clip = clamp

    def clamp_min(self, min):
        return _ew.clamp(self, min=min)

    def clamp_max(self, max):
        return _ew.clamp(self, max=max)

    def softmax(self, dim, dtype=None):
        return _act.softmax(self, dim, dtype)

    def log_softmax(self, dim, dtype=None):
        return _act.log_softmax(self, dim, dtype)

    def maximum(self, other):
        return _ew.maximum(self, other)

    def minimum(self, other):
        return _ew.minimum(self, other)

    def where(self, condition, other):
        return _ew.where(condition, self, other)

    def masked_fill(self, mask, value):
        return _idx.masked_fill(self, mask, value)

    def matmul(self, other):
        return _linalg.matmul(self, other)

    def mm(self, mat2):
        return _linalg.mm(self, mat2)

    def bmm(self, mat2):
        return _linalg.bmm(self, mat2)

    def dot(self, other):
        return _linalg.dot(self, other)

    @_refuses_keepdim_and_keepdims("sum", method=True, needs_dim=True)
    def sum(self, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None, dtype=None):
        return _red.sum(self, dim, keepdim, keepdims=keepdims, dtype=dtype)

    @_refuses_keepdim_and_keepdims("mean", method=True, needs_dim=True)
    def mean(self, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None, dtype=None):
        return _red.mean(self, dim, keepdim, keepdims=keepdims, dtype=dtype)

    @_refuses_keepdim_and_keepdims("prod", method=True, needs_dim=True)
    def prod(self, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
        return _red.prod(self, dim, keepdim, keepdims=keepdims)

    @_refuses_keepdim_and_keepdims("max", method=True, needs_dim=True)
    def max(self, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
        return _red.max(self, dim, keepdim, keepdims=keepdims)

    @_refuses_keepdim_and_keepdims("min", method=True, needs_dim=True)
    def min(self, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
        return _red.min(self, dim, keepdim, keepdims=keepdims)

    def amax(self, dim=(), keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
        return _red.amax(self, dim, keepdim, keepdims=keepdims)

    def amin(self, dim=(), keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
        return _red.amin(self, dim, keepdim, keepdims=keepdims)

    def argmax(self, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
        return _red.argmax(self, dim, keepdim, keepdims=keepdims)

    def argmin(self, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
        return _red.argmin(self, dim, keepdim, keepdims=keepdims)

    @_refuses_keepdim_and_keepdims("var", method=True)
    def var(self, dim=None, unbiased=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None,
            correction=None):
        return _red.var(self, dim, unbiased, keepdim, keepdims=keepdims, correction=correction)

    @_refuses_keepdim_and_keepdims("std", method=True)
    def std(self, dim=None, unbiased=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None,
            correction=None):
        return _red.std(self, dim, unbiased, keepdim, keepdims=keepdims, correction=correction)

    def logsumexp(self, dim=KEEPDIM_NOT_GIVEN, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
        return _red.logsumexp(self, dim, keepdim, keepdims=keepdims)

    @_refuses_keepdim_and_keepdims("all", method=True)
    def all(self, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
        return _red.all(self, dim, keepdim, keepdims=keepdims)

    @_refuses_keepdim_and_keepdims("any", method=True)
    def any(self, dim=None, keepdim: bool = KEEPDIM_NOT_GIVEN, *, keepdims=None):
        return _red.any(self, dim, keepdim, keepdims=keepdims)

    def norm(self, p=2, dim=None, keepdim: bool = False):
        """Returns the p-norm (2 by default) over ``dim``."""
        return _red.norm(self, p, dim, keepdim)

    def view(self, *shape):
        return _shape.view(self, *shape)

    def view_as(self, other):
        return _shape.view(self, other.shape)

    def reshape(self, *shape):
        return _shape.reshape(self, *shape)

    def reshape_as(self, other):
        return _shape.reshape(self, other.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        return _shape.flatten(self, start_dim, end_dim)

    def transpose(self, dim0: int, dim1: int):
        return _shape.transpose(self, dim0, dim1)

    swapaxes = transpose

    def t(self):
        return _shape.t(self)

    def permute(self, *dims):
        return _shape.permute(self, *dims)

    def movedim(self, source: int, destination: int):
        return _shape.movedim(self, source, destination)

    def unsqueeze(self, dim: int):
        return _shape.unsqueeze(self, dim)

    def squeeze(self, dim=None):
        return _shape.squeeze(self, dim)

    def expand(self, *sizes):
        return _shape.expand(self, *sizes)

    def expand_as(self, other):
        return _shape.expand(self, other.shape)

    def broadcast_to(self, shape):
        return _shape.broadcast_to(self, shape)

    def sum_to_size(self, *shape):
        return _shape.sum_to_size(self, *shape)

    def narrow(self, dim: int, start: int, length: int):
        return _idx.narrow(self, dim, start, length)

    def select(self, dim: int, index: int):
        return _idx.select(self, dim, index)

    def unbind(self, dim: int = 0):
        return _shape.unbind(self, dim)

    def split(self, split_size, dim: int = 0):
        return _shape.split(self, split_size, dim)

    def chunk(self, chunks: int, dim: int = 0):
        return _shape.chunk(self, chunks, dim)

    def nonzero(self, *, as_tuple: bool = False):
        return _idx.nonzero(self, as_tuple=as_tuple)

    def eq(self, other):
        return self == other

    def ne(self, other):
        return self != other

    def lt(self, other):
        return self < other

    def le(self, other):
        return self <= other

    def gt(self, other):
        return self > other

    def ge(self, other):
        return self >= other

    def equal(self, other) -> bool:
        return _compare.equal(self, other)

    def allclose(self, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
        return _compare.allclose(self, other, rtol, atol, equal_nan)

    def isnan(self):
        return _compare.isnan(self)

    def isinf(self):
        return _compare.isinf(self)

    def isfinite(self):
        return _compare.isfinite(self)

    def logical_not(self):
        return _compare.logical_not(self)

    def floor(self):
        return _conversion.rounding(self, "floor")

    def ceil(self):
        return _conversion.rounding(self, "ceil")

    def round(self):
        return _conversion.rounding(self, "round")

    def new_tensor(self, data, dtype=None, device=None, requires_grad: bool = False):
        return _creation.tensor(data, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False):
        return _creation.zeros(*size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False):
        return _creation.ones(*size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False):
        return _creation.empty(*size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad: bool = False):
        return _creation.full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                              requires_grad=requires_grad)

    # -- sorting, scatter/gather, cumulative, repeating and random-sampling methods ----------------
    def log2(self):
        return _ew.log2(self)

    def log10(self):
        return _ew.log10(self)

    def nan_to_num(self, nan: float = 0.0, posinf=None, neginf=None):
        return _ew.nan_to_num(self, nan, posinf, neginf)

    def nan_to_num_(self, nan: float = 0.0, posinf=None, neginf=None) -> "Tensor":
        return self._inplace(lambda a: _ew.nan_to_num(a, nan, posinf, neginf))

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        return _sorting.sort(self, dim, descending, stable)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        return _sorting.argsort(self, dim, descending, stable)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
        return _sorting.topk(self, k, dim, largest, sorted)

    def histc(self, bins: int = 100, min: float = 0, max: float = 0):
        return _sorting.histc(self, bins, min, max)

    def histogram(self, bins=100, *, range=None, weight=None, density: bool = False):
        return _sorting.histogram(self, bins, range=range, weight=weight, density=density)

    def gather(self, dim: int, index, *, sparse_grad: bool = False):
        return _idx.gather(self, dim, index)

    def index_select(self, dim: int, index):
        return _idx.index_select(self, dim, index)

    def index_add(self, dim: int, index, source, *, alpha=1):
        return _idx.index_add(self, dim, index, source, alpha=alpha)

    def index_add_(self, dim: int, index, source, *, alpha=1) -> "Tensor":
        return self._inplace(lambda a: _idx.index_add(a, dim, index, source, alpha=alpha), (source,))

    def scatter(self, dim: int, index, src=None, *, value=None, reduce=None):
        return _idx.scatter(self, dim, index, src, value=value, reduce=reduce)

    def scatter_(self, dim: int, index, src=None, *, value=None, reduce=None) -> "Tensor":
        return self._inplace(lambda a: _idx.scatter(a, dim, index, src, value=value, reduce=reduce), (src,))

    def scatter_add(self, dim: int, index, src):
        return _idx.scatter_add(self, dim, index, src)

    def scatter_add_(self, dim: int, index, src) -> "Tensor":
        return self._inplace(lambda a: _idx.scatter_add(a, dim, index, src), (src,))

    def cumsum(self, dim: int, *, dtype=None):
        return _red.cumsum(self, dim, dtype=dtype)

    def cumprod(self, dim: int, *, dtype=None):
        return _red.cumprod(self, dim, dtype=dtype)

    def tril(self, diagonal: int = 0):
        return _shape.tril(self, diagonal)

    def triu(self, diagonal: int = 0):
        return _shape.triu(self, diagonal)

    def tril_(self, diagonal: int = 0) -> "Tensor":
        return self._inplace(lambda a: _shape.tril(a, diagonal))

    def triu_(self, diagonal: int = 0) -> "Tensor":
        return self._inplace(lambda a: _shape.triu(a, diagonal))

    def roll(self, shifts, dims=None):
        return _shape.roll(self, shifts, dims)

    def flip(self, *args, dims=None):
        if dims is None:
            dims = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
        return _shape.flip(self, dims)

    def repeat(self, *sizes):
        return _shape.repeat(self, *sizes)

    def tile(self, *args, dims=None):
        if dims is None:
            dims = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
        return _shape.tile(self, dims)

    def repeat_interleave(self, repeats=None, dim=None, *, output_size=None):
        return _shape.repeat_interleave(self, repeats, dim, output_size=output_size)

    def multinomial(self, num_samples: int, replacement: bool = False, *, generator=None):
        return _sampling.multinomial(self, num_samples, replacement, generator=generator)

    def bernoulli(self, p=None, *, generator=None):
        return _sampling.bernoulli(self, p, generator=generator)

    def bernoulli_(self, p=0.5, *, generator=None) -> "Tensor":
        """Fills with 1 with probability ``p`` (a number or a tensor of probabilities) and 0 otherwise."""
        self._check_inplace()
        values = _sampling.bernoulli_fill(self._data, p, generator)
        with no_grad():
            return self.copy_(make_tensor(values))

    def exponential_(self, lambd: float = 1.0, *, generator=None) -> "Tensor":
        """Fills with numbers drawn from the exponential distribution of rate ``lambd``."""
        self._check_inplace()
        values = _sampling.exponential_fill(self._data, lambd, generator)
        with no_grad():
            return self.copy_(make_tensor(values))

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """Creates a DLPack capsule of the tensor's memory, for another library's ``from_dlpack`` (no copy).

        Tensors that require grad are refused, as in PyTorch: the capsule cannot carry the graph.
        """
        if self._requires_grad:
            raise BufferError("Can't export tensors that require gradient, use tensor.detach()")
        options = {"max_version": max_version, "dl_device": dl_device, "copy": copy}
        if self._data.__class__ is not _ndarray:
            options["stream"] = stream  # a CUDA stream the consumer will use; numpy accepts none
        options = {k: v for k, v in options.items() if v is not None}
        try:
            return self._data.__dlpack__(**options)
        except TypeError:
            if "max_version" not in options:
                raise
            # Array libraries older than DLPack 1.0 take no version: give them the unversioned capsule.
            options.pop("max_version")
            return self._data.__dlpack__(**options)

    def __dlpack_device__(self) -> tuple:
        """Returns the DLPack device of the tensor: (device type, index), e.g. (1, 0) for the CPU, (2, i) for CUDA."""
        return self._data.__dlpack_device__()


def _rebuild_tensor(array, device: str, requires_grad: bool) -> Tensor:
    """Unpickles a tensor written by Tensor.__reduce_ex__."""
    return make_tensor(to_device(array, get_backend(device)), requires_grad)


def _write_back(base: Tensor, chain: tuple, value: Tensor) -> Tensor:
    """Returns ``base``'s new value after writing ``value`` through the chain of views (recorded out of place)."""
    (cls, args), rest = chain[0], chain[1:]
    if rest:
        inner = cls.apply(base, *args)
        value = _write_back(inner, rest, value)
    return cls.write_back(base, value, *args)


def _data_to_array(data, dim: int = 0):
    """Turns nested lists/tuples (possibly holding one-element tensors) or arrays into something numpy takes."""
    if isinstance(data, (list, tuple)):
        items = [_data_to_array(d, dim + 1) for d in data]
        lengths = {len(i) if isinstance(i, list) else None for i in items}
        if len(lengths) > 1:
            first = len(items[0]) if isinstance(items[0], list) else None
            for i in items:
                got = len(i) if isinstance(i, list) else None
                if got != first:
                    if first is None or got is None:
                        raise TypeError(f"new(): invalid data: sequence and number mixed at dim {dim + 1}")
                    raise ValueError(f"expected sequence of length {first} at dim {dim + 1} (got {got})")
        return items
    if isinstance(data, Tensor):
        if data._data.size != 1 and data.ndim != 0:
            return _data_to_array(data.tolist())
        return data.item() if data.ndim == 0 else data.tolist()
    if data is None:
        raise RuntimeError("Could not infer dtype of NoneType")
    if isinstance(data, str) or (not hasattr(data, "__len__") and not isinstance(data, (int, float, bool, complex))
                                 and not hasattr(data, "dtype")):
        raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
    return data


def _parse_to(tensor: Tensor, *args, **kwargs):
    """Reads ``to``'s overloads into (device, dtype, copy).

    ``to(device=None, dtype=None, non_blocking=False, copy=False)``, ``to(dtype, non_blocking=False,
    copy=False)`` and ``to(other, non_blocking=False, copy=False)``; a device may be a string, a ``device``
    or a CUDA device index.
    """
    target_device = kwargs.pop("device", None)
    target_dtype = kwargs.pop("dtype", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() received an invalid combination of arguments: unexpected keyword(s) {sorted(kwargs)}")
    flags = []  # positional non_blocking, copy
    for a in args:
        if isinstance(a, bool):
            flags.append(a)
        elif flags:
            raise TypeError(f"to() received an invalid combination of arguments - got {type(a).__name__} after a bool")
        elif isinstance(a, Tensor):
            target_device, target_dtype = a.device, a.dtype
        elif isinstance(a, _dtypes.dtype):
            target_dtype = a
        elif isinstance(a, (str, _device, int)):
            target_device = a
        else:
            raise TypeError(f"to() received an invalid combination of arguments - got ({type(a).__name__})")
    if len(flags) > 2:
        raise TypeError("to() received an invalid combination of arguments - too many bools")
    if len(flags) == 2:
        copy = flags[1]
    if target_device is not None:
        target_device = _device(target_device)
    if target_dtype is not None:
        target_dtype = to_dtype(target_dtype)
    return target_device, target_dtype, copy


# Op families are imported last: they need the Tensor class defined above.
_function.Tensor = Tensor
_function.make_tensor = make_tensor

from . import _formatting  # noqa: E402
from . import creation as _creation  # noqa: E402
from .ops import _util  # noqa: E402
from .ops import activation as _act  # noqa: E402
from .ops import compare as _compare  # noqa: E402
from .ops import conversion as _conversion  # noqa: E402
from .ops import elementwise as _ew  # noqa: E402
from .ops import indexing as _idx  # noqa: E402
from .ops import linalg as _linalg  # noqa: E402
from .ops import reduction as _red  # noqa: E402
from .ops import shape as _shape  # noqa: E402
from .ops import sampling as _sampling  # noqa: E402
from .ops import sorting as _sorting  # noqa: E402

_ = CPU  # the CPU backend is the default device
# The out-of-place op of each in-place arithmetic method, by its array function's name.
_INPLACE_ARITHMETIC = {"add": _ew.add, "subtract": _ew.sub, "multiply": _ew.mul, "true_divide": _ew.div}
