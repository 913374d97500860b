"""In-place ops on views and on bases whose views are used later: values and gradients against PyTorch.

Writing through a view changes the base's history; using a view after its base was changed in place
rebuilds the view's history from the base. Both must give PyTorch's gradients.
"""
import numpy as np
import pytest

import gradcore

torch = pytest.importorskip("torch")


def _case(lib, case: str):
    x = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=lib.float64, requires_grad=True)
    w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
    y = x * 2
    if case == "mul_ on a row view":
        v = y[0]
        v.mul_(w)
        out = (y * y).sum()
    elif case == "add_ on a column view, view used after":
        v = y[:, 1]
        v.add_(3.0)
        out = (y ** 3).sum() + v.sum()
    elif case == "view of a transposed view":
        v = y.t()
        v[1].mul_(w[:2])
        out = y.sin().sum()
    elif case == "base changed after the view was taken":
        v = y[1]
        y.mul_(2)
        out = v.sum() * 3 + y.sum()
    elif case == "setitem through a reshaped view":
        v = y.view(6)
        v[2:4] = w[:2] * 5
        out = (y * y).sum()
    elif case == "setitem and augmented setitem on a clone":
        y2 = y.clone()
        y2[0, 1] = 7.0
        y2[:, 2] *= w[0]
        out = (y2 ** 2).sum()
    elif case == "rows of a tensor that needed no grad":
        z = lib.zeros(2, 3, dtype=lib.float64)
        z[0] = w
        z[1] = x[1] * w
        out = z.exp().sum()
    elif case == "sub_ on a view of a view":
        v = y[0][1:]
        v.sub_(w[1:])
        out = (y * x).sum()
    else:
        raise AssertionError(case)
    out.backward()
    return out.item(), x.grad.numpy().copy(), None if w.grad is None else w.grad.numpy().copy()


CASES = [
    "mul_ on a row view",
    "add_ on a column view, view used after",
    "view of a transposed view",
    "base changed after the view was taken",
    "setitem through a reshaped view",
    "setitem and augmented setitem on a clone",
    "rows of a tensor that needed no grad",
    "sub_ on a view of a view",
]


@pytest.mark.parametrize("case", CASES)
def test_inplace_through_views_matches_torch(case):
    ours = _case(gradcore, case)
    theirs = _case(torch, case)
    assert np.isclose(ours[0], theirs[0])
    np.testing.assert_allclose(ours[1], theirs[1])
    if theirs[2] is None:
        assert ours[2] is None
    else:
        np.testing.assert_allclose(ours[2], theirs[2])


def test_inplace_on_expanded_view_raises():
    x = gradcore.ones(3)
    e = x.expand(2, 3)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        e.add_(1)
    assert x.tolist() == [1.0, 1.0, 1.0]


def test_inplace_on_view_of_leaf_raises():
    x = gradcore.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        x[1:].mul_(2)


def _custom_inplace_on_a_view(lib):
    class Double(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.mul_(2)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    a = lib.ones(4, requires_grad=True)
    b = a * 1
    Double.apply(b[:2])
    (b * b).sum().backward()
    return a.grad.tolist()


def test_custom_function_marking_a_view_dirty_rewrites_the_base_history():
    assert _custom_inplace_on_a_view(gradcore) == _custom_inplace_on_a_view(torch) == [8.0, 8.0, 2.0, 2.0]


def test_retain_grad_follows_an_inplace_op():
    for lib in (gradcore, torch):
        x = lib.ones(2, requires_grad=True)
        y = x * 2
        y.retain_grad()
        y.mul_(3)
        y.sum().backward()
        assert y.retains_grad
        assert y.grad.tolist() == [1.0, 1.0]


def test_tensor_hooks_run_before_node_pre_hooks():
    for lib in (gradcore, torch):
        order = []
        x = lib.ones(2, requires_grad=True)
        y = x * 2
        y.register_hook(lambda g: order.append("tensor hook"))
        y.grad_fn.register_prehook(lambda grads: order.append("node pre-hook"))
        y.sum().backward()
        assert order == ["tensor hook", "node pre-hook"]


def test_writing_through_a_row_of_an_expanded_tensor():
    # Without a graph, as in PyTorch, the row's elements are distinct and the write goes through.
    y = gradcore.ones(3)
    y.expand(2, 3)[0].add_(1)
    assert y.tolist() == [2.0, 2.0, 2.0]
    # Recording it is not supported yet: the error comes before anything is written.
    x = gradcore.ones(3, requires_grad=True) * 1
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        x.expand(2, 3)[0].add_(1)
    assert x.tolist() == [1.0, 1.0, 1.0] and x._version == 0
