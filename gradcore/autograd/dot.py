"""The backward graph of tensors as Graphviz DOT: the ``grad_fn`` chain that ``backward()`` will follow.

``graph_to_dot(loss)`` walks ``grad_fn.next_functions`` from the given tensors, as PyTorch's graph is walked,
and draws one box per node, named by ``name()`` (``MulBackward0``, ``AccumulateGrad``), with arrows in the
direction the values flowed forward: from a leaf's ``AccumulateGrad`` up to the tensors given. Leaves show the
parameter name (from ``params``, e.g. ``dict(model.named_parameters())``) and shape; ``show_saved=True`` adds
what each node saved for backward. ``render_graph`` draws the same to a file through the optional ``graphviz``
package.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Union

from .. import _dot
from .function import AccumulateGrad, BackwardNode, Node

__all__ = ["graph_to_dot", "render_graph"]

# Colours of the familiar drawing: outputs green, leaves blue, saved tensors orange.
_OUTPUT_STYLE = {"shape": "box", "style": "filled", "fillcolor": "darkolivegreen1"}
_LEAF_STYLE = {"shape": "box", "style": "filled", "fillcolor": "lightblue"}
_SAVED_STYLE = {"shape": "box", "style": "filled", "fillcolor": "orange"}


def _shape(value) -> str:
    sizes = [str(int(size)) for size in value.shape]
    return "(" + ", ".join(sizes) + ("," if len(sizes) == 1 else "") + ")"


def _dtype_name(value) -> str:
    return str(value.dtype).replace("gradcore.", "")


def _as_roots(roots) -> tuple:
    from ..tensor import Tensor

    roots = (roots,) if isinstance(roots, Tensor) else tuple(roots)
    for position, root in enumerate(roots):
        if not isinstance(root, Tensor):
            raise TypeError(f"graph_to_dot: roots must be Tensors, got {type(root).__name__} at position "
                            f"{position}")
    return roots


def graph_to_dot(roots, params: Optional[Mapping[str, object]] = None, show_saved: bool = False) -> str:
    """Returns the backward graph of ``roots`` (a tensor or a sequence of tensors) as Graphviz DOT text.

    Nodes are the ``grad_fn`` nodes reachable through ``next_functions``, each with its ``name()`` as label
    and tooltip; an ``AccumulateGrad`` is labelled with its leaf's name in ``params`` (a dict name -> tensor)
    and shape. Each root is an output box fed by its ``grad_fn``. ``show_saved`` adds the tensors a node saved
    for backward (shape and dtype), joined to it by dashed arrows.
    """
    roots = _as_roots(roots)
    names = {id(tensor): name for name, tensor in (params or {}).items()}
    graph = _dot.Digraph("backward", graph_attributes={"rankdir": "BT"},
                         node_attributes={"fontname": "monospace", "fontsize": "12"})
    ids: dict = {}  # id(node) -> DOT id, in order of discovery

    def node_id(node: Node) -> tuple:
        """Returns (DOT id, whether the node is new)."""
        key = id(node)
        if key in ids:
            return ids[key], False
        ids[key] = f"node{len(ids)}"
        return ids[key], True

    def add_node(node: Node, dot_id: str) -> None:
        if isinstance(node, AccumulateGrad):
            leaf = node.variable
            label = "\n".join(part for part in (names.get(id(leaf)), _shape(leaf)) if part)
            graph.node(dot_id, label, tooltip=node.name(), **_LEAF_STYLE)
            return
        graph.node(dot_id, node.name(), tooltip=node.name())
        if show_saved and isinstance(node, BackwardNode) and not node._freed:
            for index, saved in enumerate(node.saved_tensors):
                if saved is None or not hasattr(saved, "shape"):
                    continue
                saved_id = f"{dot_id}_saved{index}"
                graph.node(saved_id, f"saved {index}\n{_shape(saved)} {_dtype_name(saved)}",
                           tooltip="saved tensor", **_SAVED_STYLE)
                graph.edge(saved_id, dot_id, style="dashed", arrowhead="none")

    pending: list = []
    for index, root in enumerate(roots):
        root_id = f"output{index}"
        label = names.get(id(root)) or ("output" if len(roots) == 1 else f"output {index}")
        graph.node(root_id, f"{label}\n{_shape(root)}", tooltip="output", **_OUTPUT_STYLE)
        if root.grad_fn is not None:
            dot_id, new = node_id(root.grad_fn)
            if new:
                add_node(root.grad_fn, dot_id)
                pending.append(root.grad_fn)
            graph.edge(dot_id, root_id)
    # Depth first, inputs in next_functions order: the same walk as over PyTorch's graph.
    while pending:
        node = pending.pop()
        for next_node, _ in node.next_functions:
            if next_node is None:
                continue
            next_id, new = node_id(next_node)
            if new:
                add_node(next_node, next_id)
                pending.append(next_node)
            graph.edge(next_id, ids[id(node)])
    return graph.source()


def render_graph(roots, path: Union[str, Path], params: Optional[Mapping[str, object]] = None,
                 show_saved: bool = False, format: Optional[str] = None) -> str:
    """Draws ``graph_to_dot(roots, params, show_saved)`` to ``path`` (format from its suffix: ``.svg``,
    ``.png``, ``.pdf``); returns the path written. Needs the ``graphviz`` extra and Graphviz's ``dot``
    program."""
    return _dot.render(graph_to_dot(roots, params, show_saved), path, format)

