"""Mutation testing of the CUDA kernels: plants one bug at a time in a copy of the tree and runs the kernel tests.

Run on demand, not in every CI (about half an hour on 2 cores)::

    python benchmarks/mutation.py                      # every mutant; writes benchmarks/results/mutation.md
    python benchmarks/mutation.py --only gemm.cu       # the mutants of one file
    python benchmarks/mutation.py --match "past C"     # the mutants whose description contains a text
    python benchmarks/mutation.py --list               # the mutants (and which are stale), running nothing
    python benchmarks/mutation.py --only gemm.cu --keep --time-limit 300
        # rerun one source, keeping the other sources' rows of the existing report (column "run" says which
        # run produced each row), with 300 s per mutant instead of 600

Each mutant replaces one exact piece of text in one source of ``kernels/`` (the script refuses a mutant whose
text is missing or occurs more than once, so a kernel rewrite shows up as "stale" instead of as a false kill).
The classes planted in every source: a dropped barrier (where the file has barriers), a lost accumulation, a
short loop, a relaxed bound, a flipped sign and a wrong constant, and a few dropped statements. For each
mutant the tree is copied (tracked files only) into a temporary directory, the mutation applied, and the tests
that exercise that source run there with ``pytest -x`` under a time limit; the CPU emulation is rebuilt from the
mutated source (its build cache lives in the temporary directory too). A mutant is *killed* when the tests fail
(a failed emulation build or a launch that hangs past the time limit counts as killed, and is reported as
such), and *survives* when they pass. Survivors are listed in the report with the reason each one is
harmless (an equivalent mutant) or the gap it shows; ``EXPECTED_SURVIVORS`` holds those reasons.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mutation.md"
TIME_LIMIT_S = 600  # per mutant: the emulation build (about a minute on 2 busy cores) and the tests

# The tests that exercise each source (the emulation runs the real sources; test_build.py, the NVRTC build, is
# left out: it checks compilation, not values, and needs minutes per mutant).
TESTS = {
    "gemm.cu": ["tests/kernels/test_gemm_oracle.py", "tests/kernels/test_gemm.py",
                "tests/kernels/test_gemm_split_k.py"],
    "elementwise.cu": ["tests/kernels/test_elementwise.py", "tests/kernels/test_gemm_oracle.py",
                       "tests/kernels/test_dispatch.py"],
    "activation.cuh": ["tests/kernels/test_elementwise.py", "tests/kernels/test_gemm_oracle.py"],
}


@dataclasses.dataclass(frozen=True)
class Mutant:
    source: str  # file name in kernels/
    kind: str  # the class of the planted bug
    what: str  # one line on what it does
    old: str  # exact text, occurring once in the source
    new: str


MUTANTS = [
    # -- gemm.cu ---------------------------------------------------------------------------------------------
    Mutant("gemm.cu", "dropped barrier", "no barrier between the prologue's first store and the first multiply",
           "            store<AW, BW>(0, a_next, b_next);\n        }\n        __syncthreads();",
           "            store<AW, BW>(0, a_next, b_next);\n        }"),
    Mutant("gemm.cu", "dropped barrier", "no barrier at the end of a double-buffered step",
           "read one step ago\n            __syncthreads();", "read one step ago"),
    Mutant("gemm.cu", "dropped barrier", "no barrier between storing the partial step's tiles and reading them",
           "            store<AW, BW>(buffer, a_next, b_next);\n            __syncthreads();",
           "            store<AW, BW>(buffer, a_next, b_next);"),
    Mutant("gemm.cu", "lost accumulation", "the micro-tile keeps only the last product",
           "acc[i][j] += a_fragment[i / 4]", "acc[i][j] = a_fragment[i / 4]"),
    Mutant("gemm.cu", "lost accumulation", "the bias-gradient row sum keeps only the last element",
           "row_sum += a_tile[kk][tid];", "row_sum = a_tile[kk][tid];"),
    Mutant("gemm.cu", "short loop", "the inner product skips the last k of each tile",
           "for (int kk = 0; kk < BK; ++kk) {\n            Vector", "for (int kk = 0; kk < BK - 1; ++kk) {\n            Vector"),
    Mutant("gemm.cu", "short loop", "the k loop drops its last full step",
           "for (long long step = 0; step < full_steps; ++step)", "for (long long step = 0; step + 1 < full_steps; ++step)"),
    Mutant("gemm.cu", "short loop", "the row sums skip the last k of each tile",
           "for (int kk = 0; kk < BK; ++kk) row_sum", "for (int kk = 0; kk < BK - 1; ++kk) row_sum"),
    Mutant("gemm.cu", "short loop", "each thread loads one group too few",
           "for (int l = 0; l < LOADS / W; ++l) {\n            const long long offset",
           "for (int l = 0; l < LOADS / W - 1; ++l) {\n            const long long offset"),
    Mutant("gemm.cu", "short loop", "each thread stores one group too few into shared memory",
           "for (int l = 0; l < LOADS / W; ++l) {\n#pragma unroll\n            for (int i = 0; i < W; ++i) flat",
           "for (int l = 0; l < LOADS / W - 1; ++l) {\n#pragma unroll\n            for (int i = 0; i < W; ++i) flat"),
    Mutant("gemm.cu", "short loop", "the last 4-row block of an 8 x 8 micro-tile reads no A fragment",
           "for (int g = 0; g < GROUPS_M; ++g)", "for (int g = 0; g + 1 < GROUPS_M; ++g)"),
    Mutant("gemm.cu", "relaxed bound", "interior path: a tile one row past C counts as interior",
           "m0 + BM <= m_size && n0 + BN <= n_size", "m0 + BM <= m_size + 1 && n0 + BN <= n_size"),
    Mutant("gemm.cu", "relaxed bound", "interior path: a tile one column past C counts as interior",
           "m0 + BM <= m_size && n0 + BN <= n_size", "m0 + BM <= m_size && n0 + BN <= n_size + 1"),
    Mutant("gemm.cu", "relaxed bound", "interior path: the partial k-step of A reads one k past the operand",
           "k0, a_col, k_left, BM);", "k0, a_col, k_left + 1, BM);"),
    Mutant("gemm.cu", "relaxed bound", "interior path: the partial k-step runs unchecked as a full step",
           "const long long full_steps = k_size / BK;", "const long long full_steps = (k_size + BK - 1) / BK;"),
    Mutant("gemm.cu", "relaxed bound", "general path: the tile copy reads one k past the operand",
           "if (k_first + l * k_step < k_limit &&", "if (k_first + l * k_step <= k_limit &&"),
    Mutant("gemm.cu", "relaxed bound", "general path: the tile copy reads one row (A) or column (B) past the operand",
           "x_first + l * x_step < x_limit)", "x_first + l * x_step <= x_limit)"),
    Mutant("gemm.cu", "relaxed bound", "general path: an edge tile counts one row more inside C",
           "m_size - m0 < BM ? (int)(m_size - m0) : BM", "m_size - m0 < BM ? (int)(m_size - m0) + 1 : BM"),
    Mutant("gemm.cu", "relaxed bound", "general path: the partial k-step counts one k more inside the matrix",
           "return k_size - k0 < BK ? (int)(k_size - k0) : BK;", "return k_size - k0 < BK ? (int)(k_size - k0) + 1 : BK;"),
    Mutant("gemm.cu", "relaxed bound", "the epilogue writes one row past C",
           "if (m < m_size && n < n_size) {", "if (m <= m_size && n < n_size) {"),
    Mutant("gemm.cu", "relaxed bound", "the epilogue writes one column past C",
           "if (m < m_size && n < n_size) {", "if (m < m_size && n <= n_size) {"),
    Mutant("gemm.cu", "relaxed bound", "the row sums write one element past their array",
           "m0 + tid < m_size) row_sums", "m0 + tid <= m_size) row_sums"),
    Mutant("gemm.cu", "flipped sign", "the bias is subtracted",
           "if (bias != nullptr) z += bias[n];", "if (bias != nullptr) z -= bias[n];"),
    Mutant("gemm.cu", "flipped sign", "the products are subtracted",
           "acc[i][j] += a_fragment[i / 4]", "acc[i][j] -= a_fragment[i / 4]"),
    Mutant("gemm.cu", "wrong constant", "no shared-memory padding",
           "constexpr int GEMM_PAD = 4;", "constexpr int GEMM_PAD = 0;"),
    Mutant("gemm.cu", "wrong constant", "vectors twice as wide as the loader assumes",
           "WIDEST = 16 / (int)sizeof(T);", "WIDEST = 32 / (int)sizeof(T);"),
    Mutant("gemm.cu", "wrong constant", "the accumulators start at 1",
           "for (int j = 0; j < TN; ++j) acc[i][j] = T(0);", "for (int j = 0; j < TN; ++j) acc[i][j] = T(1);"),
    Mutant("gemm.cu", "wrong constant", "the row sums start at 1",
           "T row_sum = T(0);", "T row_sum = T(1);"),
    Mutant("gemm.cu", "wrong constant", "the prologue is applied to the other operand",
           "const T* a_saved = saved_operand == 0 ? saved : nullptr;",
           "const T* a_saved = saved_operand == 1 ? saved : nullptr;"),
    Mutant("gemm.cu", "wrong constant", "every full step multiplies buffer 0",
           "const int buffer = (int)(step & 1);", "const int buffer = (int)(step & 0);"),
    Mutant("gemm.cu", "wrong constant", "the A fragments are read two rows apart instead of four",
           "g * (BM / GROUPS_M) + 4 * ty]", "g * (BM / GROUPS_M) + 2 * ty]"),
    Mutant("gemm.cu", "wrong constant", "interior path: a scalar B is read as vectors",
           "run<CopyA::VECTOR, 1>(acc, row_sum);", "run<CopyA::VECTOR, CopyB::VECTOR>(acc, row_sum);"),
    Mutant("gemm.cu", "dropped statement", "the prologue's derivative is not applied",
           "group.v[i] = activation_gradient(group.v[i], s.v[i], saved_activation, low, high);", ""),
    Mutant("gemm.cu", "dropped statement", "the prologue is skipped on the vector path",
           "if (saved != nullptr) {", "if (saved != nullptr && W == 1) {"),
    Mutant("gemm.cu", "dropped statement", "interior tiles with a prologue take the interior path (no prologue)",
           "const bool interior = saved == nullptr && row_sums == nullptr &&", "const bool interior = row_sums == nullptr &&"),
    Mutant("gemm.cu", "dropped statement", "interior tiles with row sums take the interior path (no row sums)",
           "const bool interior = saved == nullptr && row_sums == nullptr &&", "const bool interior = saved == nullptr &&"),
    Mutant("gemm.cu", "dropped statement", "the bias is not added",
           "if (bias != nullptr) z += bias[n];", ""),
    Mutant("gemm.cu", "dropped statement", "the row sums are not written",
           "if (block.sums_rows && tid < BM && m0 + tid < m_size) row_sums[(long long)blockIdx.z * m_size + m0 + tid] "
           "= row_sum;", ""),
    Mutant("gemm.cu", "short loop", "split-K: the second pass leaves out the last slice",
           "for (long long s = 1; s < splits; ++s) z += partial[s * count + i];",
           "for (long long s = 1; s + 1 < splits; ++s) z += partial[s * count + i];"),
    Mutant("gemm.cu", "wrong constant", "split-K: the last slice runs the whole chunk, past K",
           "if (blockIdx.z + 1 == gridDim.z) k_size = k_last;", ""),
    Mutant("gemm.cu", "relaxed bound", "split-K: every slice writes its row sums to the first slice's line",
           "row_sums[(long long)blockIdx.z * m_size + m0 + tid]", "row_sums[m0 + tid]"),
    Mutant("gemm.cu", "dropped statement", "the partial k-step is skipped",
           "if (full_steps * BK < k_size) {", "if (false) {"),
    Mutant("gemm.cu", "dropped statement", "the next step's tiles are not loaded",
           "if (more) load<AW, BW, false>(a_next, b_next, (step + 1) * BK);", ""),
    Mutant("gemm.cu", "dropped statement", "the pre-activation of every batch goes to the first",
           "if (preactivation != nullptr) preactivation += (long long)blockIdx.z * c_batch;", ""),
    Mutant("gemm.cu", "dropped statement", "every batch reads the first batch of A",
           "    a += (long long)blockIdx.z * a_batch;\n", ""),
    Mutant("gemm.cu", "dropped statement", "every batch reads the first batch of the prologue's saved A",
           "if (a_saved != nullptr) a_saved += (long long)blockIdx.z * a_batch;", ""),
    # -- elementwise.cu --------------------------------------------------------------------------------------
    Mutant("elementwise.cu", "dropped barrier", "the column-sum tree starts before the partial sums are stored",
           "    partial[ty * blockDim.x + tx] = sum;\n    __syncthreads();", "    partial[ty * blockDim.x + tx] = sum;"),
    Mutant("elementwise.cu", "dropped barrier", "no barrier between the levels of the column-sum tree",
           "        __syncthreads();\n    }\n    if (ty == 0", "    }\n    if (ty == 0"),
    Mutant("elementwise.cu", "lost accumulation", "a column's thread keeps only its last element",
           "            sum += d;", "            sum = d;"),
    Mutant("elementwise.cu", "lost accumulation", "the tree overwrites instead of adding",
           "partial[ty * blockDim.x + tx] += partial[(ty + half)", "partial[ty * blockDim.x + tx] = partial[(ty + half)"),
    Mutant("elementwise.cu", "short loop", "the column-sum tree stops one level early",
           "for (int half = blockDim.y / 2; half > 0; half /= 2)", "for (int half = blockDim.y / 2; half > 1; half /= 2)"),
    Mutant("elementwise.cu", "short loop", "the grid-stride loops skip the last element",
           "i < (n);", "i < (n) - 1;"),
    Mutant("elementwise.cu", "short loop", "activation_backward skips the last row",
           "row < rows; row += row_step)", "row < rows - 1; row += row_step)"),
    Mutant("elementwise.cu", "short loop", "bias_activation skips the last element",
           "    for (; i < n; i += stride) {", "    for (; i < n - 1; i += stride) {"),
    Mutant("elementwise.cu", "relaxed bound", "the column sums write one element past their array",
           "if (ty == 0 && column < cols) sums[", "if (ty == 0 && column <= cols) sums["),
    Mutant("elementwise.cu", "short loop", "the column sums' second pass leaves out the last block of rows",
           "for (long long p = 1; p < parts; ++p)", "for (long long p = 1; p + 1 < parts; ++p)"),
    Mutant("elementwise.cu", "wrong constant", "the column sums: every block of rows covers every row",
           "const long long row_step = (long long)gridDim.y * blockDim.y;",
           "const long long row_step = blockDim.y;"),
    Mutant("elementwise.cu", "relaxed bound", "bias_activation's column wraps one late",
           "if (column >= cols) column -= cols;", "if (column > cols) column -= cols;"),
    Mutant("elementwise.cu", "relaxed bound", "activation_backward's threads run one column past the matrix",
           "    if (column < cols) {\n        for", "    if (column <= cols) {\n        for"),
    Mutant("elementwise.cu", "flipped sign", "bias_activation subtracts the bias",
           "if (bias != nullptr) v += bias[column];", "if (bias != nullptr) v -= bias[column];"),
    Mutant("elementwise.cu", "wrong constant", "the column sums start at 1",
           "    T sum = T(0);\n    if (column < cols)", "    T sum = T(1);\n    if (column < cols)"),
    Mutant("elementwise.cu", "wrong constant", "clamp_forward with its bounds swapped",
           "y[i] = clamp_value(x[i], low, high);", "y[i] = clamp_value(x[i], high, low);"),
    Mutant("elementwise.cu", "dropped statement", "bias_activation does not store the pre-activation",
           "if (write_preactivation) z[i] = v;", ""),
    # -- activation.cuh --------------------------------------------------------------------------------------
    Mutant("activation.cuh", "flipped sign", "relu keeps the negative side",
           "case ACTIVATION_RELU: return z < T(0) ? T(0) : z;", "case ACTIVATION_RELU: return z > T(0) ? T(0) : z;"),
    Mutant("activation.cuh", "flipped sign", "the sigmoid derivative uses 1 + y",
           "return g * (T(1) - s) * s;", "return g * (T(1) + s) * s;"),
    Mutant("activation.cuh", "flipped sign", "exp of +|x| in the sigmoid",
           "return expf(-fabsf(x));", "return expf(fabsf(x));"),
    Mutant("activation.cuh", "relaxed bound", "the relu gradient passes at an output of 0",
           "case ACTIVATION_RELU: return s <= T(0) ? T(0) : g;", "case ACTIVATION_RELU: return s < T(0) ? T(0) : g;"),
    Mutant("activation.cuh", "relaxed bound", "the clamp gradient is cut at the upper bound",
           "return (s >= low && s <= high) ? g : T(0);", "return (s >= low && s < high) ? g : T(0);"),
    Mutant("activation.cuh", "wrong constant", "sigmoid of x >= 0 with 2 for 1",
           "return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);",
           "return x >= T(0) ? T(1) / (T(2) + e) : e / (T(1) + e);"),
    Mutant("activation.cuh", "wrong constant", "clamp gives the upper bound below the lower one",
           "T r = (z < low || low != low) ? low : z;", "T r = (z < low || low != low) ? high : z;"),
    Mutant("activation.cuh", "lost accumulation", "the sigmoid derivative drops the upstream gradient",
           "return g * (T(1) - s) * s;", "return (T(1) - s) * s;"),
]

# Survivors that are harmless, and why: (source, the mutant's "what") -> reason.
EXPECTED_SURVIVORS = {
    ("gemm.cu", "no shared-memory padding"):
        "equivalent: the padding only moves the rows of the shared tiles to other banks (speed on a GPU); "
        "every read and write stays inside the unpadded row, and rows of BM or BN words keep the fragment "
        "vectors aligned",
}


def tracked_files() -> list:
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [name for name in listing.decode().split("\0") if name]


def copy_tree(destination: Path) -> None:
    """Copies the working tree's tracked files (as they are on disk, so uncommitted tests count)."""
    for name in tracked_files():
        source = ROOT / name
        if source.is_symlink():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(source), target)
        elif source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def crash_detail(returncode: int) -> str:
    """Returns what the report says of a test process that ended without a test result."""
    if returncode < 0:
        return f"crashed with {signal.Signals(-returncode).name}, no test result"
    return f"exit status {returncode}, no test result"


def run_mutant(mutant: Mutant, work: Path, python: str, time_limit: float = TIME_LIMIT_S) -> tuple:
    """Returns (outcome, seconds, detail): outcome "killed", "survived", "timeout" (counted as killed),
    "build failed" (killed) or "stale" (the mutant's text is not in the source once)."""
    path = work / "kernels" / mutant.source
    original = path.read_text()
    if original.count(mutant.old) != 1:
        return "stale", 0.0, f"text found {original.count(mutant.old)} times"
    path.write_text(original.replace(mutant.old, mutant.new))
    environment = dict(os.environ, PYTHONPATH=str(work), TMPDIR=str(work / ".tmp"),
                       GRADCORE_REQUIRE_KERNEL_TOOLS="1")
    (work / ".tmp").mkdir(exist_ok=True)
    command = [python, "-m", "pytest", "-x", "-p", "no:cacheprovider", *TESTS[mutant.source]]
    start = time.monotonic()
    process = subprocess.Popen(command, cwd=work, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=time_limit)
        outcome = "survived" if process.returncode == 0 else "killed"
        if "emulation build of" in output and process.returncode:
            outcome = "build failed"
        detail = next((line for line in output.splitlines() if line.startswith("FAILED ")), "")
        if process.returncode and not detail:  # no test result: a crash (a guard page, the emulation's checks)
            detail = crash_detail(process.returncode)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        outcome, detail = "timeout", f"no result within {time_limit:.0f} s"
    finally:
        path.write_text(original)
        shutil.rmtree(work / ".tmp", ignore_errors=True)
    return outcome, time.monotonic() - start, detail[:200]


def read_rows(path: Path) -> list:
    """Returns the rows of an earlier report as (mutant, outcome, seconds, first failing test, run), for the
    mutants still in MUTANTS. A row is matched by its source, class and description as a whole (a description
    may contain "|"), and only the cells after them are split. A kept row says what its run found, with the
    sources of that run: rerun a source after changing it."""
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        for mutant in MUTANTS:
            prefix = f"| {mutant.source} | {mutant.kind} | {mutant.what} | "
            if line.startswith(prefix):
                cells = [cell.strip() for cell in line[len(prefix):].rstrip(" |").split(" | ")]
                outcome, took, test = cells[0], float(cells[1]), cells[2] if len(cells) > 2 else ""
                run = cells[3] if len(cells) > 3 else "an earlier run"
                rows.append((mutant, outcome, took, "FAILED " + test if test else "", run))
                break
    return rows


def report(results: list, seconds: float, run: str) -> str:
    killed = sum(outcome in ("killed", "timeout", "build failed") for _, outcome, _, _, _ in results)
    counted = sum(outcome != "stale" for _, outcome, _, _, _ in results)
    rate = 100.0 * killed / counted if counted else 0.0
    this_run = sum(row[4] == run for row in results)
    lines = [
        "# Mutation testing of the CUDA kernels",
        "",
        "Produced by `python benchmarks/mutation.py` (see its docstring): each mutant plants one bug in one source",
        "of `kernels/`, and the kernel tests of that source run on the CPU emulation with `pytest -x`.",
        "",
        f"**{killed} of {counted} mutants killed ({rate:.1f} %)**. The column \"run\" says which run produced a row:",
        f"{this_run} rows come from the run started {run} ({seconds / 60:.0f} minutes on this machine)"
        + (f"; the other {len(results) - this_run} were kept from an earlier report (`--keep`)."
           if this_run < len(results) else "."),
        "",
        "| source | class | mutant | outcome | s | first failing test | run |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mutant, outcome, took, detail, row_run in results:
        test = detail.removeprefix("FAILED ").split(" - ")[0].replace("|", "\\|")
        lines.append(f"| {mutant.source} | {mutant.kind} | {mutant.what} | {outcome} | {took:.0f} | {test} "
                     f"| {row_run} |")
    survivors = [(mutant, outcome) for mutant, outcome, _, _, _ in results if outcome in ("survived", "stale")]
    lines += ["", "## Survivors", ""]
    if not survivors:
        lines.append("None.")
    for mutant, outcome in survivors:
        reason = EXPECTED_SURVIVORS.get((mutant.source, mutant.what), "not explained: a gap in the tests")
        lines.append(f"- {mutant.source}, {mutant.kind}, \"{mutant.what}\" ({outcome}): {reason}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only the mutants of this source (e.g. gemm.cu)")
    parser.add_argument("--match", help="run only the mutants whose description contains this text")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the report")
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT_S, help="seconds per mutant (a mutant "
                        "still running then counts as killed, as a hang)")
    parser.add_argument("--keep", action="store_true", help="keep the rows of the existing report for the "
                        "mutants this run leaves out (with --only or --match), so the report covers every source")
    arguments = parser.parse_args()
    mutants = [m for m in MUTANTS if arguments.only in (None, m.source) and (arguments.match or "") in m.what]
    if arguments.list:
        for mutant in mutants:
            found = (ROOT / "kernels" / mutant.source).read_text().count(mutant.old)
            state = "" if found == 1 else f"  [stale: text found {found} times]"
            print(f"{mutant.source:16} {mutant.kind:18} {mutant.what}{state}")
        return 0
    python = sys.executable
    run = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    kept = [row for row in read_rows(arguments.output) if row[0] not in mutants] if arguments.keep else []
    results = []
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gradcore-mutation-") as directory:
        work = Path(directory)
        copy_tree(work)
        for number, mutant in enumerate(mutants, start=1):
            outcome, took, detail = run_mutant(mutant, work, python, arguments.time_limit)
            print(f"[{number}/{len(mutants)}] {mutant.source} {mutant.kind}: {mutant.what}: {outcome} ({took:.0f} s)",
                  flush=True)
            results.append((mutant, outcome, took, detail, run))
            # Written after every mutant, so that an interrupted run leaves the results so far.
            arguments.output.parent.mkdir(parents=True, exist_ok=True)
            rows = sorted(results + kept, key=lambda row: MUTANTS.index(row[0]))
            arguments.output.write_text(report(rows, time.monotonic() - start, run))
    print(arguments.output.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
