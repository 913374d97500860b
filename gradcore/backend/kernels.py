"""gradcore's own CUDA kernels (``kernels/*.cu``): sources, build options, lazy loading and launch wrappers.

Each family of kernels (one ``.cu`` file) is compiled once per process and device, on its first launch, into a
CuPy ``RawModule`` whose template instantiations are named through ``name_expressions``; CuPy keeps the
compiled module in its on-disk cache, keyed by the source text and the options, so a later process loads it
without compiling. Everything that decides how a kernel is built lives here: ``BUILD_OPTIONS``, the families and
their instantiations (``NAME_EXPRESSIONS``), the GEMM tile table (``GEMM_TILES``).

The wrappers (``gemm``, ``linear_forward``, ``linear_backward``, ``bias_activation``, ``activation_backward``,
``clamp_forward``, ...) take CuPy arrays and return CuPy arrays. They compute every launch's grid, block and
argument list in Python and hand them to a *launcher*: ``CupyLauncher`` on a GPU; the tests pass a launcher that
runs the same sources on the CPU through ``kernels/emulation`` (``tests/kernels/kernel_emulation.py``), so that
the code computing grids, strides and arguments is tested together with the kernels. Importing this module needs
neither CuPy nor a GPU.

The ops (``gradcore/ops``) take their kernel paths where ``runs_on(array)`` gives a launcher: for float32 and
float64 CuPy arrays on the current device, and for arrays of a type that the tests installed a launcher for with
``use_launcher_for``; never for numpy arrays.
"""
from __future__ import annotations

import contextlib
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "BUILD_OPTIONS",
    "FAMILY_SOURCES",
    "GEMM_PARAMETERS",
    "GEMM_TILES",
    "KERNEL_DIR",
    "NAME_EXPRESSIONS",
    "CupyLauncher",
    "activation_backward",
    "bias_activation",
    "choose_tile",
    "clamp_backward",
    "clamp_forward",
    "default_launcher",
    "family_of",
    "gemm",
    "gemm_vector_widths",
    "linear_backward",
    "linear_forward",
    "name_expression",
    "product_path",
    "relu_backward",
    "runs_on",
    "split_k",
    "sigmoid_backward",
    "sigmoid_forward",
    "source",
    "use_launcher_for",
]

#: Where the CUDA sources live: the repository's ``kernels/`` folder, which the package reaches as
#: ``gradcore/_kernels`` (a link in a checkout, a copy in an installed wheel: see pyproject.toml).
KERNEL_DIR = Path(__file__).resolve().parents[1] / "_kernels"

#: NVRTC options of every build, on a GPU and in the compile tests alike. No fast-math: the kernels must match
#: the reference to float rounding (sigmoid through the exact expf/exp, products through plain FMA).
#: CuPy adds the device's own ``-arch``; the compile tests add ``-arch=sm_80`` and ``-arch=sm_90``.
BUILD_OPTIONS: tuple = ("-std=c++17",)

#: Activation codes of ``kernels/activation.cuh`` (the enum there carries the same numbers).
ACTIVATIONS = {"none": 0, "relu": 1, "clamp": 2, "sigmoid": 3}

#: GEMM tile configurations (BM, BN, BK, TM, TN) per dtype, largest first: a block computes a BM x BN tile of
#: the product in steps of BK, each of its (BM/TM)*(BN/TN) threads a TM x TN micro-tile (kernels/gemm.cu).
GEMM_TILES = {
    "float32": {"large": (128, 128, 8, 8, 8), "medium": (64, 64, 8, 4, 4), "small": (32, 32, 16, 4, 4)},
    "float64": {"large": (64, 64, 8, 4, 4), "small": (32, 32, 8, 4, 4)},
}

_C_TYPES = {"float32": "float", "float64": "double"}
_ELEMENTWISE_KERNELS = ("clamp_forward", "clamp_backward", "relu_backward", "sigmoid_forward", "sigmoid_backward",
                        "bias_activation", "activation_backward", "column_sums")

#: The source file of each family.
FAMILY_SOURCES = {"gemm": "gemm.cu", "elementwise": "elementwise.cu"}


def name_expression(kernel: str, dtype: str, tile: str | None = None) -> str:
    """Returns the C++ name of one template instantiation, e.g. ``gradcore::gemm<float, 128, 128, 8, 8, 8>``."""
    c_type = _C_TYPES[dtype]
    if kernel == "gemm":
        return "gradcore::gemm<{}, {}, {}, {}, {}, {}>".format(c_type, *GEMM_TILES[dtype][tile])
    return f"gradcore::{kernel}<{c_type}>"


#: Every instantiation that the modules are built with, per family: the GPU loader, the NVRTC compile tests and
#: the CPU emulation all take their list from here.
NAME_EXPRESSIONS = {
    "gemm": tuple(name_expression("gemm", dtype, tile) for dtype, tiles in GEMM_TILES.items() for tile in tiles)
    + tuple(name_expression("gemm_split_reduce", dtype) for dtype in _C_TYPES),
    "elementwise": tuple(name_expression(k, dtype) for k in _ELEMENTWISE_KERNELS for dtype in _C_TYPES),
}

_FAMILY_OF = {"gemm": "gemm", "gemm_split_reduce": "gemm", **{k: "elementwise" for k in _ELEMENTWISE_KERNELS}}


def family_of(kernel: str) -> str:
    """Returns the family (``FAMILY_SOURCES`` key) of a name expression such as ``gradcore::gemm<float, ...>``."""
    return _FAMILY_OF[kernel.split("::")[1].split("<")[0]]
_LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.MULTILINE)


def source(family: str) -> str:
    """Returns the full source of a family: its ``.cu`` file with our own ``#include "..."`` headers pasted in.

    Pasting them (rather than passing ``-I``) makes the text that CuPy's disk cache is keyed by include the
    headers, so a changed header is recompiled instead of served stale from the cache.
    """
    seen: set = set()

    def expand(path: Path) -> str:
        if path in seen:  # each header once, as its #pragma once would have it
            return ""
        seen.add(path)
        text = path.read_text()
        text = re.sub(r"^\s*#\s*pragma\s+once\s*$", "", text, flags=re.MULTILINE)
        return _LOCAL_INCLUDE.sub(lambda match: expand(path.parent / match.group(1)), text)

    return expand(KERNEL_DIR / FAMILY_SOURCES[family])


# -- our GEMM or cuBLAS ----------------------------------------------------------------------------------
# Which kernel computes a product on a GPU is decided here alone, per shape, from the crossover that
# benchmarks/gpu.py measured (our GEMM against cuBLAS, per shape class) and wrote to GEMM_CROSSOVER_FILE.

#: The measured crossover: written by ``benchmarks/gpu.py --write-crossover`` on a GPU, read by ``product_path``.
GEMM_CROSSOVER_FILE = Path(__file__).resolve().with_name("gemm_crossover.json")

#: Set by the tests (``--gemm-crossover=all``) or by a user who wants to force the choice: None reads the
#: measured crossover; an int sends every product of fewer than that many multiply-adds (rows x inner x columns)
#: to our GEMM and the rest to cuBLAS, whatever was measured.
GEMM_CROSSOVER_OVERRIDE: int | None = None

_crossover_cache: dict = {}  # (path, modification time) -> {dtype: [rule, ...]}


def _crossover_rules(dtype: str) -> list:
    """Returns the measured rules of a dtype from GEMM_CROSSOVER_FILE, or [] where nothing was measured.

    The file is ``{"measured_on": "...", "rules": {"float32": [{"max_m": M, "max_k": K, "max_n": N}, ...]}}``:
    each rule is a shape class (every extent at most its bound) in which our GEMM measured faster than cuBLAS.
    A missing file, or one with ``measured_on`` null, holds no rules.
    """
    path = GEMM_CROSSOVER_FILE
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return []
    key = (str(path), stamp)
    table = _crossover_cache.get(key)
    if table is None:
        data = json.loads(path.read_text())
        table = data.get("rules", {}) if data.get("measured_on") else {}
        _crossover_cache.clear()
        _crossover_cache[key] = table
    return table.get(dtype, [])


def product_path(m: int, k: int, n: int, dtype: str) -> str:
    """Returns "gemm" where our GEMM computes an (m x k) @ (k x n) product of ``dtype``, else "cublas".

    The one place where this is chosen per shape. Empty products (no multiply-adds) are never "gemm". With
    ``GEMM_CROSSOVER_OVERRIDE`` set, products of fewer multiply-adds than it are "gemm"; otherwise a product is
    "gemm" where it falls in a shape class that ``benchmarks/gpu.py`` measured our GEMM faster in, and "cublas"
    everywhere else, including everywhere while nothing has been measured.
    """
    multiply_adds = m * k * n
    if multiply_adds <= 0:
        return "cublas"
    if GEMM_CROSSOVER_OVERRIDE is not None:
        return "gemm" if multiply_adds < GEMM_CROSSOVER_OVERRIDE else "cublas"
    for rule in _crossover_rules(dtype):
        if m <= rule["max_m"] and k <= rule["max_k"] and n <= rule["max_n"]:
            return "gemm"
    return "cublas"


# -- launching -------------------------------------------------------------------------------------------
# A launch is (kernel name expression, grid, block, arguments); each argument is a (kind, value) pair, kind one
# of "ptr" (an array, or None for a null pointer), "i64", "i32" and "T" (a scalar of the kernel's dtype), so
# that each launcher can pass it with the exact C type the kernel declares.

class CupyLauncher:
    """Launches kernels on the current CUDA device through CuPy ``RawModule``s compiled on first use."""

    def __init__(self) -> None:
        self._modules: dict = {}  # (family, device id) -> RawModule
        self._multiprocessors: dict = {}  # device id -> count
        self._functions: dict = {}  # (name expression, device id) -> compiled kernel

    @property
    def xp(self):
        import cupy

        return cupy

    def empty(self, shape: tuple, dtype: str):
        """Allocates an output array on the current device."""
        import cupy

        return cupy.empty(shape, dtype=dtype)

    def module(self, family: str):
        """Returns the family's ``RawModule`` for the current device, compiling it on first use."""
        import cupy

        key = (family, cupy.cuda.runtime.getDevice())
        module = self._modules.get(key)
        if module is None:
            module = cupy.RawModule(code=source(family), options=BUILD_OPTIONS,
                                    name_expressions=NAME_EXPRESSIONS[family])
            self._modules[key] = module
        return module

    def multiprocessor_count(self) -> int:
        import cupy

        device = cupy.cuda.runtime.getDevice()
        count = self._multiprocessors.get(device)
        if count is None:
            count = self._multiprocessors[device] = int(
                cupy.cuda.Device(device).attributes["MultiProcessorCount"])
        return count

    def function(self, kernel: str):
        """Returns the compiled kernel of a name expression on the current device, looked up once per device
        (``RawModule.get_function`` makes a new function object on every call)."""
        import cupy

        key = (kernel, cupy.cuda.runtime.getDevice())
        function = self._functions.get(key)
        if function is None:
            family = family_of(kernel)
            function = self._functions[key] = self.module(family).get_function(kernel)
        return function

    def launch(self, kernel: str, grid: tuple, block: tuple, args: Sequence[tuple], dtype: np.dtype) -> None:
        function = self.function(kernel)
        scalar = dtype.type
        converted = []
        for kind, value in args:
            if kind == "ptr":
                # CuPy packs a numpy scalar by its bytes: a 64-bit zero is the null pointer.
                converted.append(np.uint64(0) if value is None else value)
            elif kind == "i64":
                converted.append(np.int64(value))
            elif kind == "i32":
                converted.append(np.int32(value))
            else:
                converted.append(scalar(value))
        function(grid, block, tuple(converted))


_default_launcher: CupyLauncher | None = None


def default_launcher() -> CupyLauncher:
    """Returns the process-wide CuPy launcher (its modules are compiled once per process and device)."""
    global _default_launcher
    if _default_launcher is None:
        _default_launcher = CupyLauncher()
    return _default_launcher


# -- which arrays the kernels run on --------------------------------------------------------------------
# The ops ask ``runs_on`` whether to take a kernel path; this is the only place that decides it.

_installed_launchers: dict = {}  # array type -> launcher, installed by ``use_launcher_for``


@contextlib.contextmanager
def use_launcher_for(array_type: type, launcher):
    """Makes ``runs_on`` answer ``launcher`` for arrays of exactly ``array_type`` while the block runs.

    For the tests: the CuPy test double's arrays are numpy memory, so an emulated launcher can run the real
    kernel sources on them and the ops' kernel paths can be checked without a GPU. numpy's own array type is
    refused, so that CPU tensors always keep their numpy code.
    """
    if array_type is np.ndarray:
        raise ValueError("use_launcher_for: CPU arrays (numpy.ndarray) never run on the CUDA kernels")
    previous = _installed_launchers.get(array_type)
    _installed_launchers[array_type] = launcher
    try:
        yield launcher
    finally:
        if previous is None:
            del _installed_launchers[array_type]
        else:
            _installed_launchers[array_type] = previous


def runs_on(*arrays):
    """Returns the launcher that can run our kernels on all of ``arrays``, or None when they must not.

    They qualify when they are all float32 or all float64 and either of a type installed by
    ``use_launcher_for`` (one launcher for all) or real CuPy arrays on the current device: the kernel modules
    are built and launched for the current device, and an array elsewhere keeps CuPy's own operations. numpy
    arrays never qualify. CuPy is looked up among the imported modules rather than imported: a CuPy array
    cannot exist before CuPy was imported, and asking must stay cheap on the CPU.
    """
    first = arrays[0]
    kind = type(first)
    if kind is np.ndarray:
        return None  # the CPU: the common case, answered first
    dtype = first.dtype
    if dtype != np.float32 and dtype != np.float64:
        return None
    for array in arrays[1:]:
        if type(array) is not kind or array.dtype != dtype:
            return None
    launcher = _installed_launchers.get(kind)
    if launcher is not None:
        return launcher
    cupy = sys.modules.get("cupy")
    if cupy is None or kind is not getattr(cupy, "ndarray", None):
        return None
    device = cupy.cuda.runtime.getDevice()
    if any(array.device.id != device for array in arrays):
        return None
    return default_launcher()


# -- argument checks -------------------------------------------------------------------------------------

_KERNEL_DTYPES = {np.dtype(name): name for name in _C_TYPES}  # a dict lookup: numpy's dtype.name is slow


def _dtype_name(array) -> str:
    name = _KERNEL_DTYPES.get(array.dtype)
    if name is None:
        raise TypeError(f"gradcore kernels take float32 or float64 arrays, got {np.dtype(array.dtype).name}")
    return name


def _same_dtype(name: str, *arrays) -> None:
    for array in arrays:
        if array is not None and _KERNEL_DTYPES.get(array.dtype) != name:
            raise TypeError(f"gradcore kernels: expected all arrays to be {name}, got {np.dtype(array.dtype).name}")


def _element_strides(array) -> tuple:
    """Returns an array's strides in elements (CuPy and numpy give bytes)."""
    itemsize = array.itemsize
    strides = []
    for stride in array.strides:
        if stride % itemsize:
            raise ValueError("gradcore kernels: strides must be whole elements")
        strides.append(stride // itemsize)
    return tuple(strides)


def _activation_code(activation: str) -> int:
    try:
        return ACTIVATIONS[activation]
    except KeyError:
        raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}") from None


def _bounds(clamp_min: float | None, clamp_max: float | None) -> tuple:
    low = -math.inf if clamp_min is None else float(clamp_min)
    high = math.inf if clamp_max is None else float(clamp_max)
    return low, high


def _contiguous(xp, array):
    return array if array.flags.c_contiguous else xp.ascontiguousarray(array)


# -- matrix products -------------------------------------------------------------------------------------

#: The parameters of ``gradcore::gemm`` (kernels/gemm.cu) in their order; ``_launch_gemm`` builds its argument
#: list by these names, and the tests read a launch's arguments back by them.
GEMM_PARAMETERS = (
    "a", "a_row", "a_col", "a_batch", "a_vector",
    "b", "b_row", "b_col", "b_batch", "b_vector",
    "c", "c_row", "c_batch", "m_size", "n_size", "k_size", "k_last",
    "bias", "preactivation", "activation", "saved", "saved_operand", "saved_activation", "low", "high", "row_sums",
)

_SAVED_OPERANDS = {"a": 0, "b": 1}
_WIDEST_LOAD_BYTES = 16  # the widest load instruction: four floats or two doubles


def choose_tile(m: int, n: int, dtype: str, multiprocessors: int) -> str:
    """Returns the largest tile configuration whose grid still fills every multiprocessor once.

    Large tiles reuse each loaded element more and win when there is work for all multiprocessors; on the
    small products of MLP training (a batch of 64 to 256 rows) they would leave most of the GPU idle. Where no
    configuration fills the GPU, the smallest one keeps the most multiprocessors busy.
    """
    tiles = GEMM_TILES[dtype]
    for name, (bm, bn, *_rest) in tiles.items():
        if math.ceil(m / bm) * math.ceil(n / bn) >= multiprocessors:
            return name
    return list(tiles)[-1]


#: Blocks per multiprocessor that split-K aims for: a product whose tiles give fewer is split along K.
SPLIT_K_BLOCKS_PER_MULTIPROCESSOR = 2
_MAX_SPLITS = 64  # bounds the workspace (splits x M x N) and the second pass's sums per element


def split_k(tiles: int, k: int, bk: int, multiprocessors: int) -> tuple:
    """Returns (splits, chunk): how many slices of K a product of ``tiles`` output tiles is split into, and the
    extent of each but the last (a multiple of ``bk``); (1, k) where it is not split.

    A product is split where its tiles give fewer than ``SPLIT_K_BLOCKS_PER_MULTIPROCESSOR`` blocks per
    multiprocessor: into at least enough slices to reach that many blocks (``wanted``), where K has that many
    full steps of ``bk`` and ``wanted`` is at most ``_MAX_SPLITS``; otherwise into as many as it has. Each slice
    but the last is ``k // bk // wanted`` whole steps, so there are ``wanted`` to about twice as many slices.
    The result depends on the shape, the tile and the multiprocessor count alone, and so does the order in which
    the second pass adds the slices: a split product repeats bit for bit.
    """
    target = SPLIT_K_BLOCKS_PER_MULTIPROCESSOR * multiprocessors
    steps = k // bk  # full steps
    if tiles >= target or steps < 2:
        return 1, k
    wanted = min(math.ceil(target / tiles), steps, _MAX_SPLITS)
    chunk = (steps // wanted) * bk
    return math.ceil(k / chunk), chunk


def gemm_vector_widths(dtype: str, tile: str) -> tuple:
    """Returns (A's, B's) vector width of a tile: how many elements one vector load of the GEMM reads.

    The same rule as ``TileCopy::VECTOR`` in kernels/gemm.cu: the elements each thread copies per step
    (tile area / threads), at most 16 bytes' worth. The tests check that the kernel agrees.
    """
    bm, bn, bk, tm, tn = GEMM_TILES[dtype][tile]
    threads = (bm // tm) * (bn // tn)
    widest = _WIDEST_LOAD_BYTES // np.dtype(dtype).itemsize
    return min(bm * bk // threads, widest), min(bk * bn // threads, widest)


def _address(array) -> int:
    """Returns the address of an array's first element (numpy and the CuPy test double: the array interface;
    CuPy: ``.data.ptr``)."""
    if isinstance(array, np.ndarray):
        return int(array.__array_interface__["data"][0])
    return int(array.data.ptr)


def _matrix_view(array, transpose: bool) -> tuple:
    """Returns (rows, cols, row stride, col stride, batch, batch stride) of op(array), op a transpose or not."""
    strides = _element_strides(array)
    if array.ndim == 2:
        rows, cols = array.shape
        row_stride, col_stride = strides
        batch, batch_stride = 1, 0
    elif array.ndim == 3:
        batch, rows, cols = array.shape
        batch_stride, row_stride, col_stride = strides
    else:
        raise ValueError(f"gradcore gemm: operands must be 2-d or 3-d, got {array.ndim}-d")
    if transpose:
        rows, cols, row_stride, col_stride = cols, rows, col_stride, row_stride
    return rows, cols, row_stride, col_stride, batch, batch_stride


def _vector_width(array, *, operand: str, transpose: bool, width: int, saved=None) -> int:
    """Returns ``width`` where the GEMM may copy this operand's tiles ``width`` elements at a time, else 1.

    ``operand`` is "a" (op(array) is M x K) or "b" (K x N); ``saved`` is the prologue's tensor when it applies
    to this operand (it is read at the same offsets, so it must be aligned too). The kernel walks along k when
    k has stride 1, else along the other dimension (kernels/gemm.cu, TileCopy); a vector of ``width`` elements
    along that dimension is one load when every vector starts at an aligned address and lies wholly inside or
    outside the matrix: the walked dimension has stride 1 and an extent that is a multiple of ``width``, the
    other stride and the batch stride are multiples of ``width``, and the pointers are aligned to
    ``width`` elements.
    """
    if width <= 1:
        return 1
    rows, cols, row_stride, col_stride, batch, batch_stride = _matrix_view(array, transpose)
    if operand == "a":  # op(A) is M x K: k runs along its columns
        k_size, k_stride, x_size, x_stride = cols, col_stride, rows, row_stride
    else:  # op(B) is K x N: k runs along its rows
        k_size, k_stride, x_size, x_stride = rows, row_stride, cols, col_stride
    if k_stride == 1:
        extent, across = k_size, x_stride
    elif x_stride == 1:
        extent, across = x_size, k_stride
    else:
        return 1
    if batch == 1:
        batch_stride = 0  # the kernel is given 0: a batch of one is broadcast
    if extent % width or across % width or batch_stride % width:
        return 1
    alignment = width * array.itemsize
    if any(_address(x) % alignment for x in (array, saved) if x is not None):
        return 1
    return width


class _GemmPlan:
    """Everything a GEMM launch computes from its operands' shapes, strides, dtype, alignment and epilogue: the
    kernel, grid, block, output shape, the result's extents and the argument list with the pointers and clamp
    bounds left to fill in. Made once per distinct launch (``_gemm_plan``) and reused."""

    __slots__ = ("kernel", "grid", "block", "shape", "dtype", "np_dtype", "m", "n", "arguments", "empty", "splits",
                 "reduce_kernel", "reduce_grid", "reduce_arguments")

    def __init__(self, kernel, grid, block, shape, dtype, m, n, arguments, empty, splits=1, reduce_kernel=None,
                 reduce_grid=None, reduce_arguments=None):
        self.kernel, self.grid, self.block, self.shape = kernel, grid, block, shape
        self.dtype, self.np_dtype, self.m, self.n = dtype, np.dtype(dtype), m, n
        self.arguments, self.empty = arguments, empty
        # Split-K (splits > 1): the GEMM writes `splits` partial products into a workspace, and
        # gemm_split_reduce (its grid and argument list, pointers and bounds left to fill in) finishes them.
        self.splits, self.reduce_kernel, self.reduce_grid = splits, reduce_kernel, reduce_grid
        self.reduce_arguments = reduce_arguments


#: The launch plans made so far, by everything they depend on (``_gemm_plan``). Bounded: a process that makes
#: more distinct launches than this starts over, which costs one plan each.
_GEMM_PLANS: dict = {}
_GEMM_PLANS_MAX = 4096
_ALIGNMENT_BYTES = 16  # the widest vector load: a plan depends on each pointer's address modulo this
# The slots of the argument list (GEMM_PARAMETERS order) that change from launch to launch of one plan.
_GEMM_SLOTS = {name: GEMM_PARAMETERS.index(name)
               for name in ("a", "b", "c", "bias", "preactivation", "saved", "row_sums", "low", "high")}


def _gemm_plan(launcher, a, b, trans_a: bool, trans_b: bool, bias, activation: str, preactivation: bool, saved,
               saved_activation: str, saved_operand: str, row_sums: bool, tile: str | None) -> _GemmPlan:
    """Checks a GEMM's arguments and returns its launch plan, from the cache where the same launch was planned.

    The key holds every input of the plan: the launcher, each array's type, dtype, shape, strides and address
    modulo 16 bytes (which decides the vector flags), and the epilogue and prologue options. A launch whose
    arguments are wrong raises before anything is cached, so a wrong call fails on every call.
    """
    key = (id(launcher), type(a), a.dtype, a.shape, a.strides, _address(a) % _ALIGNMENT_BYTES,
           type(b), b.dtype, b.shape, b.strides, _address(b) % _ALIGNMENT_BYTES, trans_a, trans_b,
           None if bias is None else (bias.dtype, bias.shape, bias.strides), activation, preactivation,
           None if saved is None else (saved.dtype, saved.shape, saved.strides, _address(saved) % _ALIGNMENT_BYTES),
           saved_activation, saved_operand, row_sums, tile)
    plan = _GEMM_PLANS.get(key)
    if plan is None:
        plan = _make_gemm_plan(launcher, a, b, trans_a, trans_b, bias, activation, preactivation, saved,
                               saved_activation, saved_operand, row_sums, tile)
        if len(_GEMM_PLANS) >= _GEMM_PLANS_MAX:
            _GEMM_PLANS.clear()
        _GEMM_PLANS[key] = plan
    return plan


def _make_gemm_plan(launcher, a, b, trans_a, trans_b, bias, activation, preactivation, saved, saved_activation,
                    saved_operand, row_sums, tile) -> _GemmPlan:
    dtype = _dtype_name(a)
    _same_dtype(dtype, b, bias, saved)
    m, k, a_row, a_col, a_batches, a_batch = _matrix_view(a, trans_a)
    k2, n, b_row, b_col, b_batches, b_batch = _matrix_view(b, trans_b)
    if k != k2:
        raise ValueError(f"gradcore gemm: inner dimensions differ ({m}x{k} and {k2}x{n})")
    if a_batches != b_batches and 1 not in (a_batches, b_batches):
        raise ValueError(f"gradcore gemm: batch sizes {a_batches} and {b_batches} do not broadcast")
    batches = max(a_batches, b_batches)
    # A batch of one is broadcast by a zero batch stride.
    a_batch = a_batch if a_batches > 1 else 0
    b_batch = b_batch if b_batches > 1 else 0
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != n):
        raise ValueError(f"gradcore gemm: bias must have shape ({n},), got {tuple(bias.shape)}")
    if saved_operand not in _SAVED_OPERANDS:
        raise ValueError(f"gradcore gemm: saved_operand must be 'a' or 'b', got {saved_operand!r}")
    code = _activation_code(activation)
    saved_activation_code = _activation_code(saved_activation)
    if saved is not None:
        # The kernel reads the saved tensor at the operand's own offsets.
        target = a if saved_operand == "a" else b
        if saved.shape != target.shape or _element_strides(saved) != _element_strides(target):
            raise ValueError(f"gradcore gemm: the saved tensor must have the shape and strides of operand "
                             f"{saved_operand} ({tuple(target.shape)}, {_element_strides(target)}), got "
                             f"{tuple(saved.shape)}, {_element_strides(saved)}")
    if row_sums and batches != 1:
        raise ValueError("gradcore gemm: row sums need a batch of 1")

    multiprocessors = launcher.multiprocessor_count()
    tile = tile or choose_tile(m, n, dtype, multiprocessors)
    bm, bn, bk, tm, tn = GEMM_TILES[dtype][tile]
    grid = (math.ceil(n / bn) if n else 1, math.ceil(m / bm) if m else 1, batches)
    splits, chunk = split_k(grid[0] * grid[1], k, bk, multiprocessors) if batches == 1 and m and n else (1, k)
    if grid[1] > 65535 or grid[2] > 65535:
        raise ValueError(f"gradcore gemm: {m} rows x {batches} batches exceed the grid's limits")
    shape = (m, n) if a.ndim == 2 and b.ndim == 2 else (batches, m, n)
    reads_saved = saved is not None and saved_activation != "none"  # for "none" the derivative is 1
    a_width, b_width = gemm_vector_widths(dtype, tile)
    a_vector = _vector_width(a, operand="a", transpose=trans_a, width=a_width,
                             saved=saved if reads_saved and saved_operand == "a" else None) > 1
    b_vector = _vector_width(b, operand="b", transpose=trans_b, width=b_width,
                             saved=saved if reads_saved and saved_operand == "b" else None) > 1
    arguments = {
        "a": None, "a_row": ("i64", a_row), "a_col": ("i64", a_col), "a_batch": ("i64", a_batch),
        "a_vector": ("i32", int(a_vector)),
        "b": None, "b_row": ("i64", b_row), "b_col": ("i64", b_col), "b_batch": ("i64", b_batch),
        "b_vector": ("i32", int(b_vector)),
        "c": None, "c_row": ("i64", n), "c_batch": ("i64", m * n if len(shape) == 3 else 0),
        "m_size": ("i64", m), "n_size": ("i64", n), "k_size": ("i64", k), "k_last": ("i64", k),
        "bias": None, "preactivation": None, "activation": ("i32", code),
        "saved": None, "saved_operand": ("i32", _SAVED_OPERANDS[saved_operand]),
        "saved_activation": ("i32", saved_activation_code),
        "low": None, "high": None, "row_sums": None,
    }
    block = ((bm // tm) * (bn // tn), 1, 1)
    if splits == 1:
        return _GemmPlan(name_expression("gemm", dtype, tile), grid, block, shape, dtype, m, n,
                         [arguments[name] for name in GEMM_PARAMETERS], m == 0 or n == 0)
    # Split-K: slice z starts `chunk` further along K in both operands (and in the saved tensor, which shares
    # its operand's strides) and writes its own M x N product; the epilogue waits for the second pass.
    arguments.update({
        "a_batch": ("i64", chunk * a_col), "b_batch": ("i64", chunk * b_row), "c_batch": ("i64", m * n),
        "k_size": ("i64", chunk), "k_last": ("i64", k - (splits - 1) * chunk), "activation": ("i32", 0),
    })
    reduce_arguments = [("ptr", None), ("i64", splits), ("i64", m), ("i64", n), ("ptr", None), ("ptr", None),
                        ("ptr", None), ("i32", code), None, None, ("ptr", None), ("ptr", None)]
    return _GemmPlan(name_expression("gemm", dtype, tile), (grid[0], grid[1], splits), block, shape, dtype, m, n,
                     [arguments[name] for name in GEMM_PARAMETERS], False, splits,
                     name_expression("gemm_split_reduce", dtype), _grid_stride_blocks(launcher, m * n),
                     reduce_arguments)


def _launch_gemm(launcher, a, b, *, trans_a: bool, trans_b: bool, bias=None, activation: str = "none",
                 low: float = -math.inf, high: float = math.inf, preactivation: bool = False,
                 saved=None, saved_activation: str = "none", saved_operand: str = "a", row_sums: bool = False,
                 tile: str | None = None):
    """Launches one GEMM; returns (C, Z or None, row sums or None). See ``kernels/gemm.cu``."""
    if bias is not None and not bias.flags.c_contiguous and bias.ndim == 1:
        bias = launcher.xp.ascontiguousarray(bias)
    plan = _gemm_plan(launcher, a, b, trans_a, trans_b, bias, activation, preactivation, saved, saved_activation,
                      saved_operand, row_sums, tile)
    if plan.splits > 1:
        return _launch_split_gemm(launcher, plan, a, b, bias, preactivation, saved, saved_activation, row_sums,
                                  low, high)
    out = launcher.empty(plan.shape, plan.dtype)
    z = launcher.empty(plan.shape, plan.dtype) if preactivation else None
    sums = launcher.empty((plan.m,), plan.dtype) if row_sums else None
    if plan.empty:
        if sums is not None:
            sums[...] = 0
        return out, z, sums
    if saved_activation == "none":
        saved = None  # the derivative is 1: nothing to read
    arguments = list(plan.arguments)
    slots = _GEMM_SLOTS
    arguments[slots["a"]] = ("ptr", a)
    arguments[slots["b"]] = ("ptr", b)
    arguments[slots["c"]] = ("ptr", out)
    arguments[slots["bias"]] = ("ptr", bias)
    arguments[slots["preactivation"]] = ("ptr", z)
    arguments[slots["saved"]] = ("ptr", saved)
    arguments[slots["row_sums"]] = ("ptr", sums)
    arguments[slots["low"]] = ("T", low)
    arguments[slots["high"]] = ("T", high)
    launcher.launch(plan.kernel, plan.grid, plan.block, arguments, plan.np_dtype)
    return out, z, sums


# The slots of gemm_split_reduce's argument list (kernels/gemm.cu) that change from launch to launch of a plan.
_REDUCE_SLOTS = {"partial": 0, "c": 4, "bias": 5, "preactivation": 6, "low": 8, "high": 9, "row_partial": 10,
                 "row_sums": 11}


def _launch_split_gemm(launcher, plan, a, b, bias, preactivation, saved, saved_activation, row_sums, low, high):
    """Split-K: the GEMM's slices into a workspace, then gemm_split_reduce, which adds them in a fixed order
    and applies the epilogue (see ``split_k`` and kernels/gemm.cu)."""
    m, n, splits = plan.m, plan.n, plan.splits
    partial = launcher.empty((splits, m, n), plan.dtype)
    row_partial = launcher.empty((splits, m), plan.dtype) if row_sums else None
    if saved_activation == "none":
        saved = None
    arguments = list(plan.arguments)
    slots = _GEMM_SLOTS
    arguments[slots["a"]] = ("ptr", a)
    arguments[slots["b"]] = ("ptr", b)
    arguments[slots["c"]] = ("ptr", partial)
    arguments[slots["bias"]] = ("ptr", None)  # the epilogue is the second pass's
    arguments[slots["preactivation"]] = ("ptr", None)
    arguments[slots["saved"]] = ("ptr", saved)
    arguments[slots["row_sums"]] = ("ptr", row_partial)
    arguments[slots["low"]] = ("T", low)
    arguments[slots["high"]] = ("T", high)
    launcher.launch(plan.kernel, plan.grid, plan.block, arguments, plan.np_dtype)
    out = launcher.empty(plan.shape, plan.dtype)
    z = launcher.empty(plan.shape, plan.dtype) if preactivation else None
    sums = launcher.empty((m,), plan.dtype) if row_sums else None
    arguments = list(plan.reduce_arguments)
    slots = _REDUCE_SLOTS
    arguments[slots["partial"]] = ("ptr", partial)
    arguments[slots["c"]] = ("ptr", out)
    arguments[slots["bias"]] = ("ptr", bias)
    arguments[slots["preactivation"]] = ("ptr", z)
    arguments[slots["low"]] = ("T", low)
    arguments[slots["high"]] = ("T", high)
    arguments[slots["row_partial"]] = ("ptr", row_partial)
    arguments[slots["row_sums"]] = ("ptr", sums)
    launcher.launch(plan.reduce_kernel, plan.reduce_grid, (ELEMENTWISE_THREADS, 1, 1), arguments, plan.np_dtype)
    return out, z, sums


def gemm(a, b, *, trans_a: bool = False, trans_b: bool = False, bias=None, activation: str = "none",
         clamp_min: float | None = None, clamp_max: float | None = None, return_preactivation: bool = False,
         saved=None, saved_activation: str = "none", saved_operand: str = "a", tile: str | None = None,
         launcher=None):
    """Returns ``activation(op(a) @ op(b) + bias)``, op a transpose where asked (read in place, never copied).

    ``a`` and ``b`` are 2-d, or 3-d batches (a batch of one broadcasts); any strides are read as they are.
    ``activation`` is "none", "relu", "clamp" (with ``clamp_min``/``clamp_max``) or "sigmoid". With
    ``return_preactivation`` the result is ``(out, op(a) @ op(b) + bias)``.

    The backward prologue: with ``saved``, the operand named by ``saved_operand`` ("a" or "b") is replaced by
    ``operand * saved_activation'(saved)`` as it is loaded, the derivative being that of ``activation_backward``
    (from the saved output for "relu" and "sigmoid", from the pre-activation for "clamp", with the same
    ``clamp_min``/``clamp_max``). ``saved`` has that operand's shape and strides as passed, before op; e.g. for
    ``h = clamp(x @ w1, min=0)``, the gradient of ``w1`` is
    ``gemm(x, g, trans_a=True, saved=z, saved_activation="clamp", saved_operand="b", clamp_min=0)``.

    ``tile`` forces a configuration of ``GEMM_TILES`` (by default ``choose_tile`` picks one). Operands that
    are laid out for it are copied with vector loads (``_vector_width``); others element by element.
    """
    launcher = launcher or default_launcher()
    low, high = _bounds(clamp_min, clamp_max)
    out, z, _ = _launch_gemm(launcher, a, b, trans_a=trans_a, trans_b=trans_b, bias=bias, activation=activation,
                             low=low, high=high, preactivation=return_preactivation, saved=saved,
                             saved_activation=saved_activation, saved_operand=saved_operand, tile=tile)
    return (out, z) if return_preactivation else out


def linear_forward(x, weight, bias=None, activation: str = "none", clamp_min: float | None = None,
                   clamp_max: float | None = None, *, tile: str | None = None, launcher=None) -> tuple:
    """Returns ``(y, saved)``: ``y = activation(x @ weight.T + bias)`` in one kernel, and what backward needs.

    ``x`` is (batch, in), ``weight`` (out, in) as in ``nn.Linear``, ``bias`` (out,) or None. ``saved`` is the
    output for "relu" and "sigmoid" (their derivatives read it), the pre-activation for "clamp" (whose gradient
    passes where ``clamp_min <= z <= clamp_max``, which the output cannot tell at the bounds), None for "none".
    """
    launcher = launcher or default_launcher()
    low, high = _bounds(clamp_min, clamp_max)
    keep_z = activation == "clamp"
    y, z, _ = _launch_gemm(launcher, x, weight, trans_a=False, trans_b=True, bias=bias, activation=activation,
                           low=low, high=high, preactivation=keep_z, tile=tile)
    saved = z if keep_z else (None if activation == "none" else y)
    return y, saved


def linear_backward(grad, x, weight, saved=None, activation: str = "none", clamp_min: float | None = None,
                    clamp_max: float | None = None, needs_input_grad: Sequence[bool] = (True, True, True), *,
                    tile: str | None = None, launcher=None) -> tuple:
    """Returns ``(grad_x, grad_weight, grad_bias)`` of ``linear_forward`` (None where not needed).

    The activation's derivative is applied to ``grad`` as each GEMM loads it, so dZ = grad * activation'(saved)
    is never written to memory: grad_x = dZ @ weight, grad_weight = dZ.T @ x, and grad_bias (the column sums of
    dZ) is summed by the grad_weight launch from the tiles it loads anyway. Without a grad_weight launch,
    grad_bias takes one pass of ``activation_backward``'s kernel, which sums the columns without storing dZ
    (and, for a tall gradient, ``column_sums``, which adds its blocks' partial sums).
    """
    launcher = launcher or default_launcher()
    xp = launcher.xp
    low, high = _bounds(clamp_min, clamp_max)
    need_x, need_w, need_b = (tuple(needs_input_grad) + (False,) * 3)[:3]
    if activation != "none" and saved is None:
        raise ValueError(f"linear_backward: activation {activation!r} needs the saved tensor of linear_forward")
    if activation == "none":
        saved = None
    else:
        saved = _contiguous(xp, saved)
    grad = _contiguous(xp, grad)
    common = {"saved": saved, "saved_activation": activation, "low": low, "high": high, "tile": tile}
    grad_x = grad_w = grad_b = None
    if need_x:
        grad_x, _, _ = _launch_gemm(launcher, grad, weight, trans_a=False, trans_b=False, **common)
    if need_w:
        grad_w, _, grad_b = _launch_gemm(launcher, grad, x, trans_a=True, trans_b=False, row_sums=need_b, **common)
    elif need_b:
        _, grad_b = _activation_backward_with_sums(launcher, grad, saved, activation, low, high, keep_dz=False)
    return grad_x, grad_w, grad_b if need_b else None


# -- elementwise -----------------------------------------------------------------------------------------
ELEMENTWISE_THREADS = 256
_BLOCKS_PER_MULTIPROCESSOR = 16  # enough resident blocks to hide memory latency; the grid-stride loop does the rest


#: Launch plans of the one-pass elementwise kernels: (kernel, grid, numpy dtype, dtype name) by launcher,
#: kernel, and each input's type, dtype and shape; bounded like ``_GEMM_PLANS``.
_ELEMENTWISE_PLANS: dict = {}
_ELEMENTWISE_PLANS_MAX = 1024


def _elementwise_plan(launcher, kernel: str, inputs: Sequence) -> tuple:
    key = (id(launcher), kernel, *[(type(array), array.dtype, array.shape) for array in inputs])
    plan = _ELEMENTWISE_PLANS.get(key)
    if plan is None:
        dtype = _dtype_name(inputs[0])
        _same_dtype(dtype, *inputs)
        shape = inputs[0].shape
        for array in inputs[1:]:
            if array.shape != shape:
                raise ValueError(f"gradcore {kernel}: shapes differ ({tuple(shape)} and {tuple(array.shape)})")
        size = math.prod(shape)
        grid = _grid_stride_blocks(launcher, size) if size else None
        plan = (name_expression(kernel, dtype), grid, np.dtype(dtype), dtype, size)
        if len(_ELEMENTWISE_PLANS) >= _ELEMENTWISE_PLANS_MAX:
            _ELEMENTWISE_PLANS.clear()
        _ELEMENTWISE_PLANS[key] = plan
    return plan


def _elementwise(launcher, kernel: str, inputs: Sequence, scalars: Sequence[float] = ()):
    name, grid, np_dtype, dtype, n = _elementwise_plan(launcher, kernel, inputs)
    xp = launcher.xp
    inputs = [array if array.flags.c_contiguous else xp.ascontiguousarray(array) for array in inputs]
    out = launcher.empty(inputs[0].shape, dtype)
    if n == 0:
        return out
    args = [("ptr", array) for array in inputs] + [("ptr", out), ("i64", n)] + [("T", s) for s in scalars]
    launcher.launch(name, grid, (ELEMENTWISE_THREADS, 1, 1), args, np_dtype)
    return out


def _grid_stride_blocks(launcher, n: int) -> tuple:
    """The grid of a grid-stride loop over n > 0 elements: one thread per element up to 16 blocks per
    multiprocessor."""
    return (min(math.ceil(n / ELEMENTWISE_THREADS), launcher.multiprocessor_count() * _BLOCKS_PER_MULTIPROCESSOR),
            1, 1)


def _activation_backward(launcher, grad, saved, activation: str, low: float, high: float):
    if activation == "relu":
        return _elementwise(launcher, "relu_backward", (grad, saved))
    if activation == "clamp":
        return _elementwise(launcher, "clamp_backward", (grad, saved), (low, high))
    if activation == "sigmoid":
        return _elementwise(launcher, "sigmoid_backward", (grad, saved))
    return grad


def _require_saved(activation: str, saved) -> None:
    _activation_code(activation)
    if activation != "none" and saved is None:
        raise ValueError(f"gradcore kernels: the derivative of {activation!r} needs its saved tensor")


COLUMN_SUM_THREADS = 256  # threads of an activation_backward block: COLUMN_SUM_THREADS in elementwise.cu


def _column_sum_block(cols: int) -> tuple:
    """Returns activation_backward's block (columns, rows) for a matrix of ``cols`` columns.

    32 columns (a warp reads 32 consecutive elements of a row) where there are that many; fewer, and more rows
    of threads, for narrow matrices, so that a 1000 x 3 gradient still keeps the block's threads busy. Both
    sides are powers of two, as the kernel's tree sum needs, and depend on the shape alone: so does the order of
    the additions, and the sums repeat bit for bit.
    """
    columns = min(32, 1 << max(cols - 1, 0).bit_length())
    return columns, COLUMN_SUM_THREADS // columns


#: Rows each thread of an activation_backward block covers, at least, before the rows are split into more
#: row blocks; and the most row blocks (each adds one line of partial sums for the second pass to add up).
COLUMN_SUM_ROWS_PER_THREAD = 4
COLUMN_SUM_MAX_ROW_BLOCKS = 128


def _column_sum_launch(rows: int, cols: int) -> tuple:
    """Returns activation_backward's (grid, block) for a rows x cols matrix: ``_column_sum_block``'s blocks,
    ceil(cols / block columns) of them across and enough down that each thread covers about
    ``COLUMN_SUM_ROWS_PER_THREAD`` rows, at most ``COLUMN_SUM_MAX_ROW_BLOCKS``. A function of the shape alone,
    so that the sums (and the order of their additions) repeat bit for bit on every GPU."""
    block = _column_sum_block(cols)
    row_blocks = min(math.ceil(rows / (block[1] * COLUMN_SUM_ROWS_PER_THREAD)), COLUMN_SUM_MAX_ROW_BLOCKS)
    return (math.ceil(cols / block[0]), max(row_blocks, 1), 1), (*block, 1)


class _ColumnSumPlan:
    """What a launch of activation_backward (with column sums) computes from its arrays' type, dtype and shape,
    the activation and whether dz is kept: made once per distinct launch (``_column_sum_plan``) and reused."""

    __slots__ = ("dtype", "np_dtype", "rows", "cols", "code", "writes_dz", "reads_saved", "kernel", "grid", "block",
                 "parts", "sum_kernel", "sum_grid")

    def __init__(self, launcher, dtype: str, rows: int, cols: int, activation: str, keep_dz: bool) -> None:
        self.dtype, self.np_dtype, self.rows, self.cols = dtype, np.dtype(dtype), rows, cols
        self.code = _activation_code(activation)
        self.reads_saved = activation != "none"  # for "none" the derivative is 1: nothing to read
        self.writes_dz = keep_dz and activation != "none"  # for "none" dz is grad itself: the kernel only sums
        self.kernel = name_expression("activation_backward", dtype)
        self.sum_kernel = name_expression("column_sums", dtype)
        if rows and cols:
            self.grid, self.block = _column_sum_launch(rows, cols)
            self.parts = self.grid[1]
            self.sum_grid = _grid_stride_blocks(launcher, cols) if self.parts > 1 else None
        else:
            self.grid = self.block = self.sum_grid = None
            self.parts = 0


#: Launch plans of activation_backward by everything they depend on; bounded like ``_GEMM_PLANS``.
_COLUMN_SUM_PLANS: dict = {}
_COLUMN_SUM_PLANS_MAX = 1024


def _column_sum_plan(launcher, grad, saved, activation: str, keep_dz: bool) -> _ColumnSumPlan:
    """Checks activation_backward's arguments and returns its plan, from the cache where the same launch was
    planned. Wrong arguments raise before anything is cached, so a wrong call fails on every call."""
    key = (id(launcher), type(grad), grad.dtype, grad.shape,
           None if saved is None else (type(saved), saved.dtype, saved.shape), activation, keep_dz)
    plan = _COLUMN_SUM_PLANS.get(key)
    if plan is None:
        dtype = _dtype_name(grad)
        _same_dtype(dtype, saved)
        _require_saved(activation, saved)
        if grad.ndim != 2:
            raise ValueError(f"gradcore activation_backward: column sums need a 2-d gradient, got {grad.ndim}-d")
        if activation != "none" and saved.shape != grad.shape:
            raise ValueError(f"gradcore activation_backward: shapes differ ({tuple(grad.shape)} and "
                             f"{tuple(saved.shape)})")
        plan = _ColumnSumPlan(launcher, dtype, *grad.shape, activation, keep_dz)
        if len(_COLUMN_SUM_PLANS) >= _COLUMN_SUM_PLANS_MAX:
            _COLUMN_SUM_PLANS.clear()
        _COLUMN_SUM_PLANS[key] = plan
    return plan


def _activation_backward_with_sums(launcher, grad, saved, activation: str, low: float, high: float, *,
                                   keep_dz: bool) -> tuple:
    """activation_backward's kernel (and, for a tall gradient, column_sums): returns (dz or None, column sums)."""
    plan = _column_sum_plan(launcher, grad, saved, activation, keep_dz)
    if not grad.flags.c_contiguous:
        grad = launcher.xp.ascontiguousarray(grad)
    if not plan.reads_saved:
        saved = None
    elif not saved.flags.c_contiguous:
        saved = launcher.xp.ascontiguousarray(saved)
    rows, cols, dtype = plan.rows, plan.cols, plan.dtype
    dz = launcher.empty((rows, cols), dtype) if plan.writes_dz else None
    sums = launcher.empty((cols,), dtype)
    if not plan.parts:
        sums[...] = 0
    else:
        # Several row blocks: each writes its line of partial sums, and a second pass adds them in order.
        partial = sums if plan.parts == 1 else launcher.empty((plan.parts, cols), dtype)
        args = [("ptr", grad), ("ptr", saved), ("ptr", dz), ("ptr", partial), ("i64", rows), ("i64", cols),
                ("i32", plan.code), ("T", low), ("T", high)]
        launcher.launch(plan.kernel, plan.grid, plan.block, args, plan.np_dtype)
        if plan.parts > 1:
            launcher.launch(plan.sum_kernel, plan.sum_grid, (ELEMENTWISE_THREADS, 1, 1),
                            [("ptr", partial), ("ptr", sums), ("i64", plan.parts), ("i64", cols)], plan.np_dtype)
    if keep_dz and dz is None:
        dz = grad
    return dz, sums


def activation_backward(grad, saved, activation: str, clamp_min: float | None = None,
                        clamp_max: float | None = None, *, column_sums: bool = False, launcher=None) -> tuple:
    """Returns ``(dz, sums)``: ``dz = grad * activation'(saved)`` and, with ``column_sums``, ``dz.sum(axis=0)``.

    ``saved`` is what ``linear_forward`` saves: the output for "relu" and "sigmoid", the pre-activation for
    "clamp" (with ``clamp_min``/``clamp_max``); None is allowed for "none", whose dz is ``grad`` itself. The
    derivatives are those of the GEMM's prologue (activation.cuh), masks selecting rather than multiplying.
    With ``column_sums`` the gradient must be 2-d (M, N): one kernel writes dz and sums its N columns in the
    same pass, deterministically (partial sums per block of rows, added in a fixed order; no atomics), and
    ``sums`` has shape (N,); otherwise dz
    comes from the elementwise kernel of the activation (any shape) and ``sums`` is None.
    """
    launcher = launcher or default_launcher()
    low, high = _bounds(clamp_min, clamp_max)
    if column_sums:
        return _activation_backward_with_sums(launcher, grad, saved, activation, low, high, keep_dz=True)
    _require_saved(activation, saved)
    _same_dtype(_dtype_name(grad), saved)
    return _activation_backward(launcher, grad, saved, activation, low, high), None


def bias_activation(z, bias=None, activation: str = "none", clamp_min: float | None = None,
                    clamp_max: float | None = None, *, launcher=None) -> tuple:
    """Returns ``(y, saved)``: ``y = activation(z + bias)`` as a new array, in one pass, and what backward needs.

    The epilogue of ``linear_forward`` for a product ``z`` (M, N) that cuBLAS computed: ``bias`` is (N,) or
    None; ``saved`` is as ``linear_forward`` defines it: ``y`` for "relu" and "sigmoid", the pre-activation
    ``z + bias`` for "clamp", None for "none". ``z`` may have any layout (it is copied to a contiguous array
    if it is not one). For "clamp" with a bias the same pass stores ``z + bias`` into ``z`` (the contiguous
    array, so the caller's own ``z`` where it was contiguous) and ``saved`` is that array: ``z`` is taken to
    be a temporary product that nothing else reads.
    """
    launcher = launcher or default_launcher()
    xp = launcher.xp
    dtype = _dtype_name(z)
    _same_dtype(dtype, bias)
    code = _activation_code(activation)
    low, high = _bounds(clamp_min, clamp_max)
    if z.ndim != 2:
        raise ValueError(f"gradcore bias_activation: z must be 2-d, got {z.ndim}-d")
    rows, cols = z.shape
    if bias is not None:
        if bias.shape != (cols,):
            raise ValueError(f"gradcore bias_activation: bias must have shape ({cols},), got {tuple(bias.shape)}")
        bias = _contiguous(xp, bias)
    z = _contiguous(xp, z)
    y = launcher.empty((rows, cols), dtype)
    write_z = activation == "clamp" and bias is not None
    if z.size:
        args = [("ptr", z), ("ptr", bias), ("ptr", y), ("i64", rows), ("i64", cols), ("i32", code), ("T", low),
                ("T", high), ("i32", int(write_z))]
        launcher.launch(name_expression("bias_activation", dtype), _grid_stride_blocks(launcher, z.size),
                        (ELEMENTWISE_THREADS, 1, 1), args, np.dtype(dtype))
    saved = {"none": None, "clamp": z}.get(activation, y)
    return y, saved


def clamp_forward(x, clamp_min: float | None = None, clamp_max: float | None = None, *, launcher=None):
    """Returns ``x`` clamped into [clamp_min, clamp_max] (None: no bound on that side)."""
    return _elementwise(launcher or default_launcher(), "clamp_forward", (x,), _bounds(clamp_min, clamp_max))


def clamp_backward(grad, x, clamp_min: float | None = None, clamp_max: float | None = None, *, launcher=None):
    """Returns ``grad`` where ``clamp_min <= x <= clamp_max`` and 0 elsewhere, in one pass."""
    return _elementwise(launcher or default_launcher(), "clamp_backward", (grad, x), _bounds(clamp_min, clamp_max))


def relu_backward(grad, y, *, launcher=None):
    """Returns ``grad`` where the saved output ``y`` of relu is positive and 0 elsewhere."""
    return _elementwise(launcher or default_launcher(), "relu_backward", (grad, y))


def sigmoid_forward(x, *, launcher=None):
    """Returns ``1 / (1 + exp(-x))``, finite and exact to rounding for any ``x``."""
    return _elementwise(launcher or default_launcher(), "sigmoid_forward", (x,))


def sigmoid_backward(grad, y, *, launcher=None):
    """Returns ``grad * (1 - y) * y`` from the saved output ``y`` of sigmoid."""
    return _elementwise(launcher or default_launcher(), "sigmoid_backward", (grad, y))
