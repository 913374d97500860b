#!/usr/bin/env python3
"""Benchmark ``gradcore.compile`` on the CPU: captured replays against eager gradcore, numpy and PyTorch.

Three workloads, all in one process, timed as in ``benchmarks/cpu.py`` (medians of interleaved rounds after a
warm-up, threads pinned to 1 before numpy or torch loads); every ratio compares figures of that same process:

(a) the tiny chain ``((a * b) + a).sigmoid().sum().backward()`` on two tensors of shape (4,) that require
    grad: gradcore eager, gradcore compiled, PyTorch eager, and PyTorch's own ``torch.compile`` for information.
(b) one training step of ``examples/seed_mlp.py`` (workload (b) of cpu.py): the hand-written numpy floor,
    gradcore eager, gradcore compiled (the whole step: forward, backward, SGD update, zeroing), PyTorch eager
    and ``torch.compile`` of the same step.
(c) one epoch of ``examples/train_digits.py`` (workload (d) of cpu.py), with its training step compiled, against
    the same epoch eager, in PyTorch, and in PyTorch with ``torch.compile`` on the training step.

Before timing, each implementation's first step is checked: compiled gradcore against eager gradcore bit for bit
((a), (b)), and every implementation against the reference of cpu.py. ``torch.compile`` needs a C++ compiler and
takes seconds to compile; when it fails, the report says so. ``--no-torch-compile`` leaves it out.

Usage::

    python benchmarks/compile.py            # full run, writes benchmarks/results/compile.md
    python benchmarks/compile.py --quick    # a smoke test
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path[:1]:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import cpu as base  # noqa: E402 - after the path; imports only the standard library

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "compile.md"
DEFAULT_REPEATS = {"a": 2000, "b": 300, "c": 40}
QUICK_REPEATS = {"a": 20, "b": 5, "c": 2}
TARGET_CHAIN_VS_TORCH = 0.5  # the captured tiny chain: at most half of PyTorch eager
TARGET_SEED_VS_NUMPY = 1.10  # the captured seed MLP step: at most 1.10x the hand-written numpy


def chain_builder(mod: ModuleType, compile_with: Callable | None) -> Callable[[], tuple[Callable, Callable]]:
    """Workload (a) for a PyTorch-API module, run as is or through ``compile_with``: (run, gradients)."""

    def build():
        mod.manual_seed(0)
        a = mod.randn(4, requires_grad=True)
        b = mod.randn(4, requires_grad=True)

        def chain(a, b):
            ((a * b) + a).sigmoid().sum().backward()

        step = compile_with(chain) if compile_with else chain

        def run() -> None:
            a.grad = None
            b.grad = None
            step(a, b)

        return run, lambda: (a.grad.detach().numpy().copy(), b.grad.detach().numpy().copy())

    return build


def checked_against(np: ModuleType, build: Callable, reference: Callable | None, exact: bool) -> tuple:
    """Runs a builder's first step and compares what it returns with the reference builder's."""
    run, result = build()

    def check() -> str:
        run()
        if reference is None:
            return "unchecked"
        ref_run, ref_result = reference()
        ref_run()
        got, want = result(), ref_result()
        if exact:
            same = all(np.array_equal(g, w) for g, w in zip(got, want))
            return "ok" if same else "MISMATCH (not bit for bit)"
        return base.check_agreement(np, got, want, rtol=1e-5, atol=1e-6)

    return run, check


def seed_builder(mod: ModuleType, data: dict, compile_with: Callable | None) -> Callable:
    """Workload (b) of cpu.py, run as is or with its whole step through ``compile_with``."""

    def build():
        step, weights = base.mlp_torchlike(mod, data)
        return (compile_with(step) if compile_with else step), weights

    return build


def seed_checked(np: ModuleType, build: Callable, reference: Callable, exact: bool) -> tuple:
    step, weights = build()

    def check() -> str:
        loss = step().item()
        ref_step, ref_weights = reference()
        ref_loss = ref_step()
        ref_loss = ref_loss.item() if hasattr(ref_loss, "item") else float(ref_loss)
        if exact:
            same = loss == ref_loss and all(np.array_equal(g, w) for g, w in zip(weights(), ref_weights()))
            return "ok" if same else "MISMATCH (not bit for bit)"
        return base.check_agreement(np, (np.float64(loss),) + tuple(weights()),
                                    (np.float64(ref_loss),) + tuple(ref_weights()), rtol=1e-4, atol=1e-6)

    return step, check


def digits_builder(mod: ModuleType, data: dict, compile_with: Callable | None, reference) -> Callable:
    def build(_mod):
        run = base.DigitsRun(mod, data)
        if compile_with is not None:
            run.train_step = compile_with(run.train_step)
        return base.digits_checked(base_np, run.epoch, reference)

    return build


base_np: Any = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few repeats, for a smoke test")
    parser.add_argument("--workloads", default="a,b,c", help="comma-separated subset of a,b,c")
    parser.add_argument("--no-torch-compile", action="store_true", help="leave PyTorch's torch.compile out")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the markdown report")
    args = parser.parse_args(argv)
    base.pin_threads(1)
    global base_np
    import numpy as np

    base_np = np
    import gradcore

    try:
        import torch
    except ImportError:
        torch = None
    repeats = QUICK_REPEATS if args.quick else DEFAULT_REPEATS
    failures: list[str] = []
    ctx = base.Context(np, gradcore, "gradcore eager", torch, repeats, 1 if args.quick else 5, failures)
    workloads = args.workloads.split(",")
    torch_compile = None
    if torch is not None and not args.no_torch_compile:
        torch_compile = torch.compile
    sections: list[str] = []
    targets: list[base.Target] = []

    def g_eager(build):
        return lambda _m: build()

    if "a" in workloads:
        eager_chain = chain_builder(gradcore, None)
        impls = [
            ("gradcore eager", gradcore, lambda _m: checked_against(np, eager_chain, None, False)),
            ("gradcore compiled", gradcore,
             lambda _m: checked_against(np, chain_builder(gradcore, gradcore.compile), eager_chain, True)),
        ]
        if torch is not None:
            impls.append(("PyTorch eager", torch,
                          lambda _m: checked_against(np, chain_builder(torch, None), eager_chain, False)))
        if torch_compile is not None:
            impls.append(("PyTorch torch.compile", torch,
                          lambda _m: checked_against(np, chain_builder(torch, torch_compile), eager_chain, False)))
        results = ctx.run("a", "tiny chain", impls)
        value = base.ratio(base.median_of(results, "gradcore compiled"), base.median_of(results, "PyTorch eager"))
        target = base.Target("a", "PyTorch eager (gradcore compiled)", TARGET_CHAIN_VS_TORCH, False, value)
        targets.append(target)
        sections += ["## (a) tiny chain `((a * b) + a).sigmoid().sum().backward()`, shape (4,)", "",
                     *_table(results, "gradcore compiled", "µs", 1e6, 1), "", target.line(), ""]
    if "b" in workloads:
        data = base.mlp_data(np)
        eager_seed = seed_builder(gradcore, data, None)

        def numpy_reference():
            step, weights = base.mlp_numpy(np, data)
            return step, weights

        impls = [
            ("numpy (hand-written floor)", np, lambda _m: seed_checked(np, numpy_reference, eager_seed, False)),
            ("gradcore eager", gradcore, lambda _m: seed_checked(np, eager_seed, numpy_reference, False)),
            ("gradcore compiled", gradcore,
             lambda _m: seed_checked(np, seed_builder(gradcore, data, gradcore.compile), eager_seed, True)),
        ]
        if torch is not None:
            impls.append(("PyTorch eager", torch,
                          lambda _m: seed_checked(np, seed_builder(torch, data, None), numpy_reference, False)))
        if torch_compile is not None:
            impls.append(("PyTorch torch.compile", torch,
                          lambda _m: seed_checked(np, seed_builder(torch, data, torch_compile), numpy_reference,
                                                  False)))
        results = ctx.run("b", "seed MLP step", impls)
        value = base.ratio(base.median_of(results, "gradcore compiled"),
                           base.median_of(results, "numpy (hand-written floor)"))
        target = base.Target("b", "numpy (gradcore compiled)", TARGET_SEED_VS_NUMPY, False, value)
        targets.append(target)
        sections += ["## (b) seed MLP training step (N=64, D_in=1000, H=100, D_out=10)", "",
                     *_table(results, "gradcore compiled", "ms", 1e3, 3), "", target.line(), ""]
    if "c" in workloads:
        data = base.digits_data(np)
        if data is None:
            failures.append("(c) skipped: scikit-learn is not installed")
        else:
            reference = None
            if torch is not None:
                reference = base.DigitsRun(torch, data).epoch()
            impls = [
                ("gradcore eager", gradcore, digits_builder(gradcore, data, None, reference)),
                ("gradcore compiled", gradcore, digits_builder(gradcore, data, gradcore.compile, reference)),
            ]
            if torch is not None:
                impls.append(("PyTorch eager", torch, digits_builder(torch, data, None, reference)))
            if torch_compile is not None:
                impls.append(("PyTorch torch.compile", torch, digits_builder(torch, data, torch_compile, reference)))
            results = ctx.run("c", "digits epoch", impls)
            sections += ["## (c) one epoch of examples/train_digits.py (training step compiled)", "",
                         *_table(results, "gradcore compiled", "ms", 1e3, 1), "",
                         "gradcore compiled / gradcore eager: "
                         f"{base.fmt_ratio(base.median_of(results, 'gradcore compiled'), base.median_of(results, 'gradcore eager'))}; "
                         "gradcore compiled / PyTorch eager: "
                         f"{base.fmt_ratio(base.median_of(results, 'gradcore compiled'), base.median_of(results, 'PyTorch eager'))}",
                         ""]
    report = _report(sections, targets, failures, args, np, torch)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    return 1 if any(f for f in failures if "MISMATCH" in f) else 0


def _table(results: dict, label: str, unit: str, scale: float, digits: int) -> list[str]:
    lines = [f"| implementation | {unit} (median) | p25-p75 | compiled / this | first step (compiled: bit for bit"
             " against eager) |",
             "| --- | ---: | ---: | ---: | --- |"]
    compiled = base.median_of(results, label)
    for name, result in results.items():
        q1, q3 = result.timing.quartiles
        lines.append(f"| {name} | {result.timing.median * scale:.{digits}f} | {q1 * scale:.{digits}f}-"
                     f"{q3 * scale:.{digits}f} | {base.fmt_ratio(compiled, result.timing.median)} | {result.check} |")
    return lines


def _report(sections: list[str], targets: list, failures: list[str], args, np, torch) -> str:
    import gradcore

    lines = ["# gradcore.compile on the CPU", "",
             f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC with "
             f"`python benchmarks/compile.py{' --quick' if args.quick else ''}` on {base.cpu_model()} "
             f"({platform.python_implementation()} {platform.python_version()}, numpy {np.__version__}, "
             f"PyTorch {getattr(torch, '__version__', 'not installed')}, gradcore {gradcore.__version__ if hasattr(gradcore, '__version__') else 'tree'}); "
             f"load average {base.load_average()}; 1 thread.", "",
             "Times are medians of interleaved rounds in one process; ratios compare figures of this run only.", ""]
    lines += sections
    if targets:
        lines += ["## Targets", ""] + [f"- ({t.workload}) {t.line().strip()}" for t in targets] + [""]
    if failures:
        lines += ["## Not measured or failed", ""] + [f"- {f}" for f in failures] + [""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
