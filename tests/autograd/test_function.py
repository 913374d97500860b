import gradcore as torch

import numpy as np
import pytest

Function = torch.autograd.Function


def assert_values(t, expected, rtol=1e-6, atol=1e-6):
    expected = np.asarray(expected, dtype=np.float64)
    np.testing.assert_allclose(t.detach().numpy(), expected, rtol=rtol, atol=atol)


class Scale(Function):
    """y = x * k with a non-tensor k."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return x * k

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out * ctx.k, None


class MulSaved(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        return grad_out * b, grad_out * a


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        y = 1 / (1 + (-x).exp())
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * y * (1 - y)


class MyFunc(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out * 2


def test_apply_computes_forward_and_gradient():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = Scale.apply(x, 3.0)
    assert_values(y, [3.0, 6.0])
    assert y.requires_grad
    y.sum().backward()
    assert_values(x.grad, [3.0, 3.0])


def test_forward_runs_without_recording_a_graph():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    inner = {}

    class Probe(Function):
        @staticmethod
        def forward(ctx, x):
            out = x * 2
            inner["requires_grad"] = out.requires_grad
            inner["grad_fn"] = out.grad_fn
            return out

        @staticmethod
        def backward(ctx, grad_out):
            return grad_out * 2

    y = Probe.apply(x)
    assert inner == {"requires_grad": False, "grad_fn": None}
    assert y.requires_grad


def test_grad_fn_name_of_custom_function():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = MyFunc.apply(x)
    assert y.grad_fn.name() == "MyFuncBackward"
    assert type(y.grad_fn).__name__ == "MyFuncBackward"


def test_custom_function_next_functions_point_to_inputs():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = MyFunc.apply(x * 1)
    ((node, idx),) = y.grad_fn.next_functions
    assert node.name() == "MulBackward0"
    assert idx == 0


def test_save_for_backward_and_saved_tensors():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0, 5.0], requires_grad=True)
    MulSaved.apply(a, b).sum().backward()
    assert_values(a.grad, [3.0, 5.0])
    assert_values(b.grad, [1.0, 2.0])


def test_saved_tensors_freed_after_backward():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0, 5.0], requires_grad=True)
    y = MulSaved.apply(a, b).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_saved_tensors_retained_with_retain_graph():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0, 5.0], requires_grad=True)
    y = MulSaved.apply(a, b).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert_values(a.grad, [6.0, 10.0])


def test_saved_input_modified_inplace_is_detected():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0, 5.0])
    y = MulSaved.apply(a, b)
    b.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_needs_input_grad():
    seen = []

    class Record(Function):
        @staticmethod
        def forward(ctx, a, b, k):
            seen.append(("forward", tuple(ctx.needs_input_grad)))
            return a * b * k

        @staticmethod
        def backward(ctx, grad_out):
            seen.append(("backward", tuple(ctx.needs_input_grad)))
            return grad_out, None, None

    a = torch.tensor([1.0], requires_grad=True)
    b = torch.tensor([2.0])
    Record.apply(a, b, 3).sum().backward()
    assert seen == [("forward", (True, False, False)), ("backward", (True, False, False))]


def test_non_tensor_arguments_receive_none_gradient():
    x = torch.tensor([2.0, 4.0], requires_grad=True)

    class Power(Function):
        @staticmethod
        def forward(ctx, x, n, label):
            assert label == "unused"
            ctx.save_for_backward(x)
            ctx.n = n
            return x**n

        @staticmethod
        def backward(ctx, grad_out):
            (x,) = ctx.saved_tensors
            return grad_out * ctx.n * x ** (ctx.n - 1), None, None

    Power.apply(x, 3, "unused").sum().backward()
    assert_values(x.grad, [12.0, 48.0])


def test_backward_returning_none_for_tensor_input():
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0, 4.0], requires_grad=True)

    class FirstOnly(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad_out):
            return grad_out, None

    FirstOnly.apply(a, b).sum().backward()
    assert_values(a.grad, [1.0, 1.0])
    assert b.grad is None


def test_backward_returning_wrong_number_of_gradients_raises():
    class TooMany(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, grad_out):
            return grad_out, grad_out

    x = torch.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="returned an incorrect number of gradients"):
        TooMany.apply(x).sum().backward()


def test_multiple_outputs():
    class SplitOps(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 2, x * x

        @staticmethod
        def backward(ctx, g_double, g_square):
            (x,) = ctx.saved_tensors
            return g_double * 2 + g_square * 2 * x

    x = torch.tensor([1.0, 3.0], requires_grad=True)
    d, s = SplitOps.apply(x)
    assert_values(d, [2.0, 6.0])
    assert_values(s, [1.0, 9.0])
    assert d.grad_fn is s.grad_fn
    (d.sum() + (s * 10).sum()).backward()
    assert_values(x.grad, [2.0 + 20.0 * 1.0, 2.0 + 20.0 * 3.0])


def test_multiple_outputs_only_one_used_gets_zero_for_the_other():
    received = {}

    class Pair(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            received["g1"] = g1.detach().numpy().copy()
            received["g2"] = g2.detach().numpy().copy()
            return g1 * 2 + g2 * 3

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    first, second = Pair.apply(x)
    second.sum().backward()
    # Unused outputs are materialized as zeros.
    np.testing.assert_allclose(received["g1"], [0.0, 0.0])
    np.testing.assert_allclose(received["g2"], [1.0, 1.0])
    assert_values(x.grad, [3.0, 3.0])


def test_next_functions_index_of_second_output():
    class Pair(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            return g1 * 2 + g2 * 3

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    first, second = Pair.apply(x)
    z = second * first
    (n0, i0), (n1, i1) = z.grad_fn.next_functions
    assert n0 is second.grad_fn
    assert n1 is first.grad_fn
    assert (i0, i1) == (1, 0)


def test_mark_dirty_inplace_function():
    class AddOne_(Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, grad_out):
            return grad_out

    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = a * 1
    version_before = b._version
    c = AddOne_.apply(b)
    assert c is b
    assert b._version > version_before
    assert b.grad_fn.name() == "AddOne_Backward"
    assert_values(c, [2.0, 3.0])
    (c * c).sum().backward()
    assert_values(a.grad, [4.0, 6.0])


def test_mark_dirty_on_leaf_requiring_grad_raises():
    class AddOne_(Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, grad_out):
            return grad_out

    a = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        AddOne_.apply(a)


def test_mark_non_differentiable():
    class SortWithIndices(Function):
        @staticmethod
        def forward(ctx, x):
            order = np.argsort(x.detach().numpy(), kind="stable")
            idx = torch.tensor(order)
            ctx.mark_non_differentiable(idx)
            ctx.save_for_backward(idx)
            return x[idx], idx

        @staticmethod
        def backward(ctx, g_values, g_idx):
            (idx,) = ctx.saved_tensors
            grad = torch.zeros_like(g_values)
            grad[idx] = g_values
            return grad

    x = torch.tensor([3.0, 1.0, 2.0], requires_grad=True)
    values, idx = SortWithIndices.apply(x)
    assert values.requires_grad
    assert not idx.requires_grad
    assert idx.tolist() == [1, 2, 0]
    assert_values(values, [1.0, 2.0, 3.0])
    (values * torch.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert_values(x.grad, [100.0, 1.0, 10.0])


def test_mark_non_differentiable_float_output():
    class WithMask(Function):
        @staticmethod
        def forward(ctx, x):
            mask = (x > 0).float()
            ctx.mark_non_differentiable(mask)
            return x * 2, mask

        @staticmethod
        def backward(ctx, g, g_mask):
            return g * 2

    x = torch.tensor([-1.0, 2.0], requires_grad=True)
    y, mask = WithMask.apply(x)
    assert y.requires_grad
    assert not mask.requires_grad
    assert mask.grad_fn is None


def test_apply_without_grad_inputs_produces_no_graph():
    x = torch.tensor([1.0, 2.0])
    y = MyFunc.apply(x)
    assert not y.requires_grad
    assert y.grad_fn is None
    assert_values(y, [2.0, 4.0])


def test_apply_under_no_grad_produces_no_graph():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with torch.no_grad():
        y = MyFunc.apply(x)
    assert not y.requires_grad
    assert y.grad_fn is None


def test_custom_function_composes_with_builtin_ops():
    x = torch.tensor([0.5, -1.5], dtype=torch.float64, requires_grad=True)
    y = Sigmoid.apply(x * 3).sum() * 2
    y.backward()
    s = 1 / (1 + np.exp(-3 * np.array([0.5, -1.5])))
    assert_values(x.grad, 2 * 3 * s * (1 - s), rtol=1e-12)


def test_custom_sigmoid_matches_builtin():
    values = [-2.0, 0.0, 1.5]
    x1 = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    x2 = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    Sigmoid.apply(x1).sum().backward()
    x2.sigmoid().sum().backward()
    np.testing.assert_allclose(x1.grad.numpy(), x2.grad.numpy(), rtol=1e-12)


def test_gradcheck_custom_sigmoid():
    x = torch.tensor([-1.3, 0.2, 0.9, 2.5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(Sigmoid.apply, (x,), eps=1e-6, atol=1e-4)


def test_gradcheck_custom_two_input_function():
    a = torch.tensor([[0.3, -0.7], [1.1, 2.0]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[1.5, 0.4], [-0.2, 0.8]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(MulSaved.apply, (a, b), eps=1e-6, atol=1e-4)


def test_gradcheck_detects_wrong_backward():
    class Wrong(Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, grad_out):
            return grad_out  # should be 2 * x * grad_out

    x = torch.tensor([0.5, 1.5], dtype=torch.float64, requires_grad=True)
    assert not torch.autograd.gradcheck(Wrong.apply, (x,), eps=1e-6, atol=1e-4, raise_exception=False)
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        torch.autograd.gradcheck(Wrong.apply, (x,), eps=1e-6, atol=1e-4)


def test_double_backward_through_custom_function():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, grad_out):
            (x,) = ctx.saved_tensors
            # Written with differentiable ops so create_graph works.
            return grad_out * 3 * x * x

    x = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(Cube.apply(x), x, create_graph=True)
    assert_values(g, 12.0)
    (g2,) = torch.autograd.grad(g, x)
    assert_values(g2, 12.0)


def test_a_backward_replaced_after_the_class_was_defined_is_the_one_that_runs():
    class Double(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    Double.backward = staticmethod(lambda ctx, grad: grad * 5)
    x = torch.tensor([1.0], requires_grad=True)
    Double.apply(x).sum().backward()
    assert x.grad.tolist() == [5.0]
