"""``examples/train_digits_ddp.py`` in quick mode under ``mpiexec -n 2`` (about 7 s each), as a user runs it, on
the CPU and with ``--device cuda`` on the CuPy test double and the fake NCCL communicator."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import gradcore
from mpi_launch import ROOT, run_mpi

pytestmark = pytest.mark.mpiexec

EXAMPLE = ROOT / "examples" / "train_digits_ddp.py"
needs_digits_dependencies = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("sklearn", "tqdm", "matplotlib")),
    reason='the digits examples need scikit-learn, tqdm and matplotlib (pip install -e ".[examples]")')


@needs_digits_dependencies
def test_two_ranks_reach_the_accuracy_and_rank_0_saves(tmp_path: Path, monkeypatch) -> None:
    checkpoint = tmp_path / "digits_ddp.pt"
    result = run_mpi(2, [EXAMPLE, "--checkpoint", checkpoint], timeout_s=240,
                     env={"GRADCORE_EXAMPLE_QUICK": "1"})
    out = result.stdout
    assert "world size 2, device cpu, 5 epochs" in out, out
    reported = float(re.search(r"^test accuracy ([\d.]+)%$", out, re.M).group(1)) / 100
    assert reported >= 0.90
    assert out.count("checkpoint written to") == 1  # rank 0 only
    low, high = re.search(r"checksums: min (\S+), max (\S+)", out).groups()
    assert low == high
    # The checkpoint holds the trained model: loaded into a fresh one, it scores what the run reported.
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    train_digits = importlib.import_module("train_digits")
    model = train_digits.build_model().cpu()
    model.load_state_dict(gradcore.load(checkpoint))
    _, x_test, y_test = train_digits.load_data(0)
    assert abs(train_digits.accuracy(model, x_test.cpu(), y_test.cpu()) - reported) < 1e-4


@needs_digits_dependencies
def test_two_ranks_on_cuda_through_nccl_doubles(tmp_path: Path) -> None:
    checkpoint = tmp_path / "digits_ddp.pt"
    result = run_mpi(2, [ROOT / "tests" / "distributed" / "nccl_worker.py", "example", "--device", "cuda",
                         "--checkpoint", checkpoint], timeout_s=240, env={"GRADCORE_EXAMPLE_QUICK": "1"})
    out = result.stdout
    assert "world size 2, device cuda, 5 epochs" in out, out
    assert float(re.search(r"^test accuracy ([\d.]+)%$", out, re.M).group(1)) >= 90
    low, high = re.search(r"checksums: min (\S+), max (\S+)", out).groups()
    assert low == high
    assert checkpoint.exists()
