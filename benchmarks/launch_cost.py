"""Python cost of launching our kernels: the wrappers of ``gradcore.backend.kernels`` with a launcher that does
nothing, on the CPU, so that what is timed is the argument checks, the launch plan and the argument list alone.

The arrays are ``DeviceArray``s: numpy memory behind the attributes a CuPy array offers (``shape``, ``strides``,
``dtype``, ``flags``, ``data.ptr``), so that the wrappers read them as cheaply as CuPy's; numpy's own address
lookup (``__array_interface__``, several microseconds) is not what a GPU launch pays. The launcher allocates
outputs as DeviceArrays and drops every launch. Each figure is the median over
``--repeats`` runs of the per-call time of ``--calls`` back-to-back calls, for the MLP shapes of issue 13.
Targets: at most 10 µs per ``gemm`` call and 20 µs per fused backward (``linear_backward`` with all three
gradients: two GEMM launches).

    PYTHONPATH=. python benchmarks/launch_cost.py            # writes benchmarks/results/launch_cost.md
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gradcore.backend import kernels  # noqa: E402

SHAPES = [(64, 100, 1000), (256, 784, 512), (256, 512, 10)]  # (batch, in, out) of the MLP layers
TARGETS_US = {"gemm": 10.0, "linear_forward": 10.0, "linear_backward": 20.0, "activation_backward": 10.0,
              "relu_backward": 10.0}


class _Pointer:
    __slots__ = ("ptr",)

    def __init__(self, ptr: int) -> None:
        self.ptr = ptr


class DeviceArray:
    """Numpy memory with the attributes of a CuPy array that the wrappers read, all plain attributes."""

    __slots__ = ("host", "shape", "strides", "dtype", "ndim", "size", "itemsize", "flags", "_data")

    def __init__(self, host: np.ndarray) -> None:
        self.host = host
        self.shape, self.strides, self.dtype = host.shape, host.strides, host.dtype
        self.ndim, self.size, self.itemsize, self.flags = host.ndim, host.size, host.itemsize, host.flags
        self._data = None

    @property
    def data(self) -> _Pointer:
        """The address, looked up once: CuPy has it at hand, numpy takes microseconds to tell it."""
        if self._data is None:
            self._data = _Pointer(self.host.__array_interface__["data"][0])
        return self._data

    @property
    def T(self) -> "DeviceArray":
        return DeviceArray(self.host.T)

    def __setitem__(self, key, value) -> None:
        self.host[key] = value


class NullLauncher:
    """A launcher that launches nothing: outputs are DeviceArrays, launches are dropped."""

    xp = np

    def empty(self, shape: tuple, dtype: str) -> DeviceArray:
        return DeviceArray(np.empty(shape, dtype=dtype))

    def multiprocessor_count(self) -> int:
        return 132

    def launch(self, kernel, grid, block, args, dtype) -> None:
        pass


def per_call_us(call, calls: int, repeats: int) -> tuple:
    """Returns the median and the minimum over ``repeats`` of the mean time of ``calls`` calls, in microseconds."""
    call()  # the first call builds the caches
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples), min(samples)


def workloads(launcher) -> list:
    """Returns (name, shape, call) for every timed wrapper and shape."""
    rng = np.random.default_rng(0)
    found = []
    for batch, inner, outer in SHAPES:
        x = DeviceArray(rng.standard_normal((batch, inner)).astype(np.float32))
        w = DeviceArray(rng.standard_normal((outer, inner)).astype(np.float32))
        bias = DeviceArray(rng.standard_normal(outer).astype(np.float32))
        grad = DeviceArray(rng.standard_normal((batch, outer)).astype(np.float32))
        saved = DeviceArray(np.maximum(grad.host, 0))
        shape = f"{batch}x{inner}x{outer}"
        found += [
            ("gemm", shape, lambda x=x, w=w: kernels.gemm(x, w, trans_b=True, launcher=launcher)),
            ("linear_forward", shape,
             lambda x=x, w=w, bias=bias: kernels.linear_forward(x, w, bias, "relu", launcher=launcher)),
            ("linear_backward", shape,
             lambda grad=grad, x=x, w=w, saved=saved: kernels.linear_backward(grad, x, w, saved, "relu",
                                                                              launcher=launcher)),
            ("activation_backward", shape,
             lambda grad=grad, saved=saved: kernels.activation_backward(grad, saved, "relu", column_sums=True,
                                                                        launcher=launcher)),
            ("relu_backward", shape,
             lambda grad=grad, saved=saved: kernels.relu_backward(grad, saved, launcher=launcher)),
        ]
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "launch_cost.md"))
    options = parser.parse_args(argv)
    launcher = NullLauncher()
    rows = []
    for name, shape, call in workloads(launcher):
        us, fastest = per_call_us(call, options.calls, options.repeats)
        target = TARGETS_US[name]
        rows.append(f"| `{name}` | {shape} | {us:.1f} | {fastest:.1f} | {target:g} | "
                    f"{'yes' if us <= target else 'no'} |")
    lines = [
        "# Python cost of a kernel launch",
        "",
        f"`PYTHONPATH=. python benchmarks/launch_cost.py --calls {options.calls} --repeats {options.repeats}` "
        f"(Python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}): the wrappers of "
        "`gradcore.backend.kernels` with a launcher that does nothing, on float32 arrays with CuPy's attributes "
        "(numpy memory; see the script's docstring); median over the "
        "repeats of the mean time per call. The launch itself (CuPy packing the arguments and the driver call) "
        "is not included: not measured on a GPU.",
        "",
        f"Load average while it ran: {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1, 5, 15 min) on "
        f"{os.cpu_count()} CPUs; on a busy machine the minimum is the figure least disturbed by other processes.",
        "",
        "| wrapper | batch x in x out | µs per call (median) | µs per call (minimum) | target µs | median met |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]
    text = "\n".join(lines)
    Path(options.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
