"""``gradcore.compile``: capture a call's array program once, replay it while its guards hold.

The first call with a new kind of arguments runs the function eagerly while a ``Recorder`` watches every array
operation (``trace.py``), including those of ``backward()``, ``optimizer.step()`` and ``zero_grad()`` called
inside. What the call depended on becomes guards:

- the arguments: tensors' shapes, dtypes, devices and ``requires_grad``; other arguments by value; Python
  numbers as symbolic scalars, so that a comparison that steered control flow is checked by its outcome;
- grad mode;
- every tensor that existed before the call and whose data it used (parameters, optimizer state, gradients):
  the same tensor with the same array, and, for ``.grad``, the same binding where the call read it first;
- optimizers stepped (hyperparameters, parameters, which state they hold) and modules called (train/eval);
- values read from tensors (``.item()``, ``bool(t)``, ``if x.sum() > 0``), checked as the replay computes them.

Later calls whose guards hold replay the program (``program.py``): a flat list of array calls writing into the
buffers of the capture, with no tensors, nodes or engine. A call whose guards fail is captured again as another
variant; past ``cache_size_limit`` variants the function runs eagerly, with one warning.

On a CUDA device the replay is made of CUDA graphs (``cuda_graph.py``): the call's tensors are copied into the
program's static input buffers, the graphs captured on the first replay are launched, and the results are read
from the program's buffers. Host steps (guards checked during the replay, ``.item()`` values and what is
computed from them) run from Python between graph segments, so a program without them is one graph.
``cuda_graph_stats`` counts the graphs and their launches, and says why replays run step by step where a
capture is not possible.

What runs only while capturing: Python side effects (printing, appending to lists, changing attributes), hooks
on tensors made inside the function, and anything that does not act on arrays, except host steps
(``trace.host_call``): Python recorded to run at its place in every replay, such as DistributedDataParallel's
all-reduces (its post-accumulate-grad hook is marked ``capture_safe``). Random sampling and a few
other operations cannot be replayed: calls that use them run eagerly, with one warning naming the reason.
"""
from __future__ import annotations

import functools
import threading
import warnings
import weakref
from typing import Any, Callable

import numpy as np

from .. import autograd as _autograd
from ..autograd import function as _function
from ..autograd.engine import run_backward
from ..autograd.grad_mode import state as _grad_state
from ..backend import backend_of
from ..backend import cpu as _cpu_backend
from ..tensor import Tensor, make_tensor
from . import cuda_graph, trace
from .fusion import fuse
from .program import GuardFailed, Program
from .trace import Recorder, SymbolicScalar, UnsupportedInCapture

__all__ = ["compile", "CompiledCallable", "cache_size_limit"]

#: How many variants (captures under different guards) a compiled function keeps before running eagerly.
cache_size_limit = 8

_RAW_DATA = Tensor.__dict__["_data"]
_RAW_GRAD = Tensor.__dict__["_grad"]
_capture_lock = threading.Lock()
_NOT_NONE = object()  # a .grad guard that holds for any tensor
# The functions of gradcore/backend/kernels.py that ops call: each takes arrays and returns new ones.
_KERNEL_ENTRY_POINTS = ("gemm", "linear_forward", "linear_backward", "bias_activation", "activation_backward",
                        "clamp_forward", "clamp_backward", "relu_backward", "sigmoid_forward", "sigmoid_backward")
_active: "_Capture | None" = None


# -- hooks installed on the Tensor class while a capture runs --------------------------------------------

def _data_get(t):
    array = _RAW_DATA.__get__(t, Tensor)
    capture = _active
    if capture is None or trace.is_traced(array) or capture.recorder.paused:
        return array
    return capture.external_data(t, array)


def _data_set(t, value) -> None:
    capture = _active
    if capture is not None:
        capture.note_data_set(t)
    _RAW_DATA.__set__(t, value)


def _grad_get(t):
    value = _RAW_GRAD.__get__(t, Tensor)
    capture = _active
    if capture is not None:
        capture.note_grad(t, value, read=True)
    return value


def _grad_set(t, value) -> None:
    capture = _active
    if capture is not None:
        capture.note_grad(t, value, read=False)
    _RAW_GRAD.__set__(t, value)


class _Capture:
    """One eager call watched by a recorder; ``finish`` turns what it saw into a ``Variant``."""

    def __init__(self, input_tensors: list, identity_tensors: list) -> None:
        self.recorder = Recorder()
        self.inputs: dict = {}  # id(tensor) -> traced static buffer
        self.input_slots: list[int] = []
        self.input_tensors = input_tensors
        for t in input_tensors:
            static = _RAW_DATA.__get__(t, Tensor).copy()
            traced_view = self.recorder.traced(static, "input")
            self.inputs[id(t)] = traced_view
            self.input_slots.append(traced_view._gc_slot)
        # The arrays the input tensors held when the call began: the static copy stands in for those only.
        self.input_arrays = {id(t): _RAW_DATA.__get__(t, Tensor) for t in input_tensors}
        self.identity_tensors = identity_tensors
        self.externals: dict = {}  # id(tensor) -> (tensor, array, version at first use)
        self.created: dict = {}  # id(tensor) -> weakref of tensors made during the call
        self.grad_first: dict = {}  # id(tensor) -> (tensor, "read" binding or None)
        self.grad_final: dict = {}  # id(tensor) -> (tensor, final value)
        self.optimizers: dict = {}  # id -> (optimizer, guard snapshot)
        self.modules: dict = {}  # id -> (module, training flags)
        self.random = False
        self.hooks: str | None = None  # what hooks ran: Python a replay would not run

    # -- tensors ---------------------------------------------------------------------------------------
    def note_data_set(self, t) -> None:
        try:
            _RAW_DATA.__get__(t, Tensor)
        except AttributeError:  # a tensor being made
            self.created[id(t)] = weakref.ref(t)

    def external_data(self, t, array):
        if not isinstance(array, np.ndarray):  # a CuPy array: not traceable (see _untraceable)
            self.recorder.unsupported = self.recorder.unsupported or _untraceable(array)
            return array
        traced_input = self.inputs.get(id(t))
        if traced_input is not None and array is self.input_arrays.get(id(t)):
            return traced_input
        recorder = self.recorder
        index = recorder.slot_of_plain(array)
        if index is None:
            made_here = id(t) in self.created
            recorder.traced(array, "constant" if made_here else "external", owner=None if made_here else t)
            index = recorder.slot_of_plain(array)
        if id(t) not in self.created and id(t) not in self.externals:
            self.externals[id(t)] = (t, array, t._version_counter.value)
        return recorder._traced_view(array, index)

    def note_grad(self, t, value, read: bool) -> None:
        key = id(t)
        if key in self.created:
            return
        if key not in self.grad_first:
            self.grad_first[key] = (t, read, value)
        if not read:
            self.grad_final[key] = (t, value)

    # -- optimizers and modules ------------------------------------------------------------------------
    def note_optimizer(self, optimizer) -> None:
        if id(optimizer) not in self.optimizers:
            self.optimizers[id(optimizer)] = (optimizer, _optimizer_snapshot(optimizer))

    def note_module(self, module) -> None:
        if id(module) not in self.modules:
            self.modules[id(module)] = (module, _training_flags(module))
        if module._forward_hooks or module._forward_pre_hooks:
            self.hooks = f"{type(module).__name__} has forward hooks"

    def note_hooks(self, node) -> None:
        self.hooks = f"backward hooks or retain_grad() on {node.name()}"


def _optimizer_snapshot(optimizer) -> tuple:
    groups = []
    for group in optimizer.param_groups:
        settings = tuple(sorted((k, _freeze(v)) for k, v in group.items() if k != "params"))
        params = tuple(id(p) for p in group["params"])
        state = tuple(frozenset(optimizer.state[p].keys()) if p in optimizer.state else frozenset()
                      for p in group["params"])
        groups.append((settings, params, state))
    return tuple(groups)


def _freeze(value):
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _training_flags(module) -> tuple:
    """train()/eval() of a module and its submodules, with what a module's ``_capture_guard()`` (if its class has
    one) says its captured behaviour depends on (DistributedDataParallel: whether backward all-reduces)."""
    return tuple(m.training if getattr(type(m), "_capture_guard", None) is None
                 else (m.training, m._capture_guard()) for m in module.modules())


# -- installing and removing the hooks -------------------------------------------------------------------

class _Hooks:
    """Puts the capture's hooks on Tensor, Optimizer, Module and the random generators, and takes them off."""

    def __init__(self, capture: _Capture) -> None:
        self.capture = capture
        self.saved: list = []

    def _patch(self, owner: type, name: str, value) -> None:
        self.saved.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, value)

    def __enter__(self):
        global _active
        from ..nn.modules.module import Module
        from ..optim.optimizer import Optimizer

        capture = self.capture
        self._patch(Tensor, "_data", property(_data_get, _data_set))
        self._patch(Tensor, "_grad", property(_grad_get, _grad_set))
        for cls in _subclasses(Optimizer):
            if "step" in cls.__dict__:
                self._patch(cls, "step", _noting(cls.__dict__["step"], capture.note_optimizer))
        self._patch(Module, "__call__", _noting(Module.__dict__["__call__"], capture.note_module))
        generator = _cpu_backend.Backend.__dict__["generator"]

        def draw(backend):
            capture.random = True
            return generator.__get__(backend)

        self._patch(_cpu_backend.Backend, "generator", property(draw))
        # The CUDA backends call their array module directly: during the capture it is seen through the recorder.
        from ..backend import cuda as _cuda_backend

        for backend in _cuda_backend._backends.values():
            self.saved.append((backend, "xp", backend.xp))
            backend.xp = trace.module_proxy(backend.xp)
        self._patch_kernels()
        from ..autograd import engine

        run_hooks = engine.__dict__["_run_hooks"]

        def noting_hooks(node, grads, create_graph):
            capture.note_hooks(node)
            return run_hooks(node, grads, create_graph)

        self._patch_module(engine, "_run_hooks", noting_hooks)
        trace.activate(capture.recorder)
        _active = capture
        return self

    def _patch_kernels(self) -> None:
        """Our CUDA kernels' entry points are recorded as single operations (each returns new arrays), and the
        launcher for traced arrays is that of the arrays they trace."""
        from ..backend import kernels

        runs_on = kernels.__dict__["runs_on"]
        self._patch_module(kernels, "runs_on", lambda *arrays: runs_on(*(trace.untraced(a) for a in arrays)))
        for name in _KERNEL_ENTRY_POINTS:
            function = kernels.__dict__.get(name)
            if function is not None:
                self._patch_module(kernels, name, trace.recorded(function, name))

    def _patch_module(self, module, name: str, value) -> None:
        self.saved.append((module, name, module.__dict__[name]))
        setattr(module, name, value)

    def __exit__(self, *exc) -> None:
        global _active
        _active = None
        trace.activate(None)
        for owner, name, value in reversed(self.saved):
            if isinstance(owner, (type, type(np))):
                setattr(owner, name, value)
            else:
                owner.__dict__[name] = value


def _subclasses(cls) -> list:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


def _noting(method: Callable, note: Callable) -> Callable:
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        note(self)
        return method(self, *args, **kwargs)

    return wrapper


# -- arguments -------------------------------------------------------------------------------------------

class _Signature:
    """How a call's arguments are split: tensors to copy in, tensors to keep by identity, numbers, the rest.

    ``key`` describes everything a variant must match exactly (shapes, dtypes, devices, requires_grad, the
    types of numbers, other arguments by value); it is built on every call, so it is kept cheap.
    """

    __slots__ = ("args", "kwargs", "tensors", "identity", "numbers", "key")

    def __init__(self, args: tuple, kwargs: dict) -> None:
        self.args, self.kwargs = args, kwargs
        self.tensors: list = []  # copied into static inputs
        self.identity: list = []  # tensors that require grad: the same objects each call
        self.numbers: list = []
        key: list = []
        for value in args:
            self._walk(value, key)
        if kwargs:
            key.append(tuple(kwargs))
            for value in kwargs.values():
                self._walk(value, key)
        self.key = tuple(key)

    def _walk(self, value, key: list) -> None:
        cls = value.__class__
        if cls is float or cls is int:
            key.append(cls)
            self.numbers.append(value)
        elif isinstance(value, Tensor):
            data = _RAW_DATA.__get__(value, Tensor)
            device = None if data.__class__ is np.ndarray else str(backend_of(data).device)
            key.append((data.shape, data.dtype, data.__class__, device, value._requires_grad))
            (self.identity if value._requires_grad else self.tensors).append(value)
        elif cls is tuple or cls is list:
            key.append((cls, len(value)))
            for v in value:
                self._walk(v, key)
        elif cls is dict:
            key.append(("dict", tuple(value)))
            for v in value.values():
                self._walk(v, key)
        else:
            try:
                hash(value)
                key.append(("value", cls, value))
            except TypeError:
                key.append(("object", id(value)))

    def rebuild(self, numbers: list):
        """The call's arguments with ``numbers`` in place of its Python numbers (symbolic during a capture)."""
        counters = {"number": 0}

        def walk(value):
            cls = value.__class__
            if cls is float or cls is int:
                counters["number"] += 1
                return numbers[counters["number"] - 1]
            if cls is tuple or cls is list:
                return cls(walk(v) for v in value)
            if cls is dict:
                return {k: walk(v) for k, v in value.items()}
            return value

        return tuple(walk(v) for v in self.args), {k: walk(v) for k, v in self.kwargs.items()}


# -- a captured variant ----------------------------------------------------------------------------------

class Variant:
    """One capture: its program, the guards it replays under, and how to rebuild the call's results."""

    def __init__(self) -> None:
        self.program: Program | None = None
        self.eager_reason: str | None = None
        self.identity: list = []
        self.externals: list = []  # (tensor, array, version delta)
        self.grad_guards: list = []  # (tensor, binding) read before written
        self.grad_final: list = []  # (tensor, value) to restore after a replay
        self.optimizers: list = []
        self.modules: list = []
        self.globals: list = []  # (namespace or cell, name, object)
        self.written_inputs: list = []  # input positions the program writes into (copied back)
        self.output_spec = None
        self.number_registers: list = []
        self.forward_instructions: int | None = None  # where the captured backward begins, if there is one
        self.forward_steps = 0
        self.backward_inputs: list = []  # slots for the output gradients (compiled backward)
        self.backward_outputs: list = []  # slots (or None) of the boundary tensors' gradients
        self.boundary: list = []
        self.generation = 0
        self.verified = False  # replays only after a second capture agreed (CompiledCallable._verify)
        self.cuda_graphs: dict = {}  # part of the program -> its cuda_graph.StepRunner, made on first replay
        self.graph_stats: dict = {}

    def holds(self, signature: _Signature) -> bool:
        """Whether this variant's guards hold for a call (all but those the replay checks as it goes)."""
        return self.failed_guard(signature) is None

    def failed_guard(self, signature: _Signature) -> str | None:
        """Describes the first of this variant's guards that fails for a call, or returns None."""
        for a, b in zip(self.identity, signature.identity):
            if a is not b:
                return "a tensor argument that requires grad is another tensor"
        for t, array, _ in self.externals:
            if _RAW_DATA.__get__(t, Tensor) is not array:
                return f"the data of a tensor of shape {list(array.shape)} was replaced"
        for t, binding in self.grad_guards:
            current = _RAW_GRAD.__get__(t, Tensor)
            if current is not binding and (binding is not _NOT_NONE or current is None):
                return f".grad of a tensor of shape {list(t.shape)} is another tensor (or None)"
        for optimizer, snapshot in self.optimizers:
            if _optimizer_snapshot(optimizer) != snapshot:
                return f"the settings, parameters or state of {type(optimizer).__name__} changed"
        for module, flags in self.modules:
            if _training_flags(module) != flags:
                return (f"{type(module).__name__} switched between train() and eval(), or into or out of "
                        "no_sync()")
        for namespace, name, obj in self.globals:
            current = namespace.get(name) if isinstance(namespace, dict) else namespace.cell_contents
            if current is not obj:
                return f"the global or closure variable {name or '(closure)'} is another object"
        return None


class _CompiledBackward(_function.Function):
    """The node of a replayed call's outputs: its backward replays the captured backward program."""

    node_name = "CompiledFunctionBackward"

    @staticmethod
    def forward(ctx, variant: Variant, *boundary):
        program = variant.program
        ctx.variant = variant
        ctx.generation = variant.generation
        arrays = [program.arrays[i].copy() for i in variant.output_slots]
        ctx.mark_non_differentiable(*[a for a, d in zip(arrays, variant.output_differentiable) if not d])
        return tuple(arrays)

    @staticmethod
    def backward(ctx, *grads):
        variant = ctx.variant
        if ctx.generation != variant.generation:
            raise RuntimeError(
                "gradcore.compile: the compiled function was called again before the backward of an earlier call; "
                "its saved values are overwritten by the later call. Call backward() before calling it again, or "
                "run that call without compilation."
            )
        if _grad_state.enabled:
            raise RuntimeError("gradcore.compile: create_graph=True through a compiled function is not supported")
        program = variant.program
        for slot, grad in zip(variant.backward_inputs, grads):
            target = program.arrays[slot]
            if grad is None:
                target[...] = 0
            else:
                np.copyto(target, grad._data)
        cuda_graph.run_part(variant, "backward", variant.graph_stats)
        return (None,) + tuple(None if s is None else make_tensor(program.arrays[s].copy())
                               for s in variant.backward_outputs)


# -- the compiled callable -------------------------------------------------------------------------------

class CompiledCallable:
    """What ``gradcore.compile`` returns for a function: call it as the function."""

    def __init__(self, fn: Callable, *, fullgraph: bool = False, disable: bool = False, name: str | None = None,
                 trace_only: bool = False) -> None:
        self._fn = fn
        self._fullgraph = fullgraph
        self._disable = disable
        self._variants: dict = {}
        self._count = 0
        self._warned: set = set()
        self._trace_only = trace_only
        self.__name__ = name or getattr(fn, "__name__", type(fn).__name__)
        functools.update_wrapper(self, fn, updated=()) if callable(fn) and hasattr(fn, "__name__") else None
        #: The number of calls that replayed, captured and ran eagerly, for looking inside.
        self.stats = {"replays": 0, "captures": 0, "eager": 0}
        #: On a CUDA device: CUDA graphs captured, graph launches, and why replays run step by step (or None).
        self.cuda_graph_stats = {"graphs": 0, "launches": 0, "fallback": None}

    # -- calling ---------------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if self._disable:
            return self._fn(*args, **kwargs)
        signature = _Signature(args, kwargs)
        key = (_grad_state.enabled, _grad_state.anomaly, signature.key)
        variants = self._variants.setdefault(key, [])
        for position, variant in enumerate(variants):
            if variant.holds(signature):
                if variant.eager_reason is not None:
                    self.stats["eager"] += 1
                    return self._fn(*args, **kwargs)
                if not variant.verified:
                    return self._verify(variants, position, signature, args, kwargs)
                try:
                    result = self._replay(variant, signature)
                except GuardFailed:
                    continue
                if position:  # the variant that fits now is tried first next time
                    variants.insert(0, variants.pop(position))
                self.stats["replays"] += 1
                return result
        for t in signature.tensors + signature.identity:
            data = _RAW_DATA.__get__(t, Tensor)
            if not isinstance(data, np.ndarray):
                self._warn("untraceable", f"gradcore.compile: {self.__name__} runs eagerly: {_untraceable(data)}")
                self.stats["eager"] += 1
                return self._fn(*args, **kwargs)
        if self._count >= cache_size_limit:
            self._warn("cache", f"gradcore.compile: {self.__name__} reached cache_size_limit ({cache_size_limit}) "
                                "variants; calls that fit none of them run eagerly")
            self.stats["eager"] += 1
            return self._fn(*args, **kwargs)
        self._count += 1
        self.stats["captures"] += 1
        result, variant = self._capture(signature, args, kwargs)
        if variant.eager_reason is not None:
            self._fail(variant)
        variants.append(variant)
        return result

    def _verify(self, variants: list, position: int, signature: _Signature, args: tuple, kwargs: dict):
        """Captures a second call that fits a variant and replays only if both captures agree.

        A value that the program computes from something the capture cannot follow (a Python number kept
        between calls, an array operation that escaped the recorder) is a constant of the program: it would
        be replayed stale. Two captures made from different data show it, as a constant that differs; such a
        function runs eagerly. A second capture that took other decisions is another variant.
        """
        first = variants[position]
        self.stats["captures"] += 1
        result, second = self._capture(signature, args, kwargs)
        if second.eager_reason is None:
            if _decisions(first) != _decisions(second):
                variants.append(second)
                return result
            difference = _difference(first.program, second.program)
            if difference is None:
                second.verified = True
            else:
                second.eager_reason = difference
        if second.eager_reason is not None:
            self._fail(second)
        variants[position] = second
        return result

    def _fail(self, variant: Variant) -> None:
        if self._fullgraph:
            raise RuntimeError(f"gradcore.compile(fullgraph=True): {self.__name__} cannot be captured: "
                               f"{variant.eager_reason}")
        self._warn(variant.eager_reason, f"gradcore.compile: {self.__name__} runs eagerly: {variant.eager_reason}")

    def _warn(self, reason: str, message: str) -> None:
        if reason not in self._warned:
            self._warned.add(reason)
            warnings.warn(message, stacklevel=3)

    # -- capture ---------------------------------------------------------------------------------------
    def _capture(self, signature: _Signature, args: tuple, kwargs: dict):
        with _capture_lock:
            capture = _Capture(signature.tensors, signature.identity)
            start_sequence = _function._next_sequence_nr()
            with _Hooks(capture):
                numbers = [capture.recorder.new_register(n, f"arg{i}") for i, n in enumerate(signature.numbers)]
                call_args, call_kwargs = signature.rebuild(numbers)
                result = self._fn(*call_args, **call_kwargs)
                variant = Variant()
                try:
                    output_spec, backward = self._outputs(capture, variant, result, start_sequence)
                except UnsupportedInCapture as exc:
                    capture.recorder.unsupported = str(exc)
                    output_spec, backward = None, None
            variant.number_registers = [n.register for n in numbers]
            self._finish(capture, variant, signature, output_spec, backward)
            return _untrace_result(result), variant

    def _outputs(self, capture: _Capture, variant: Variant, result, start_sequence: int):
        """Describes the call's results, and captures the backward of those that require grad."""
        recorder = capture.recorder
        tensors: list = []

        def describe(value):
            if isinstance(value, Tensor):
                for k, t in enumerate(capture.input_tensors):
                    if value is t:
                        return ("input", k)
                data = _RAW_DATA.__get__(value, Tensor)
                if not trace.is_traced(data) or id(value) in capture.externals:
                    return ("object", value)
                tensors.append(value)
                return ("tensor", len(tensors) - 1)
            if isinstance(value, SymbolicScalar):
                return ("register", value.register)
            if isinstance(value, (tuple, list)):
                return (type(value), tuple(describe(v) for v in value))
            if isinstance(value, dict):
                return ("dict", tuple((k, describe(v)) for k, v in value.items()))
            return ("object", value)

        spec = describe(result)
        variant.output_slots = [_RAW_DATA.__get__(t, Tensor)._gc_slot for t in tensors]
        differentiable = [t._requires_grad and t._grad_fn is not None
                          and getattr(t._grad_fn, "sequence_nr", -1) >= start_sequence for t in tensors]
        variant.output_differentiable = differentiable
        if not any(differentiable):
            return spec, None
        roots = [t for t, d in zip(tensors, differentiable) if d]
        if _graph_freed([t._grad_fn for t in roots], start_sequence):
            return spec, "freed"
        boundary = [t for t, _, _ in capture.externals.values() if t._requires_grad]
        boundary += [t for t in capture.identity_tensors if all(t is not b for b in boundary)]
        variant.forward_instructions = len(recorder.instructions)
        grad_slots = []
        grads = []
        for t in roots:
            zeros = np.zeros_like(_RAW_DATA.__get__(t, Tensor)._gc_plain)
            traced_grad = recorder.traced(zeros, "input")
            grad_slots.append(traced_grad._gc_slot)
            grads.append(make_tensor(traced_grad))
        results = run_backward(roots, grads, retain_graph=True, create_graph=False, inputs=boundary,
                               accumulate=False) if boundary else []
        variant.backward_inputs = grad_slots
        variant.boundary = boundary
        variant.backward_outputs = [None if g is None else _RAW_DATA.__get__(g, Tensor)._gc_slot for g in results]
        return spec, "compiled"

    def _finish(self, capture: _Capture, variant: Variant, signature: _Signature, spec, backward) -> None:
        recorder = capture.recorder
        variant.output_spec = spec
        variant.identity = list(signature.identity)
        reason = recorder.unsupported
        if capture.random:
            reason = reason or "it draws random numbers, which a replay would repeat"
        for t, _, _ in capture.externals.values():
            hooks = getattr(t, "_post_accumulate_grad_hooks", None)
            # A hook marked ``capture_safe`` records what a replay must repeat (DistributedDataParallel's
            # all-reduces, as host steps) and needs no Python of its own on replay.
            if hooks and not all(getattr(hook, "capture_safe", False) for hook in hooks):
                capture.hooks = capture.hooks or "a tensor it uses has a post-accumulate-grad hook"
        if capture.hooks:
            reason = reason or f"it runs hooks ({capture.hooks}), Python that a replay would not run"
        for t, array, version in capture.externals.values():
            variant.externals.append((t, array, t._version_counter.value - version))
        # A .grad read before written: the call depended on whether it was None and, where it used that
        # gradient's data, on which tensor it was.
        variant.grad_guards = [(t, value if value is None or id(value) in capture.externals else _NOT_NONE)
                               for t, read, value in capture.grad_first.values() if read]
        variant.grad_final = [(t, value) for t, value in capture.grad_final.values()]
        variant.optimizers = list(capture.optimizers.values())
        variant.modules = list(capture.modules.values())
        variant.globals = _global_guards(self._fn)
        variant.backward = backward
        # Tensors made during the call that are still alive hold what persists (optimizer state): their arrays are
        # kept from one replay to the next instead of being reset to their first value.
        # What persists from one call to the next: optimizer state, module buffers and parameters, gradients
        # bound to tensors. Their arrays are the capture's own (a replay updates them where the call did);
        # every other array the call made is a temporary of the program.
        persistent = set()
        kept = [v for _, v in capture.grad_final.values()]
        for optimizer, _ in capture.optimizers.values():
            kept += [v for state in optimizer.state.values() for v in state.values() if isinstance(v, Tensor)]
        for module, _ in capture.modules.values():
            for m in module.modules():
                kept += list(m._buffers.values()) + list(m._parameters.values())
        for t in kept:
            if t is not None:
                data = _RAW_DATA.__get__(t, Tensor)
                persistent.add(id(data._gc_plain if trace.is_traced(data) else data))
        shared = set()
        for index, slot in enumerate(recorder.slots):
            if id(slot.array) in persistent:
                shared.add(index)
                if slot.origin == "constant" and slot.written:
                    slot.origin = "external"
        _untrace_tensors(capture)
        if reason is not None:
            variant.eager_reason = reason
            return
        input_slots = capture.input_slots + list(variant.backward_inputs)
        seen_outside = shared | set(input_slots) | set(getattr(variant, "output_slots", ())) | \
            {s for s in variant.backward_outputs if s is not None}
        variant.forward_instructions = fuse(recorder, seen_outside, variant.forward_instructions)
        dynamic_registers = set(variant.number_registers)
        program = Program(recorder, input_slots, dynamic_registers, shared)
        variant.program = program
        variant.graph_stats = self.cuda_graph_stats
        end = variant.forward_instructions if variant.forward_instructions is not None else len(program.instructions)
        variant.forward_steps = sum(1 for p in program.live if p < end)
        variant.input_arrays = [program.arrays[i] for i in capture.input_slots]
        written = {i for i, s in enumerate(recorder.slots) if s.written}
        variant.written_inputs = [k for k, i in enumerate(capture.input_slots) if i in written]
        for k in variant.written_inputs:  # the call wrote into its static copy of the input, not the input
            np.copyto(_RAW_DATA.__get__(signature.tensors[k], Tensor), variant.input_arrays[k])
        guard_after_write = _first_external_write(program)
        if guard_after_write is not None:
            variant.eager_reason = guard_after_write

    # -- replay ----------------------------------------------------------------------------------------
    def _replay(self, variant: Variant, signature: _Signature):
        program = variant.program
        for target, t in zip(variant.input_arrays, signature.tensors):
            np.copyto(target, _RAW_DATA.__get__(t, Tensor))
        registers = program.registers
        for register, value in zip(variant.number_registers, signature.numbers):
            registers[register] = value
        variant.generation += 1
        part = "forward" if variant.backward == "compiled" else "all"
        cuda_graph.run_part(variant, part, variant.graph_stats)
        for k in variant.written_inputs:
            np.copyto(_RAW_DATA.__get__(signature.tensors[k], Tensor), variant.input_arrays[k])
        for t, value in variant.grad_final:
            _RAW_GRAD.__set__(t, value)
        for t, _, delta in variant.externals:
            if delta:
                t._version_counter.value += delta
        outputs = self._output_tensors(variant)
        return _build(variant.output_spec, outputs, registers, signature.tensors)

    def _output_tensors(self, variant: Variant) -> list:
        program = variant.program
        if variant.backward == "compiled":
            return list(_CompiledBackward.apply(variant, *variant.boundary))
        outputs = [make_tensor(program.arrays[s].copy()) for s in variant.output_slots]
        if variant.backward == "freed":
            for t, d in zip(outputs, variant.output_differentiable):
                if d:
                    node = _FreedGraph._backward_cls()
                    node.sequence_nr = _function._next_sequence_nr()
                    t._grad_fn, t._requires_grad = node, True
        return outputs

    # -- looking inside --------------------------------------------------------------------------------
    def programs(self) -> list[Program]:
        """The programs of the variants captured so far, in the order they were captured."""
        return [v.program for vs in self._variants.values() for v in vs if v.program is not None]

    def listing(self) -> str:
        """The captured programs as text, one line per array operation (see ``Program.listing``)."""
        parts = []
        for n, program in enumerate(self.programs()):
            parts.append(f"# variant {n}\n{program.listing()}")
        return "\n\n".join(parts) if parts else "# nothing captured yet"

    def to_dot(self) -> str:
        """The first captured program as Graphviz DOT text."""
        programs = self.programs()
        if not programs:
            raise RuntimeError(f"{self.__name__} has not been captured yet: call it once first")
        return programs[0].to_dot(self.__name__)


class _FreedGraph(_function.Function):
    """The history of a replayed output whose graph the call itself consumed (it called backward())."""

    node_name = "CompiledFunctionBackward"

    @staticmethod
    def forward(ctx, *args):  # pragma: no cover - never applied, only its node is used
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(_function._FREED_MESSAGE)


def _decisions(variant: Variant) -> list:
    """The outcomes of the decisions a capture recorded, in order (two captures that differ here are variants)."""
    if variant.program is None:
        return []
    return [(ins.name, ins.expected) for ins in variant.program.instructions if ins.kind == "guard"]


_UNINITIALIZED = frozenset({"empty", "empty_like"})


def _difference(first: Program, second: Program) -> str | None:
    """Why two captures of the same decisions do not describe the same program, or None when they do."""
    if len(first.instructions) != len(second.instructions) or len(first.slots) != len(second.slots):
        return "two calls that took the same decisions ran different array operations"
    for a, b in zip(first.instructions, second.instructions):
        if (a.kind, a.name, a.outputs, a.fresh, a.register) != (b.kind, b.name, b.outputs, b.fresh, b.register):
            return f"two calls that took the same decisions ran different array operations ({a.name}, {b.name})"
        if not _same_template((a.args, a.kwargs), (b.args, b.kwargs)):
            return (f"an operand of {a.name} is not the same in two calls, and the capture cannot see what it comes "
                    "from (a Python number kept between calls, or an array operation outside gradcore)")
    if first.dynamic != second.dynamic:
        return "two calls that took the same decisions read different arrays"
    uninitialized = {o for ins in first.instructions if ins.name in _UNINITIALIZED for o in ins.outputs}
    for index, (a, b) in enumerate(zip(first.arrays, second.arrays)):
        if index in first.dynamic or index in uninitialized:
            continue
        if a.shape != b.shape or a.dtype != b.dtype or not _equal(a, b):
            return (f"a value it computes (%{index}, {a.dtype}{list(a.shape)}) is not the same in two calls, and the "
                    "capture cannot see what it comes from (a Python number kept between calls, or an array "
                    "operation outside gradcore)")
    for register, (a, b) in enumerate(zip(first.registers, second.registers)):
        if register not in first.dynamic_registers and a != b and not (a != a and b != b):
            return f"a number it computes ({first.register_labels[register]}) is not the same in two calls"
    return None


def _same_template(a, b) -> bool:
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same_template(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_template(a[k], b[k]) for k in a)
    if a.__class__ in (trace.Ref, trace.ScalarRef):
        return a.__class__ is b.__class__ and a.index == b.index
    try:
        return bool(a == b) or (a != a and b != b)
    except Exception:  # noqa: BLE001 - values that do not compare (launchers, dtypes of other kinds)
        return type(a) is type(b)


def _equal(a, b) -> bool:
    a, b = np.ndarray.view(a, np.ndarray), np.ndarray.view(b, np.ndarray)
    try:
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    except TypeError:
        return bool(np.array_equal(a, b))


def _untraceable(array) -> str:
    return (f"arrays of {type(array).__module__.split('.')[0]} cannot be captured yet: captures follow numpy "
            "arrays (and numpy-backed device arrays), whose operators reach the recorder through "
            "__array_ufunc__; CuPy's operators call its own kernels directly and would escape it")


def _graph_freed(nodes: list, start_sequence: int) -> bool:
    """Whether a backward during the call already freed part of the graph made by the call."""
    seen = set()
    while nodes:
        node = nodes.pop()
        if node is None or id(node) in seen or getattr(node, "sequence_nr", -1) < start_sequence:
            continue
        seen.add(id(node))
        if getattr(node, "_freed", False):
            return True
        nodes.extend(n for n, _ in node._edges)
    return False


def _first_external_write(program: Program) -> str | None:
    """Why a replay could not stop safely at a failing guard, or None: a guard after a write to persistent state."""
    first_write = None
    for position in program.live:
        ins = program.instructions[position]
        if ins.kind == "array" and not ins.fresh and any(program.slots[o].origin == "external"
                                                         or _views_external(program, o) for o in ins.outputs):
            first_write = position
            break
    if first_write is None:
        return None
    for position in program.live:
        ins = program.instructions[position]
        if ins.kind == "guard" and position > first_write:
            return (f"it decides on a tensor's value ({ins.label}) after updating state in place; a replay could "
                    "not undo that update when the decision changes")
    return None


def _views_external(program: Program, index: int) -> bool:
    slot = program.slots[index]
    while slot.view_of is not None:
        slot = program.slots[slot.view_of]
    return slot.origin == "external"


def _global_guards(fn: Callable) -> list:
    """Identity guards on the globals and closure variables a function names that hold tensors or modules."""
    from ..nn.modules.module import Module
    from ..optim.optimizer import Optimizer

    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    guards = []
    kinds = (Tensor, Module, Optimizer)
    namespace = getattr(fn, "__globals__", {})
    for name in code.co_names:
        value = namespace.get(name)
        if isinstance(value, kinds):
            guards.append((namespace, name, value))
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if isinstance(value, kinds):
            guards.append((cell, None, value))
    return guards


def _untrace_tensors(capture: _Capture) -> None:
    """Gives every tensor that still holds a traced array (made or touched during the call) its plain array."""
    for ref in capture.created.values():
        t = ref()
        if t is not None:
            _untrace_tensor(t)
    for t, _, _ in capture.externals.values():
        _untrace_tensor(t)
    for t, value in capture.grad_final.values():
        if value is not None:
            _untrace_tensor(value)


def _untrace_tensor(t) -> None:
    data = _RAW_DATA.__get__(t, Tensor)
    if trace.is_traced(data):
        _RAW_DATA.__set__(t, data._gc_plain)
    grad = _RAW_GRAD.__get__(t, Tensor)
    if grad is not None:
        data = _RAW_DATA.__get__(grad, Tensor)
        if trace.is_traced(data):
            _RAW_DATA.__set__(grad, data._gc_plain)


def _untrace_result(value):
    if isinstance(value, Tensor):
        _untrace_tensor(value)
        return value
    if isinstance(value, SymbolicScalar):
        return value.value
    if isinstance(value, tuple):
        return type(value)(_untrace_result(v) for v in value) if type(value) is tuple else value
    if isinstance(value, list):
        return [_untrace_result(v) for v in value]
    if isinstance(value, dict):
        return {k: _untrace_result(v) for k, v in value.items()}
    return value


def _build(spec, tensors: list, registers: list, inputs: list):
    kind, content = spec
    if kind == "tensor":
        return tensors[content]
    if kind == "input":
        return inputs[content]
    if kind == "register":
        return registers[content]
    if kind in (tuple, list):
        return kind(_build(s, tensors, registers, inputs) for s in content)
    if kind == "dict":
        return {k: _build(s, tensors, registers, inputs) for k, s in content}
    return content


def compile(model: Callable | None = None, *, fullgraph: bool = False, dynamic: bool | None = None,
            backend: str = "gradcore", mode: str | None = None, options: dict | None = None,
            disable: bool = False) -> Any:
    """Optimizes a function or ``nn.Module`` by capturing its array program and replaying it (``torch.compile``).

    Used as ``compiled = gradcore.compile(fn)`` or as a decorator, with or without arguments. A whole training
    step (forward, ``backward()``, ``optimizer.step()``, ``zero_grad()``) can be compiled as one function; the
    leaves' ``.grad`` and the optimizers' state stay ordinary tensors between calls. See the module docstring of
    ``gradcore._capture.compiler`` for the guards and for what happens only while capturing. ``fullgraph=True``
    raises instead of running eagerly a call that cannot be captured; ``dynamic``, ``backend``, ``mode`` and
    ``options`` are accepted for compatibility and change nothing.
    """
    if model is None:
        return functools.partial(compile, fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode,
                                 options=options, disable=disable)
    from ..nn.modules.module import Module

    if isinstance(model, Module):
        return OptimizedModule(model, fullgraph=fullgraph, disable=disable)
    if not callable(model):
        raise RuntimeError(f"compile(): expected a callable or an nn.Module, got {type(model).__name__}")
    return CompiledCallable(model, fullgraph=fullgraph, disable=disable)


class OptimizedModule:
    """A module whose calls are compiled (what ``gradcore.compile(module)`` returns); ``_orig_mod`` is the module.

    Attribute access, ``parameters()``, ``state_dict()`` and the rest go to the original module.
    """

    def __init__(self, module, *, fullgraph: bool = False, disable: bool = False) -> None:
        object.__setattr__(self, "_orig_mod", module)
        object.__setattr__(self, "_compiled_call", CompiledCallable(module.__call__, fullgraph=fullgraph,
                                                                    disable=disable, name=type(module).__name__))

    def __call__(self, *args, **kwargs):
        return self._compiled_call(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._orig_mod, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self._orig_mod, name, value)

    def __repr__(self) -> str:
        return f"OptimizedModule(\n  (_orig_mod): {self._orig_mod!r}\n)"

    def listing(self) -> str:
        return self._compiled_call.listing()

    def to_dot(self) -> str:
        return self._compiled_call.to_dot()
