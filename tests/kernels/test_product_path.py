"""``product_path``: the one place that chooses our GEMM or cuBLAS per product shape, from the measured crossover
file (``gradcore/backend/gemm_crossover.json``) or the override the tests set."""
from __future__ import annotations

import json
import os

import pytest

from gradcore.backend import kernels


@pytest.fixture
def crossover_file(tmp_path, monkeypatch):
    """Points the backend at a crossover file of the test's own and clears the override; returns a writer."""
    path = tmp_path / "gemm_crossover.json"
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_FILE", path)
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_OVERRIDE", None)

    def write(data) -> None:
        path.write_text(json.dumps(data))

    return write


def test_shipped_file_is_unmeasured_and_sends_everything_to_cublas(monkeypatch):
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_OVERRIDE", None)
    data = json.loads(kernels.GEMM_CROSSOVER_FILE.read_text())
    assert data["measured_on"] is None  # no GPU measurement has been committed
    for m, k, n in [(1, 1, 1), (64, 100, 1000), (4096, 4096, 4096)]:
        assert kernels.product_path(m, k, n, "float32") == "cublas"
        assert kernels.product_path(m, k, n, "float64") == "cublas"


def test_missing_file_means_cublas(crossover_file):
    assert kernels.product_path(64, 100, 1000, "float32") == "cublas"


def test_measured_rules_pick_gemm_inside_their_shape_class(crossover_file):
    crossover_file({"measured_on": "a test", "rules": {"float32": [{"max_m": 256, "max_k": 1024, "max_n": 1024}]}})
    assert kernels.product_path(64, 100, 1000, "float32") == "gemm"
    assert kernels.product_path(256, 1024, 1024, "float32") == "gemm"  # bounds are inclusive
    assert kernels.product_path(257, 1024, 1024, "float32") == "cublas"
    assert kernels.product_path(64, 1025, 10, "float32") == "cublas"
    assert kernels.product_path(64, 100, 1000, "float64") == "cublas"  # no rule for that dtype


def test_unmeasured_file_holds_no_rules(crossover_file):
    crossover_file({"measured_on": None, "rules": {"float32": [{"max_m": 10**9, "max_k": 10**9, "max_n": 10**9}]}})
    assert kernels.product_path(64, 100, 1000, "float32") == "cublas"


def test_empty_products_are_never_gemm(crossover_file, monkeypatch):
    crossover_file({"measured_on": "a test", "rules": {"float32": [{"max_m": 10, "max_k": 10, "max_n": 10}]}})
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_OVERRIDE", 2**62)
    for shape in [(0, 3, 4), (3, 0, 4), (3, 4, 0)]:
        assert kernels.product_path(*shape, "float32") == "cublas"


def test_override_wins_over_the_file(crossover_file, monkeypatch):
    crossover_file({"measured_on": "a test", "rules": {"float32": [{"max_m": 10, "max_k": 10, "max_n": 10}]}})
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_OVERRIDE", 1000)
    assert kernels.product_path(9, 10, 11, "float32") == "gemm"  # 990 multiply-adds
    assert kernels.product_path(10, 10, 10, "float32") == "cublas"  # 1000: not below the override
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_OVERRIDE", 0)
    assert kernels.product_path(2, 2, 2, "float32") == "cublas"


def test_a_rewritten_file_is_read_again(crossover_file):
    crossover_file({"measured_on": None, "rules": {}})
    assert kernels.product_path(8, 8, 8, "float32") == "cublas"
    crossover_file({"measured_on": "a test", "rules": {"float32": [{"max_m": 8, "max_k": 8, "max_n": 8}]}})
    stat = kernels.GEMM_CROSSOVER_FILE.stat()
    os.utime(kernels.GEMM_CROSSOVER_FILE, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert kernels.product_path(8, 8, 8, "float32") == "gemm"


def test_all_crossover_option_sets_the_override(pytestconfig):
    expected = None if pytestconfig.getoption("--gemm-crossover") == "default" else 2**62
    assert kernels.GEMM_CROSSOVER_OVERRIDE == expected
