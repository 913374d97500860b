#!/usr/bin/env python3
"""Measure gradcore's memory on the CPU: peak resident memory against PyTorch's, and growth over many steps.

Every measurement runs in a fresh subprocess of this script, so that one run's heap, caches and imports
cannot colour another's:

* Peak: the resident-set high-water mark of a run minus the resident memory just before it, after the
  imports and after the input data was built in numpy. On Linux the high-water mark is reset at that point
  (``/proc/self/clear_refs``), so a transient peak during the imports cannot hide the run's own peak. Two
  runs, each by gradcore and by PyTorch with the same code: the wide MLP of ``cpu.py`` workload (c) (batch
  256, 784-512-512-10, cross-entropy, SGD) for 50 steps, and the whole digits example
  (``examples/train_digits.py``: 30 epochs of training with a test after each).
* Growth: a long run of training steps (10,000 unless ``--steps N``) sampling, after a garbage collection,
  the resident memory (``VmRSS``) and the memory that ``tracemalloc`` traces (Python objects and numpy's
  buffers). The slope of a least-squares line through the samples, leaving out the first tenth of the run
  as warm-up, is reported in bytes per step with the growth it amounts to over the run. Two runs: the seed
  MLP step of ``cpu.py`` workload (b) (manual SGD) and the digits example's training step (nn, Adam,
  DataLoader), by gradcore; PyTorch runs the same steps for comparison.

Thread counts are pinned as in ``cpu.py``. The report is printed and written as markdown to ``--out``.

Usage::

    python benchmarks/memory.py                 # full run (a few minutes on two cores)
    python benchmarks/memory.py --steps 2000    # a shorter growth run
    python benchmarks/memory.py --quick         # a few steps: checks that everything runs, measures little
"""

from __future__ import annotations

# Only the standard library is imported at the top, as in cpu.py: the child processes pin the thread
# counts before numpy or torch is imported.
import argparse
import datetime
import gc
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu as harness

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "memory.md"
DEFAULT_STEPS = 10_000
QUICK_STEPS = 200
WIDE_STEPS = 50
DIGITS_EPOCHS = 30  # the example's default
QUICK_WIDE_STEPS = 3
QUICK_DIGITS_EPOCHS = 1
GROWTH_SAMPLES = 50  # samples taken along a growth run
QUICK_GROWTH_SAMPLES = 5
WARMUP_FRACTION = 0.1  # the part of a growth run left out of the slope: caches fill, the allocator settles
# "No growth": less than this over the measured part of the run, for both the traced and the resident memory.
# Resident memory moves by allocator noise (arenas, fragmentation) of a few hundred KiB; a leak of even one
# small object per step would grow by megabytes over 10,000 steps.
GROWTH_LIMIT_BYTES = 1 << 20
CHILD_TIMEOUT_S = 900
RESULT_PREFIX = "RESULT "
MIB = 1 << 20

IMPLEMENTATIONS = {"gradcore": "gradcore", "PyTorch": "torch"}  # label -> module


# --------------------------------------------------------------------------- measuring (child side)


def read_status_kib(field: str) -> int | None:
    """Return a `VmXXX` field of /proc/self/status in KiB, or None where there is no /proc."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the resident-set high-water mark to the current resident memory; False where the OS cannot."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")  # 5: reset the peak resident set size (Linux 4.0 and later)
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """The resident-set high-water mark: VmHWM where there is /proc, else getrusage's ru_maxrss."""
    hwm = read_status_kib("VmHWM")
    if hwm is not None:
        return hwm * 1024
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes on macOS, KiB elsewhere


def current_rss_bytes() -> int | None:
    """Resident memory now, or None where there is no /proc."""
    rss = read_status_kib("VmRSS")
    return None if rss is None else rss * 1024


def child_peak(workload: str, module_name: str, quick: bool) -> dict[str, Any]:
    """Run one peak measurement in this (fresh) process and return its figures."""
    import importlib

    import numpy as np

    mod = importlib.import_module(module_name)
    if workload == "wide":
        data = harness.wide_data(np)
    else:
        data = harness.digits_data(np)
        if data is None:
            raise RuntimeError("scikit-learn is not installed")
    gc.collect()
    before_run = current_rss_bytes()
    import_peak = peak_rss_bytes()  # the high-water mark of the imports, before it is reset
    reset = reset_peak_rss()
    baseline = current_rss_bytes() if reset else peak_rss_bytes()

    if workload == "wide":
        step, _ = harness.wide_torchlike(mod, data)
        steps = QUICK_WIDE_STEPS if quick else WIDE_STEPS
        for _ in range(steps):
            loss = step()
        final = f"loss {loss.item():.4f} after {steps} steps"
    else:
        run = harness.DigitsRun(mod, data)
        epochs = QUICK_DIGITS_EPOCHS if quick else DIGITS_EPOCHS
        for _ in range(epochs):
            loss, accuracy = run.epoch()
        final = f"loss {loss:.4f}, test accuracy {accuracy:.2%} after {epochs} epochs"
    peak = peak_rss_bytes()
    return {
        "version": harness.module_version(mod, module_name),
        "before_run": before_run,
        "baseline": baseline,
        "peak": peak,
        "process_peak": max(peak, import_peak),
        "reset": reset,
        "final": final,
    }


def growth_step(workload: str, mod: Any, np: Any) -> Callable[[], Any]:
    """Return a function that runs one training step of a growth workload."""
    if workload == "seed":
        step, _ = harness.mlp_torchlike(mod, harness.mlp_data(np))
        return step
    data = harness.digits_data(np)
    if data is None:
        raise RuntimeError("scikit-learn is not installed")
    run = harness.DigitsRun(mod, data)
    batches = iter(run.loader)

    def step() -> Any:
        nonlocal batches
        try:
            images, labels = next(batches)
        except StopIteration:  # a new epoch: the loader reshuffles
            batches = iter(run.loader)
            images, labels = next(batches)
        return run.train_step(images, labels)

    return step


def child_growth(workload: str, module_name: str, steps: int, n_samples: int) -> dict[str, Any]:
    """Run `steps` training steps in this (fresh) process, sampling resident and traced memory."""
    import importlib
    import tracemalloc

    import numpy as np

    mod = importlib.import_module(module_name)
    tracemalloc.start()
    step = growth_step(workload, mod, np)
    every = max(1, steps // n_samples)
    samples: list[tuple[int, int | None, int]] = []
    start = time.perf_counter()
    for i in range(1, steps + 1):
        step()
        if i % every == 0 or i == steps:
            # Collected first: garbage that the collector would free anyway is not growth.
            gc.collect()
            samples.append((i, current_rss_bytes(), tracemalloc.get_traced_memory()[0]))
    seconds = time.perf_counter() - start
    tracemalloc.stop()
    return {"version": harness.module_version(mod, module_name), "samples": samples, "seconds": seconds}


def child_main(args: argparse.Namespace) -> int:
    """Entry point of a child process: measure, then print one result line as JSON."""
    harness.pin_threads(args.threads)
    if args.module == "torch":
        import torch

        torch.set_num_threads(args.threads)
    if args.child == "peak":
        result = child_peak(args.workload, args.module, args.quick)
    else:
        n_samples = QUICK_GROWTH_SAMPLES if args.quick else GROWTH_SAMPLES
        result = child_growth(args.workload, args.module, args.steps, n_samples)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------- driving (parent side)


def run_child(args: argparse.Namespace, kind: str, workload: str, module: str) -> dict[str, Any]:
    """Run one measurement in a fresh subprocess and return its result; raise RuntimeError if it fails."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        kind,
        "--workload",
        workload,
        "--module",
        module,
        "--threads",
        str(args.threads),
        "--steps",
        str(args.steps),
    ]
    if args.quick:
        command.append("--quick")
    done = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise RuntimeError(f"exit status {done.returncode}: {tail}")


@dataclass
class Slope:
    """A least-squares line through (step, bytes) samples: bytes per step, and over the measured steps."""

    per_step: float
    over_run: float
    first: int
    last: int


def fit_slope(points: list[tuple[int, int]], total_steps: int) -> Slope | None:
    """Fit bytes against step over the samples after the warm-up; None with fewer than two samples."""
    kept = [(s, b) for s, b in points if s > WARMUP_FRACTION * total_steps] or points
    if len(kept) < 2:
        return None
    n = len(kept)
    mean_s = sum(s for s, _ in kept) / n
    mean_b = sum(b for _, b in kept) / n
    var = sum((s - mean_s) ** 2 for s, _ in kept)
    per_step = sum((s - mean_s) * (b - mean_b) for s, b in kept) / var if var else 0.0
    return Slope(per_step, per_step * (kept[-1][0] - kept[0][0]), kept[0][1], kept[-1][1])


def mib(value: float | None, signed: bool = False) -> str:
    """Format bytes as MiB with two decimals, or 'n/a'."""
    if value is None:
        return "n/a"
    return f"{value / MIB:+.2f}" if signed else f"{value / MIB:.2f}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (the --child options are for the subprocesses this script starts)."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"training steps of each growth run (default: {DEFAULT_STEPS}, {QUICK_STEPS} with --quick)",
    )
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test, not a measurement")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads for numpy's BLAS and for torch (default: 1)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="markdown report (default: benchmarks/results/memory.md)",
    )
    parser.add_argument("--child", choices=["peak", "growth"], help=argparse.SUPPRESS)
    parser.add_argument("--workload", choices=["wide", "digits", "seed"], help=argparse.SUPPRESS)
    parser.add_argument("--module", choices=sorted(IMPLEMENTATIONS.values()), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = QUICK_STEPS if args.quick else DEFAULT_STEPS
    if args.steps < 2:
        parser.error("--steps must be at least 2")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every measurement in its own subprocess, print the markdown report and write it to --out.

    Returns 0 when every measurement ran, 1 when one failed (listed under "Failures"). A PyTorch or
    scikit-learn that is not installed skips what needs it, with a note. Growth above the limit does
    not change the status: the script measures, it does not judge.
    """
    args = parse_args(argv)
    if args.child:
        return child_main(args)

    import importlib.util

    notes: list[str] = []
    labels = ["gradcore"]
    if importlib.util.find_spec("torch") is not None:
        labels.append("PyTorch")
    else:
        notes.append("PyTorch is not installed: the PyTorch comparison is skipped.")
    peak_workloads = ["wide"]
    growth_workloads = ["seed"]
    if importlib.util.find_spec("sklearn") is not None:
        peak_workloads.append("digits")
        growth_workloads.append("digits")
    else:
        notes.append("scikit-learn is not installed: the digits runs, which need its data set, are skipped.")
    if args.quick:
        notes.append("--quick: short runs; a smoke test, not a measurement.")

    failures: list[str] = []
    peaks: dict[tuple[str, str], dict[str, Any]] = {}
    for workload in peak_workloads:
        for label in labels:
            print(f"peak: {workload} by {label} ...", flush=True)
            try:
                peaks[workload, label] = run_child(args, "peak", workload, IMPLEMENTATIONS[label])
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failures.append(f"peak, {workload}, {label}: {exc}")
    growths: dict[tuple[str, str], dict[str, Any]] = {}
    for workload in growth_workloads:
        for label in labels:
            print(f"growth: {workload} by {label}, {args.steps} steps ...", flush=True)
            try:
                growths[workload, label] = run_child(args, "growth", workload, IMPLEMENTATIONS[label])
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failures.append(f"growth, {workload}, {label}: {exc}")
    if any(not p["reset"] for p in peaks.values()):
        notes.append(
            "The peak could not be reset after the imports: the baseline is the high-water mark so far, and "
            "a run that stays below the imports' transient peak shows less than it used."
        )

    # Report -------------------------------------------------------------------
    import numpy as np  # after the children: the parent measures nothing itself

    versions = {label: "not measured" for label in IMPLEMENTATIONS}
    for (_, label), figures in (*peaks.items(), *growths.items()):
        versions[label] = figures["version"]
    env = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": versions["PyTorch"] if "PyTorch" in labels else "not installed",
        "gradcore": versions["gradcore"],
        "platform": platform.platform(),
        "processor": harness.cpu_model(),
        "cpu count": str(os.cpu_count()),
        "threads": ", ".join(f"{v}={args.threads}" for v in harness.THREAD_ENV_VARS)
        + (f", torch.set_num_threads({args.threads})" if "PyTorch" in labels else ""),
    }
    lines = [
        "# gradcore memory benchmarks",
        "",
        f"Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}  ",
        f"Command: `{shlex.join([Path(sys.executable).name, *sys.argv])}`  ",
        "Each figure comes from a fresh process. MiB = 2^20 bytes.",
        "",
    ]
    if notes:
        lines += [*(f"> {note}  " for note in notes), ""]
    lines += ["| | |", "| --- | --- |", *(f"| {key} | {value} |" for key, value in env.items()), ""]

    titles = {
        "wide": f"wide MLP, {QUICK_WIDE_STEPS if args.quick else WIDE_STEPS} SGD steps",
        "digits": f"digits example, {QUICK_DIGITS_EPOCHS if args.quick else DIGITS_EPOCHS} epochs",
        "seed": "seed MLP step (manual SGD)",
    }
    n_samples = QUICK_GROWTH_SAMPLES if args.quick else GROWTH_SAMPLES
    growth_titles = {**titles, "digits": "digits training step (nn, Adam, DataLoader)"}
    lines += [
        "## Peak resident memory",
        "",
        (
            "Run peak = resident high-water mark during the run minus resident memory just before it (after the "
            "imports and the input data): what training adds, one-time initialisation inside the library "
            "included. Process peak = the high-water mark of the whole process, imports included. Ratios are "
            "gradcore's figure divided by PyTorch's."
        ),
        "",
        (
            "| run | implementation | resident before the run (MiB) | run peak (MiB) | gradcore / PyTorch | "
            "process peak (MiB) | gradcore / PyTorch | final state |"
        ),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for workload in peak_workloads:
        torch_figures = peaks.get((workload, "PyTorch"))
        for label in labels:
            figures = peaks.get((workload, label))
            if figures is None:
                continue
            run_peak = figures["peak"] - figures["baseline"]
            run_ratio = process_ratio = ""
            if label == "gradcore" and torch_figures is not None:
                run_ratio = harness.fmt_ratio(run_peak, torch_figures["peak"] - torch_figures["baseline"])
                process_ratio = harness.fmt_ratio(figures["process_peak"], torch_figures["process_peak"])
            lines.append(
                f"| {titles[workload]} | {label} | {mib(figures['before_run'])} | {mib(run_peak)} | {run_ratio} | "
                f"{mib(figures['process_peak'])} | {process_ratio} | {figures['final']} |"
            )
    lines += [
        "",
        "## Growth over a long run",
        "",
        (
            f"{args.steps} training steps; after a garbage collection, resident memory (RSS) and traced memory "
            f"(tracemalloc) are sampled {n_samples} times. The slope is a least-squares fit over the samples "
            f"after the first {WARMUP_FRACTION:.0%} of the steps; 'over the run' is the slope times the steps it "
            f"covers. No growth: less than {GROWTH_LIMIT_BYTES / MIB:g} MiB over the run in both. The run time "
            "includes tracemalloc's cost, which slows every allocation."
        ),
        "",
        (
            "| run | implementation | RSS first → last (MiB) | RSS slope (bytes/step) | RSS over the run (MiB) | "
            "traced first → last (MiB) | traced slope (bytes/step) | traced over the run (MiB) | run time (s) | "
            "verdict |"
        ),
        "| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for workload in growth_workloads:
        for label in labels:
            figures = growths.get((workload, label))
            if figures is None:
                continue
            samples = figures["samples"]
            traced = fit_slope([(s, t) for s, _, t in samples], args.steps)
            rss = None
            if all(r is not None for _, r, _ in samples):
                rss = fit_slope([(s, r) for s, r, _ in samples], args.steps)
            slopes = [x for x in (rss, traced) if x is not None]
            grows = any(abs(x.over_run) >= GROWTH_LIMIT_BYTES for x in slopes)
            verdict = "n/a" if not slopes else ("GROWS" if grows else "no growth")
            cells = []
            for slope in (rss, traced):
                if slope is None:
                    cells += ["n/a", "n/a", "n/a"]
                else:
                    cells += [
                        f"{mib(slope.first)} → {mib(slope.last)}",
                        f"{slope.per_step:+.1f}",
                        mib(slope.over_run, signed=True),
                    ]
            lines.append(
                f"| {growth_titles[workload]} | {label} | {' | '.join(cells)} | {figures['seconds']:.1f} | {verdict} |"
            )
    lines += [""]
    if failures:
        lines += ["## Failures", "", *(f"- {failure}" for failure in failures), ""]
    report = "\n".join(lines)

    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(f"(written to {args.out})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
