"""Replaying a captured program on a CUDA device as CUDA graphs.

A program whose arrays all live on one CUDA device is replayed by graph launches instead of one launch per
operation from Python. On its first replay each stretch of device steps is captured by CuPy stream capture
(``Stream.begin_capture`` / ``end_capture`` on a side stream, in relaxed mode, with a memory pool of its own
that the graph keeps) and then launched with ``Graph.launch`` on the current stream; later replays only
launch. A capture records the launches without running them, so a step never runs twice.

The graphs read their inputs from the program's own input buffers (the call's tensors are copied into them
first, as ``torch.cuda.make_graphed_callables`` does with its static inputs) and write into the program's
buffers, from which the call's results are read: the addresses baked into a graph stay valid as long as the
program lives.

Host steps cannot be in a graph: guards checked during the replay, values read from arrays (``.item()``),
arithmetic on such values, host calls, and steps on host (numpy) arrays, such as a step count kept on the CPU.
Those that touch only Python numbers and host arrays (``Program.hoistable``: scalar arithmetic, a read of a host
array, an array step on host arrays) run before the graph of their stretch, in order; the others (a guard, a
read from a device array, a host call) run from Python between graphs: a program is split into graph segments
at them (one graph when it has none), and each replay launches every segment once. An array step that takes a
Python number a replay may change (a scalar argument, a number computed on the host) stays in the graph when
that number can be read from a 0-d device array with the same result (``Program.device_scalars``): the runner
keeps one such array per number, views of one buffer per dtype refreshed by a single host copy before each
launch of a segment that reads them. An SGD training step is one graph, and so is Adam's, whose step counts and bias corrections are
computed on the host before the launch.

Where capture is not possible (arrays on several CUDA devices, or CuPy refusing an operation during the
capture) the program is replayed step by step, and ``reason`` (the compiled function's
``cuda_graph_stats["fallback"]``) says why.
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np

from ..backend import backend_of

__all__ = ["StepRunner", "run_part"]


def run_part(variant, part: str, stats: dict) -> None:
    """Replays one part of a variant's program: "all", "forward" (up to the captured backward) or "backward"
    (the rest); the runner of each part, with its graphs, is made on first use and kept with the variant."""
    runner = variant.cuda_graphs.get(part)
    if runner is None:
        runner = variant.cuda_graphs[part] = StepRunner(variant.program, part, variant.forward_steps, stats)
    runner.run()


class StepRunner:
    """Runs one part of a program: step by step on the CPU, as CUDA graph segments on a CUDA device."""

    def __init__(self, program, part: str, forward_steps: int, stats: dict) -> None:
        start, stop = {"all": (0, len(program.steps)), "forward": (0, forward_steps),
                       "backward": (forward_steps, len(program.steps))}[part]
        steps = list(program.steps[start:stop])
        host = list(program.host_steps()[start:stop])
        positions: list = list(program.live[start:stop])
        if part != "backward":  # the temporaries the capture wrote get their first values back first
            resets = [functools.partial(np.copyto, array, initial) for array, initial in program.resets]
            steps, host = resets + steps, [False] * len(resets) + host
            # a reset of a host array is a host step, kept in order with the host steps hoisted before a graph
            positions = [("reset", type(array) is np.ndarray) for array, _ in program.resets] + positions
        self.steps = steps
        self.stats = stats
        self.backend, self.reason = _cuda_backend(program)
        if self.reason is not None:
            stats["fallback"] = self.reason
        #: ("host", step), ("scalars", None) and ("graph", segment) in replay order, on a CUDA device
        self.items: list = []
        self._stream = None
        if self.backend is None:
            return
        self._program = program
        steps = list(steps)  # the step-by-step replay (self.steps) keeps the steps that take Python numbers
        plan = self._plan(program, steps, host, positions)
        segment: list = []
        hoisted: list = []
        reads_numbers = False

        def close_segment() -> None:
            nonlocal segment, hoisted, reads_numbers
            self.items += [("host", step) for step in hoisted]
            if segment:
                if reads_numbers:
                    self.items.append(("scalars", None))
                self.items.append(("graph", _Segment(segment)))
            segment, hoisted, reads_numbers = [], [], False

        for step, kind in zip(steps, plan):
            if kind in ("device", "numbers"):
                segment.append(step)
                reads_numbers = reads_numbers or kind == "numbers"
            elif kind == "hoist":
                hoisted.append(step)
            else:
                close_segment()
                self.items.append(("host", step))
        close_segment()

    def _plan(self, program, steps: list, host: list, positions: list) -> list:
        """What each step is on a CUDA device: "device" (in a graph), "numbers" (in a graph, reading Python
        numbers from device arrays: ``steps`` gets its new step), "hoist" (a host step that runs before
        the graph of its stretch, ``Program.hoistable``) or "host" (a host step that ends a stretch). An array
        step that takes Python numbers a replay may change reads them from 0-d device arrays of the runner
        (``Program.device_scalars``), refreshed by one copy per dtype before each launch of a graph that
        reads them, and stays in the graph."""
        wanted = {}
        plan = []
        for on_host, position in zip(host, positions):
            if isinstance(position, tuple):  # a reset
                plan.append("hoist" if position[1] else "device")
            elif not on_host:
                plan.append("device")
            elif program.hoistable(position):
                plan.append("hoist")
            else:
                found = program.device_scalars(position)
                if found is None:
                    plan.append("host")
                    continue
                plan.append(("scalars", position, found))
                for _, register, dtype in found:
                    wanted[(register, dtype)] = None
        xp = self.backend.xp
        #: per dtype: the device array of the numbers, its host staging copy, and the registers in order
        self._scalar_buffers = []
        views = {}
        with xp.cuda.Device(self.backend.index):
            for dtype in dict.fromkeys(d for _, d in wanted):
                registers = [r for r, d in wanted if d == dtype]
                device = xp.empty(len(registers), dtype=dtype)
                self._scalar_buffers.append((device, np.empty(len(registers), dtype=dtype), registers))
                for k, r in enumerate(registers):
                    views[(r, dtype)] = device[k, ...]
        for k, kind in enumerate(plan):
            if isinstance(kind, tuple):
                _, position, found = kind
                steps[k] = program.step_reading_scalars(position, {r: views[(r, d)] for _, r, d in found})
                plan[k] = "numbers"
        return plan

    def _refresh_scalars(self) -> None:
        """Copies the current values of the Python numbers that graph steps read into their device arrays."""
        registers = self._program.registers
        stream = self.backend.xp.cuda.get_current_stream()
        for device, staging, numbers in self._scalar_buffers:
            for k, r in enumerate(numbers):
                staging[k] = registers[r]
            device.set(staging, stream=stream)

    @property
    def segments(self) -> int:
        """How many graphs each replay launches."""
        return sum(1 for kind, _ in self.items if kind == "graph") if self.reason is None else 0

    def run(self) -> None:
        if self.backend is None or self.reason is not None:
            for step in self.steps:
                step()
            return
        xp = self.backend.xp
        with xp.cuda.Device(self.backend.index):
            for kind, item in self.items:
                if kind == "host":
                    item()
                    continue
                if kind == "scalars":
                    self._refresh_scalars()
                    continue
                if item.graph is None:
                    if self.reason is None:
                        self._capture(item)
                    if item.graph is None:  # capture refused: this segment and every later one step by step
                        for step in item.steps:
                            step()
                        continue
                item.graph.launch(xp.cuda.get_current_stream())
                self.stats["launches"] += 1

    def _capture(self, segment: _Segment) -> None:
        """Captures a segment's steps into a CUDA graph (recorded, not run); on failure, notes the reason."""
        xp = self.backend.xp
        if self._stream is None:
            self._stream = xp.cuda.Stream(non_blocking=True)
        stream, pool = self._stream, xp.cuda.MemoryPool()
        try:
            with xp.cuda.using_allocator(pool.malloc), stream:
                stream.begin_capture(xp.cuda.runtime.streamCaptureModeRelaxed)
                try:
                    for step in segment.steps:
                        step()
                except BaseException:
                    with contextlib.suppress(Exception):
                        stream.end_capture()  # an invalidated capture raises here: the step's error tells why
                    raise
                graph = stream.end_capture()
        except Exception as exc:  # noqa: BLE001 - any refusal means: replay this program step by step
            self.reason = f"stream capture failed: {type(exc).__name__}: {exc}"
            self.stats["fallback"] = self.reason
            return
        segment.graph, segment.pool = graph, pool
        self.stats["graphs"] += 1


class _Segment:
    """Consecutive device steps, and the graph they were captured into (with the memory pool it keeps)."""

    __slots__ = ("steps", "graph", "pool")

    def __init__(self, steps: list) -> None:
        self.steps, self.graph, self.pool = steps, None, None


def _cuda_backend(program):
    """Returns (backend, reason): the CUDA backend that owns all of the program's arrays and None, or None and
    why the program is replayed step by step (None as reason for a CPU program)."""
    from ..backend import cuda as _cuda

    backends = set()
    for array in program.arrays:
        if type(array) is not np.ndarray:  # host arrays are left to host steps (Program.host_steps)
            backend = backend_of(array)
            if isinstance(backend, _cuda.CudaBackend):
                backends.add(backend)
    if not backends:
        return None, None
    if len(backends) > 1:
        devices = ", ".join(sorted(f"cuda:{b.index}" for b in backends))
        return None, f"its arrays live on several CUDA devices ({devices})"
    (backend,) = backends
    return backend, None
