import gradcore as torch

import numpy as np
import pytest

MODIFIED_INPLACE = "modified by an inplace operation"
LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation"


def assert_values(t, expected):
    expected = np.asarray(expected, dtype=np.float64)
    np.testing.assert_allclose(t.detach().numpy(), expected, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------
# Version counter bumps
# ---------------------------------------------------------------------------


def test_new_tensor_starts_at_version_zero():
    assert torch.ones(3)._version == 0
    assert torch.tensor([1.0, 2.0])._version == 0


@pytest.mark.parametrize(
    "op",
    [
        lambda t: t.add_(1),
        lambda t: t.sub_(1),
        lambda t: t.mul_(2),
        lambda t: t.div_(2),
        lambda t: t.zero_(),
        lambda t: t.fill_(3.0),
        lambda t: t.clamp_(0.0, 1.0),
        lambda t: t.copy_(torch.zeros(3)),
        lambda t: t.add_(torch.ones(3)),
        lambda t: t.mul_(torch.ones(3)),
    ],
    ids=["add_", "sub_", "mul_", "div_", "zero_", "fill_", "clamp_", "copy_", "add_tensor", "mul_tensor"],
)
def test_inplace_method_bumps_version(op):
    t = torch.ones(3)
    before = t._version
    result = op(t)
    assert t._version == before + 1
    assert result is t


def test_inplace_methods_modify_values():
    t = torch.tensor([1.0, 2.0, 3.0])
    t.add_(1)
    assert_values(t, [2.0, 3.0, 4.0])
    t.sub_(0.5)
    assert_values(t, [1.5, 2.5, 3.5])
    t.mul_(2)
    assert_values(t, [3.0, 5.0, 7.0])
    t.div_(2)
    assert_values(t, [1.5, 2.5, 3.5])
    t.clamp_(2.0, 3.0)
    assert_values(t, [2.0, 2.5, 3.0])
    t.copy_(torch.tensor([9.0, 8.0, 7.0]))
    assert_values(t, [9.0, 8.0, 7.0])
    t.fill_(4.0)
    assert_values(t, [4.0, 4.0, 4.0])
    t.zero_()
    assert_values(t, [0.0, 0.0, 0.0])


def test_augmented_assignment_is_inplace_and_bumps_version():
    t = torch.tensor([1.0, 2.0])
    original = t
    v = t._version
    t += 1
    assert t is original
    assert t._version == v + 1
    t -= 0.5
    assert t._version == v + 2
    t *= 2
    assert t._version == v + 3
    t /= 4
    assert t._version == v + 4
    assert t is original
    assert_values(t, [0.75, 1.25])


def test_setitem_bumps_version():
    t = torch.zeros(4)
    v = t._version
    t[1] = 5.0
    assert t._version == v + 1
    t[2:] = torch.tensor([1.0, 2.0])
    assert t._version == v + 2
    assert_values(t, [0.0, 5.0, 1.0, 2.0])


def test_out_of_place_ops_do_not_bump_version():
    t = torch.ones(3)
    _ = t + 1
    _ = t * t
    _ = t.clone()
    _ = t.sum()
    assert t._version == 0


# ---------------------------------------------------------------------------
# Views share the version counter (and memory)
# ---------------------------------------------------------------------------


def test_view_shares_version_counter():
    base = torch.ones(2, 3)
    v = base.view(6)
    v.add_(1)
    assert base._version == 1
    assert v._version == 1
    base.mul_(2)
    assert v._version == 2
    assert_values(base, np.full((2, 3), 4.0))


def test_slice_shares_version_counter_and_memory():
    base = torch.ones(4)
    s = base[1:3]
    s.mul_(5)
    assert base._version == 1
    assert s._version == 1
    assert_values(base, [1.0, 5.0, 5.0, 1.0])


def test_transpose_shares_version_counter_and_memory():
    base = torch.ones(2, 3)
    t = base.transpose(0, 1)
    t[0, 1] = 7.0
    assert base._version == 1
    assert t._version == 1
    assert base[1, 0].item() == 7.0


def test_version_bump_through_view_of_view():
    base = torch.zeros(2, 3)
    inner = base.view(6)[2:]
    inner.add_(1)
    assert base._version == 1
    assert_values(base, [[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])


def test_every_view_sees_bump_of_base():
    base = torch.ones(3)
    views = [base.view(3), base[1:], base.view(1, 3).transpose(0, 1), base.detach()]
    base.add_(1)
    assert [v._version for v in views] == [1, 1, 1, 1]


def test_detach_shares_version_counter_and_memory():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad
    d.add_(1)
    assert x._version == 1
    assert_values(x, [2.0, 3.0])


def test_data_shares_memory_but_not_version_counter():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    d = x.data
    assert not d.requires_grad
    d.mul_(3)
    assert_values(x, [3.0, 6.0])
    assert x._version == 0
    assert d._version == 1


def test_data_inplace_does_not_invalidate_saved_tensors():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    x.data.add_(1)
    y.sum().backward()
    # The graph sees the new values (shared memory) and does not complain.
    assert_values(x.grad, [4.0, 6.0])


def test_assigning_data_replaces_values_and_keeps_requires_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    x.data = torch.tensor([7.0, 8.0])
    assert x.requires_grad
    assert x.is_leaf
    assert_values(x, [7.0, 8.0])
    (x * x).sum().backward()
    assert_values(x.grad, [14.0, 16.0])


# ---------------------------------------------------------------------------
# Saved tensors modified in place
# ---------------------------------------------------------------------------


def test_modified_sigmoid_output_raises_on_backward():
    a = torch.tensor([0.5, -1.0], requires_grad=True)
    out = a.sigmoid()
    c = out.detach()
    c.zero_()
    with pytest.raises(RuntimeError, match=MODIFIED_INPLACE):
        out.sum().backward()


def test_modified_exp_output_raises_on_backward():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    y.add_(1)
    with pytest.raises(RuntimeError, match=MODIFIED_INPLACE):
        y.sum().backward()


def test_modified_saved_input_raises_on_backward():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    z = y * y
    y.add_(1)
    with pytest.raises(RuntimeError, match=MODIFIED_INPLACE):
        z.sum().backward()


def test_leaf_modified_under_no_grad_after_use_raises():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    with torch.no_grad():
        x.add_(1)
    with pytest.raises(RuntimeError, match=MODIFIED_INPLACE):
        y.sum().backward()


def test_modifying_a_tensor_that_was_not_saved_is_fine():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a = x * 2
    b = a + 1  # addition saves nothing
    a.mul_(2)
    b.sum().backward()
    assert_values(x.grad, [2.0, 2.0, 2.0])


def test_modifying_through_a_view_raises_on_backward():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.exp()
    y.detach()[0:1].zero_()
    with pytest.raises(RuntimeError, match=MODIFIED_INPLACE):
        y.sum().backward()


# ---------------------------------------------------------------------------
# In-place on leaves that require grad
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    [lambda t: t.add_(1), lambda t: t.mul_(2), lambda t: t.zero_(), lambda t: t.fill_(1.0)],
    ids=["add_", "mul_", "zero_", "fill_"],
)
def test_inplace_on_leaf_requiring_grad_raises(op):
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=LEAF_INPLACE):
        op(x)
    assert_values(x, [1.0, 2.0])
    assert x._version == 0


def test_augmented_assignment_on_leaf_requiring_grad_raises():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=LEAF_INPLACE):
        x += 1


def test_setitem_on_leaf_requiring_grad_raises():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x[0] = 5.0


def test_inplace_on_leaf_allowed_under_no_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with torch.no_grad():
        x.mul_(2)
        x -= 1
    assert x._version == 2
    assert x.is_leaf
    assert x.requires_grad
    assert x.grad_fn is None
    assert_values(x, [1.0, 3.0])
    (x * x).sum().backward()
    assert_values(x.grad, [2.0, 6.0])


def test_inplace_on_leaf_without_requires_grad_is_allowed():
    x = torch.tensor([1.0, 2.0])
    x.add_(1)
    assert not x.requires_grad
    assert x.grad_fn is None


# ---------------------------------------------------------------------------
# requires_grad_ / detach_
# ---------------------------------------------------------------------------


def test_requires_grad_inplace_toggle():
    x = torch.ones(2)
    assert not x.requires_grad
    out = x.requires_grad_()
    assert out is x
    assert x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad


def test_requires_grad_false_on_non_leaf_raises():
    x = torch.ones(2, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf variables"):
        y.requires_grad_(False)


def test_detach_inplace_turns_non_leaf_into_leaf():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    out = y.detach_()
    assert out is y
    assert not y.requires_grad
    assert y.grad_fn is None
    assert y.is_leaf
    assert_values(y, [2.0, 4.0])


def test_out_of_place_detach_leaves_original_untouched():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert y.requires_grad
    assert y.grad_fn is not None
    assert not d.requires_grad
    assert d.grad_fn is None


# ---------------------------------------------------------------------------
# Gradients through in-place ops on non-leaf tensors
# ---------------------------------------------------------------------------


def test_inplace_chain_on_non_leaf():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x * 2
    y.add_(1)
    y.mul_(3)
    assert y._version == 2
    assert_values(y, 3 * (2 * np.array([1.0, -2.0, 3.0]) + 1))
    y.sum().backward()
    assert_values(x.grad, [6.0, 6.0, 6.0])


def test_inplace_updates_grad_fn():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    assert y.grad_fn.name() == "MulBackward0"
    y.add_(1)
    assert y.grad_fn.name() == "AddBackward0"
    assert not y.is_leaf


def test_inplace_mul_by_tensor_requiring_grad():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    y = x * 1
    y.mul_(w)
    (y * y).sum().backward()
    # L = sum((x w)^2): dL/dx = 2 x w^2, dL/dw = 2 x^2 w
    assert_values(x.grad, [18.0, 64.0])
    assert_values(w.grad, [6.0, 32.0])


def test_inplace_div_gradient():
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    d = torch.tensor([4.0, 5.0], dtype=torch.float64, requires_grad=True)
    y = x.clone()
    y.div_(d)
    y.sum().backward()
    assert_values(x.grad, [0.25, 0.2])
    assert_values(d.grad, [-1.0 / 16.0, -2.0 / 25.0])


def test_setitem_on_clone_gradient():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.clone()
    y[0] = 0.0
    (y * y).sum().backward()
    assert_values(x.grad, [0.0, 4.0, 6.0])


def test_setitem_with_tensor_requiring_grad():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = torch.tensor(5.0, requires_grad=True)
    y = x.clone()
    y[1] = v * 2
    (y * torch.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert_values(x.grad, [1.0, 0.0, 100.0])
    assert_values(v.grad, 20.0)


def test_inplace_on_view_of_non_leaf_propagates_to_base_gradient():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.clone()
    y[1:].mul_(2)
    y.sum().backward()
    assert_values(x.grad, [1.0, 2.0, 2.0])


def test_clamp_inplace_gradient_masks_clipped_entries():
    x = torch.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    y = x * 1
    y.clamp_(0.0, 1.0)
    y.sum().backward()
    assert_values(x.grad, [0.0, 1.0, 0.0])


def test_zero_inplace_gradient_is_zero():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    z = y * 1
    z.zero_()
    (y + z).sum().backward()
    assert_values(x.grad, [3.0, 3.0])
