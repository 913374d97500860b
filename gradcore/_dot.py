"""A small writer of Graphviz DOT text: nodes, edges, labels and clusters, with DOT's quoting rules.

It needs nothing installed: ``Digraph.source()`` returns the text. Rendering it to an image (``render``) needs
the optional ``graphviz`` package (``pip install "gradcore[graphviz]"``) and Graphviz's ``dot`` program.

    graph = Digraph("program", graph_attributes={"rankdir": "TB"})
    graph.node("x", "x\\n(3, 4)", shape="box")
    graph.edge("x", "y")
    body = graph.cluster("forward", label="forward")
    body.node("y", "relu")
    print(graph.source())

Every identifier and attribute value is written as a quoted string, so that any text is safe: backslashes and
double quotes are escaped, and a newline in a label becomes DOT's ``\\n`` line break.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

__all__ = ["Digraph", "quote", "render"]


def quote(text) -> str:
    """Returns ``text`` as a DOT quoted string (backslashes, double quotes and newlines escaped)."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r\n", "\n").replace("\n", "\\n") + '"'


def _attribute_list(attributes: dict) -> str:
    """Returns ``[key="value", ...]`` for the attributes that are not None (nothing when there are none)."""
    items = [f"{key}={quote(value)}" for key, value in attributes.items() if value is not None]
    return f" [{', '.join(items)}]" if items else ""


class Digraph:
    """A directed graph in the DOT language; ``cluster()`` opens a boxed subgraph drawn around its nodes."""

    def __init__(self, name: str = "G", *, graph_attributes: Optional[dict] = None,
                 node_attributes: Optional[dict] = None, edge_attributes: Optional[dict] = None,
                 _keyword: str = "digraph") -> None:
        self.name = name
        self.graph_attributes = dict(graph_attributes or {})
        self.node_attributes = dict(node_attributes or {})
        self.edge_attributes = dict(edge_attributes or {})
        self._keyword = _keyword
        self._statements: list = []  # lines and clusters, in the order they were added

    def node(self, node_id: str, label: Optional[str] = None, **attributes) -> None:
        """Adds a node: ``label`` is the text drawn (the id when None), ``attributes`` DOT node attributes."""
        self._statements.append(f"{quote(node_id)}{_attribute_list({'label': label, **attributes})};")

    def edge(self, tail: str, head: str, label: Optional[str] = None, **attributes) -> None:
        """Adds an edge from node ``tail`` to node ``head``."""
        listed = _attribute_list({"label": label, **attributes})
        self._statements.append(f"{quote(tail)} -> {quote(head)}{listed};")

    def cluster(self, name: str, label: Optional[str] = None, **attributes) -> Digraph:
        """Returns a new cluster (a subgraph drawn as a box) nested in this graph, to add nodes and edges."""
        cluster = Digraph(f"cluster_{name}", graph_attributes={"label": label, **attributes},
                          _keyword="subgraph")
        self._statements.append(cluster)
        return cluster

    def _lines(self, indent: str) -> list:
        lines = [f"{indent}{self._keyword} {quote(self.name)} {{"]
        inner = indent + "  "
        for kind, attributes in (("graph", self.graph_attributes), ("node", self.node_attributes),
                                 ("edge", self.edge_attributes)):
            listed = _attribute_list(attributes)
            if listed:
                lines.append(f"{inner}{kind}{listed};")
        for statement in self._statements:
            lines.extend(statement._lines(inner) if isinstance(statement, Digraph) else [inner + statement])
        lines.append(indent + "}")
        return lines

    def source(self) -> str:
        """Returns the graph as DOT text."""
        return "\n".join(self._lines("")) + "\n"

    __str__ = source


def render(source: Union[str, Digraph], path: Union[str, Path], format: Optional[str] = None) -> str:
    """Renders DOT text to an image file with the ``graphviz`` package; returns the file's path.

    ``format`` defaults to the suffix of ``path`` (``graph.svg`` gives SVG). Raises ImportError naming the
    extra when the package is missing; without ``dot``, the package raises ``graphviz.ExecutableNotFound``.
    """
    try:
        import graphviz
    except ImportError as error:
        raise ImportError('rendering a graph needs the graphviz package: pip install "gradcore[graphviz]" '
                          "(and Graphviz's dot program, e.g. apt-get install graphviz)") from error
    path = Path(path)
    format = format or path.suffix.lstrip(".") or "svg"
    text = source.source() if isinstance(source, Digraph) else source
    return graphviz.Source(text).render(outfile=str(path), format=format, cleanup=True)
