"""Run every program in ``examples/`` in its quick mode, as a user would, and check what it prints and writes.

Each example is started as a separate process (``sys.executable``) with ``GRADCORE_EXAMPLE_QUICK=1``, the
repository root on ``PYTHONPATH`` and a temporary working directory, so that the files it writes land there.
The examples check their own results and exit non-zero when a check fails; these tests also read the results
from the printed summary, so that an example whose check was weakened or skipped is caught too.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gradcore

# Builds and subprocesses that --device does not reach: the session without --device runs them.
pytestmark = pytest.mark.device_independent

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"
# Quick runs take seconds; the limit only stops a hung example from stalling the suite.
TIMEOUT_S = 300
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"

# The modules train_digits.py imports, and the packages (the "examples" extra) that provide them.
DIGITS_DEPENDENCIES = {"sklearn": "scikit-learn", "tqdm": "tqdm", "matplotlib": "matplotlib"}
MISSING_DIGITS_DEPENDENCIES = [
    package for module, package in DIGITS_DEPENDENCIES.items() if importlib.util.find_spec(module) is None
]
needs_digits_dependencies = pytest.mark.skipif(
    bool(MISSING_DIGITS_DEPENDENCIES),
    reason=f"train_digits.py needs {', '.join(MISSING_DIGITS_DEPENDENCIES)} "
    '(pip install -e ".[examples]")',
)
needs_cuda = pytest.mark.skipif(not gradcore.cuda.is_available(), reason="CUDA is not available")


def run_example(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``examples/<script>`` with `args` in quick mode from `cwd`; return the finished process."""
    env = dict(os.environ)
    env["GRADCORE_EXAMPLE_QUICK"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    # check=False: the tests read the exit status themselves, including the expected failures.
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def assert_succeeded(result: subprocess.CompletedProcess) -> str:
    """Assert that the example exited with status 0 and return its standard output."""
    assert result.returncode == 0, (
        f"exit status {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )
    return result.stdout


def assert_failed_cleanly(result: subprocess.CompletedProcess, message: str) -> None:
    """Assert that the example exited non-zero with `message` on stderr and without a traceback."""
    assert result.returncode != 0, f"expected a failure, got status 0\n{result.stdout}"
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def search(pattern: str, text: str) -> re.Match:
    """Return the first match of `pattern` in `text`, failing the test (showing `text`) if there is none."""
    match = re.search(pattern, text)
    assert match is not None, f"no line matching {pattern!r} in:\n{text}"
    return match


def assert_valid_png(path: Path) -> None:
    """Assert that `path` is a complete PNG image of a plausible plot size."""
    assert path.is_file(), f"{path} was not written"
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), "not a PNG file (wrong signature)"
    assert data[12:16] == b"IHDR", "PNG without an IHDR header chunk"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 400 and height >= 200, f"implausibly small plot: {width}x{height}"
    assert data.endswith(PNG_END), "PNG file is truncated (no IEND chunk at the end)"
    # A blank canvas of this size compresses to a few kilobytes; curves, axes and text make it much larger.
    assert len(data) > 10_000, f"PNG of only {len(data)} bytes: the plot looks empty"


# -- seed_mlp.py ---------------------------------------------------------------------------------------------
def check_seed_mlp(stdout: str) -> None:
    match = search(r"final loss\s+(\S+)\s+\((\d+) steps, ratio (\S+)\)", stdout)
    assert int(match.group(2)) == 50
    assert float(match.group(3)) < 0.1


def test_seed_mlp(tmp_path: Path) -> None:
    check_seed_mlp(assert_succeeded(run_example("seed_mlp.py", cwd=tmp_path)))


def test_seed_mlp_fails_when_the_loss_does_not_fall(tmp_path: Path) -> None:
    # After a single step the final loss is the initial loss, so the example's own check must reject it.
    assert_failed_cleanly(run_example("seed_mlp.py", "--steps", "1", cwd=tmp_path), "FAILED")


# -- train_digits.py -----------------------------------------------------------------------------------------
def check_train_digits(stdout: str, plot: Path) -> None:
    assert search(r"device \w+, (\d+) epochs", stdout).group(1) == "5"
    assert float(search(r"test accuracy ([\d.]+)%", stdout).group(1)) >= 90.0
    assert_valid_png(plot)


@needs_digits_dependencies
def test_train_digits(tmp_path: Path) -> None:
    stdout = assert_succeeded(run_example("train_digits.py", cwd=tmp_path))
    # Without --plot the plot goes to the working directory.
    check_train_digits(stdout, tmp_path / "digits_training.png")


@needs_digits_dependencies
def test_train_digits_plot_path(tmp_path: Path) -> None:
    plot = tmp_path / "plots" / "run.png"
    plot.parent.mkdir()
    stdout = assert_succeeded(run_example("train_digits.py", "--plot", str(plot), cwd=tmp_path))
    check_train_digits(stdout, plot)
    assert not (tmp_path / "digits_training.png").exists()


@needs_digits_dependencies
def test_train_digits_compiled_prints_what_eager_prints(tmp_path: Path) -> None:
    # gradcore.compile replays the very array operations of the eager step: the same loss and accuracy.
    eager = assert_succeeded(run_example("train_digits.py", "--epochs", "2", cwd=tmp_path))
    compiled = assert_succeeded(run_example("train_digits.py", "--epochs", "2", "--compile", cwd=tmp_path))
    for pattern in (r"final training loss ([\d.]+)", r"test accuracy ([\d.]+)%"):
        assert search(pattern, compiled).group(1) == search(pattern, eager).group(1)


@needs_digits_dependencies
def test_train_digits_fails_when_accuracy_is_low(tmp_path: Path) -> None:
    # With a learning rate of 0 the network stays at its random initialisation: about 10% accuracy.
    result = run_example("train_digits.py", "--epochs", "1", "--lr", "0", cwd=tmp_path)
    assert_failed_cleanly(result, "FAILED: test accuracy")


# -- custom_function.py --------------------------------------------------------------------------------------
def check_custom_function(stdout: str) -> None:
    for check in [
        "gradcheck SigmoidFunction",
        "SigmoidFunction against torch.sigmoid",
        "gradcheck CustomReLU",
        "CustomReLU against torch.relu",
        "training with CustomReLU and SigmoidFunction",
    ]:
        search(rf"(?m)^{re.escape(check)}: passed", stdout)
    losses = search(r"loss ([\d.]+) -> ([\d.]+) in (\d+) steps", stdout)
    assert float(losses.group(2)) < float(losses.group(1))
    assert losses.group(3) == "50"
    assert "all checks passed" in stdout


def test_custom_function(tmp_path: Path) -> None:
    check_custom_function(assert_succeeded(run_example("custom_function.py", cwd=tmp_path)))


# -- devices.py ----------------------------------------------------------------------------------------------
def check_devices(stdout: str, device: str) -> None:
    legs = re.findall(r"leg (\d) on (\w+): loss [\d.]+ -> [\d.]+ \((\d+) steps\)", stdout)
    assert legs == [("1", "cpu", "5"), ("2", device, "5"), ("3", "cpu", "5")], stdout
    search(rf"moved to {device}: parameters on {device}\S*, Adam's exp_avg on {device}", stdout)
    search(r"moved to cpu: parameters on cpu, Adam's exp_avg on cpu", stdout)
    search(rf"round trip cpu -> {device} -> cpu match the CPU-only run", stdout)


def test_devices_cpu_round_trip(tmp_path: Path) -> None:
    stdout = assert_succeeded(run_example("devices.py", cwd=tmp_path))
    check_devices(stdout, "cpu")
    # On the CPU alone nothing may differ at all.
    assert "bit for bit (largest difference 0)" in stdout
    if not gradcore.cuda.is_available():
        assert "CUDA is not available on this machine" in stdout


def test_devices_cuda_without_gpu_explains(tmp_path: Path) -> None:
    if gradcore.cuda.is_available():
        pytest.skip("CUDA is available: test_examples_on_cuda runs devices.py --device cuda instead")
    result = run_example("devices.py", "--device", "cuda", cwd=tmp_path)
    assert_failed_cleanly(result, "CUDA is not available on this machine")


# -- every example on a GPU ----------------------------------------------------------------------------------
@needs_cuda
@pytest.mark.device_independent(False)  # runs the examples with --device cuda
@pytest.mark.parametrize(
    "script",
    [
        "seed_mlp.py",
        pytest.param("train_digits.py", marks=needs_digits_dependencies),
        "custom_function.py",
        "devices.py",
    ],
)
def test_examples_on_cuda(script: str, tmp_path: Path) -> None:
    stdout = assert_succeeded(run_example(script, "--device", "cuda", cwd=tmp_path))
    if script == "seed_mlp.py":
        check_seed_mlp(stdout)
    elif script == "train_digits.py":
        check_train_digits(stdout, tmp_path / "digits_training.png")
    elif script == "custom_function.py":
        check_custom_function(stdout)
    else:
        check_devices(stdout, "cuda")
