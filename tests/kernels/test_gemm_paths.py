"""The GEMM's specialised k-loops (kernels/gemm.cu, "Specialised paths") on the CPU emulation.

Interior blocks without prologue or row sums run one of four loops without bounds checks, one per pair of vector
widths; their last, partial k-step is checked after the loop; every other block runs the general loop. Each test
here makes products whose grid holds interior and edge blocks at once, with and without a partial k-step, every
pair of vector flags, and the forward epilogue or the backward prologue and row sums, into NaN-poisoned outputs
(the emulated launcher's), against float64 numpy computed from the inputs.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from test_gemm import (CLAMP, INSTANTIATIONS, activate, assert_within, derivative_applied, saved_values,
                       stored, vector_flags, vector_operand)

from gradcore.backend import kernels


def interior_shape(dtype: str, tile: str, partial_k: bool) -> tuple:
    """(M, K, N) with interior blocks (two tiles down, one across) and edge blocks (a partial row and column of
    tiles), multiples of the vector widths, K with or without a partial last step."""
    bm, bn, bk, _tm, _tn = kernels.GEMM_TILES[dtype][tile]
    width = max(kernels.gemm_vector_widths(dtype, tile))
    k = 2 * bk + (width if partial_k and width < bk else 0) + (bk if partial_k and width >= bk else 0)
    if partial_k and k % bk == 0:
        k += width  # a partial step whatever the widths
    return 2 * bm + width, k, bn + 3 * width


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("shift_a,shift_b", list(itertools.product([0, 1], repeat=2)),
                         ids=["both_vector", "b_vector", "a_vector", "both_scalar"])
@pytest.mark.parametrize("partial_k", [False, True], ids=["whole_steps", "partial_step"])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, True)], ids=["plain", "transposed"])
def test_interior_loops_for_every_pair_of_vector_widths(launcher, dtype, tile, shift_a, shift_b, partial_k,
                                                        trans_a, trans_b):
    a_width, b_width = kernels.gemm_vector_widths(dtype, tile)
    m, k, n = interior_shape(dtype, tile, partial_k)
    rng = np.random.default_rng(31)
    a, a64 = vector_operand(rng, m, k, dtype, trans_a, a_width, shift_a)
    b, b64 = vector_operand(rng, k, n, dtype, trans_b, b_width, shift_b)
    bias = rng.standard_normal(n).astype(dtype)
    out = kernels.gemm(a, b, trans_a=trans_a, trans_b=trans_b, bias=bias, activation="clamp",
                       clamp_min=CLAMP[0], clamp_max=CLAMP[1], tile=tile, launcher=launcher)
    assert vector_flags(launcher) == (int(shift_a == 0), int(shift_b == 0))
    z = a64 @ b64 + bias.astype(np.float64)
    scale = np.abs(a64) @ np.abs(b64) + np.abs(bias.astype(np.float64))
    # clamp is 1-Lipschitz: the bound on z holds for the clamped value too.
    assert_within(out, activate(z, "clamp"), scale, k, dtype, f"{tile} {dtype} {m}x{k}x{n}")


@pytest.mark.parametrize("dtype,tile", INSTANTIATIONS)
@pytest.mark.parametrize("partial_k", [False, True], ids=["whole_steps", "partial_step"])
@pytest.mark.parametrize("saved_operand", ["a", "b"])
def test_general_loop_with_prologue_and_row_sums_on_interior_blocks(launcher, dtype, tile, partial_k,
                                                                    saved_operand):
    """With the prologue (and, on A, the row sums) even the interior blocks take the general loop."""
    a_width, b_width = kernels.gemm_vector_widths(dtype, tile)
    m, k, n = interior_shape(dtype, tile, partial_k)
    rng = np.random.default_rng(32)
    a, a64 = vector_operand(rng, m, k, dtype, False, a_width)
    b, b64 = vector_operand(rng, k, n, dtype, False, b_width)
    target, width = (a, a_width) if saved_operand == "a" else (b, b_width)
    # Laid out as the operand is (same strides, aligned for its vectors), as the kernel reads it at its offsets.
    saved = stored(saved_values(rng, target.shape, dtype, "relu"), width * target.itemsize, row_pad=width)
    kwargs = dict(saved=saved, saved_activation="relu", saved_operand=saved_operand, tile=tile, launcher=launcher)
    if saved_operand == "a":
        out, _, sums = kernels._launch_gemm(launcher, a, b, trans_a=False, trans_b=False, row_sums=True,
                                            saved=saved, saved_activation="relu", saved_operand="a", tile=tile)
        a64 = derivative_applied(a64, saved, "relu", dtype)
        assert_within(sums, a64.sum(axis=1), np.abs(a64).sum(axis=1), k, dtype, "row sums")
    else:
        out = kernels.gemm(a, b, **kwargs)
        b64 = derivative_applied(b64, saved, "relu", dtype)
    assert_within(out, a64 @ b64, np.abs(a64) @ np.abs(b64), k, dtype, f"prologue on {saved_operand}")
