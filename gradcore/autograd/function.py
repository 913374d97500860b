"""``Function``: the one mechanism behind every differentiable op, built-in or user-defined.

``Function.apply`` runs ``forward`` without recording, wraps its results in tensors and, when an
input requires grad, links a backward node into the graph.  The node *is* the ``ctx`` that
``forward`` and ``backward`` receive, as in PyTorch: it holds the saved tensors and the edges
(``next_functions``) to the nodes of the inputs.
"""
from __future__ import annotations

import inspect
import itertools
import threading
import traceback
from typing import Any, Callable

from .grad_mode import state
from ..backend import CPU, CPU_ARRAY as _ndarray, CPU_SCALAR_TYPES as _numpy_scalars, backend_of

_np_asarray = CPU.xp.asarray

__all__ = ["Function", "Node", "BackwardNode", "AccumulateGrad", "FunctionCtx", "once_differentiable"]

# Set by gradcore.tensor once the Tensor class exists (the two modules need each other).
Tensor: Any = None
make_tensor: Callable = None  # type: ignore[assignment]

_next_sequence_nr = itertools.count().__next__
_accumulate_lock = threading.Lock()

_FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors after they "
    "have already been freed). Saved intermediate values of the graph are freed when you call .backward() "
    "or autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time "
    "or if you need to access saved tensors after calling backward."
)


class Node:
    """A node of the backward graph: takes the gradients of an op's outputs, returns those of its inputs."""

    next_functions: tuple = ()  # the edges to the nodes of the tensor inputs, as users see them
    _saved: list | None = None
    _output_meta: list | None = None
    _materialize_grads = True
    _edges: tuple = ()  # one edge per differentiable input slot, what the engine follows
    sequence_nr = 0
    _num_outputs = 1
    _tensor_hooks: dict | None = None  # output_nr -> hooks registered on that output tensor
    _retained: dict | None = None  # output_nr -> weakref of a tensor that called retain_grad()
    _pre_hooks: list | None = None
    _post_hooks: list | None = None
    _trace: list | None = None  # forward stack, recorded in anomaly mode
    _hooked = False  # True once any hook or retain_grad is registered: the engine then runs _run_hooks

    def name(self) -> str:
        """Returns the node's name, such as ``MulBackward0``."""
        return type(self).__name__

    def apply(self, *grad_outputs):  # pragma: no cover - subclasses implement
        raise NotImplementedError

    def release(self) -> None:
        """Frees what was kept for backward (called after a backward pass without retain_graph)."""

    def register_hook(self, hook: Callable) -> "_RemovableHandle":
        """Registers ``hook(grad_inputs, grad_outputs)``, called after the node runs; it may return new grad_inputs."""
        if self._post_hooks is None:
            self._post_hooks = []
        self._post_hooks.append(hook)
        self._hooked = True
        return _RemovableHandle(self._post_hooks, hook)

    def register_prehook(self, hook: Callable) -> "_RemovableHandle":
        """Registers ``hook(grad_outputs)``, called before the node runs; it may return new grad_outputs."""
        if self._pre_hooks is None:
            self._pre_hooks = []
        self._pre_hooks.append(hook)
        self._hooked = True
        return _RemovableHandle(self._pre_hooks, hook)

    def _add_tensor_hook(self, output_nr: int, hook: Callable) -> "_RemovableHandle":
        if self._tensor_hooks is None:
            self._tensor_hooks = {}
        hooks = self._tensor_hooks.setdefault(output_nr, [])
        hooks.append(hook)
        self._hooked = True
        return _RemovableHandle(hooks, hook)

    def __repr__(self) -> str:
        return f"<{self.name()} object at {hex(id(self))}>"


class _RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: list, hook: Callable) -> None:
        self._hooks = hooks
        self._hook = hook

    def remove(self) -> None:
        try:
            self._hooks.remove(self._hook)
        except ValueError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class AccumulateGrad(Node):
    """The node of a leaf tensor: runs the leaf's hooks and adds the incoming gradient into ``.grad``."""

    sequence_nr = float("inf")  # leaves accumulate as soon as they are ready

    def __init__(self, variable) -> None:
        self.variable = variable
        self._hooked = bool(variable._backward_hooks)

    def name(self) -> str:
        return "AccumulateGrad"

    def accumulate(self, grad, create_graph: bool, owned: bool = False) -> None:
        """Adds ``grad`` into the leaf's ``.grad``; keeps ``grad`` itself when ``owned`` (nobody else holds it)."""
        with _accumulate_lock:  # backward passes in several threads may reach the same leaf
            self._accumulate(grad, create_graph, owned)
        # Tensor.register_post_accumulate_grad_hook; the slot is unset on tensors that never had one.
        post_hooks = getattr(self.variable, "_post_accumulate_grad_hooks", None)
        if post_hooks:
            for hook in tuple(post_hooks):
                hook(self.variable)

    def _accumulate(self, grad, create_graph: bool, owned: bool) -> None:
        variable = self.variable
        if variable._grad is None:
            if owned:
                variable._grad = grad
            elif create_graph:
                variable.grad = grad.clone()
            else:
                variable._grad = make_tensor(grad._data.copy())
        elif create_graph or state.enabled and variable._grad._requires_grad:
            variable.grad = variable._grad + grad
        else:
            variable._grad._data += grad._data
            variable._grad._version_counter.value += 1


class _SavedTensor:
    """A tensor kept for backward, with the version it had, so that later in-place changes are caught.

    An op's own output is kept as its array alone and rebuilt on unpacking with the node as its
    ``grad_fn``: keeping the output tensor itself would make a reference cycle through the node.
    """

    __slots__ = ("tensor", "data", "counter", "version", "output_nr", "requires_grad")

    def __init__(self, tensor, version: int, output_nr: int | None = None) -> None:
        self.version = version
        self.counter = tensor._version_counter
        self.output_nr = output_nr
        if output_nr is None:
            self.tensor = tensor
        else:
            self.tensor = None
            self.data = tensor._data
            self.requires_grad = tensor._requires_grad

    def unpack(self, node: "BackwardNode"):
        if self.counter.value != self.version:
            if self.tensor is not None:
                t = self.tensor
                creator = f"output {t._output_nr} of {t._grad_fn.name()}" if t._grad_fn is not None else "a leaf"
                shape = list(t.shape)
                type_name = t.dtype.legacy_name
            else:
                creator = f"output {self.output_nr} of {node.name()}"
                shape = list(self.data.shape)
                type_name = make_tensor(self.data).dtype.legacy_name
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an inplace "
                f"operation: [gradcore.{type_name}Tensor {shape}], which is {creator}, is at version "
                f"{self.counter.value}; expected version {self.version} instead (needed by {node.name()}). "
                "Hint: the operation that failed to compute its gradient is the one named above; "
                "use .clone() before modifying the tensor in place."
            )
        if self.tensor is not None:
            return self.tensor
        t = make_tensor(self.data)
        t._version_counter = self.counter
        if self.requires_grad:
            t._grad_fn = node
            t._output_nr = self.output_nr
            t._requires_grad = True
        return t


class BackwardNode(Node):
    """The node a ``Function`` call leaves in the graph; also the ``ctx`` its forward and backward see."""

    _forward_cls: Any = None
    _to_save: tuple = ()
    _freed = False
    _dirty: tuple = ()
    _non_differentiable: tuple = ()
    _input_meta: tuple | None = None
    # Built-in ops only index it; user Functions get a tuple of the right length.
    needs_input_grad: tuple = (False,) * 64

    # -- the ctx API -----------------------------------------------------------------------------
    def save_for_backward(self, *tensors) -> None:
        """Keeps tensors (or None) for backward; read them back with ``saved_tensors``."""
        if not self._forward_cls.builtin:  # built-in ops also keep arrays this way
            for i, t in enumerate(tensors):
                if t is not None and not isinstance(t, Tensor):
                    raise TypeError(
                        f"save_for_backward can only save variables, but argument {i} is of type {type(t).__name__}"
                    )
        self._to_save = tensors

    @property
    def saved_tensors(self) -> tuple:
        """The tensors given to ``save_for_backward``; raises if one was modified in place since, or was freed."""
        if self._freed:
            raise RuntimeError(_FREED_MESSAGE)
        saved = self._saved
        if saved is None:
            return self._to_save
        return tuple([s.unpack(self) if s.__class__ is _SavedTensor else s for s in saved])

    def mark_dirty(self, *tensors) -> None:
        """Marks inputs that forward modified in place; they become outputs of this node."""
        self._dirty = tensors

    def mark_non_differentiable(self, *tensors) -> None:
        """Marks outputs that have no gradient (such as indices)."""
        self._non_differentiable = tensors

    def set_materialize_grads(self, value: bool) -> None:
        """Whether ``backward`` receives zeros (True, the default) or None for outputs that got no gradient."""
        self._materialize_grads = value

    # -- graph ----------------------------------------------------------------------------------
    def apply(self, *grad_outputs):
        return self._forward_cls.backward(self, *grad_outputs)

    def release(self) -> None:
        self._saved = None
        self._to_save = ()
        self._freed = True

    @property
    def metadata(self) -> dict:
        if "_metadata" not in self.__dict__:
            self._metadata = {}
        return self._metadata


FunctionCtx = BackwardNode


class _FunctionMeta(type):
    """Gives every Function subclass its own node class (``MulBackward0``, ``MyFunctionBackward``)."""

    def __init__(cls, name, bases, namespace) -> None:
        super().__init__(name, bases, namespace)
        node_name = namespace.get("node_name") or f"{name}Backward"
        attributes = {
            "_forward_cls": cls, "__module__": cls.__module__,
        }
        backward = inspect.getattr_static(cls, "backward")
        if cls.builtin and isinstance(backward, staticmethod):
            # A built-in node runs its static backward with itself as ctx: as the node's own method, one call
            # less. A user's Function keeps looking its backward up at each call, so that replacing it later works.
            attributes["apply"] = backward.__func__
        cls._backward_cls = type(node_name, (BackwardNode,), attributes)


def _false(n: int, _cache: dict = {}) -> tuple:  # noqa: B006 - a deliberate per-size cache
    t = _cache.get(n)
    if t is None:
        t = _cache[n] = (False,) * n
    return t


_TRUE = (True,)
_FALSE = (False,)
_NO_EDGE = (None, 0)  # the edge of an input that takes no gradient


def _edge(t) -> tuple:
    """Returns the (node, output_nr) edge to a tensor that requires grad."""
    if t._base is not None:
        t._refresh_view_history()
    fn = t._grad_fn
    if fn is not None:
        return (fn, t._output_nr)
    return (t._grad_accumulator(), 0)


class Function(metaclass=_FunctionMeta):
    """Base class of differentiable operations: subclass it with static ``forward(ctx, ...)`` and ``backward(ctx, ...)``.

    ``forward`` runs without recording a graph and returns a tensor or a tuple of tensors (built-in
    ops may return backend arrays).  ``backward`` gets one gradient per output and returns one per
    input of ``forward`` (None where there is none).  Call the op with ``MyFunction.apply(...)``.
    """

    node_name: str | None = None
    #: True for built-in ops whose backward always returns well-formed gradients (skips validation).
    builtin = False
    #: True for built-in view ops: the output shares memory and the version counter with the input.
    is_view = False
    #: How many leading arguments are differentiable inputs: None means one for built-in ops (the rest
    #: are settings such as dims) and all of them for user Functions; -1 means all of them.
    operands: int | None = None

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            "Legacy autograd function with non-static forward method is deprecated. "
            "Please use new-style autograd function with static forward method: call MyFunction.apply(...)"
        )

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement the backward function for custom autograd.Function.")

    @classmethod
    def apply(cls, *args, **kwargs):
        """Runs ``forward`` and records the call in the graph when an input requires grad."""
        ctx = cls._backward_cls()
        grad_state = state
        enabled = grad_state.enabled
        record = False
        if enabled:
            for a in args:
                if isinstance(a, Tensor) and a._requires_grad:
                    record = True
                    break
        if record:
            _link(cls, ctx, args)
        elif not cls.builtin:
            ctx.needs_input_grad = _false(len(args))
        if enabled:
            grad_state.enabled = False
            try:
                out = cls.forward(ctx, *args, **kwargs)
            finally:
                grad_state.enabled = True
        else:
            out = cls.forward(ctx, *args, **kwargs)

        returned = out
        if out.__class__ in _numpy_scalars:
            out = _np_asarray(out)  # numpy reduces 0-d results to scalars; a tensor needs an array
        if out.__class__ is _ndarray:
            # The common case, a built-in op returning one array, without the general bookkeeping.
            t = make_tensor(out)
            if cls.is_view:
                t._make_view_of(args[0], cls, args[1:])
            if record:
                if out.dtype.kind == "f":
                    t._grad_fn = ctx
                    t._requires_grad = True
                    if cls.is_view:
                        t._view_base_fn = t._base._grad_fn
                if ctx._to_save:
                    ctx._saved = _save(ctx._to_save, (returned,), (t,))
                    ctx._to_save = ()
                if grad_state.anomaly:
                    ctx._trace = traceback.format_stack()[:-1]
            elif ctx._to_save:
                ctx._to_save = ()
            return t
        return _wrap_outputs(cls, ctx, args, out, record)


def _link(cls, ctx: BackwardNode, args: tuple) -> None:
    """Connects a new node to the nodes of the inputs that require grad."""
    n = cls.operands
    if cls.builtin and (n is None or n == 2):
        # One or two inputs (nearly every built-in op): no per-argument loops.
        a = args[0]
        needs_a = isinstance(a, Tensor) and a._requires_grad
        edge_a = _edge(a) if needs_a else _NO_EDGE
        if n is None:
            ctx.needs_input_grad = _TRUE if needs_a else _FALSE
            ctx.next_functions = ctx._edges = (edge_a,)
        else:
            b = args[1]
            needs_b = isinstance(b, Tensor) and b._requires_grad
            ctx.needs_input_grad = (needs_a, needs_b)
            ctx.next_functions = ctx._edges = (edge_a, _edge(b) if needs_b else _NO_EDGE)
        ctx.sequence_nr = _next_sequence_nr()
        return
    inputs = args if n == -1 or (n is None and not cls.builtin) else args[:n]
    needs = []
    edges = []
    for a in inputs:
        if isinstance(a, Tensor) and a._requires_grad:
            needs.append(True)
            edges.append(_edge(a))
        else:
            needs.append(False)
            edges.append(_NO_EDGE)
    ctx.needs_input_grad = tuple(needs)
    edges = ctx._edges = tuple(edges)
    if cls.builtin:
        ctx.next_functions = edges
    else:
        ctx.next_functions = tuple(e for a, e in zip(inputs, edges) if isinstance(a, Tensor))
        ctx._input_meta = tuple(
            (a.shape, a.dtype, a._data.__class__) if isinstance(a, Tensor) else None for a in args
        )
    ctx.sequence_nr = _next_sequence_nr()


def _wrap_outputs(cls, ctx: BackwardNode, args: tuple, out, record: bool):
    """Turns what forward returned into tensors (and records them), for every kind of output."""
    single = not isinstance(out, tuple)
    outs = (out,) if single else out
    results = []
    for i, o in enumerate(outs):
        if isinstance(o, Tensor):
            if ctx._dirty and any(o is d for d in ctx._dirty):
                t = o
                if record and t._requires_grad and t._grad_fn is None and t._base is None:
                    raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
                t._version_counter.value += 1
                if record and t._data.dtype.kind == "f":
                    # Modified in place: the tensor (and a view's base) takes this node as its history.
                    value = t._alias()
                    value._grad_fn, value._output_nr, value._requires_grad = ctx, i, True
                    t._take_history(ctx, i, value)
                    results.append(t)
                    continue
            elif any(o is a for a in args):
                t = o._alias()  # returning an input unchanged gives a new tensor over the same memory
            else:
                t = o
        elif o is None or not hasattr(o, "dtype"):
            results.append(o)
            continue
        else:
            t = make_tensor(o)
        if cls.is_view and i == 0:
            t._make_view_of(args[0], cls, args[1:])
        if record and t._data.dtype.kind == "f" and not (
            ctx._non_differentiable and any(t is n or o is n for n in ctx._non_differentiable)
        ):
            t._grad_fn = ctx
            t._output_nr = i
            t._requires_grad = True
            if t._base is not None:
                t._view_base_fn = t._base._grad_fn
        results.append(t)

    if record:
        if len(outs) > 1:
            ctx._num_outputs = len(outs)
            ctx._output_meta = [
                (r._data.shape, r.dtype, backend_of(r._data)) if isinstance(r, Tensor) else None for r in results
            ]
        if ctx._to_save:
            ctx._saved = _save(ctx._to_save, outs, results)
            ctx._to_save = ()
        if state.anomaly:
            ctx._trace = traceback.format_stack()[:-2]
    elif ctx._to_save:
        ctx._to_save = ()
    return results[0] if single else tuple(results)


def _save(to_save: tuple, outs: tuple, results: list) -> list:
    """Wraps what forward saved: inputs keep their version, outputs are kept by array (see _SavedTensor)."""
    saved = []
    for s in to_save:
        if s is not None:
            for i, o in enumerate(outs):
                if s is o:
                    r = results[i]
                    s = _SavedTensor(r, r._version_counter.value, i)
                    break
            else:
                if isinstance(s, Tensor):
                    s = _SavedTensor(s, s._version_counter.value)
        saved.append(s)
    return saved


def once_differentiable(backward: Callable) -> Callable:
    """Decorates a ``backward`` that is not itself differentiable: it runs without recording a graph."""
    import functools

    from .grad_mode import no_grad

    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        with no_grad():
            return backward(ctx, *grads)

    return wrapper

