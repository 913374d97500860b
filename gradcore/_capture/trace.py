"""Recording the array-level program of a call: traced arrays, symbolic scalars and the recorder.

While a capture runs, every backend array that gradcore code touches is a *traced array*: a view of the same
memory whose class (a subclass of the array's own class) reports each operation to the ``Recorder`` before
running it on plain views. Operators and numpy functions reach the recorder through numpy's
``__array_ufunc__``/``__array_function__`` protocols, methods through ``__getattribute__``. The recorder gives
every array a slot and appends one ``Instruction`` per operation, so that after the call the program can be
replayed without any of the Python that produced it.

Python numbers read from arrays (``.item()``) and Python scalar arguments become ``SymbolicScalar`` values:
arithmetic on them is recorded as well, and whatever makes a decision from them (a comparison, ``bool``) or
lets them escape (``float()``, formatting) records a guard, which a replay checks.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Callable

import numpy as np

__all__ = ["Recorder", "SymbolicScalar", "Ref", "ScalarRef", "current_recorder", "scalar_sqrt", "host_call"]

_recorder: "Recorder | None" = None


def current_recorder() -> "Recorder | None":
    """Returns the recorder of the capture in progress, or None."""
    return _recorder


class UnsupportedInCapture(RuntimeError):
    """Raised during a capture for an operation that a replay could not reproduce; the call then runs eagerly."""


class Ref:
    """An array operand of an instruction: slot ``index`` of the program."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"%{self.index}"


class ScalarRef:
    """A Python-number operand of an instruction: scalar register ``index``."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"$s{self.index}"


class Instruction:
    """One recorded operation: ``kind`` is "array" (writes array slots), "scalar" (writes a scalar register),
    "read" (an array's value into a register) or "guard" (checks a register or slot against its captured value).

    ``fn(*args, **kwargs)`` with ``Ref``/``ScalarRef`` operands; ``outputs`` the slots it writes (fresh results
    or ``out=``/in-place targets), ``fresh`` whether those were new arrays (a replay passes them as ``out=``).
    ``host`` marks a host step (``host_call``): Python that must run on the host at its place in the program
    (a collective that writes its arrays in place and waits); it is never fused, reordered or put into a device
    graph.
    """

    __slots__ = ("kind", "fn", "args", "kwargs", "outputs", "fresh", "register", "expected", "name", "label",
                 "positions", "host")

    def __init__(self, kind: str, fn: Callable, args: tuple, kwargs: dict, outputs: tuple = (), fresh: bool = False,
                 register: int | None = None, expected: Any = None, name: str = "", label: str = "") -> None:
        self.kind, self.fn, self.args, self.kwargs = kind, fn, args, kwargs
        self.outputs, self.fresh, self.register, self.expected = outputs, fresh, register, expected
        self.name, self.label = name, label
        self.positions = None  # for a tuple result: the positions of the arrays ``outputs`` receive
        self.host = False


# -- traced array classes --------------------------------------------------------------------------------

# Attributes that describe an array without reading its values: answered from the plain view.
_METADATA = frozenset({
    "shape", "dtype", "ndim", "size", "strides", "itemsize", "nbytes", "flags", "base", "data", "ctypes",
    "__array_interface__", "__cuda_array_interface__", "device", "_device_id", "__class__", "__dict__",
    "_gc_plain", "_gc_slot", "_gc_recorder", "_gc_array_class", "_gc_module_proxy", "__array_priority__", "__array_finalize__", "__array_ufunc__",
    "__array_function__", "view", "__reduce__", "__reduce_ex__", "__sizeof__",
})
# Methods that write into the array they are called on.
_MUTATING_METHODS = frozenset({"fill", "sort", "partition", "put", "itemset", "resize", "setfield", "__setitem__",
                               "__ilshift__"})
# numpy functions that write into their first argument.
_MUTATING_FUNCTIONS = frozenset({"copyto", "put_along_axis", "put", "place", "putmask", "fill_diagonal"})
# Value reads: Python numbers out of an array.
_READS = frozenset({"item", "tolist", "tobytes"})

_traced_classes: dict = {}


def traced_class(array_class: type) -> type:
    """Returns the traced subclass of an array class (numpy's ndarray, or a numpy-backed device array class)."""
    cls = _traced_classes.get(array_class)
    if cls is None:
        cls = type("Traced" + array_class.__name__, (_TracedMixin, array_class), {"_gc_array_class": array_class})
        _traced_classes[array_class] = cls
    return cls


def is_traced(array) -> bool:
    return type(array) in _traced_classes.values()


class _TracedMixin:
    """The behaviour of traced arrays: every operation goes through the recorder while one is active."""

    __array_priority__ = 2000
    _gc_array_class: type = np.ndarray

    @staticmethod
    def _gc_module_proxy(module):
        return module_proxy(module)

    def __array_finalize__(self, obj) -> None:
        parent = getattr(super(), "__array_finalize__", None)
        if parent is not None:
            parent(obj)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _dispatch(getattr(ufunc, method), inputs, kwargs, name=f"{ufunc.__name__}"
                         + ("" if method == "__call__" else f".{method}"), ufunc=(ufunc, method),
                         mutates=method == "at")

    def __array_function__(self, func, types, args, kwargs):
        return _dispatch(func, args, kwargs, name=func.__name__,
                         mutates=func.__name__ in _MUTATING_FUNCTIONS)

    def __getattribute__(self, name: str):
        if name in _METADATA:
            if name in ("shape", "dtype", "ndim", "size", "strides", "itemsize", "nbytes", "flags", "base"):
                return getattr(object.__getattribute__(self, "_gc_plain"), name)
            return object.__getattribute__(self, name)
        attribute = object.__getattribute__(self, name)
        if not callable(attribute) or name.startswith("__"):
            if name in ("T", "mT", "real", "imag"):
                return _dispatch(_attribute_getter(name), (self,), {}, name=name)
            return attribute
        method = getattr(type(self)._gc_array_class, name, None)
        if method is None:
            return attribute
        if name in _READS:
            return lambda *args, **kwargs: _read(self, name, args, kwargs)
        if name == "view" or name.startswith("_gc"):
            return attribute
        return lambda *args, **kwargs: _dispatch(method, (self,) + args, kwargs, name=name,
                                                 mutates=name in _MUTATING_METHODS)

    # Operators that numpy implements without a ufunc.
    def __getitem__(self, key):
        return _dispatch(self._gc_array_class.__getitem__, (self, key), {}, name="getitem")

    def __setitem__(self, key, value) -> None:
        _dispatch(self._gc_array_class.__setitem__, (self, key, value), {}, name="setitem", mutates=True)

    def __len__(self) -> int:
        return len(self._gc_plain)

    def __iter__(self):
        return iter([self[i] for i in range(len(self))])

    def __copy__(self):
        return _dispatch(self._gc_array_class.copy, (self,), {}, name="copy")

    def __deepcopy__(self, memo):
        return self.__copy__()

    def __bool__(self) -> bool:
        return _decide(self, bool, "bool")

    def __float__(self) -> float:
        return float(_read(self, "item", (), {}))

    def __int__(self) -> int:
        return int(_read(self, "item", (), {}))

    def __index__(self) -> int:
        return operator.index(_read(self, "item", (), {}).value_guarded())

    def __complex__(self):
        return complex(float(self))

    def __repr__(self) -> str:
        return repr(self._gc_plain)


class _FunctionProxy:
    """A function of an array module seen through a capture: calls (and ufunc methods) are recorded."""

    __slots__ = ("_function", "_name")

    def __init__(self, function, name: str) -> None:
        self._function = function
        self._name = name

    def __call__(self, *args, **kwargs):
        return _dispatch(self._function, args, kwargs, name=self._name, mutates=self._name in _MUTATING_FUNCTIONS)

    def __getattr__(self, name: str):
        value = getattr(self._function, name)
        if callable(value) and isinstance(self._function, np.ufunc):
            return _FunctionProxy(value, f"{self._name}.{name}") if name != "at" else \
                lambda *a, **k: _dispatch(value, a, k, name=f"{self._name}.at", mutates=True)
        return value


class ModuleProxy:
    """An array module (numpy, CuPy) as ops see it during a capture: ``array_module`` returns this for traced
    arrays, so that ``xp.exp(x)`` is recorded like ``x.exp()`` would be, whatever the module's own dispatch."""

    def __init__(self, module) -> None:
        self._module = module

    def __getattr__(self, name: str):
        value = getattr(self._module, name)
        if isinstance(value, type(np)):
            return module_proxy(value)
        if callable(value) and not isinstance(value, type):
            return _FunctionProxy(value, name)
        return value


_module_proxies: dict = {}


def module_proxy(module) -> ModuleProxy:
    proxy = _module_proxies.get(module)
    if proxy is None:
        proxy = _module_proxies[module] = ModuleProxy(module)
    return proxy


def _attribute_getter(name: str) -> Callable:
    def get(array):
        return getattr(array, name)

    get.__name__ = name
    return get


# -- symbolic scalars ------------------------------------------------------------------------------------

def _binary(op: Callable, symbol: str, reflected: bool = False):
    def method(self, other):
        if not isinstance(other, (int, float, SymbolicScalar, np.generic)) or isinstance(other, np.ndarray):
            return NotImplemented
        a, b = (other, self) if reflected else (self, other)
        return self._recorder.scalar_op(op, (a, b), symbol)

    return method


def _comparison(op: Callable, symbol: str):
    def method(self, other):
        if not isinstance(other, (int, float, SymbolicScalar, np.generic)):
            return NotImplemented
        return self._recorder.guard_scalar(op, (self, other), symbol)

    return method


class SymbolicScalar:
    """A Python number known to a capture: an argument, or a value read from an array during the call.

    Arithmetic with numbers gives new symbolic scalars (recorded, recomputed by a replay); array operations take
    them as operands. A decision on one (comparison, ``bool``) records a guard on its outcome; a use that leaves
    the capture's sight (``float()``, ``int()``, formatting, hashing) records a guard on its value.
    """

    __slots__ = ("_recorder", "register", "value")
    __array_priority__ = 3000

    def __init__(self, recorder: "Recorder", register: int, value) -> None:
        self._recorder = recorder
        self.register = register
        self.value = value

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _dispatch(getattr(ufunc, method), inputs, kwargs, name=ufunc.__name__, ufunc=(ufunc, method),
                         mutates=method == "at")

    def value_guarded(self):
        """Returns the value, and makes a replay check that it is the same."""
        return self._recorder.guard_scalar(operator.eq, (self, self.value), "==", result=True, value=self.value)

    __add__ = _binary(operator.add, "+")
    __radd__ = _binary(operator.add, "+", True)
    __sub__ = _binary(operator.sub, "-")
    __rsub__ = _binary(operator.sub, "-", True)
    __mul__ = _binary(operator.mul, "*")
    __rmul__ = _binary(operator.mul, "*", True)
    __truediv__ = _binary(operator.truediv, "/")
    __rtruediv__ = _binary(operator.truediv, "/", True)
    __floordiv__ = _binary(operator.floordiv, "//")
    __rfloordiv__ = _binary(operator.floordiv, "//", True)
    __mod__ = _binary(operator.mod, "%")
    __rmod__ = _binary(operator.mod, "%", True)
    __pow__ = _binary(operator.pow, "**")
    __rpow__ = _binary(operator.pow, "**", True)
    __lt__ = _comparison(operator.lt, "<")
    __le__ = _comparison(operator.le, "<=")
    __gt__ = _comparison(operator.gt, ">")
    __ge__ = _comparison(operator.ge, ">=")
    __eq__ = _comparison(operator.eq, "==")
    __ne__ = _comparison(operator.ne, "!=")

    def __neg__(self):
        return self._recorder.scalar_op(operator.neg, (self,), "-")

    def __pos__(self):
        return self

    def __abs__(self):
        return self._recorder.scalar_op(abs, (self,), "abs")

    def _sqrt(self):
        return self._recorder.scalar_op(math.sqrt, (self,), "sqrt")

    def __bool__(self) -> bool:
        return self._recorder.guard_scalar(bool, (self,), "bool")

    def __float__(self) -> float:
        return float(self.value_guarded())

    def __int__(self) -> int:
        return int(self.value_guarded())

    def __index__(self) -> int:
        return operator.index(self.value_guarded())

    def __round__(self, ndigits=None):
        return round(self.value_guarded(), ndigits)

    def __trunc__(self):
        return math.trunc(self.value_guarded())

    def __floor__(self):
        return math.floor(self.value_guarded())

    def __ceil__(self):
        return math.ceil(self.value_guarded())

    def __hash__(self) -> int:
        return hash(self.value_guarded())

    def __format__(self, spec: str) -> str:
        return format(self.value_guarded(), spec)

    def __str__(self) -> str:
        return str(self.value_guarded())

    def __repr__(self) -> str:
        return repr(self.value_guarded())


def scalar_sqrt(x):
    """``math.sqrt`` that a capture can follow: a symbolic scalar's square root stays symbolic."""
    if isinstance(x, SymbolicScalar):
        return x._sqrt()
    return math.sqrt(x)


# -- recording -------------------------------------------------------------------------------------------

def _dispatch(fn: Callable, args, kwargs: dict, *, name: str, mutates: bool = False, ufunc=None):
    """Runs one operation on plain arrays, recording it when a capture is active."""
    recorder = _recorder
    if recorder is None or recorder.paused:
        return fn(*_plain(args), **_plain(kwargs))
    return recorder.record(fn, args, kwargs, name=name, mutates=mutates, ufunc=ufunc)


def _read(array, name: str, args, kwargs):
    recorder = _recorder
    plain = array._gc_plain
    if recorder is None or recorder.paused:
        return getattr(plain, name)(*args, **kwargs)
    return recorder.read(array, name, args, kwargs)


def _decide(array, convert: Callable, symbol: str):
    recorder = _recorder
    if recorder is None or recorder.paused:
        return convert(array._gc_plain)
    value = recorder.read(array, "item", (), {})
    return recorder.guard_scalar(convert, (value,), symbol)


def _plain(value):
    """Replaces traced arrays and symbolic scalars by plain arrays and numbers, in (nested) arguments."""
    if isinstance(value, _TracedMixin):
        return value._gc_plain
    if isinstance(value, SymbolicScalar):
        return value.value
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class Slot:
    """What the program knows of one array: the array, where it came from and whether a replay changes it."""

    __slots__ = ("array", "origin", "owner", "view_of", "written", "initial")

    def __init__(self, array, origin: str, owner=None, view_of: int | None = None) -> None:
        self.array = array  # the plain array (its memory is the slot's for the life of the program)
        self.origin = origin  # "input", "external", "constant", "computed" or "view"
        self.owner = owner  # for "external": the tensor whose _data it is
        self.view_of = view_of
        self.written = False  # written by some instruction (after it came into the program)
        self.initial = None  # for a written "constant": its value before the first write


class Recorder:
    """Records a call's array operations into instructions over slots and scalar registers."""

    def __init__(self) -> None:
        self.slots: list[Slot] = []
        self.instructions: list[Instruction] = []
        self.registers: list = []  # scalar values as captured
        self.register_labels: list[str] = []
        self.paused = False
        self._slot_of: dict = {}  # id(plain array) -> slot index
        self._keep: list = []  # keeps recorded objects alive, so that ids stay unique
        self.unsupported: str | None = None  # why the call cannot be replayed, if it cannot

    # -- slots ------------------------------------------------------------------------------------------
    def traced(self, plain, origin: str, owner=None, view_of: int | None = None):
        """Returns the traced view of a plain array, giving it a slot if it has none."""
        index = self._slot_of.get(id(plain))
        if index is None:
            index = len(self.slots)
            self.slots.append(Slot(plain, origin, owner, view_of))
            self._slot_of[id(plain)] = index
            self._keep.append(plain)
        return self._traced_view(plain, index)

    def _traced_view(self, plain, index: int):
        view = np.ndarray.view(plain, traced_class(type(plain)))
        view._gc_plain = plain
        view._gc_slot = index
        return view

    def slot_index(self, array) -> int:
        """Returns the slot of a traced or plain array; a plain array seen for the first time is a constant."""
        if isinstance(array, _TracedMixin):
            return array._gc_slot
        index = self._slot_of.get(id(array))
        if index is None:
            self.traced(array, "constant")
            index = self._slot_of[id(array)]
        return index

    def slot_of_plain(self, plain) -> int | None:
        return self._slot_of.get(id(plain))

    def new_register(self, value, label: str) -> SymbolicScalar:
        self.registers.append(value)
        self.register_labels.append(label)
        return SymbolicScalar(self, len(self.registers) - 1, value)

    # -- operands ---------------------------------------------------------------------------------------
    def _template(self, value, written: list):
        """Returns (template, plain): the operand with Ref/ScalarRef in place of arrays and symbolic scalars."""
        if isinstance(value, (_TracedMixin, np.ndarray)) and not isinstance(value, np.generic):
            index = self.slot_index(value)
            return Ref(index), self.slots[index].array
        if isinstance(value, SymbolicScalar):
            return ScalarRef(value.register), value.value
        if isinstance(value, (tuple, list)):
            pairs = [self._template(v, written) for v in value]
            kind = type(value) if type(value) in (tuple, list) else tuple
            return kind(p[0] for p in pairs), kind(p[1] for p in pairs)
        if isinstance(value, dict):
            pairs = {k: self._template(v, written) for k, v in value.items()}
            return {k: p[0] for k, p in pairs.items()}, {k: p[1] for k, p in pairs.items()}
        return value, value

    def _mark_written(self, index: int) -> None:
        slot = self.slots[index]
        if slot.view_of is not None:
            self._mark_written(slot.view_of)
        if not slot.written:
            slot.written = True
            if slot.origin == "constant":
                slot.initial = slot.array.copy()

    # -- operations -------------------------------------------------------------------------------------
    def record(self, fn: Callable, args, kwargs: dict, *, name: str, mutates: bool, ufunc):
        written: list = []
        args_template, plain_args = self._template(tuple(args), written)
        kwargs_template, plain_kwargs = self._template(dict(kwargs), written)
        self.paused = True
        try:
            result = fn(*plain_args, **plain_kwargs)
        finally:
            self.paused = False
        out = kwargs_template.get("out")
        targets: tuple = ()
        if out is not None:
            targets = tuple(r.index for r in (out if isinstance(out, tuple) else (out,)) if isinstance(r, Ref))
        elif mutates and args_template and isinstance(args_template[0], Ref):
            targets = (args_template[0].index,)
        if targets:
            for index in targets:
                self._mark_written(index)
            self.instructions.append(Instruction("array", fn, args_template, kwargs_template, targets, False,
                                                 name=name))
            if isinstance(result, tuple):
                return tuple(self._traced_view(self.slots[i].array, i) for i in targets)
            return None if result is None else self._traced_view(self.slots[targets[0]].array, targets[0])
        return self._result(fn, args_template, kwargs_template, plain_args, result, name, ufunc)

    def _result(self, fn, args_template, kwargs_template, plain_args, result, name: str, ufunc):
        if isinstance(result, tuple) and any(isinstance(r, np.ndarray) for r in result) and \
                all(r is None or isinstance(r, np.ndarray) for r in result):
            # Several fresh arrays (divmod, a kernel's output and what it saves, ...), some maybe None: one
            # instruction writing all of them; ``positions`` says where each stands in the result.
            positions = tuple(k for k, r in enumerate(result) if r is not None)
            indices = tuple(self._new_array(result[k], plain_args) for k in positions)
            ins = Instruction("array", fn, args_template, kwargs_template, indices, True, name=name)
            ins.positions = positions
            self.instructions.append(ins)
            views = dict(zip(positions, (self._traced_view(self.slots[i].array, i) for i in indices)))
            return tuple(views.get(k) for k in range(len(result)))
        if isinstance(result, np.generic):
            result = np.asarray(result)  # numpy's 0-d results are scalars; a slot needs an array
        if isinstance(result, np.ndarray):
            base_view = self._view_source(result, plain_args)
            if base_view is not None:
                known = self._slot_of.get(id(result))
                index = self.traced(result, "view", view_of=base_view)._gc_slot
                if known is None:  # a new view: recorded so that a program can take it of its own buffers
                    self.instructions.append(Instruction("view", fn, args_template, kwargs_template, (index,),
                                                         name=name))
                return self._traced_view(self.slots[index].array, index)
            index = self._new_array(result, plain_args)
            self.instructions.append(Instruction("array", fn, args_template, kwargs_template, (index,), True,
                                                 name=name))
            return self._traced_view(result, index)
        if isinstance(result, (bool, int, float, np.bool_)) or result is None:
            if result is None:
                # An operation with no result that was not known to write into an operand: it may have.
                self.unsupported = self.unsupported or f"{name}() returned nothing; what it wrote is unknown"
                return None
            symbolic = self.new_register(result, name)
            self.instructions.append(Instruction("scalar", fn, args_template, kwargs_template,
                                                 register=symbolic.register, name=name))
            return symbolic
        self.unsupported = f"{name} returned {type(result).__name__}"
        raise UnsupportedInCapture(f"a captured call cannot follow {name}(), which returned {type(result).__name__}")

    def _view_source(self, result, plain_args) -> int | None:
        """Returns the slot of the input array that ``result`` is a view of, or None for a new array."""
        for a in _arrays_in(plain_args):
            if result is a:
                return self.slot_index(a)
            if type(a) is type(result) and np.may_share_memory(np.ndarray.view(result, np.ndarray),
                                                               np.ndarray.view(a, np.ndarray)):
                return self.slot_index(a)
        return None

    def _new_array(self, result, plain_args) -> int:
        return self.traced(result, "computed")._gc_slot

    def read(self, array, name: str, args, kwargs):
        """A value read (``item``, ``tolist``): the number becomes a symbolic scalar; lists are guarded."""
        index = self.slot_index(array)
        plain = self.slots[index].array
        self.paused = True
        try:
            value = getattr(plain, name)(*args, **kwargs)
        finally:
            self.paused = False
        method = getattr(type(plain), name)
        if isinstance(value, (bool, int, float, complex)):
            symbolic = self.new_register(value, f"{name}(%{index})")
            self.instructions.append(Instruction("read", method, (Ref(index),) + tuple(args), dict(kwargs),
                                                 register=symbolic.register, name=name))
            return symbolic
        register = self.new_register(value, f"{name}(%{index})").register
        self.instructions.append(Instruction("read", method, (Ref(index),) + tuple(args), dict(kwargs),
                                             register=register, name=name))
        self.instructions.append(Instruction("guard", operator.eq, (ScalarRef(register), value), {}, expected=True,
                                             name="==", label=f"{name}(%{index}) == {value!r}"))
        return value

    def scalar_op(self, op: Callable, operands: tuple, symbol: str) -> SymbolicScalar:
        templates = tuple(ScalarRef(o.register) if isinstance(o, SymbolicScalar) else o for o in operands)
        values = tuple(o.value if isinstance(o, SymbolicScalar) else o for o in operands)
        value = op(*values)
        label = f" {symbol} ".join(map(repr, templates)) if len(templates) == 2 else f"{symbol}({templates[0]!r})"
        symbolic = self.new_register(value, label)
        self.instructions.append(Instruction("scalar", op, templates, {}, register=symbolic.register, name=symbol))
        return symbolic

    def guard_scalar(self, op: Callable, operands: tuple, symbol: str, result=None, value=None):
        """Records that ``op(*operands)`` must give what it gives now; returns that (or ``value``)."""
        templates = tuple(ScalarRef(o.register) if isinstance(o, SymbolicScalar) else o for o in operands)
        values = tuple(o.value if isinstance(o, SymbolicScalar) else o for o in operands)
        outcome = op(*values)
        if isinstance(outcome, np.bool_):
            outcome = bool(outcome)
        label = f" {symbol} ".join(map(repr, templates)) if len(templates) == 2 else f"{symbol}({templates[0]!r})"
        self.instructions.append(Instruction("guard", op, templates, {}, expected=outcome, name=symbol,
                                             label=f"{label} is {outcome!r}"))
        return outcome if value is None else value


def leaves(value):
    """The values in (nested) tuples, lists and dicts of operands, in order."""
    if isinstance(value, (tuple, list)):
        for v in value:
            yield from leaves(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    else:
        yield value


def _arrays_in(value):
    return (v for v in leaves(value) if isinstance(v, np.ndarray))


def untraced(value):
    """The plain array behind a traced one (anything else as it is)."""
    return value._gc_plain if isinstance(value, _TracedMixin) else value


def recorded(function: Callable, name: str) -> Callable:
    """Wraps a function of arrays so that, during a capture, a call with traced arrays is one recorded operation."""
    def call(*args, **kwargs):
        if _recorder is None or _recorder.paused or not any(isinstance(a, _TracedMixin)
                                                             for a in (*args, *kwargs.values())):
            return function(*args, **kwargs)
        return _dispatch(function, args, kwargs, name=name)

    call.__name__ = name
    call.__wrapped__ = function
    return call


def host_call(function: Callable, name: str, *arrays) -> None:
    """Runs ``function(*arrays)`` (with plain arrays), which may write into ``arrays`` in place and returns
    nothing; during a capture it is also recorded as a host step that writes them, so that a replay calls
    ``function`` again, on the program's own arrays, at the same place among the other operations (a collective
    on a gradient buffer, for example). With no arrays, it is Python that every replay runs at that place (state
    kept outside arrays). The instruction is marked ``host``: it is always replayed, and stays outside fused and
    device-graph segments."""
    recorder = _recorder
    if recorder is None or recorder.paused:
        function(*(untraced(a) for a in arrays))
        return
    indices = tuple(recorder.slot_index(a) for a in arrays)
    recorder.paused = True
    try:
        function(*(recorder.slots[i].array for i in indices))
    finally:
        recorder.paused = False
    for i in indices:
        recorder._mark_written(i)
    instruction = Instruction("array", function, tuple(Ref(i) for i in indices), {}, indices, False, name=name)
    instruction.host = True
    recorder.instructions.append(instruction)


def activate(recorder: "Recorder | None") -> "Recorder | None":
    """Makes ``recorder`` the active one (None ends recording); returns the previous one."""
    global _recorder
    previous, _recorder = _recorder, recorder
    return previous
