"""CUDA graphs by hand, as ``torch.cuda.graphs``: ``CUDAGraph``, the ``graph`` context and
``make_graphed_callables``, over CuPy's stream capture (``Stream.begin_capture`` / ``end_capture`` and
``Graph.launch``).

A capture records the kernels that a block queues on the capturing stream, without running them (as in
PyTorch, the captured work runs only at a replay); ``replay()`` launches them, as one graph, on the same
memory. So a captured block reads its inputs from, and writes its results to, the arrays it used during the
capture (the *static* inputs and outputs): new data is copied into the static inputs before a replay, and
results are read from the static outputs after it. Nothing in Python runs at a replay: Python side effects,
host reads (``.item()``, ``bool(t)``, ``.cpu()``), synchronizations and host-to-device copies inside the block
are errors during the capture (CuPy raises ``CUDARuntimeError``), and Python control flow is frozen as it went
during the capture.

Memory: every array allocated during a capture comes from the graph's own CuPy memory pool (shared with other
graphs through ``pool=``), which the graph keeps as long as it lives, so that the addresses baked into the
graph are never handed to other arrays. ``reset()`` releases it.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Optional, Sequence

from . import empty_cache, synchronize
from .streams import Stream, _cuda_backend
from .streams import stream as _stream_context

__all__ = ["CUDAGraph", "graph", "graph_pool_handle", "is_current_stream_capturing", "make_graphed_callables"]

_CAPTURE_ERROR_MODES = ("global", "thread_local", "relaxed")


class _GraphPool:
    """An opaque handle on a private memory pool that graphs can share (``graph_pool_handle()``)."""

    def __init__(self, memory_pool) -> None:
        self._memory_pool = memory_pool

    def __repr__(self) -> str:
        return f"<gradcore.cuda graph pool {id(self._memory_pool):#x}>"


def graph_pool_handle() -> _GraphPool:
    """Returns an opaque token representing the id of a graph memory pool (to share it between captures)."""
    backend = _cuda_backend(None, "gradcore.cuda.graph_pool_handle")
    return _GraphPool(backend.xp.cuda.MemoryPool())


def is_current_stream_capturing() -> bool:
    """Returns True if CUDA graph capture is underway on the current CUDA stream, False otherwise."""
    backend = _cuda_backend(None, "gradcore.cuda.is_current_stream_capturing")
    return bool(backend.xp.cuda.get_current_stream().is_capturing())


class CUDAGraph:
    """Wrapper around a CUDA graph (``torch.cuda.CUDAGraph``): capture once, then ``replay()``.

    ``keep_graph`` is accepted for PyTorch's signature: CuPy instantiates the graph when the capture ends.
    """

    def __init__(self, keep_graph: bool = False) -> None:
        self._backend = _cuda_backend(None, "gradcore.cuda.CUDAGraph")
        self._keep_graph = keep_graph
        self._cupy_graph = None  # what CuPy's end_capture returned
        self._capture_stream = None  # the CuPy stream during a capture
        self._pool: Optional[_GraphPool] = None
        self._allocator_context: Optional[contextlib.ExitStack] = None
        self._debug = False

    def capture_begin(self, pool: Optional[_GraphPool] = None, capture_error_mode: str = "global") -> None:
        """Begins capturing CUDA work on the current stream.

        Usually called by ``graph`` or ``make_graphed_callables``. ``pool`` shares the memory pool of another
        graph (``other.pool()`` or ``graph_pool_handle()``). ``capture_error_mode`` is checked and kept for
        PyTorch's signature; the capture itself runs in CUDA's relaxed mode, because CuPy's memory pool calls
        cudaMalloc during the capture, which the other modes forbid. Operations that CUDA refuses on a
        capturing stream (synchronizations, host transfers) raise in every mode.
        """
        if capture_error_mode not in _CAPTURE_ERROR_MODES:
            raise RuntimeError(f"Unknown capture error mode. Expected `global`, `thread_local`, or "
                               f"`relaxed`, got {capture_error_mode}")
        if self._cupy_graph is not None or self._capture_stream is not None:
            raise RuntimeError("This CUDAGraph instance already owns a captured graph. To capture a new "
                               "graph, create a new instance.")
        if pool is not None and not isinstance(pool, _GraphPool):
            raise TypeError(f"pool must be a handle from graph_pool_handle() or CUDAGraph.pool(), "
                            f"got {type(pool).__name__}")
        xp = self._backend.xp
        capture_stream = xp.cuda.get_current_stream()
        if capture_stream.ptr == 0:
            raise RuntimeError("CUDA graphs must be captured on a non-default stream. (However, after "
                               "capture, it's ok to replay them on the default stream.)")
        self._pool = pool if pool is not None else _GraphPool(xp.cuda.MemoryPool())
        allocator_context = contextlib.ExitStack()
        allocator_context.enter_context(xp.cuda.using_allocator(self._pool._memory_pool.malloc))
        try:
            capture_stream.begin_capture(xp.cuda.runtime.streamCaptureModeRelaxed)
        except BaseException:
            allocator_context.close()
            raise
        self._capture_stream, self._allocator_context = capture_stream, allocator_context

    def capture_end(self) -> None:
        """Ends CUDA graph capture on the current stream; ``replay`` may be called after it."""
        if self._capture_stream is None:
            raise RuntimeError("Called CUDAGraph::capture_end without a preceding CUDAGraph::capture_begin")
        if self._backend.xp.cuda.get_current_stream().ptr != self._capture_stream.ptr:
            raise RuntimeError("Capture must end on the same stream it began on.")
        capture_stream, self._capture_stream = self._capture_stream, None
        try:
            self._cupy_graph = capture_stream.end_capture()
        finally:
            self._allocator_context.close()
            self._allocator_context = None

    def _abandon_capture(self) -> None:
        """Ends the capture of a block that raised, and forgets it: the block's error is the one to report, not
        the invalidated capture's."""
        if self._capture_stream is None:
            return
        capture_stream, self._capture_stream = self._capture_stream, None
        try:
            capture_stream.end_capture()
        except Exception:  # noqa: BLE001, S110 - an invalidated capture raises here
            pass
        finally:
            self._allocator_context.close()
            self._allocator_context, self._pool = None, None

    def instantiate(self) -> None:
        """Instantiates the CUDA graph (CuPy already did when the capture ended: nothing to do)."""
        if self._cupy_graph is None:
            raise RuntimeError("Called CUDAGraph::instantiate without a preceding successful capture.")

    def replay(self) -> None:
        """Replays the CUDA work captured by this graph, on the current stream."""
        if self._cupy_graph is None:
            raise RuntimeError("Called CUDAGraph::replay without a preceding successful capture.")
        self._cupy_graph.launch(self._backend.xp.cuda.get_current_stream())

    def reset(self) -> None:
        """Deletes the graph currently held by this instance, and its claim on the memory pool."""
        if self._capture_stream is not None:
            self._abandon_capture()
        self._cupy_graph, self._pool = None, None

    def pool(self) -> _GraphPool:
        """Returns an opaque token representing the id of this graph's memory pool (for ``pool=``)."""
        if self._pool is None:
            raise RuntimeError("Called CUDAGraph::pool() without a preceding capture_begin.")
        return self._pool

    def enable_debug_mode(self) -> None:
        """Enables debugging mode for ``debug_dump``."""
        self._debug = True

    def debug_dump(self, debug_path: str) -> None:
        """Writes the captured graph to ``debug_path`` as Graphviz DOT (``enable_debug_mode`` first)."""
        if not self._debug:
            raise RuntimeError("CUDA graphs: call enable_debug_mode() before debug_dump()")
        if self._cupy_graph is None:
            raise RuntimeError("Called CUDAGraph::debug_dump without a preceding successful capture.")
        with open(debug_path, "w", encoding="utf-8") as file:
            file.write(self._cupy_graph.debug_dot_str())


class graph:
    """Context-manager that captures CUDA work into a ``gradcore.cuda.CUDAGraph`` object for later replay.

    The block's Python runs once, on ``stream`` (by default a side stream that ``graph`` keeps), while its
    kernels are recorded, not run; ``cuda_graph.replay()`` runs them. Warm the block up on a side stream
    before capturing it (the first calls allocate optimizer state and ``.grad``), as in PyTorch's
    whole-network example.
    """

    def __init__(self, cuda_graph: CUDAGraph, pool: Optional[_GraphPool] = None,
                 stream: Optional[Stream] = None, capture_error_mode: str = "global") -> None:
        if stream is None:
            # One side stream per device, kept by the device's backend and made on first use.
            backend = _cuda_backend(None, "gradcore.cuda.graph")
            stream = getattr(backend, "graph_capture_stream", None)
            if stream is None:
                stream = backend.graph_capture_stream = Stream()
        self.pool = () if pool is None else (pool,)
        self.capture_stream = stream
        self.cuda_graph = cuda_graph
        self.capture_error_mode = capture_error_mode
        self._stream_context: Optional[contextlib.AbstractContextManager] = None

    def __enter__(self) -> None:
        # Free what can be freed, so that the graph's pool can grow from it.
        synchronize()
        empty_cache()
        self._stream_context = _stream_context(self.capture_stream)
        self._stream_context.__enter__()
        try:
            self.cuda_graph.capture_begin(*self.pool, capture_error_mode=self.capture_error_mode)
        except BaseException:
            self._stream_context.__exit__(None, None, None)
            raise

    def __exit__(self, exc_type, exc, traceback) -> None:
        try:
            if exc_type is None:
                self.cuda_graph.capture_end()
            else:
                self.cuda_graph._abandon_capture()  # let the block's own error propagate
        finally:
            self._stream_context.__exit__(exc_type, exc, traceback)


def _flatten_tensors(value, what: str) -> tuple:
    """Returns the tensors of a tensor or (nested) tuple/list of tensors, and how to rebuild the structure."""
    from ..tensor import Tensor

    if isinstance(value, Tensor):
        return (value,), None
    if isinstance(value, (tuple, list)):
        tensors, specs = [], []
        for item in value:
            item_tensors, item_spec = _flatten_tensors(item, what)
            specs.append((len(item_tensors), item_spec))
            tensors.extend(item_tensors)
        return tuple(tensors), (type(value), specs)
    raise TypeError(f"make_graphed_callables: {what} must be Tensors or (nested) tuples of Tensors, "
                    f"got {type(value).__name__}")


def _unflatten_tensors(tensors: Sequence, spec):
    if spec is None:
        return tensors[0]
    kind, specs = spec
    items, start = [], 0
    for count, item_spec in specs:
        items.append(_unflatten_tensors(tensors[start:start + count], item_spec))
        start += count
    return kind(items)


def make_graphed_callables(callables, sample_args: tuple, num_warmup_iters: int = 3,
                           allow_unused_input: bool = False, pool: Optional[_GraphPool] = None):
    """Accepts callables (functions or ``nn.Module``\\ s) and returns graphed versions.

    Each graphed callable's forward runs the source callable's forward CUDA work as one CUDA graph inside a
    single autograd node, whose backward replays a second graph of the backward work. Its arguments are copied
    into static inputs first; its outputs are the graph's static outputs (detached into new tensors). A tuple
    of callables is captured in order with one shared memory pool. ``sample_args`` are tensors only (a tuple,
    or a tuple of tuples for several callables); modules must have no hooks and buffers that do not require
    grad.
    """
    from .. import autograd
    from ..creation import empty_like
    from ..nn import Module
    from ..tensor import Tensor

    just_one_callable = not isinstance(callables, tuple)
    if just_one_callable:
        callables, sample_args = (callables,), (sample_args,)
    if len(callables) != len(sample_args):
        raise ValueError(f"make_graphed_callables: {len(callables)} callables but {len(sample_args)} "
                         "tuples of sample_args")
    for func, args in zip(callables, sample_args):
        if isinstance(func, Module):
            if func._forward_hooks or func._forward_pre_hooks:
                raise AssertionError("Modules must not have hooks registered at the time they are passed. "
                                     "However, registering hooks on modules after passing them through "
                                     "make_graphed_callables is allowed.")
            if any(b.requires_grad for b in func.buffers()):
                raise AssertionError("In any nn.Module passed to make_graphed_callables, only parameters may "
                                     "be trainable. All buffers must have ``requires_grad=False``.")
        if not isinstance(args, tuple) or not all(isinstance(a, Tensor) for a in args):
            raise AssertionError("In the beta API, sample_args for each callable must contain only Tensors. "
                                 "Other types are not allowed.")

    module_params = [tuple(func.parameters()) if isinstance(func, Module) else () for func in callables]
    static_input_surfaces = [tuple(args) + params for args, params in zip(sample_args, module_params)]
    forward_graphs = [CUDAGraph() for _ in callables]
    backward_graphs = [CUDAGraph() for _ in callables]
    mempool = graph_pool_handle() if pool is None else pool

    def differentiate(outputs: tuple, inputs: tuple, grad_outputs: tuple) -> tuple:
        needing = tuple(o for o in outputs if o.requires_grad)
        wrt = tuple(i for i in inputs if i.requires_grad)
        if not needing or not wrt:
            return (None,) * len(wrt)
        return autograd.grad(needing, wrt, grad_outputs=grad_outputs, only_inputs=True,
                             allow_unused=allow_unused_input)

    # Warm-up on a side stream: the first calls may allocate state (and, on a GPU, compile kernels).
    synchronize()
    with _stream_context(Stream()):
        for func, args, surface in zip(callables, sample_args, static_input_surfaces):
            for _ in range(num_warmup_iters):
                outputs, _ = _flatten_tensors(func(*args), "outputs")
                differentiate(outputs, surface, tuple(empty_like(o) for o in outputs if o.requires_grad))
    synchronize()

    # Forward graphs in the order the callables run, backward graphs in reverse order, all in one pool.
    static_outputs, output_specs = [], []
    for func, args, forward_graph in zip(callables, sample_args, forward_graphs):
        with graph(forward_graph, pool=mempool):
            outputs, spec = _flatten_tensors(func(*args), "outputs")
        static_outputs.append(outputs)
        output_specs.append(spec)

    static_grad_outputs: list = [None] * len(callables)
    static_grad_inputs: list = [None] * len(callables)
    for index in reversed(range(len(callables))):
        outputs, surface = static_outputs[index], static_input_surfaces[index]
        grad_outputs = tuple(empty_like(o) if o.requires_grad else None for o in outputs)
        with graph(backward_graphs[index], pool=mempool):
            grads = iter(differentiate(outputs, surface, tuple(g for g in grad_outputs if g is not None)))
        static_grad_outputs[index] = grad_outputs
        static_grad_inputs[index] = tuple(next(grads) if i.requires_grad else None for i in surface)

    def make_graphed_function(index: int) -> Callable:
        forward_graph, backward_graph = forward_graphs[index], backward_graphs[index]
        surface, outputs = static_input_surfaces[index], static_outputs[index]
        grad_outputs, grad_inputs = static_grad_outputs[index], static_grad_inputs[index]
        user_arg_count, spec = len(sample_args[index]), output_specs[index]

        class Graphed(autograd.Function):
            @staticmethod
            def forward(ctx, *inputs):
                for static, given in zip(surface[:user_arg_count], inputs[:user_arg_count]):
                    if static.data_ptr() != given.data_ptr():
                        static.detach().copy_(given.detach())
                forward_graph.replay()
                return tuple(o.detach() for o in outputs)

            @staticmethod
            @autograd.once_differentiable
            def backward(ctx, *grads):
                for static, given in zip(grad_outputs, grads):
                    if static is not None and given is not None and static.data_ptr() != given.data_ptr():
                        static.copy_(given)
                backward_graph.replay()
                return tuple(g.detach() if g is not None else None for g in grad_inputs)

        def functionalized(*user_args):
            if len(user_args) != user_arg_count:
                raise TypeError(f"the graphed callable takes {user_arg_count} tensor arguments "
                                f"({len(user_args)} given)")
            out = Graphed.apply(*(tuple(user_args) + module_params[index]))
            out = out if isinstance(out, tuple) else (out,)
            return _unflatten_tensors(out, spec)

        return functionalized

    results = []
    for index, func in enumerate(callables):
        graphed = make_graphed_function(index)
        if isinstance(func, Module):
            # The module keeps working eagerly in the other training mode than the one it was captured in.
            def graphed_forward(*args, _func=func, _training=func.training, _graphed=graphed,
                                _eager=func.forward, **kwargs):
                if _func.training == _training:
                    return _graphed(*args, **kwargs)
                return _eager(*args, **kwargs)

            func.forward = graphed_forward
            results.append(func)
        else:
            results.append(graphed)
    return results[0] if just_one_callable else tuple(results)
