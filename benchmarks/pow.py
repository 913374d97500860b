"""Small integer powers against multiplying: ``x.pow(2)``, ``x.pow(3)`` and friends, forward and backward.

Prints a markdown table (or writes it with ``--out``): each figure is the median of ``--repeats`` timed runs after
a warm-up, in one process; the ratio is the power's median over the product's. PyTorch's figures are beside ours
when it is installed. Run from the repository root: ``PYTHONPATH=. python benchmarks/pow.py`` (a few seconds).
"""
from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import sys
import time
from datetime import datetime, timezone

import numpy as np

import gradcore

CASES = [  # (label, power, the same value by multiplying)
    ("x.pow(2)", lambda x: x.pow(2), lambda x: x * x),
    ("x ** 2", lambda x: x ** 2, lambda x: x * x),
    ("x.pow(3)", lambda x: x.pow(3), lambda x: x * x * x),
    ("x ** 3", lambda x: x ** 3, lambda x: x * x * x),
    ("x.pow(-2)", lambda x: x.pow(-2), lambda x: 1 / (x * x)),
]


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(lib, shape, repeats: int) -> list:
    rows = []
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x = lib.tensor(data)
    leaf = lib.tensor(data, requires_grad=True)
    for label, power, product in CASES:
        forward = (median_seconds(lambda: power(x), repeats), median_seconds(lambda: product(x), repeats))
        backward = (median_seconds(lambda: power(leaf).sum().backward(), repeats),
                    median_seconds(lambda: product(leaf).sum().backward(), repeats))
        rows.append((label, forward, backward))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--size", type=int, default=1000, help="the input is size x size float32")
    parser.add_argument("--out", help="write the markdown report here instead of printing it")
    args = parser.parse_args(argv)
    shape = (args.size, args.size)
    libs = [("gradcore", gradcore)]
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(1)
        libs.append(("torch", torch))
    lines = ["# Small integer powers against multiplying", "",
             f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC  ",
             f"Command: `python {' '.join(['benchmarks/pow.py'] + (argv if argv is not None else sys.argv[1:]))}`  ",
             f"Input: {shape[0]}x{shape[1]} float32; medians of {args.repeats} runs after a warm-up, one process; "
             f"numpy {np.__version__}, python {platform.python_version()}, {platform.processor() or platform.machine()}.",
             "", "| library | op | forward (ms) | product (ms) | ratio | forward+backward (ms) | product (ms) | ratio |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, lib in libs:
        for label, (f_pow, f_mul), (b_pow, b_mul) in measure(lib, shape, args.repeats):
            lines.append(f"| {name} | `{label}` | {f_pow * 1e3:.3f} | {f_mul * 1e3:.3f} | {f_pow / f_mul:.2f}x | "
                         f"{b_pow * 1e3:.3f} | {b_mul * 1e3:.3f} | {b_pow / b_mul:.2f}x |")
    report = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(report)
    else:
        print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
