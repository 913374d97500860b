"""Backward formulas compute on the arrays when no graph is recorded, and through ops under create_graph=True.

Both ways must give the same gradients, bit for bit, and only the second may be differentiated again.
"""

import numpy as np
import pytest

import gradcore


def leaf(shape, seed, low=0.5, high=2.0, dtype=gradcore.float32):
    values = np.random.default_rng(seed).uniform(low, high, size=shape)
    return gradcore.tensor(values, dtype=dtype, requires_grad=True)


CASES = {
    "mul_scalar": lambda a, b: a * 1.001,
    "mul_int_scalar": lambda a, b: a * 3,
    "mul_broadcast": lambda a, b: a * b,
    "add_alpha": lambda a, b: gradcore.add(a, b, alpha=0.5),
    "sub": lambda a, b: a - b,
    "rsub_scalar": lambda a, b: 2.0 - a,
    "sub_alpha": lambda a, b: gradcore.sub(a, b, alpha=3),
    "div": lambda a, b: a / b,
    "rdiv_scalar": lambda a, b: 1.0 / a,
    "pow_2": lambda a, b: a.pow(2),
    "pow_3": lambda a, b: a ** 3,
    "pow_half": lambda a, b: a ** 0.5,
    "pow_0": lambda a, b: a ** 0,
    "pow_tensor": lambda a, b: a ** b,
    "neg": lambda a, b: -a,
    "exp": lambda a, b: a.exp(),
    "log": lambda a, b: a.log(),
    "sqrt": lambda a, b: a.sqrt(),
    "tanh": lambda a, b: a.tanh(),
    "sum_dim": lambda a, b: a.sum(dim=1),
    "sum_keepdim": lambda a, b: a.sum(dim=0, keepdim=True) * b,
    "mean": lambda a, b: a.mean(dim=1),
    "mean_all": lambda a, b: a.mean(),
}


@pytest.mark.parametrize("dtype", [gradcore.float32, gradcore.float64], ids=str)
@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_agree_with_and_without_a_graph(name, dtype):
    fn = CASES[name]
    a, b = leaf((3, 4), 0, dtype=dtype), leaf((4,), 1, dtype=dtype)
    weights = gradcore.tensor(np.random.default_rng(2).uniform(-1, 1, size=fn(a, b).shape), dtype=dtype)

    (fn(a, b) * weights).sum().backward()
    plain = [a.grad, b.grad]
    assert all(g is None or g.grad_fn is None for g in plain)

    graph = gradcore.autograd.grad((fn(a, b) * weights).sum(), (a, b), create_graph=True, allow_unused=True)
    for without, with_graph in zip(plain, graph):
        assert (without is None) == (with_graph is None)
        if without is not None:
            assert with_graph.dtype == without.dtype and with_graph.shape == without.shape
            np.testing.assert_array_equal(with_graph.detach().numpy(), without.numpy())


def test_second_derivatives_still_flow_through_the_formulas():
    x = leaf((5,), 3, dtype=gradcore.float64)
    y = (x * 3.0).pow(2).sum() + (x / 2.0).tanh().sum() + (x.exp() - x.log()).mean()
    (g,) = gradcore.autograd.grad(y, x, create_graph=True)
    assert g.grad_fn is not None
    (gg,) = gradcore.autograd.grad(g.sum(), x)
    v = x.detach().numpy()
    t = np.tanh(v / 2)
    expected = 18.0 + (-0.5 * t * (1 - t * t)) + (np.exp(v) + 1 / v ** 2) / 5
    np.testing.assert_allclose(gg.numpy(), expected, rtol=1e-12)


def test_sum_gradient_is_a_broadcast_of_the_incoming_one():
    x = leaf((4, 3), 4)
    x.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((4, 3), dtype=np.float32))
    # The leaf got its own memory: writing into its gradient is allowed.
    x.grad.add_(1.0)
    np.testing.assert_array_equal(x.grad.numpy(), np.full((4, 3), 2.0, dtype=np.float32))
