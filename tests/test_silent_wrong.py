"""Results, gradients and errors that used to differ from PyTorch silently, each run side by side with it.

Every case is a program ``program(lib)`` run on gradcore and on torch: both must give the same values (and
dtypes), or raise the same exception type with the same first line of message.
"""
import warnings

import numpy as np
import pytest

import gradcore

torch = pytest.importorskip("torch")

NAN = float("nan")
INF = float("inf")


def _as_comparable(value):
    if isinstance(value, (gradcore.Tensor, torch.Tensor)):
        return value.detach().numpy(), str(value.dtype).split(".")[-1]
    if isinstance(value, (tuple, list)):
        return [_as_comparable(v) for v in value]
    return value


def _assert_same_result(a, b) -> None:
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same_result(x, y)
    elif isinstance(a, tuple) and len(a) == 2 and isinstance(a[0], np.ndarray):
        assert a[1] == b[1], f"dtype {a[1]} != {b[1]}"
        assert a[0].shape == b[0].shape
        np.testing.assert_allclose(a[0], b[0], rtol=1e-6, atol=1e-12, equal_nan=True)
    else:
        assert a == b


def run_both(program):
    """Runs ``program`` on both libraries and checks that they agree (values, or exception type and message)."""
    outcomes = []
    for lib in (gradcore, torch):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                outcomes.append(("value", _as_comparable(program(lib))))
            except Exception as exc:  # noqa: BLE001 - the exception itself is what is compared
                message = str(exc).splitlines()[0] if str(exc) else ""
                message = message.replace("gradcore", "torch").replace("torch.cuda.", "torch.")
                outcomes.append(("error", type(exc).__name__, message))
    ours, theirs = outcomes
    assert ours[0] == theirs[0], f"gradcore gave {ours}, torch gave {theirs}"
    if ours[0] == "error":
        assert ours[1:] == theirs[1:]
    else:
        _assert_same_result(ours[1], theirs[1])


def grad_of(fn, values):
    """A program that returns the gradient of ``fn(lib, x).sum()`` at float64 ``values``."""
    def program(lib):
        x = lib.tensor(values, dtype=lib.float64, requires_grad=True)
        fn(lib, x).sum().backward()
        return x.grad
    return program


CASES = {
    # norm with p = inf, -inf, 0 and its gradients at zero entries
    "norm_inf": lambda lib: lib.tensor([1.0, -3.0, 2.0]).norm(INF),
    "norm_-inf": lambda lib: lib.tensor([1.0, -3.0, 2.0]).norm(-INF),
    "norm_0": lambda lib: lib.tensor([1.0, 0.0, 2.0]).norm(0),
    "norm_inf_dim": lambda lib: lib.tensor([[1.0, -3.0], [2.0, 0.0]]).norm(INF, dim=1),
    "norm_3_keepdim": lambda lib: lib.tensor([[1.0, -3.0], [2.0, 0.0]]).norm(3, dim=0, keepdim=True),
    "norm_1_grad_at_zero": grad_of(lambda lib, x: x.norm(1), [0.0, 1.0, -2.0]),
    "norm_3_grad_at_zero": grad_of(lambda lib, x: x.norm(3), [0.0, 1.0, -2.0]),
    "norm_0.5_grad_at_zero": grad_of(lambda lib, x: x.norm(0.5), [0.0, 1.0, -2.0]),
    "norm_inf_grad": grad_of(lambda lib, x: x.norm(INF), [0.0, 1.0, -2.0]),
    "norm_inf_grad_ties": grad_of(lambda lib, x: x.norm(INF), [2.0, 1.0, -2.0]),
    "norm_-inf_grad": grad_of(lambda lib, x: x.norm(-INF), [3.0, 1.0, -2.0]),
    "norm_0_grad": grad_of(lambda lib, x: x.norm(0), [0.0, 1.0, -2.0]),
    "norm_3_grad_all_zero": grad_of(lambda lib, x: x.norm(3), [0.0, 0.0]),
    "norm_fn_inf": lambda lib: lib.norm(lib.tensor([1.0, -3.0]), INF),
    # boolean and uint8 masks
    "mask_wrong_shape_read": lambda lib: lib.ones(3, 4)[lib.tensor([True, False])],
    "mask_wrong_shape_second_dim": lambda lib: lib.ones(3, 4)[:, lib.tensor([True, False, True])],
    "mask_wrong_shape_write": lambda lib: lib.ones(3, 4).__setitem__(lib.tensor([True, False]), 0.0),
    "mask_2d_wrong_shape": lambda lib: lib.ones(3, 4)[lib.ones(3, 3, dtype=lib.bool)],
    "mask_right_shape": lambda lib: lib.arange(12.0).reshape(3, 4)[:, lib.tensor([True, False, True, False])],
    "mask_after_ellipsis": lambda lib: lib.arange(12.0).reshape(3, 4)[..., lib.tensor([False, True, True, False])],
    "uint8_index_is_mask": lambda lib: lib.arange(4.0)[lib.tensor([1, 0, 1, 0], dtype=lib.uint8)],
    "uint8_index_2d": lambda lib: lib.arange(6.0).reshape(2, 3)[lib.tensor([0, 1], dtype=lib.uint8)],
    # gradients
    "std_constant_grad": grad_of(lambda lib, x: x.std(), [2.0, 2.0, 2.0]),
    "std_dim_constant_row_grad": grad_of(lambda lib, x: x.reshape(2, 2).std(1), [2.0, 2.0, 1.0, 3.0]),
    "var_constant_grad": grad_of(lambda lib, x: x.var(), [2.0, 2.0, 2.0]),
    "max_nan_grad": grad_of(lambda lib, x: x.max(), [1.0, NAN, 2.0]),
    "min_nan_grad": grad_of(lambda lib, x: x.min(), [1.0, NAN, 2.0]),
    "max_dim_nan_grad": grad_of(lambda lib, x: x.reshape(1, 3).max(1).values, [1.0, NAN, 2.0]),
    "max_ties_grad": grad_of(lambda lib, x: x.max(), [2.0, 1.0, 2.0]),
    "amax_nan_grad": grad_of(lambda lib, x: x.amax(), [1.0, NAN, 2.0]),
    "maximum_nan_grad": grad_of(lambda lib, x: lib.maximum(x, lib.tensor([0.0, 0.0, 5.0], dtype=lib.float64)),
                                [1.0, NAN, 2.0]),
    "maximum_nan_other_grad": grad_of(lambda lib, x: lib.maximum(lib.tensor([NAN, 0.0, 5.0], dtype=lib.float64), x),
                                      [1.0, NAN, 2.0]),
    "minimum_nan_grad": grad_of(lambda lib, x: lib.minimum(x, lib.tensor([NAN, 0.0, 5.0], dtype=lib.float64)),
                                [1.0, NAN, 2.0]),
    "maximum_ties_grad": grad_of(lambda lib, x: lib.maximum(x, lib.tensor([1.0, 0.0], dtype=lib.float64)),
                                 [1.0, 2.0]),
    "clamp_tensor_bounds_equal_grad": grad_of(
        lambda lib, x: x.clamp(lib.tensor([1.0, 0.0, 0.0], dtype=lib.float64),
                               lib.tensor([3.0, 2.0, 2.0], dtype=lib.float64)), [1.0, 2.0, 1.0]),
    "clamp_tensor_min_grad": grad_of(lambda lib, x: lib.clamp(x, min=lib.tensor([1.0, 5.0], dtype=lib.float64)),
                                     [1.0, 2.0]),
    "clamp_tensor_max_grad": grad_of(lambda lib, x: x.clamp(max=lib.tensor([1.0, 5.0], dtype=lib.float64)),
                                     [1.0, 7.0]),
    "clamp_tensor_values": lambda lib: lib.tensor([0.0, 1.0, 5.0]).clamp(lib.tensor([1.0]), lib.tensor([2.0, 2.0, 3.0])),
    "clamp_bound_grad": lambda lib: _clamp_bound_grads(lib),
    # hooks must keep the gradient's shape, dtype and device
    "hook_changes_shape": lambda lib: _hooked(lib, lambda g: lib.ones(2)),
    "hook_changes_dtype": lambda lib: _hooked(lib, lambda g: g.double()),
    "hook_returns_number": lambda lib: _hooked(lib, lambda g: 3),
    "hook_scales": lambda lib: _hooked(lib, lambda g: g * 5),
    "hook_on_non_leaf_changes_shape": lambda lib: _hooked(lib, lambda g: lib.ones(2), leaf=False),
    # unchecked arguments
    "gather_negative_index": lambda lib: lib.ones(2, 3).gather(1, lib.tensor([[0, -1]])),
    "floor_divide_int_by_zero": lambda lib: lib.tensor([5, 3]) // lib.tensor([0, 1]),
    "remainder_int_by_zero": lambda lib: lib.tensor([5, 3]) % lib.tensor([0, 1]),
    "floor_divide_int_by_scalar_zero": lambda lib: lib.tensor([5, 3]) // 0,
    "div_floor_int_by_zero": lambda lib: lib.div(lib.tensor([5]), lib.tensor([0]), rounding_mode="floor"),
    "div_trunc_int_by_zero": lambda lib: lib.div(lib.tensor([5]), 0, rounding_mode="trunc"),
    "float_floor_divide_by_zero": lambda lib: lib.tensor([5.0, -3.0, 0.0]) // 0,
    "nan_cast_to_int": lambda lib: lib.tensor([NAN, 1.5]).long(),
    "nan_inf_cast_to_small_ints": lambda lib: [lib.tensor([NAN, INF, -INF, 1e20, 300.7, -5.5]).to(dtype)
                                               for dtype in (lib.int32, lib.int16, lib.int8, lib.uint8, lib.bool)],
    "dim_1_on_0d_sum": lambda lib: lib.tensor(2.0).sum(1),
    "dim_-2_on_0d_mean": lambda lib: lib.tensor(2.0).mean(-2),
    "dim_0_on_0d_sum": lambda lib: lib.tensor(2.0).sum(0),
    "dim_1_on_0d_size": lambda lib: lib.tensor(2.0).size(1),
    "dim_2_on_0d_softmax": lambda lib: lib.tensor(2.0).softmax(2),
    "dim_1_on_0d_argmax": lambda lib: lib.tensor(2.0).argmax(1),
    "arange_negative_step_up": lambda lib: lib.arange(0, 5, -1),
    "arange_positive_step_down": lambda lib: lib.arange(5, 0, 1),
    "arange_float_wrong_sign": lambda lib: lib.arange(0.0, 1.0, -0.1),
    "arange_empty_range": lambda lib: lib.arange(3, 3, -1),
    "arange_infinite": lambda lib: lib.arange(0.0, INF),
    "normal__negative_std": lambda lib: lib.ones(3).normal_(0, -1),
    "uniform__reversed": lambda lib: lib.ones(3).uniform_(2, 1),
    "uniform__leaf": lambda lib: lib.ones(3, requires_grad=True).uniform_(),
    "normal__leaf": lambda lib: lib.ones(3, requires_grad=True).normal_(),
    "asarray_requires_grad": lambda lib: np.asarray(lib.ones(2, requires_grad=True)),
    "asarray_detached": lambda lib: lib.tensor(np.asarray(lib.ones(2, requires_grad=True).detach())),
    # exception types and messages
    "split_0": lambda lib: lib.ones(4).split(0),
    "split_0_of_empty": lambda lib: lib.ones(0).split(0),
    "split_negative": lambda lib: lib.ones(4).split(-1),
    "chunk_0": lambda lib: lib.ones(4).chunk(0),
    "eye_-1": lambda lib: lib.eye(-1),
    "eye_m_-2": lambda lib: lib.eye(3, -2),
    "expand_-2": lambda lib: lib.ones(3).expand(-2, 3),
    "expand_-2_existing_dim": lambda lib: lib.ones(3).expand(2, -2),
    "argmax_empty": lambda lib: lib.ones(0).argmax(),
    "argmin_empty": lambda lib: lib.ones(0).argmin(),
    "argmax_empty_dim": lambda lib: lib.ones(2, 0).argmax(1),
    "argmax_dim_of_empty_other_dim": lambda lib: lib.ones(0, 2).argmax(1),
    "backward_with_list": lambda lib: lib.ones(2, requires_grad=True).sum().backward([lib.ones(())]),
    "masked_fill_wrong_mask": lambda lib: lib.ones(3, 4).masked_fill(lib.ones(2, dtype=lib.bool), 0.0),
    "masked_fill_broadcast_mask": lambda lib: lib.ones(3, 4).masked_fill(lib.ones(2, 1, 4, dtype=lib.bool), 0.0),
    "masked_fill_string_value": lambda lib: lib.ones(3).masked_fill(lib.ones(3, dtype=lib.bool), "a"),
    "masked_fill_1d_value": lambda lib: lib.ones(3).masked_fill(lib.ones(3, dtype=lib.bool), lib.ones(3)),
    "masked_fill_0d_value": lambda lib: lib.ones(3).masked_fill(lib.tensor([True, False, True]), lib.tensor(7.0)),
    "masked_fill_uint8_mask": lambda lib: lib.ones(3).masked_fill(lib.ones(3, dtype=lib.uint8), 1.0),
    # out= is honoured
    "out_add": lambda lib: _with_out(lib, lambda o: lib.add(lib.ones(2), lib.ones(2), alpha=2, out=o)),
    "out_sub": lambda lib: _with_out(lib, lambda o: lib.sub(lib.ones(2), 3, out=o)),
    "out_mul": lambda lib: _with_out(lib, lambda o: lib.mul(lib.ones(2) * 3, lib.ones(2) * 2, out=o)),
    "out_div": lambda lib: _with_out(lib, lambda o: lib.div(lib.ones(2) * 3, 2, out=o)),
    "out_div_floor": lambda lib: _with_out(lib, lambda o: lib.div(lib.ones(2) * 3, 2, rounding_mode="floor", out=o)),
    "out_pow": lambda lib: _with_out(lib, lambda o: lib.pow(lib.ones(2) * 3, 2, out=o)),
    "out_int_into_float": lambda lib: _with_out(lib, lambda o: lib.add(lib.tensor([1, 2]), 1, out=o)),
    "out_float_into_int": lambda lib: _with_out(lib, lambda o: lib.add(lib.ones(2), 1, out=o), lib.int64),
    "out_resized": lambda lib: _with_out(lib, lambda o: lib.mul(lib.ones(2, 3), 2, out=o), shape=(0,)),
    "out_requires_grad": lambda lib: lib.add(lib.ones(2, requires_grad=True), 1, out=lib.zeros(2)),
    # ... by the products too
    "out_matmul": lambda lib: _with_out(lib, lambda o: lib.matmul(_m(lib, 2, 3), _m(lib, 3, 4), out=o), shape=(2, 4)),
    "out_matmul_vector": lambda lib: _with_out(lib, lambda o: lib.matmul(_m(lib, 2, 3), _m(lib, 3), out=o)),
    "out_matmul_dot": lambda lib: _with_out(lib, lambda o: lib.matmul(_m(lib, 3), _m(lib, 3), out=o), shape=()),
    "out_matmul_batched": lambda lib: _with_out(lib, lambda o: lib.matmul(_m(lib, 5, 2, 3), _m(lib, 3, 4), out=o),
                                                shape=(5, 2, 4)),
    "out_matmul_resized": lambda lib: _with_out(lib, lambda o: lib.matmul(_m(lib, 2, 3), _m(lib, 3, 4), out=o)),
    "out_matmul_empty": lambda lib: _with_out(lib, lambda o: lib.matmul(_m(lib, 2, 3), _m(lib, 3, 4), out=o),
                                              shape=(0,)),
    "out_matmul_float64": lambda lib: _with_out(lib, lambda o: lib.matmul(_m(lib, 2, 3), _m(lib, 3, 4), out=o),
                                                lib.float64, (2, 4)),
    "out_matmul_int64": lambda lib: _with_out(lib, lambda o: lib.matmul(_m(lib, 2, 3), _m(lib, 3, 4), out=o),
                                              lib.int64, (2, 4)),
    "out_matmul_of_ints": lambda lib: _with_out(
        lib, lambda o: lib.matmul(_m(lib, 2, 3).long(), _m(lib, 3, 4).long(), out=o), lib.int64, (2, 4)),
    "out_matmul_half": lambda lib: _with_out(lib, lambda o: lib.matmul(_m(lib, 2, 3), _m(lib, 3, 4), out=o),
                                             lib.float16, (2, 4)),
    "out_matmul_requires_grad": lambda lib: lib.matmul(lib.ones(2, 3, requires_grad=True), lib.ones(3, 4),
                                                       out=lib.zeros(2, 4)),
    "out_matmul_out_requires_grad": lambda lib: lib.matmul(lib.ones(2, 3), lib.ones(3, 4),
                                                           out=lib.zeros(2, 4, requires_grad=True)),
    "out_matmul_list": lambda lib: lib.matmul(lib.ones(2, 3), lib.ones(3, 4), out=[1]),
    "out_mm": lambda lib: _with_out(lib, lambda o: lib.mm(_m(lib, 2, 3), _m(lib, 3, 4), out=o), shape=(2, 4)),
    "out_mm_resized": lambda lib: _with_out(lib, lambda o: lib.mm(_m(lib, 2, 3), _m(lib, 3, 4), out=o)),
    "out_mm_int32": lambda lib: _with_out(lib, lambda o: lib.mm(_m(lib, 2, 3), _m(lib, 3, 4), out=o),
                                          lib.int32, (2, 4)),
    "out_mm_requires_grad": lambda lib: lib.mm(lib.ones(2, 3), lib.ones(3, 4, requires_grad=True),
                                               out=lib.zeros(2, 4)),
    "out_mm_list": lambda lib: lib.mm(lib.ones(2, 3), lib.ones(3, 4), out=[1]),
    "out_bmm": lambda lib: _with_out(lib, lambda o: lib.bmm(_m(lib, 5, 2, 3), _m(lib, 5, 3, 4), out=o),
                                     shape=(5, 2, 4)),
    "out_bmm_resized": lambda lib: _with_out(lib, lambda o: lib.bmm(_m(lib, 5, 2, 3), _m(lib, 5, 3, 4), out=o)),
    "out_bmm_uint8": lambda lib: _with_out(lib, lambda o: lib.bmm(_m(lib, 5, 2, 3), _m(lib, 5, 3, 4), out=o),
                                           lib.uint8, (5, 2, 4)),
    "out_bmm_list": lambda lib: lib.bmm(lib.ones(5, 2, 3), lib.ones(5, 3, 4), out=[1]),
    # an empty dim list reduces every dim (sum, mean, std, var, norm, logsumexp with keepdim), as in PyTorch;
    # any and all keep their elementwise meaning there; dim=None with keepdim keeps every dim as size 1
    "sum_empty_dims": lambda lib: lib.arange(6.0).reshape(2, 3).sum(()),
    "sum_empty_list_keepdim": lambda lib: lib.sum(lib.arange(6.0).reshape(2, 3), [], keepdim=True),
    "mean_empty_dims": lambda lib: lib.arange(6.0).reshape(2, 3).mean(()),
    "std_empty_dims": lambda lib: lib.arange(6.0).reshape(2, 3).std(()),
    "var_empty_dims_keepdim": lambda lib: lib.var(lib.arange(6.0).reshape(2, 3), (), keepdim=True),
    "norm_empty_dims": lambda lib: lib.arange(6.0).reshape(2, 3).norm(dim=()),
    "logsumexp_empty_dims_keepdim": lambda lib: lib.logsumexp(lib.arange(6.0).reshape(2, 3), (), keepdim=True),
    "any_empty_dims": lambda lib: (lib.arange(6.0).reshape(2, 3) > 2).any(()),
    "amax_empty_dims": lambda lib: lib.arange(6.0).reshape(2, 3).amax(()),
    "sum_none_keepdim": lambda lib: lib.arange(6.0).reshape(2, 3).sum(None, keepdim=True),
    "mean_none_keepdim": lambda lib: lib.arange(6.0).reshape(2, 3).mean(None, True),
    "sum_empty_dims_grad": grad_of(lambda lib, x: x.reshape(2, 2).sum(()), [1.0, 2.0, 3.0, 4.0]),
    "mean_none_keepdim_grad": grad_of(lambda lib, x: x.reshape(2, 2).mean(None, keepdim=True), [1.0, 2.0, 3.0, 4.0]),
    "logsumexp_without_dim": lambda lib: lib.logsumexp(lib.ones(2, 3)),
    "logsumexp_method_without_dim": lambda lib: lib.ones(2, 3).logsumexp(keepdim=True),
    # a 0-d tensor in an f-string prints its number, as in the notebooks' f"{nll/n}"
    "format_0d_no_spec": lambda lib: f"{lib.tensor(6.5) / 3}",
    "format_0d_spec": lambda lib: f"{lib.tensor(6.5) / 3:.3f}",
    "format_1d": lambda lib: f"{lib.tensor([6.5])}".replace("gradcore", "torch"),
    # small integer powers take the product's rounding
    "pow_2": lambda lib: lib.tensor([1.1, -2.3, 3.7]).pow(2),
    "pow_3": lambda lib: lib.tensor([1.1, -2.3, 3.7]) ** 3,
    "pow_-2": lambda lib: lib.tensor([1.1, -2.3, 3.7]).pow(-2),
    "pow_3_grad": grad_of(lambda lib, x: x.pow(3), [1.1, -2.3, 0.0]),
    "pow_-2_grad": grad_of(lambda lib, x: x.pow(-2), [1.1, -2.3]),
    "pow_int_tensor": lambda lib: lib.tensor([2, -3]).pow(3),
}


def _clamp_bound_grads(lib):
    x = lib.tensor([0.0, 1.0, 2.0, 5.0], dtype=lib.float64)
    low = lib.tensor([1.0, 1.0, 1.0, 1.0], dtype=lib.float64, requires_grad=True)
    high = lib.tensor([3.0, 3.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
    x.clamp(low, high).sum().backward()
    return low.grad, high.grad


def _hooked(lib, hook, leaf: bool = True):
    x = lib.ones(3, requires_grad=True)
    target = x if leaf else x * 2
    target.register_hook(hook)
    (target * 2).sum().backward()
    return x.grad


def _m(lib, *shape):
    """A float32 tensor of the given shape with fixed small integers (exact products in both libraries)."""
    values = np.random.default_rng(len(shape) * 10 + shape[-1]).integers(-5, 6, shape).astype(np.float32)
    return lib.tensor(values)


def _with_out(lib, call, dtype=None, shape=(2,)):
    out = lib.zeros(shape, dtype=dtype or lib.float32)
    returned = call(out)
    assert returned is out
    return out


# Under --device the suite's harness lets numpy() copy device memory, so the numpy() guard is only seen on
# the CPU; and a device tensor's repr names its device, which PyTorch's CPU oracle does not.
CPU_ONLY = {"asarray_requires_grad", "format_1d"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.cpu_only) if n in CPU_ONLY else n
                                  for n in CASES])
def test_matches_torch(name):
    run_both(CASES[name])


@pytest.mark.cpu_only  # the CuPy test double casts through numpy without its error state; CuPy never warns
def test_nan_cast_to_int_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = gradcore.tensor([NAN, INF, 2.5]).long()
    np.testing.assert_array_equal(values.numpy(), torch.tensor([NAN, INF, 2.5]).long().numpy())


def test_out_keeps_the_tensor_and_its_views():
    out = gradcore.zeros(2, 2)
    row = out[0]
    gradcore.mul(gradcore.ones(2, 2), 3, out=out)
    np.testing.assert_array_equal(row.numpy(), [3.0, 3.0])


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("out_") and n.rstrip("0123456789").split("_")[1]
                                  in ("matmul", "mm", "bmm")])
def test_product_out_errors_and_warnings_match_word_for_word(name):
    """The whole message of each error, and the resize warning, as PyTorch's (its first sentence: PyTorch goes on
    about its own future releases and its C++ source)."""
    texts = []
    for lib in (gradcore, torch):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                CASES[name](lib)
                texts.append(None)
            except Exception as exc:  # noqa: BLE001 - the exception itself is what is compared
                texts.append((type(exc).__name__, str(exc)))
        texts.append([str(w.message).split(" This behavior is deprecated")[0] for w in caught])
    assert texts[:2] == texts[2:]


def test_product_out_keeps_the_tensor_and_its_views():
    out = gradcore.zeros(2, 4)
    row, version = out[1], out._version
    a, b = gradcore.ones(2, 3), gradcore.arange(12.0).reshape(3, 4)
    assert gradcore.matmul(a, b, out=out) is out
    np.testing.assert_array_equal(row.numpy(), torch.ones(3) @ torch.arange(12.0).reshape(3, 4))
    assert out._version > version


def test_uint8_mask_write_acts_as_mask():
    # PyTorch refuses a Python number written through a uint8 mask (its masked_fill path); the mask meaning
    # is kept here, as on read.
    t = gradcore.arange(4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t[gradcore.tensor([1, 0, 1, 0], dtype=gradcore.uint8)] = 9.0
    np.testing.assert_array_equal(t.numpy(), [9.0, 1.0, 9.0, 3.0])


def test_hook_result_of_right_shape_reaches_optimizer_unchanged():
    w = gradcore.ones(3, requires_grad=True)
    w.register_hook(lambda g: g * 0 + 1)
    (w * 5).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 1.0, 1.0])


@pytest.mark.parametrize("overload", ["tensor_tensor", "tensor_number", "number_tensor", "tensor_constant",
                                      "constant_tensor", "broadcast"])
def test_normal_nodes_are_named_per_overload_as_pytorchs(overload):
    graphs = []
    for lib in (gradcore, torch):
        mean = lib.zeros(3, requires_grad=True)
        std = lib.ones(3, requires_grad=True)
        calls = {"tensor_tensor": lambda: lib.normal(mean, std), "tensor_number": lambda: lib.normal(mean, 2.0),
                 "number_tensor": lambda: lib.normal(1.0, std), "tensor_constant": lambda: lib.normal(mean, lib.ones(3)),
                 "constant_tensor": lambda: lib.normal(lib.zeros(3), std),
                 "broadcast": lambda: lib.normal(mean, std[:1])}
        node = calls[overload]().grad_fn
        graphs.append((node.name(), [None if n is None else type(n).__name__ for n, _ in node.next_functions]))
    assert graphs[0] == graphs[1]
