"""Backward through a tensor read several times (``x * x * x``): the cost of summing its gradients, beside PyTorch.

Each figure is the median of ``--repeats`` timed ``backward()`` calls (the forward is not timed) after a warm-up,
in one process; the ratio is gradcore's median over PyTorch's (CPU, one thread) when PyTorch is installed. Run
from the repository root: ``PYTHONPATH=. python benchmarks/repeated_leaf.py`` (a few seconds); ``--out`` writes
the markdown report to a file.
"""
from __future__ import annotations

import argparse
import importlib.util
import platform
import resource
import statistics
import sys
import time
from datetime import datetime, timezone

import numpy as np

import gradcore

CASES = [  # (label, the function of the leaf x whose sum is differentiated)
    ("x * x * x", lambda x: x * x * x),
    ("x.pow(3)", lambda x: x.pow(3)),
    ("x * x", lambda x: x * x),
    ("x * x * x * x", lambda x: x * x * x * x),
    ("x + x + x", lambda x: x + x + x),
    ("(x * 2) * (x * 3) * x", lambda x: (x * 2) * (x * 3) * x),
]


def median_backward(lib, function, data, repeats: int) -> tuple[float, float]:
    """Median seconds of ``function(x).sum().backward()`` (backward only), and median minor page faults."""
    x = lib.tensor(data, requires_grad=True)
    times, faults = [], []
    for i in range(repeats + 1):
        x.grad = None
        loss = function(x).sum()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        loss.backward()
        elapsed = time.perf_counter() - start
        if i:  # the first run warms up
            times.append(elapsed)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return statistics.median(times), statistics.median(faults)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--size", type=int, default=1000, help="the leaf is size x size float32")
    parser.add_argument("--out", help="write the markdown report here instead of printing it")
    parser.add_argument("--title", default="Backward through a tensor read several times")
    args = parser.parse_args(argv)
    data = np.random.default_rng(0).standard_normal((args.size, args.size)).astype(np.float32)
    torch = None
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(1)
    lines = [f"# {args.title}", "",
             f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC  ",
             f"Command: `python {' '.join(['benchmarks/repeated_leaf.py'] + (argv if argv is not None else sys.argv[1:]))}`  ",
             f"Leaf: {args.size}x{args.size} float32; `f(x).sum().backward()` timed alone; medians of {args.repeats} "
             f"runs after a warm-up, one process; numpy {np.__version__}, python {platform.python_version()}, "
             f"{platform.processor() or platform.machine()}, CPU only (not measured on a GPU).", "",
             "| f(x) | gradcore backward (ms) | page faults | torch backward (ms) | page faults | gradcore / torch |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, function in CASES:
        ours, our_faults = median_backward(gradcore, function, data, args.repeats)
        if torch is not None:
            theirs, their_faults = median_backward(torch, function, data, args.repeats)
            lines.append(f"| `{label}` | {ours * 1e3:.3f} | {our_faults:.0f} | {theirs * 1e3:.3f} | "
                         f"{their_faults:.0f} | {ours / theirs:.2f}x |")
        else:
            lines.append(f"| `{label}` | {ours * 1e3:.3f} | {our_faults:.0f} | - | - | - |")
    report = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(report)
    else:
        print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
