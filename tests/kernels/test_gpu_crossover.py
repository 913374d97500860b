"""benchmarks/gpu.py's crossover: derived from figure (a)'s measurements per shape class, written where
``product_path`` reads it; and its timing helpers on the CuPy test double (no GPU: the figures mean nothing,
the code paths run)."""
from __future__ import annotations

import json
import sys

import fake_cupy
import pytest
from test_gpu_benchmark import TINY, load_gpu_py

from gradcore.backend import kernels


@pytest.fixture
def gpu(kernels_on_fake_cuda, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    monkeypatch.setattr(kernels, "default_launcher", lambda: kernels_on_fake_cuda)
    return load_gpu_py(monkeypatch)


def measured(**ratios) -> dict:
    return {f"gemm_{shape}": {"ratio": ratio, "tile": "small"} for shape, ratio in ratios.items()}


def test_classes_are_claimed_only_where_every_measurement_inside_agrees(gpu):
    results = measured(**{"64x1000x100": 1.4, "256x512x10": 1.2, "256x784x1024": 0.9, "4096x4096x4096": 0.8,
                          "256x1024x1024": 1.1})
    results["environment"] = {"device": "x"}
    rules = gpu.derive_crossover(results)
    # 256x1024x1024 won, but 256x784x1024 inside its class lost: not claimed.
    assert rules == [{"max_m": 64, "max_k": 1000, "max_n": 100}, {"max_m": 256, "max_k": 512, "max_n": 10}]
    assert gpu.derive_crossover(measured(**{"8x8x8": 0.5})) == []


def test_the_written_file_is_what_product_path_reads(gpu, tmp_path, monkeypatch):
    gpu.RESULTS.clear()
    gpu.RESULTS.update(measured(**{"64x1000x100": 1.4, "4096x4096x4096": 0.8}))
    path = tmp_path / "gemm_crossover.json"
    gpu.write_crossover(str(path), "a test device")
    data = json.loads(path.read_text())
    assert data["measured_on"].startswith("a test device")
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_FILE", path)
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_OVERRIDE", None)
    assert kernels.product_path(64, 1000, 100, "float32") == "gemm"
    assert kernels.product_path(32, 500, 100, "float32") == "gemm"
    assert kernels.product_path(4096, 4096, 4096, "float32") == "cublas"
    assert kernels.product_path(64, 1000, 100, "float64") == "cublas"  # float64 is not measured


def test_dry_run_writes_the_crossover_and_reports_graph_timing(gpu, tmp_path):
    path = tmp_path / "crossover.json"
    assert gpu.main([*TINY, "--only", "a", "--write-crossover", str(path)]) == 0, "\n".join(gpu.LOG)
    data = json.loads(path.read_text())
    assert set(data["measurements"]) == {f"gemm_{m}x{k}x{n}" for m, k, n in gpu.SIZES["tiny"]["gemm"]}
    for m, k, n in gpu.SIZES["tiny"]["gemm"]:
        entry = gpu.RESULTS[f"gemm_{m}x{k}x{n}"]
        if entry["graph"] == "measured":
            assert entry["graph_ours_ms"] >= 0 and entry["graph_cublas_ms"] >= 0
        else:  # a double without stream capture: the column is unavailable, not a failure
            assert entry["graph_ours_ms"] is None
            assert any(line.startswith("  (CUDA graph timing unavailable") for line in gpu.LOG)


def test_write_crossover_needs_figure_a(gpu):
    with pytest.raises(SystemExit):
        gpu.parse_args(["--only", "c", "--write-crossover"])
    assert gpu.parse_args(["--write-crossover"]).write_crossover == str(gpu.CROSSOVER_FILE)
    assert gpu.parse_args(["--tiny"]).launches == 1 and gpu.parse_args([]).launches == 20
