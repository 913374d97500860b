import gradcore as torch

import numpy as np
import pytest


def snapshot(t):
    return t.detach().numpy().copy(), t._version


def assert_unchanged(t, snap):
    values, version = snap
    np.testing.assert_array_equal(t.detach().numpy(), values)
    assert t._version == version


# ---------------------------------------------------------------------------
# Broadcasting
# ---------------------------------------------------------------------------


def test_broadcast_mismatch_names_sizes():
    with pytest.raises(
        RuntimeError,
        match=r"The size of tensor a \(3\) must match the size of tensor b \(4\) "
        r"at non-singleton dimension 0",
    ):
        torch.ones(3) + torch.ones(4)


def test_broadcast_mismatch_reports_dimension():
    with pytest.raises(
        RuntimeError,
        match=r"The size of tensor a \(2\) must match the size of tensor b \(4\) "
        r"at non-singleton dimension 0",
    ):
        torch.ones(2, 3) * torch.ones(4, 3)
    with pytest.raises(RuntimeError, match=r"at non-singleton dimension 1"):
        torch.ones(2, 3) - torch.ones(2, 5)


def test_valid_broadcast_still_works():
    out = torch.ones(2) + torch.ones(3, 1)
    assert out.shape == (3, 2)


def test_inplace_broadcast_cannot_grow_output():
    x = torch.tensor([1.0, 2.0, 3.0])
    snap = snapshot(x)
    with pytest.raises(RuntimeError, match=r"output with shape \[3\] doesn't match the broadcast shape"):
        x.add_(torch.ones(2, 3))
    assert_unchanged(x, snap)


# ---------------------------------------------------------------------------
# Matrix multiplication
# ---------------------------------------------------------------------------


def test_matmul_operator_shape_mismatch():
    with pytest.raises(RuntimeError, match=r"cannot be multiplied \(2x3 and 4x5\)"):
        torch.ones(2, 3) @ torch.ones(4, 5)


def test_mm_shape_mismatch():
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"):
        torch.mm(torch.ones(2, 3), torch.ones(4, 5))
    with pytest.raises(RuntimeError, match=r"cannot be multiplied \(2x3 and 2x3\)"):
        torch.ones(2, 3).mm(torch.ones(2, 3))


def test_batched_matmul_shape_mismatch():
    # How batch dimensions are folded into the first operand is not part of the contract.
    with pytest.raises(RuntimeError, match=r"cannot be multiplied \(\d+x4 and 5x6\)"):
        torch.matmul(torch.ones(2, 3, 4), torch.ones(5, 6))


def test_mm_requires_matrices():
    with pytest.raises(RuntimeError, match="self must be a matrix"):
        torch.mm(torch.ones(3), torch.ones(3, 2))


def test_mm_dtype_mismatch():
    with pytest.raises(RuntimeError, match="expected m1 and m2 to have the same dtype"):
        torch.mm(torch.ones(2, 3), torch.ones(3, 5, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="expected m1 and m2 to have the same dtype"):
        torch.ones(2, 3) @ torch.ones(3, 5, dtype=torch.float64)


# ---------------------------------------------------------------------------
# dtype errors
# ---------------------------------------------------------------------------


def test_inplace_result_type_cannot_be_cast():
    i = torch.tensor([1, 2])
    snap = snapshot(i)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        i.add_(1.5)
    assert_unchanged(i, snap)
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
        i.mul_(torch.tensor([0.5, 0.5]))
    assert_unchanged(i, snap)
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
        i.div_(2)
    assert_unchanged(i, snap)


def test_inplace_promotion_within_category_is_allowed():
    f = torch.tensor([1.0, 2.0])
    f.add_(torch.tensor([1.0, 1.0], dtype=torch.float64))
    assert f.dtype == torch.float32
    assert f.tolist() == [2.0, 3.0]


def test_requires_grad_on_integer_tensor():
    with pytest.raises(RuntimeError, match="(?i)only Tensors of floating point"):
        torch.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="(?i)only Tensors of floating point"):
        torch.zeros(2, dtype=torch.int64, requires_grad=True)
    with pytest.raises(RuntimeError, match="(?i)only Tensors of floating point"):
        torch.tensor([1, 2]).requires_grad_()


def test_requires_grad_on_bool_tensor():
    with pytest.raises(RuntimeError, match="(?i)only Tensors of floating point"):
        torch.tensor([True, False]).requires_grad_()


# ---------------------------------------------------------------------------
# Wrong argument types
# ---------------------------------------------------------------------------


def test_add_with_string_raises_type_error():
    x = torch.ones(2)
    with pytest.raises(TypeError):
        torch.add(x, "a")
    with pytest.raises(TypeError):
        x + "a"
    with pytest.raises(TypeError):
        x * None


def test_reduction_with_string_dim_raises_type_error():
    with pytest.raises(TypeError):
        torch.ones(3).sum(dim="a")


def test_shape_arguments_with_wrong_types():
    with pytest.raises(TypeError):
        torch.zeros("a")
    with pytest.raises(TypeError):
        torch.ones(2).reshape("a")
    with pytest.raises(TypeError):
        torch.ones(3).view(1.5)


def test_unary_op_on_non_tensor():
    with pytest.raises(TypeError):
        torch.exp("a")


def test_tensor_from_string_raises_type_error():
    with pytest.raises(TypeError):
        torch.tensor("abc")
    with pytest.raises(TypeError):
        torch.tensor([1, "a"])


def test_tensor_from_uninferable_object():
    with pytest.raises(RuntimeError, match="Could not infer dtype of NoneType"):
        torch.tensor(None)


def test_tensor_from_ragged_list():
    with pytest.raises(ValueError, match=r"expected sequence of length 2 at dim 1 \(got 1\)"):
        torch.tensor([[1, 2], [3]])


def test_negative_dimension():
    with pytest.raises(RuntimeError, match="negative dimension"):
        torch.ones(-1)


# ---------------------------------------------------------------------------
# Shape errors
# ---------------------------------------------------------------------------


def test_view_with_wrong_numel():
    with pytest.raises(RuntimeError, match=r"shape '\[4\]' is invalid for input of size 6"):
        torch.ones(2, 3).view(4)


def test_view_on_non_contiguous_tensor():
    with pytest.raises(RuntimeError, match="view size is not compatible with input tensor's size and stride"):
        torch.ones(2, 3).t().view(6)
    assert torch.ones(2, 3).t().reshape(6).shape == (6,)


def test_reshape_with_wrong_numel():
    with pytest.raises(RuntimeError, match=r"shape '\[4\]' is invalid for input of size 6"):
        torch.ones(2, 3).reshape(4)
    with pytest.raises(RuntimeError, match=r"shape '\[-1, 4\]' is invalid for input of size 6"):
        torch.ones(2, 3).reshape(-1, 4)
    with pytest.raises(RuntimeError, match=r"shape '\[4, -1\]' is invalid for input of size 6"):
        torch.ones(6).reshape(4, -1)


def test_reshape_with_two_inferred_dims():
    with pytest.raises(RuntimeError, match="only one dimension can be inferred"):
        torch.ones(2, 3).view(-1, -1)


def test_dimension_out_of_range():
    with pytest.raises(
        IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"
    ):
        torch.ones(2, 3).sum(dim=2)
    with pytest.raises(IndexError, match="Dimension out of range"):
        torch.ones(3, 2).transpose(0, 2)
    with pytest.raises(IndexError, match="Dimension out of range"):
        torch.ones(3).size(1)


def test_expand_to_incompatible_size():
    with pytest.raises(
        RuntimeError, match=r"The expanded size of the tensor \(3\) must match the existing size \(2\)"
    ):
        torch.ones(2, 3).expand(3, 3)


# ---------------------------------------------------------------------------
# Indexing
# ---------------------------------------------------------------------------


def test_index_out_of_range():
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 3"):
        torch.ones(3)[5]
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 1 with size 3"):
        torch.ones(2, 3)[:, 3]
    with pytest.raises(IndexError, match="index -3 is out of bounds for dimension 0 with size 2"):
        torch.ones(2, 3)[-3]


def test_too_many_indices():
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 2"):
        torch.ones(2, 3)[0, 0, 0]


def test_tensor_index_out_of_range():
    with pytest.raises(IndexError, match="out of bounds"):
        torch.ones(3)[torch.tensor([0, 5])]


def test_setitem_out_of_range_leaves_tensor_unchanged():
    x = torch.tensor([1.0, 2.0, 3.0])
    snap = snapshot(x)
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 3"):
        x[5] = 1.0
    assert_unchanged(x, snap)


def test_setitem_shape_mismatch_leaves_tensor_unchanged():
    x = torch.tensor([1.0, 2.0, 3.0])
    snap = snapshot(x)
    with pytest.raises(
        RuntimeError, match=r"The expanded size of the tensor \(2\) must match the existing size \(3\)"
    ):
        x[0:2] = torch.ones(3)
    assert_unchanged(x, snap)


# ---------------------------------------------------------------------------
# Concatenation
# ---------------------------------------------------------------------------


def test_cat_mismatched_shapes():
    with pytest.raises(RuntimeError, match="Sizes of tensors must match except in dimension 0"):
        torch.cat([torch.ones(2, 3), torch.ones(2, 4)])
    assert torch.cat([torch.ones(2, 3), torch.ones(2, 4)], dim=1).shape == (2, 7)


def test_cat_mismatched_ndim():
    with pytest.raises(RuntimeError, match="Tensors must have same number of dimensions: got 2 and 3"):
        torch.cat([torch.ones(2, 3), torch.ones(2, 3, 1)])


def test_cat_empty_list():
    with pytest.raises(ValueError, match="expected a non-empty list of Tensors"):
        torch.cat([])


def test_stack_mismatched_shapes():
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        torch.stack([torch.ones(2), torch.ones(3)])


# ---------------------------------------------------------------------------
# Scalar conversion
# ---------------------------------------------------------------------------


def test_bool_of_multi_element_tensor():
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with more than one value is ambiguous"):
        bool(torch.ones(2))


def test_python_number_of_multi_element_tensor():
    with pytest.raises(ValueError, match="only one element tensors can be converted to Python scalars"):
        float(torch.ones(2))
    with pytest.raises(ValueError, match="only one element tensors can be converted to Python scalars"):
        int(torch.ones(2))


def test_single_element_conversions_work():
    assert float(torch.tensor([2.5])) == 2.5
    assert int(torch.tensor(3)) == 3
    assert bool(torch.tensor([1.0])) is True


# ---------------------------------------------------------------------------
# Nothing left half-updated after an error
# ---------------------------------------------------------------------------


def test_failed_inplace_add_leaves_values_and_version_unchanged():
    x = torch.tensor([1.0, 2.0, 3.0])
    snap = snapshot(x)
    with pytest.raises(RuntimeError, match="must match the size"):
        x.add_(torch.ones(4))
    assert_unchanged(x, snap)


def test_failed_copy_leaves_values_and_version_unchanged():
    x = torch.tensor([1.0, 2.0, 3.0])
    snap = snapshot(x)
    with pytest.raises(RuntimeError, match="must match the size"):
        x.copy_(torch.ones(4))
    assert_unchanged(x, snap)


def test_failed_inplace_on_view_leaves_base_unchanged():
    base = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    row = base[0]
    snap = snapshot(base)
    with pytest.raises(RuntimeError, match="must match the size"):
        row.mul_(torch.ones(3))
    assert_unchanged(base, snap)


def test_failed_augmented_assignment_keeps_binding_and_values():
    x = torch.tensor([1.0, 2.0, 3.0])
    alias = x
    snap = snapshot(x)
    with pytest.raises(RuntimeError, match="must match the size"):
        x += torch.ones(2)
    assert x is alias
    assert_unchanged(x, snap)


def test_failed_op_does_not_break_autograd_graph():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    with pytest.raises(RuntimeError, match="must match the size"):
        y + torch.ones(3)
    with pytest.raises(RuntimeError, match="must match the size"):
        y.add_(torch.ones(3))
    assert y.grad_fn.name() == "MulBackward0"
    assert y._version == 0
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_failed_backward_leaves_grads_untouched():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    y = x * 5
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        y.backward()
    assert x.grad.tolist() == [2.0, 2.0]
    y.sum().backward()
    assert x.grad.tolist() == [7.0, 7.0]


def test_failed_autograd_grad_populates_nothing():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    unused = torch.tensor([1.0], requires_grad=True)
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        torch.autograd.grad(y, [x, unused])
    assert x.grad is None
    assert unused.grad is None


def test_inplace_arithmetic_raises_what_the_out_of_place_op_raises():
    with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with two bool tensors"):
        torch.tensor([True]).sub_(torch.tensor([True]))
    with pytest.raises(RuntimeError, match="argument alpha must not be a floating point number"):
        torch.tensor([1]).add_(torch.tensor([1]), alpha=0.5)
    x = torch.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
        x.div_(2)
    assert x.tolist() == [1, 2] and x._version == 0
