"""Smoke tests of the benchmark scripts: each runs in its quick mode and writes a complete report.

They check that the harness works (every workload runs, every first-step check passes, the report has its
sections), never how fast anything is: timings on a shared test machine mean nothing.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Builds and subprocesses that --device does not reach: the session without --device runs them.
pytestmark = pytest.mark.device_independent

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO_ROOT / "benchmarks"
TIMEOUT_S = 300  # quick runs take seconds; the limit only stops a hung run from stalling the suite
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None


def run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``benchmarks/<script>`` with `args` as a user would, with the repository on ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return run_command([sys.executable, str(BENCHMARKS / script), *args], REPO_ROOT, env)


def run_command(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def assert_succeeded(result: subprocess.CompletedProcess) -> None:
    """Assert exit status 0, showing the script's output otherwise."""
    assert result.returncode == 0, f"exit status {result.returncode}\n{result.stdout}\n{result.stderr}"


def test_cpu_quick_run_writes_a_complete_report(tmp_path: Path) -> None:
    # Through the documented entry point, `python -m benchmarks`, from the repository root: it passes its
    # options on to cpu.py and needs no PYTHONPATH.
    out = tmp_path / "cpu.md"
    result = run_command([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)], REPO_ROOT)
    assert_succeeded(result)
    report = out.read_text(encoding="utf-8")
    assert report in result.stdout  # the printed report is the written one
    for section in ("## Targets", "## (a) Per-op overhead", "## (b) Seed MLP", "## (c) Wide MLP"):
        assert section in report
    assert ("## (d) One epoch" in report) == HAS_SKLEARN
    assert "## Failures" not in report
    for row in ("| numpy |", "| gradcore |", "| threads | OMP_NUM_THREADS=1", "| processor |"):
        assert row in report
    assert ("| PyTorch |" in report) == HAS_TORCH
    assert "MISMATCH" not in report
    assert f"Command: `{Path(sys.executable).name} -m benchmarks --quick --out {out}`" in report


def test_run_script_forwards_options_from_any_directory(tmp_path: Path) -> None:
    # benchmarks/run.py finds the working tree's gradcore by itself, wherever it is started from.
    out = tmp_path / "cpu.md"
    result = run_command(
        [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--workloads", "a", "--repeats", "2",
         "--out", str(out)],
        tmp_path,
    )
    assert_succeeded(result)
    report = out.read_text(encoding="utf-8")
    assert "## (a) Per-op overhead" in report and "## (b)" not in report
    assert "2 timed runs per implementation" in report
    assert "run.py --quick --workloads a --repeats 2" in report


def test_entry_point_passes_on_bad_options_and_help(tmp_path: Path) -> None:
    result = run_command([sys.executable, "-m", "benchmarks", "--workloads", "z"], REPO_ROOT)
    assert result.returncode == 2
    assert "--workloads" in result.stderr and "-m benchmarks" in result.stderr
    result = run_command([sys.executable, "-m", "benchmarks", "--help"], REPO_ROOT)
    assert result.returncode == 0 and "--quick" in result.stdout


def test_cpu_runs_a_chosen_subset_of_workloads(tmp_path: Path) -> None:
    out = tmp_path / "cpu.md"
    assert_succeeded(run_script("cpu.py", "--quick", "--workloads", "a", "--out", str(out)))
    report = out.read_text(encoding="utf-8")
    assert "## (a) Per-op overhead" in report
    assert "## (b)" not in report and "## (c)" not in report and "## (d)" not in report


def test_cpu_rejects_an_unknown_workload(tmp_path: Path) -> None:
    result = run_script("cpu.py", "--workloads", "a,z", "--out", str(tmp_path / "cpu.md"))
    assert result.returncode == 2
    assert "--workloads" in result.stderr


def test_memory_quick_run_writes_a_complete_report(tmp_path: Path) -> None:
    out = tmp_path / "memory.md"
    result = run_script("memory.py", "--quick", "--steps", "20", "--out", str(out))
    assert_succeeded(result)
    report = out.read_text(encoding="utf-8")
    for section in ("## Peak resident memory", "## Growth over a long run"):
        assert section in report
    assert "## Failures" not in report
    assert "| wide MLP" in report and "| seed MLP step" in report
    assert ("| digits" in report) == HAS_SKLEARN
    assert ("| PyTorch |" in report) == HAS_TORCH


@pytest.fixture(scope="module")
def memory_module():
    """benchmarks/memory.py imported as a module (it is a script, not part of the package)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("benchmarks_memory", BENCHMARKS / "memory.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("benchmarks_memory", None)
        sys.modules.pop("cpu", None)  # the harness module that memory.py imports from benchmarks/
        sys.path.remove(str(BENCHMARKS))


def test_growth_slope_of_a_straight_line_and_of_a_flat_one(memory_module) -> None:
    steps = 1000
    rising = [(s, 5000 + 3 * s) for s in range(100, steps + 1, 100)]
    slope = memory_module.fit_slope(rising, steps)
    # The first tenth of the run (step 100) is left out as warm-up.
    assert slope.per_step == pytest.approx(3.0)
    assert slope.over_run == pytest.approx(3.0 * (steps - 200))
    assert (slope.first, slope.last) == (5600, 8000)
    flat = memory_module.fit_slope([(s, 7) for s in range(100, steps + 1, 100)], steps)
    assert flat.per_step == 0.0 and flat.over_run == 0.0


def test_compile_quick_run_checks_compiled_against_eager(tmp_path: Path) -> None:
    # PyTorch's own torch.compile is left out: it spends tens of seconds compiling, which a smoke test need not.
    out = tmp_path / "compile.md"
    assert_succeeded(run_script("compile.py", "--quick", "--no-torch-compile", "--out", str(out)))
    report = out.read_text(encoding="utf-8")
    for section in ("## (a) tiny chain", "## (b) seed MLP", "## Targets"):
        assert section in report
    assert ("## (c) one epoch" in report) == HAS_SKLEARN
    assert "| gradcore compiled |" in report and "MISMATCH" not in report
    assert "## Not measured or failed" not in report


def test_repeated_leaf_quick_run_writes_a_complete_report(tmp_path: Path) -> None:
    out = tmp_path / "repeated_leaf.md"
    result = run_script("repeated_leaf.py", "--size", "20", "--repeats", "2", "--out", str(out))
    assert_succeeded(result)
    report = out.read_text(encoding="utf-8")
    for label in ("`x * x * x`", "`x.pow(3)`", "`x + x + x`"):
        assert label in report
    assert report.count("\n| `") == 6 and ("| - |" in report) != HAS_TORCH
