#!/usr/bin/env python3
"""Benchmark gradcore on the CPU against PyTorch and hand-written numpy.

Two workloads, all in one process, each timed as the median of repeated runs
after a warm-up (``time.perf_counter``):

(a) per-op overhead: a chain of K=100 elementwise ops (alternating ``y * 1.001``
    and ``y + 0.5``) on a tiny tensor of shape (4,) that requires grad, then
    ``y.sum().backward()``. Reported as microseconds per op (run time / K), for
    gradcore, PyTorch, and a numpy floor that does the same forward arithmetic
    and the backward products by hand.
(b) one training step of the two-layer network of ``examples/seed_mlp.py``
    (N=64, D_in=1000, H=100, D_out=10, float32): forward, sum-of-squares loss,
    backward, SGD update under ``no_grad``, gradient zeroing. Reported as
    milliseconds per step for gradcore, hand-written numpy and PyTorch.

Thread counts are pinned before numpy or torch is imported (1 unless
``--threads N``). The report is printed and written as markdown to ``--out``.

Usage::

    python benchmarks/cpu.py                # full run
    python benchmarks/cpu.py --quick        # a few repeats, for a smoke test
    python benchmarks/cpu.py --threads 2 --repeats 300 --out /tmp/cpu.md
"""

from __future__ import annotations

# Only the standard library is imported here: numpy and torch read their thread
# settings when first imported, so they are imported in main() after pinning.
import argparse
import datetime
import gc
import importlib
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "cpu.md"

CHAIN_LENGTH = 100  # K, the number of elementwise ops in workload (a)
CHAIN_SHAPE = (4,)
CHAIN_MUL = 1.001
CHAIN_ADD = 0.5

MLP_SIZES = (64, 1000, 100, 10)  # N, D_in, H, D_out
MLP_LR = 1e-6

# Targets, as ratios of gradcore's time to a baseline's (lower is better).
TARGET_MLP_VS_NUMPY = 1.15
TARGET_MLP_VS_TORCH = 1.0  # "faster than torch": strictly below
TARGET_OP_VS_TORCH = 1.0  # "no more than torch": at most

DEFAULT_REPEATS = 200
QUICK_REPEATS = 10


# --------------------------------------------------------------------------- set-up


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"timed runs per workload and implementation (default: {DEFAULT_REPEATS}, "
        f"{QUICK_REPEATS} with --quick)",
    )
    parser.add_argument("--quick", action="store_true", help="few repeats: a smoke test, not a measurement")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads for numpy's BLAS and for torch (default: 1)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="markdown report to write (default: benchmarks/results/cpu.md)",
    )
    parser.add_argument(
        "--impl-module",
        default="gradcore",
        help="module benchmarked as gradcore (default: gradcore); 'torch' exercises the harness itself",
    )
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = QUICK_REPEATS if args.quick else DEFAULT_REPEATS
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


def pin_threads(n: int) -> None:
    """Set the BLAS/OpenMP thread variables to `n`; must run before numpy or torch is imported."""
    already = [name for name in ("numpy", "torch") if name in sys.modules]
    if already:
        raise RuntimeError(f"pin_threads() must run before importing {', '.join(already)}")
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(n)


def module_version(module: ModuleType | None, dist_name: str) -> str:
    """Return a module's version: its __version__, else the installed distribution's, else 'unknown'."""
    version = getattr(module, "__version__", None)
    if version:
        return str(version)
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        return dist_version(dist_name)
    except (ImportError, PackageNotFoundError):
        return "unknown"


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo where there is one, else platform's processor."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# --------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Wall-clock samples, in seconds, of one workload run by one implementation."""

    samples: list[float]

    @property
    def median(self) -> float:
        """Median run time in seconds."""
        return statistics.median(self.samples)

    @property
    def quartiles(self) -> tuple[float, float]:
        """25th and 75th percentiles of the run time, in seconds."""
        if len(self.samples) < 2:
            return self.samples[0], self.samples[0]
        q = statistics.quantiles(self.samples, n=4)
        return q[0], q[2]


def measure(run: Callable[[], Any], repeats: int) -> Timing:
    """Time `run` `repeats` times after a warm-up and return the samples."""
    warmup = max(3, repeats // 10)
    for _ in range(warmup):
        run()
    gc.collect()  # start from a clean heap; collection stays enabled while timing
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return Timing(samples)


# --------------------------------------------------------------------------- (a) per-op overhead


def chain_torchlike(mod: ModuleType) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Build workload (a) for a PyTorch-API module: (run, gradient of the last run as a numpy array)."""
    x = mod.randn(*CHAIN_SHAPE, requires_grad=True)

    def run() -> None:
        x.grad = None
        y = x
        for i in range(CHAIN_LENGTH):
            if i % 2 == 0:
                y = y * CHAIN_MUL
            else:
                y = y + CHAIN_ADD
        y.sum().backward()

    return run, lambda: x.grad.detach().numpy()


def chain_numpy(np: ModuleType) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Build the numpy floor for workload (a): the forward chain and its backward written by hand."""
    x = np.random.default_rng(0).standard_normal(CHAIN_SHAPE, dtype=np.float32)
    result: dict[str, Any] = {}

    def run() -> None:
        y = x
        for i in range(CHAIN_LENGTH):
            if i % 2 == 0:
                y = y * CHAIN_MUL
            else:
                y = y + CHAIN_ADD
        # d(sum)/dy is ones; an add passes the gradient through, a multiply scales it.
        grad = np.ones_like(y)
        for i in reversed(range(CHAIN_LENGTH)):
            if i % 2 == 0:
                grad = grad * CHAIN_MUL
        result["grad"] = grad

    return run, lambda: result["grad"]


# --------------------------------------------------------------------------- (b) MLP training step


def mlp_data(np: ModuleType) -> dict[str, Any]:
    """Return the float32 inputs and initial weights shared by every implementation of workload (b)."""
    n, d_in, h, d_out = MLP_SIZES
    rng = np.random.default_rng(0)
    shapes = {"x": (n, d_in), "y": (n, d_out), "w1": (d_in, h), "w2": (h, d_out)}
    return {name: rng.standard_normal(shape, dtype=np.float32) for name, shape in shapes.items()}


def mlp_torchlike(mod: ModuleType, data: dict[str, Any]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Build workload (b) for a PyTorch-API module: (step, current w1 and w2 as numpy arrays)."""
    x = mod.tensor(data["x"])
    y = mod.tensor(data["y"])
    w1 = mod.tensor(data["w1"], requires_grad=True)
    w2 = mod.tensor(data["w2"], requires_grad=True)
    learning_rate = MLP_LR

    def step() -> Any:
        nonlocal w1, w2  # `w -= ...` updates in place, as in the example, and rebinds the name
        y_pred = x.mm(w1).clamp(min=0).mm(w2)
        loss = (y_pred - y).pow(2).sum()
        loss.backward()
        with mod.no_grad():
            w1 -= learning_rate * w1.grad
            w2 -= learning_rate * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()
        return loss

    return step, lambda: (w1.detach().numpy(), w2.detach().numpy())


def mlp_numpy(np: ModuleType, data: dict[str, Any]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Build workload (b) in numpy, forward and backward written by hand: (step, current w1 and w2)."""
    x, y = data["x"], data["y"]
    w1, w2 = data["w1"].copy(), data["w2"].copy()
    learning_rate = MLP_LR

    def step() -> Any:
        nonlocal w1, w2  # `w -= ...` updates in place and rebinds the name
        h = x @ w1
        h_relu = np.maximum(h, 0)
        y_pred = h_relu @ w2
        diff = y_pred - y
        loss = np.square(diff).sum()

        grad_y_pred = 2.0 * diff
        grad_w2 = h_relu.T @ grad_y_pred
        grad_h = grad_y_pred @ w2.T
        grad_h[h < 0] = 0
        grad_w1 = x.T @ grad_h

        w1 -= learning_rate * grad_w1
        w2 -= learning_rate * grad_w2
        return loss

    return step, lambda: (w1, w2)


def first_step(
    step: Callable[[], Any], weights: Callable[[], Any], data: dict[str, Any]
) -> tuple[float, tuple[Any, Any]]:
    """Run one training step; return its loss and the updates it applied to w1 and w2."""
    loss = step().item()
    w1, w2 = weights()
    return loss, (w1 - data["w1"], w2 - data["w2"])


# --------------------------------------------------------------------------- checks and report


def check_agreement(np: ModuleType, got: Any, want: Any, rtol: float, atol: float) -> str:
    """Compare arrays (or tuples of arrays) and return 'ok' or a short description of the mismatch."""
    got_t = got if isinstance(got, tuple) else (got,)
    want_t = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got_t, want_t):
        g, w = np.asarray(g), np.asarray(w)
        if g.shape != w.shape:
            return f"MISMATCH (shape {g.shape} vs {w.shape})"
        if not np.allclose(g, w, rtol=rtol, atol=atol):
            return f"MISMATCH (max abs diff {float(np.max(np.abs(g - w))):.3g})"
    return "ok"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return numerator/denominator, or None when either is missing."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def fmt_ratio(numerator: float | None, denominator: float | None) -> str:
    """Format numerator/denominator as '1.23x', or 'n/a' when either is missing."""
    value = ratio(numerator, denominator)
    return "n/a" if value is None else f"{value:.2f}x"


def target_verdict(value: float | None, limit: float, strict: bool) -> str:
    """Return 'met', 'NOT met' or 'n/a' for a ratio against its target limit."""
    if value is None:
        return "n/a (not measured)"
    ok = value < limit if strict else value <= limit
    return "met" if ok else "NOT met"


def main(argv: list[str] | None = None) -> int:
    """Run both workloads, print the markdown report and write it to --out; return the exit status.

    The status is 0 when every implementation ran and passed its check, 1 when one raised or computed a
    wrong result (listed under "Failures"), 2 when the module under test cannot be imported. Missed
    targets do not change the status.
    """
    args = parse_args(argv)
    pin_threads(args.threads)

    import numpy as np

    notes: list[str] = []
    try:
        import torch as real_torch
    except ImportError:
        real_torch = None
        notes.append("PyTorch is not installed: the PyTorch baseline is skipped.")
    if real_torch is not None:
        real_torch.set_num_threads(args.threads)

    try:
        impl = importlib.import_module(args.impl_module)
    except ImportError as exc:  # the subject of the benchmark; nothing to measure without it
        print(f"cannot import {args.impl_module}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    impl_label = "gradcore" if args.impl_module == "gradcore" else f"gradcore (stand-in: {args.impl_module})"
    if args.impl_module != "gradcore":
        notes.append(
            f"The gradcore column was produced by module `{args.impl_module}` standing in for gradcore "
            "(harness debugging); these are not gradcore figures."
        )
    if args.quick:
        notes.append("--quick: few repeats; a smoke test, not a measurement.")

    env = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": module_version(real_torch, "torch") if real_torch is not None else "not installed",
        "gradcore": module_version(impl, args.impl_module),
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpu count": str(os.cpu_count()),
        "threads": ", ".join(f"{v}={os.environ[v]}" for v in THREAD_ENV_VARS)
        + (f", torch.get_num_threads()={real_torch.get_num_threads()}" if real_torch is not None else ""),
    }
    for key, value in env.items():
        print(f"{key + ':':11} {value}")
    for note in notes:
        print(f"note: {note}")
    print(f"repeats: {args.repeats} per workload and implementation\n", flush=True)

    # (a) per-op overhead ------------------------------------------------------
    expected_grad = np.full(CHAIN_SHAPE, CHAIN_MUL ** ((CHAIN_LENGTH + 1) // 2), dtype=np.float32)
    chain_impls: list[tuple[str, ModuleType | None, Callable[..., Any]]] = [
        (impl_label, impl, chain_torchlike),
        ("numpy (hand-written floor)", np, lambda _m: chain_numpy(np)),
        ("PyTorch", real_torch, chain_torchlike),
    ]
    failures: list[str] = []  # implementations that raised: left out of the tables, listed in the report
    chain: dict[str, tuple[Timing, str]] = {}
    for label, mod, build in chain_impls:
        if mod is None:
            continue
        print(f"(a) per-op overhead: {label} ...", flush=True)
        try:
            run, grad = build(mod)
            timing = measure(run, args.repeats)
            chain[label] = (timing, check_agreement(np, grad(), expected_grad, rtol=1e-5, atol=1e-6))
        except Exception as exc:  # noqa: BLE001 - reported, and the other implementations still run
            failures.append(f"(a) {label}: {type(exc).__name__}: {exc}")

    # (b) MLP training step ----------------------------------------------------
    data = mlp_data(np)
    mlp_impls: list[tuple[str, ModuleType | None, Callable[..., Any]]] = [
        (impl_label, impl, lambda m: mlp_torchlike(m, data)),
        ("numpy (hand-written)", np, lambda _m: mlp_numpy(np, data)),
        ("PyTorch", real_torch, lambda m: mlp_torchlike(m, data)),
    ]
    # Agreement: from the same start, the first step must give numpy's loss and weight updates.
    ref_loss, ref_updates = first_step(*mlp_numpy(np, data), data)
    mlp: dict[str, tuple[Timing, str]] = {}
    for label, mod, build in mlp_impls:
        if mod is None:
            continue
        print(f"(b) MLP training step: {label} ...", flush=True)
        try:
            step, weights = build(mod)
            loss, updates = first_step(step, weights, data)
            agreement = check_agreement(np, loss, ref_loss, rtol=1e-4, atol=0.0)
            if agreement == "ok":
                agreement = check_agreement(np, updates, ref_updates, rtol=1e-3, atol=2e-6)
            mlp[label] = (measure(step, args.repeats), agreement)
        except Exception as exc:  # noqa: BLE001 - reported, and the other implementations still run
            failures.append(f"(b) {label}: {type(exc).__name__}: {exc}")
    print(flush=True)

    # Report -------------------------------------------------------------------
    def median(table: dict[str, tuple[Timing, str]], label: str) -> float | None:
        return table[label][0].median if label in table else None

    op_impl = median(chain, impl_label)
    op_torch = median(chain, "PyTorch")
    op_numpy = median(chain, "numpy (hand-written floor)")
    mlp_impl = median(mlp, impl_label)
    mlp_numpy_t = median(mlp, "numpy (hand-written)")
    mlp_torch = median(mlp, "PyTorch")

    lines = [
        "# gradcore CPU benchmarks",
        "",
        f"Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}  ",
        f"Command: `{shlex.join([Path(sys.executable).name, *sys.argv])}`  ",
        (
            f"Repeats: {args.repeats} timed runs per workload and implementation, after a warm-up; "
            "figures are medians, with the interquartile range (p25-p75) beside them."
        ),
        "",
    ]
    if notes:
        lines += [*(f"> {note}  " for note in notes), ""]
    lines += ["| | |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in env.items()]

    lines += [
        "",
        f"## (a) Per-op overhead: {CHAIN_LENGTH} elementwise ops on shape {CHAIN_SHAPE}, forward + backward",
        "",
        "| implementation | µs per op (median) | p25-p75 | gradcore / this | gradient check |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for label, (timing, agreement) in chain.items():
        q1, q3 = timing.quartiles
        lines.append(
            f"| {label} | {timing.median / CHAIN_LENGTH * 1e6:.2f} | "
            f"{q1 / CHAIN_LENGTH * 1e6:.2f}-{q3 / CHAIN_LENGTH * 1e6:.2f} | "
            f"{fmt_ratio(op_impl, timing.median)} | {agreement} |"
        )
    op_ratio = ratio(op_impl, op_torch)
    lines += [
        "",
        (
            f"gradcore / PyTorch: {fmt_ratio(op_impl, op_torch)} — target at most {TARGET_OP_VS_TORCH:.2f}x: "
            f"{target_verdict(op_ratio, TARGET_OP_VS_TORCH, strict=False)}  "
        ),
        f"gradcore / numpy floor: {fmt_ratio(op_impl, op_numpy)} (for information)",
    ]

    n, d_in, h, d_out = MLP_SIZES
    lines += [
        "",
        f"## (b) Two-layer MLP training step (N={n}, D_in={d_in}, H={h}, D_out={d_out}, float32)",
        "",
        "| implementation | ms per step (median) | p25-p75 | gradcore / this | first-step check vs numpy |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for label, (timing, agreement) in mlp.items():
        q1, q3 = timing.quartiles
        lines.append(
            f"| {label} | {timing.median * 1e3:.3f} | {q1 * 1e3:.3f}-{q3 * 1e3:.3f} | "
            f"{fmt_ratio(mlp_impl, timing.median)} | {agreement} |"
        )
    vs_numpy = ratio(mlp_impl, mlp_numpy_t)
    vs_torch = ratio(mlp_impl, mlp_torch)
    lines += [
        "",
        (
            f"gradcore / numpy: {fmt_ratio(mlp_impl, mlp_numpy_t)} — target at most {TARGET_MLP_VS_NUMPY:.2f}x: "
            f"{target_verdict(vs_numpy, TARGET_MLP_VS_NUMPY, strict=False)}  "
        ),
        (
            f"gradcore / PyTorch: {fmt_ratio(mlp_impl, mlp_torch)} — target below {TARGET_MLP_VS_TORCH:.2f}x: "
            f"{target_verdict(vs_torch, TARGET_MLP_VS_TORCH, strict=True)}"
        ),
        "",
    ]
    for workload, table in (("(a)", chain), ("(b)", mlp)):
        failures += [
            f"{workload} {label}: result {check}" for label, (_, check) in table.items() if check != "ok"
        ]
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
