"""The backward pass: runs the graph's nodes in dependency order and delivers gradients.

One loop, no recursion: a node runs once every node that feeds it a gradient has run; among the
nodes that are ready the most recently created runs first, as in PyTorch.
"""
from __future__ import annotations

import heapq
import warnings

from . import function as _function
from .function import AccumulateGrad, _edge
from .grad_mode import state

__all__ = ["run_backward"]


def _collect(root_nodes: list) -> dict:
    """Counts, for every node reachable from the roots, how many edges lead into it."""
    dependencies: dict = {}
    roots = set(root_nodes)
    stack = list(root_nodes)
    while stack:
        node = stack.pop()
        for next_node, _ in node._edges:
            if next_node is None:
                continue
            count = dependencies.get(next_node, 0)
            dependencies[next_node] = count + 1
            if count == 0 and next_node not in roots:  # reached for the first time
                stack.append(next_node)
    return dependencies


def _needed_nodes(root_nodes: list, dependencies: dict, targets: set) -> set:
    """Returns the nodes from which some target node can be reached (the only ones worth running)."""
    remaining = dict(dependencies)
    topological = []
    ready = [n for n in root_nodes if remaining.get(n, 0) == 0]  # every other node has an edge into it
    while ready:
        node = ready.pop()
        topological.append(node)
        for next_node, _ in node._edges:
            if next_node is None:
                continue
            remaining[next_node] -= 1
            if remaining[next_node] == 0:
                ready.append(next_node)
    needed = set()
    for node in reversed(topological):
        if node in targets or any(n in needed for n, _ in node._edges if n is not None):
            needed.add(node)
    return needed


def _materialize(node, grads: list) -> list:
    """Replaces missing output gradients by zeros for nodes that want them."""
    meta = node._output_meta
    for i, g in enumerate(grads):
        if g is None and meta is not None and meta[i] is not None:
            shape, dtype, like = meta[i]
            grads[i] = _function.make_tensor(like.zeros(shape, dtype.numpy))
    return grads


def _validate(node, grads: tuple) -> tuple:
    """Checks a user Function's gradients against its inputs: count, shape (summing broadcast dims) and dtype."""
    meta = node._input_meta
    if len(grads) != len(meta):
        raise RuntimeError(
            f"function {node.name()} returned an incorrect number of gradients (expected {len(meta)}, got {len(grads)})"
        )
    checked = []
    for i, (g, m) in enumerate(zip(grads, meta)):
        if g is None or not node.needs_input_grad[i]:
            if g is not None and m is None:
                raise RuntimeError(
                    f"function {node.name()} returned a gradient different than None at position {i + 1}, "
                    "but the corresponding forward input was not a Tensor"
                )
            checked.append(None)
            continue
        if not isinstance(g, _function.Tensor):
            raise TypeError(f"function {node.name()} returned a gradient of type {type(g).__name__} at position {i + 1}; expected a Tensor or None")
        shape, dtype, array_type = m
        if g.shape != shape:
            from ..ops.shape import sum_to_size, broadcast_shapes_or_none

            if broadcast_shapes_or_none(shape, g.shape) != g.shape:
                raise RuntimeError(
                    f"Function {node.name()} returned an invalid gradient at index {i} - got {list(g.shape)} "
                    f"but expected shape compatible with {list(shape)}"
                )
            g = sum_to_size(g, shape)
        if g._data.__class__ is not array_type:
            raise RuntimeError(
                f"Function {node.name()} returned an invalid gradient at index {i} - expected device "
                f"{'cpu' if array_type.__module__ == 'numpy' else 'cuda'} but got {g.device}"
            )
        if g.dtype is not dtype:
            g = g.to(dtype)
        checked.append(g)
    return tuple(checked)


def _check_anomaly(node, grads: tuple) -> None:
    from ..backend import array_module

    for i, g in enumerate(grads):
        if g is None:
            continue
        xp = array_module(g._data)
        if bool(xp.isnan(g._data).any()):
            if node._trace:
                warnings.warn(
                    "Error detected in " + node.name() + ". Traceback of forward call that caused the error:\n"
                    + "".join(node._trace),
                    stacklevel=3,
                )
            raise RuntimeError(f"Function '{node.name()}' returned nan values in its {i}th output.")


def _run_hooks(node, grads: list, create_graph: bool) -> list:
    """Runs a node's pre-hooks, the hooks of its output tensors and retain_grad, before the node itself."""
    if node._tensor_hooks:
        for nr, hooks in node._tensor_hooks.items():
            for hook in hooks:
                if grads[nr] is not None:
                    result = hook(grads[nr])
                    if result is not None:
                        grads[nr] = _checked_hook_result(hook, result, grads[nr])
    if node._retained:
        for nr, ref in node._retained.items():
            t = ref()
            if t is not None and grads[nr] is not None:
                g = grads[nr] if create_graph else grads[nr].detach()
                t.grad = g.clone() if t.grad is None else t.grad + g
    # As in PyTorch: tensor hooks, then retain_grad, then the node's own pre-hooks.
    if node._pre_hooks:
        for hook in node._pre_hooks:
            result = hook(tuple(grads))
            if result is not None:
                grads = list(result)
    if isinstance(node, AccumulateGrad) and node.variable._backward_hooks:
        g = grads[0]
        for hook in node.variable._backward_hooks:
            result = hook(g)
            if result is not None:
                g = _checked_hook_result(hook, result, g)
        grads[0] = g
    return grads


def _checked_hook_result(hook, result, grad):
    """A tensor hook's replacement gradient must be a tensor of the gradient's size, dtype and device, as in
    PyTorch: anything else would become a wrong ``.grad`` (an optimizer would broadcast a wrong shape)."""
    from ..tensor import Tensor

    if not isinstance(result, Tensor):
        raise TypeError(f"expected Variable, but hook returned '{type(result).__name__}'")
    name = getattr(hook, "__name__", repr(hook))
    if result.shape != grad.shape:
        raise RuntimeError(f"hook '{name}' has changed the size of value")
    if result.dtype != grad.dtype:
        raise RuntimeError(f"hook '{name}' has changed the type of value (was {grad.type()} got {result.type()})")
    if result.device != grad.device:
        raise RuntimeError(f"hook '{name}' has changed the device of value (was {grad.device} got {result.device})")
    return result


def _share(shared: dict, grads) -> None:
    """Records that these gradients may be held outside the engine (by the caller, a hook, a user's backward)."""
    for g in grads:
        if g is not None:
            shared[id(g)] = g


def _sum_into(held, g, shared: dict, create_graph: bool):
    """``held + g``, the gradients that reached one input of a node. The sum is written into ``held`` when the
    engine owns it (no one else holds it, it views no other array, and no graph records the sum) and it has the
    sum's shape and dtype: a leaf read several times (``x * x * x``) then sums its gradients without a new array
    per sum, which for large tensors costs a fresh allocation each (and its page faults)."""
    if (not create_graph and held._data.base is None and id(held) not in shared and held is not g
            and held._data.shape == g._data.shape and held._data.dtype == g._data.dtype
            and held._data.__class__ is g._data.__class__):
        held._data += g._data
        held._version_counter.value += 1
        return held
    return held + g


def run_backward(roots, grad_roots, retain_graph: bool, create_graph: bool, inputs=None, accumulate: bool = True):
    """Backpropagates ``grad_roots`` from ``roots``.

    Without ``inputs`` every reached leaf accumulates its gradient into ``.grad``.  With ``inputs``
    only what leads to them runs, and their gradients are returned in order (and, when
    ``accumulate`` is True, also accumulated into those inputs' ``.grad``).
    """
    root_edges = [_edge(t) for t in roots]
    root_nodes = []
    for node, _ in root_edges:
        if node not in root_nodes:
            root_nodes.append(node)
    dependencies = _collect(root_nodes)

    capture: dict = {}  # (node, output_nr) -> position in inputs
    captured = None
    needed = None
    if inputs is not None:
        captured = [None] * len(inputs)
        for position, t in enumerate(inputs):
            capture.setdefault(_edge(t), []).append(position)
        targets = {node for node, _ in capture}
        needed = _needed_nodes(root_nodes, dependencies, targets)
        # Only edges between nodes that run count as dependencies.
        dependencies = {}
        for node in needed:
            for next_node, _ in node._edges:
                if next_node in needed:
                    dependencies[next_node] = dependencies.get(next_node, 0) + 1

    buffers: dict = {}
    # A leaf keeps the gradient it receives as its .grad, without a copy, unless the gradient may be held
    # elsewhere too: these are the ids of the gradients that may be. A gradient is held once as it is handed
    # from node to node (passed through, as by an add, it is still held once), so only what comes from outside
    # the engine and what a node hands on twice is recorded. The dict keeps them alive until backward ends, so
    # that no id is freed and reused by another gradient: the choice of copy or no copy, and of a sum in place
    # or not, depends on the graph alone (a capture of the same step records the same operations every time).
    shared: dict = {}
    _share(shared, grad_roots)
    for (node, nr), g in zip(root_edges, grad_roots):
        buffer = buffers.get(node)
        if buffer is None:
            buffer = buffers[node] = [None] * node._num_outputs
        buffer[nr] = g if buffer[nr] is None else buffer[nr] + g

    heap: list = []
    tie = 0
    for node in root_nodes:
        if dependencies.get(node, 0) == 0 and (needed is None or node in needed):
            heapq.heappush(heap, (-node.sequence_nr, tie, node))
            tie += 1

    anomaly = state.anomaly
    previous_mode = state.enabled
    state.enabled = create_graph
    # The node to run next when only one became ready and the heap is empty (a chain, the common case): it is
    # the most recent ready node by definition, so it skips the heap.
    following = None
    try:
        while following is not None or heap:
            if following is not None:
                node, following = following, None
            else:
                node = heapq.heappop(heap)[2]
            grads = buffers.pop(node)
            if node._hooked:
                grads = _run_hooks(node, grads, create_graph)
                _share(shared, grads)

            if capture:
                for nr in range(len(grads)):
                    positions = capture.get((node, nr))
                    if positions:
                        for p in positions:
                            captured[p] = grads[nr]
                        _share(shared, (grads[nr],))

            if node.__class__ is AccumulateGrad:
                g = grads[0]
                if (inputs is None or accumulate) and g is not None:
                    owned = not create_graph and g._data.base is None and id(g) not in shared
                    node.accumulate(g, create_graph, owned)
                continue

            for g in grads:
                if g is not None:
                    break
            else:
                input_grads = (None,) * len(node._edges)
                grads = None
            if grads is not None:
                if node._output_meta is not None and node._materialize_grads:
                    grads = _materialize(node, grads)
                input_grads = node.apply(*grads)
                if input_grads.__class__ is not tuple:
                    input_grads = (input_grads,)
                if node._input_meta is not None:
                    input_grads = _validate(node, input_grads)
                    _share(shared, input_grads)  # a user's backward may keep what it returns
                if anomaly:
                    _check_anomaly(node, input_grads)
                if node._post_hooks:
                    for hook in node._post_hooks:
                        result = hook(input_grads, tuple(grads))
                        if result is not None:
                            input_grads = tuple(result)
                    _share(shared, input_grads)
            if not retain_graph and node._saved is not None:
                node.release()

            handed = ()  # a node may hand one gradient on twice (the add of a + a passes its own on to both)
            ready = None
            for (next_node, nr), g in zip(node._edges, input_grads):
                if next_node is None or (needed is not None and next_node not in needed):
                    continue
                if g is not None:
                    if handed and any(g is h for h in handed):
                        shared[id(g)] = g
                    handed += (g,)
                    buffer = buffers.get(next_node)
                    if buffer is None:
                        buffer = buffers[next_node] = [None] * next_node._num_outputs
                    buffer[nr] = g if buffer[nr] is None else _sum_into(buffer[nr], g, shared, create_graph)
                remaining = dependencies[next_node] - 1
                dependencies[next_node] = remaining
                if remaining == 0:
                    if next_node not in buffers:
                        buffers[next_node] = [None] * next_node._num_outputs
                    if ready is None and not heap:
                        ready = next_node
                    else:
                        heapq.heappush(heap, (-next_node.sequence_nr, tie, next_node))
                        tie += 1
            if ready is not None:
                if heap:  # others became ready after it: it takes its place among them
                    heapq.heappush(heap, (-ready.sequence_nr, tie, ready))
                    tie += 1
                else:
                    following = ready
    finally:
        state.enabled = previous_mode
    return captured
