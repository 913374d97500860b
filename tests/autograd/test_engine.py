import gradcore as torch

import math

import numpy as np
import pytest


def leaf(values, dtype=None):
    return torch.tensor(values, dtype=dtype, requires_grad=True)


def assert_close(actual, expected, rtol=1e-6, atol=1e-6):
    np.testing.assert_allclose(actual.detach().numpy(), np.asarray(expected), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------
# Graph structure: grad_fn and next_functions
# ---------------------------------------------------------------------------


def test_leaf_has_no_grad_fn():
    x = leaf([1.0, 2.0])
    assert x.grad_fn is None
    assert x.is_leaf
    assert x.requires_grad


def test_tensor_without_requires_grad_is_a_leaf():
    x = torch.tensor([1.0, 2.0])
    y = x * 2
    assert not y.requires_grad
    assert y.grad_fn is None
    assert y.is_leaf


def test_requires_grad_propagates_through_ops():
    x = leaf([1.0, 2.0])
    w = torch.tensor([3.0, 4.0])
    y = x * w
    assert y.requires_grad
    assert not y.is_leaf
    assert y.grad_fn is not None


def test_grad_fn_names():
    x = leaf([1.0, 2.0])
    assert (x + x).grad_fn.name() == "AddBackward0"
    assert (x * x).grad_fn.name() == "MulBackward0"
    assert (x - x).grad_fn.name() == "SubBackward0"
    assert (x / x).grad_fn.name() == "DivBackward0"
    assert (-x).grad_fn.name() == "NegBackward0"
    assert x.sum().grad_fn.name() == "SumBackward0"
    assert x.exp().grad_fn.name() == "ExpBackward0"
    assert (x**3).grad_fn.name() == "PowBackward0"
    assert x.sigmoid().grad_fn.name() == "SigmoidBackward0"
    assert x.view(2, 1).grad_fn.name() == "ViewBackward0"


def test_grad_fn_type_name_matches_name():
    x = leaf([1.0, 2.0])
    y = x * x
    assert type(y.grad_fn).__name__ == "MulBackward0"


def test_next_functions_structure():
    x = leaf([1.0, 2.0])
    y = x * x + x
    nf = y.grad_fn.next_functions
    assert isinstance(nf, tuple)
    assert len(nf) == 2
    for pair in nf:
        assert isinstance(pair, tuple)
        assert len(pair) == 2
    (mul_node, mul_idx), (acc_node, acc_idx) = nf
    assert mul_node.name() == "MulBackward0"
    assert mul_idx == 0
    assert acc_idx == 0
    assert type(acc_node).__name__ == "AccumulateGrad"
    assert acc_node.name().endswith("AccumulateGrad")
    assert acc_node.variable is x


def test_next_functions_of_mul_point_to_leaf_accumulator_twice():
    x = leaf([1.0, 2.0])
    y = x * x
    (a, ia), (b, ib) = y.grad_fn.next_functions
    assert a.variable is x
    assert b.variable is x
    assert (ia, ib) == (0, 0)


def test_next_functions_links_to_previous_grad_fn():
    x = leaf([1.0, 2.0])
    y = x * 2
    z = y * y
    (a, _), (b, _) = z.grad_fn.next_functions
    assert a is y.grad_fn
    assert b is y.grad_fn


def test_next_functions_entry_is_none_for_input_not_requiring_grad():
    x = leaf([1.0, 2.0])
    w = torch.tensor([3.0, 4.0])
    y = x * w
    first, second = y.grad_fn.next_functions
    assert first[0].variable is x
    assert second[0] is None


# ---------------------------------------------------------------------------
# Backward: values, ordering, accumulation
# ---------------------------------------------------------------------------


def test_simple_backward_values():
    x = leaf([1.0, 2.0, 3.0])
    y = (x * x * x).sum()
    y.backward()
    assert_close(x.grad, 3 * np.array([1.0, 2.0, 3.0]) ** 2)


def test_grad_has_same_shape_and_dtype_as_leaf():
    x = leaf([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    (x * 3).sum().backward()
    assert x.grad.shape == x.shape
    assert x.grad.dtype == torch.float64
    assert not x.grad.requires_grad


def test_diamond_graph_gradient():
    x = leaf([0.5, -1.0, 2.0], dtype=torch.float64)
    h = x * 2
    a = h.exp()
    b = h * h
    (a + b).sum().backward()
    hv = 2 * np.array([0.5, -1.0, 2.0])
    assert_close(x.grad, 2 * (np.exp(hv) + 2 * hv), rtol=1e-12)


def test_diamond_graph_processes_shared_node_once_after_both_branches():
    # A node must run only after every consumer has contributed its gradient:
    # the hook on the shared node fires once, last, with the summed gradient.
    x = leaf([1.0, 2.0], dtype=torch.float64)
    h = x * 3
    a = h * 2
    b = h * 5
    events = []
    a.register_hook(lambda g: events.append("a"))
    b.register_hook(lambda g: events.append("b"))
    h.register_hook(lambda g: events.append(("h", g.detach().numpy().copy())))
    (a + b).sum().backward()
    assert len(events) == 3
    assert set(events[:2]) == {"a", "b"}
    name, grad = events[2]
    assert name == "h"
    np.testing.assert_allclose(grad, [7.0, 7.0])
    assert_close(x.grad, [21.0, 21.0])


def test_same_leaf_used_many_times():
    x = leaf([2.0])
    y = x + x + x * x + x.exp()
    y.sum().backward()
    assert_close(x.grad, [2.0 + 2 * 2.0 + math.exp(2.0)], rtol=1e-5)


def test_long_chain_does_not_hit_recursion_limit():
    x = leaf(1.0, dtype=torch.float64)
    y = x
    n = 100_000
    for _ in range(n):
        y = y * 1.00001
    y.backward()
    assert_close(x.grad, 1.00001**n, rtol=1e-9)


def test_long_additive_chain():
    x = leaf([1.0, 2.0])
    y = x
    for _ in range(100_000):
        y = y + 0
    y.sum().backward()
    assert_close(x.grad, [1.0, 1.0])


def test_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    assert_close(x.grad, [2.0, 4.0])
    (x * 3).sum().backward()
    assert_close(x.grad, [5.0, 7.0])


def test_grad_can_be_reset_between_backward_calls():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    x.grad = None
    (x * 3).sum().backward()
    assert_close(x.grad, [3.0, 3.0])
    x.grad.zero_()
    (x * 4).sum().backward()
    assert_close(x.grad, [4.0, 4.0])


@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_non_leaf_grad_is_not_kept_by_default():
    x = leaf([1.0, 2.0])
    y = x * 2
    assert not y.retains_grad
    assert not x.retains_grad
    y.sum().backward()
    assert y.grad is None
    assert x.grad is not None


def test_retain_grad_on_non_leaf():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.retain_grad()
    assert y.retains_grad
    z = (y * y).sum()
    z.backward()
    assert_close(y.grad, [4.0, 8.0])
    assert_close(x.grad, [8.0, 16.0])


def test_retain_grad_on_leaf_is_a_no_op():
    x = leaf([1.0, 2.0])
    x.retain_grad()
    assert not x.retains_grad
    (x * 2).sum().backward()
    assert_close(x.grad, [2.0, 2.0])


def test_backward_with_explicit_gradient():
    x = leaf([1.0, 2.0, 3.0])
    y = x * x
    y.backward(gradient=torch.tensor([1.0, 0.5, 0.0]))
    assert_close(x.grad, [2.0, 2.0, 0.0])


def test_backward_with_positional_gradient():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x * 3
    y.backward(torch.ones(2, 2) * 2)
    assert_close(x.grad, np.full((2, 2), 6.0))


def test_implicit_backward_on_non_scalar_raises():
    x = leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        y.backward()
    assert x.grad is None


def test_backward_on_tensor_without_grad_raises():
    x = torch.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        x.sum().backward()


def test_backward_on_single_element_non_scalar_is_allowed():
    # Only numel() matters for the implicit gradient.
    x = leaf([3.0])
    (x * x).backward()
    assert_close(x.grad, [6.0])


# ---------------------------------------------------------------------------
# Freed graphs and retain_graph
# ---------------------------------------------------------------------------


def test_second_backward_raises():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_second_backward_through_saved_exp_raises():
    x = leaf([1.0, 2.0])
    y = x.exp().sum()
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert_close(x.grad, [4.0, 8.0])


def test_autograd_grad_frees_graph_too():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    torch.autograd.grad(y, x)
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        torch.autograd.grad(y, x)


# ---------------------------------------------------------------------------
# Hooks
# ---------------------------------------------------------------------------


def test_leaf_hook_sees_gradient_and_returning_none_keeps_it():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.detach().numpy().copy()))
    (x * 3).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [3.0, 3.0])
    assert_close(x.grad, [3.0, 3.0])


def test_leaf_hook_can_replace_gradient():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: g * 10)
    (x * 3).sum().backward()
    assert_close(x.grad, [30.0, 30.0])


def test_non_leaf_hook_changes_upstream_gradient():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.register_hook(lambda g: g + 1)
    (y * y).sum().backward()
    # dL/dy = 2y = [4, 8]; the hook turns it into [5, 9]; dy/dx = 2
    assert_close(x.grad, [10.0, 18.0])


def test_non_leaf_hook_returning_none_is_observed_only():
    x = leaf([1.0, 2.0])
    y = x * 2
    seen = []
    y.register_hook(lambda g: seen.append(g.detach().numpy().copy()))
    (y * y).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [4.0, 8.0])
    assert_close(x.grad, [8.0, 16.0])


def test_multiple_hooks_run_in_registration_order():
    x = leaf([1.0])
    x.register_hook(lambda g: g + 1)
    x.register_hook(lambda g: g * 10)
    (x * 2).sum().backward()
    assert_close(x.grad, [30.0])


def test_removed_hook_is_not_called():
    x = leaf([1.0, 2.0])
    calls = []
    handle = x.register_hook(lambda g: calls.append(1) or g * 100)
    handle.remove()
    (x * 3).sum().backward()
    assert calls == []
    assert_close(x.grad, [3.0, 3.0])


def test_register_hook_on_tensor_without_grad_raises():
    x = torch.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require grad"):
        x.register_hook(lambda g: g)


# ---------------------------------------------------------------------------
# Higher-order derivatives
# ---------------------------------------------------------------------------


def test_second_and_third_derivative_of_cube():
    x = leaf(2.0, dtype=torch.float64)
    y = x**3
    (g1,) = torch.autograd.grad(y, x, create_graph=True)
    assert_close(g1, 12.0)
    assert g1.requires_grad
    (g2,) = torch.autograd.grad(g1, x, create_graph=True)
    assert_close(g2, 12.0)  # 6x
    (g3,) = torch.autograd.grad(g2, x)
    assert_close(g3, 6.0)


def test_second_derivative_of_vector_function():
    values = np.array([0.3, -1.2, 2.0])
    x = leaf(values, dtype=torch.float64)
    y = (x * x * x).sum()
    (g,) = torch.autograd.grad(y, x, create_graph=True)
    assert_close(g, 3 * values**2, rtol=1e-12)
    g.sum().backward()
    assert_close(x.grad, 6 * values, rtol=1e-12)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_backward_with_create_graph_makes_differentiable_grad():
    x = leaf(3.0, dtype=torch.float64)
    y = x**3
    y.backward(create_graph=True)
    assert x.grad.requires_grad
    assert x.grad.grad_fn is not None
    (g2,) = torch.autograd.grad(x.grad, x)
    assert_close(g2, 18.0)


def test_grad_without_create_graph_is_not_differentiable():
    x = leaf(3.0)
    (g,) = torch.autograd.grad(x**2, x)
    assert not g.requires_grad
    assert g.grad_fn is None


def test_second_derivative_of_sigmoid():
    values = np.array([-1.0, 0.0, 0.7])
    x = leaf(values, dtype=torch.float64)
    y = x.sigmoid().sum()
    (g,) = torch.autograd.grad(y, x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    s = 1 / (1 + np.exp(-values))
    assert_close(g, s * (1 - s), rtol=1e-12)
    assert_close(h, s * (1 - s) * (1 - 2 * s), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# torch.autograd.backward / torch.autograd.grad
# ---------------------------------------------------------------------------


def test_autograd_backward_multiple_tensors():
    x = leaf([1.0, 2.0])
    y1 = x * 2
    y2 = x * x
    torch.autograd.backward([y1, y2], [torch.tensor([1.0, 1.0]), torch.tensor([0.5, 2.0])])
    # 2 * 1 + 2x * g2
    assert_close(x.grad, [2.0 + 1.0, 2.0 + 8.0])


def test_autograd_backward_scalar_without_grad_tensors():
    x = leaf([1.0, 2.0])
    torch.autograd.backward((x * x).sum())
    assert_close(x.grad, [2.0, 4.0])


def test_autograd_grad_returns_tuple_and_does_not_touch_grad():
    x = leaf([1.0, 2.0])
    w = leaf([3.0, 4.0])
    y = (x * w).sum()
    grads = torch.autograd.grad(y, [x, w])
    assert isinstance(grads, tuple)
    assert len(grads) == 2
    assert_close(grads[0], [3.0, 4.0])
    assert_close(grads[1], [1.0, 2.0])
    assert x.grad is None
    assert w.grad is None


def test_autograd_grad_with_grad_outputs():
    x = leaf([1.0, 2.0])
    y = x * x
    (g,) = torch.autograd.grad(y, x, grad_outputs=torch.tensor([1.0, 3.0]))
    assert_close(g, [2.0, 12.0])


def test_autograd_grad_multiple_outputs_sum_contributions():
    x = leaf([1.0, 2.0])
    y1 = (x * 2).sum()
    y2 = (x * x).sum()
    (g,) = torch.autograd.grad([y1, y2], [x])
    assert_close(g, [4.0, 6.0])


def test_autograd_grad_retain_graph():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    (g1,) = torch.autograd.grad(y, x, retain_graph=True)
    (g2,) = torch.autograd.grad(y, x)
    assert_close(g1, [2.0, 4.0])
    assert_close(g2, [2.0, 4.0])


def test_autograd_grad_with_respect_to_intermediate():
    x = leaf([1.0, 2.0])
    h = x * 3
    y = (h * h).sum()
    (g,) = torch.autograd.grad(y, h)
    assert_close(g, [6.0, 12.0])
    assert x.grad is None


def test_autograd_grad_unused_input_raises():
    x = leaf([1.0, 2.0])
    unused = leaf([1.0, 2.0])
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        torch.autograd.grad(y, [x, unused])


def test_autograd_grad_unused_input_allowed():
    x = leaf([1.0, 2.0])
    unused = leaf([1.0, 2.0])
    y = (x * 2).sum()
    gx, gu = torch.autograd.grad(y, [x, unused], allow_unused=True)
    assert_close(gx, [2.0, 2.0])
    assert gu is None
    assert unused.grad is None


def test_autograd_grad_non_scalar_output_needs_grad_outputs():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        torch.autograd.grad(x * 2, x)


def test_saved_indices_are_freed_after_backward_like_pytorch():
    # Index arrays are saved values (a second backward raises); ints and slices are not.
    for make in (lambda x: x.max(1)[0].sum(), lambda x: x[[0, 1]].sum()):
        x = torch.ones(2, 3, requires_grad=True)
        y = make(x)
        y.backward()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            y.backward()
    x = torch.ones(2, 3, requires_grad=True)
    y = x[0].sum()
    y.backward()
    y.backward()
    assert x.grad.tolist() == [[2.0, 2.0, 2.0], [0.0, 0.0, 0.0]]


def test_leaves_never_share_gradient_memory():
    # Add's backward hands the same gradient to both inputs, and sum's is a broadcast view: each leaf must
    # still get a gradient of its own.
    a = torch.ones(3, requires_grad=True)
    b = torch.ones(3, requires_grad=True)
    c = torch.ones(3, requires_grad=True)
    (a + b + c * 1).sum().backward()
    a.grad.zero_()
    b.grad.add_(1)
    assert a.grad.tolist() == [0.0, 0.0, 0.0]
    assert b.grad.tolist() == [2.0, 2.0, 2.0]
    assert c.grad.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("retain", [False, True])
def test_backward_inputs_with_a_non_leaf_gives_its_gradient_once(retain):
    """A non-leaf among ``inputs`` gets its gradient once, whether or not it also retains its gradient, and the
    backward call raises no warning (as in PyTorch: t.grad is [3, 3], x.grad [6, 6])."""
    import warnings

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    t = x * 2
    if retain:
        t.retain_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (t * 3).sum().backward(inputs=[t, x])
    assert t._grad.tolist() == [3.0, 3.0]
    assert x.grad.tolist() == [6.0, 6.0]


@pytest.mark.parametrize("call", ["squeeze()", "squeeze(1)", "squeeze(0)", "squeeze((0, 1))", "unsqueeze(-1)",
                                  "unsqueeze(0)", "bmm", "rsub", "rsub_float64", "stack", "stack_last_mixed"])
def test_view_and_product_nodes_are_named_as_pytorchs(call):
    import gradcore

    real_torch = pytest.importorskip("torch")
    names = []
    for lib in (gradcore, real_torch):
        x = lib.ones(2, 1, 3, requires_grad=True)
        if call == "bmm":
            y = x.bmm(lib.ones(2, 3, 2))
        elif call.startswith("stack"):
            other = lib.arange(6.0, dtype=lib.float64).reshape(2, 1, 3) if call == "stack_last_mixed" else x * 2
            y = lib.stack([x, other, x], dim=-1 if call == "stack_last_mixed" else 1)
            (y * lib.arange(float(y.numel())).reshape(y.shape)).sum().backward()
            names.append((str(y.dtype).split(".")[-1], y.tolist(), x.grad.tolist()))
        elif call.startswith("rsub"):
            y = 1 - (x if call == "rsub" else x.double())
            y.sum().backward()
            names.append((y.dtype.itemsize if hasattr(y.dtype, "itemsize") else None, y.tolist(), x.grad.tolist()))
        else:
            y = eval(f"x.{call}")
        names.append((y.grad_fn.name(), tuple(y.shape),
                      [None if n is None else type(n).__name__ for n, _ in y.grad_fn.next_functions]))
    assert names[:len(names) // 2] == names[len(names) // 2:]
