"""The GEMM's launch plans (gradcore/backend/kernels.py, ``_gemm_plan``): one per distinct launch, reused with
the new call's pointers and clamp bounds, never reused across what it depends on; and the launch-cost benchmark."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from test_gemm import assert_within, stored, vector_flags

from gradcore.backend import kernels

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import launch_cost  # noqa: E402


@pytest.fixture
def plans(monkeypatch):
    """An empty plan cache for the test; returns it."""
    cache: dict = {}
    monkeypatch.setattr(kernels, "_GEMM_PLANS", cache)
    return cache


def test_a_repeated_launch_reuses_its_plan_with_the_new_arrays(launcher, plans):
    rng = np.random.default_rng(41)
    results = []
    for high in (0.1, 0.5, 0.9):  # the clamp bounds are filled in per call too
        a = rng.standard_normal((17, 33)).astype(np.float32)
        b = rng.standard_normal((33, 65)).astype(np.float32)
        bias = rng.standard_normal(65).astype(np.float32)
        out = kernels.gemm(a, b, bias=bias, activation="clamp", clamp_min=-0.5, clamp_max=high, launcher=launcher)
        results.append((out, a, b, bias, high))
    assert 1 <= len(plans) <= 3  # one plan per residue of the fresh arrays' addresses modulo 16 bytes
    for out, a, b, bias, high in results:
        # Each result is that of its own operands and bounds (not a cached pointer's), and was written (the
        # outputs are NaN-poisoned).
        a64, b64, bias64 = a.astype(np.float64), b.astype(np.float64), bias.astype(np.float64)
        exact = np.clip(a64 @ b64 + bias64, -0.5, float(np.float32(high)))
        assert_within(out, exact, np.abs(a64) @ np.abs(b64) + np.abs(bias64), 33, "float32", f"clamp to {high}")


def test_plans_differ_by_alignment_and_layout(launcher, plans):
    values = np.random.default_rng(42).standard_normal((36, 20)).astype(np.float32)
    other = np.random.default_rng(43).standard_normal((20, 44)).astype(np.float32)
    b = stored(other, 16, row_pad=4)
    aligned = stored(values, 16, row_pad=4)
    kernels.gemm(aligned, b, tile="small", launcher=launcher)
    assert vector_flags(launcher) == (1, 1)
    shifted = stored(values, 16, shift=1, row_pad=4)  # same shape and strides, one element off
    kernels.gemm(shifted, b, tile="small", launcher=launcher)
    assert vector_flags(launcher) == (0, 1)
    kernels.gemm(aligned, b, tile="small", launcher=launcher)
    assert vector_flags(launcher) == (1, 1)
    kernels.gemm(aligned, b, tile="small", activation="relu", launcher=launcher)
    assert len(plans) == 3  # aligned, shifted, aligned with relu


def test_wrong_arguments_fail_on_every_call(launcher, plans):
    a = np.ones((3, 4), dtype=np.float32)
    for _ in range(2):
        with pytest.raises(ValueError, match="inner dimensions"):
            kernels.gemm(a, np.ones((5, 2), dtype=np.float32), launcher=launcher)
    assert not plans


def test_the_cache_is_bounded(launcher, plans, monkeypatch):
    monkeypatch.setattr(kernels, "_GEMM_PLANS_MAX", 3)
    for n in range(1, 8):
        kernels.gemm(np.ones((2, 3), np.float32), np.ones((3, n), np.float32), launcher=launcher)
        assert len(plans) <= 3


def test_launch_cost_benchmark_runs(tmp_path):
    out = tmp_path / "launch_cost.md"
    assert launch_cost.main(["--calls", "3", "--repeats", "1", "--out", str(out)]) == 0
    text = out.read_text()
    for name in ("gemm", "linear_forward", "linear_backward", "activation_backward"):
        assert f"`{name}`" in text


@pytest.fixture
def elementwise_plans(monkeypatch):
    """Empty plan caches of activation_backward and the elementwise kernels; returns them."""
    column_sums, elementwise = {}, {}
    monkeypatch.setattr(kernels, "_COLUMN_SUM_PLANS", column_sums)
    monkeypatch.setattr(kernels, "_ELEMENTWISE_PLANS", elementwise)
    return column_sums, elementwise


def test_activation_backward_and_elementwise_plans_are_reused_with_the_new_arrays(launcher, elementwise_plans):
    column_sums, elementwise = elementwise_plans
    rng = np.random.default_rng(45)
    for rows in (300, 300, 9):  # 300 rows: three blocks of rows (8 x 32 threads, 4 rows each), a second pass
        grad = rng.standard_normal((rows, 5)).astype(np.float32)
        y = np.maximum(rng.standard_normal((rows, 5)), 0).astype(np.float32)
        expected = np.where(y > 0, grad, np.float32(0))
        dz, sums = kernels.activation_backward(grad, y, "relu", column_sums=True, launcher=launcher)
        np.testing.assert_array_equal(dz, expected)
        np.testing.assert_allclose(sums, expected.astype(np.float64).sum(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(kernels.relu_backward(grad, y, launcher=launcher), expected)
    assert len(column_sums) == 2 and len(elementwise) == 2  # one per shape


def test_wrong_elementwise_arguments_fail_on_every_call(launcher, elementwise_plans):
    grad, other = np.ones((3, 4), np.float32), np.ones((4, 3), np.float32)
    for _ in range(2):
        with pytest.raises(ValueError, match="shapes differ"):
            kernels.activation_backward(grad, other, "relu", column_sums=True, launcher=launcher)
        with pytest.raises(ValueError, match="shapes differ"):
            kernels.relu_backward(grad, other, launcher=launcher)
        with pytest.raises(TypeError, match="float64"):
            kernels.relu_backward(grad, other.T.astype(np.float64), launcher=launcher)
    assert elementwise_plans == ({}, {})
