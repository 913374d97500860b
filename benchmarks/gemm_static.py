"""Static report of the GEMM kernels, without a GPU: what ptxas and the SASS say about each instantiation.

Every GEMM instantiation of ``gradcore.backend.kernels.NAME_EXPRESSIONS`` is built with NVRTC (through CuPy's
binding, with the loader's own build options, as ``tests/kernels/test_build.py`` does) for sm_80 and sm_90 into a
cubin, which nvdisasm (the ``nvidia-cuda-nvdisasm`` wheel) turns into SASS. Per kernel the report gives:

- registers per thread, spill bytes and static shared memory (ptxas's ``-v`` report);
- blocks per multiprocessor and occupancy (resident warps / 64) on an A100 (sm_80) and an H100 (sm_90), worked
  out from the documented per-multiprocessor limits (registers, shared memory, threads, blocks; see LIMITS);
- the main k-loop: the SASS instructions of one k-step (BK values of k), the share of them that are FFMA (DFMA
  for double), the shared-memory loads by width, branches and barriers.

The main loop is found as the backward branch whose body holds the most FMAs; its static instruction count is
one step's, divided by the unroll factor where the compiler unrolled the loop (FMAs in the body over
BM*BN*BK/threads). ``--check`` exits with status 1 on any spill (CI runs it so).

    PYTHONPATH=. python benchmarks/gemm_static.py                 # writes benchmarks/results/gemm_static.md
    PYTHONPATH=. python benchmarks/gemm_static.py --check --out /tmp/gemm_static.md
"""
from __future__ import annotations

import argparse
import math
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "kernels")]

import kernel_nvrtc  # noqa: E402  (tests/kernels: the NVRTC build of the compile tests)

from gradcore.backend import kernels  # noqa: E402

ARCHES = ("sm_80", "sm_90")


@dataclass(frozen=True)
class Multiprocessor:
    """The per-multiprocessor limits that bound how many blocks are resident (CUDA programming guide,
    "Compute capabilities" table, and the occupancy calculator's allocation rules)."""

    name: str
    arch: str
    registers: int = 65536           # 32-bit registers per multiprocessor
    register_unit: int = 256         # registers are allocated per warp in units of 256
    shared_bytes: int = 0            # shared memory per multiprocessor usable by blocks
    shared_reserved: int = 1024      # shared memory the system reserves per block (compute capability 8.0+)
    shared_unit: int = 128           # shared memory allocation unit
    threads: int = 2048
    blocks: int = 32
    warps: int = 64


LIMITS = (
    Multiprocessor("A100", "sm_80", shared_bytes=164 * 1024),
    Multiprocessor("H100", "sm_90", shared_bytes=228 * 1024),
)


def blocks_per_multiprocessor(sm: Multiprocessor, threads: int, registers: int, shared: int) -> tuple:
    """Returns (resident blocks, the limit that binds) for a kernel on ``sm``."""
    warps = math.ceil(threads / 32)
    per_warp = math.ceil(registers * 32 / sm.register_unit) * sm.register_unit
    by_registers = (sm.registers // per_warp) // warps if per_warp else sm.blocks
    per_block = math.ceil((shared + sm.shared_reserved) / sm.shared_unit) * sm.shared_unit
    limits = {
        "registers": by_registers,
        "shared memory": sm.shared_bytes // per_block,
        "threads": min(sm.threads // threads, sm.warps // warps),
        "blocks": sm.blocks,
    }
    binding = min(limits, key=limits.get)
    return limits[binding], binding


def nvdisasm_path() -> str:
    """Returns the nvdisasm of the nvidia-cuda-nvdisasm wheel (or one on PATH); raises where there is none."""
    try:
        import nvidia

        for folder in nvidia.__path__:
            for found in sorted(Path(folder).glob("*/bin/nvdisasm")):
                return str(found)
    except ImportError:
        pass
    found = shutil.which("nvdisasm")
    if found is None:
        raise SystemExit("gemm_static: nvdisasm not found; pip install nvidia-cuda-nvdisasm")
    return found


def whole_elf(cubin: bytes) -> bytes:
    """Returns the cubin padded to the size its ELF header gives.

    CuPy's ``getCUBIN`` binding returns the image one byte short (its last byte, a zero, is dropped as if it
    ended a C string); nvdisasm refuses such a file. The headers' own offsets say how long it is.
    """
    phoff, shoff = struct.unpack_from("<QQ", cubin, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", cubin, 0x36)
    size = max(phoff + phentsize * phnum, shoff + shentsize * shnum)
    return cubin + b"\0" * max(0, size - len(cubin))


_INSTRUCTION = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);")
_LABEL = re.compile(r"^(\.L_x_\d+):")
_TARGET = re.compile(r"`\((\.L_x_\d+)\)")


def sass_functions(sass: str) -> dict:
    """Returns {mangled name: [(address, opcode, operands), ...], labels} for each function of a disassembly."""
    functions: dict = {}
    current = None
    pending: list = []
    for line in sass.splitlines():
        header = re.match(r"^\.text\.(\S+):", line)
        if header:
            current = functions.setdefault(header.group(1), {"code": [], "labels": {}})
            pending = []
            continue
        if current is None:
            continue
        label = _LABEL.match(line.strip())
        if label:
            pending.append(label.group(1))
            continue
        found = _INSTRUCTION.search(line)
        if found:
            address = int(found.group(1), 16)
            for name in pending:
                current["labels"][name] = address
            pending = []
            current["code"].append((address, found.group(2), found.group(3)))
    return functions


@dataclass
class LoopReport:
    instructions: float = 0.0
    fma: float = 0.0
    unroll: int = 1
    shared_loads: dict = field(default_factory=dict)  # opcode (LDS, LDS.64, LDS.128) -> count per k-step
    shared_stores: dict = field(default_factory=dict)
    branches: float = 0.0
    barriers: float = 0.0

    @property
    def fma_share(self) -> float:
        return self.fma / self.instructions if self.instructions else 0.0


def _loop_report(body: list, fma_opcode: str, fma_per_step: int) -> LoopReport:
    fmas = sum(1 for _a, o, _r in body if o.split(".")[0] == fma_opcode)
    unroll = max(1, round(fmas / fma_per_step))
    report = LoopReport(instructions=len(body) / unroll, fma=fmas / unroll, unroll=unroll)
    for _a, opcode, _r in body:
        base = opcode.split(".")[0]
        if base == "LDS":
            width = next((p for p in opcode.split(".")[1:] if p in ("64", "128", "U8", "S8", "U16", "S16")), "")
            key = "LDS" + (f".{width}" if width else "")
            report.shared_loads[key] = report.shared_loads.get(key, 0) + 1 / unroll
        elif base == "STS":
            width = next((p for p in opcode.split(".")[1:] if p in ("64", "128")), "")
            key = "STS" + (f".{width}" if width else "")
            report.shared_stores[key] = report.shared_stores.get(key, 0) + 1 / unroll
        elif base in ("BRA", "BRX", "JMP"):
            report.branches += 1 / unroll
        elif base == "BAR":
            report.barriers += 1 / unroll
    return report


def main_loops(function: dict, fma_opcode: str, fma_per_step: int) -> list:
    """Returns the statistics of one k-step of each main loop, leanest first.

    A loop is a backward branch and the code from its target to it; the main loops are those that hold the most
    FMAs (a kernel with specialised paths has one copy of the k-loop per path).
    """
    code, labels = function["code"], function["labels"]
    loops = []
    for address, opcode, operands in code:
        if opcode != "BRA":
            continue
        target = _TARGET.search(operands)
        if target is None or labels.get(target.group(1), address + 1) > address:
            continue  # not a backward branch
        start = labels[target.group(1)]
        loops.append([(a, o, r) for a, o, r in code if start <= a <= address])
    reports = [_loop_report(body, fma_opcode, fma_per_step) for body in loops]
    if not reports:
        return [LoopReport()]
    most = max(r.fma * r.unroll for r in reports)
    return sorted((r for r in reports if r.fma * r.unroll == most), key=lambda r: r.instructions)


def main_loop(function: dict, fma_opcode: str, fma_per_step: int) -> LoopReport:
    """Returns the statistics of one k-step of the leanest main loop (see ``main_loops``)."""
    return main_loops(function, fma_opcode, fma_per_step)[0]


@dataclass
class KernelReport:
    name: str
    arch: str
    threads: int
    registers: int
    spill_bytes: int
    shared: int
    occupancy: dict  # GPU name -> (blocks, binding limit, occupancy)
    loop: LoopReport | None  # the leanest copy of the k-loop (the interior path where the kernel has one)
    heaviest: LoopReport | None  # the heaviest copy (the general path); both None for a kernel without tiles


def resources(log: str, symbol: str) -> tuple:
    """Returns (registers, spill store bytes, static shared bytes) of one function from ptxas's report."""
    start = log.index(f"Function properties for {symbol}")
    part = log[start:]
    end = part.find("Compiling entry function")
    part = part if end < 0 else part[:end]
    registers = int(re.search(r"Used (\d+) registers", part).group(1))
    spills = int(re.search(r"(\d+) bytes spill stores", part).group(1))
    smem = re.search(r"(\d+) bytes smem", part)
    return registers, spills, int(smem.group(1)) if smem else 0


def tile_of(name: str) -> tuple:
    """Returns (dtype, BM, BN, BK, TM, TN, threads) of a GEMM name expression."""
    for dtype, tiles in kernels.GEMM_TILES.items():
        for tile in tiles:
            if kernels.name_expression("gemm", dtype, tile) == name:
                bm, bn, bk, tm, tn = kernels.GEMM_TILES[dtype][tile][:5]
                return dtype, tile, bm, bn, bk, tm, tn, (bm // tm) * (bn // tn)
    raise KeyError(name)


def analyse(nvrtc, arch: str, nvdisasm: str) -> list:
    compiled = kernel_nvrtc.compile_family(nvrtc, "gemm", arch)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, f"gemm_{arch}.cubin")
        path.write_bytes(whole_elf(compiled.cubin))
        sass = subprocess.run([nvdisasm, "-c", str(path)], check=True, capture_output=True, text=True).stdout
    functions = sass_functions(sass)
    reports = []
    for name, symbol in compiled.lowered_names.items():
        registers, spills, shared = resources(compiled.log, symbol)
        try:
            dtype, _tile, bm, bn, bk, _tm, _tn, threads = tile_of(name)
        except KeyError:  # the family's other kernels (split-K's second pass): resources and occupancy only
            threads = kernels.ELEMENTWISE_THREADS
            loops = [None]
        else:
            fma = "FFMA" if dtype == "float32" else "DFMA"
            loops = main_loops(functions[symbol], fma, bm * bn * bk // threads)
        occupancy = {}
        for sm in LIMITS:
            blocks, binding = blocks_per_multiprocessor(sm, threads, registers, shared)
            occupancy[sm.name] = (blocks, binding, blocks * math.ceil(threads / 32) / sm.warps)
        reports.append(KernelReport(name, arch, threads, registers, spills, shared, occupancy, loops[0],
                                    loops[-1]))
    return reports


def _counts(counts: dict) -> str:
    return ", ".join(f"{key} {value:g}" for key, value in sorted(counts.items())) or "none"


def markdown(reports: list, nvrtc_version: tuple) -> str:
    lines = [
        "# GEMM kernels: static report",
        "",
        f"`PYTHONPATH=. python benchmarks/gemm_static.py` (NVRTC {nvrtc_version[0]}.{nvrtc_version[1]}, "
        "build options of `gradcore/backend/kernels.py`, SASS from nvdisasm). No GPU was used: blocks per "
        "multiprocessor and occupancy are worked out from the documented per-multiprocessor limits (65536 "
        "registers allocated per warp in units of 256, 164 KB (A100) / 228 KB (H100) shared memory with 1 KB "
        "reserved per block, 2048 threads, 32 blocks); the main loop is the backward branch whose body holds the "
        "most FMAs, counted per k-step (one pass over BK values of k). Where the kernel has several copies of its "
        "k-loop (specialised paths), the columns describe the leanest copy and the last column the heaviest.",
        "",
        "| kernel | arch | threads | registers | spill bytes | shared bytes | blocks per SM (occupancy, limit) | "
        "SASS per k-step | FMA | FMA share | shared loads | shared stores | branches | barriers | "
        "heaviest loop: SASS per k-step (FMA share) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in reports:
        if r.loop is None:
            continue
        gpu = next(sm.name for sm in LIMITS if sm.arch == r.arch)
        blocks, binding, occupancy = r.occupancy[gpu]
        loop = r.loop
        lines.append(
            f"| `{r.name}` | {r.arch} | {r.threads} | {r.registers} | {r.spill_bytes} | {r.shared} | "
            f"{gpu}: {blocks} ({occupancy:.0%}, {binding}) | {loop.instructions:g} | "
            f"{loop.fma:g} | {loop.fma_share:.0%} | {_counts(loop.shared_loads)} | {_counts(loop.shared_stores)} | "
            f"{loop.branches:g} | {loop.barriers:g} | {r.heaviest.instructions:g} ({r.heaviest.fma_share:.0%}) |")
    others = [r for r in reports if r.loop is None]
    if others:
        lines += ["", "The family's kernels without tiles (split-K's second pass: no k-loop, one block of "
                  f"{kernels.ELEMENTWISE_THREADS} threads):", "",
                  "| kernel | arch | registers | spill bytes | shared bytes | blocks per SM (occupancy, limit) |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in others:
            gpu = next(sm.name for sm in LIMITS if sm.arch == r.arch)
            blocks, binding, occupancy = r.occupancy[gpu]
            lines.append(f"| `{r.name}` | {r.arch} | {r.registers} | {r.spill_bytes} | {r.shared} | "
                         f"{gpu}: {blocks} ({occupancy:.0%}, {binding}) |")
    lines += [
        "",
        "Blocks per multiprocessor: on the A100 for the sm_80 build, on the H100 for the sm_90 build, followed by "
        "the occupancy (resident warps of 64) and the limit that binds. "
        "LDS is a 32-bit shared load, LDS.64 and LDS.128 load 8 and 16 bytes.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gemm_static.md"))
    parser.add_argument("--check", action="store_true", help="exit with status 1 where any kernel spills")
    options = parser.parse_args(argv)
    nvrtc, why = kernel_nvrtc.load_nvrtc()
    if nvrtc is None:
        raise SystemExit(f"gemm_static: {why}")
    nvdisasm = nvdisasm_path()
    reports = [report for arch in ARCHES for report in analyse(nvrtc, arch, nvdisasm)]
    text = markdown(reports, nvrtc.getVersion())
    Path(options.out).write_text(text)
    print(text)
    spilling = [f"{r.name} ({r.arch}): {r.spill_bytes} bytes" for r in reports if r.spill_bytes]
    if spilling:
        print("gemm_static: kernels spill: " + "; ".join(spilling), file=sys.stderr)
        if options.check:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
