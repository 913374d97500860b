"""The CI's skip guard (.ci/skip_budget.py): it counts a junit report's skips by reason and fails above budget."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "skip_budget.py"


@pytest.fixture
def skip_budget():
    spec = importlib.util.spec_from_file_location("skip_budget", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4" skipped="3">
<testcase classname="a" name="one"/>
<testcase classname="a" name="two"><skipped type="pytest.skip" message="needs a GPU">x</skipped></testcase>
<testcase classname="a" name="three"><skipped type="pytest.skip" message="needs a GPU">x</skipped></testcase>
<testcase classname="b" name="four"><skipped type="pytest.skip" message="too slow">x</skipped></testcase>
</testsuite></testsuites>
"""


def test_skips_are_counted_by_reason(tmp_path, skip_budget):
    report = tmp_path / "report.xml"
    report.write_text(REPORT)
    assert skip_budget.skips_by_reason(report) == {"needs a GPU": 2, "too slow": 1}


@pytest.mark.parametrize("budget, status", [(3, 0), (2, 1)])
def test_a_pass_fails_above_its_budget(tmp_path, skip_budget, monkeypatch, capsys, budget, status):
    report = tmp_path / "report.xml"
    report.write_text(REPORT)
    budgets = tmp_path / "skip_budget.json"
    budgets.write_text(json.dumps({"cpu": budget}))
    monkeypatch.setattr(skip_budget, "BUDGET_FILE", budgets)
    assert skip_budget.main(["skip_budget.py", "cpu", str(report)]) == status
    printed = capsys.readouterr()
    assert "2  needs a GPU" in printed.out and "1  too slow" in printed.out
    assert ("more than its budget" in printed.err) == bool(status)


def test_an_unknown_mode_fails(tmp_path, skip_budget):
    report = tmp_path / "report.xml"
    report.write_text(REPORT)
    assert skip_budget.main(["skip_budget.py", "no-such-mode", str(report)]) == 1


def test_every_ci_pass_has_a_budget(skip_budget):
    budgets = json.loads(skip_budget.BUDGET_FILE.read_text())
    assert set(budgets) == {"cpu", "fake-cuda-kernels-default", "fake-cuda-kernels-all"}
    assert all(isinstance(value, int) and value >= 0 for value in budgets.values())
