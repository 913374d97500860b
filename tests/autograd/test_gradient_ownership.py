"""A leaf keeps the gradient it receives as its .grad without a copy only when nothing else can hold it.

Later backward passes accumulate into .grad in place, so a .grad that shared memory with a tensor held
elsewhere (the caller's gradient, another leaf's .grad, what a hook kept) would change that tensor too.
"""

import numpy as np
import pytest

import gradcore


def leaf(values):
    return gradcore.tensor(np.array(values, dtype=np.float32), requires_grad=True)


def test_the_callers_gradient_is_not_adopted():
    x = leaf([1.0, 2.0])
    g = gradcore.tensor(np.array([1.0, 1.0], dtype=np.float32))
    (x + 1.0).backward(g)
    (x + 1.0).backward(g)
    np.testing.assert_array_equal(g.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_one_gradient_handed_to_two_leaves_gives_each_its_own():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    ((a + b) * 2.0).sum().backward()
    a.grad.add_(1.0)
    np.testing.assert_array_equal(b.grad.numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 3.0])


def test_a_gradient_handed_twice_to_one_leaf_is_summed():
    a = leaf([1.0, 2.0])
    ((a * 3.0) + (a * 3.0)).sum().backward()
    b = leaf([1.0, 2.0])
    y = b * 3.0
    (y + y).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [6.0, 6.0])
    np.testing.assert_array_equal(b.grad.numpy(), [6.0, 6.0])


def test_what_a_hook_keeps_is_not_changed_by_later_passes():
    x = leaf([1.0, 2.0])
    kept = []
    x.register_hook(lambda g: kept.append(g))
    (x * 2.0).sum().backward()
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(kept[0].numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 4.0])


def test_a_tensor_hook_on_an_intermediate_keeps_its_gradient():
    x = leaf([1.0, 2.0])
    kept = []
    y = x * 2.0
    z = y + 1.0
    z.register_hook(lambda g: kept.append(g))
    z.sum().backward()
    x.grad.add_(5.0)
    np.testing.assert_array_equal(kept[0].numpy(), [1.0, 1.0])


@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_backward_with_inputs_gives_an_intermediate_and_a_leaf_separate_gradients():
    x = leaf([1.0, 2.0])
    t = x + 0.0
    (t * 1.0).sum().backward(inputs=[t, x])
    x.grad.add_(1.0)
    np.testing.assert_array_equal(t.grad.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_a_custom_function_may_return_a_gradient_it_keeps():
    class Keep(gradcore.autograd.Function):
        kept = None

        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            Keep.kept = grad * 1.0
            return Keep.kept

    x = leaf([1.0, 2.0])
    Keep.apply(x).sum().backward()
    Keep.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(Keep.kept.numpy(), [1.0, 1.0])


# -- gradients summed in place: a tensor read several times ------------------------------------------------------
torch = pytest.importorskip("torch")


def _both(program):
    """Runs ``program(lib, x)`` on a fresh leaf of each library; returns its results as numpy arrays."""
    values = np.array([[1.5, -2.0, 0.5], [3.0, 0.0, -1.25]], dtype=np.float32)
    outcomes = []
    for lib in (gradcore, torch):
        x = lib.tensor(values, requires_grad=True)
        outcomes.append([None if r is None else r.detach().numpy().copy() for r in program(lib, x)])
    return outcomes


@pytest.mark.parametrize("case", ["cube", "fourth", "hooked_leaf", "kept_by_hook", "callers_gradient",
                                  "inputs", "node_post_hook", "create_graph", "twice", "two_roots"])
def test_gradients_of_a_tensor_read_several_times_match_torch(case):
    def program(lib, x):
        kept = []
        if case == "cube":
            (x * x * x).sum().backward()
            return [x.grad]
        if case == "fourth":
            y = x * x
            (y * y + x * x).sum().backward()
            return [x.grad]
        if case == "hooked_leaf":
            x.register_hook(lambda g: kept.append(g))
            (x * x * x).sum().backward()
            (x * x * x).sum().backward()
            return kept + [x.grad]
        if case == "kept_by_hook":
            h = x * 2.0
            h.register_hook(lambda g: kept.append(g))
            (h * h * h).sum().backward()
            (x * x).sum().backward()
            return kept + [x.grad]
        if case == "callers_gradient":
            g = lib.ones(2, 3) * 0.5
            (x * x * x).backward(g)
            return [g, x.grad]
        if case == "inputs":
            h = x + 1.0
            gh, gx = lib.autograd.grad((h * h * x).sum(), (h, x))
            return [gh, gx]
        if case == "node_post_hook":
            y = x * x
            y.grad_fn.register_hook(lambda grad_inputs, grad_outputs: kept.extend(grad_inputs))
            (y * x).sum().backward()
            return kept + [x.grad]
        if case == "two_roots":
            # The caller's first gradient passes unchanged through the add into h's sum: it must stay as given.
            h = x * 3.0
            g1, g2 = lib.ones(2, 3) * 0.5, lib.ones(2, 3) * 0.25
            doubled = h * 2.0
            shifted = h + 1.0  # made last, so its node runs first and puts g1 itself into h's sum
            lib.autograd.backward([doubled, shifted], [g2, g1])
            return [g1, g2, x.grad]
        if case == "create_graph":
            (gx,) = lib.autograd.grad((x * x * x).sum(), x, create_graph=True)
            (ggx,) = lib.autograd.grad(gx.sum(), x)
            return [gx, ggx]
        (x * x * x).sum().backward()
        first = x.grad.clone()
        (x * x * x).sum().backward()
        return [first, x.grad]

    ours, theirs = _both(program)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-6)
