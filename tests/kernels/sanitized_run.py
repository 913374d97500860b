"""Child process of the sanitizer tests (kernel_sanitizers.py): launches kernels from sanitized builds.

    sanitized_run.py all FAMILY=LIBRARY ...     every instantiation on small odd shapes; exit 0 when all agree
                                                with float64 numpy
    sanitized_run.py planted LIBRARY            the planted bug's ``run``; a sanitizer ends the process first
"""
from __future__ import annotations

import ctypes
import sys

import numpy as np


def run_every_instantiation(libraries: dict) -> int:
    import kernel_emulation

    from gradcore.backend import kernels

    launcher = kernel_emulation.EmulatedLauncher(libraries, multiprocessors=2)
    # Reports enough multiprocessors for the products of five and a bit steps of K below to split along K.
    splitting = kernel_emulation.EmulatedLauncher(libraries, multiprocessors=16)
    rng = np.random.default_rng(0)
    failures = []

    def check(what, got, want, scale):
        got = np.asarray(got, dtype=np.float64)
        if got.shape != want.shape or not np.all(np.abs(got - want) <= 1e-4 * (scale + np.abs(want)) + 1e-30):
            failures.append(what)

    for dtype, tiles in kernels.GEMM_TILES.items():
        for tile, (bm, bn, bk, _tm, _tn) in tiles.items():
            # One interior block and edge blocks, a partial k-step, odd extents; and a tiny product.
            for m, k, n in [(bm + 3, 2 * bk + 3, bn + 5), (3, 5, 7)]:
                a = rng.standard_normal((m, k)).astype(dtype)
                b = rng.standard_normal((k, n)).astype(dtype)
                bias = rng.standard_normal(n).astype(dtype)
                a64, b64 = a.astype(np.float64), b.astype(np.float64)
                scale = np.abs(a64) @ np.abs(b64)
                out = kernels.gemm(a, b, bias=bias, activation="relu", tile=tile, launcher=launcher)
                check(f"{dtype} {tile} forward {m}x{k}x{n}", out, np.maximum(a64 @ b64 + bias, 0), scale)
                out = kernels.gemm(a.T.copy(), b.T.copy(), trans_a=True, trans_b=True, tile=tile, launcher=launcher)
                check(f"{dtype} {tile} transposed {m}x{k}x{n}", out, a64 @ b64, scale)
                grad = rng.standard_normal((m, n)).astype(dtype)
                saved = np.maximum(rng.standard_normal((m, n)), 0).astype(dtype)
                x = rng.standard_normal((m, k)).astype(dtype)
                w = rng.standard_normal((n, k)).astype(dtype)
                dz = np.where(saved > 0, grad.astype(np.float64), 0.0)
                grad_x, grad_w, grad_b = kernels.linear_backward(grad, x, w, saved, "relu", tile=tile,
                                                                 launcher=launcher)
                check(f"{dtype} {tile} grad_x", grad_x, dz @ w, np.abs(dz) @ np.abs(w))
                check(f"{dtype} {tile} grad_w", grad_w, dz.T @ x, np.abs(dz.T) @ np.abs(x))
                check(f"{dtype} {tile} grad_b", grad_b, dz.sum(axis=0), np.abs(dz).sum(axis=0))
            # Split-K (the GEMM's slices, then gemm_split_reduce): forward with its epilogue, and the row sums.
            m, k, n = bm + 3, 5 * bk + 3, bn + 5
            a = rng.standard_normal((m, k)).astype(dtype)
            b = rng.standard_normal((k, n)).astype(dtype)
            bias = rng.standard_normal(n).astype(dtype)
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            out = kernels.gemm(a, b, bias=bias, activation="relu", tile=tile, launcher=splitting)
            check(f"{dtype} {tile} split-K forward", out, np.maximum(a64 @ b64 + bias, 0),
                  np.abs(a64) @ np.abs(b64))
            grad = rng.standard_normal((k, m)).astype(dtype)
            x = rng.standard_normal((k, n)).astype(dtype)
            weight = rng.standard_normal((m, n)).astype(dtype)
            _, grad_w, grad_b = kernels.linear_backward(grad, x, weight, None, "none", tile=tile, launcher=splitting)
            g64 = grad.astype(np.float64)
            check(f"{dtype} {tile} split-K grad_w", grad_w, g64.T @ x, np.abs(g64.T) @ np.abs(x))
            check(f"{dtype} {tile} split-K grad_b", grad_b, g64.sum(axis=0), np.abs(g64).sum(axis=0))
    for dtype in kernels.GEMM_TILES:
        z = rng.standard_normal((37, 5)).astype(dtype)
        y, _ = kernels.bias_activation(z.copy(), rng.standard_normal(5).astype(dtype), "sigmoid", launcher=launcher)
        check(f"{dtype} bias_activation", np.isfinite(y), np.ones(z.shape, bool), 1.0)
        dz, sums = kernels.activation_backward(z, np.maximum(z, 0), "relu", column_sums=True, launcher=launcher)
        want = np.where(np.maximum(z, 0) > 0, z.astype(np.float64), 0.0)
        check(f"{dtype} activation_backward", dz, want, np.abs(want))
        check(f"{dtype} column sums", sums, want.sum(axis=0), np.abs(want).sum(axis=0))
        check(f"{dtype} clamp", kernels.clamp_forward(z, -0.5, 0.5, launcher=launcher),
              np.clip(z.astype(np.float64), -0.5, 0.5), 1.0)
    if failures:
        print("wrong results: " + "; ".join(failures), file=sys.stderr)
        return 1
    print("every instantiation ran")
    return 0


def main(argv: list) -> int:
    if argv[0] == "all":
        return run_every_instantiation(dict(item.split("=", 1) for item in argv[1:]))
    if argv[0] == "planted":
        run = ctypes.CDLL(argv[1]).run
        out = np.zeros(64, dtype=np.float32)
        status = run(out.ctypes.data_as(ctypes.c_void_p))
        print(f"the planted kernel ran to the end (launch status {status})")
        return 0
    raise SystemExit(f"unknown mode {argv[0]!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
