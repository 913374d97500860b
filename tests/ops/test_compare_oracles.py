"""``gradcore.allclose`` and ``gradcore.equal``, which other tests use as their oracle, checked against numpy's
``isclose`` / ``array_equal`` (the formula) and PyTorch (the spec: which dtypes and arguments it accepts, and its
errors): NaN with and without ``equal_nan``, infinities, signed zeros, dtypes, shapes, broadcasting, and the
``rtol``/``atol`` boundary itself.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import gradcore

torch = pytest.importorskip("torch")

NAN, INF = math.nan, math.inf

# (input, other, rtol, atol, equal_nan); each is run through gradcore, numpy and PyTorch.
CLOSE_CASES = {
    "identical": ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 1e-5, 1e-8, False),
    "inside_rtol": ([100.0], [100.0009], 1e-5, 0.0, False),
    "outside_rtol": ([100.0], [100.0011], 1e-5, 0.0, False),
    "rtol_scales_other_not_input": ([0.0], [1.0], 1.0, 0.0, False),  # |0 - 1| <= 1 * |1|
    "rtol_scales_other_not_input_swapped": ([1.0], [0.0], 1.0, 0.0, False),  # |1 - 0| > 1 * |0|
    "exactly_on_atol": ([0.0], [0.5], 0.0, 0.5, False),
    "just_past_atol": ([0.0], [0.5000001], 0.0, 0.5, False),
    "zero_tolerances_equal": ([1.5, -2.0], [1.5, -2.0], 0.0, 0.0, False),
    "zero_tolerances_one_ulp": ([1.0], [1.0000000000000002], 0.0, 0.0, False),
    "nan_not_equal": ([1.0, NAN], [1.0, NAN], 1e-5, 1e-8, False),
    "nan_equal_nan": ([1.0, NAN], [1.0, NAN], 1e-5, 1e-8, True),
    "nan_against_number": ([NAN], [1.0], 1e-5, 1e-8, True),
    "inf_same_sign": ([INF, -INF], [INF, -INF], 1e-5, 1e-8, False),
    "inf_opposite_sign": ([INF], [-INF], 1e-5, 1e-8, False),
    "inf_against_huge": ([INF], [3e38], 1e-5, 1e-8, False),
    "inf_with_infinite_atol": ([INF], [1.0], 1e-5, INF, False),
    "signed_zeros": ([0.0], [-0.0], 0.0, 0.0, False),
    "broadcast_row": ([[1.0, 2.0], [1.0, 2.0]], [1.0, 2.0], 1e-5, 1e-8, False),
    "broadcast_scalar_tensor": ([[1.0, 1.0]], 1.0, 1e-5, 1e-8, False),
    "broadcast_differs": ([[1.0, 2.0], [1.0, 2.5]], [1.0, 2.0], 1e-5, 1e-8, False),
    "empty": ([], [], 1e-5, 1e-8, False),
}


def tensors(module, input, other, dtype):
    return module.tensor(input, dtype=dtype), module.tensor(other, dtype=dtype)


@pytest.mark.parametrize("case", sorted(CLOSE_CASES))
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_allclose_agrees_with_numpy_and_pytorch(case, dtype_name):
    input, other, rtol, atol, equal_nan = CLOSE_CASES[case]
    ours = gradcore.allclose(*tensors(gradcore, input, other, getattr(gradcore, dtype_name)), rtol=rtol, atol=atol,
                             equal_nan=equal_nan)
    theirs = torch.allclose(*tensors(torch, input, other, getattr(torch, dtype_name)), rtol=rtol, atol=atol,
                            equal_nan=equal_nan)
    with np.errstate(invalid="ignore"):  # numpy warns about an infinite atol
        formula = np.isclose(np.asarray(input, dtype=dtype_name), np.asarray(other, dtype=dtype_name), rtol=rtol,
                             atol=atol, equal_nan=equal_nan)
    # numpy's formula, with PyTorch's rule that infinities are close only to an equal infinity.
    with np.errstate(invalid="ignore"):
        difference = np.asarray(input, dtype=dtype_name) - np.asarray(other, dtype=dtype_name)
    formula = bool((formula & (np.isfinite(difference) | (difference == 0) | np.isnan(difference))).all())
    assert type(ours) is bool
    assert ours == theirs == formula, f"{case}: gradcore {ours}, PyTorch {theirs}, numpy {formula}"
    # The method form is the same function.
    a, b = tensors(gradcore, input, other, getattr(gradcore, dtype_name))
    assert a.allclose(b, rtol=rtol, atol=atol, equal_nan=equal_nan) == ours


def test_allclose_defaults_are_pytorchs():
    # 1e-5 relative, 1e-8 absolute: 1 + 9e-6 is close to 1, 1 + 2e-5 is not; near 0 only atol counts.
    for values, expected in ([(1.0, 1.0 + 9e-6), True], [(1.0, 1.0 + 2e-5), False], [(0.0, 5e-9), True],
                             [(0.0, 2e-8), False]):
        a, b = (gradcore.tensor([v], dtype=gradcore.float64) for v in values)
        assert gradcore.allclose(a, b) is expected
        assert torch.allclose(*(torch.tensor([v], dtype=torch.float64) for v in values)) is expected


@pytest.mark.parametrize("dtype_name", ["int64", "int32", "bool"])
def test_allclose_on_integer_and_bool_tensors(dtype_name):
    for input, other, atol in (([1, 2], [1, 3], 0.0), ([1, 2], [1, 3], 1.0), ([0, 1], [0, 1], 0.0)):
        if dtype_name == "bool":
            input, other = [bool(v) for v in input], [bool(v % 2) for v in other]
        ours = gradcore.allclose(*tensors(gradcore, input, other, getattr(gradcore, dtype_name)), atol=atol)
        theirs = torch.allclose(*tensors(torch, input, other, getattr(torch, dtype_name)), atol=atol)
        assert ours == theirs, (dtype_name, input, other, atol)


def raised(call):
    try:
        call()
    except Exception as error:  # the type and message are what we compare
        return type(error), str(error)
    return None


@pytest.mark.parametrize("case", ["float32_vs_float64", "int64_vs_float32", "shapes_do_not_broadcast",
                                  "other_is_a_float", "input_is_a_float", "negative_rtol", "negative_atol"])
def test_allclose_rejects_what_pytorch_rejects(case):
    def call(module):
        f32, f64, i64 = module.float32, module.float64, module.int64
        if case == "float32_vs_float64":
            return module.allclose(module.tensor([1.0], dtype=f32), module.tensor([1.0], dtype=f64))
        if case == "int64_vs_float32":
            return module.allclose(module.tensor([1], dtype=i64), module.tensor([1.0], dtype=f32))
        if case == "shapes_do_not_broadcast":
            return module.allclose(module.tensor([1.0, 2.0]), module.tensor([1.0, 2.0, 3.0]))
        if case == "other_is_a_float":
            return module.allclose(module.tensor([1.0]), 1.0)
        if case == "input_is_a_float":
            return module.allclose(1.0, module.tensor([1.0]))
        if case == "negative_rtol":
            return module.allclose(module.tensor([1.0]), module.tensor([1.0]), rtol=-1.0)
        return module.allclose(module.tensor([1.0]), module.tensor([1.0]), atol=-0.5)

    expected = raised(lambda: call(torch))
    assert expected is not None, f"{case}: PyTorch accepts it; the case is wrong"
    assert raised(lambda: call(gradcore)) == expected


EQUAL_CASES = {
    "same": ([1.0, 2.0], [1.0, 2.0]),
    "one_differs": ([1.0, 2.0], [1.0, 2.5]),
    "nan_is_never_equal": ([NAN], [NAN]),
    "signed_zeros_are_equal": ([0.0], [-0.0]),
    "infinities": ([INF, -INF], [INF, -INF]),
    "shapes_differ_even_if_broadcastable": ([[1.0, 2.0]], [1.0, 2.0]),
    "sizes_differ": ([1.0], [1.0, 1.0]),
    "empty": ([], []),
    "one_ulp": ([1.0], [1.0000000000000002]),
}


@pytest.mark.parametrize("case", sorted(EQUAL_CASES))
@pytest.mark.parametrize("dtypes", [("float64", "float64"), ("float32", "float32"), ("float32", "float64"),
                                    ("int64", "float32")], ids="-".join)
def test_equal_agrees_with_numpy_and_pytorch(case, dtypes):
    input, other = EQUAL_CASES[case]
    if dtypes[0] == "int64":
        input = [0 if math.isnan(v) else int(max(min(v, 9), -9)) for v in np.ravel(input)] if input else []
        input = np.reshape(input, np.shape(EQUAL_CASES[case][0])).tolist()
    ours = gradcore.equal(gradcore.tensor(input, dtype=getattr(gradcore, dtypes[0])),
                          gradcore.tensor(other, dtype=getattr(gradcore, dtypes[1])))
    theirs = torch.equal(torch.tensor(input, dtype=getattr(torch, dtypes[0])),
                         torch.tensor(other, dtype=getattr(torch, dtypes[1])))
    a = np.asarray(input, dtype=dtypes[0])
    b = np.asarray(other, dtype=dtypes[1])
    formula = a.shape == b.shape and bool(np.array_equal(a, b))
    assert type(ours) is bool
    assert ours == theirs == formula, f"{case} {dtypes}: gradcore {ours}, PyTorch {theirs}, numpy {formula}"


def test_equal_rejects_what_pytorch_rejects():
    for call in (lambda m: m.equal(m.tensor([1.0]), 1.0), lambda m: m.equal([1.0], m.tensor([1.0]))):
        expected = raised(lambda: call(torch))
        assert expected is not None
        assert raised(lambda: call(gradcore)) == expected
