"""kernels/gemm.cu on the CPU emulation: every instantiation, plain and transposed operands, strided views, batches,
every epilogue, and the fused backward (activation derivative while loading, bias gradient in the same pass),
against float64 numpy with an error bound per element.

Each output element of a K-term dot product computed in precision eps is within (K + c) * eps * (|A| @ |B|) of
the exact value (c counts the few roundings around it: bias, activation); the checks use that bound element by
element, so a wrong element fails however small the matrix is, and unwritten elements (NaN) always fail.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from gradcore.backend import kernels

INSTANTIATIONS = [(dtype, tile) for dtype, tiles in kernels.GEMM_TILES.items() for tile in tiles]
# (M, K, N): a single element, odd sizes that are multiples of no tile, exact multiples, thin and long shapes.
SHAPES = [(1, 1, 1), (17, 33, 65), (130, 70, 257), (64, 64, 128), (3, 200, 5), (129, 1, 127), (33, 17, 31)]
ACTIVATIONS = ["none", "relu", "clamp", "sigmoid"]
CLAMP = (-0.5, 0.7)


def operand(rng, rows: int, cols: int, dtype: str, transposed: bool, padded: bool = False):
    """Returns (array, op(array) in float64) where op(array) is rows x cols.

    ``transposed``: the array holds op(array)'s transpose, as a (cols x rows) matrix for trans=True.
    ``padded``: the array is a strided view into a larger NaN-filled buffer, so that reading one element
    beyond the view (in its row or past its last row) puts a NaN into the result.
    """
    stored_shape = (cols, rows) if transposed else (rows, cols)
    values = rng.standard_normal(stored_shape).astype(dtype)
    if padded:
        buffer = np.full((stored_shape[0] + 2, stored_shape[1] + 3), np.nan, dtype=dtype)
        buffer[1:-1, 1:-2] = values
        values = buffer[1:-1, 1:-2]
    exact = values.astype(np.float64)
    return values, (exact.T if transposed else exact)


def assert_within(out, reference, scale, terms: int, dtype: str, what: str) -> None:
    """Asserts |out - reference| <= (terms + 4) * eps * scale + 4 * eps * |reference| for every element."""
    eps = np.finfo(dtype).eps
    out = np.asarray(out, dtype=np.float64)
    assert out.shape == reference.shape, f"{what}: shape {out.shape} != {reference.shape}"
    assert not np.isnan(out).any(), f"{what}: {np.isnan(out).sum()} elements unwritten or NaN"
    bound = (terms + 4) * eps * scale + 4 * eps * np.abs(reference) + np.finfo(dtype).tiny
    error = np.abs(out - reference)
    bad = np.argwhere(error > bound)
    assert bad.size == 0, (f"{what}: {len(bad)} elements off, first at {tuple(bad[0])}: "
                           f"{out[tuple(bad[0])]} vs {reference[tuple(bad[0])]}")


def activate(z, activation: str):
    if activation == "relu":
        return np.maximum(z, 0)
    if activation == "clamp":
        return np.minimum(np.maximum(z, CLAMP[0]), CLAMP[1])
    if activation == "sigmoid":
        return 1 / (1 + np.exp(-z))
    return z


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("shape_index", range(len(SHAPES)))
def test_product_of_every_instantiation_on_odd_shapes(launcher, dtype, tile, shape_index):
    m, k, n = SHAPES[shape_index]
    # The shapes take turns at the four transpose combinations; the next test covers all four on one shape.
    trans_a, trans_b = list(itertools.product([False, True], repeat=2))[shape_index % 4]
    rng = np.random.default_rng(shape_index)
    a, a64 = operand(rng, m, k, dtype, trans_a, padded=shape_index % 2 == 1)
    b, b64 = operand(rng, k, n, dtype, trans_b, padded=shape_index % 3 == 1)
    out = kernels.gemm(a, b, trans_a=trans_a, trans_b=trans_b, tile=tile, launcher=launcher)
    assert out.dtype == dtype
    assert_within(out, a64 @ b64, np.abs(a64) @ np.abs(b64), k, dtype, f"{tile} {dtype} {m}x{k}x{n}")


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
def test_transposed_operands_are_read_in_place(launcher, dtype, tile, trans_a, trans_b):
    rng = np.random.default_rng(1)
    m, k, n = 17, 33, 65
    a, a64 = operand(rng, m, k, dtype, trans_a)
    b, b64 = operand(rng, k, n, dtype, trans_b)
    out = kernels.gemm(a, b, trans_a=trans_a, trans_b=trans_b, tile=tile, launcher=launcher)
    assert_within(out, a64 @ b64, np.abs(a64) @ np.abs(b64), k, dtype, f"trans {trans_a} {trans_b}")
    # A transposed view (swapped strides) with no flag is the same product as the flag on the stored array.
    if trans_a or trans_b:
        view = kernels.gemm(a.T if trans_a else a, b.T if trans_b else b, tile=tile, launcher=launcher)
        np.testing.assert_array_equal(view, out)


@pytest.mark.parametrize("dtype", list(kernels.GEMM_TILES))
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("shape", [(17, 33, 65), (130, 70, 257)])
def test_fused_epilogue_bias_and_activation(launcher, dtype, activation, with_bias, shape):
    m, k, n = shape
    seed = 2 * ACTIVATIONS.index(activation) + int(with_bias)  # fixed: hash() is salted per process
    rng = np.random.default_rng(seed)
    x, x64 = operand(rng, m, k, dtype, False)
    weight, w64t = operand(rng, k, n, dtype, True)  # stored (n, k), as nn.Linear holds it
    bias = rng.standard_normal(n).astype(dtype) if with_bias else None
    bias64 = bias.astype(np.float64) if with_bias else np.zeros(n)
    clamp = {"clamp_min": CLAMP[0], "clamp_max": CLAMP[1]} if activation == "clamp" else {}
    out, z = kernels.gemm(x, weight, trans_b=True, bias=bias, activation=activation, return_preactivation=True,
                          launcher=launcher, **clamp)
    z64 = x64 @ w64t + bias64
    scale = np.abs(x64) @ np.abs(w64t) + np.abs(bias64)
    assert_within(z, z64, scale, k, dtype, f"pre-activation (seed {seed})")
    assert_within(out, activate(z64, activation), scale, k, dtype, f"{activation} output (seed {seed})")
    # The activation is applied to the very pre-activation the kernel wrote: exactly for relu and clamp, to a
    # few units in the last place for sigmoid.
    if activation == "sigmoid":
        assert_within(out, activate(z.astype(np.float64), activation), 0, 0, dtype, "sigmoid of z")
    else:
        np.testing.assert_array_equal(out, activate(z.astype(np.float64), activation).astype(dtype))


def linear_reference_grads(grad, x64, w64, saved, activation):
    """float64 gradients of activation(x @ w.T + b), the derivative taken from the kernel's own saved tensor."""
    g, s = grad.astype(np.float64), None if saved is None else saved.astype(np.float64)
    if activation == "relu":
        d_z = np.where(s <= 0, 0.0, g)
    elif activation == "clamp":
        d_z = np.where((s >= CLAMP[0]) & (s <= CLAMP[1]), g, 0.0)
    elif activation == "sigmoid":
        d_z = g * (1 - s) * s
    else:
        d_z = g
    return d_z, d_z @ w64, d_z.T @ x64, d_z.sum(axis=0)


@pytest.mark.parametrize("dtype", list(kernels.GEMM_TILES))
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (17, 33, 65), (130, 70, 257)])
def test_fused_linear_backward(launcher, dtype, activation, shape):
    m, k, n = shape
    rng = np.random.default_rng(7)
    x, x64 = operand(rng, m, k, dtype, False)
    weight, _ = operand(rng, n, k, dtype, False)
    w64 = weight.astype(np.float64)
    bias = rng.standard_normal(n).astype(dtype)
    clamp = {"clamp_min": CLAMP[0], "clamp_max": CLAMP[1]} if activation == "clamp" else {}
    _, saved = kernels.linear_forward(x, weight, bias, activation, launcher=launcher, **clamp)
    assert (saved is None) == (activation == "none")
    grad = rng.standard_normal((m, n)).astype(dtype)
    gx, gw, gb = kernels.linear_backward(grad, x, weight, saved, activation, launcher=launcher, **clamp)
    d_z, gx64, gw64, gb64 = linear_reference_grads(grad, x64, w64, saved, activation)
    abs_dz = np.abs(d_z)
    assert_within(gx, gx64, abs_dz @ np.abs(w64), n + 3, dtype, "grad_x")
    assert_within(gw, gw64, abs_dz.T @ np.abs(x64), m + 3, dtype, "grad_weight")
    assert_within(gb, gb64, abs_dz.sum(axis=0), m + 3, dtype, "grad_bias")


@pytest.mark.parametrize("dtype", list(kernels.GEMM_TILES))
def test_linear_backward_computes_only_what_is_needed(launcher, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 9)).astype(dtype)
    weight = rng.standard_normal((11, 9)).astype(dtype)
    _, saved = kernels.linear_forward(x, weight, None, "sigmoid", launcher=launcher)
    grad = rng.standard_normal((40, 11)).astype(dtype)
    full = kernels.linear_backward(grad, x, weight, saved, "sigmoid", launcher=launcher)
    before = len(launcher.launches)
    only_bias = kernels.linear_backward(grad, x, weight, saved, "sigmoid", needs_input_grad=(False, False, True),
                                        launcher=launcher)
    assert only_bias[0] is None and only_bias[1] is None
    # No product to ride on: one pass of the column-sum kernel, which stores no dZ.
    assert [kernel for kernel, _, _ in launcher.launches[before:]] == ["gradcore::activation_backward<%s>" % (
        "float" if dtype == "float32" else "double")]
    assert dict(zip(("grad", "saved", "dz"), launcher.last_arguments))["dz"] == ("ptr", None)
    np.testing.assert_allclose(only_bias[2], full[2], rtol=10 * np.finfo(dtype).eps * 40, atol=1e-6)
    no_bias = kernels.linear_backward(grad, x, weight, saved, "sigmoid", needs_input_grad=(True, True, False),
                                      launcher=launcher)
    assert no_bias[2] is None
    np.testing.assert_array_equal(no_bias[0], full[0])
    np.testing.assert_array_equal(no_bias[1], full[1])


@pytest.mark.parametrize("dtype", list(kernels.GEMM_TILES))
def test_clamp_gradient_passes_at_the_bounds_and_relu_gradient_does_not_at_zero(launcher, dtype):
    # Small integers make every product and sum exact, so many pre-activations land exactly on the bounds.
    rng = np.random.default_rng(5)
    x = rng.integers(-2, 3, size=(24, 6)).astype(dtype)
    weight = rng.integers(-2, 3, size=(10, 6)).astype(dtype)
    z = x.astype(np.float64) @ weight.T.astype(np.float64)
    assert (z == 0).any() and (z == 3).any()
    grad = rng.standard_normal((24, 10)).astype(dtype)

    y, saved = kernels.linear_forward(x, weight, None, "clamp", 0.0, 3.0, launcher=launcher)
    np.testing.assert_array_equal(saved, z)
    np.testing.assert_array_equal(y, np.clip(z, 0, 3))
    gx, gw, _ = kernels.linear_backward(grad, x, weight, saved, "clamp", 0.0, 3.0, launcher=launcher)
    d_z = np.where((z >= 0) & (z <= 3), grad, 0)  # inclusive, as PyTorch's clamp
    np.testing.assert_allclose(gx, d_z @ weight, rtol=1e-5)
    np.testing.assert_allclose(gw, d_z.T @ x, rtol=1e-5)

    y, saved = kernels.linear_forward(x, weight, None, "relu", launcher=launcher)
    gx, _, _ = kernels.linear_backward(grad, x, weight, saved, "relu", needs_input_grad=(True, False, False),
                                       launcher=launcher)
    np.testing.assert_allclose(gx, np.where(z > 0, grad, 0) @ weight, rtol=1e-5)  # 0 at z == 0, as relu


@pytest.mark.parametrize("dtype", list(kernels.GEMM_TILES))
def test_batched_products_broadcast_a_batch_of_one(launcher, dtype):
    rng = np.random.default_rng(11)
    a = rng.standard_normal((3, 19, 21)).astype(dtype)
    b = rng.standard_normal((1, 21, 23)).astype(dtype)
    out = kernels.gemm(a, b, launcher=launcher)
    assert out.shape == (3, 19, 23)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert_within(out, a64 @ b64, np.abs(a64) @ np.abs(b64), 21, dtype, "batched")
    out_t = kernels.gemm(b, a, trans_a=True, trans_b=True, launcher=launcher)  # (1 -> 3, 23, 19)
    assert_within(out_t, np.swapaxes(b64, 1, 2) @ np.swapaxes(a64, 1, 2),
                  np.swapaxes(np.abs(b64), 1, 2) @ np.swapaxes(np.abs(a64), 1, 2), 21, dtype, "batched, transposed")


def test_empty_inner_dimension_gives_the_bias(launcher):
    x = np.zeros((5, 0), dtype=np.float32)
    weight = np.zeros((4, 0), dtype=np.float32)
    bias = np.arange(4, dtype=np.float32)
    y, _ = kernels.linear_forward(x, weight, bias, launcher=launcher)
    np.testing.assert_array_equal(y, np.broadcast_to(bias, (5, 4)))


def test_tile_choice_fills_the_multiprocessors():
    # Large tiles only when their grid still covers every multiprocessor.
    assert kernels.choose_tile(4096, 4096, "float32", 132) == "large"
    assert kernels.choose_tile(256, 1024, "float32", 132) == "small"
    assert kernels.choose_tile(1024, 1024, "float32", 132) == "medium"
    assert kernels.choose_tile(1, 1, "float64", 132) == "small"


def test_launch_shape_follows_the_tile(launcher):
    a = np.ones((130, 70), dtype=np.float32)
    b = np.ones((70, 257), dtype=np.float32)
    kernels.gemm(a, b, tile="medium", launcher=launcher)
    kernel, grid, block = launcher.launches[-1]
    assert kernel == "gradcore::gemm<float, 64, 64, 8, 4, 4>"
    assert grid == (5, 3, 1) and block == (256, 1, 1)  # ceil(257 / 64), ceil(130 / 64); (64 / 4) ** 2 threads


def test_wrong_arguments_fail_at_the_wrapper(launcher):
    a = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="inner dimensions"):
        kernels.gemm(a, np.ones((5, 2), dtype=np.float32), launcher=launcher)
    with pytest.raises(TypeError, match="float32"):
        kernels.gemm(a, np.ones((4, 2), dtype=np.float64), launcher=launcher)
    with pytest.raises(ValueError, match="bias"):
        kernels.gemm(a, np.ones((4, 2), dtype=np.float32), bias=np.ones(3, dtype=np.float32), launcher=launcher)
    with pytest.raises(ValueError, match="activation"):
        kernels.gemm(a, np.ones((4, 2), dtype=np.float32), activation="tanh", launcher=launcher)
    with pytest.raises(TypeError, match="float32 or float64"):
        kernels.gemm(a.astype(np.int64), a.T.astype(np.int64), launcher=launcher)


# -- vector loads ------------------------------------------------------------------------------------------
# Where an operand is laid out for it, the GEMM copies its tiles in vectors of gemm_vector_widths elements
# (8 or 16 bytes) instead of element by element. The checks below run both paths on the same products, read
# the flags the wrapper passed back from the launch, and make the emulation fail on any misaligned vector.

def vector_flags(launcher) -> tuple:
    """(a_vector, b_vector) of the latest GEMM launch."""
    arguments = dict(zip(kernels.GEMM_PARAMETERS, launcher.last_gemm_arguments))
    return arguments["a_vector"][1], arguments["b_vector"][1]


def stored(values: np.ndarray, alignment: int, *, shift: int = 0, row_pad: int = 0) -> np.ndarray:
    """Returns a copy of the 2-d ``values`` at an address that is a multiple of ``alignment`` bytes but not of
    twice that (so an operand passes for exactly that alignment), moved ``shift`` elements on, with rows
    ``row_pad`` elements longer than needed. The buffer around it is NaN: a read past the matrix's last column
    or row (a vector that sticks out) puts a NaN into the product."""
    rows, cols = values.shape
    line = cols + row_pad
    itemsize = values.itemsize
    buffer = np.full((rows + 2) * line + 4 * alignment // itemsize + shift, np.nan, dtype=values.dtype)
    address = buffer.__array_interface__["data"][0]
    start = ((alignment - address) % (2 * alignment)) // itemsize + shift
    view = buffer[start:start + rows * line].reshape(rows, line)[:, :cols]
    view[...] = values
    assert (view.__array_interface__["data"][0] - shift * itemsize) % (2 * alignment) == alignment
    return view


def vector_operand(rng, rows: int, cols: int, dtype: str, transposed: bool, width: int, shift: int = 0,
                   row_pad: int | None = None):
    """``operand`` stored by ``stored`` for vectors of ``width`` elements; returns (array, op(array) in float64)."""
    values, exact = operand(rng, rows, cols, dtype, transposed)
    pad = width if row_pad is None else row_pad
    return stored(values, width * values.itemsize, shift=shift, row_pad=pad), exact


def vector_shape(width: int) -> tuple:
    """(M, K, N): odd multiples of the vector width, so that a kernel with wider vectors than the wrapper
    assumes would read past a matrix, and multiples of no tile."""
    return 9 * width, 5 * width, 11 * width


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("shift_a,shift_b", [(0, 0), (1, 0), (0, 1)], ids=["aligned", "a_off_by_one", "b_off_by_one"])
def test_vector_loads_where_aligned_and_scalar_loads_elsewhere(launcher, dtype, tile, trans_a, trans_b, shift_a,
                                                               shift_b):
    a_width, b_width = kernels.gemm_vector_widths(dtype, tile)
    width = max(a_width, b_width)
    m, k, n = vector_shape(width)
    rng = np.random.default_rng(21)
    a, a64 = vector_operand(rng, m, k, dtype, trans_a, a_width, shift_a)
    b, b64 = vector_operand(rng, k, n, dtype, trans_b, b_width, shift_b)
    out = kernels.gemm(a, b, trans_a=trans_a, trans_b=trans_b, tile=tile, launcher=launcher)
    assert_within(out, a64 @ b64, np.abs(a64) @ np.abs(b64), k, dtype, f"{tile} {dtype} vector loads")
    # An operand one element off its alignment takes the scalar path; an aligned one the vector path.
    assert vector_flags(launcher) == (int(shift_a == 0), int(shift_b == 0))


# Layouts that the vector path must refuse: rows whose length is not a multiple of the width, an extent along
# the contiguous dimension that is not one, and no contiguous dimension at all.
REFUSED_LAYOUTS = ["odd_row_stride", "odd_extent", "no_unit_stride"]


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("layout", REFUSED_LAYOUTS)
@pytest.mark.parametrize("which", ["a", "b"])
def test_layouts_that_do_not_fit_vectors_take_the_scalar_path(launcher, dtype, tile, layout, which):
    widths = dict(zip("ab", kernels.gemm_vector_widths(dtype, tile)))
    m, k, n = vector_shape(max(widths.values()))
    if layout == "odd_extent":
        k += 1  # the contiguous dimension of a plain A and of a transposed B
    rng = np.random.default_rng(22)
    shapes = {"a": (m, k), "b": (k, n)}
    arrays = {}
    for name in "ab":
        rows, cols = shapes[name]
        transposed = name == "b" and layout == "odd_extent"  # B's k contiguous: k is the extent that is odd
        if name == which and layout == "no_unit_stride":
            values, exact = operand(rng, rows, 2 * cols, dtype, False)
            arrays[name] = (stored(values, 64)[:, ::2], exact[:, ::2])
        elif name == which and layout == "odd_row_stride":
            arrays[name] = vector_operand(rng, rows, cols, dtype, False, widths[name], row_pad=1)
        else:
            array, exact = vector_operand(rng, rows, cols, dtype, transposed, widths[name])
            arrays[name] = (array.T if transposed else array), exact
    (a, a64), (b, b64) = arrays["a"], arrays["b"]
    out = kernels.gemm(a, b, tile=tile, launcher=launcher)
    assert_within(out, a64 @ b64, np.abs(a64) @ np.abs(b64), k, dtype, f"{layout} {which}")
    expected = {"a": 1, "b": 1}
    expected[which] = 0
    if layout == "odd_extent":
        expected = {"a": 0, "b": 0}  # k is the contiguous dimension of both here
    assert vector_flags(launcher) == (expected["a"], expected["b"])


def test_vector_widths_of_the_tiles():
    # 16 bytes where a thread copies that many elements per step, fewer where it copies fewer.
    assert {(dtype, tile): kernels.gemm_vector_widths(dtype, tile) for dtype, tile in INSTANTIATIONS} == {
        ("float32", "large"): (4, 4), ("float32", "medium"): (2, 2), ("float32", "small"): (4, 4),
        ("float64", "large"): (2, 2), ("float64", "small"): (2, 2)}


def test_vector_width_decision():
    width = 4
    plain = stored(np.ones((8, 12), np.float32), 16)
    assert kernels._vector_width(plain, operand="a", transpose=False, width=width) == 4  # along k
    assert kernels._vector_width(plain, operand="b", transpose=False, width=width) == 4  # along n
    assert kernels._vector_width(plain.T, operand="a", transpose=False, width=width) == 4  # along m
    assert kernels._vector_width(plain, operand="a", transpose=True, width=width) == 4
    assert kernels._vector_width(plain, operand="a", transpose=False, width=1) == 1
    # The pointer, or the saved tensor's pointer, off by one element.
    shifted = stored(np.ones((8, 12), np.float32), 16, shift=1)
    assert kernels._vector_width(shifted, operand="a", transpose=False, width=width) == 1
    assert kernels._vector_width(plain, operand="a", transpose=False, width=width, saved=shifted) == 1
    # 8-byte alignment is enough for vectors of two floats, not of four.
    eight = stored(np.ones((8, 12), np.float32), 8)
    assert kernels._vector_width(eight, operand="a", transpose=False, width=2) == 2
    assert kernels._vector_width(eight, operand="a", transpose=False, width=4) == 1
    # Rows of 13, an extent of 10, no unit stride.
    assert kernels._vector_width(stored(np.ones((8, 12), np.float32), 16, row_pad=1), operand="a",
                                 transpose=False, width=width) == 1
    assert kernels._vector_width(stored(np.ones((8, 10), np.float32), 16), operand="a", transpose=False,
                                 width=width) == 1
    assert kernels._vector_width(plain[:, ::2], operand="a", transpose=False, width=2) == 1
    # A batch stride that is not a multiple of the width refuses; a batch of one is broadcast (stride 0).
    flat = stored(np.ones((1, 3 * 8 * 12 + 2), np.float32), 16)[0]
    odd_batches = np.lib.stride_tricks.as_strided(flat, (3, 8, 12), (4 * (8 * 12 + 1), 4 * 12, 4))
    assert kernels._vector_width(odd_batches, operand="a", transpose=False, width=width) == 1
    assert kernels._vector_width(odd_batches[:1], operand="a", transpose=False, width=width) == 4


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("which", ["a", "b"])
def test_the_flag_really_switches_the_kernel_to_vector_loads(launcher, monkeypatch, dtype, tile, which):
    """Forced onto a misaligned operand, the vector path makes the emulation report the misaligned access a
    GPU would fault on: so the flag reaches the kernel, the kernel's vector loads run, and the alignment the
    wrapper checks for is the one the kernel needs."""
    widths = dict(zip("ab", kernels.gemm_vector_widths(dtype, tile)))
    m, k, n = vector_shape(max(widths.values()))
    rng = np.random.default_rng(23)
    a, _ = vector_operand(rng, m, k, dtype, False, widths["a"], shift=int(which == "a"))
    b, _ = vector_operand(rng, k, n, dtype, False, widths["b"], shift=int(which == "b"))
    monkeypatch.setattr(kernels, "_vector_width", lambda array, *, width, **_: width)
    monkeypatch.setattr(kernels, "_GEMM_PLANS", {})  # plans made before hold the real flags
    with pytest.raises(RuntimeError, match="misaligned"):
        kernels.gemm(a, b, tile=tile, launcher=launcher)


# -- the prologue on either operand ------------------------------------------------------------------------

def saved_values(rng, shape, dtype: str, activation: str) -> np.ndarray:
    """What the forward pass saves for ``activation``: relu's output (exact zeros among it), sigmoid's output,
    clamp's pre-activation (values on both bounds among it)."""
    z = rng.standard_normal(shape)
    if activation == "relu":
        return np.maximum(z, 0).astype(dtype)
    if activation == "sigmoid":
        return (1 / (1 + np.exp(-z))).astype(dtype)
    z.reshape(-1)[:2] = CLAMP
    return z.astype(dtype)


def derivative_applied(values64, saved, activation: str, dtype: str):
    """values * activation'(saved) in float64, with the clamp bounds as the kernel receives them (in dtype)."""
    s = saved.astype(np.float64)
    if activation == "relu":
        return np.where(s <= 0, 0.0, values64)
    if activation == "clamp":
        low, high = (float(np.asarray(bound, dtype=dtype)) for bound in CLAMP)
        return np.where((s >= low) & (s <= high), values64, 0.0)
    if activation == "sigmoid":
        return values64 * (1 - s) * s
    return values64


@pytest.mark.parametrize("dtype", list(kernels.GEMM_TILES))
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("saved_operand", ["a", "b"])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("shift", [0, 1], ids=["vector", "scalar"])
def test_prologue_on_either_operand(launcher, dtype, activation, saved_operand, transposed, shift):
    tile = list(kernels.GEMM_TILES[dtype])[-1]
    widths = dict(zip("ab", kernels.gemm_vector_widths(dtype, tile)))
    m, k, n = vector_shape(max(widths.values()))
    rng = np.random.default_rng(31)
    trans = {"a": transposed and saved_operand == "a", "b": transposed and saved_operand == "b"}
    a, a64 = vector_operand(rng, m, k, dtype, trans["a"], widths["a"])
    b, b64 = vector_operand(rng, k, n, dtype, trans["b"], widths["b"])
    target = a if saved_operand == "a" else b
    # saved has the operand's shape and strides as passed (before op); shift 1 misaligns it alone.
    saved = stored(saved_values(rng, target.shape, dtype, activation), widths[saved_operand] * target.itemsize,
                   shift=shift, row_pad=target.strides[0] // target.itemsize - target.shape[1])
    saved_op = saved.T if trans[saved_operand] else saved
    clamp = {"clamp_min": CLAMP[0], "clamp_max": CLAMP[1]} if activation == "clamp" else {}
    out = kernels.gemm(a, b, trans_a=trans["a"], trans_b=trans["b"], saved=saved, saved_activation=activation,
                       saved_operand=saved_operand, tile=tile, launcher=launcher, **clamp)
    if saved_operand == "a":
        a64 = derivative_applied(a64, saved_op, activation, dtype)
    else:
        b64 = derivative_applied(b64, saved_op, activation, dtype)
    assert_within(out, a64 @ b64, np.abs(a64) @ np.abs(b64), k + 3, dtype, f"prologue on {saved_operand}")
    expected = {"a": 1, "b": 1}
    expected[saved_operand] = int(shift == 0 or activation == "none")  # "none" reads no saved tensor
    assert vector_flags(launcher) == (expected["a"], expected["b"])


@pytest.mark.parametrize("dtype", list(kernels.GEMM_TILES))
def test_mm_backward_with_the_clamp_derivative_on_the_right(launcher, dtype):
    """h = clamp(x @ w1, min=0): the gradient of w1 is x.T @ (g * clamp'(z)), the factor on the right operand."""
    rng = np.random.default_rng(32)
    x = rng.standard_normal((37, 19)).astype(dtype)
    w1 = rng.standard_normal((19, 23)).astype(dtype)
    z = kernels.gemm(x, w1, launcher=launcher)
    g = rng.standard_normal((37, 23)).astype(dtype)
    grad_w1 = kernels.gemm(x, g, trans_a=True, saved=z, saved_activation="clamp", saved_operand="b", clamp_min=0,
                           launcher=launcher)
    d_z = np.where(z >= 0, g, 0).astype(np.float64)
    x64 = x.astype(np.float64)
    assert_within(grad_w1, x64.T @ d_z, np.abs(x64.T) @ np.abs(d_z), 37, dtype, "grad w1")


@pytest.mark.parametrize("saved_operand", ["a", "b"])
def test_prologue_over_a_broadcast_batch(launcher, saved_operand):
    rng = np.random.default_rng(33)
    a = rng.standard_normal((3, 9, 14))
    b = rng.standard_normal((1, 14, 6))
    target = a if saved_operand == "a" else b
    saved = saved_values(rng, target.shape, "float64", "sigmoid")
    out = kernels.gemm(a, b, saved=saved, saved_activation="sigmoid", saved_operand=saved_operand,
                       launcher=launcher)
    if saved_operand == "a":
        a = a * (1 - saved) * saved
    else:
        b = b * (1 - saved) * saved
    assert_within(out, a @ b, np.abs(a) @ np.abs(b), 14 + 3, "float64", "batched prologue")


def test_wrong_prologue_arguments_fail_at_the_wrapper(launcher):
    a = np.ones((3, 4), dtype=np.float32)
    b = np.ones((4, 5), dtype=np.float32)
    with pytest.raises(ValueError, match="saved_operand"):
        kernels.gemm(a, b, saved=a, saved_activation="relu", saved_operand="c", launcher=launcher)
    with pytest.raises(ValueError, match="shape and strides of operand b"):
        kernels.gemm(a, b, saved=a, saved_activation="relu", saved_operand="b", launcher=launcher)
    with pytest.raises(ValueError, match="shape and strides of operand a"):
        kernels.gemm(a, b, saved=np.asfortranarray(a), saved_activation="relu", launcher=launcher)
    with pytest.raises(ValueError, match="activation"):
        kernels.gemm(a, b, saved=a, saved_activation="tanh", launcher=launcher)
