"""Every path of kernels/gemm.cu against float64 numpy computed from the inputs alone, with the tile forced.

Each instantiation of ``GEMM_TILES`` (parametrised from the backend's own table, so a new tile is covered without
editing this file) runs every epilogue (bias or none, times every activation), the prologue on either operand,
the vector and the scalar load path, a single matrix and a batch, through ``gemm``, ``linear_forward`` and
``linear_backward`` with ``tile=`` set: nothing is left to the tile chooser. The expected values never come from
a kernel's output: the saved tensor of ``linear_forward`` is itself checked against the oracle, and the
gradients of ``linear_backward`` are computed from ``x``, ``weight``, ``bias`` and the upstream gradient.

The data are multiples of 1/8 in [-1, 1] (bias and gradients too), so every product and every partial sum is
exact in float32 and float64 for these sizes: the products, the pre-activation, relu, clamp (whose bounds are
multiples of 1/4 and are hit exactly by some elements) and their masked gradients must equal the oracle
exactly, which also decides the masks at 0 and at the bounds without rounding doubts. Only sigmoid rounds; it
is held to a few units in the last place. Every output array is poisoned with NaN between guard bands by the
emulated launcher, and the inputs lie in NaN-padded buffers, so an unwritten element, a write past an output
or a read past an input fails. Each case's data come from a fixed seed derived from its name, printed in every
failure message.

The path each launch took is read back from its arguments (``a_vector`` / ``b_vector``), so "vector" cases
prove that the vector path ran and "scalar" cases that the scalar path did.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from gradcore.backend import kernels

INSTANTIATIONS = [pytest.param(dtype, tile, id=f"{dtype}-{tile}")
                  for dtype, tiles in kernels.GEMM_TILES.items() for tile in tiles]
ACTIVATIONS = ["none", "relu", "clamp", "sigmoid"]
CLAMP = (-0.5, 0.75)  # exact in both dtypes, and hit exactly by multiples of 1/8
PATHS = ["vector", "scalar"]
LAYOUTS = ["matrix", "batched"]
BATCHES = 3


def seed_of(*parts) -> int:
    """A fixed seed for one case, the same in every process (unlike ``hash``, which is salted per process)."""
    return zlib.crc32(repr(parts).encode())


class RecordingLauncher:
    """Forwards to the emulated launcher and keeps (kernel, {parameter: value}) of every launch, so that a test
    of ``linear_backward`` can see the path of each of its launches."""

    def __init__(self, emulated) -> None:
        self._emulated = emulated
        self.xp = emulated.xp
        self.calls: list = []

    def multiprocessor_count(self) -> int:
        return self._emulated.multiprocessor_count()

    def empty(self, shape: tuple, dtype: str):
        return self._emulated.empty(shape, dtype)

    def launch(self, kernel: str, grid: tuple, block: tuple, args, dtype) -> None:
        self._emulated.launch(kernel, grid, block, args, dtype)
        if kernel.startswith("gradcore::gemm<"):
            self.calls.append((kernel, dict(zip(kernels.GEMM_PARAMETERS, (value for _, value in args)))))
        else:
            self.calls.append((kernel, None))


@pytest.fixture
def recorder(launcher):
    return RecordingLauncher(launcher)


def dyadic(rng, shape) -> np.ndarray:
    """Multiples of 1/8 in [-1, 1], in float64."""
    return rng.integers(-8, 9, size=shape) / 8.0


def placed(values: np.ndarray, dtype: str, path: str, width: int, *, pad: bool = True) -> np.ndarray:
    """Returns ``values`` (2-d or 3-d) in ``dtype``, laid out for ``path``, inside a NaN-filled buffer.

    "vector": rows padded by ``width`` NaN elements (so the row stride stays a multiple of the width and a
    vector read past a row's end brings a NaN in), the start aligned to exactly ``width`` elements (a multiple
    of that alignment, not of twice it). "scalar": the same one element further on, so that no vector load may
    be used; a kernel that used one anyway fails the emulation's alignment check. ``pad=False``: rows not
    padded (a contiguous array, which the wrappers take as it is where they would copy a strided one).
    """
    *outer, rows, cols = values.shape
    line = cols + (width if pad else 0)
    count = int(np.prod(outer, dtype=np.int64)) * rows * line
    itemsize = np.dtype(dtype).itemsize
    alignment = width * itemsize
    shift = 1 if path == "scalar" else 0
    buffer = np.full(count + 4 * width + line + 1, np.nan, dtype=dtype)
    address = buffer.__array_interface__["data"][0]
    start = ((alignment - address) % (2 * alignment)) // itemsize + shift
    view = buffer[start:start + count].reshape(*outer, rows, line)[..., :cols]
    view[...] = values
    return view


def exact(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def activate(z: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.maximum(z, 0.0)
    if activation == "clamp":
        return np.minimum(np.maximum(z, CLAMP[0]), CLAMP[1])
    if activation == "sigmoid":
        return sigmoid(z)
    return z


def derivative_from_preactivation(z: np.ndarray, activation: str) -> np.ndarray:
    """d activation / d z at the exact pre-activation: PyTorch's conventions (relu' = 0 at 0, clamp' = 1 on
    both bounds)."""
    if activation == "relu":
        return (z > 0).astype(np.float64)
    if activation == "clamp":
        return ((z >= CLAMP[0]) & (z <= CLAMP[1])).astype(np.float64)
    if activation == "sigmoid":
        return sigmoid(z) * (1 - sigmoid(z))
    return np.ones_like(z)


def derivative_from_saved(saved: np.ndarray, activation: str) -> np.ndarray:
    """The prologue's factor from a given saved tensor: relu's and sigmoid's output, clamp's pre-activation."""
    if activation == "relu":
        return (saved > 0).astype(np.float64)
    if activation == "clamp":
        return ((saved >= CLAMP[0]) & (saved <= CLAMP[1])).astype(np.float64)
    if activation == "sigmoid":
        return (1 - saved) * saved
    return np.ones_like(saved)


def assert_matches(out, reference: np.ndarray, *, rounding: np.ndarray | float, dtype: str, what: str,
                   seed: int) -> None:
    """Asserts ``|out - reference| <= rounding * eps`` element by element (rounding 0: exactly equal), that
    nothing is NaN (unwritten) and that the shapes agree; the message names the case and its seed."""
    out = np.asarray(out)
    assert out.dtype == np.dtype(dtype), f"{what} (seed {seed}): dtype {out.dtype}, expected {dtype}"
    out = out.astype(np.float64)
    assert out.shape == reference.shape, f"{what} (seed {seed}): shape {out.shape} != {reference.shape}"
    unwritten = np.isnan(out)
    assert not unwritten.any(), (f"{what} (seed {seed}): {unwritten.sum()} elements NaN (unwritten or read "
                                 f"past an input), first at {tuple(np.argwhere(unwritten)[0])}")
    bound = np.broadcast_to(np.asarray(rounding, dtype=np.float64) * np.finfo(dtype).eps, reference.shape)
    error = np.abs(out - reference)
    bad = np.argwhere(error > bound)
    assert bad.size == 0, (f"{what} (seed {seed}): {len(bad)} of {out.size} elements off, first at "
                           f"{tuple(bad[0])}: {out[tuple(bad[0])]!r} vs {reference[tuple(bad[0])]!r} "
                           f"(largest error {error.max():.3g})")


def tile_shape(dtype: str, tile: str) -> tuple:
    """(M, K, N) for one tile: two blocks each way, the last ones partial; three steps of K, the last partial;
    every extent a multiple of 4, so that both operands fit the vector path in either layout."""
    bm, bn, bk, _tm, _tn = kernels.GEMM_TILES[dtype][tile]
    return bm + 12, 2 * bk + 4, bn + 20


def expected_flag(path: str) -> int:
    return int(path == "vector")


def last_gemm(recorder) -> dict:
    gemms = [arguments for kernel, arguments in recorder.calls if arguments is not None]
    return gemms[-1]


# -- forward: the epilogue ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_epilogue_of_every_tile(recorder, dtype, tile, activation, path, layout):
    """op(A) op(B) + bias, the pre-activation it writes, and the activation of it, with and without a bias.

    "matrix": A plain, B transposed (nn.Linear's layout: both walked along k); "batched": A transposed and
    batched, B a broadcast batch of one (both walked along their other dimension)."""
    m, k, n = tile_shape(dtype, tile)
    width = max(kernels.gemm_vector_widths(dtype, tile))
    seed = seed_of("epilogue", dtype, tile, activation, path, layout)
    rng = np.random.default_rng(seed)
    if layout == "matrix":
        trans_a, trans_b = False, True
        a64, b64 = dyadic(rng, (m, k)), dyadic(rng, (n, k))
        op_a, op_b = a64, b64.T
    else:
        trans_a, trans_b = True, False
        a64, b64 = dyadic(rng, (BATCHES, k, m)), dyadic(rng, (1, k, n))
        op_a, op_b = np.swapaxes(a64, 1, 2), b64
    a, b = placed(a64, dtype, path, width), placed(b64, dtype, path, width)
    for with_bias in (False, True):
        bias64 = dyadic(rng, (n,)) if with_bias else np.zeros(n)
        bias = bias64.astype(dtype) if with_bias else None
        clamp = {"clamp_min": CLAMP[0], "clamp_max": CLAMP[1]} if activation == "clamp" else {}
        out, z = kernels.gemm(a, b, trans_a=trans_a, trans_b=trans_b, bias=bias, activation=activation,
                              return_preactivation=True, tile=tile, launcher=recorder, **clamp)
        what = f"{tile} {dtype} {layout} {path} {activation} bias={with_bias}"
        arguments = last_gemm(recorder)
        assert (arguments["a_vector"], arguments["b_vector"]) == (expected_flag(path),) * 2, what
        z64 = op_a @ op_b + bias64
        assert_matches(z, z64, rounding=0, dtype=dtype, what=f"{what}: pre-activation", seed=seed)
        assert_matches(out, activate(z64, activation), rounding=4 if activation == "sigmoid" else 0,
                       dtype=dtype, what=f"{what}: output", seed=seed)
        # Without return_preactivation nothing is written there, and the output is the same.
        alone = kernels.gemm(a, b, trans_a=trans_a, trans_b=trans_b, bias=bias, activation=activation,
                             tile=tile, launcher=recorder, **clamp)
        assert last_gemm(recorder)["preactivation"] is None, what
        np.testing.assert_array_equal(alone, out, err_msg=f"{what} (seed {seed})")


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("path", PATHS)
def test_linear_forward_output_and_saved_tensor_of_every_tile(recorder, dtype, tile, activation, path):
    """``linear_forward``'s output and, on its own, the tensor it saves for backward: the output for relu and
    sigmoid, the pre-activation for clamp, nothing for "none"."""
    rows, _, out_features = tile_shape(dtype, tile)
    in_features = out_features - 8  # more than one block of columns in grad_weight's product too
    width = max(kernels.gemm_vector_widths(dtype, tile))
    seed = seed_of("linear_forward", dtype, tile, activation, path)
    rng = np.random.default_rng(seed)
    x64, w64, b64 = dyadic(rng, (rows, in_features)), dyadic(rng, (out_features, in_features)), dyadic(
        rng, (out_features,))
    x, weight = placed(x64, dtype, path, width), placed(w64, dtype, path, width)
    clamp = {"clamp_min": CLAMP[0], "clamp_max": CLAMP[1]} if activation == "clamp" else {}
    y, saved = kernels.linear_forward(x, weight, b64.astype(dtype), activation, tile=tile, launcher=recorder,
                                      **clamp)
    what = f"linear_forward {tile} {dtype} {path} {activation}"
    arguments = last_gemm(recorder)
    assert (arguments["a_vector"], arguments["b_vector"]) == (expected_flag(path),) * 2, what
    z64 = x64 @ w64.T + b64
    y64 = activate(z64, activation)
    rounding = 4 if activation == "sigmoid" else 0
    assert_matches(y, y64, rounding=rounding * np.abs(y64), dtype=dtype, what=f"{what}: output", seed=seed)
    expected_saved = {"none": None, "relu": y64, "sigmoid": y64, "clamp": z64}[activation]
    if expected_saved is None:
        assert saved is None, what
    else:
        assert_matches(saved, expected_saved, rounding=rounding * np.abs(expected_saved), dtype=dtype,
                       what=f"{what}: saved tensor", seed=seed)


# -- backward: the prologue and the bias gradient -------------------------------------------------------------

def saved_for(rng, shape, activation: str) -> np.ndarray:
    """A saved tensor as the forward pass leaves it, in float64: relu's output (zeros among it), sigmoid's
    output, clamp's pre-activation (elements on both bounds among it)."""
    z = dyadic(rng, shape)
    if activation == "relu":
        return np.maximum(z, 0.0)
    if activation == "sigmoid":
        return sigmoid(z)
    flat = z.reshape(-1)
    flat[:2] = CLAMP
    return z


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("saved_operand", ["a", "b"])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_prologue_of_every_tile(recorder, dtype, tile, activation, saved_operand, path, layout):
    """(op(A) * act'(saved)) op(B) or op(A) (op(B) * act'(saved)), saved in the operand's own layout.

    "matrix": the operand that carries the prologue is transposed and the other plain; "batched": three
    batches of A, B a broadcast batch of one, both plain."""
    m, k, n = tile_shape(dtype, tile)
    width = max(kernels.gemm_vector_widths(dtype, tile))
    seed = seed_of("prologue", dtype, tile, activation, saved_operand, path, layout)
    rng = np.random.default_rng(seed)
    if layout == "matrix":
        trans = {"a": saved_operand == "a", "b": saved_operand == "b"}
        stored = {"a": (k, m) if trans["a"] else (m, k), "b": (n, k) if trans["b"] else (k, n)}
    else:
        trans = {"a": False, "b": False}
        stored = {"a": (BATCHES, m, k), "b": (1, k, n)}
    a64, b64 = dyadic(rng, stored["a"]), dyadic(rng, stored["b"])
    a, b = placed(a64, dtype, path, width), placed(b64, dtype, path, width)
    target = a if saved_operand == "a" else b
    saved64 = exact(saved_for(rng, target.shape, activation).astype(dtype))  # what the kernel reads
    # The saved tensor shares the operand's strides; on the scalar path it alone is aligned (the operand is
    # not), so the path is decided by the operand.
    saved = placed(saved64, dtype, path, width)
    assert saved.strides == target.strides
    clamp = {"clamp_min": CLAMP[0], "clamp_max": CLAMP[1]} if activation == "clamp" else {}
    out = kernels.gemm(a, b, trans_a=trans["a"], trans_b=trans["b"], saved=saved, saved_activation=activation,
                       saved_operand=saved_operand, tile=tile, launcher=recorder, **clamp)
    what = f"prologue on {saved_operand} {tile} {dtype} {layout} {path} {activation}"
    arguments = last_gemm(recorder)
    assert (arguments["a_vector"], arguments["b_vector"]) == (expected_flag(path),) * 2, what
    assert (arguments["saved"] is None) == (activation == "none"), what

    def op(values, transposed):
        return np.swapaxes(values, -1, -2) if transposed else values

    factor = derivative_from_saved(saved64, activation)
    if saved_operand == "a":
        op_a, op_b = op(a64 * factor, trans["a"]), op(b64, trans["b"])
    else:
        op_a, op_b = op(a64, trans["a"]), op(b64 * factor, trans["b"])
    reference = op_a @ op_b
    # Exact but for sigmoid, whose factor (1 - s) * s rounds twice in the kernel's dtype before each product.
    rounding = 0 if activation != "sigmoid" else (k + 6) * (np.abs(op_a) @ np.abs(op_b))
    assert_matches(out, reference, rounding=rounding, dtype=dtype, what=what, seed=seed)


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("path", PATHS)
def test_linear_backward_of_every_tile_from_the_inputs_alone(recorder, dtype, tile, activation, path):
    """grad_x, grad_weight and grad_bias (the row sums of the grad_weight launch) of activation(x @ w.T + b),
    with the oracle's derivative taken at the exact pre-activation computed from x, w and b: a wrong saved
    tensor fails here even where backward is consistent with it."""
    rows, _, out_features = tile_shape(dtype, tile)
    in_features = out_features - 8
    width = max(kernels.gemm_vector_widths(dtype, tile))
    seed = seed_of("linear_backward", dtype, tile, activation, path)
    rng = np.random.default_rng(seed)
    x64, w64 = dyadic(rng, (rows, in_features)), dyadic(rng, (out_features, in_features))
    b64, g64 = dyadic(rng, (out_features,)), dyadic(rng, (rows, out_features))
    x, weight = placed(x64, dtype, path, width), placed(w64, dtype, path, width)
    grad = placed(g64, dtype, path, width, pad=False)  # linear_backward copies a non-contiguous gradient
    clamp = {"clamp_min": CLAMP[0], "clamp_max": CLAMP[1]} if activation == "clamp" else {}
    _, saved = kernels.linear_forward(x, weight, b64.astype(dtype), activation, tile=tile, launcher=recorder,
                                      **clamp)
    recorder.calls.clear()
    gx, gw, gb = kernels.linear_backward(grad, x, weight, saved, activation, tile=tile, launcher=recorder,
                                         **clamp)
    what = f"linear_backward {tile} {dtype} {path} {activation}"
    launches = [arguments for _, arguments in recorder.calls]
    assert len(launches) == 2 and all(arguments is not None for arguments in launches), what
    for arguments in launches:
        assert (arguments["a_vector"], arguments["b_vector"]) == (expected_flag(path),) * 2, what
        assert (arguments["saved"] is None) == (activation == "none"), what
    assert launches[0]["row_sums"] is None and launches[1]["row_sums"] is not None, what

    d_z = g64 * derivative_from_preactivation(x64 @ w64.T + b64, activation)
    if activation == "sigmoid":
        # The kernel's factor comes from the rounded sigmoid output: a few eps per term, plus the sum's rounding.
        abs_dz = np.abs(d_z) + np.abs(g64) * 4 * np.finfo(dtype).eps
        bounds = {"x": (out_features + 8) * (abs_dz @ np.abs(w64)), "w": (rows + 8) * (abs_dz.T @ np.abs(x64)),
                  "b": (rows + 8) * abs_dz.sum(axis=0)}
    else:
        bounds = {"x": 0, "w": 0, "b": 0}
    assert_matches(gx, d_z @ w64, rounding=bounds["x"], dtype=dtype, what=f"{what}: grad_x", seed=seed)
    assert_matches(gw, d_z.T @ x64, rounding=bounds["w"], dtype=dtype, what=f"{what}: grad_weight", seed=seed)
    assert_matches(gb, d_z.sum(axis=0), rounding=bounds["b"], dtype=dtype, what=f"{what}: grad_bias", seed=seed)

    # The bias gradient alone: one pass of the column-sum kernel, no product.
    recorder.calls.clear()
    none_x, none_w, gb_alone = kernels.linear_backward(grad, x, weight, saved, activation,
                                                       needs_input_grad=(False, False, True), tile=tile,
                                                       launcher=recorder, **clamp)
    assert none_x is None and none_w is None, what
    # One pass, plus the second pass of the column sums where the gradient has several blocks of rows.
    expected_kernels = ["gradcore::activation_backward"]
    if kernels._column_sum_launch(rows, out_features)[0][1] > 1:
        expected_kernels.append("gradcore::column_sums")
    assert [kernel.split("<")[0] for kernel, _ in recorder.calls] == expected_kernels, what
    assert_matches(gb_alone, d_z.sum(axis=0), rounding=bounds["b"], dtype=dtype, what=f"{what}: grad_bias alone",
                   seed=seed)


def test_every_tile_of_the_backend_is_covered():
    """The cases above are generated from GEMM_TILES; this guards against an instantiation list that lost one."""
    assert {(p.values[0], p.values[1]) for p in INSTANTIATIONS} == {
        (dtype, tile) for dtype, tiles in kernels.GEMM_TILES.items() for tile in tiles}
    tiled = [name for name in kernels.NAME_EXPRESSIONS["gemm"] if name.startswith("gradcore::gemm<")]
    assert len(INSTANTIATIONS) == len(tiled)


def test_the_seeds_do_not_change_between_processes():
    """crc32 of the case's name, not the per-process salted ``hash``: a failure can be replayed."""
    assert seed_of("epilogue", "float32", "small", "relu", "vector", "matrix") == zlib.crc32(
        repr(("epilogue", "float32", "small", "relu", "vector", "matrix")).encode())


# -- no read past an operand ------------------------------------------------------------------------------------
# A read past an operand that lands in an element no output uses (a row of C that is never stored) cannot change
# any result, so the checks above cannot see it; on a GPU it reads someone else's memory, or faults. Here each
# operand (and the prologue's saved tensor) ends exactly where an inaccessible page begins: a read past its last
# element kills the test process with SIGSEGV, as a GPU would fault.

_PROT_NONE = 0


def before_a_guard_page(values: np.ndarray, dtype: str) -> np.ndarray:
    """Returns a contiguous copy of ``values`` whose last element is the last one before a page that may not be
    read (an anonymous mapping whose final page is protected). The array keeps the mapping alive."""
    import ctypes
    import mmap

    page = mmap.PAGESIZE
    nbytes = values.size * np.dtype(dtype).itemsize
    data_pages = -(-nbytes // page)
    mapping = mmap.mmap(-1, (data_pages + 1) * page)
    address = ctypes.addressof(ctypes.c_char.from_buffer(mapping))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    if libc.mprotect(address + data_pages * page, page, _PROT_NONE) != 0:
        raise OSError(ctypes.get_errno(), "mprotect failed")
    whole = np.frombuffer(mapping, dtype=dtype, count=data_pages * page // np.dtype(dtype).itemsize)
    array = whole[whole.size - values.size:].reshape(values.shape)
    array[...] = values
    return array


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, True), (False, True), (True, False)])
@pytest.mark.parametrize("path", PATHS)
def test_no_read_past_the_operands(recorder, dtype, tile, trans_a, trans_b, path):
    m, k, n = tile_shape(dtype, tile)
    if path == "scalar":
        m, k, n = m + 1, k + 1, n + 1  # odd extents: no vector loads
    seed = seed_of("guard", dtype, tile, trans_a, trans_b, path)
    rng = np.random.default_rng(seed)
    a64 = dyadic(rng, (k, m) if trans_a else (m, k))
    b64 = dyadic(rng, (n, k) if trans_b else (k, n))
    saved64 = np.maximum(dyadic(rng, b64.shape), 0.0)
    a, b, saved = (before_a_guard_page(values, dtype) for values in (a64, b64, saved64))
    out = kernels.gemm(a, b, trans_a=trans_a, trans_b=trans_b, saved=saved, saved_activation="relu",
                       saved_operand="b", tile=tile, launcher=recorder)
    arguments = last_gemm(recorder)
    what = f"guarded {tile} {dtype} trans {trans_a} {trans_b} {path}"
    assert (arguments["a_vector"], arguments["b_vector"]) == (expected_flag(path),) * 2, what
    op_a = a64.T if trans_a else a64
    op_b = (b64 * (saved64 > 0)).T if trans_b else b64 * (saved64 > 0)
    assert_matches(out, op_a @ op_b, rounding=0, dtype=dtype, what=what, seed=seed)


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("layout", ["linear", "transposed"])
def test_no_read_past_the_operands_from_interior_blocks(recorder, dtype, tile, layout):
    """Without prologue, with M = 2 BM - 1 and N = 2 BN - 1: block (0, 0) takes the interior path (no bounds
    checks) and the blocks beside it, each one row or column short of a whole tile, the general path. An interior
    test relaxed by one row or column would send those onto the unchecked path, whose loads of the missing row
    of op(A) or column of op(B) run past the operand's end (here a protected page: SIGSEGV) on the last k-step.

    "linear": A plain and B transposed (both walked along k, K a multiple of 4: vector loads); "transposed": A
    transposed and B plain (walked along m and n, which are odd: scalar loads)."""
    bm, bn, bk, _tm, _tn = kernels.GEMM_TILES[dtype][tile]
    m, k, n = 2 * bm - 1, 2 * bk + 4, 2 * bn - 1
    trans_a, trans_b = (False, True) if layout == "linear" else (True, False)
    seed = seed_of("guard interior", dtype, tile, layout)
    rng = np.random.default_rng(seed)
    a64 = dyadic(rng, (k, m) if trans_a else (m, k))
    b64 = dyadic(rng, (n, k) if trans_b else (k, n))
    a, b = (before_a_guard_page(values, dtype) for values in (a64, b64))
    bias64 = dyadic(rng, (n,))
    out = kernels.gemm(a, b, trans_a=trans_a, trans_b=trans_b, bias=bias64.astype(dtype), activation="relu",
                       tile=tile, launcher=recorder)
    arguments = last_gemm(recorder)
    what = f"guarded interior {tile} {dtype} {layout}"
    assert arguments["saved"] is None and arguments["row_sums"] is None, what  # so block (0, 0) is interior
    assert (arguments["a_vector"], arguments["b_vector"]) == ((1, 1) if layout == "linear" else (0, 0)), what
    op_a = a64.T if trans_a else a64
    op_b = b64.T if trans_b else b64
    assert_matches(out, np.maximum(op_a @ op_b + bias64, 0), rounding=0, dtype=dtype, what=what, seed=seed)
