"""``examples/train_digits_ddp.py`` in quick mode under ``mpiexec -n 2`` (about 7 s), as a user runs it."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import gradcore
from mpi_launch import ROOT, run_mpi

EXAMPLE = ROOT / "examples" / "train_digits_ddp.py"


@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("sklearn", "tqdm", "matplotlib")),
                    reason='the digits examples need scikit-learn, tqdm and matplotlib (pip install -e ".[examples]")')
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
