"""The CPU random generator: draws, for a given seed, the numbers PyTorch's CPU generator draws."""
from __future__ import annotations

import math

import numpy as np

# -- PyTorch's CPU generator -------------------------------------------------------------------------------
# A seed picks an MT19937 stream; uniform, normal and integer numbers are fixed transforms of its words.
# Drawing the same words in the same order and transforming them the same way gives, for the same seed, the
# numbers PyTorch prints, so that programs and printed examples written for PyTorch reproduce here.

_MASK_32 = 0xFFFFFFFF
_MT_STATE_WORDS = 624

# Normal tensors of at least this many elements are filled in blocks of this size; smaller ones element-wise.
_NORMAL_BLOCK = 16

# From this range on, integers are drawn from 64-bit words instead of 32-bit ones.
_INTEGERS_64_BIT_FROM = 1 << 28

# From this n on, a permutation draws 64-bit words (and shuffles another way) instead of 32-bit ones.
_PERMUTATION_64_BIT_FROM = _MASK_32 // 20

_f32 = np.float32

# The blockwise float32 normal kernel computes log, sin and cos with single-precision polynomial
# approximations; these are its constants, rounded to float32 as it holds them.
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

# The float64 kernel takes its logs from the C library; numpy's vectorised log can differ in the last bit.
_libm_log = np.frompyfunc(math.log, 1, 1)


def fused_multiply_add_float32(a, b, c):
    """Returns ``a * b + c`` of float32 operands rounded once to float32, as a fused multiply-add does."""
    product = np.asarray(a, np.float64) * np.asarray(b, np.float64)  # exact: 24 + 24 bits fit in 53
    c = np.asarray(c, np.float64)
    total = product + c
    # Rounding to 53 bits, then to 24, differs from one rounding only where the first lands exactly halfway
    # between two float32 values (last 29 bits: a one, then 28 zeros). There, move one unit towards the exact
    # sum (the first rounding's error, recovered by two-sum, says which way) so the second rounds its way.
    halfway = (total.view(np.uint64) & np.uint64(0x1FFFFFFF)) == np.uint64(0x10000000)
    if halfway.any():
        p, s, cc = (np.broadcast_to(v, total.shape)[halfway] for v in (product, total, c))
        back = s - p
        error = (p - (s - back)) + (cc - back)
        total[halfway] = np.where(error == 0, s, np.nextafter(s, np.where(error > 0, np.inf, -np.inf)))
    return total.astype(np.float32)


def fused_multiply_add_float64(a, b, c):
    """Returns ``a * b + c`` of float64 operands rounded once, as a fused multiply-add does.

    numpy has no float64 fma; error-free transformations recover the product's and the sum's rounding errors
    (Veltkamp splitting, two-sum) and add them back before the last rounding.
    """
    a, b, c = (np.asarray(v, np.float64) for v in (a, b, c))
    product = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    product_error = ((a_hi * b_hi - product) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    total = product + c
    back = total - product
    sum_error = (product - (total - back)) + (c - back)
    return total + (sum_error + product_error)


def _split(x):
    # Splits a float64 into two halves of 26 bits whose products with another half are exact.
    scaled = x * 134217729.0  # 2**27 + 1
    high = scaled - (scaled - x)
    return high, x - high


def _log_float32(x):
    """Returns log(x) for float32 ``x`` in (0, 1], computed step for step as the float32 kernel does."""
    bits = x.view(np.uint32)
    # x = m * 2**e with m in [0.5, 1); an m below sqrt(1/2) is doubled so that log(m) is taken near 0.
    exponent = ((bits >> 23).astype(np.int32) - 127).astype(np.float32) + _f32(1)
    m = ((bits & np.uint32(0x807FFFFF)) | np.uint32(0x3F000000)).view(np.float32)
    small = m < _SQRT_HALF
    exponent = exponent - small.astype(np.float32)
    m = (m - _f32(1)) + np.where(small, m, _f32(0))
    z = m * m
    y = np.full_like(m, _LOG_POLY[0])
    for coefficient in _LOG_POLY[1:]:
        y = fused_multiply_add_float32(y, m, coefficient)
    y = fused_multiply_add_float32(y * m, z, exponent * _LOG_Q1)
    # z * 0.5 and exponent * q2 are exact, so these two steps round the same fused or not.
    y = y - z * _f32(0.5)
    return (m + y) + exponent * _LOG_Q2


def _sincos_float32(theta):
    """Returns (sin, cos) of float32 ``theta`` in [0, 2 pi), computed step for step as the kernel does."""
    # Reduce to x in [-pi/4, pi/4] around an even multiple j of pi/4, subtracting pi/4 in three parts so
    # that no bits are lost.
    octant = (theta * _FOUR_OVER_PI).astype(np.int32)
    octant = (octant + 1) & ~1
    y = octant.astype(np.float32)
    x = theta
    for part in _MINUS_PI_OVER_4_PARTS:
        x = fused_multiply_add_float32(y, part, x)
    z = x * x
    cos_x = fused_multiply_add_float32(fused_multiply_add_float32(_COS_POLY[0], z, _COS_POLY[1]), z, _COS_POLY[2])
    cos_x = fused_multiply_add_float32(z, z * cos_x, -(z * _f32(0.5))) + _f32(1)
    sin_x = fused_multiply_add_float32(fused_multiply_add_float32(_SIN_POLY[0], z, _SIN_POLY[1]), z, _SIN_POLY[2])
    sin_x = fused_multiply_add_float32(x, z * sin_x, x)
    # The octant says which polynomial gives the sine and which the cosine, and their signs.
    swap = (octant & 2) != 0
    sin = np.where(swap, cos_x, sin_x)
    cos = np.where(swap, sin_x, cos_x)
    sin = np.where((octant & 4) != 0, -sin, sin)
    cos = np.where(((octant - 2) & 4) == 0, -cos, cos)
    return sin, cos


def _normal_blocks_float32(blocks):
    """Returns normal float32 numbers made from uniform float32 ``blocks`` of shape (k, 16) by Box-Muller.

    In each block, u1 = 1 - block[j] and u2 = block[j + 8] (j < 8) give a radius sqrt(-2 log u1) and an
    angle 2 pi u2; element j becomes radius * cos, element j + 8 radius * sin. The float32 arithmetic
    (polynomial approximations, fused multiply-adds) reproduces PyTorch's vectorised x86 kernel bit for bit.
    """
    u1 = _f32(1) - blocks[:, :8]  # exact, and never 0 since uniforms are below 1
    radius = np.sqrt(_f32(-2) * _log_float32(u1))
    sin, cos = _sincos_float32(_TWO_PI * blocks[:, 8:])
    return np.concatenate([radius * cos, radius * sin], axis=1)


def _normal_blocks_float64(blocks):
    """Returns normal float64 numbers made from uniform float64 ``blocks`` of shape (k, 16) by Box-Muller."""
    u1 = 1.0 - blocks[:, :8]  # exact, and never 0
    radius = np.sqrt(-2.0 * _libm_log(u1).astype(np.float64))
    theta = 2.0 * math.pi * blocks[:, 8:]
    return np.concatenate([radius * np.cos(theta), radius * np.sin(theta)], axis=1)


def _mt19937_key(seed: int) -> np.ndarray:
    """Returns the 624-word MT19937 state that the standard initialisation (init_genrand) makes of a seed."""
    key = np.empty(_MT_STATE_WORDS, dtype=np.uint32)
    word = seed & _MASK_32  # only the low 32 bits of the seed count
    key[0] = word
    for i in range(1, _MT_STATE_WORDS):
        word = (1812433253 * (word ^ (word >> 30)) + i) & _MASK_32
        key[i] = word
    return key


def _shape(size) -> tuple:
    """Returns ``size`` (None, an int or a sequence of ints) as a shape tuple."""
    if size is None:
        return ()
    if isinstance(size, (int, np.integer)):
        return (int(size),)
    return tuple(int(s) for s in size)


class CPUGenerator:
    """PyTorch's CPU generator: for the same seed and the same calls, the same numbers.

    Its methods take the arguments of numpy's ``Generator`` methods that the backend calls (``random``,
    ``standard_normal``, ``integers``, ``permutation``), so a backend may hold either kind of generator.
    """

    def __init__(self, seed: int) -> None:
        # numpy's MT19937 runs the recurrence and tempering once it holds the state init_genrand makes.
        self._bits = np.random.MT19937(0)
        self._bits.state = {"bit_generator": "MT19937",
                            "state": {"key": _mt19937_key(seed), "pos": _MT_STATE_WORDS}}
        # Box-Muller makes normal numbers in pairs; the element-wise path keeps the second for the next draw.
        self._next_normal: float | None = None

    # -- words ----------------------------------------------------------------------------------------
    def random_uint32(self, n: int) -> np.ndarray:
        """Returns the next ``n`` 32-bit words of the stream, as uint64."""
        return self._bits.random_raw(int(n))

    def random_uint64(self, n: int) -> np.ndarray:
        """Returns ``n`` 64-bit words, each made of two consecutive 32-bit words, the first one high."""
        words = self.random_uint32(2 * int(n))
        return (words[0::2] << np.uint64(32)) | words[1::2]

    # -- uniform --------------------------------------------------------------------------------------
    def _uniform_float32(self, n: int) -> np.ndarray:
        # The low 24 bits of a 32-bit word (a float32's precision) scaled into [0, 1): exact in float32.
        words = self.random_uint32(n) & np.uint64(0xFFFFFF)
        return words.astype(np.float32) * _f32(2.0**-24)

    def _uniform_float64(self, n: int) -> np.ndarray:
        # The low 53 bits of a 64-bit word (a float64's precision) scaled into [0, 1): exact in float64.
        words = self.random_uint64(n) & np.uint64((1 << 53) - 1)
        return words.astype(np.float64) * 2.0**-53

    def random(self, size=None, dtype=np.float64) -> np.ndarray:
        """Returns uniform numbers in [0, 1) of shape ``size``, drawn one element after the other in C order.

        float64 takes a 64-bit word per element, float32 a 32-bit word; float16 rounds the float32 number
        and wraps the ones that round up to 1 to 0.
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

    # -- normal ---------------------------------------------------------------------------------------
    def _normal_one(self) -> float:
        # Box-Muller in float64 on two 53-bit uniforms: the cosine now, the sine at the next call.
        if self._next_normal is not None:
            value, self._next_normal = self._next_normal, None
            return value
        u1, u2 = self._uniform_float64(2).tolist()
        radius = math.sqrt(-2.0 * math.log1p(-u2))
        theta = 2.0 * math.pi * u1
        self._next_normal = radius * math.sin(theta)
        return radius * math.cos(theta)

    def _normal_fill(self, n: int, dtype) -> np.ndarray:
        # Box-Muller on each whole block of 16 uniforms. A ragged end is redone as one more block over the
        # last 16 elements, from 16 fresh uniforms, overwriting part of the block before it. float32 and
        # float64 first draw a uniform for every element, the ragged end's too; float16, which computes each
        # block in a float32 buffer, draws for the whole blocks only.
        if dtype == np.float64:
            uniform, transform = self._uniform_float64, _normal_blocks_float64
        else:
            uniform, transform = self._uniform_float32, _normal_blocks_float32
        whole = n - n % _NORMAL_BLOCK
        values = uniform(whole if dtype == np.float16 else n)
        values[:whole] = transform(values[:whole].reshape(-1, _NORMAL_BLOCK)).reshape(-1)
        if whole != n:
            tail = transform(uniform(_NORMAL_BLOCK).reshape(1, _NORMAL_BLOCK)).reshape(-1)
            values = np.concatenate([values[:n - _NORMAL_BLOCK], tail])
        return values

    def standard_normal_one_by_one(self, n: int) -> np.ndarray:
        """Returns ``n`` float64 standard normal numbers drawn one after the other (Box-Muller pairs, the second
        kept for the next draw): what PyTorch draws for a tensor that is not contiguous, whatever its size."""
        return np.array([self._normal_one() for _ in range(int(n))], dtype=np.float64)

    def standard_normal(self, size=None, dtype=np.float64) -> np.ndarray:
        """Returns standard normal numbers of shape ``size``.

        Fewer than 16 elements are drawn one by one (float64 Box-Muller that keeps the pair's second number
        for the next draw); 16 or more are filled blockwise in the dtype's precision (float32 for float16).
        """
        shape = _shape(size)
        n = math.prod(shape)
        dtype = np.dtype(dtype)
        if n < _NORMAL_BLOCK:
            values = np.array([self._normal_one() for _ in range(n)], dtype=np.float64)
            if dtype == np.float16:
                values = values.astype(np.float32)  # float16 is rounded from the float32 number
        elif dtype in (np.float64, np.float32, np.float16):
            values = self._normal_fill(n, dtype)
        else:
            values = self._normal_fill(n, np.float64)
        return values.astype(dtype, copy=False).reshape(shape)

    # -- integers -------------------------------------------------------------------------------------
    def integers(self, low, high=None, size=None) -> np.ndarray:
        """Returns int64 integers drawn uniformly from [low, high) (from [0, low) without ``high``).

        Each is ``low`` plus a word modulo the range: a 32-bit word, or a 64-bit one from a range of 2**28 on.
        """
        if high is None:
            low, high = 0, low
        low, high = int(low), int(high)
        if low >= high:
            raise RuntimeError(
                f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
        shape = _shape(size)
        n = math.prod(shape)
        span = high - low
        # 32-bit words modulo a range this large would favour the low values by up to 6%.
        words = self.random_uint64(n) if span >= _INTEGERS_64_BIT_FROM else self.random_uint32(n)
        return ((words % np.uint64(span)).astype(np.int64) + np.int64(low)).reshape(shape)

    def permutation(self, n) -> np.ndarray:
        """Returns a random permutation of 0 .. n-1 as int64, shuffled the way PyTorch's CPU randperm is."""
        n = int(n)
        if n < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
        # Each swap depends on the ones before it, so the swaps run one by one (the words are drawn at once).
        if n < _PERMUTATION_64_BIT_FROM:
            # Fisher-Yates from the front: position i swaps with position i + (word mod (n - i)).
            offsets = self.random_uint32(max(n - 1, 0)) % np.arange(n, 1, -1, dtype=np.uint64)
            order = list(range(n))
            for i, offset in enumerate(offsets.tolist()):
                j = i + offset
                order[i], order[j] = order[j], order[i]
        else:
            # Inside-out Fisher-Yates: i goes to slot (word mod (i + 1)), whose value moves to position i.
            slots = self.random_uint64(n) % np.arange(1, n + 1, dtype=np.uint64)
            order = [0] * n
            for i, slot in enumerate(slots.tolist()):
                order[i] = order[slot]
                order[slot] = i
        return np.array(order, dtype=np.int64)

