"""The CPU backend: numpy arrays, and a random generator that draws the same numbers as PyTorch's CPU generator."""
from __future__ import annotations

import math

import numpy as np

# -- PyTorch's CPU generator -------------------------------------------------------------------------------------
# A seed picks an MT19937 stream; uniform, normal and integer numbers are fixed transforms of that stream. Drawing
# the same 32-bit words in the same order and transforming them the same way gives the numbers PyTorch prints for
# the same seed, which is what lets snippets written for PyTorch run unchanged.

_MASK_32 = 0xFFFFFFFF
_MT_STATE_WORDS = 624

# A normal tensor with at least this many elements is filled by the blockwise kernel, a smaller one element by element.
_NORMAL_BLOCK = 16

# From this range on, integers draw 64-bit words instead of 32-bit ones.
_INTEGERS_64_BIT_FROM = 1 << 28

# Below this n a permutation draws 32-bit words; above it the modulo bias of 32-bit words would show, so 64-bit ones.
_PERMUTATION_64_BIT_FROM = _MASK_32 // 20

_f32 = np.float32

# Single-precision constants of the blockwise normal kernel: the Cephes approximations of log, sin and cos
# (as float32, since the kernel computes in float32).
_TWO_PI = _f32(2 * math.pi)
_SQRT_HALF = _f32(0.707106781186547524)
_LOG_POLY = tuple(_f32(c) for c in (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
                                     1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
                                     3.3333331174e-1))
_LOG_Q1 = _f32(-2.12194440e-4)
_LOG_Q2 = _f32(0.693359375)
_FOUR_OVER_PI = _f32(1.27323954473516)
_MINUS_PI_OVER_4_PARTS = (_f32(-0.78515625), _f32(-2.4187564849853515625e-4), _f32(-3.77489497744594108e-8))
_COS_POLY = (_f32(2.443315711809948e-5), _f32(-1.388731625493765e-3), _f32(4.166664568298827e-2))
_SIN_POLY = (_f32(-1.9515295891e-4), _f32(8.3321608736e-3), _f32(-1.6666654611e-1))

# One log per element through the C library: numpy's own vectorised log may differ from it in the last bit.
_libm_log = np.frompyfunc(math.log, 1, 1)


def _fma32(a, b, c):
    """Returns ``a * b + c`` for float32 operands, rounded once to float32 as a fused multiply-add rounds it."""
    product = np.asarray(a, np.float64) * np.asarray(b, np.float64)  # exact: 24 + 24 bits fit in 53
    c = np.asarray(c, np.float64)
    total = product + c
    # Rounding to 53 bits and then to 24 differs from one rounding only where the first lands exactly halfway
    # between two float32 values (the last 29 bits are 1 then 28 zeros). There, step one unit towards the exact
    # value (its sign is the first rounding's error, recovered by two-sum) so the second rounding goes its way.
    halfway = (total.view(np.uint64) & np.uint64(0x1FFFFFFF)) == np.uint64(0x10000000)
    if halfway.any():
        p, s, cc = (np.broadcast_to(v, total.shape)[halfway] for v in (product, total, c))
        back = s - p
        error = (p - (s - back)) + (cc - back)
        total[halfway] = np.where(error == 0, s, np.nextafter(s, np.where(error > 0, np.inf, -np.inf)))
    return total.astype(np.float32)


def _log_float32(x):
    """Returns log(x) for float32 ``x`` in (0, 1], computed as PyTorch's vectorised float32 kernel computes it."""
    bits = x.view(np.uint32)
    # x = m * 2**e with m in [0.5, 1); m below sqrt(1/2) is doubled so that log(m) is taken near 0.
    exponent = ((bits >> 23).astype(np.int32) - 127).astype(np.float32) + _f32(1)
    m = ((bits & np.uint32(0x807FFFFF)) | np.uint32(0x3F000000)).view(np.float32)
    small = m < _SQRT_HALF
    exponent = exponent - small.astype(np.float32)
    m = (m - _f32(1)) + np.where(small, m, _f32(0))
    z = m * m
    y = np.full_like(m, _LOG_POLY[0])
    for coefficient in _LOG_POLY[1:]:
        y = _fma32(y, m, coefficient)
    y = _fma32(y * m, z, exponent * _LOG_Q1)
    # z * 0.5 and exponent * q2 are exact, so the fused forms of the next two steps round the same as these.
    y = y - z * _f32(0.5)
    return (m + y) + exponent * _LOG_Q2


def _sincos_float32(theta):
    """Returns (sin, cos) of float32 ``theta`` in [0, 2*pi), computed as PyTorch's vectorised float32 kernel does."""
    # Reduce to x in [-pi/4, pi/4] around j * pi/4, j even; pi/4 is subtracted in three parts to keep the bits.
    octant = (theta * _FOUR_OVER_PI).astype(np.int32)
    octant = (octant + 1) & ~1
    y = octant.astype(np.float32)
    x = theta
    for part in _MINUS_PI_OVER_4_PARTS:
        x = _fma32(y, part, x)
    z = x * x
    cos_x = _fma32(_fma32(_COS_POLY[0], z, _COS_POLY[1]), z, _COS_POLY[2])
    cos_x = _fma32(z, z * cos_x, -(z * _f32(0.5))) + _f32(1)
    sin_x = _fma32(_fma32(_SIN_POLY[0], z, _SIN_POLY[1]), z, _SIN_POLY[2])
    sin_x = _fma32(x, z * sin_x, x)
    # Which polynomial gives sin and which cos, and their signs, follow from the octant.
    swap = (octant & 2) != 0
    sin = np.where(swap, cos_x, sin_x)
    cos = np.where(swap, sin_x, cos_x)
    sin = np.where((octant & 4) != 0, -sin, sin)
    cos = np.where(((octant - 2) & 4) == 0, -cos, cos)
    return sin, cos


def _normal_blocks_float32(blocks):
    """Returns normal numbers from uniform float32 ``blocks`` of shape (k, 16), Box-Muller within each block.

    Each block pairs u1 = 1 - blocks[:, j] with u2 = blocks[:, j + 8]: radius sqrt(-2 log u1), angle 2 pi u2;
    element j gets radius * cos, element j + 8 radius * sin. The float32 arithmetic (Cephes approximations and
    fused multiply-adds) reproduces PyTorch's vectorised x86 kernel bit for bit.
    """
    u1 = _f32(1) - blocks[:, :8]  # exact, and never 0: uniforms are below 1
    radius = np.sqrt(_f32(-2) * _log_float32(u1))
    sin, cos = _sincos_float32(_TWO_PI * blocks[:, 8:])
    return np.concatenate([radius * cos, radius * sin], axis=1)


def _normal_blocks_float64(blocks):
    """Returns normal numbers from uniform float64 ``blocks`` of shape (k, 16), Box-Muller within each block."""
    u1 = 1.0 - blocks[:, :8]  # exact, and never 0
    radius = np.sqrt(-2.0 * _libm_log(u1).astype(np.float64))
    theta = 2.0 * math.pi * blocks[:, 8:]
    return np.concatenate([radius * np.cos(theta), radius * np.sin(theta)], axis=1)


def _mt19937_key(seed: int) -> np.ndarray:
    """Returns the 624-word MT19937 state that the standard initialisation (init_genrand) makes of a 32-bit seed."""
    key = np.empty(_MT_STATE_WORDS, dtype=np.uint32)
    word = seed & _MASK_32
    key[0] = word
    for i in range(1, _MT_STATE_WORDS):
        word = (1812433253 * (word ^ (word >> 30)) + i) & _MASK_32
        key[i] = word
    return key


class CPUGenerator:
    """PyTorch's CPU random generator: same seed and same calls, same numbers.

    Its methods take the arguments of numpy's ``Generator`` that the backend uses (``random``, ``standard_normal``,
    ``integers``, ``permutation``), so a backend can hold either.
    """

    def __init__(self, seed: int) -> None:
        # The stream is MT19937 seeded by init_genrand with the seed's low 32 bits; numpy's MT19937 runs the
        # recurrence once it holds that state.
        self._bits = np.random.MT19937(0)
        self._bits.state = {"bit_generator": "MT19937", "state": {"key": _mt19937_key(seed), "pos": _MT_STATE_WORDS}}
        # Box-Muller makes normal numbers in pairs; the element-wise path keeps the second for the next draw.
        self._next_normal: float | None = None

    # -- raw words ------------------------------------------------------------------------------------------
    def random_uint32(self, n: int) -> np.ndarray:
        """Returns the next ``n`` 32-bit words of the stream (as uint64)."""
        return self._bits.random_raw(int(n))

    def random_uint64(self, n: int) -> np.ndarray:
        """Returns ``n`` 64-bit words, each made of two consecutive 32-bit words (the first is the high half)."""
        words = self.random_uint32(2 * int(n))
        return (words[0::2] << np.uint64(32)) | words[1::2]

    # -- uniform --------------------------------------------------------------------------------------------
    def _uniform_float32(self, n: int) -> np.ndarray:
        # 24 random bits (a float32's precision) per 32-bit word, scaled into [0, 1): exact in float32.
        words = self.random_uint32(n) & np.uint64(0xFFFFFF)
        return words.astype(np.float32) * _f32(2.0**-24)

    def _uniform_float64(self, n: int) -> np.ndarray:
        # 53 random bits (a float64's precision) per 64-bit word, scaled into [0, 1): exact in float64.
        words = self.random_uint64(n) & np.uint64((1 << 53) - 1)
        return words.astype(np.float64) * 2.0**-53

    def random(self, size=None, dtype=np.float64) -> np.ndarray:
        """Returns uniform numbers in [0, 1) of shape ``size``, drawn element after element in C order.

        float64 takes a 64-bit word per element; float32 a 32-bit word, and so does float16: its float32 value
        rounded to float16, where a value that rounds up to 1 wraps to 0.
        """
        shape = _shape(size)
        n = math.prod(shape)
        dtype = np.dtype(dtype)
        if dtype == np.float16:
            values = self._uniform_float32(n).astype(np.float16)
            values[values == 1] = 0
        elif dtype == np.float32:
            values = self._uniform_float32(n)
        else:
            values = self._uniform_float64(n)
        return values.astype(dtype, copy=False).reshape(shape)

    # -- normal ---------------------------------------------------------------------------------------------
    def _normal_one(self) -> float:
        # Element-wise Box-Muller in float64: two 53-bit uniforms give a pair; cos now, sin at the next call.
        if self._next_normal is not None:
            value, self._next_normal = self._next_normal, None
            return value
        u1, u2 = self._uniform_float64(2).tolist()
        radius = math.sqrt(-2.0 * math.log1p(-u2))
        theta = 2.0 * math.pi * u1
        self._next_normal = radius * math.sin(theta)
        return radius * math.cos(theta)

    def _normal_fill(self, n: int, dtype) -> np.ndarray:
        # Box-Muller on each whole block of 16 uniforms; a ragged tail is redone as one more block over the last
        # 16 elements, with 16 fresh uniforms, overwriting part of the previous block. float32 and float64 first
        # draw a uniform for every element, tail included; float16 draws only for the whole blocks (it computes
        # each block in a float32 buffer).
        if dtype == np.float64:
            uniform, transform = self._uniform_float64, _normal_blocks_float64
        else:
            uniform, transform = self._uniform_float32, _normal_blocks_float32
        whole = n - n % _NORMAL_BLOCK
        values = uniform(whole if dtype == np.float16 else n)
        values[:whole] = transform(values[:whole].reshape(-1, _NORMAL_BLOCK)).reshape(-1)
        if whole != n:
            values = np.resize(values, n)
            values[n - _NORMAL_BLOCK:] = transform(uniform(_NORMAL_BLOCK).reshape(1, _NORMAL_BLOCK)).reshape(-1)
        return values

    def standard_normal(self, size=None, dtype=np.float64) -> np.ndarray:
        """Returns standard normal numbers of shape ``size``.

        Fewer than 16 elements are drawn one by one (float64 Box-Muller, keeping the pair's second number for the
        next draw); 16 or more are filled blockwise in the dtype's precision (float16 computes in float32).
        """
        shape = _shape(size)
        n = math.prod(shape)
        dtype = np.dtype(dtype)
        if n < _NORMAL_BLOCK:
            values = np.array([self._normal_one() for _ in range(n)], dtype=np.float64)
            if dtype == np.float16:
                values = values.astype(np.float32)  # float16 values are made from float32 ones: round the same way
        elif dtype in (np.float64, np.float32, np.float16):
            values = self._normal_fill(n, dtype)
        else:
            values = self._normal_fill(n, np.float64)
        return values.astype(dtype, copy=False).reshape(shape)

    # -- integers -------------------------------------------------------------------------------------------
    def integers(self, low, high=None, size=None) -> np.ndarray:
        """Returns int64 integers drawn uniformly from [low, high) (from [0, low) without ``high``).

        Each element is a word modulo the range: a 32-bit word, or a 64-bit one from a range of 2**28 on.
        """
        if high is None:
            low, high = 0, low
        low, high = int(low), int(high)
        if low >= high:
            raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
        shape = _shape(size)
        n = math.prod(shape)
        span = high - low
        # A 32-bit word modulo a range this large would favour small values by up to ~6%; 64 bits make that negligible.
        words = self.random_uint64(n) if span >= _INTEGERS_64_BIT_FROM else self.random_uint32(n)
        return ((words % np.uint64(span)).astype(np.int64) + np.int64(low)).reshape(shape)

    def permutation(self, n) -> np.ndarray:
        """Returns a random permutation of 0 .. n-1 (int64), shuffled as PyTorch's randperm shuffles on the CPU."""
        n = int(n)
        if n < 0:
            raise RuntimeError(f"n must be non-negative, got{n}")
        if n < _PERMUTATION_64_BIT_FROM:
            # Fisher-Yates from the front: position i swaps with i + (word mod (n - i)).
            offsets = (self.random_uint32(max(n - 1, 0)) % np.arange(n, 1, -1, dtype=np.uint64)).tolist()
            order = list(range(n))
            for i, offset in enumerate(offsets):
                j = i + offset
                order[i], order[j] = order[j], order[i]
        else:
            # "Inside-out" Fisher-Yates: element i lands at a slot chosen among the first i + 1.
            slots = (self.random_uint64(n) % np.arange(1, n + 1, dtype=np.uint64)).tolist()
            order = [0] * n
            for i, slot in enumerate(slots):
                order[i] = order[slot]
                order[slot] = i
        return np.array(order, dtype=np.int64)


def _shape(size) -> tuple:
    """Returns ``size`` (None, an int or a sequence of ints) as a shape tuple."""
    if size is None:
        return ()
    if isinstance(size, (int, np.integer)):
        return (int(size),)
    return tuple(int(s) for s in size)


class Backend:
    """What one device needs from its array library: creation, random numbers, transfers.

    The CPU backend is this class over numpy; the CUDA backend subclasses it over CuPy.
    """

    def __init__(self, xp, device_type: str, index: int | None = None) -> None:
        self.xp = xp
        self.device_type = device_type
        self.index = index
        self._generator = None
        self._seed = None

    # -- devices ---------------------------------------------------------------------------------
    @property
    def device(self):
        from . import device

        return device(self.device_type, self.index)

    # -- creation --------------------------------------------------------------------------------
    def asarray(self, data, dtype=None):
        """Returns an array of this device (a copy only when needed) with a numpy dtype."""
        return self.xp.asarray(data, dtype=dtype)

    def array(self, data, dtype=None):
        """Returns a new array of this device that owns its memory."""
        return self.xp.array(data, dtype=dtype, copy=True)

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        return self.xp.zeros(shape, dtype=dtype)

    def ones(self, shape, dtype):
        return self.xp.ones(shape, dtype=dtype)

    def full(self, shape, value, dtype):
        return self.xp.full(shape, value, dtype=dtype)

    def arange(self, start, end, step, dtype):
        return self.xp.arange(start, end, step, dtype=dtype)

    def linspace(self, start, end, steps, dtype):
        return self.xp.linspace(start, end, steps, dtype=dtype)

    def eye(self, n, m, dtype):
        return self.xp.eye(n, m, dtype=dtype)

    # -- random numbers --------------------------------------------------------------------------
    def manual_seed(self, seed: int) -> None:
        """Re-seeds this device's generator; seeds are 64-bit, negative ones taken modulo 2**64 as PyTorch takes them."""
        seed = int(seed)
        if not -(1 << 63) <= seed < 1 << 64:
            raise ValueError("Overflow when unpacking long long")
        self._seed = seed % (1 << 64)
        self._generator = self._make_generator(self._seed)

    def _make_generator(self, seed):
        return CPUGenerator(seed)

    @property
    def generator(self):
        """Returns this device's generator, seeding it the first time from the OS like PyTorch's default generator."""
        if self._generator is None:
            self.manual_seed(np.random.SeedSequence().entropy % (1 << 64))
        return self._generator

    def initial_seed(self) -> int:
        """Returns the seed of this device's generator (the one given to manual_seed, or the one picked for it)."""
        self.generator  # noqa: B018  (creates the generator and its seed)
        return self._seed

    def rand(self, shape, dtype):
        """Returns uniform numbers in [0, 1)."""
        return self.generator.random(shape, dtype=dtype)

    def randn(self, shape, dtype):
        """Returns standard normal numbers."""
        return self.generator.standard_normal(shape, dtype=dtype)

    def randint(self, low, high, shape, dtype):
        """Returns integers drawn uniformly from [low, high)."""
        return self.generator.integers(low, high, size=shape).astype(dtype, copy=False)

    def permutation(self, n):
        """Returns a random permutation of 0 .. n-1."""
        return self.generator.permutation(n)

    # -- memory and transfers --------------------------------------------------------------------
    def to_numpy(self, array):
        return array

    def from_host_or_device(self, array):
        return np.asarray(array)

    def data_ptr(self, array) -> int:
        return array.__array_interface__["data"][0]

    def scatter_add(self, target, index, values) -> None:
        """Adds ``values`` into ``target[index]``, accumulating repeated indices."""
        np.add.at(target, index, values)

    def synchronize(self) -> None:
        pass


CPU_BACKEND = Backend(np, "cpu")
