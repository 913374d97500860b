"""multinomial, bernoulli, exponential_ and normal draw PyTorch's numbers for the same seed, bit for bit."""
import contextlib
import io
import textwrap

import numpy as np
import pytest

import gradcore

torch = pytest.importorskip("torch")

# The CPU generator's stream is what these tests compare; a device draws from its own.
pytestmark = pytest.mark.cpu_only

SEEDS = (0, 7, 2024)


def _both(program, seed: int, generator: bool = False):
    """Runs ``program(lib, generator)`` after seeding each library; returns the two results as numpy arrays."""
    results = []
    for lib in (gradcore, torch):
        lib.manual_seed(seed)
        gen = lib.Generator().manual_seed(seed + 1) if generator else None
        out = program(lib, gen)
        results.append([o.numpy() for o in (out if isinstance(out, tuple) else (out,))])
    return results


def _assert_same(program, seed: int, generator: bool = False) -> None:
    ours, theirs = _both(program, seed, generator)
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def _probabilities(lib, rows: int, categories: int, dtype, zeros: bool = False):
    rng = np.random.default_rng(rows * 100 + categories)
    p = rng.random((rows, categories)) ** 3
    if zeros:
        p[:, ::3] = 0
    return lib.tensor(p.astype(dtype))


MULTINOMIAL = {
    "one_sample_1d": lambda lib, g: lib.multinomial(_probabilities(lib, 1, 27, "float32")[0], 1, generator=g),
    "one_sample_rows": lambda lib, g: lib.multinomial(_probabilities(lib, 5, 27, "float32"), 1, True, generator=g),
    "with_replacement": lambda lib, g: lib.multinomial(_probabilities(lib, 3, 10, "float32"), 20, True,
                                                       generator=g),
    "with_replacement_f64_zeros": lambda lib, g: lib.multinomial(_probabilities(lib, 4, 7, "float64", True), 9,
                                                                 replacement=True, generator=g),
    "without_replacement": lambda lib, g: lib.multinomial(_probabilities(lib, 3, 30, "float32"), 6, generator=g),
    "without_replacement_all": lambda lib, g: _probabilities(lib, 2, 8, "float64").multinomial(8, generator=g),
    "unnormalized_weights": lambda lib, g: lib.multinomial(lib.tensor([1.0, 10.0, 3.0, 0.0]), 12, True,
                                                           generator=g),
    "transposed_one_sample": lambda lib, g: lib.multinomial(_probabilities(lib, 6, 4, "float32").t(), 1,
                                                            generator=g),
    "transposed_without_replacement": lambda lib, g: lib.multinomial(_probabilities(lib, 6, 4, "float64").t(), 3,
                                                                     generator=g),
    "transposed_with_replacement": lambda lib, g: lib.multinomial(_probabilities(lib, 6, 4, "float32").t(), 3,
                                                                  True, generator=g),
    "repeated_calls": lambda lib, g: tuple(lib.multinomial(_probabilities(lib, 1, 5, "float32")[0], 1, generator=g)
                                           for _ in range(4)),
}


@pytest.mark.parametrize("generator", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(MULTINOMIAL))
def test_multinomial_draws_pytorchs_numbers(name, seed, generator):
    _assert_same(MULTINOMIAL[name], seed, generator)


OTHER_DRAWS = {
    "bernoulli_f32": lambda lib, g: lib.bernoulli(_probabilities(lib, 4, 9, "float32"), generator=g),
    "bernoulli_f64": lambda lib, g: lib.bernoulli(_probabilities(lib, 4, 9, "float64"), generator=g),
    "bernoulli_scalar_p": lambda lib, g: lib.bernoulli(lib.zeros(5, 7), 0.3, generator=g),
    "bernoulli_inplace": lambda lib, g: lib.empty(40).bernoulli_(0.7, generator=g),
    "bernoulli_inplace_tensor": lambda lib, g: lib.empty(4, 9, dtype=lib.float64).bernoulli_(
        _probabilities(lib, 4, 9, "float32"), generator=g),
    "exponential": lambda lib, g: lib.empty(50).exponential_(generator=g),
    "exponential_transposed": lambda lib, g: lib.ones(3, 5).t().exponential_(generator=g),
    "exponential_permuted": lambda lib, g: lib.ones(2, 3, 4).permute(2, 0, 1).exponential_(2.0, generator=g),
    "bernoulli_transposed_p": lambda lib, g: lib.bernoulli(_probabilities(lib, 6, 4, "float32").t(), generator=g),
    "uniform__transposed": lambda lib, g: lib.zeros(3, 5).t().uniform_(-1, 1, generator=g),
    "normal__transposed_small": lambda lib, g: lib.zeros(3, 5).t().normal_(generator=g),
    "normal__transposed_large": lambda lib, g: lib.zeros(8, 4).t().normal_(1.0, 2.0, generator=g),
    "normal__sliced_f64": lambda lib, g: lib.zeros(8, 4, dtype=lib.float64)[:, :3].normal_(generator=g),
    "normal__strided": lambda lib, g: lib.zeros(40)[::2].normal_(generator=g),
    "bernoulli_inplace_transposed": lambda lib, g: lib.zeros(3, 5).t().bernoulli_(0.4, generator=g),
    "exponential_rate": lambda lib, g: lib.empty(3, 7, dtype=lib.float64).exponential_(3.0, generator=g),
    "exponential_small": lambda lib, g: lib.empty(3).exponential_(0.25, generator=g),
    "normal_numbers": lambda lib, g: lib.normal(2.0, 3.0, (5, 6), generator=g),
    "normal_numbers_small": lambda lib, g: lib.normal(-1.0, 0.5, size=(3,), generator=g),
    "normal_mean_tensor": lambda lib, g: lib.normal(lib.arange(20.0), generator=g),
    "normal_mean_tensor_std": lambda lib, g: lib.normal(lib.arange(6.0), 2.5, generator=g),
    "normal_std_tensor": lambda lib, g: lib.normal(1.5, lib.arange(1.0, 21.0), generator=g),
    "normal_both_tensors": lambda lib, g: lib.normal(lib.zeros(4, 1, dtype=lib.float64),
                                                    lib.ones(5, dtype=lib.float64) * 2, generator=g),
    "normal_f64_numbers": lambda lib, g: lib.normal(0.0, 1.0, (33,), dtype=lib.float64, generator=g),
}


@pytest.mark.parametrize("generator", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(OTHER_DRAWS))
def test_draws_pytorchs_numbers(name, seed, generator):
    _assert_same(OTHER_DRAWS[name], seed, generator)


def test_draws_continue_the_same_stream():
    """A sampler takes exactly PyTorch's number of words: later draws still agree."""
    def program(lib, g):
        a = lib.multinomial(lib.tensor([0.1, 0.5, 0.4]), 4, True)
        b = lib.empty(5).exponential_()
        c = lib.bernoulli(lib.full((6,), 0.5))
        d = lib.multinomial(lib.tensor([[0.1, 0.5, 0.4]]), 2)
        return a, b, c, d, lib.randn(3), lib.rand(17)

    for seed in SEEDS:
        _assert_same(program, seed)


SAMPLING_SCRIPT = textwrap.dedent("""
    import {lib} as torch
    g = torch.Generator().manual_seed(2147483647)
    letters = "abcdefghijklmnopqrstuvwxyz."
    counts = torch.ones((27, 27))
    for word in ["emma", "olivia", "ava", "isabella", "sophia", "charlotte", "mia", "amelia"]:
        chars = ["."] + list(word) + ["."]
        for a, b in zip(chars, chars[1:]):
            counts[letters.index(a), letters.index(b)] += 1
    probs = counts / counts.sum(1, keepdim=True)
    for _ in range(8):
        out, ix = [], 26
        while True:
            ix = torch.multinomial(probs[ix], num_samples=1, replacement=True, generator=g).item()
            out.append(letters[ix])
            if ix == 26:
                break
        print("".join(out))
""")


def test_char_level_sampling_loop_prints_the_same():
    """The sampling loop of a char-level bigram notebook, run as a script under each library."""
    outputs = []
    for lib in ("gradcore", "torch"):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(SAMPLING_SCRIPT.format(lib=lib), f"<{lib} sampling script>", "exec"), {})
        outputs.append(printed.getvalue())
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == 8


def _same_error(program):
    with pytest.raises(Exception) as expected:
        program(torch)
    with pytest.raises(type(expected.value)) as got:
        program(gradcore)
    assert str(got.value).splitlines()[0] == str(expected.value).splitlines()[0]


ERRORS = {
    "multinomial_3d": lambda lib: lib.multinomial(lib.ones(2, 2, 2), 1),
    "multinomial_int": lambda lib: lib.multinomial(lib.ones(3, dtype=lib.int64), 1),
    "multinomial_zero_samples": lambda lib: lib.multinomial(lib.ones(3), 0),
    "multinomial_too_many": lambda lib: lib.multinomial(lib.ones(3), 4),
    "multinomial_negative": lambda lib: lib.multinomial(lib.tensor([0.5, -0.1]), 1),
    "multinomial_nan": lambda lib: lib.multinomial(lib.tensor([0.5, float("nan")]), 1),
    "multinomial_zero_row": lambda lib: lib.multinomial(lib.zeros(2, 3), 1),
    "multinomial_replacement_negative": lambda lib: lib.multinomial(lib.tensor([0.5, -0.1]), 3, True),
    "multinomial_replacement_inf": lambda lib: lib.multinomial(lib.tensor([0.5, float("inf")]), 3, True),
    "multinomial_replacement_zero": lambda lib: lib.multinomial(lib.zeros(3), 3, True),
    "bernoulli_bad_p": lambda lib: lib.ones(3).bernoulli_(1.5),
    "bernoulli_bad_tensor": lambda lib: lib.bernoulli(lib.tensor([0.5, 2.0])),
    "exponential_zero_rate": lambda lib: lib.ones(3).exponential_(0.0),
    "exponential_negative_rate": lambda lib: lib.ones(3).exponential_(-1.0),
    "normal_negative_std": lambda lib: lib.normal(0.0, -1.0, (3,)),
    "normal_negative_std_tensor": lambda lib: lib.normal(lib.zeros(2), lib.tensor([1.0, -1.0])),
    "normal__negative_std": lambda lib: lib.ones(3).normal_(0, -1),
    "uniform__reversed": lambda lib: lib.ones(3).uniform_(2, 1),
    "uniform__leaf_requires_grad": lambda lib: lib.ones(3, requires_grad=True).uniform_(),
    "normal__leaf_requires_grad": lambda lib: lib.ones(3, requires_grad=True).normal_(),
    "bernoulli__leaf_requires_grad": lambda lib: lib.ones(3, requires_grad=True).bernoulli_(),
    "exponential__leaf_requires_grad": lambda lib: lib.ones(3, requires_grad=True).exponential_(),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_match_torch(name):
    _same_error(ERRORS[name])


def test_initialisers_on_leaves_work_without_grad():
    w = gradcore.ones(3, requires_grad=True)
    with gradcore.no_grad():
        w.uniform_(-1, 1)
        w.normal_(0, 0.1)
    assert w.requires_grad and w.is_leaf


def test_normal_with_tensor_arguments_passes_zero_gradients_as_pytorch():
    grads = []
    for lib in (gradcore, torch):
        mean = lib.zeros(3, requires_grad=True)
        std = lib.ones(3, requires_grad=True)
        (lib.normal(mean, std) + lib.normal(mean, 2.0) + lib.normal(1.0, std)).sum().backward()
        grads.append((mean.grad.numpy(), std.grad.numpy()))
    for ours, theirs in zip(*grads):
        np.testing.assert_array_equal(ours, theirs)
