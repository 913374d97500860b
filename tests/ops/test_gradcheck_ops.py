"""Finite-difference checks of every differentiable op's backward (and double backward).

Each case builds float64 leaves from a seeded generator and runs
``gradcore.autograd.gradcheck`` (and ``gradgradcheck`` for smooth ops).  Inputs are
sampled away from the points where an op is not differentiable (kinks, ties,
clamp boundaries, non-positive arguments of log/sqrt) so that finite differences
are meaningful there.
"""

from dataclasses import dataclass

import numpy as np
import pytest

import gradcore

GAP = 0.1  # default distance kept from non-differentiable points


@dataclass(frozen=True)
class Arg:
    """Recipe for one float64 leaf tensor that requires grad."""

    shape: tuple
    low: float = -2.0
    high: float = 2.0
    avoid: tuple = ()  # kinks the values must stay `gap` away from
    gap: float = GAP
    distinct: bool = False  # pairwise well-separated values: no ties for max/min
    phase: float = None  # values on the lattice 0.4*k + phase (two phases never tie)

    def build(self, rng):
        n = int(np.prod(self.shape, dtype=np.int64))
        if n == 0:
            return gradcore.zeros(self.shape, dtype=gradcore.float64, requires_grad=True)
        if self.distinct:
            # Evenly spaced values in random order: the spacing dwarfs the eps of gradcheck.
            values = self.low + (self.high - self.low) * (rng.permutation(n) + 0.5) / max(n, 1)
        elif self.phase is not None:
            values = 0.4 * rng.integers(-5, 5, size=n) + self.phase
        else:
            values = rng.uniform(self.low, self.high, size=n)
            for _ in range(1000):
                bad = np.zeros(n, dtype=bool)
                for point in self.avoid:
                    bad |= np.abs(values - point) < self.gap
                if not bad.any():
                    break
                values[bad] = rng.uniform(self.low, self.high, size=int(bad.sum()))
            else:  # pragma: no cover - guards against a badly specified recipe
                raise ValueError(f"could not sample {self}")
        array = values.reshape(self.shape).astype(np.float64)
        return gradcore.tensor(array, dtype=gradcore.float64, requires_grad=True)


def A(*shape, **kw):
    return Arg(tuple(shape), **kw)


POS = dict(low=0.5, high=2.0)  # domain of log/sqrt and of pow with a tensor exponent
NONZERO = dict(avoid=(0.0,), gap=0.4)  # denominators and kinks at zero


def int_tensor(values):
    return gradcore.tensor(np.array(values, dtype=np.int64))


def bool_tensor(values):
    return gradcore.tensor(np.array(values, dtype=bool))  # accepts 0/1 for brevity


def case(id, fn, *args, smooth=True):
    return pytest.param(fn, args, smooth, id=id)


def run_checks(fn, args, smooth, seed=0):
    rng = np.random.default_rng(seed)
    inputs = tuple(a.build(rng) for a in args)
    assert gradcore.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)
    if smooth:
        assert gradcore.autograd.gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)


# --------------------------------------------------------------------------------------
# Elementwise binary ops over broadcasting, 0-d and empty shape pairs
# --------------------------------------------------------------------------------------

SHAPE_PAIRS = [
    pytest.param((3, 4), (3, 4), id="same"),
    pytest.param((3, 4), (4,), id="bcast_row"),
    pytest.param((3, 1), (1, 4), id="bcast_outer"),
    pytest.param((2, 1, 3), (4, 1), id="bcast_3d"),
    pytest.param((), (3,), id="0d_lhs"),
    pytest.param((2, 3), (), id="0d_rhs"),
    pytest.param((), (), id="0d_both"),
    pytest.param((0, 3), (3,), id="empty"),
]

# name -> (fn, extra recipe for lhs, extra recipe for rhs)
BINARY = {
    "add": (lambda a, b: a + b, {}, {}),
    "sub": (lambda a, b: a - b, {}, {}),
    "mul": (lambda a, b: a * b, {}, {}),
    "div": (lambda a, b: a / b, {}, NONZERO),
    "pow": (lambda a, b: a**b, POS, {}),
    "fn_add": (lambda a, b: gradcore.add(a, b), {}, {}),
    "fn_sub": (lambda a, b: gradcore.sub(a, b), {}, {}),
    "fn_mul": (lambda a, b: gradcore.mul(a, b), {}, {}),
    "fn_div": (lambda a, b: gradcore.div(a, b), {}, NONZERO),
    "fn_pow": (lambda a, b: gradcore.pow(a, b), POS, {}),
    "method_pow": (lambda a, b: a.pow(b), POS, {}),
}


@pytest.mark.parametrize("lhs_shape, rhs_shape", SHAPE_PAIRS)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary(name, lhs_shape, rhs_shape):
    fn, lhs, rhs = BINARY[name]
    run_checks(fn, (Arg(lhs_shape, **lhs), Arg(rhs_shape, **rhs)), smooth=True)


# maximum/minimum: the two operands live on interleaved lattices, so they never tie.
@pytest.mark.parametrize("lhs_shape, rhs_shape", SHAPE_PAIRS)
@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda a, b: gradcore.maximum(a, b), id="maximum"),
        pytest.param(lambda a, b: gradcore.minimum(a, b), id="minimum"),
        pytest.param(lambda a, b: a.maximum(b), id="method_maximum"),
        pytest.param(lambda a, b: gradcore.max(a, b), id="max_of_two"),
        pytest.param(lambda a, b: gradcore.min(a, b), id="min_of_two"),
    ],
)
def test_maximum_minimum(fn, lhs_shape, rhs_shape):
    run_checks(fn, (Arg(lhs_shape, phase=0.1), Arg(rhs_shape, phase=0.3)), smooth=False)


# --------------------------------------------------------------------------------------
# Tensor-with-python-scalar forms, including the reflected operators
# --------------------------------------------------------------------------------------

SCALAR_FORMS = [
    case("x_plus_2", lambda x: x + 2, A(3, 4)),
    case("2_plus_x", lambda x: 2 + x, A(3, 4)),
    case("x_minus_2", lambda x: x - 2, A(3, 4)),
    case("2_minus_x", lambda x: 2 - x, A(3, 4)),
    case("x_times_2.5", lambda x: x * 2.5, A(3, 4)),
    case("2.5_times_x", lambda x: 2.5 * x, A(3, 4)),
    case("x_div_2", lambda x: x / 2, A(3, 4)),
    case("2_div_x", lambda x: 2 / x, A(3, 4, **NONZERO)),
    case("x_pow_2", lambda x: x**2, A(3, 4)),
    case("x_pow_3", lambda x: x**3, A(3, 4)),
    case("x_pow_0.5", lambda x: x**0.5, A(3, 4, **POS)),
    case("x_pow_-1", lambda x: x**-1, A(3, 4, **NONZERO)),
    case("x_pow_-1.5", lambda x: x**-1.5, A(3, 4, **POS)),
    case("2_pow_x", lambda x: 2**x, A(3, 4)),
    case("0.5_pow_x", lambda x: 0.5**x, A(3, 4)),
    case("fn_pow_scalar_exp", lambda x: gradcore.pow(x, 2), A(3, 4)),
    case("fn_pow_scalar_base", lambda x: gradcore.pow(2, x), A(3, 4)),
    case("method_pow_scalar", lambda x: x.pow(3), A(3, 4)),
    case("0d_2_minus_x", lambda x: 2 - x, A()),
    case("0d_2_div_x", lambda x: 2 / x, A(**NONZERO)),
    case("0d_2_pow_x", lambda x: 2**x, A()),
    case("empty_2_div_x", lambda x: 2 / x, A(0, 3, **NONZERO)),
    case("empty_2_pow_x", lambda x: 2**x, A(2, 0)),
    case("neg_operator", lambda x: -x, A(3, 4)),
]


@pytest.mark.parametrize("fn, args, smooth", SCALAR_FORMS)
def test_scalar_forms(fn, args, smooth):
    run_checks(fn, args, smooth)


# --------------------------------------------------------------------------------------
# Elementwise unary ops on a matrix, a 0-d tensor and an empty tensor
# --------------------------------------------------------------------------------------

UNARY_SHAPES = [pytest.param((3, 4), id="2d"), pytest.param((), id="0d"), pytest.param((0, 3), id="empty")]

# name -> (fn, recipe, smooth)
UNARY = {
    "neg": (lambda x: x.neg(), {}, True),
    "exp": (lambda x: x.exp(), {}, True),
    "log": (lambda x: x.log(), POS, True),
    "sqrt": (lambda x: x.sqrt(), POS, True),
    "abs": (lambda x: x.abs(), NONZERO, False),
    "sin": (lambda x: x.sin(), {}, True),
    "cos": (lambda x: x.cos(), {}, True),
    "tanh": (lambda x: x.tanh(), {}, True),
    "sigmoid": (lambda x: x.sigmoid(), {}, True),
    "relu": (lambda x: x.relu(), NONZERO, False),
    "clamp_min": (lambda x: x.clamp(min=-0.5), dict(avoid=(-0.5,)), False),
    "clamp_max": (lambda x: x.clamp(max=0.5), dict(avoid=(0.5,)), False),
    "clamp_both": (lambda x: x.clamp(-0.5, 0.5), dict(avoid=(-0.5, 0.5)), False),
    "fn_neg": (lambda x: gradcore.neg(x), {}, True),
    "fn_exp": (lambda x: gradcore.exp(x), {}, True),
    "fn_log": (lambda x: gradcore.log(x), POS, True),
    "fn_sqrt": (lambda x: gradcore.sqrt(x), POS, True),
    "fn_abs": (lambda x: gradcore.abs(x), NONZERO, False),
    "fn_sin": (lambda x: gradcore.sin(x), {}, True),
    "fn_cos": (lambda x: gradcore.cos(x), {}, True),
    "fn_tanh": (lambda x: gradcore.tanh(x), {}, True),
    "fn_sigmoid": (lambda x: gradcore.sigmoid(x), {}, True),
    "fn_relu": (lambda x: gradcore.relu(x), NONZERO, False),
    "fn_clamp": (lambda x: gradcore.clamp(x, min=-0.5, max=0.5), dict(avoid=(-0.5, 0.5)), False),
}


@pytest.mark.parametrize("shape", UNARY_SHAPES)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary(name, shape):
    fn, recipe, smooth = UNARY[name]
    run_checks(fn, (Arg(shape, **recipe),), smooth)


def test_clamp_region_outside_has_zero_grad():
    # Values sampled on both sides of the clamp range exercise both branches at once.
    x = gradcore.tensor(np.array([-2.0, -0.2, 0.3, 1.7]), dtype=gradcore.float64, requires_grad=True)
    assert gradcore.autograd.gradcheck(lambda t: t.clamp(-1.0, 1.0), (x,))
    x.clamp(-1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 1.0, 0.0])


# --------------------------------------------------------------------------------------
# Matrix products
# --------------------------------------------------------------------------------------

MATMUL = [
    case("dot_1d_1d", lambda a, b: a @ b, A(3), A(3)),
    case("mv_2d_1d", lambda a, b: a @ b, A(2, 3), A(3)),
    case("vm_1d_2d", lambda a, b: a @ b, A(3), A(3, 2)),
    case("mm_2d_2d", lambda a, b: a @ b, A(2, 3), A(3, 4)),
    case("batched_3d_3d", lambda a, b: a @ b, A(2, 3, 4), A(2, 4, 5)),
    case("batched_3d_2d", lambda a, b: a @ b, A(2, 3, 4), A(4, 5)),
    case("batched_2d_3d", lambda a, b: a @ b, A(3, 4), A(2, 4, 5)),
    case("batched_bcast_4d_3d", lambda a, b: a @ b, A(2, 1, 3, 4), A(3, 4, 2)),
    case("batched_3d_1d", lambda a, b: a @ b, A(2, 3, 4), A(4)),
    case("batched_1d_3d", lambda a, b: a @ b, A(3), A(2, 3, 4)),
    case("empty_rows", lambda a, b: a @ b, A(0, 3), A(3, 2)),
    case("empty_inner", lambda a, b: a @ b, A(2, 0), A(0, 3)),
    case("fn_matmul", lambda a, b: gradcore.matmul(a, b), A(2, 3, 4), A(4, 2)),
    case("method_matmul", lambda a, b: a.matmul(b), A(3), A(3)),
    case("mm", lambda a, b: gradcore.mm(a, b), A(2, 3), A(3, 4)),
    case("method_mm", lambda a, b: a.mm(b), A(4, 3), A(3, 2)),
]


@pytest.mark.parametrize("fn, args, smooth", MATMUL)
def test_matmul(fn, args, smooth):
    run_checks(fn, args, smooth)


# --------------------------------------------------------------------------------------
# Reductions
# --------------------------------------------------------------------------------------

D = dict(distinct=True)  # max/min/amax/amin need a unique extremum to be differentiable

REDUCTIONS = [
    case("sum_all", lambda x: x.sum(), A(3, 4)),
    case("sum_dim", lambda x: x.sum(dim=1), A(3, 4)),
    case("sum_neg_dim", lambda x: x.sum(-1), A(2, 3, 4)),
    case("sum_dim_tuple", lambda x: x.sum(dim=(0, 2)), A(2, 3, 4)),
    case("sum_keepdim", lambda x: x.sum(dim=1, keepdim=True), A(2, 3, 4)),
    case("sum_tuple_keepdim", lambda x: x.sum((0, -1), keepdim=True), A(2, 3, 4)),
    case("sum_0d", lambda x: x.sum(), A()),
    case("sum_empty", lambda x: x.sum(), A(0, 3)),
    case("sum_empty_dim", lambda x: x.sum(dim=0), A(0, 3)),
    case("fn_sum", lambda x: gradcore.sum(x, dim=0), A(3, 4)),
    case("mean_all", lambda x: x.mean(), A(3, 4)),
    case("mean_dim", lambda x: x.mean(dim=0), A(3, 4)),
    case("mean_dim_tuple", lambda x: x.mean(dim=(1, 2)), A(2, 3, 4)),
    case("mean_keepdim", lambda x: x.mean(-1, keepdim=True), A(2, 3, 4)),
    case("mean_0d", lambda x: x.mean(), A()),
    case("fn_mean", lambda x: gradcore.mean(x, 1), A(3, 4)),
    case("max_all", lambda x: x.max(), A(3, 4, **D), smooth=False),
    case("max_dim", lambda x: x.max(dim=1).values, A(3, 4, **D), smooth=False),
    case("max_dim_keepdim", lambda x: x.max(0, keepdim=True)[0], A(3, 4, **D), smooth=False),
    case("max_0d", lambda x: x.max(), A(), smooth=False),
    case("max_dim_empty", lambda x: x.max(dim=1).values, A(0, 3), smooth=False),
    case("fn_max_dim", lambda x: gradcore.max(x, dim=-1).values, A(2, 3, 4, **D), smooth=False),
    case("min_all", lambda x: x.min(), A(3, 4, **D), smooth=False),
    case("min_dim", lambda x: x.min(dim=1).values, A(3, 4, **D), smooth=False),
    case("min_dim_keepdim", lambda x: x.min(-1, keepdim=True).values, A(2, 3, 4, **D), smooth=False),
    case("fn_min", lambda x: gradcore.min(x), A(3, 4, **D), smooth=False),
    case("amax_all", lambda x: x.amax(), A(3, 4, **D), smooth=False),
    case("amax_dim", lambda x: x.amax(dim=1), A(3, 4, **D), smooth=False),
    case("amax_dim_tuple", lambda x: x.amax(dim=(0, 2)), A(2, 3, 4, **D), smooth=False),
    case("amax_keepdim", lambda x: x.amax(dim=(0, 1), keepdim=True), A(2, 3, 4, **D), smooth=False),
    case("fn_amax", lambda x: gradcore.amax(x, dim=0), A(3, 4, **D), smooth=False),
    case("amax_0d", lambda x: x.amax(), A(), smooth=False),
    case("amax_empty", lambda x: x.amax(dim=-1), A(0, 3), smooth=False),
    case("amin_all", lambda x: x.amin(), A(3, 4, **D), smooth=False),
    case("amin_dim", lambda x: x.amin(dim=-1), A(3, 4, **D), smooth=False),
    case("amin_dim_tuple", lambda x: x.amin(dim=(1, 2)), A(2, 3, 4, **D), smooth=False),
    case("amin_keepdim", lambda x: x.amin(dim=1, keepdim=True), A(2, 3, 4, **D), smooth=False),
    case("fn_amin", lambda x: gradcore.amin(x, dim=1), A(3, 4, **D), smooth=False),
    case("var_all", lambda x: x.var(), A(3, 4)),
    case("var_dim", lambda x: x.var(dim=1), A(3, 4)),
    case("var_dim_tuple_keepdim", lambda x: x.var(dim=(0, 2), keepdim=True), A(2, 3, 4)),
    case("var_correction0", lambda x: x.var(dim=0, correction=0), A(3, 4)),
    case("var_unbiased_false", lambda x: x.var(unbiased=False), A(3, 4)),
    case("fn_var", lambda x: gradcore.var(x, dim=-1), A(3, 4)),
    case("std_all", lambda x: x.std(), A(3, 4)),
    case("std_dim", lambda x: x.std(dim=0), A(3, 4)),
    case("std_dim_keepdim", lambda x: x.std(dim=-1, keepdim=True), A(2, 3, 4)),
    case("std_correction0", lambda x: x.std(dim=1, correction=0), A(3, 4)),
    case("std_unbiased_false", lambda x: x.std(unbiased=False), A(3, 4)),
    case("fn_std", lambda x: gradcore.std(x, dim=1), A(3, 4)),
]


@pytest.mark.parametrize("fn, args, smooth", REDUCTIONS)
def test_reduction(fn, args, smooth):
    run_checks(fn, args, smooth)


# --------------------------------------------------------------------------------------
# softmax / log_softmax / logsumexp
# --------------------------------------------------------------------------------------

SOFTMAX = [
    case("softmax_last", lambda x: x.softmax(dim=-1), A(3, 4)),
    case("softmax_dim0", lambda x: x.softmax(0), A(3, 4)),
    case("softmax_3d_mid", lambda x: x.softmax(dim=1), A(2, 3, 4)),
    case("softmax_0d", lambda x: x.softmax(dim=0), A()),
    case("softmax_empty", lambda x: x.softmax(dim=-1), A(0, 3)),
    case("fn_softmax", lambda x: gradcore.softmax(x, dim=1), A(3, 4)),
    case("log_softmax_last", lambda x: x.log_softmax(dim=-1), A(3, 4)),
    case("log_softmax_dim0", lambda x: x.log_softmax(0), A(2, 3, 4)),
    case("log_softmax_empty", lambda x: x.log_softmax(1), A(0, 3)),
    case("fn_log_softmax", lambda x: gradcore.log_softmax(x, dim=1), A(3, 4)),
    case("logsumexp_dim", lambda x: x.logsumexp(dim=1), A(3, 4)),
    case("logsumexp_dim_tuple", lambda x: x.logsumexp(dim=(0, 2)), A(2, 3, 4)),
    case("logsumexp_keepdim", lambda x: x.logsumexp(-1, keepdim=True), A(2, 3, 4)),
    case("logsumexp_0d", lambda x: x.logsumexp(0), A()),
    case("logsumexp_empty", lambda x: x.logsumexp(1), A(0, 3)),
    case("fn_logsumexp", lambda x: gradcore.logsumexp(x, dim=0), A(3, 4)),
    # Large shifted logits: the stable formulation must keep gradients exact.
    case("softmax_large", lambda x: (x * 300).softmax(-1), A(3, 4, low=-1, high=1)),
    case("logsumexp_large", lambda x: (x * 300).logsumexp(-1), A(3, 4, low=-1, high=1)),
]


@pytest.mark.parametrize("fn, args, smooth", SOFTMAX)
def test_softmax_family(fn, args, smooth):
    run_checks(fn, args, smooth)


# --------------------------------------------------------------------------------------
# Shape ops (views and copies)
# --------------------------------------------------------------------------------------

SHAPE_OPS = [
    case("reshape_flat", lambda x: x.reshape(-1), A(3, 4)),
    case("reshape_2d", lambda x: x.reshape(2, 6), A(3, 4)),
    case("reshape_tuple", lambda x: x.reshape((4, 3)), A(3, 4)),
    case("reshape_noncontiguous", lambda x: x.t().reshape(12), A(3, 4)),
    case("reshape_0d", lambda x: x.reshape(1, 1), A()),
    case("reshape_to_0d", lambda x: x.reshape(()), A(1)),
    case("reshape_empty", lambda x: x.reshape(3, 0), A(0, 3)),
    case("fn_reshape", lambda x: gradcore.reshape(x, (6, 2)), A(3, 4)),
    case("view", lambda x: x.view(4, 3), A(3, 4)),
    case("view_infer", lambda x: x.view(-1, 2), A(3, 4)),
    case("flatten", lambda x: x.flatten(), A(2, 3, 4)),
    case("flatten_start", lambda x: x.flatten(1), A(2, 3, 4)),
    case("flatten_0d", lambda x: x.flatten(), A()),
    case("fn_flatten", lambda x: gradcore.flatten(x), A(2, 3)),
    case("transpose", lambda x: x.transpose(0, 1), A(3, 4)),
    case("transpose_neg", lambda x: x.transpose(-1, 0), A(2, 3, 4)),
    case("fn_transpose", lambda x: gradcore.transpose(x, 1, 2), A(2, 3, 4)),
    case("t", lambda x: x.t(), A(3, 4)),
    case("t_1d", lambda x: x.t(), A(3)),
    case("T", lambda x: x.T, A(3, 4)),
    case("permute", lambda x: x.permute(2, 0, 1), A(2, 3, 4)),
    case("permute_tuple", lambda x: x.permute((1, 2, 0)), A(2, 3, 4)),
    case("fn_permute", lambda x: gradcore.permute(x, (1, 0)), A(3, 4)),
    case("unsqueeze", lambda x: x.unsqueeze(1), A(3, 4)),
    case("unsqueeze_neg", lambda x: x.unsqueeze(-1), A(3, 4)),
    case("unsqueeze_0d", lambda x: x.unsqueeze(0), A()),
    case("fn_unsqueeze", lambda x: gradcore.unsqueeze(x, 0), A(3)),
    case("squeeze_all", lambda x: x.squeeze(), A(1, 3, 1)),
    case("squeeze_dim", lambda x: x.squeeze(0), A(1, 3, 1)),
    case("squeeze_noop_dim", lambda x: x.squeeze(1), A(1, 3, 1)),
    case("fn_squeeze", lambda x: gradcore.squeeze(x, -1), A(3, 1)),
    case("expand", lambda x: x.expand(3, 4), A(1, 4)),
    case("expand_new_dims", lambda x: x.expand(2, 3, 4), A(4)),
    case("expand_minus_one", lambda x: x.expand(2, -1, 4), A(3, 1)),
    case("expand_0d", lambda x: x.expand(3), A()),
    case("expand_to_empty", lambda x: x.expand(0, 4), A(1, 4)),
    case("expand_as", lambda x: x.expand_as(gradcore.zeros(2, 3)), A(3)),
]


@pytest.mark.parametrize("fn, args, smooth", SHAPE_OPS)
def test_shape_op(fn, args, smooth):
    run_checks(fn, args, smooth)


# --------------------------------------------------------------------------------------
# Indexing
# --------------------------------------------------------------------------------------

INDEXING = [
    case("int", lambda x: x[1], A(3, 4)),
    case("negative_int", lambda x: x[-1], A(3, 4)),
    case("int_pair_to_0d", lambda x: x[1, 2], A(3, 4)),
    case("slice", lambda x: x[1:], A(4, 3)),
    case("slice_step", lambda x: x[::2], A(5, 3)),
    case("slice_start_stop_step", lambda x: x[:, 1:6:2], A(2, 7)),
    case("slice_empty", lambda x: x[2:2], A(4, 3)),
    case("none", lambda x: x[:, None], A(3, 4)),
    case("none_leading", lambda x: x[None], A(3, 4)),
    case("ellipsis", lambda x: x[..., 1], A(2, 3, 4)),
    case("ellipsis_none", lambda x: x[0, ..., None], A(2, 3, 4)),
    case("mixed", lambda x: x[1:, None, ::2], A(3, 4)),
    # Repeated indices: the backward must accumulate (scatter-add), not overwrite.
    case("index_tensor_repeats", lambda x: x[int_tensor([0, 2, 0, 1, 0])], A(3, 4)),
    case("index_tensor_dim1", lambda x: x[:, int_tensor([3, 3, 0])], A(3, 4)),
    case("index_tensor_2d", lambda x: x[int_tensor([[0, 1], [1, 1]])], A(2, 3)),
    case("index_tensor_negative", lambda x: x[int_tensor([-1, 0, -1])], A(3)),
    case("index_tensor_0d_base", lambda x: x[int_tensor([1, 1])], A(3)),
    case("bool_mask", lambda x: x[bool_tensor([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]])], A(3, 4)),
    case("bool_mask_rows", lambda x: x[bool_tensor([True, False, True])], A(3, 4)),
    case("bool_mask_none_true", lambda x: x[bool_tensor([False, False, False])], A(3)),
]


@pytest.mark.parametrize("fn, args, smooth", INDEXING)
def test_indexing(fn, args, smooth):
    run_checks(fn, args, smooth)


def test_repeated_index_accumulates_grad():
    # Each row's gradient counts how often the row was picked.
    x = gradcore.tensor(np.ones((3, 2)), dtype=gradcore.float64, requires_grad=True)
    x[int_tensor([0, 2, 0, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[3.0, 3.0], [0.0, 0.0], [1.0, 1.0]])


# --------------------------------------------------------------------------------------
# Joining and selecting
# --------------------------------------------------------------------------------------

JOIN = [
    case("cat_dim0", lambda a, b: gradcore.cat([a, b]), A(2, 3), A(4, 3)),
    case("cat_dim1", lambda a, b: gradcore.cat((a, b), dim=1), A(2, 3), A(2, 1)),
    case("cat_neg_dim", lambda a, b, c: gradcore.cat([a, b, c], dim=-1), A(2, 1), A(2, 3), A(2, 2)),
    case("cat_with_empty", lambda a, b: gradcore.cat([a, b], dim=0), A(2, 3), A(0, 3)),
    case("stack_dim0", lambda a, b: gradcore.stack([a, b]), A(2, 3), A(2, 3)),
    case("stack_dim1", lambda a, b, c: gradcore.stack((a, b, c), dim=1), A(2, 3), A(2, 3), A(2, 3)),
    case("stack_neg_dim", lambda a, b: gradcore.stack([a, b], dim=-1), A(3), A(3)),
    case("stack_0d", lambda a, b: gradcore.stack([a, b]), A(), A()),
    case("stack_empty", lambda a, b: gradcore.stack([a, b], dim=1), A(0, 2), A(0, 2)),
    case(
        "where_bcast",
        lambda a, b: gradcore.where(bool_tensor([[True], [False], [True]]), a, b),
        A(3, 4),
        A(4),
    ),
    case("where_same", lambda a, b: gradcore.where(a > b, a, b), A(3, 4, phase=0.1), A(3, 4, phase=0.3)),
    case("where_0d", lambda a, b: gradcore.where(bool_tensor([True, False]), a, b), A(), A(2)),
    case("method_where", lambda a, b: a.where(bool_tensor([True, False, True]), b), A(3), A(3)),
]


@pytest.mark.parametrize("fn, args, smooth", JOIN)
def test_join_and_select(fn, args, smooth):
    run_checks(fn, args, smooth)


# --------------------------------------------------------------------------------------
# Composite graphs: shared inputs, diamonds and chains of several op families
# --------------------------------------------------------------------------------------

COMPOSITE = [
    case("reuse_input", lambda x: x * x.exp() + x.sin(), A(3, 4)),
    case("diamond", lambda x: (lambda y: y.tanh() * y.sigmoid())(x * 2 + 1), A(3, 4)),
    case("mlp_layer", lambda x, w, b: (x @ w + b).tanh().sum(-1), A(5, 3), A(3, 4), A(4)),
    case(
        "cross_entropy",
        lambda z: -(z.log_softmax(-1)[gradcore.arange(3), int_tensor([1, 0, 3])]).mean(),
        A(3, 4),
    ),
    case("normalize", lambda x: (x - x.mean(0)) / x.std(0), A(5, 3)),
    case("view_chain", lambda x: x.view(2, 6).t().unsqueeze(0).expand(2, 6, 2).sum(0), A(3, 4)),
]


@pytest.mark.parametrize("fn, args, smooth", COMPOSITE)
def test_composite(fn, args, smooth):
    run_checks(fn, args, smooth)


# --------------------------------------------------------------------------------------
# Sorting, scatter/gather, cumulative, triangular, rolling, repeating ops and einsum
# --------------------------------------------------------------------------------------

_IDX = int_tensor([[0, 2, 1, 2], [1, 0, 2, 0]])  # positions along dim 0 of a (3, 4) input, with repeats

NEW_OPS = [
    case("log2", lambda x: x.log2(), A(3, 4, **POS)),
    case("log10", lambda x: gradcore.log10(x), A(3, 4, **POS)),
    case("nan_to_num", lambda x: gradcore.nan_to_num(x), A(3, 4)),
    case("sort_values", lambda x: x.sort(dim=1).values, A(3, 4, distinct=True), smooth=False),
    case("sort_descending_dim0", lambda x: gradcore.sort(x, 0, descending=True)[0], A(3, 4, distinct=True),
         smooth=False),
    case("topk_values", lambda x: x.topk(2, dim=-1).values, A(3, 5, distinct=True), smooth=False),
    case("topk_smallest", lambda x: gradcore.topk(x, 3, 0, largest=False)[0], A(4, 2, distinct=True), smooth=False),
    case("gather", lambda x: x.gather(0, _IDX), A(3, 4)),
    case("index_select", lambda x: x.index_select(1, int_tensor([3, 0, 0])), A(3, 4)),
    case("scatter_src", lambda x, s: x.scatter(0, _IDX[:1], s), A(3, 4), A(2, 5)),
    case("scatter_value", lambda x: gradcore.scatter(x, 1, _IDX, value=2.0), A(3, 4)),
    case("scatter_add", lambda x, s: gradcore.scatter_add(x, 0, _IDX, s), A(3, 4), A(2, 4)),
    case("index_add", lambda x, s: x.index_add(0, int_tensor([2, 0, 2]), s, alpha=2), A(3, 4), A(3, 4)),
    case("cumsum", lambda x: x.cumsum(1), A(3, 4)),
    case("cumsum_0d", lambda x: gradcore.cumsum(x, 0), A()),
    case("cumprod", lambda x: x.cumprod(0), A(4, 3, **NONZERO)),
    case("cumprod_with_zero", lambda x: (x * int_tensor([1, 0, 1, 1])).cumprod(0), A(4), smooth=False),
    case("tril", lambda x: x.tril(), A(2, 3, 4)),
    case("triu_offset", lambda x: gradcore.triu(x, -1), A(4, 3)),
    case("roll", lambda x: x.roll((1, -2), (0, 1)), A(3, 4)),
    case("roll_flat", lambda x: gradcore.roll(x, 5), A(3, 4)),
    case("flip", lambda x: x.flip(0, 1), A(3, 4)),
    case("repeat", lambda x: x.repeat(2, 1, 3), A(3, 4)),
    case("tile", lambda x: gradcore.tile(x, (2,)), A(3, 4)),
    case("repeat_interleave", lambda x: x.repeat_interleave(int_tensor([1, 0, 3]), dim=0), A(3, 4)),
    case("repeat_interleave_flat", lambda x: gradcore.repeat_interleave(x, 2), A(2, 3)),
    case("einsum_matmul", lambda a, b: gradcore.einsum("ij,jk->ik", a, b), A(3, 4), A(4, 2)),
    case("einsum_batch_ellipsis", lambda a, b: gradcore.einsum("...ij,...jk", a, b), A(2, 3, 4), A(1, 4, 2)),
    case("einsum_trace_outer", lambda a, b: gradcore.einsum("ii,j->j", a, b), A(3, 3), A(2)),
    case("einsum_sum_out", lambda a: gradcore.einsum("ijk->j", a), A(2, 3, 4)),
    case("einsum_three", lambda a, b, c: gradcore.einsum("ab,bc,cd->ad", a, b, c), A(2, 3), A(3, 4), A(4, 2)),
    case("norm_3", lambda x: x.norm(3), A(3, 4, **NONZERO), smooth=False),
    case("norm_1.5_dim", lambda x: gradcore.norm(x, 1.5, dim=1, keepdim=True), A(3, 4, **NONZERO), smooth=False),
    case("norm_1", lambda x: x.norm(1, dim=0), A(3, 4, **NONZERO), smooth=False),
    case("norm_inf", lambda x: x.norm(float("inf"), dim=1), A(3, 4, distinct=True, low=0.2), smooth=False),
    case("norm_-inf", lambda x: x.norm(float("-inf")), A(3, 4, distinct=True, low=0.2), smooth=False),
    case("clamp_tensor_bounds", lambda x, lo, hi: x.clamp(lo, hi), A(3, 4, phase=0.1), A(3, 4, phase=0.2),
         A(4, phase=0.3), smooth=False),
]


@pytest.mark.parametrize("fn, args, smooth", NEW_OPS)
def test_new_ops(fn, args, smooth):
    run_checks(fn, args, smooth)
