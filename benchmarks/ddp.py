#!/usr/bin/env python3
"""Benchmark DistributedDataParallel on the CPU: gradcore over MPI against PyTorch over gloo, 1 and 2 processes.

The workload is the wide MLP of ``cpu.py`` (batch 256 per process, 784-512-512-10, ReLU, cross-entropy, SGD).
Every process keeps a batch of 256 (weak scaling: two processes train on twice the samples per step). For each
library the script starts ``mpiexec -n 1`` and ``mpiexec -n 2`` runs of itself (``--worker``) and measures, as
the median over timed steps after a warm-up, rank 0's:

- the DDP step time (forward, backward with the bucketed all-reduces, SGD step);
- the step under ``no_sync()`` (the same computation, no communication);
- gradcore only: the same DDP step compiled whole with ``gradcore.compile`` (replays, whose bucket all-reduces
  are host steps of the program);
- the blocking all-reduce of all gradients alone (one flat tensor of the gradients' size);
- the bytes all-reduced per step (the gradients, float32);
- the time hidden by overlap: ``no_sync step + all-reduce alone - DDP step``, the communication time the DDP
  step did not add (0 when there is no overlap; it cannot exceed the all-reduce alone);
- the scaling efficiency: samples per second on 2 processes / (2 x samples per second on 1 process, plain
  model without DDP).

PyTorch's ranks find each other through ``MASTER_ADDR=127.0.0.1`` and a free port. Thread counts are pinned to
1 per process. On this 2-core machine two processes take both cores (and the machine is shared), so the
efficiency says what two processes on two cores give, not what a cluster gives.

Usage::

    python benchmarks/ddp.py               # full run, writes benchmarks/results/ddp.md
    python benchmarks/ddp.py --quick       # a few steps: checks that everything runs, measures nothing
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "ddp.md"
WIDE_SIZES = (256, 784, 512, 512, 10)  # batch per process, then the layer widths (cpu.py's workload c)
LEARNING_RATE = 0.01
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# --------------------------------------------------------------------------------------------- worker side
def worker(library: str, warmup: int, steps: int) -> None:
    """Runs inside mpiexec: times the steps on every rank and prints rank 0's figures as one JSON line."""
    import numpy as np

    rank, size = int(os.environ.get("PMI_RANK", "0")), int(os.environ.get("PMI_SIZE", "1"))
    if library == "gradcore":
        import gradcore as mod
        import gradcore.distributed as dist
        from gradcore.nn.parallel import DistributedDataParallel
        dist.init_process_group("mpi")
    else:
        import torch as mod
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel
        mod.set_num_threads(1)
        dist.init_process_group("gloo", rank=rank, world_size=size)
    nn = mod.nn
    mod.manual_seed(0)
    batch, d_in, h1, h2, d_out = WIDE_SIZES
    model = nn.Sequential(nn.Linear(d_in, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(), nn.Linear(h2, d_out))
    rng = np.random.default_rng(rank)
    x = mod.tensor(rng.standard_normal((batch, d_in), dtype=np.float32))
    labels = mod.tensor(rng.integers(0, d_out, batch))
    loss_fn = nn.CrossEntropyLoss()

    def training_step(net, optimizer):
        def step() -> None:
            optimizer.zero_grad()
            loss_fn(net(x), labels).backward()
            optimizer.step()
        return step

    # The plain model is a copy of the wrapped one's weights, so that both train the same network.
    plain_model = nn.Sequential(nn.Linear(d_in, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(), nn.Linear(h2, d_out))
    plain_model.load_state_dict(model.state_dict())
    plain_step = training_step(plain_model, mod.optim.SGD(plain_model.parameters(), lr=LEARNING_RATE))
    ddp = DistributedDataParallel(model)
    ddp_step = training_step(ddp, mod.optim.SGD(ddp.parameters(), lr=LEARNING_RATE))

    def no_sync_step() -> None:
        with ddp.no_sync():
            ddp_step()
    gradient_elements = sum(p.numel() for p in model.parameters())
    flat = mod.zeros(gradient_elements)
    kinds = {"plain": plain_step, "ddp": ddp_step, "no_sync": no_sync_step,
             "all_reduce": lambda: dist.all_reduce(flat)}
    if library == "gradcore":
        kinds["compiled"] = compiled_step = mod.compile(ddp_step)
    # One step of each kind per round, so that a change of the machine's load during the run weighs on all
    # figures alike; every step starts from a barrier, so the ranks start it together.
    for _ in range(warmup):
        for step in kinds.values():
            step()
    times: dict = {kind: [] for kind in kinds}
    for _ in range(steps):
        for kind, step in kinds.items():
            dist.barrier()
            start = time.perf_counter()
            step()
            times[kind].append(time.perf_counter() - start)
    plain, ddp_times, no_sync_times, reduce_times = (times[k] for k in ("plain", "ddp", "no_sync", "all_reduce"))
    if rank == 0:
        median = statistics.median
        figures = {
            "library": library, "processes": size, "plain_s": median(plain), "ddp_s": median(ddp_times),
            "no_sync_s": median(no_sync_times), "all_reduce_s": median(reduce_times),
            "bytes": gradient_elements * 4, "steps": steps}
        if "compiled" in times:
            figures.update(compiled_s=median(times["compiled"]), compiled_stats=dict(compiled_step.stats))
        print("RESULT " + json.dumps(figures), flush=True)
    if library == "torch":
        # PyTorch's gloo group can abort in its destructor at interpreter exit ("terminate called without an
        # active exception"); once every rank is past the barrier, nothing is left to tear down.
        dist.barrier()
        sys.stdout.flush()
        os._exit(0)
    dist.destroy_process_group()


# --------------------------------------------------------------------------------------------- driver side
def mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        sys.exit("mpiexec not found: pip install 'gradcore[distributed]' (mpi4py, mpich)")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_worker(library: str, processes: int, warmup: int, steps: int) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for name in THREAD_ENV_VARS:
        env[name] = "1"
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), GLOO_SOCKET_IFNAME="lo")
    command = [mpiexec(), "-n", str(processes), sys.executable, str(Path(__file__).resolve()), "--worker", library,
               "--warmup", str(warmup), "--steps", str(steps)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return json.loads(lines[0][len("RESULT "):])


def load_average() -> str:
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def report(results: dict, args: argparse.Namespace, load_start: str, load_end: str) -> str:
    import numpy
    import torch
    import gradcore

    ms = 1e3
    lines = [
        "# DistributedDataParallel on the CPU: gradcore (MPI) and PyTorch (gloo)",
        "",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  ",
        f"Command: `python benchmarks/ddp.py{' --quick' if args.quick else ''}` ({args.steps} timed steps after "
        f"{args.warmup} warm-up steps, medians)  ",
        "Workload: the wide MLP of `cpu.py` (784-512-512-10, ReLU, cross-entropy, SGD), batch 256 per process, "
        "float32, one thread per process. All figures come from this one run.",
        "",
        "| | |",
        "| --- | --- |",
        f"| python | {platform.python_version()} |",
        f"| numpy | {numpy.__version__} |",
        f"| torch | {torch.__version__} |",
        f"| gradcore | {gradcore.__version__} |",
        f"| MPI | {_mpi_version()} |",
        f"| processor | {_processor()} |",
        f"| cpu count | {os.cpu_count()} |",
        f"| load average at start | {load_start} |",
        f"| load average at end | {load_end} |",
        "",
        "## Step times and communication",
        "",
        "| library | processes | plain step (ms) | DDP step (ms) | compiled DDP step (ms) | no_sync step (ms) "
        "| all-reduce alone (ms) | all-reduced per step | hidden by overlap (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (library, processes), r in sorted(results.items()):
        hidden = max(0.0, r["no_sync_s"] + r["all_reduce_s"] - r["ddp_s"]) if processes > 1 else 0.0
        compiled = f"{r['compiled_s'] * ms:.2f}" if "compiled_s" in r else "-"
        lines.append(
            f"| {library} | {processes} | {r['plain_s'] * ms:.2f} | {r['ddp_s'] * ms:.2f} | {compiled} "
            f"| {r['no_sync_s'] * ms:.2f} | {r['all_reduce_s'] * ms:.2f} | "
            + (f"{r['bytes'] / 2**20:.2f} MiB | {hidden * ms:.2f} |" if processes > 1 else
               f"({r['bytes'] / 2**20:.2f} MiB, one rank) | - |"))
    lines += [
        "",
        "## Scaling (weak: 256 samples per process per step)",
        "",
        "| library | samples/s, 1 process (plain) | samples/s, 2 processes (DDP) | scaling efficiency |",
        "| --- | ---: | ---: | ---: |",
    ]
    batch = WIDE_SIZES[0]
    for library in ("gradcore", "torch"):
        one, two = results.get((library, 1)), results.get((library, 2))
        if one is None or two is None:
            continue
        single, double = batch / one["plain_s"], 2 * batch / two["ddp_s"]
        lines.append(f"| {library} | {single:.0f} | {double:.0f} | {double / (2 * single):.0%} |")
    g2, t2 = results.get(("gradcore", 2)), results.get(("torch", 2))
    if g2 and t2:
        lines += ["", f"gradcore / PyTorch, DDP step on 2 processes: {g2['ddp_s'] / t2['ddp_s']:.2f}x "
                      f"(below 1.00x gradcore is faster)."]
    lines += [
        "",
        "Hidden by overlap: `no_sync step + all-reduce alone - DDP step`, the part of the gradients' all-reduce "
        "that the DDP step did not add to the computation. With two processes on two cores, each rank's "
        "all-reduce competes for the cores with both ranks' backward, so that overlap hides less than on machines "
        "where the transfer runs on a network card. Scaling efficiency: samples per second on 2 processes "
        "divided by twice those of one process (plain model); both cores are busy, and this machine is shared "
        "with other work (see the load averages).",
        "",
        "Compiled DDP step: the DDP step as one `gradcore.compile`d function (forward, loss, backward with the "
        "bucket all-reduces as host steps, SGD step); its calls over the whole run, warm-up included (two "
        "captures, then replays only): "
        + "; ".join(f"{processes} process(es): {r['compiled_stats']}" for (library, processes), r
                    in sorted(results.items()) if "compiled_stats" in r) + ". PyTorch's `torch.compile` is not "
        "timed here (its CPU back-end compiles C++ for minutes).",
        "",
        "GPU (NCCL): not measured on a GPU.",
        "",
    ]
    busiest = max(_load_values(load_start) + _load_values(load_end), default=0.0)
    cores = os.cpu_count() or 1
    if busiest > 2 * cores:
        lines[-2:-2] = [
            f"Caution: the load average reached {busiest:.0f} on {cores} cores during this run (see above): the "
            "processes spent much of each step waiting for a core, and a DDP step, where the ranks wait for each "
            "other, suffers most from that. Rerun on a quiet machine before reading the differences.",
            "",
        ]
    return "\n".join(lines)


def _load_values(text: str) -> list:
    try:
        return [float(v) for v in text.split(", ")]
    except ValueError:
        return []


def _mpi_version() -> str:
    try:
        from mpi4py import MPI
        return MPI.Get_library_version().splitlines()[0].strip()
    except Exception:  # noqa: BLE001  (only a label in the report)
        return "unknown"


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps: checks that everything runs")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per figure (default 40; quick 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5; quick 1)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"markdown report (default {DEFAULT_OUT})")
    parser.add_argument("--libraries", default="gradcore,torch", help="which to run (default gradcore,torch)")
    parser.add_argument("--worker", choices=["gradcore", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.steps = args.steps or (3 if args.quick else 40)
    args.warmup = args.warmup or (1 if args.quick else 5)
    if args.worker:
        worker(args.worker, args.warmup, args.steps)
        return
    load_start = load_average()
    results = {}
    for library in args.libraries.split(","):
        for processes in (1, 2):
            results[(library, processes)] = result = run_worker(library, processes, args.warmup, args.steps)
            print(f"{library}, {processes} process(es): DDP step {result['ddp_s'] * 1e3:.2f} ms", flush=True)
    text = report(results, args, load_start, load_average())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
