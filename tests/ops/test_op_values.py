"""Forward values of every op family against independent numpy formulas.

Also covers the aliasing contract of views: a view shares storage with its base,
so in-place writes to one are visible through the other.
"""

import numpy as np
import pytest

import gradcore

RNG_SEED = 1234


def data(*shape, low=-2.0, high=2.0, seed=RNG_SEED):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def T(array, dtype=None):
    return gradcore.tensor(np.asarray(array), dtype=dtype or gradcore.float64)


def arr(t):
    return t.detach().numpy()


def check(result, expected):
    """Same shape and (to float64 round-off) same values."""
    expected = np.asarray(expected)
    assert tuple(result.shape) == expected.shape
    np.testing.assert_allclose(arr(result), expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------
# Elementwise
# --------------------------------------------------------------------------------------

UNARY = [
    ("neg", lambda t: -t, lambda a: -a, {}),
    ("exp", lambda t: t.exp(), np.exp, {}),
    ("log", lambda t: t.log(), np.log, dict(low=0.1)),
    ("sqrt", lambda t: t.sqrt(), np.sqrt, dict(low=0.0)),
    ("abs", lambda t: t.abs(), np.abs, {}),
    ("sin", lambda t: t.sin(), np.sin, {}),
    ("cos", lambda t: t.cos(), np.cos, {}),
    ("tanh", lambda t: t.tanh(), np.tanh, {}),
    ("sigmoid", lambda t: t.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), {}),
    ("relu", lambda t: t.relu(), lambda a: np.maximum(a, 0), {}),
    ("clamp_min", lambda t: t.clamp(min=-0.5), lambda a: np.maximum(a, -0.5), {}),
    ("clamp_max", lambda t: t.clamp(max=0.5), lambda a: np.minimum(a, 0.5), {}),
    ("clamp_both", lambda t: t.clamp(-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), {}),
    ("fn_exp", lambda t: gradcore.exp(t), np.exp, {}),
    ("fn_log", lambda t: gradcore.log(t), np.log, dict(low=0.1)),
    ("fn_sqrt", lambda t: gradcore.sqrt(t), np.sqrt, dict(low=0.0)),
    ("fn_abs", lambda t: gradcore.abs(t), np.abs, {}),
    ("fn_sigmoid", lambda t: gradcore.sigmoid(t), lambda a: 1 / (1 + np.exp(-a)), {}),
    ("fn_relu", lambda t: gradcore.relu(t), lambda a: np.maximum(a, 0), {}),
    ("fn_clamp", lambda t: gradcore.clamp(t, min=-1.0, max=1.0), lambda a: np.clip(a, -1, 1), {}),
]


@pytest.mark.parametrize("shape", [(3, 4), (), (0, 2)], ids=["2d", "0d", "empty"])
@pytest.mark.parametrize("op, np_op, rng", [pytest.param(*u[1:], id=u[0]) for u in UNARY])
def test_unary_values(op, np_op, rng, shape):
    a = data(*shape, **rng)
    check(op(T(a)), np_op(a))


def test_relu_and_abs_at_zero():
    a = np.array([-1.0, 0.0, 2.0])
    check(T(a).relu(), [0.0, 0.0, 2.0])
    check(T(a).abs(), [1.0, 0.0, 2.0])


BINARY = [
    ("add", lambda x, y: x + y, np.add),
    ("sub", lambda x, y: x - y, np.subtract),
    ("mul", lambda x, y: x * y, np.multiply),
    ("div", lambda x, y: x / y, np.divide),
    ("pow", lambda x, y: x.abs() ** y, lambda a, b: np.abs(a) ** b),
    ("fn_add", lambda x, y: gradcore.add(x, y), np.add),
    ("fn_sub", lambda x, y: gradcore.sub(x, y), np.subtract),
    ("fn_mul", lambda x, y: gradcore.mul(x, y), np.multiply),
    ("fn_div", lambda x, y: gradcore.div(x, y), np.divide),
    ("fn_pow", lambda x, y: gradcore.pow(x.abs(), y), lambda a, b: np.abs(a) ** b),
    ("maximum", lambda x, y: gradcore.maximum(x, y), np.maximum),
    ("minimum", lambda x, y: gradcore.minimum(x, y), np.minimum),
    ("max_of_two", lambda x, y: gradcore.max(x, y), np.maximum),
    ("min_of_two", lambda x, y: gradcore.min(x, y), np.minimum),
]


@pytest.mark.parametrize(
    "lhs, rhs",
    [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (4, 1)), ((), (3,)), ((), ()), ((0, 3), (1, 3))],
    ids=["same", "bcast_row", "bcast_3d", "0d_lhs", "0d_both", "empty"],
)
@pytest.mark.parametrize("op, np_op", [pytest.param(*b[1:], id=b[0]) for b in BINARY])
def test_binary_values(op, np_op, lhs, rhs):
    a, b = data(*lhs, seed=1), data(*rhs, seed=2, low=0.5)
    check(op(T(a), T(b)), np_op(a, b))


@pytest.mark.parametrize(
    "op, np_op",
    [
        pytest.param(lambda t: t + 2, lambda a: a + 2, id="x+2"),
        pytest.param(lambda t: 2 + t, lambda a: 2 + a, id="2+x"),
        pytest.param(lambda t: t - 2, lambda a: a - 2, id="x-2"),
        pytest.param(lambda t: 2 - t, lambda a: 2 - a, id="2-x"),
        pytest.param(lambda t: 3 * t, lambda a: 3 * a, id="3*x"),
        pytest.param(lambda t: t / 4, lambda a: a / 4, id="x/4"),
        pytest.param(lambda t: 2 / t, lambda a: 2 / a, id="2/x"),
        pytest.param(lambda t: t**2, lambda a: a**2, id="x**2"),
        pytest.param(lambda t: t**-1, lambda a: a**-1.0, id="x**-1"),
        pytest.param(lambda t: 2**t, lambda a: 2**a, id="2**x"),
        pytest.param(lambda t: t.pow(3), lambda a: a**3, id="x.pow(3)"),
    ],
)
def test_python_scalar_operands(op, np_op):
    a = data(2, 3, low=0.5)
    check(op(T(a)), np_op(a))


# --------------------------------------------------------------------------------------
# Matrix products
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lhs, rhs",
    [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)), ((2, 3, 4), (4, 5)),
     ((2, 1, 3, 4), (3, 4, 2)), ((0, 3), (3, 2)), ((2, 0), (0, 3))],
    ids=["1d_1d", "2d_1d", "1d_2d", "2d_2d", "3d_2d", "bcast_batch", "empty_rows", "empty_inner"],
)
def test_matmul_values(lhs, rhs):
    a, b = data(*lhs, seed=3), data(*rhs, seed=4)
    expected = np.matmul(a, b)
    check(T(a) @ T(b), expected)
    check(gradcore.matmul(T(a), T(b)), expected)


def test_mm_values():
    a, b = data(2, 3, seed=5), data(3, 4, seed=6)
    check(gradcore.mm(T(a), T(b)), a @ b)
    check(T(a).mm(T(b)), a @ b)


# --------------------------------------------------------------------------------------
# Reductions
# --------------------------------------------------------------------------------------


def np_logsumexp(a, axis=None, keepdims=False):
    m = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def np_softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


REDUCTIONS = [
    ("sum", lambda t: t.sum(), lambda a: a.sum()),
    ("sum_dim", lambda t: t.sum(dim=1), lambda a: a.sum(axis=1)),
    ("sum_tuple", lambda t: t.sum(dim=(0, 2)), lambda a: a.sum(axis=(0, 2))),
    ("sum_keepdim", lambda t: t.sum(-1, keepdim=True), lambda a: a.sum(axis=-1, keepdims=True)),
    ("mean", lambda t: t.mean(), lambda a: a.mean()),
    ("mean_dim", lambda t: t.mean(dim=0), lambda a: a.mean(axis=0)),
    ("mean_tuple_keepdim", lambda t: t.mean((1, 2), True), lambda a: a.mean(axis=(1, 2), keepdims=True)),
    ("amax", lambda t: t.amax(), lambda a: a.max()),
    ("amax_tuple", lambda t: t.amax(dim=(0, 1)), lambda a: a.max(axis=(0, 1))),
    ("amin_keepdim", lambda t: t.amin(dim=1, keepdim=True), lambda a: a.min(axis=1, keepdims=True)),
    ("var", lambda t: t.var(), lambda a: a.var(ddof=1)),
    ("var_dim", lambda t: t.var(dim=1), lambda a: a.var(axis=1, ddof=1)),
    ("var_correction0", lambda t: t.var(dim=0, correction=0), lambda a: a.var(axis=0)),
    ("var_unbiased_false", lambda t: t.var(unbiased=False), lambda a: a.var()),
    (
        "var_tuple_keepdim",
        lambda t: t.var((0, 2), keepdim=True),
        lambda a: a.var(axis=(0, 2), ddof=1, keepdims=True),
    ),
    ("std", lambda t: t.std(), lambda a: a.std(ddof=1)),
    ("std_dim_keepdim", lambda t: t.std(dim=-1, keepdim=True), lambda a: a.std(-1, ddof=1, keepdims=True)),
    ("std_correction0", lambda t: t.std(dim=1, correction=0), lambda a: a.std(axis=1)),
    ("std_unbiased_false", lambda t: t.std(unbiased=False), lambda a: a.std()),
    ("logsumexp", lambda t: t.logsumexp(dim=1), lambda a: np_logsumexp(a, axis=1)),
    ("logsumexp_tuple_keepdim", lambda t: t.logsumexp((0, 2), True), lambda a: np_logsumexp(a, (0, 2), True)),
    ("softmax", lambda t: t.softmax(dim=-1), lambda a: np_softmax(a, -1)),
    ("softmax_dim0", lambda t: gradcore.softmax(t, 0), lambda a: np_softmax(a, 0)),
    ("log_softmax", lambda t: t.log_softmax(dim=1), lambda a: np.log(np_softmax(a, 1))),
    ("fn_log_softmax", lambda t: gradcore.log_softmax(t, -1), lambda a: np.log(np_softmax(a, -1))),
]


@pytest.mark.parametrize("op, np_op", [pytest.param(*r[1:], id=r[0]) for r in REDUCTIONS])
def test_reduction_values(op, np_op):
    a = data(2, 3, 4, seed=7)
    check(op(T(a)), np_op(a))


def test_softmax_rows_sum_to_one_with_extreme_logits():
    a = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]])
    out = arr(T(a).softmax(-1))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-15)
    check(T(a).logsumexp(-1), [1e4, -1e4 + np.log(3.0)])


def test_reductions_of_empty_and_0d():
    check(gradcore.zeros(0, 3, dtype=gradcore.float64).sum(), 0.0)
    check(gradcore.zeros(0, 3, dtype=gradcore.float64).sum(dim=0), np.zeros(3))
    check(T(2.5).sum(), 2.5)
    check(T(2.5).mean(), 2.5)
    check(T(2.5).max(), 2.5)


def test_max_min_without_dim():
    a = data(3, 4, seed=8)
    x = T(a)
    check(x.max(), a.max())
    check(x.min(), a.min())
    assert x.max().shape == ()
    check(gradcore.max(x), a.max())
    check(gradcore.min(x), a.min())


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_with_dim_return_values_and_indices(dim, keepdim):
    a = np.random.default_rng(9).permutation(12).reshape(3, 4).astype(np.float64)
    x = T(a)
    for method, np_val, np_arg in ((x.max, np.max, np.argmax), (x.min, np.min, np.argmin)):
        result = method(dim=dim, keepdim=keepdim)
        values, indices = result  # tuple unpacking
        expected_idx = np_arg(a, axis=dim)
        if keepdim:
            expected_idx = np.expand_dims(expected_idx, dim)
        check(values, np_val(a, axis=dim, keepdims=keepdim))
        check(result.values, np_val(a, axis=dim, keepdims=keepdim))
        check(result[0], np_val(a, axis=dim, keepdims=keepdim))
        np.testing.assert_array_equal(arr(indices), expected_idx)
        np.testing.assert_array_equal(arr(result.indices), expected_idx)
        assert indices.dtype == gradcore.int64


def test_function_max_with_dim():
    a = np.array([[1.0, 5.0, 3.0], [7.0, 2.0, 4.0]])
    values, indices = gradcore.max(T(a), dim=1)
    check(values, [5.0, 7.0])
    np.testing.assert_array_equal(arr(indices), [1, 0])
    values, indices = gradcore.min(T(a), 0, keepdim=True)
    check(values, [[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(arr(indices), [[0, 1, 0]])


def test_max_of_two_tensors_is_maximum():
    a, b = data(3, 4, seed=10), data(4, seed=11)
    check(gradcore.max(T(a), T(b)), np.maximum(a, b))
    check(gradcore.min(T(a), T(b)), np.minimum(a, b))
    check(gradcore.maximum(T(a), T(b)), np.maximum(a, b))


# --------------------------------------------------------------------------------------
# Selection and joining
# --------------------------------------------------------------------------------------


def test_where():
    a, b = data(3, 4, seed=12), data(4, seed=13)
    cond = a > 0
    check(gradcore.where(T(a) > 0, T(a), T(b)), np.where(cond, a, b))
    # Broadcasting condition and 0-d / python-scalar branches.
    row_cond = np.array([[True], [False], [True]])
    check(gradcore.where(gradcore.tensor(row_cond), T(a), T(0.0)), np.where(row_cond, a, 0.0))
    check(gradcore.where(T(a) > 0, T(a), 0.0), np.where(cond, a, 0.0))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat(dim):
    parts = [data(2, 3, seed=14), data(2, 3, seed=15), data(2, 3, seed=16)]
    check(gradcore.cat([T(p) for p in parts], dim=dim), np.concatenate(parts, axis=dim))


def test_cat_uneven_and_empty():
    a, b, e, c = data(2, 3, seed=17), data(1, 3, seed=18), np.zeros((0, 3)), data(2, 1, seed=19)
    check(gradcore.cat((T(a), T(b), T(e))), np.concatenate([a, b, e]))
    check(gradcore.cat([T(a), T(c)], dim=1), np.concatenate([a, c], axis=1))


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack(dim):
    parts = [data(2, 3, seed=20), data(2, 3, seed=21)]
    check(gradcore.stack([T(p) for p in parts], dim=dim), np.stack(parts, axis=dim))


def test_stack_0d():
    check(gradcore.stack([T(1.0), T(2.0), T(3.0)]), [1.0, 2.0, 3.0])


# --------------------------------------------------------------------------------------
# Shape ops and indexing
# --------------------------------------------------------------------------------------

SHAPE_OPS = [
    ("reshape", lambda t: t.reshape(4, 6), lambda a: a.reshape(4, 6)),
    ("reshape_infer", lambda t: t.reshape(-1, 3), lambda a: a.reshape(-1, 3)),
    ("view", lambda t: t.view(6, 4), lambda a: a.reshape(6, 4)),
    ("flatten", lambda t: t.flatten(), lambda a: a.reshape(-1)),
    ("flatten_1", lambda t: t.flatten(1), lambda a: a.reshape(2, 12)),
    ("transpose", lambda t: t.transpose(0, 2), lambda a: a.swapaxes(0, 2)),
    ("permute", lambda t: t.permute(1, 2, 0), lambda a: a.transpose(1, 2, 0)),
    ("unsqueeze", lambda t: t.unsqueeze(1), lambda a: a[:, None]),
    ("unsqueeze_neg", lambda t: t.unsqueeze(-1), lambda a: a[..., None]),
    ("expand", lambda t: t[:, :1].expand(2, 5, 4), lambda a: np.broadcast_to(a[:, :1], (2, 5, 4))),
    ("squeeze", lambda t: t[:, :1].squeeze(), lambda a: a[:, 0]),
    ("squeeze_dim", lambda t: t[:, :1].squeeze(1), lambda a: a[:, 0]),
    ("swap_reshape", lambda t: t.transpose(0, 1).reshape(3, 8), lambda a: a.swapaxes(0, 1).reshape(3, 8)),
    ("int", lambda t: t[1], lambda a: a[1]),
    ("int_int_int", lambda t: t[1, 2, 3], lambda a: a[1, 2, 3]),
    ("slice_step", lambda t: t[:, ::2], lambda a: a[:, ::2]),
    ("slice_neg", lambda t: t[..., -3:-1], lambda a: a[..., -3:-1]),
    ("none_ellipsis", lambda t: t[None, ..., 0], lambda a: a[None, ..., 0]),
    ("index_tensor", lambda t: t[:, gradcore.tensor([2, 0, 2])], lambda a: a[:, [2, 0, 2]]),
    ("bool_mask", lambda t: t[t > 0], lambda a: a[a > 0]),
    ("bool_mask_leading", lambda t: t[gradcore.tensor([False, True])], lambda a: a[[False, True]]),
]


@pytest.mark.parametrize("op, np_op", [pytest.param(*s[1:], id=s[0]) for s in SHAPE_OPS])
def test_shape_and_indexing_values(op, np_op):
    a = data(2, 3, 4, seed=22)
    check(op(T(a)), np_op(a))


def test_t_matrix_and_vector():
    a = data(3, 4, seed=23)
    check(T(a).t(), a.T)
    check(T(a).T, a.T)
    check(T(a[0]).t(), a[0])


# --------------------------------------------------------------------------------------
# Views share memory with their base
# --------------------------------------------------------------------------------------

VIEWS = [
    ("view", lambda b: b.view(4, 3), lambda a: a.reshape(4, 3)),
    ("slice", lambda b: b[1:], lambda a: a[1:]),
    ("slice_step", lambda b: b[:, ::2], lambda a: a[:, ::2]),
    ("int", lambda b: b[2], lambda a: a[2]),
    ("t", lambda b: b.t(), lambda a: a.T),
    ("transpose", lambda b: b.transpose(0, 1), lambda a: a.T),
    ("permute", lambda b: b.permute(1, 0), lambda a: a.T),
    ("unsqueeze", lambda b: b.unsqueeze(0), lambda a: a[None]),
    ("expand", lambda b: b[:1].expand(5, 4), lambda a: np.broadcast_to(a[:1], (5, 4))),
    ("reshape_contiguous", lambda b: b.reshape(2, 6), lambda a: a.reshape(2, 6)),
    ("flatten", lambda b: b.flatten(), lambda a: a.reshape(-1)),
    ("squeeze", lambda b: b[None].squeeze(0), lambda a: a),
    ("ellipsis_none", lambda b: b[..., None], lambda a: a[..., None]),
]


@pytest.mark.parametrize("make_view, np_view", [pytest.param(*v[1:], id=v[0]) for v in VIEWS])
def test_inplace_on_base_is_visible_through_view(make_view, np_view):
    base = T(np.arange(12.0).reshape(3, 4))
    view = make_view(base)
    with gradcore.no_grad():
        base.add_(100.0)
        base.mul_(2.0)
    check(view, np_view((np.arange(12.0).reshape(3, 4) + 100.0) * 2.0))


WRITABLE_VIEWS = ("view", "slice", "slice_step", "int", "t", "unsqueeze")


@pytest.mark.parametrize(
    "make_view, np_view", [pytest.param(*v[1:], id=v[0]) for v in VIEWS if v[0] in WRITABLE_VIEWS]
)
def test_inplace_on_view_is_visible_in_base(make_view, np_view):
    base = T(np.arange(12.0).reshape(3, 4))
    expected = np.arange(12.0).reshape(3, 4)
    with gradcore.no_grad():
        make_view(base).mul_(-1.0)
    np_view(expected)[...] *= -1.0  # the numpy view aliases `expected` the same way
    check(base, expected)


def test_setitem_on_base_is_visible_through_view():
    base = T(np.zeros((3, 4)))
    row = base[1]
    col = base.t()[2]
    with gradcore.no_grad():
        base[1, 2] = 7.0
    assert arr(row)[2] == 7.0
    assert arr(col)[1] == 7.0


def test_norm_gradient_is_zero_where_the_norm_is_zero():
    x = gradcore.zeros(3, requires_grad=True)
    x.norm().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]
    y = gradcore.tensor([[3.0, 4.0], [0.0, 0.0]], requires_grad=True)
    y.norm(dim=1).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)


def test_norm_gradcheck():
    x = gradcore.tensor([[3.0, 4.0], [1.0, -2.0]], dtype=gradcore.float64, requires_grad=True)
    assert gradcore.autograd.gradcheck(lambda t: t.norm(dim=1), (x,))
    assert gradcore.autograd.gradgradcheck(lambda t: t.norm(), (x,))


def test_integer_scalars_out_of_range_wrap_around():
    assert (gradcore.tensor([1], dtype=gradcore.uint8) + 300).tolist() == [45]  # 301 mod 256
    assert (gradcore.tensor([1], dtype=gradcore.int8) * 1000).tolist() == [-24]  # 1000 mod 256 = 232 -> -24
    assert (gradcore.tensor([5]) + 2**40).tolist() == [2**40 + 5]
