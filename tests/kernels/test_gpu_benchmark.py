"""A dry run of ``benchmarks/gpu.py`` without a GPU: every figure, the environment printout and the files of
``--out``, on the CuPy test double with the real kernel sources running on the CPU (``kernels_on_fake_cuda``).

gpu.py runs on a lent GPU for a few minutes only, so a typo or an API mismatch must fail here rather than there.
It runs with ``--tiny`` (``SIZES["tiny"]``) and one repetition: its timings mean nothing here, its checks do (each
figure compares our kernels with the unfused path, float64 or PyTorch before timing them). What the double cannot
check is CuPy's own behaviour: cuBLAS, streams and events (which time the host here).
"""
from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import fake_cupy
import pytest

from gradcore.backend import kernels

GPU_PY = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"
TINY = ["--tiny", "--repeats", "1"]
# Every kernel of kernels/*.cu by its short name ("gradcore::gemm<float, ...>" is "gemm").
EVERY_KERNEL = {name.split("::")[1].split("<")[0] for names in kernels.NAME_EXPRESSIONS.values() for name in names}


def load_gpu_py(monkeypatch):
    """Returns benchmarks/gpu.py loaded afresh (its own LOG and RESULTS), its side effects undone after the test."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # gpu.py puts the repository first on the path
    monkeypatch.delenv("CUPY_TF32", raising=False)  # gpu.py sets it; put back as it was after the test
    monkeypatch.delenv("OUT", raising=False)  # --out defaults to $OUT: a run without --out writes nothing
    spec = importlib.util.spec_from_file_location("gpu_benchmark_dry_run", GPU_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def gpu(kernels_on_fake_cuda, monkeypatch):
    """benchmarks/gpu.py with ``import cupy`` giving the test double and the kernels' default launcher the
    emulated one (the launcher of the ops' kernel paths already is)."""
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    monkeypatch.setattr(kernels, "default_launcher", lambda: kernels_on_fake_cuda)
    return load_gpu_py(monkeypatch)


def expected_entries(gpu) -> set:
    """The RESULTS keys of one --tiny run of every figure: one per shape, activation, dtype and configuration."""
    tiny = gpu.SIZES["tiny"]
    keys = {f"gemm_{m}x{k}x{n}" for m, k, n in tiny["gemm"]}
    keys |= {f"linear_{act}_{m}x{k}x{n}" for m, k, n in tiny["linear"] for act in ("relu", "sigmoid")}
    keys |= {f"{name}_{dtype}" for dtype in ("float32", "float64")
             for name in ("clamp_forward", "clamp_backward", "sigmoid_forward", "sigmoid_backward")}
    keys |= {f"train_{config[0]}" for config in tiny["training"]}
    keys.add(f"graph_{tiny['training'][0][0]}")
    return keys


def timings(entry):
    """Every number of a RESULTS entry (nested dicts included)."""
    for value in entry.values():
        if isinstance(value, dict):
            yield from timings(value)
        elif isinstance(value, (int, float)):
            yield value


def test_every_figure_runs_and_passes_its_checks(gpu, kernels_on_fake_cuda, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    status = gpu.main([*TINY, "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "failures" not in gpu.RESULTS, printed
    assert [line for line in gpu.LOG if "FAIL" in line] == []
    assert printed == "\n".join(gpu.LOG) + "\n"  # what it prints is what it logs

    # Each figure recorded each of its entries, with finite timings and ratios.
    assert set(gpu.RESULTS) == expected_entries(gpu) | {"environment"}
    for key, entry in gpu.RESULTS.items():
        assert all(math.isfinite(number) and number >= 0 for number in timings(entry)), (key, entry)
    for m, k, n in gpu.SIZES["tiny"]["gemm"]:
        entry = gpu.RESULTS[f"gemm_{m}x{k}x{n}"]
        assert set(entry["per_tile_ms"]) == set(kernels.GEMM_TILES["float32"])
        assert entry["tile"] == kernels.choose_tile(m, n, "float32", kernels_on_fake_cuda.multiprocessor_count())
    for title, *_ in gpu.SIZES["tiny"]["training"]:
        entry = gpu.RESULTS[f"train_{title}"]
        assert set(entry["ms"]) == set(entry["first_losses"]) == {"our kernels", "gradcore API"}
    # Figure (e): the seed MLP step as one CUDA graph by hand, and through gradcore.compile, which on the
    # double replays as CUDA graphs too.
    entry = gpu.RESULTS[f"graph_{gpu.SIZES['tiny']['training'][0][0]}"]
    assert set(entry["ms"]) == {"CUDA graph", "gradcore.compile"}
    assert set(entry["first_losses"]) == {"gradcore eager", "CUDA graph", "gradcore.compile"}
    # PyTorch has no CUDA here: the column is left out, and said to be.
    assert "  (PyTorch with CUDA is not available here: no PyTorch column)" in gpu.LOG
    # Every kernel ran, through the wrappers (figures a to c, the kernel-only steps) and the ops (gradcore's API).
    assert EVERY_KERNEL - set(kernels_on_fake_cuda.counts) == set(), "kernels that gpu.py never runs"

    environment = gpu.RESULTS["environment"]
    assert environment["device"] == "fake CUDA device (CuPy test double)"
    assert environment["CUPY_TF32"] == "0"  # cuBLAS in true FP32
    assert environment["build_options"] == list(kernels.BUILD_OPTIONS)
    for key, value in environment.items():
        assert f"{key}: {value}" in gpu.LOG

    assert (out / "gpu_bench.log").read_text() == "\n".join(gpu.LOG) + "\n"
    assert json.loads((out / "gpu_bench.json").read_text()) == json.loads(json.dumps(gpu.RESULTS, default=str))


def test_the_pytorch_column_runs_where_pytorch_has_a_device(gpu, monkeypatch) -> None:
    # On a GPU the column runs on PyTorch CUDA; here the same code runs on PyTorch's CPU, and its first loss must
    # agree with ours.
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(gpu, "pytorch_for_comparison", lambda: (torch, "cpu"))
    assert gpu.main([*TINY, "--only", "d,e"]) == 0, "\n".join(gpu.LOG)
    for title, *_ in gpu.SIZES["tiny"]["training"]:
        entry = gpu.RESULTS[f"train_{title}"]
        assert set(entry["ms"]) == {"our kernels", "gradcore API", "PyTorch eager"}
        assert any(line.startswith(f"  {title}") and "| ratio our kernels" in line for line in gpu.LOG)
    entry = gpu.RESULTS[f"graph_{gpu.SIZES['tiny']['training'][0][0]}"]
    assert set(entry["ms"]) == {"CUDA graph", "gradcore.compile", "PyTorch eager"}
    assert set(entry["ratio_to_pytorch"]) == {"CUDA graph", "gradcore.compile"}
    assert not any("no PyTorch column" in line for line in gpu.LOG)


def test_without_pytorch_the_column_is_left_out(gpu, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    assert gpu.pytorch_for_comparison() == (None, None)
    assert gpu.main([*TINY, "--only", "d"]) == 0, "\n".join(gpu.LOG)
    assert gpu.RESULTS["environment"]["torch"] == "not installed"
    assert set(gpu.RESULTS) == {"environment"} | {f"train_{config[0]}" for config in gpu.SIZES["tiny"]["training"]}
    assert "  (PyTorch with CUDA is not available here: no PyTorch column)" in gpu.LOG


def test_failed_checks_and_broken_parts_are_reported_and_the_rest_still_runs(gpu, monkeypatch, tmp_path) -> None:
    gemm, kernel_step = kernels.gemm, gpu._kernel_mlp_step
    monkeypatch.setattr(kernels, "gemm", lambda *args, **kwargs: gemm(*args, **kwargs) + 1)

    def broken(*args, **kwargs):
        raise RuntimeError("an API mismatch")

    monkeypatch.setattr(fake_cupy.cuda.runtime, "getDeviceProperties", broken)
    monkeypatch.setattr(kernels, "sigmoid_backward", broken)  # the last case of figure (c); (d) has no sigmoid
    monkeypatch.setattr(gpu, "_kernel_mlp_step", lambda *args: kernel_step(*args) + 1)
    assert gpu.main([*TINY, "--only", "a,c,d", "--out", str(tmp_path)]) == 1

    tiny = gpu.SIZES["tiny"]
    failures = ["environment"] + [f"gemm {m}x{k}x{n}" for m, k, n in tiny["gemm"]] + ["figure c"]
    failures += [config[0] for config in tiny["training"]]
    assert gpu.RESULTS["failures"] == failures
    assert "FAIL environment: RuntimeError: an API mismatch" in gpu.LOG
    assert "FAIL figure c: RuntimeError: an API mismatch" in gpu.LOG
    assert sum(line.startswith("FAIL") for line in gpu.LOG) == len(failures)
    # Nothing that failed a check was timed; what figure (c) measured before it broke is kept.
    kept = {f"{name}_float32" for name in ("clamp_forward", "clamp_backward", "sigmoid_forward")}
    assert set(gpu.RESULTS) == {"failures"} | kept
    assert json.loads((tmp_path / "gpu_bench.json").read_text())["failures"] == failures


def test_without_cupy_it_says_so_and_exits(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    gpu = load_gpu_py(monkeypatch)
    assert gpu.main(TINY) == 2
    assert "benchmarks/gpu.py needs CuPy and a CUDA GPU" in capsys.readouterr().err


def test_options_choose_the_sizes_and_the_defaults_stay_full_size(gpu) -> None:
    assert gpu.parse_args([]).sizes is gpu.SIZES["full"]
    assert gpu.parse_args(["--quick"]).sizes is gpu.SIZES["quick"]
    assert gpu.parse_args(["--quick", "--tiny"]).sizes is gpu.SIZES["tiny"]
    assert gpu.parse_args([]).only == ["a", "b", "c", "d", "e"]
    assert gpu.parse_args(["--only", "c, a"]).only == ["c", "a"]
    full = gpu.SIZES["full"]
    assert (4096, 4096, 4096) in full["gemm"] and full["bandwidth"] == 1 << 28
    assert any(batch == 4096 for _, batch, *_ in full["training"])
    for name in ("f", "ab", ""):
        with pytest.raises(SystemExit):
            gpu.parse_args(["--only", name])
