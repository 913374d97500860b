"""The DOT writer (``gradcore/_dot.py``) and the backward graph as DOT (``gradcore.autograd.graph_to_dot``).

The DOT text is read back by a small tokenizer of the DOT language written here, and the graphs of the seeds
are compared with PyTorch's own graph, walked through ``grad_fn.next_functions`` in the same way. Only the
rendering test needs Graphviz's ``dot`` program (and the ``graphviz`` package); it is skipped, with the
reason, without it.
"""
from __future__ import annotations

import re
import shutil
import sys
from collections import Counter

import pytest

import gradcore
from gradcore import _dot, nn

torch = pytest.importorskip("torch")

_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|(->)|([\[\]{};=,])|([A-Za-z_][A-Za-z_0-9]*))', re.S)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def _tokens(source: str) -> list:
    tokens, position = [], 0
    while source[position:].strip():
        match = _TOKEN.match(source, position)
        assert match, f"not DOT at {source[position:position + 40]!r}"
        quoted, arrow, punctuation, word = match.groups()
        tokens.append(("id", _unescape(quoted)) if quoted is not None else
                      ("id", word) if word is not None else ("op", arrow or punctuation))
        position = match.end()
    return tokens


def parse_dot(source: str) -> dict:
    """Returns {"name", "nodes": {id: attributes}, "edges": [(tail, head, attributes)], "clusters": {name:
    node ids}, "defaults": {(cluster or None, "graph" | "node" | "edge"): attributes}} of DOT text, checking
    its statement structure on the way."""
    tokens, index = _tokens(source), 0
    graph = {"nodes": {}, "edges": [], "clusters": {}, "defaults": {}}
    open_clusters: list = []

    def take(kind=None, value=None):
        nonlocal index
        token = tokens[index]
        assert kind is None or token[0] == kind, (token, kind)
        assert value is None or token[1] == value, (token, value)
        index += 1
        return token[1]

    def attributes() -> dict:
        found = {}
        if index < len(tokens) and tokens[index] == ("op", "["):
            take("op", "[")
            while tokens[index] != ("op", "]"):
                key = take("id")
                take("op", "=")
                found[key] = take("id")
                if tokens[index] == ("op", ","):
                    take("op", ",")
            take("op", "]")
        return found

    take("id", "digraph")
    graph["name"] = take("id")
    take("op", "{")
    depth = 1
    while depth:
        if tokens[index] == ("op", "}"):
            take()
            depth -= 1
            if open_clusters:
                open_clusters.pop()
            continue
        first = take("id")
        if first == "subgraph":
            name = take("id")
            take("op", "{")
            graph["clusters"][name] = []
            open_clusters.append(name)
            depth += 1
            continue
        if first in ("graph", "node", "edge"):
            scope = open_clusters[-1] if open_clusters else None
            graph["defaults"].setdefault((scope, first), {}).update(attributes())
        elif tokens[index] == ("op", "->"):
            take("op", "->")
            head = take("id")
            graph["edges"].append((first, head, attributes()))
        else:
            graph["nodes"][first] = attributes()
            for name in open_clusters:
                graph["clusters"][name].append(first)
        take("op", ";")
    assert index == len(tokens), "text after the closing brace"
    return graph


# -- the writer ----------------------------------------------------------------------------------------------

def test_the_writer_quotes_any_text_and_nests_clusters():
    tricky = 'say "hi"\\n to C:\\path\nsecond line'
    graph = _dot.Digraph("g h", graph_attributes={"rankdir": "LR"}, node_attributes={"shape": "box"})
    graph.node("a", tricky, color="red")
    graph.node("b")  # no label: drawn as its id
    graph.edge("a", "b", label="a -> b; {x}")
    body = graph.cluster("body", label="the body")
    body.node("c", "c")
    inner = body.cluster("inner")
    inner.node("d", "d")
    inner.edge("c", "d")
    parsed = parse_dot(graph.source())
    assert parsed["name"] == "g h"
    assert parsed["nodes"]["a"] == {"label": tricky, "color": "red"}
    assert parsed["nodes"]["b"] == {}
    assert parsed["edges"] == [("a", "b", {"label": "a -> b; {x}"}), ("c", "d", {})]
    assert parsed["clusters"] == {"cluster_body": ["c", "d"], "cluster_inner": ["d"]}
    assert parsed["defaults"] == {(None, "graph"): {"rankdir": "LR"}, (None, "node"): {"shape": "box"},
                                  ("cluster_body", "graph"): {"label": "the body"}}
    assert _dot.quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert str(graph) == graph.source() and graph.source().endswith("}\n")


# -- the backward graph --------------------------------------------------------------------------------------

def torch_structure(root) -> tuple:
    """Returns (the names of the distinct nodes, the edges child name -> parent name) of PyTorch's graph."""
    seen, names, edges, pending = set(), Counter(), Counter(), [root.grad_fn]
    seen.add(id(root.grad_fn))
    while pending:
        node = pending.pop()
        names[type(node).__name__ if node.name() == "torch::autograd::AccumulateGrad" else node.name()] += 1
        for child, _ in node.next_functions:
            if child is None:
                continue
            edges[(child.name(), node.name())] += 1
            if id(child) not in seen:
                seen.add(id(child))
                pending.append(child)
    return names, edges


def dot_structure(source: str) -> tuple:
    """Returns the same from our DOT text: nodes by tooltip (``name()``), outputs and saved tensors aside."""
    parsed = parse_dot(source)
    kinds = {node_id: attributes["tooltip"] for node_id, attributes in parsed["nodes"].items()}
    names = Counter(kind for kind in kinds.values() if kind not in ("output", "saved tensor"))
    edges = Counter((kinds[tail], kinds[head]) for tail, head, _ in parsed["edges"]
                    if kinds[tail] not in ("output", "saved tensor") and kinds[head] != "output")
    return names, edges, parsed


def _torch_names(counter: Counter) -> Counter:
    return Counter({name.replace("torch::autograd::", ""): n for name, n in counter.items()})


def _seed_y(module):
    x = module.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = module.tensor([0.5, -1.0, 2.0], requires_grad=True)
    return (x + w) * (w + 1), {"x": x, "w": w}


def _seed_z(module):
    a, b, c, d = (module.tensor([float(i), 1.0], requires_grad=True) for i in range(4))
    return a + b + c * d, {"a": a, "b": b, "c": c, "d": d}


@pytest.mark.parametrize("seed", [_seed_y, _seed_z], ids=["y=(x+w)*(w+1)", "z=a+b+c*d"])
def test_the_seed_graphs_have_pytorchs_nodes_and_edges(seed):
    ours, params = seed(gradcore)
    theirs, _ = seed(torch)
    names, edges, parsed = dot_structure(gradcore.autograd.graph_to_dot(ours, params=params))
    torch_names, torch_edges = torch_structure(theirs)
    assert names == _torch_names(torch_names)
    assert Counter({(a.replace("torch::autograd::", ""), b): n for (a, b), n in torch_edges.items()}) == edges
    # Each leaf once, labelled with its name and shape; the output fed by the root's grad_fn.
    leaves = sorted(a["label"] for a in parsed["nodes"].values() if a["tooltip"] == "AccumulateGrad")
    assert leaves == sorted(f"{name}\n{tuple(t.shape)}" for name, t in params.items())
    (output_id,) = [i for i, a in parsed["nodes"].items() if a["tooltip"] == "output"]
    assert parsed["nodes"][output_id]["label"] == f"output\n{tuple(ours.shape)}"
    (feeding,) = [tail for tail, head, _ in parsed["edges"] if head == output_id]
    assert parsed["nodes"][feeding]["tooltip"] == theirs.grad_fn.name()


def test_a_shared_leaf_is_one_node_with_an_edge_to_each_use():
    y, params = _seed_y(gradcore)
    parsed = parse_dot(gradcore.autograd.graph_to_dot(y, params=params))
    (w_id,) = [i for i, a in parsed["nodes"].items() if a["label"].startswith("w\n")]
    uses = [head for tail, head, _ in parsed["edges"] if tail == w_id]
    assert len(uses) == 2 and {parsed["nodes"][h]["tooltip"] for h in uses} == {"AddBackward0"}


def test_saved_tensors_are_shown_on_request_as_pytorch_saves_them():
    y, params = _seed_y(gradcore)
    theirs, _ = _seed_y(torch)
    assert "saved" not in gradcore.autograd.graph_to_dot(y, params=params)
    parsed = parse_dot(gradcore.autograd.graph_to_dot(y, params=params, show_saved=True))
    saved = [i for i, a in parsed["nodes"].items() if a["tooltip"] == "saved tensor"]
    torch_saved = [name for name in dir(theirs.grad_fn) if name.startswith("_saved_")]
    assert len(saved) == len(torch_saved) == 2  # mul saves both factors
    mul = [tail for tail, head, _ in parsed["edges"] if parsed["nodes"][head]["tooltip"] == "output"][0]
    for node_id in saved:
        assert parsed["nodes"][node_id]["label"].endswith("(3,) float32")
        assert (node_id, mul) in [(tail, head) for tail, head, _ in parsed["edges"]]


def test_a_model_graph_names_its_parameters():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    loss = model(gradcore.ones(5, 4)).pow(2).mean()
    parsed = parse_dot(gradcore.autograd.graph_to_dot(loss, params=dict(model.named_parameters())))
    leaves = sorted(a["label"] for a in parsed["nodes"].values() if a["tooltip"] == "AccumulateGrad")
    assert leaves == sorted(f"{name}\n{tuple(p.shape)}" for name, p in model.named_parameters())


def test_several_roots_and_unnamed_leaves():
    x = gradcore.ones(2, requires_grad=True)
    first, second = x * 2, x.sum()
    parsed = parse_dot(gradcore.autograd.graph_to_dot([first, second]))
    outputs = sorted(a["label"] for a in parsed["nodes"].values() if a["tooltip"] == "output")
    assert outputs == ["output 0\n(2,)", "output 1\n()"]
    (leaf,) = [a for a in parsed["nodes"].values() if a["tooltip"] == "AccumulateGrad"]
    assert leaf["label"] == "(2,)"
    with pytest.raises(TypeError, match="roots must be Tensors"):
        gradcore.autograd.graph_to_dot([first, 3.0])


def test_rendering_needs_the_graphviz_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    y, _ = _seed_y(gradcore)
    with pytest.raises(ImportError, match=r'pip install "gradcore\[graphviz\]"'):
        gradcore.autograd.render_graph(y, tmp_path / "graph.svg")


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="Graphviz's dot program is not installed (apt-get install graphviz); the DOT text "
                           "is tested above without it")
def test_render_graph_draws_an_svg(tmp_path):
    pytest.importorskip("graphviz", reason="the optional graphviz package is not installed")
    y, params = _seed_y(gradcore)
    path = gradcore.autograd.render_graph(y, tmp_path / "graph.svg", params=params, show_saved=True)
    svg = open(path, encoding="utf-8").read()
    assert path.endswith("graph.svg") and "<svg" in svg
    assert svg.count("MulBackward0") >= 1 and svg.count("AddBackward0") >= 2
