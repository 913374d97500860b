#!/usr/bin/env python3
"""Benchmark gradcore's CUDA kernels (kernels/*.cu) on a GPU; every figure is a ratio of two timings of one run.

Figures (float32 unless stated; each time the median over the repeats of one CUDA-event pair around
``--launches`` back-to-back launches, divided by that number, after a warm-up; figure (a) also times the same
launches captured into one CUDA graph, where the array module supports stream capture):

(a) GEMM: our kernel (the tile ``choose_tile`` picks, and every tile, for the crossover) vs ``cupy.matmul``
    (cuBLAS, FP32: ``CUPY_TF32`` is forced to 0) on MLP shapes and 4096^3. Target: >= 0.8 of cuBLAS at 4096^3.
(b) Fused Linear+ReLU and Linear+sigmoid, forward + backward (``linear_forward``/``linear_backward``), and
    cuBLAS with our one-pass epilogue (``bias_activation``/``activation_backward``, gradcore's path above the
    GEMM crossover), vs cuBLAS plus separate elementwise kernels (our single-pass ones, and CuPy expressions).
    Target: >= 1.3x faster than the unfused cuBLAS path on MLP shapes.
(c) clamp and sigmoid forward/backward bandwidth (bytes read + written per second) vs a device-to-device copy
    of the same bytes. Target: >= 0.85 of copy bandwidth.
(d) Training steps: the seed MLP (64x1000 -> 100 -> 10, clamp(min=0), sum of squares) and a 784-1024-1024-10
    ReLU MLP (cross-entropy, batch 256 and 4096): written directly on our kernels, through gradcore's API on
    CUDA, and in PyTorch CUDA eager when PyTorch sees a GPU. Target: no slower than PyTorch.
(e) The seed MLP's SGD step through gradcore's API replayed as one CUDA graph: captured by hand
    (``gradcore.cuda.graph``) and, where it replays as graphs on this array module, through
    ``gradcore.compile``, vs the same step in PyTorch CUDA eager. Target: at most 0.5x PyTorch eager's time
    per step.

Every result is checked against the unfused path (or float64, or PyTorch) before it is timed; a failed check
prints FAIL and skips that figure's timing. The device, driver, CUDA runtime, CuPy, NVRTC and PyTorch versions
are printed first; with $OUT set (or --out), the raw log and a JSON of every timing are written there.

Usage::

    python3 benchmarks/gpu.py            # everything (a few minutes on an H100)
    python3 benchmarks/gpu.py --quick    # fewer repeats, smaller shapes left out
    python3 benchmarks/gpu.py --only a,c
    python3 benchmarks/gpu.py --tiny     # tiny shapes: every code path in seconds, no meaningful timings
    python3 benchmarks/gpu.py --only a --write-crossover   # figure (a), then the measured crossover written to
                                         # gradcore/backend/gemm_crossover.json, which product_path reads

The problem sizes of every figure are in ``SIZES``; ``--tiny`` is the dry run that the tests make on the CuPy test
double (tests/kernels/test_gpu_benchmark.py), so that a typo here fails in CI rather than on a lent GPU.
"""
from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("CUPY_TF32", "0")  # cuBLAS in true FP32, the precision our kernel computes in
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LOG: list = []
RESULTS: dict = {}
LAUNCHES = [20]  # back-to-back launches per timed repetition (--launches), set by main
CROSSOVER_FILE = Path(__file__).resolve().parents[1] / "gradcore" / "backend" / "gemm_crossover.json"
FIGURES = ("a", "b", "c", "d", "e")  # (a) GEMM, (b) fused Linear, (c) bandwidth, (d) training steps,
#                                      (e) the seed MLP step as a CUDA graph

# The problem sizes of each figure, per size set: "full" (the default), "quick" (--quick) and "tiny" (--tiny).
#   gemm, linear: (M, K, N) products, i.e. (batch, in, out) for a Linear layer;
#   bandwidth: elements per array;
#   training: (title, batch, layer sizes, classify (cross-entropy; else sum of squares), hidden activation).
# The tiny set runs every code path of every figure in seconds, also under the CPU emulation of the kernels: sizes
# that no tile divides and sizes that allow vector loads; more elements than the emulation's grid-stride loops
# cover in one turn.
_GEMM_SHAPES = [(64, 1000, 100), (256, 784, 1024), (256, 1024, 1024), (256, 1024, 10), (4096, 784, 1024),
                (4096, 1024, 1024)]
_MLP_SHAPES = [(256, 784, 1024), (256, 1024, 1024), (64, 1000, 100)]
_TRAINING = [("seed MLP 64x1000-100-10", 64, [1000, 100, 10], False, "clamp"),
             ("MLP 784-1024-1024-10, batch 256", 256, [784, 1024, 1024, 10], True, "relu")]
SIZES = {
    "full": {
        "gemm": _GEMM_SHAPES + [(4096, 4096, 4096)],
        "linear": _MLP_SHAPES + [(4096, 784, 1024), (4096, 1024, 1024)],
        "bandwidth": 1 << 28,
        "training": _TRAINING + [("MLP 784-1024-1024-10, batch 4096", 4096, [784, 1024, 1024, 10], True, "relu")],
    },
    "quick": {  # 4096^3, the batch-4096 Linear layers and training steps left out; 2^24 elements
        "gemm": _GEMM_SHAPES,
        "linear": _MLP_SHAPES,
        "bandwidth": 1 << 24,
        "training": _TRAINING,
    },
    "tiny": {
        "gemm": [(64, 64, 64), (33, 70, 17)],
        "linear": [(16, 40, 24), (9, 13, 5), (40, 13, 24)],  # the last: activation_backward in 2 row blocks
        "bandwidth": 20000,
        "training": [("seed MLP, tiny: 8x30-12-4", 8, [30, 12, 4], False, "clamp"),
                     ("MLP 20-24-16-5, tiny: batch 12", 12, [20, 24, 16, 5], True, "relu")],
    },
}


def say(line: str = "") -> None:
    print(line, flush=True)
    LOG.append(line)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats; leaves out 4096^3 and batch 4096")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny shapes (SIZES['tiny']): a dry run of every code path, timings meaningless")
    parser.add_argument("--only", default=",".join(FIGURES),
                        help="comma-separated figures to run (default: a,b,c,d,e)")
    parser.add_argument("--out", default=os.environ.get("OUT"), help="folder for the raw log and JSON ($OUT)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repetitions per figure")
    parser.add_argument("--launches", type=int, default=None,
                        help="back-to-back launches per timed repetition (default 20; 1 with --tiny)")
    parser.add_argument("--write-crossover", nargs="?", const=str(CROSSOVER_FILE), default=None, metavar="PATH",
                        help="after figure (a), write the GEMM-or-cuBLAS crossover it measured to PATH "
                             "(default: gradcore/backend/gemm_crossover.json, which product_path reads)")
    args = parser.parse_args(argv)
    args.only = [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = [key for key in args.only if key not in FIGURES]
    if unknown or not args.only:  # before any GPU time is spent
        parser.error(f"--only: figures are a, b, c, d and e, got {','.join(unknown) or 'none'}")
    args.sizes = SIZES["tiny" if args.tiny else "quick" if args.quick else "full"]
    if args.launches is None:
        args.launches = 1 if args.tiny else 20
    if args.write_crossover and "a" not in args.only:
        parser.error("--write-crossover needs figure (a)")
    return args


# -- timing and checks ---------------------------------------------------------------------------------

def time_gpu(fn, repeats: int, warmup: int = 3) -> float:
    """Returns the median milliseconds per launch of ``fn()``: each of ``repeats`` samples is one CUDA-event pair
    around LAUNCHES back-to-back calls (so the events' own cost and the host's gaps between single calls do not
    dominate a short kernel), divided by that number."""
    import cupy

    launches = LAUNCHES[0]
    for _ in range(warmup):
        fn()
    cupy.cuda.Device().synchronize()
    times = []
    for _ in range(repeats):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        for _ in range(launches):
            fn()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop) / launches)
    return statistics.median(times)


def time_graph(fn, repeats: int) -> tuple:
    """Returns (median milliseconds per launch, None) of LAUNCHES calls of ``fn`` captured into one CUDA graph
    (``Stream.begin_capture``/``end_capture``, ``Graph.launch``): what the launches cost without the host's
    Python in between. Returns (None, why) where the array module cannot capture a stream."""
    import cupy

    stream_type = getattr(cupy.cuda, "Stream", None)
    if stream_type is None or not hasattr(stream_type, "begin_capture"):
        return None, "the array module has no stream capture"
    launches = LAUNCHES[0]
    try:
        stream = stream_type(non_blocking=True)
        with stream:
            fn()  # outside the capture: compiles the module and fills the memory pool
            stream.synchronize()
            stream.begin_capture()
            try:
                for _ in range(launches):
                    fn()
            finally:
                graph = stream.end_capture()
            graph.launch(stream)
            stream.synchronize()
            times = []
            for _ in range(repeats):
                start, stop = cupy.cuda.Event(), cupy.cuda.Event()
                start.record(stream)
                graph.launch(stream)
                stop.record(stream)
                stop.synchronize()
                times.append(cupy.cuda.get_elapsed_time(start, stop) / launches)
        return statistics.median(times), None
    except Exception as exc:  # noqa: BLE001  (a capture the module refuses is reported, not fatal)
        return None, f"{type(exc).__name__}: {exc}"


def relative_error(out, reference) -> float:
    import cupy

    out = cupy.asarray(out, dtype=cupy.float64)
    reference = cupy.asarray(reference, dtype=cupy.float64)
    if bool(cupy.isnan(out).any()):
        return float("inf")
    return float(cupy.linalg.norm(out - reference) / max(float(cupy.linalg.norm(reference)), 1e-300))


def checked(name: str, pairs, tolerance: float) -> bool:
    """Compares each (ours, reference) pair; prints FAIL and returns False on the first mismatch."""
    for i, (ours, reference) in enumerate(pairs):
        error = relative_error(ours, reference)
        if not error <= tolerance:
            say(f"FAIL {name}: output {i} relative error {error:.3g} > {tolerance:g}; not timed")
            RESULTS.setdefault("failures", []).append(name)
            return False
    return True


def record(key: str, **values) -> None:
    RESULTS[key] = values


# -- (a) GEMM ------------------------------------------------------------------------------------------

def figure_gemm(args, kernels, cupy) -> None:
    say("\n(a) GEMM, float32: our kernel vs cupy.matmul (cuBLAS FP32); ratio = cuBLAS time / ours (higher is better)")
    say(f"    per launch, over {LAUNCHES[0]} back-to-back launches; graph: the same launches as one CUDA graph")
    shapes = args.sizes["gemm"]
    rng = cupy.random.default_rng(0)
    say(f"{'M x K x N':>18} {'cuBLAS ms':>10} {'ours ms':>9} {'ratio':>6}  tile   | every tile, ms | graph ms")
    graph_said = False
    for m, k, n in shapes:
        a = rng.standard_normal((m, k), dtype=cupy.float32)
        b = rng.standard_normal((k, n), dtype=cupy.float32)
        reference = cupy.matmul(a, b)
        tiles = list(kernels.GEMM_TILES["float32"])
        # Every tile that is timed is checked first.
        if not checked(f"gemm {m}x{k}x{n}", [(kernels.gemm(a, b, tile=name), reference) for name in tiles], 1e-5):
            continue
        repeats = args.repeats or (10 if m * n * k > 1e10 else 50)
        cublas = time_gpu(functools.partial(cupy.matmul, a, b), repeats)
        tile = kernels.choose_tile(m, n, "float32", kernels.default_launcher().multiprocessor_count())
        per_tile = {name: time_gpu(functools.partial(kernels.gemm, a, b, tile=name), repeats) for name in tiles}
        ours = per_tile[tile]
        graph_ours, why = time_graph(functools.partial(kernels.gemm, a, b, tile=tile), repeats)
        graph_cublas, _ = time_graph(functools.partial(cupy.matmul, a, b), repeats) if why is None else (None, why)
        tflops = 2 * m * n * k / (ours * 1e-3) / 1e12
        graph = ("unavailable" if graph_ours is None or graph_cublas is None
                 else f"cuBLAS {graph_cublas:.4f} ours {graph_ours:.4f}")
        say(f"{f'{m}x{k}x{n}':>18} {cublas:10.4f} {ours:9.4f} {cublas / ours:6.2f}  {tile:6} | "
            + " ".join(f"{name} {t:.4f}" for name, t in per_tile.items()) + f"  ({tflops:.1f} TFLOP/s) | {graph}")
        if why is not None and not graph_said:
            say(f"  (CUDA graph timing unavailable: {why})")
            graph_said = True
        record(f"gemm_{m}x{k}x{n}", cublas_ms=cublas, ours_ms=ours, tile=tile, per_tile_ms=per_tile,
               ratio=cublas / ours, graph_cublas_ms=graph_cublas, graph_ours_ms=graph_ours,
               graph=why or "measured")


def derive_crossover(results: dict) -> list:
    """Returns the shape classes in which our GEMM beat cuBLAS in figure (a), as product_path's rules.

    A measured shape (M, K, N) becomes the class of every product with m <= M, k <= K and n <= N when our
    kernel (the tile choose_tile picks) was faster than cuBLAS there and at every measured shape inside that
    class: a class is claimed only where every measurement in it agrees, never extrapolated past one.
    """
    measured = {}
    for key, entry in results.items():
        if key.startswith("gemm_") and isinstance(entry, dict) and "ratio" in entry:
            m, k, n = (int(x) for x in key[len("gemm_"):].split("x"))
            measured[(m, k, n)] = entry["ratio"] > 1.0
    rules = []
    for (m, k, n), faster in sorted(measured.items()):
        inside = [won for (i, j, l), won in measured.items() if i <= m and j <= k and l <= n]
        if faster and all(inside):
            rules.append({"max_m": m, "max_k": k, "max_n": n})
    return rules


def write_crossover(path: str, device: str) -> None:
    """Writes figure (a)'s crossover (float32; float64 was not measured, so it stays on cuBLAS) to ``path``."""
    rules = derive_crossover(RESULTS)
    data = {
        "measured_on": f"{device}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, benchmarks/gpu.py (a)",
        "note": "Shape classes (every extent at most the bound) where our GEMM measured faster than cuBLAS.",
        "rules": {"float32": rules, "float64": []},
        "measurements": {key: {"ratio": entry["ratio"], "tile": entry["tile"]} for key, entry in RESULTS.items()
                         if key.startswith("gemm_") and isinstance(entry, dict) and "ratio" in entry},
    }
    Path(path).write_text(json.dumps(data, indent=2) + "\n")
    say(f"crossover: {len(rules)} float32 shape classes on our GEMM, written to {path}")


# -- (b) fused Linear + activation ---------------------------------------------------------------------

def _fused_linear(kernels, x, w, b, g, activation):
    y, saved = kernels.linear_forward(x, w, b, activation)
    return (y, *kernels.linear_backward(g, x, w, saved, activation))


def _cublas_with_our_epilogue(kernels, x, w, b, g, activation):
    """gradcore's path above the GEMM crossover: cuBLAS products, bias + activation in one pass, the derivative
    and the bias gradient in one pass."""
    y, saved = kernels.bias_activation(x @ w.T, b, activation)
    d_z, d_b = kernels.activation_backward(g, saved, activation, column_sums=True)
    return y, d_z @ w, d_z.T @ x, d_b


def _unfused_linear_our_elementwise(kernels, x, w, b, g, activation):
    z = x @ w.T + b
    if activation == "relu":
        y = kernels.clamp_forward(z, 0.0)
        d_z = kernels.relu_backward(g, y)
    else:
        y = kernels.sigmoid_forward(z)
        d_z = kernels.sigmoid_backward(g, y)
    return y, d_z @ w, d_z.T @ x, d_z.sum(axis=0)


def _unfused_linear_cupy(cupy, x, w, b, g, activation):
    """The CuPy expressions of gradcore/ops/activation.py today, after cuBLAS."""
    z = x @ w.T + b
    if activation == "relu":
        y = cupy.maximum(z, 0)
        d_z = g * (y > 0)
    else:
        e = cupy.exp(-cupy.abs(z))
        y = cupy.where(z >= 0, 1 / (1 + e), e / (1 + e))
        d_z = g * y * (1 - y)
    return y, d_z @ w, d_z.T @ x, d_z.sum(axis=0)


def figure_fused_linear(args, kernels, cupy) -> None:
    say("\n(b) Linear + activation, forward + backward, float32; speed-up = unfused time / fused time")
    shapes = args.sizes["linear"]
    rng = cupy.random.default_rng(1)
    say("fused: our GEMM with epilogue/prologue; cuBLAS+epi: cuBLAS with our one-pass epilogue and backward pass;"
        " cuBLAS+ours / cuBLAS+CuPy: unfused, our elementwise kernels / CuPy expressions")
    say(f"{'batch x in -> out':>20} {'act':>8} {'fused ms':>9} {'cuBLAS+epi':>11} {'x':>5} {'cuBLAS+ours':>12} "
        f"{'x':>5} {'cuBLAS+CuPy':>12} {'x':>5}")
    for m, k, n in shapes:
        x = rng.standard_normal((m, k), dtype=cupy.float32)
        w = rng.standard_normal((n, k), dtype=cupy.float32) / k ** 0.5
        b = rng.standard_normal(n, dtype=cupy.float32)
        g = rng.standard_normal((m, n), dtype=cupy.float32)
        for activation in ("relu", "sigmoid"):
            fused = functools.partial(_fused_linear, kernels, x, w, b, g, activation)
            epilogue = functools.partial(_cublas_with_our_epilogue, kernels, x, w, b, g, activation)
            unfused_ours = functools.partial(_unfused_linear_our_elementwise, kernels, x, w, b, g, activation)
            unfused_cupy = functools.partial(_unfused_linear_cupy, cupy, x, w, b, g, activation)
            name = f"linear_{activation}_{m}x{k}x{n}"
            reference = unfused_ours()
            if not (checked(name, list(zip(fused(), reference)), 1e-5)
                    and checked(name + "_cublas_epilogue", list(zip(epilogue(), reference)), 1e-5)):
                continue
            repeats = args.repeats or 30
            t_fused = time_gpu(fused, repeats)
            t_epilogue = time_gpu(epilogue, repeats)
            t_ours = time_gpu(unfused_ours, repeats)
            t_cupy = time_gpu(unfused_cupy, repeats)
            say(f"{f'{m}x{k}->{n}':>20} {activation:>8} {t_fused:9.4f} {t_epilogue:11.4f} "
                f"{t_cupy / t_epilogue:5.2f} {t_ours:12.4f} {t_ours / t_fused:5.2f} {t_cupy:12.4f} "
                f"{t_cupy / t_fused:5.2f}")
            record(name, fused_ms=t_fused, cublas_with_our_epilogue_ms=t_epilogue,
                   cublas_plus_our_elementwise_ms=t_ours, cublas_plus_cupy_ms=t_cupy,
                   speedup_vs_ours=t_ours / t_fused, speedup_vs_cupy=t_cupy / t_fused,
                   epilogue_speedup_vs_cupy=t_cupy / t_epilogue)


# -- (c) elementwise bandwidth -------------------------------------------------------------------------

def figure_bandwidth(args, kernels, cupy) -> None:
    n = args.sizes["bandwidth"]
    say(f"\n(c) elementwise bandwidth, {n} elements; ratio = kernel GB/s / device-to-device copy GB/s")
    for dtype in ("float32", "float64"):
        rng = cupy.random.default_rng(2)
        x = rng.standard_normal(n, dtype=dtype) * 4
        g = rng.standard_normal(n, dtype=dtype)
        copy_target = cupy.empty_like(x)
        repeats = args.repeats or 20
        t_copy = time_gpu(functools.partial(copy_target.data.copy_from_device, x.data, x.nbytes), repeats)
        copy_bandwidth = 2 * x.nbytes / (t_copy * 1e-3) / 1e9
        say(f"{dtype}: device-to-device copy {copy_bandwidth:.0f} GB/s ({t_copy:.3f} ms)")
        y = kernels.sigmoid_forward(x)
        e = cupy.exp(-cupy.abs(x.astype(cupy.float64)))
        cases = {
            # name: (function, arrays moved, reference)
            "clamp_forward": (functools.partial(kernels.clamp_forward, x, -1.0, 1.0), 2, cupy.clip(x, -1.0, 1.0)),
            "clamp_backward": (functools.partial(kernels.clamp_backward, g, x, -1.0, 1.0), 3,
                               cupy.where((x >= -1) & (x <= 1), g, 0)),
            "sigmoid_forward": (functools.partial(kernels.sigmoid_forward, x), 2,
                                cupy.where(x >= 0, 1 / (1 + e), e / (1 + e))),
            "sigmoid_backward": (functools.partial(kernels.sigmoid_backward, g, y), 3, g * (1 - y) * y),
        }
        for name, (fn, arrays, reference) in cases.items():
            if not checked(f"{name} {dtype}", [(fn(), reference)], 1e-6 if dtype == "float32" else 1e-14):
                continue
            t = time_gpu(fn, repeats)
            bandwidth = arrays * x.nbytes / (t * 1e-3) / 1e9
            say(f"  {name:17} {t:8.3f} ms {bandwidth:7.0f} GB/s  ratio {bandwidth / copy_bandwidth:.2f}")
            record(f"{name}_{dtype}", ms=t, gb_per_s=bandwidth, copy_gb_per_s=copy_bandwidth,
                   ratio=bandwidth / copy_bandwidth)


# -- (d) training steps --------------------------------------------------------------------------------

def _kernel_mlp_step(kernels, cupy, params, x, target, activation_kind, lr):
    """One SGD step of an MLP written directly on our kernels; returns the loss (a device scalar)."""
    saved, inputs = [], [x]
    h = x
    last = len(params) - 1
    for i, (w, b) in enumerate(params):
        act = "none" if i == last else activation_kind
        h, s = kernels.linear_forward(h, w, b, act, clamp_min=0.0 if act == "clamp" else None)
        saved.append(s)
        inputs.append(h)
    if target.dtype.kind == "i":  # cross-entropy on logits
        shifted = h - h.max(axis=1, keepdims=True)
        p = cupy.exp(shifted)
        p /= p.sum(axis=1, keepdims=True)
        loss = -cupy.log(p[cupy.arange(len(target)), target]).mean()
        grad = p
        grad[cupy.arange(len(target)), target] -= 1
        grad /= len(target)
    else:  # sum of squares
        diff = h - target
        loss = (diff * diff).sum()
        grad = 2 * diff
    for i in range(last, -1, -1):
        w, b = params[i]
        act = "none" if i == last else activation_kind
        gx, gw, gb = kernels.linear_backward(grad, inputs[i], w, saved[i], act,
                                             clamp_min=0.0 if act == "clamp" else None,
                                             needs_input_grad=(i > 0, True, b is not None))
        w -= lr * gw
        if b is not None:
            b -= lr * gb
        grad = gx
    return loss


def _framework_step(framework, x, target, params, act, classify, lr):
    """One SGD step written against the PyTorch API: ``framework`` is gradcore or torch, the same code for both."""
    h = x
    for i, (w, b) in enumerate(params):
        h = h.mm(w.t()) if b is None else framework.nn.functional.linear(h, w, b)
        if i < len(params) - 1:
            h = h.clamp(min=0) if act == "clamp" else h.relu()
    loss = framework.nn.functional.cross_entropy(h, target) if classify else (h - target).pow(2).sum()
    loss.backward()
    with framework.no_grad():
        for w, b in params:
            for p in (w, b):
                if p is not None:
                    p -= lr * p.grad
                    p.grad = None
    return loss


def pytorch_for_comparison() -> tuple:
    """Returns (torch, device) of figure (d)'s PyTorch column: device "cuda" where PyTorch is installed and sees a
    GPU, None (no column) otherwise. The tests replace it to run the column's code on PyTorch's CPU."""
    try:
        import torch
    except ImportError:
        return None, None
    return torch, ("cuda" if torch.cuda.is_available() else None)


def figure_training(args, kernels, cupy) -> None:
    import numpy as np

    import gradcore

    torch, torch_device = pytorch_for_comparison()
    say("\n(d) training step, float32, ms per step (SGD); ratio = PyTorch time / ours (>= 1: no slower)")
    lr = 1e-6
    for title, batch, sizes, classify, act in args.sizes["training"]:
        rng = np.random.default_rng(3)
        x_host = rng.standard_normal((batch, sizes[0])).astype(np.float32)
        if classify:
            target_host = rng.integers(0, sizes[-1], batch)
        else:
            target_host = rng.standard_normal((batch, sizes[-1])).astype(np.float32)
        weights = [(rng.standard_normal((o, i)) / i ** 0.5).astype(np.float32) for i, o in itertools.pairwise(sizes)]
        biases = [rng.standard_normal(o).astype(np.float32) * 0.1 if classify else None for o in sizes[1:]]

        x, target = cupy.asarray(x_host), cupy.asarray(target_host)
        params = [(cupy.asarray(w), None if b is None else cupy.asarray(b)) for w, b in zip(weights, biases)]
        ours = functools.partial(_kernel_mlp_step, kernels, cupy, params, x, target, act, lr)

        gx = gradcore.tensor(x_host, device="cuda")
        gt = gradcore.tensor(target_host, device="cuda")
        g_params = [(gradcore.tensor(w, device="cuda", requires_grad=True),
                     None if b is None else gradcore.tensor(b, device="cuda", requires_grad=True))
                    for w, b in zip(weights, biases)]

        through_gradcore = functools.partial(_framework_step, gradcore, gx, gt, g_params, act, classify, lr)

        steps = {"our kernels": ours, "gradcore API": through_gradcore}
        losses = {"our kernels": float(ours()), "gradcore API": float(through_gradcore().item())}
        if torch_device is not None:
            tx = torch.tensor(x_host, device=torch_device)
            tt = torch.tensor(target_host, device=torch_device)
            t_params = [(torch.tensor(w, device=torch_device, requires_grad=True),
                         None if b is None else torch.tensor(b, device=torch_device, requires_grad=True))
                        for w, b in zip(weights, biases)]

            through_torch = functools.partial(_framework_step, torch, tx, tt, t_params, act, classify, lr)

            steps["PyTorch eager"] = through_torch
            losses["PyTorch eager"] = float(through_torch().item())
        # The first step starts from the same weights everywhere, so the first losses must agree.
        first = losses["our kernels"]
        bad = {name: loss for name, loss in losses.items() if not abs(loss - first) <= 1e-4 * max(abs(first), 1)}
        if bad:
            say(f"FAIL {title}: first-step losses differ: {losses}; not timed")
            RESULTS.setdefault("failures", []).append(title)
            continue
        repeats = args.repeats or 30
        times = {name: time_gpu(fn, repeats) for name, fn in steps.items()}
        line = f"  {title:34} " + "  ".join(f"{name} {t:.3f}" for name, t in times.items())
        if "PyTorch eager" in times:
            line += "  | ratio " + "  ".join(f"{name} {times['PyTorch eager'] / t:.2f}"
                                            for name, t in times.items() if name != "PyTorch eager")
        say(line)
        record(f"train_{title}", ms=times, first_losses=losses)
    if torch_device is None:
        say("  (PyTorch with CUDA is not available here: no PyTorch column)")


def figure_graph(args, kernels, cupy) -> None:
    """(e) The first training configuration (the seed MLP) through gradcore's API, as a CUDA graph."""
    import warnings

    import numpy as np

    import gradcore

    torch, torch_device = pytorch_for_comparison()
    title, batch, sizes, classify, act = args.sizes["training"][0]
    say("\n(e) the seed MLP step replayed as one CUDA graph, float32, ms per step (SGD); "
        "ratio = our time / PyTorch eager's (target <= 0.5)")
    lr = 1e-6
    rng = np.random.default_rng(3)
    x_host = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    target_host = (rng.integers(0, sizes[-1], batch) if classify
                   else rng.standard_normal((batch, sizes[-1])).astype(np.float32))
    weights = [(rng.standard_normal((o, i)) / i ** 0.5).astype(np.float32)
               for i, o in itertools.pairwise(sizes)]
    biases = [rng.standard_normal(o).astype(np.float32) * 0.1 if classify else None for o in sizes[1:]]
    gx, gt = gradcore.tensor(x_host, device="cuda"), gradcore.tensor(target_host, device="cuda")

    def gradcore_params():
        return [(gradcore.tensor(w, device="cuda", requires_grad=True),
                 None if b is None else gradcore.tensor(b, device="cuda", requires_grad=True))
                for w, b in zip(weights, biases)]

    losses = {"gradcore eager": float(_framework_step(gradcore, gx, gt, gradcore_params(), act, classify,
                                                      lr).item())}
    steps = {}

    # By hand, as PyTorch's whole-network capture: warm up on a side stream, put the first weights back (in
    # place: the graph keeps the addresses), capture, replay.
    params = gradcore_params()
    step = functools.partial(_framework_step, gradcore, gx, gt, params, act, classify, lr)
    side = gradcore.cuda.Stream()
    side.wait_stream(gradcore.cuda.current_stream())
    with gradcore.cuda.stream(side):
        for _ in range(3):
            step()
    gradcore.cuda.current_stream().wait_stream(side)
    with gradcore.no_grad():
        for (w, b), (w0, b0) in zip(params, gradcore_params()):
            w.copy_(w0)
            if b is not None:
                b.copy_(b0)
    graph = gradcore.cuda.CUDAGraph()
    with gradcore.cuda.graph(graph):
        static_loss = step()
    graph.replay()
    losses["CUDA graph"] = float(static_loss.item())
    steps["CUDA graph"] = graph.replay

    # gradcore.compile: its replays are CUDA graphs where the array module's arrays can be captured.
    compiled_params = gradcore_params()

    def compiled_step(x, target):
        return _framework_step(gradcore, x, target, compiled_params, act, classify, lr)

    compiled = gradcore.compile(compiled_step)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        losses["gradcore.compile"] = float(compiled(gx, gt).item())
        for _ in range(4):  # two captures, then the replay that captures the graph
            compiled(gx, gt)
    if compiled.cuda_graph_stats["launches"]:
        steps["gradcore.compile"] = functools.partial(compiled, gx, gt)
    else:
        why = (compiled.cuda_graph_stats["fallback"] or "; ".join(str(w.message) for w in caught)
               or "it did not replay")
        say(f"  (gradcore.compile does not replay as CUDA graphs here: {why})")

    if torch_device is not None:
        tx, tt = torch.tensor(x_host, device=torch_device), torch.tensor(target_host, device=torch_device)
        t_params = [(torch.tensor(w, device=torch_device, requires_grad=True),
                     None if b is None else torch.tensor(b, device=torch_device, requires_grad=True))
                    for w, b in zip(weights, biases)]
        steps["PyTorch eager"] = functools.partial(_framework_step, torch, tx, tt, t_params, act, classify,
                                                   lr)
        losses["PyTorch eager"] = float(steps["PyTorch eager"]().item())
    first = losses["gradcore eager"]
    bad = {name: loss for name, loss in losses.items() if not abs(loss - first) <= 1e-4 * max(abs(first), 1)}
    if bad:
        say(f"FAIL {title} as a CUDA graph: first-step losses differ: {losses}; not timed")
        RESULTS.setdefault("failures", []).append(f"graph {title}")
        return
    repeats = args.repeats or 30
    times = {name: time_gpu(fn, repeats) for name, fn in steps.items()}
    line = f"  {title:34} " + "  ".join(f"{name} {t:.3f}" for name, t in times.items())
    ratios = {}
    if "PyTorch eager" in times:
        ratios = {name: t / times["PyTorch eager"] for name, t in times.items() if name != "PyTorch eager"}
        line += "  | ratio " + "  ".join(f"{name} {r:.2f}" for name, r in ratios.items())
    say(line)
    record(f"graph_{title}", ms=times, first_losses=losses, ratio_to_pytorch=ratios)
    if torch_device is None:
        say("  (PyTorch with CUDA is not available here: no PyTorch column)")


def environment(cupy) -> None:
    import numpy as np

    from gradcore.backend import kernels

    runtime = cupy.cuda.runtime
    device = cupy.cuda.Device()
    props = runtime.getDeviceProperties(device.id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc_version = ".".join(map(str, nvrtc.getVersion()))
    except Exception as exc:  # noqa: BLE001
        nvrtc_version = f"unknown ({exc})"
    try:
        import torch

        torch_version = f"{torch.__version__} (CUDA {torch.version.cuda}, GPU visible: {torch.cuda.is_available()})"
    except ImportError:
        torch_version = "not installed"
    info = {
        "device": name, "compute_capability": f"{props['major']}.{props['minor']}",
        "multiprocessors": props["multiProcessorCount"], "driver": runtime.driverGetVersion(),
        "cuda_runtime": runtime.runtimeGetVersion(), "cupy": cupy.__version__, "nvrtc": nvrtc_version,
        "numpy": np.__version__, "torch": torch_version, "build_options": list(kernels.BUILD_OPTIONS),
        "CUPY_TF32": os.environ.get("CUPY_TF32"), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    RESULTS["environment"] = info
    for key, value in info.items():
        say(f"{key}: {value}")


def save(out) -> None:
    """Writes the log and the JSON of every timing so far into the folder ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_bench.log").write_text("\n".join(LOG) + "\n")
    (out / "gpu_bench.json").write_text(json.dumps(RESULTS, indent=2, default=str))


def main(argv=None) -> int:
    args = parse_args(argv)
    LOG.clear()
    RESULTS.clear()
    LAUNCHES[0] = args.launches
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001
        print(f"benchmarks/gpu.py needs CuPy and a CUDA GPU: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    from gradcore.backend import kernels

    try:
        environment(cupy)
    except Exception as exc:  # noqa: BLE001  (the figures are still worth running)
        say(f"FAIL environment: {type(exc).__name__}: {exc}")
        RESULTS.setdefault("failures", []).append("environment")
    figures = {"a": figure_gemm, "b": figure_fused_linear, "c": figure_bandwidth, "d": figure_training,
               "e": figure_graph}
    started = time.perf_counter()
    for key in args.only:
        if args.out:  # before every figure, so that a run stopped by a time limit keeps what it measured
            save(args.out)
        try:
            figures[key](args, kernels, cupy)
        except Exception as exc:  # noqa: BLE001  (one broken figure must not lose the others' numbers)
            say(f"FAIL figure {key}: {type(exc).__name__}: {exc}")
            RESULTS.setdefault("failures", []).append(f"figure {key}")
    if args.write_crossover:
        try:
            device = str(RESULTS.get("environment", {}).get("device", "unknown device"))
            write_crossover(args.write_crossover, device)
        except Exception as exc:  # noqa: BLE001
            say(f"FAIL crossover: {type(exc).__name__}: {exc}")
            RESULTS.setdefault("failures", []).append("crossover")
    say(f"\nbenchmarks/gpu.py done in {time.perf_counter() - started:.0f} s; "
        f"failures: {RESULTS.get('failures', 'none')}")
    if args.out:
        save(args.out)
    return 1 if RESULTS.get("failures") else 0


if __name__ == "__main__":
    sys.exit(main())
