#!/usr/bin/env python3
"""Benchmark gradcore on the CPU against PyTorch and hand-written numpy.

Four workloads, all in one process, each timed as the median of repeated runs
after a warm-up (``time.perf_counter``); every ratio compares figures taken in
that same process:

(a) per-op overhead: a chain of K=100 elementwise ops (alternating ``y * 1.001``
    and ``y + 0.5``) on a tiny tensor of shape (4,) that requires grad, then
    ``y.sum().backward()``. Reported as microseconds per op (run time / K), for
    gradcore, PyTorch, and a numpy floor that does the same forward arithmetic
    and the backward products by hand.
(b) one training step of the two-layer network of ``examples/seed_mlp.py``
    (N=64, D_in=1000, H=100, D_out=10, float32): forward, sum-of-squares loss,
    backward, SGD update under ``no_grad``, gradient zeroing. Reported as
    milliseconds per step for gradcore, hand-written numpy and PyTorch.
(c) one training step of a wide MLP (batch 256, 784-512-512-10, bias, ReLU,
    cross-entropy, SGD) written with ``nn`` and ``optim``, against the same
    network in PyTorch and a numpy forward and backward written by hand.
(d) one epoch of ``examples/train_digits.py`` (its data, model, loss, Adam and
    DataLoader batching, then the test-set evaluation), run by gradcore and by
    PyTorch with the same code.

Before timing, each implementation's first step is checked against the
reference (numpy for (a)-(c), PyTorch for (d)). Thread counts are pinned
before numpy or torch is imported (1 unless ``--threads N``). The report is
printed and written as markdown to ``--out``.

Usage::

    python benchmarks/cpu.py                # full run (about a minute on two cores)
    python benchmarks/cpu.py --quick        # a few repeats, for a smoke test
    python benchmarks/cpu.py --workloads c,d --repeats 100
    python benchmarks/cpu.py --threads 2 --out /tmp/cpu.md
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
from collections.abc import Sequence
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

WIDE_SIZES = (256, 784, 512, 512, 10)  # batch, then the layer widths from input to classes
# Large enough that the first step's weight updates stand well above float32 rounding of the weights,
# so the agreement check compares the updates themselves.
WIDE_LR = 0.1

# Workload (d) repeats examples/train_digits.py; these are its settings.
DIGITS_BATCH_SIZE = 32
DIGITS_LR = 1e-3
DIGITS_TEST_FRACTION = 0.25
DIGITS_LABEL_SMOOTHING = 0.1
DIGITS_SEED = 0
DIGITS_DEVICE = "cpu"

# Targets, as ratios of gradcore's time to a baseline's (lower is better).
TARGET_MLP_VS_NUMPY = 1.15
TARGET_MLP_VS_TORCH = 1.0  # "faster than torch": strictly below
TARGET_WIDE_VS_NUMPY = 1.10
TARGET_OP_VS_TORCH = 1.0  # "no more than torch": at most

WORKLOADS = ("a", "b", "c", "d")
# Timed runs per workload: the larger workloads take milliseconds to a tenth of a second per run, so they
# need fewer samples for a stable median, and the full run stays within a couple of minutes.
DEFAULT_REPEATS = {"a": 300, "b": 300, "c": 150, "d": 60}
QUICK_REPEATS = {"a": 10, "b": 10, "c": 3, "d": 2}
ROUNDS = 5  # the timed runs of a workload's implementations are interleaved in this many rounds

# A labelled implementation of a workload: the module it runs on (None when not installed) and a factory
# that builds it, returning (run one step, check the first step and return "ok" or what differs).
Implementation = tuple[str, "ModuleType | None", Callable[[Any], tuple[Callable[[], Any], Callable[[], str]]]]


# --------------------------------------------------------------------------- set-up


def parse_args(argv: list[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    """Parse the command line; fills in args.repeats_by_workload and args.workload_set."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed runs per workload and implementation (default: "
        + ", ".join(f"{w}: {r}" for w, r in DEFAULT_REPEATS.items())
        + "; with --quick: "
        + ", ".join(f"{w}: {r}" for w, r in QUICK_REPEATS.items())
        + ")",
    )
    parser.add_argument("--quick", action="store_true", help="few repeats: a smoke test, not a measurement")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads for numpy's BLAS and for torch (default: 1)"
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help="comma-separated workloads to run, from a,b,c,d (default: all)",
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
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    defaults = QUICK_REPEATS if args.quick else DEFAULT_REPEATS
    args.repeats_by_workload = {w: args.repeats or defaults[w] for w in WORKLOADS}
    args.workload_set = {w.strip() for w in args.workloads.split(",") if w.strip()}
    unknown = args.workload_set - set(WORKLOADS)
    if unknown or not args.workload_set:
        parser.error(f"--workloads takes a comma-separated subset of {','.join(WORKLOADS)}")
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


def load_average() -> str:
    """The system's 1, 5 and 15-minute load averages, or 'unknown' where the OS does not report them."""
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):
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


@dataclass
class Result:
    """One implementation's timing of a workload and the outcome of its first-step check."""

    timing: Timing
    check: str


def time_runs(run: Callable[[], Any], count: int) -> list[float]:
    """Time `count` runs of `run`, after one untimed run that brings its data back into the caches."""
    run()
    gc.collect()  # start from a clean heap; collection stays enabled while timing
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return samples


def run_workload(
    title: str, impls: Sequence[Implementation], repeats: int, min_warmup: int, failures: list[str]
) -> dict[str, Result]:
    """Build, check, warm up and time each installed implementation of one workload.

    Each implementation runs its first step and checks it, then max(min_warmup, repeats/10) warm-up runs.
    The timed runs are interleaved: in each of ROUNDS rounds every implementation takes its share of the
    samples in turn, so that a change in the machine's load during the workload weighs on all of them
    alike instead of on whichever happened to be running. An implementation that raises is recorded in
    `failures` and left out.
    """
    ready: dict[str, tuple[Callable[[], Any], str]] = {}
    samples: dict[str, list[float]] = {}
    for label, mod, build in impls:
        if mod is None:
            continue
        print(f"{title}: {label} ...", flush=True)
        try:
            step, check = build(mod)
            agreement = check()
            for _ in range(max(min_warmup, repeats // 10)):
                step()
        except Exception as exc:  # noqa: BLE001 - reported, and the other implementations still run
            failures.append(f"{title.split()[0]} {label}: {type(exc).__name__}: {exc}")
            continue
        ready[label] = (step, agreement)
        samples[label] = []

    rounds = min(ROUNDS, repeats)
    for r in range(rounds):
        share = repeats * (r + 1) // rounds - repeats * r // rounds
        for label, (step, _) in list(ready.items()):
            try:
                samples[label] += time_runs(step, share)
            except Exception as exc:  # noqa: BLE001 - as above
                failures.append(f"{title.split()[0]} {label}: {type(exc).__name__}: {exc}")
                del ready[label]
    return {label: Result(Timing(samples[label]), agreement) for label, (_, agreement) in ready.items()}


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


def chain_checked(
    np: ModuleType, build: Callable[[], tuple[Callable[[], Any], Callable[[], Any]]]
) -> tuple[Callable[[], Any], Callable[[], str]]:
    """Wrap a workload (a) builder: the check runs the chain once and compares the gradient with its value."""
    run, grad = build()
    expected = np.full(CHAIN_SHAPE, CHAIN_MUL ** ((CHAIN_LENGTH + 1) // 2), dtype=np.float32)

    def check() -> str:
        run()
        return check_agreement(np, grad(), expected, rtol=1e-5, atol=1e-6)

    return run, check


# --------------------------------------------------------------------------- (b) seed MLP training step


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
    step: Callable[[], Any], weights: Callable[[], Sequence[Any]], initial: Sequence[Any]
) -> tuple[float, tuple[Any, ...]]:
    """Run one training step; return its loss and the update it applied to each weight."""
    loss = step().item()
    return loss, tuple(w - w0 for w, w0 in zip(weights(), initial))


def step_checked(
    np: ModuleType,
    built: tuple[Callable[[], Any], Callable[[], Sequence[Any]]],
    initial: Sequence[Any],
    reference: tuple[float, tuple[Any, ...]],
    update_atol: float,
) -> tuple[Callable[[], Any], Callable[[], str]]:
    """Wrap a training-step builder's result: the check runs the first step and compares it with numpy's."""
    step, weights = built
    ref_loss, ref_updates = reference

    def check() -> str:
        loss, updates = first_step(step, weights, initial)
        agreement = check_agreement(np, loss, ref_loss, rtol=1e-4, atol=0.0)
        if agreement == "ok":
            agreement = check_agreement(np, updates, ref_updates, rtol=1e-3, atol=update_atol)
        return agreement

    return step, check


# --------------------------------------------------------------------------- (c) wide MLP training step


def wide_data(np: ModuleType) -> dict[str, Any]:
    """Return the inputs, labels and initial parameters (W1, b1, W2, b2, W3, b3) shared by workload (c).

    Weights are stored as nn.Linear stores them, (out_features, in_features), and drawn from nn.Linear's
    default distribution U(-1/sqrt(in_features), 1/sqrt(in_features)).
    """
    batch, *widths = WIDE_SIZES
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, widths[0]), dtype=np.float32)
    labels = rng.integers(0, widths[-1], size=batch, dtype=np.int64)
    params = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        bound = 1.0 / fan_in**0.5
        params.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))
    return {"x": x, "labels": labels, "params": params}


def wide_model(mod: ModuleType) -> Any:
    """Return the 784-512-512-10 ReLU MLP of workload (c), built with `mod.nn`."""
    nn = mod.nn
    _, d_in, h1, h2, d_out = WIDE_SIZES
    return nn.Sequential(nn.Linear(d_in, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(), nn.Linear(h2, d_out))


def wide_torchlike(mod: ModuleType, data: dict[str, Any]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Build workload (c) for a PyTorch-API module: (step, current parameters as numpy arrays)."""
    model = wide_model(mod)
    with mod.no_grad():
        for param, value in zip(model.parameters(), data["params"]):
            param.copy_(mod.tensor(value))
    x = mod.tensor(data["x"])
    labels = mod.tensor(data["labels"])
    loss_fn = mod.nn.CrossEntropyLoss()
    optimizer = mod.optim.SGD(model.parameters(), lr=WIDE_LR)

    def step() -> Any:
        optimizer.zero_grad()
        loss = loss_fn(model(x), labels)
        loss.backward()
        optimizer.step()
        return loss

    return step, lambda: [param.detach().numpy() for param in model.parameters()]


def wide_numpy(np: ModuleType, data: dict[str, Any]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Build workload (c) in numpy, forward and backward written by hand: (step, current parameters).

    This is the floor for a numpy back end: the same matrix products, with in-place updates wherever a
    careful hand-written version would use them.
    """
    x, labels = data["x"], data["labels"]
    params = [p.copy() for p in data["params"]]
    w1, b1, w2, b2, w3, b3 = params
    batch = x.shape[0]
    rows = np.arange(batch)

    def step() -> Any:
        # Forward. ReLU in place: its output is positive exactly where its input was, so it is its own mask.
        a1 = x @ w1.T
        a1 += b1
        np.maximum(a1, 0, out=a1)
        a2 = a1 @ w2.T
        a2 += b2
        np.maximum(a2, 0, out=a2)
        logits = a2 @ w3.T
        logits += b3

        # Mean cross-entropy: log-sum-exp of the logits minus the label's logit, shifted by the row maximum.
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        sums = probs.sum(axis=1, keepdims=True)
        loss = np.mean(np.log(sums[:, 0]) - logits[rows, labels])

        # Backward: d loss / d logits = (softmax - one_hot(labels)) / batch.
        grad = probs
        grad /= sums
        grad[rows, labels] -= 1.0
        grad /= batch
        g_w3, g_b3 = grad.T @ a2, grad.sum(axis=0)
        grad = grad @ w3
        grad *= a2 > 0
        g_w2, g_b2 = grad.T @ a1, grad.sum(axis=0)
        grad = grad @ w2
        grad *= a1 > 0
        g_w1, g_b1 = grad.T @ x, grad.sum(axis=0)

        # SGD, in place.
        for param, g in zip(params, (g_w1, g_b1, g_w2, g_b2, g_w3, g_b3)):
            g *= WIDE_LR
            param -= g
        return loss

    return step, lambda: params


# --------------------------------------------------------------------------- (d) digits epoch


def digits_data(np: ModuleType) -> dict[str, Any] | None:
    """Return examples/train_digits.py's digits split as float32/int64 arrays; None without scikit-learn."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        return None
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data,
        digits.target,
        test_size=DIGITS_TEST_FRACTION,
        random_state=DIGITS_SEED,
        stratify=digits.target,
    )
    scaler = StandardScaler().fit(x_train)
    return {
        "x_train": scaler.transform(x_train).astype(np.float32),
        "y_train": y_train.astype(np.int64),
        "x_test": scaler.transform(x_test).astype(np.float32),
        "y_test": y_test.astype(np.int64),
    }


class DigitsRun:
    """Workload (d) for a PyTorch-API module: examples/train_digits.py's set-up and training loop.

    The code is the example's with `mod` in place of gradcore: the same seed, data loader, model, loss and
    optimizer, so gradcore and PyTorch start from the same weights and see the batches in the same order.
    """

    def __init__(self, mod: ModuleType, data: dict[str, Any]) -> None:
        utils_data = importlib.import_module(f"{mod.__name__}.utils.data")
        nn = mod.nn
        self.mod = mod
        mod.manual_seed(DIGITS_SEED)
        train_set = utils_data.TensorDataset(
            mod.tensor(data["x_train"], dtype=mod.float32), mod.tensor(data["y_train"], dtype=mod.int64)
        )
        self.x_test = mod.tensor(data["x_test"], dtype=mod.float32).to(DIGITS_DEVICE)
        self.y_test = mod.tensor(data["y_test"], dtype=mod.int64).to(DIGITS_DEVICE)
        self.loader = utils_data.DataLoader(
            train_set,
            batch_size=DIGITS_BATCH_SIZE,
            shuffle=True,
            generator=mod.Generator().manual_seed(DIGITS_SEED),
        )
        self.model = nn.Sequential(
            nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
        ).to(DIGITS_DEVICE)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=DIGITS_LABEL_SMOOTHING)
        self.optimizer = mod.optim.Adam(self.model.parameters(), lr=DIGITS_LR)

    def train_step(self, images: Any, labels: Any) -> Any:
        """One optimisation step on a batch, as in the example; returns the loss tensor."""
        images, labels = images.to(DIGITS_DEVICE), labels.to(DIGITS_DEVICE)
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(images), labels)
        loss.backward()
        self.optimizer.step()
        return loss

    def epoch(self) -> tuple[float, float]:
        """Train one epoch, then test; return the epoch's mean training loss and the test accuracy."""
        total_loss, total_count = 0.0, 0
        for images, labels in self.loader:
            loss = self.train_step(images, labels)
            total_loss += loss.item() * len(labels)
            total_count += len(labels)
        self.model.eval()
        with self.mod.no_grad():
            predictions = self.model(self.x_test).argmax(dim=1)
        self.model.train()
        return total_loss / total_count, (predictions == self.y_test).float().mean().item()


def digits_checked(
    np: ModuleType, epoch: Callable[[], tuple[float, float]], reference: tuple[float, float] | None
) -> tuple[Callable[[], Any], Callable[[], str]]:
    """Wrap a workload (d) epoch: the check runs the first epoch and compares it with PyTorch's.

    Same seed, same initial weights and the same batch order give the same first epoch up to float32
    rounding, which the 43 Adam steps may amplify a little.
    """

    def check() -> str:
        loss, accuracy = epoch()
        if reference is None:
            return "unchecked (no PyTorch)"
        ref_loss, ref_accuracy = reference
        agreement = check_agreement(np, loss, ref_loss, rtol=1e-4, atol=0.0)
        if agreement == "ok" and abs(accuracy - ref_accuracy) > 0.005:  # more than two of the 450 test images
            agreement = f"MISMATCH (test accuracy {accuracy:.4f} vs {ref_accuracy:.4f})"
        return agreement

    return epoch, check


# --------------------------------------------------------------------------- checks and report


def check_agreement(np: ModuleType, got: Any, want: Any, rtol: float, atol: float) -> str:
    """Compare arrays (or sequences of arrays) and return 'ok' or a short description of the mismatch."""
    got_t = tuple(got) if isinstance(got, (tuple, list)) else (got,)
    want_t = tuple(want) if isinstance(want, (tuple, list)) else (want,)
    if len(got_t) != len(want_t):
        return f"MISMATCH ({len(got_t)} arrays vs {len(want_t)})"
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


def median_of(results: dict[str, Result], label: str) -> float | None:
    """Median time of `label` in `results`, or None when it was not measured."""
    return results[label].timing.median if label in results else None


def results_table(
    results: dict[str, Result], impl_label: str, unit: str, scale: float, digits: int, check_header: str
) -> list[str]:
    """Markdown table of one workload: median and interquartile range in `unit` (seconds times `scale`)."""
    impl_median = median_of(results, impl_label)
    lines = [
        f"| implementation | {unit} (median) | p25-p75 | gradcore / this | {check_header} |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for label, result in results.items():
        q1, q3 = result.timing.quartiles
        lines.append(
            f"| {label} | {result.timing.median * scale:.{digits}f} | "
            f"{q1 * scale:.{digits}f}-{q3 * scale:.{digits}f} | "
            f"{fmt_ratio(impl_median, result.timing.median)} | {result.check} |"
        )
    return lines


@dataclass
class Target:
    """A target on the ratio gradcore / baseline, and where the run stands against it."""

    workload: str
    baseline: str
    limit: float
    strict: bool  # True: the ratio must be below the limit; False: at most the limit
    value: float | None

    @property
    def wording(self) -> str:
        """The target as a phrase, e.g. 'at most 1.15x'."""
        return f"{'below' if self.strict else 'at most'} {self.limit:.2f}x"

    @property
    def verdict(self) -> str:
        """'met', 'NOT met' or 'n/a (not measured)'."""
        return target_verdict(self.value, self.limit, self.strict)

    def line(self) -> str:
        """One line for the workload's section of the report."""
        shown = "n/a" if self.value is None else f"{self.value:.2f}x"
        return f"gradcore / {self.baseline}: {shown} — target {self.wording}: {self.verdict}  "


# --------------------------------------------------------------------------- the four workloads


@dataclass
class Context:
    """What every workload needs: the modules, labels, repeats, and the list that collects failures."""

    np: ModuleType
    impl: ModuleType
    impl_label: str
    torch: ModuleType | None
    repeats: dict[str, int]
    min_warmup: int
    failures: list[str]

    def three_way(
        self, torchlike: Callable[[ModuleType], Any], numpy_version: Callable[[], Any]
    ) -> list[Implementation]:
        """gradcore and PyTorch running `torchlike`, and the hand-written numpy floor, in report order."""
        return [
            (self.impl_label, self.impl, torchlike),
            ("numpy (hand-written)", self.np, lambda _m: numpy_version()),
            ("PyTorch", self.torch, torchlike),
        ]

    def run(self, workload: str, title: str, impls: Sequence[Implementation]) -> dict[str, Result]:
        """Run one workload and record every implementation whose check failed."""
        results = run_workload(
            f"({workload}) {title}", impls, self.repeats[workload], self.min_warmup, self.failures
        )
        self.failures += [
            f"({workload}) {label}: result {r.check}"
            for label, r in results.items()
            if r.check != "ok" and not r.check.startswith("unchecked")
        ]
        return results


def bench_per_op(ctx: Context) -> tuple[list[str], list[Target]]:
    """Workload (a): returns its report section and its target."""
    np = ctx.np
    chain = ctx.run(
        "a",
        "per-op overhead",
        [
            (ctx.impl_label, ctx.impl, lambda m: chain_checked(np, lambda: chain_torchlike(m))),
            ("numpy (hand-written floor)", np, lambda _m: chain_checked(np, lambda: chain_numpy(np))),
            ("PyTorch", ctx.torch, lambda m: chain_checked(np, lambda: chain_torchlike(m))),
        ],
    )
    impl_median = median_of(chain, ctx.impl_label)
    target = Target(
        "(a) per-op overhead",
        "PyTorch",
        TARGET_OP_VS_TORCH,
        False,
        ratio(impl_median, median_of(chain, "PyTorch")),
    )
    numpy_median = median_of(chain, "numpy (hand-written floor)")
    section = [
        f"## (a) Per-op overhead: {CHAIN_LENGTH} elementwise ops on shape {CHAIN_SHAPE}, forward + backward",
        "",
        f"{ctx.repeats['a']} timed runs per implementation.",
        "",
        *results_table(chain, ctx.impl_label, "µs per op", 1e6 / CHAIN_LENGTH, 2, "gradient check"),
        "",
        target.line(),
        f"gradcore / numpy floor: {fmt_ratio(impl_median, numpy_median)} (for information)",
        "",
    ]
    return section, [target]


def bench_seed_mlp(ctx: Context) -> tuple[list[str], list[Target]]:
    """Workload (b): returns its report section and its two targets."""
    np = ctx.np
    data = mlp_data(np)
    initial = (data["w1"], data["w2"])
    # Agreement: from the same start, the first step must give numpy's loss and weight updates.
    reference = first_step(*mlp_numpy(np, data), initial)

    def checked(
        built: tuple[Callable[[], Any], Callable[[], Any]],
    ) -> tuple[Callable[[], Any], Callable[[], str]]:
        return step_checked(np, built, initial, reference, update_atol=2e-6)

    mlp = ctx.run(
        "b",
        "seed MLP training step",
        ctx.three_way(lambda m: checked(mlp_torchlike(m, data)), lambda: checked(mlp_numpy(np, data))),
    )
    impl_median = median_of(mlp, ctx.impl_label)
    targets = [
        Target(
            "(b) seed MLP step",
            "numpy",
            TARGET_MLP_VS_NUMPY,
            False,
            ratio(impl_median, median_of(mlp, "numpy (hand-written)")),
        ),
        Target(
            "(b) seed MLP step",
            "PyTorch",
            TARGET_MLP_VS_TORCH,
            True,
            ratio(impl_median, median_of(mlp, "PyTorch")),
        ),
    ]
    n, d_in, h, d_out = MLP_SIZES
    section = [
        f"## (b) Seed MLP training step (N={n}, D_in={d_in}, H={h}, D_out={d_out}, float32)",
        "",
        f"{ctx.repeats['b']} timed runs per implementation.",
        "",
        *results_table(mlp, ctx.impl_label, "ms per step", 1e3, 3, "first-step check vs numpy"),
        "",
        *(t.line() for t in targets),
        "",
    ]
    return section, targets


def bench_wide_mlp(ctx: Context) -> tuple[list[str], list[Target]]:
    """Workload (c): returns its report section and its target."""
    np = ctx.np
    data = wide_data(np)
    initial = data["params"]
    reference = first_step(*wide_numpy(np, data), initial)

    def checked(
        built: tuple[Callable[[], Any], Callable[[], Any]],
    ) -> tuple[Callable[[], Any], Callable[[], str]]:
        # The largest updates (lr * gradient) are 2e-4 to 4e-3 here, while float32 rounding of the weights
        # (about 0.04) is about 4e-9: the absolute tolerance sits between the two.
        return step_checked(np, built, initial, reference, update_atol=1e-7)

    wide = ctx.run(
        "c",
        "wide MLP training step",
        ctx.three_way(lambda m: checked(wide_torchlike(m, data)), lambda: checked(wide_numpy(np, data))),
    )
    impl_median = median_of(wide, ctx.impl_label)
    target = Target(
        "(c) wide MLP step",
        "numpy",
        TARGET_WIDE_VS_NUMPY,
        False,
        ratio(impl_median, median_of(wide, "numpy (hand-written)")),
    )
    batch, *widths = WIDE_SIZES
    section = [
        (
            f"## (c) Wide MLP training step (batch {batch}, {'-'.join(map(str, widths))}, bias, ReLU, "
            f"cross-entropy, SGD lr={WIDE_LR:g}, float32)"
        ),
        "",
        f"{ctx.repeats['c']} timed runs per implementation.",
        "",
        *results_table(wide, ctx.impl_label, "ms per step", 1e3, 2, "first-step check vs numpy"),
        "",
        target.line(),
        f"gradcore / PyTorch: {fmt_ratio(impl_median, median_of(wide, 'PyTorch'))} (for information)",
        "",
    ]
    return section, [target]


def bench_digits(ctx: Context, data: dict[str, Any]) -> tuple[list[str], list[Target]]:
    """Workload (d): returns its report section (it has no target)."""
    np = ctx.np
    # The reference is PyTorch's first epoch from the same seed; there is no hand-written version.
    reference = DigitsRun(ctx.torch, data).epoch() if ctx.torch is not None else None

    def build(mod: ModuleType) -> tuple[Callable[[], Any], Callable[[], str]]:
        return digits_checked(np, DigitsRun(mod, data).epoch, reference)

    epochs = ctx.run("d", "digits epoch", [(ctx.impl_label, ctx.impl, build), ("PyTorch", ctx.torch, build)])
    n_train, n_test = len(data["y_train"]), len(data["y_test"])
    n_batches = -(-n_train // DIGITS_BATCH_SIZE)
    vs_torch = fmt_ratio(median_of(epochs, ctx.impl_label), median_of(epochs, "PyTorch"))
    section = [
        (
            f"## (d) One epoch of examples/train_digits.py ({n_train} training images in {n_batches} batches "
            f"of up to {DIGITS_BATCH_SIZE}, 64-128-64-10 MLP, label-smoothed cross-entropy, Adam, "
            f"then {n_test} test images)"
        ),
        "",
        f"{ctx.repeats['d']} timed epochs per implementation.",
        "",
        *results_table(epochs, ctx.impl_label, "ms per epoch", 1e3, 1, "first-epoch check vs PyTorch"),
        "",
        f"gradcore / PyTorch: {vs_torch} (for information; no target)",
        "",
    ]
    return section, []


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None, command: list[str] | None = None) -> int:
    """Run the workloads, print the markdown report and write it to --out; return the exit status.

    The status is 0 when every implementation ran and passed its check, 1 when one raised or computed a
    wrong result (listed under "Failures"), 2 when the module under test cannot be imported. Missed
    targets do not change the status. ``command`` is how the script was invoked, without its options (such
    as ``["python3", "-m", "benchmarks"]``), for the help text and the report; by default this script.
    """
    if command is None:
        command = [Path(sys.executable).name, sys.argv[0]]
    args = parse_args(argv, prog=shlex.join(command))
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
    digits = digits_data(np) if "d" in args.workload_set else None
    if "d" in args.workload_set and digits is None:
        notes.append(
            "scikit-learn is not installed: workload (d), which needs its digits data set, is skipped."
        )

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
        "load average at start": load_average(),
    }
    for key, value in env.items():
        print(f"{key + ':':11} {value}")
    for note in notes:
        print(f"note: {note}")
    repeats = args.repeats_by_workload
    print("repeats: " + ", ".join(f"({w}) {repeats[w]}" for w in WORKLOADS if w in args.workload_set) + "\n")

    ctx = Context(
        np=np,
        impl=impl,
        impl_label=impl_label,
        torch=real_torch,
        repeats=repeats,
        # A quick run needs only to exercise the code: one warm-up run is enough.
        min_warmup=1 if args.quick else 3,
        failures=[],
    )
    benches: dict[str, Callable[[], tuple[list[str], list[Target]]]] = {
        "a": lambda: bench_per_op(ctx),
        "b": lambda: bench_seed_mlp(ctx),
        "c": lambda: bench_wide_mlp(ctx),
    }
    if digits is not None:
        benches["d"] = lambda: bench_digits(ctx, digits)
    sections: list[str] = []
    targets: list[Target] = []
    for workload, bench in benches.items():
        if workload in args.workload_set:
            section, workload_targets = bench()
            sections += section
            targets += workload_targets
    print(flush=True)
    # Other processes compete for the cores: the load at the end, beside the load at the start, tells
    # whether the figures were taken on a busy machine.
    env["load average at end"] = load_average()

    shown_argv = sys.argv[1:] if argv is None else argv
    report = render_report(shlex.join([*command, *shown_argv]), env, notes, targets, sections, ctx.failures)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(f"(written to {args.out})")
    return 1 if ctx.failures else 0


def render_report(
    command: str,
    env: dict[str, str], notes: list[str], targets: list[Target], sections: list[str], failures: list[str]
) -> str:
    """Assemble the markdown report: header, environment, targets summary, workload sections, failures."""
    lines = [
        "# gradcore CPU benchmarks",
        "",
        f"Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}  ",
        f"Command: `{command}`  ",
        (
            "Each figure is the median of repeated timed runs after a warm-up, with the interquartile range "
            "(p25-p75) beside it; all figures come from this one process. Ratios are gradcore's median divided "
            "by the other implementation's: below 1.00x gradcore is faster."
        ),
        "",
    ]
    if notes:
        lines += [*(f"> {note}  " for note in notes), ""]
    lines += ["| | |", "| --- | --- |", *(f"| {key} | {value} |" for key, value in env.items()), ""]
    if targets:
        lines += [
            "## Targets",
            "",
            "| workload | ratio | measured | target | verdict |",
            "| --- | --- | ---: | --- | --- |",
        ]
        for t in targets:
            shown = "n/a" if t.value is None else f"{t.value:.2f}x"
            lines.append(f"| {t.workload} | gradcore / {t.baseline} | {shown} | {t.wording} | {t.verdict} |")
        lines += [""]
    lines += sections
    if failures:
        lines += ["## Failures", "", *(f"- {failure}" for failure in failures), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
