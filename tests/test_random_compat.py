"""The CPU generator draws the numbers PyTorch's CPU generator draws for the same seed and the same calls.

The first tests need no PyTorch: they rebuild expected values from numpy's MT19937 and the documented
transforms, or check values printed in the seed documents. The tests after them compare with PyTorch itself.
"""

import math
from fractions import Fraction

import numpy as np
import pytest

import gradcore
from gradcore.backend.cpu import Backend
from gradcore.backend.cpu_random import CPUGenerator, fused_multiply_add_float32 as _fma32

SIZES = [1, 2, 15, 16, 17, 31, 32, 100, 1000]
SEEDS = [0, 1, 42, 20200910, 2**32 + 3, 2**63 + 11]


def reference_words(seed, n):
    """The first n 32-bit words of MT19937 seeded by init_genrand, through numpy's public RandomState."""
    key, pos = np.random.RandomState(seed & 0xFFFFFFFF).get_state()[1:3]
    bits = np.random.MT19937()
    bits.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": pos}}
    return [int(w) for w in bits.random_raw(n)]


def reference_words64(seed, n):
    words = reference_words(seed, 2 * n)
    return [(words[2 * i] << 32) | words[2 * i + 1] for i in range(n)]


# -- without PyTorch -----------------------------------------------------------------------------------------


def test_stream_is_mt19937_seeded_with_low_32_bits():
    # The reference MT19937 outputs: 3499211612 first for seed 5489, 2357136044 first for seed 0.
    assert CPUGenerator(5489).random_uint32(1).tolist() == [3499211612]
    assert CPUGenerator(0).random_uint32(3).tolist() == [2357136044, 2546248239, 3071714933]
    for seed in SEEDS:
        assert CPUGenerator(seed).random_uint32(700).tolist() == reference_words(seed, 700)
    assert CPUGenerator(2**40 + 7).random_uint32(5).tolist() == CPUGenerator(7).random_uint32(5).tolist()


def test_random_uint64_joins_two_words_first_high():
    assert CPUGenerator(9).random_uint64(4).tolist() == reference_words64(9, 4)


@pytest.mark.parametrize("seed", [0, 7, 20200910])
def test_rand_is_low_bits_of_words_scaled(seed):
    gradcore.manual_seed(seed)
    got32 = gradcore.rand(5).tolist()
    got64 = gradcore.rand(4, dtype=gradcore.float64).tolist()
    words = reference_words(seed, 5 + 8)
    assert got32 == [(w & (2**24 - 1)) * 2.0**-24 for w in words[:5]]
    words64 = [(words[5 + 2 * i] << 32) | words[5 + 2 * i + 1] for i in range(4)]
    assert got64 == [(w & (2**53 - 1)) * 2.0**-53 for w in words64]


def test_small_randn_is_elementwise_box_muller_with_cached_sine():
    seed = 123
    uniforms = [(w & (2**53 - 1)) * 2.0**-53 for w in reference_words64(seed, 6)]
    expected = []
    for k in range(3):
        u1, u2 = uniforms[2 * k], uniforms[2 * k + 1]
        radius = math.sqrt(-2.0 * math.log1p(-u2))
        expected += [radius * math.cos(2.0 * math.pi * u1), radius * math.sin(2.0 * math.pi * u1)]
    gradcore.manual_seed(seed)
    # 3 numbers keep the second pair's sine for the next call; 1 more uses it; 2 more make the third pair.
    f64 = gradcore.float64
    got = (gradcore.randn(3, dtype=f64).tolist() + gradcore.randn(1, dtype=f64).tolist()
           + gradcore.randn(2, dtype=f64).tolist())
    assert got == expected
    # manual_seed forgets the kept number.
    gradcore.manual_seed(seed)
    gradcore.randn(1)
    gradcore.manual_seed(seed)
    assert gradcore.randn(1, dtype=gradcore.float64).tolist() == expected[:1]


def test_large_randn_is_blockwise_box_muller_with_redone_last_block():
    seed, n = 5, 20
    uniforms = [(w & (2**53 - 1)) * 2.0**-53 for w in reference_words64(seed, n + 16)]

    def block(u):
        out = list(u)
        for j in range(8):
            radius = math.sqrt(-2.0 * math.log(1.0 - u[j]))
            out[j] = radius * math.cos(2.0 * math.pi * u[j + 8])
            out[j + 8] = radius * math.sin(2.0 * math.pi * u[j + 8])
        return out

    # 20 uniforms; the first 16 make a block; elements 4..19 are redone from 16 fresh uniforms.
    expected = block(uniforms[:16])[:4] + block(uniforms[20:36])
    gradcore.manual_seed(seed)
    got = gradcore.randn(n, dtype=gradcore.float64).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-15)


def test_seed_document_values():
    gradcore.manual_seed(20200910)
    values = gradcore.randn(3, 5)
    expected = [[0.2824, -0.3715, 0.9088, -1.7601, -0.1806],
                [2.0937, 1.0406, -1.7651, 1.1216, 0.8440],
                [0.1783, 0.6859, -1.5942, -0.2006, -0.4050]]
    np.testing.assert_allclose(values.numpy()[0], expected[0], rtol=0, atol=1e-4)
    np.testing.assert_allclose(values.numpy(), expected, rtol=0, atol=1e-4)


def test_reseeding_repeats_every_kind_of_draw():
    def draws():
        return (gradcore.rand(3, 7).tolist(), gradcore.randn(5).tolist(), gradcore.randn(40).tolist(),
                gradcore.randn(17, dtype=gradcore.float64).tolist(), gradcore.randint(0, 9, (6,)).tolist(),
                gradcore.randperm(12).tolist())

    gradcore.manual_seed(31)
    first = draws()
    gradcore.manual_seed(31)
    assert draws() == first
    gradcore.manual_seed(32)
    assert draws() != first


def test_randint_words_modulo_range():
    gradcore.manual_seed(4)
    small = gradcore.randint(-3, 4, (5,)).tolist()
    large = gradcore.randint(10, 10 + 2**28, (2,)).tolist()
    words = reference_words(4, 5 + 4)
    assert small == [w % 7 - 3 for w in words[:5]]
    assert large == [((words[5 + 2 * i] << 32 | words[6 + 2 * i]) % 2**28) + 10 for i in range(2)]


def test_randperm_is_a_permutation_from_front_fisher_yates():
    gradcore.manual_seed(8)
    got = gradcore.randperm(6).tolist()
    order = list(range(6))
    for i, word in enumerate(reference_words(8, 5)):
        j = i + word % (6 - i)
        order[i], order[j] = order[j], order[i]
    assert got == order
    assert gradcore.randperm(0).tolist() == [] and gradcore.randperm(1).tolist() == [0]


def test_initial_seed_and_seed_range():
    gradcore.manual_seed(20200910)
    assert gradcore.initial_seed() == 20200910
    gradcore.manual_seed(-1)
    assert gradcore.initial_seed() == 2**64 - 1
    with pytest.raises(ValueError):
        gradcore.manual_seed(2**64)
    # An unseeded generator picks a fresh seed, like PyTorch's default CPU generator.
    fresh = [Backend(np, "cpu") for _ in range(2)]
    seeds = [backend.initial_seed() for backend in fresh]
    assert all(0 <= seed < 2**64 for seed in seeds) and seeds[0] != seeds[1]
    assert fresh[0].rand((3,), np.float32).tolist() == CPUGenerator(seeds[0]).random(3, np.float32).tolist()


def test_fma32_rounds_once():
    # (1 + 2**-12)**2 = 1 + 2**-11 + 2**-24 lies halfway between two float32 numbers; a tiny addend decides.
    a = np.full(4, 1 + 2**-12, dtype=np.float32)
    c = np.array([2**-60, -(2**-60), 0.0, 2**-30], dtype=np.float32)
    got = _fma32(a, a, c)
    for x, z, g in zip(a, c, got):
        exact = Fraction(float(x)) ** 2 + Fraction(float(z))
        below, above = np.nextafter(g, np.float32(-1)), np.nextafter(g, np.float32(2))
        assert abs(Fraction(float(g)) - exact) <= abs(Fraction(float(below)) - exact)
        assert abs(Fraction(float(g)) - exact) <= abs(Fraction(float(above)) - exact)
    assert got[0] > got[1]


# -- against PyTorch -----------------------------------------------------------------------------------------


def _torch_exact_float32(torch):
    # PyTorch's float32 normal kernel on x86 with AVX2 (or AVX-512) is the one reproduced bit for bit;
    # its other builds compute the same numbers to float32 rounding.
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


def _assert_same(ours, theirs, exact=True):
    ours = ours.numpy() if hasattr(ours, "numpy") else np.asarray(ours)
    theirs = theirs.numpy()
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    if exact:
        np.testing.assert_array_equal(ours, theirs)
    else:
        np.testing.assert_allclose(ours.astype(np.float64), theirs.astype(np.float64), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_rand_randn_sequences_match_torch(seed):
    torch = pytest.importorskip("torch")
    exact = _torch_exact_float32(torch)
    pairs = [(gradcore.float32, torch.float32), (gradcore.float64, torch.float64),
             (gradcore.float16, torch.float16)]
    for ours_dtype, torch_dtype in pairs:
        gradcore.manual_seed(seed)
        torch.manual_seed(seed)
        # One long sequence of calls: later calls only match if every earlier one drew the same words.
        for n in SIZES + [3, 1, 5, 16, 1, 7, 0, 48]:
            blockwise_float32 = n >= 16 and ours_dtype is not gradcore.float64
            _assert_same(gradcore.randn(n, dtype=ours_dtype), torch.randn(n, dtype=torch_dtype),
                         exact or not blockwise_float32)
            _assert_same(gradcore.rand(n, dtype=ours_dtype), torch.rand(n, dtype=torch_dtype))
        _assert_same(gradcore.randn(3, 5, dtype=ours_dtype), torch.randn(3, 5, dtype=torch_dtype))
        _assert_same(gradcore.randn(4, 4, 3, dtype=ours_dtype), torch.randn(4, 4, 3, dtype=torch_dtype),
                     exact)
        _assert_same(gradcore.randn((), dtype=ours_dtype), torch.randn((), dtype=torch_dtype))


def test_cached_normal_is_shared_across_dtypes_and_survives_block_fills():
    torch = pytest.importorskip("torch")
    exact = _torch_exact_float32(torch)
    gradcore.manual_seed(77)
    torch.manual_seed(77)
    _assert_same(gradcore.randn(3), torch.randn(3))  # keeps a sine
    _assert_same(gradcore.randn(32), torch.randn(32), exact)  # block fill: leaves it
    _assert_same(gradcore.rand(5), torch.rand(5))
    _assert_same(gradcore.randn(1, dtype=gradcore.float64), torch.randn(1, dtype=torch.float64))  # uses it
    _assert_same(gradcore.randn(2), torch.randn(2))


def test_random_methods_and_like_functions_match_torch():
    torch = pytest.importorskip("torch")
    gradcore.manual_seed(2024)
    torch.manual_seed(2024)
    _assert_same(gradcore.randn_like(gradcore.zeros(2, 8)), torch.randn_like(torch.zeros(2, 8)))
    _assert_same(gradcore.rand_like(gradcore.zeros(3, dtype=gradcore.float64)),
                 torch.rand_like(torch.zeros(3, dtype=torch.float64)))
    _assert_same(gradcore.empty(40).normal_(), torch.empty(40).normal_())
    _assert_same(gradcore.empty(6).uniform_(), torch.empty(6).uniform_())


def test_randint_matches_torch():
    torch = pytest.importorskip("torch")
    for seed in (0, 20200910):
        gradcore.manual_seed(seed)
        torch.manual_seed(seed)
        for low, high, size in [(0, 10, (5,)), (-3, 3, (4, 4)), (0, 2**28 - 1, (6,)), (0, 2**28, (6,)),
                                (0, 2**31 - 1, (6,)), (0, 2**32, (6,)), (-2**40, 2**40, (9,)), (5, 6, (3,))]:
            _assert_same(gradcore.randint(low, high, size), torch.randint(low, high, size))
        _assert_same(gradcore.randint(10, (5,)), torch.randint(10, (5,)))
        _assert_same(gradcore.randint(0, 100, (7,), dtype=gradcore.int32),
                     torch.randint(0, 100, (7,), dtype=torch.int32))
        _assert_same(gradcore.randn(5), torch.randn(5))  # still in step


def test_randperm_matches_torch():
    torch = pytest.importorskip("torch")
    gradcore.manual_seed(3)
    torch.manual_seed(3)
    for n in (0, 1, 2, 3, 10, 100, 1000, 5000):
        _assert_same(gradcore.randperm(n), torch.randperm(n))
    _assert_same(gradcore.rand(4), torch.rand(4))


def test_initial_seed_matches_torch():
    torch = pytest.importorskip("torch")
    for seed in (0, 20200910, -5, 2**64 - 1):
        gradcore.manual_seed(seed)
        torch.manual_seed(seed)
        assert gradcore.initial_seed() == torch.initial_seed()
        _assert_same(gradcore.rand(3), torch.rand(3))


def test_large_tensors_match_torch():
    torch = pytest.importorskip("torch")
    exact = _torch_exact_float32(torch)
    gradcore.manual_seed(11)
    torch.manual_seed(11)
    _assert_same(gradcore.randn(100_003), torch.randn(100_003), exact)
    _assert_same(gradcore.randn(100_003, dtype=gradcore.float64), torch.randn(100_003, dtype=torch.float64))
    _assert_same(gradcore.rand(100_000, dtype=gradcore.float16), torch.rand(100_000, dtype=torch.float16))



@pytest.mark.parametrize("shape", [(3,), (15,), (16,), (17,), (100, 30)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("low, high", [(-0.3, 0.7), (-0.7, 0.7), (0.1, 5.3)])
def test_uniform_and_normal_with_arguments_match_torch(shape, dtype, low, high):
    torch = pytest.importorskip("torch")
    torch.manual_seed(5)
    gradcore.manual_seed(5)
    expected_uniform = torch.empty(shape, dtype=getattr(torch, dtype)).uniform_(low, high).numpy()
    expected_normal = torch.empty(shape, dtype=getattr(torch, dtype)).normal_(low, high).numpy()
    ours_uniform = gradcore.empty(shape, dtype=getattr(gradcore, dtype)).uniform_(low, high).numpy()
    ours_normal = gradcore.empty(shape, dtype=getattr(gradcore, dtype)).normal_(low, high).numpy()
    np.testing.assert_array_equal(ours_uniform, expected_uniform)
    np.testing.assert_array_equal(ours_normal, expected_normal)


def test_fused_multiply_add_float64_rounds_once():
    from fractions import Fraction as F

    from gradcore.backend.cpu_random import fused_multiply_add_float64

    rng = np.random.default_rng(1)
    a, b, c = rng.standard_normal((3, 2000))
    got = fused_multiply_add_float64(a, b, c)
    exact = [float(F(x) * F(y) + F(z)) for x, y, z in zip(a, b, c)]  # float() rounds the exact value once
    assert np.array_equal(got, np.array(exact))


def test_generator_objects_draw_their_own_stream_like_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = gradcore.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    gradcore.manual_seed(1)  # the global generator must not matter
    np.testing.assert_array_equal(gradcore.rand(5, generator=ours).numpy(), torch.rand(5, generator=theirs).numpy())
    np.testing.assert_array_equal(gradcore.randn(20, generator=ours).numpy(),
                                  torch.randn(20, generator=theirs).numpy())
    np.testing.assert_array_equal(gradcore.randperm(9, generator=ours).numpy(),
                                  torch.randperm(9, generator=theirs).numpy())
    np.testing.assert_array_equal(gradcore.randint(0, 50, (6,), generator=ours).numpy(),
                                  torch.randint(0, 50, (6,), generator=theirs).numpy())
    assert gradcore.Generator().initial_seed() == torch.Generator().initial_seed()


def test_manual_seed_returns_the_default_generator():
    generator = gradcore.manual_seed(3)
    assert generator is gradcore.default_generator
    assert generator.initial_seed() == 3
    first = gradcore.rand(4).tolist()
    generator.manual_seed(3)
    assert gradcore.rand(4).tolist() == first
    with pytest.raises(TypeError, match="gradcore.Generator"):
        gradcore.rand(2, generator=object())

