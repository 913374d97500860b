"""Prints a test run's skips by reason and fails when they exceed the committed budget of that run's mode.

Usage: python .ci/skip_budget.py MODE JUNIT_XML

MODE names one pass of .ci/run (a key of .ci/skip_budget.json); JUNIT_XML is the report that pytest wrote for
it (--junitxml). A skip hides whatever its test would have found, so the number of skips may only go down: a
change that adds skips must raise the budget in the same commit, where a reviewer sees it. The run fails as
well when PyTorch, the suite's oracle, cannot be imported (its tests would skip or fail to collect).
"""
from __future__ import annotations

import collections
import json
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

BUDGET_FILE = Path(__file__).with_name("skip_budget.json")


def skips_by_reason(junit_xml: Path) -> collections.Counter:
    """Returns {reason: number of skipped test cases} of a junit XML report."""
    counts: collections.Counter = collections.Counter()
    for case in ElementTree.parse(junit_xml).getroot().iter("testcase"):
        skipped = case.find("skipped")
        if skipped is not None:
            counts[skipped.get("message", "(no reason given)")] += 1
    return counts


def main(argv: list) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    mode, report = argv[1], Path(argv[2])
    try:
        import torch  # noqa: F401  (the oracle of a third of the suite)
    except ImportError as error:
        print(f"CI: PyTorch cannot be imported ({error}); the tests that compare with it would not run",
              file=sys.stderr)
        return 1
    budgets = json.loads(BUDGET_FILE.read_text())
    if mode not in budgets:
        print(f"CI: no skip budget for mode {mode!r} in {BUDGET_FILE}", file=sys.stderr)
        return 1
    counts = skips_by_reason(report)
    total = sum(counts.values())
    print(f"Skips of {mode}: {total} (budget {budgets[mode]})")
    for reason, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {count:5d}  {reason}")
    if total > budgets[mode]:
        print(f"CI: {total} tests skipped under {mode}, more than its budget of {budgets[mode]} "
              f"({BUDGET_FILE.name}): run the skipped tests, or raise the budget and say why", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
