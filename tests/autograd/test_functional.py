"""gradcore.autograd.functional against PyTorch and against finite differences."""
import numpy as np
import pytest

import gradcore
import gradcore.autograd.functional as AF

torch = pytest.importorskip("torch")
TF = torch.autograd.functional

rng = np.random.default_rng(7)
A = rng.standard_normal((3, 3))
B = rng.standard_normal(3)


def f_single(lib):
    def f(x):
        return (x ** 3).sum(0) * x.sin().sum() + x[0] * 2
    return f


def f_pair(lib):
    def f(x, y):
        return (x * y.exp()).tanh(), (x ** 2).sum() * y
    return f


def scalar_pair(lib):
    def f(x, y):
        return (x.sin() * y.cos()).sum() + (x * x * y).sum()
    return f


def as_np(result):
    if isinstance(result, (tuple, list)):
        return [as_np(r) for r in result]
    return result.detach().numpy()


def ours(a):
    return gradcore.tensor(a, dtype=gradcore.float64)


def theirs(a):
    return torch.tensor(a, dtype=torch.float64)


def assert_close(a, b, tol=1e-10):
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_close(x, y, tol)
    else:
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


X = rng.standard_normal((3, 2))
Y = rng.standard_normal((3, 2))
V_OUT = rng.standard_normal((3, 2))
V_IN = rng.standard_normal((3, 2))


@pytest.mark.parametrize("create_graph", [False, True])
def test_vjp_and_jvp_match_torch(create_graph):
    out, g = AF.vjp(f_pair(gradcore), (ours(X), ours(Y)), (ours(V_OUT), ours(V_IN)), create_graph=create_graph)
    t_out, t_g = TF.vjp(f_pair(torch), (theirs(X), theirs(Y)), (theirs(V_OUT), theirs(V_IN)))
    assert_close(as_np(out), as_np(t_out))
    assert_close(as_np(g), as_np(t_g))
    out, g = AF.jvp(f_pair(gradcore), (ours(X), ours(Y)), (ours(V_IN), ours(V_OUT)), create_graph=create_graph)
    t_out, t_g = TF.jvp(f_pair(torch), (theirs(X), theirs(Y)), (theirs(V_IN), theirs(V_OUT)))
    assert_close(as_np(out), as_np(t_out))
    assert_close(as_np(g), as_np(t_g))
    assert isinstance(g, tuple) and len(g) == 2
    assert g[0].requires_grad == create_graph


@pytest.mark.parametrize("vectorize,strategy", [(False, "reverse-mode"), (True, "reverse-mode"),
                                                (True, "forward-mode")])
def test_jacobian_matches_torch(vectorize, strategy):
    jac = AF.jacobian(f_pair(gradcore), (ours(X), ours(Y)), vectorize=vectorize, strategy=strategy)
    t_jac = TF.jacobian(f_pair(torch), (theirs(X), theirs(Y)), vectorize=vectorize, strategy=strategy)
    assert_close(as_np(jac), as_np(t_jac))
    single = AF.jacobian(f_single(gradcore), ours(X), vectorize=vectorize, strategy=strategy)
    t_single = TF.jacobian(f_single(torch), theirs(X), vectorize=vectorize, strategy=strategy)
    assert isinstance(single, gradcore.Tensor)
    assert_close(as_np(single), as_np(t_single))


def test_jacobian_matches_finite_differences():
    f = f_single(gradcore)
    jac = AF.jacobian(f, ours(X)).numpy()
    eps = 1e-6
    numeric = np.zeros((2,) + X.shape)
    for idx in np.ndindex(X.shape):
        plus, minus = X.copy(), X.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[(slice(None),) + idx] = (f(ours(plus)).numpy() - f(ours(minus)).numpy()) / (2 * eps)
    np.testing.assert_allclose(jac, numeric, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("create_graph", [False, True])
def test_hessian_vhp_hvp_match_torch(create_graph):
    h = AF.hessian(scalar_pair(gradcore), (ours(X), ours(Y)), create_graph=create_graph)
    t_h = TF.hessian(scalar_pair(torch), (theirs(X), theirs(Y)))
    assert_close(as_np(h), as_np(t_h))
    for ours_fn, their_fn in ((AF.vhp, TF.vhp), (AF.hvp, TF.hvp)):
        out, p = ours_fn(scalar_pair(gradcore), (ours(X), ours(Y)), (ours(V_IN), ours(V_OUT)),
                         create_graph=create_graph)
        t_out, t_p = their_fn(scalar_pair(torch), (theirs(X), theirs(Y)), (theirs(V_IN), theirs(V_OUT)))
        assert_close(as_np(out), as_np(t_out))
        assert_close(as_np(p), as_np(t_p))

    def single(x):
        return (x ** 3).sum() * x.exp().sum()
    assert_close(as_np(AF.hessian(single, ours(B))), as_np(TF.hessian(single, theirs(B))))


def test_create_graph_results_differentiate_again():
    x = ours(B).requires_grad_(True)
    jac = AF.jacobian(lambda t: t ** 3, x, create_graph=True)
    jac.sum().backward()
    tx = theirs(B).requires_grad_(True)
    TF.jacobian(lambda t: t ** 3, tx, create_graph=True).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_unused_inputs_give_zeros_and_strict_raises():
    def f(x, y):
        return x * 2
    jac = AF.jacobian(f, (ours(B), ours(B)))
    assert np.all(jac[1].numpy() == 0)
    with pytest.raises(RuntimeError, match="independent of input 1"):
        AF.jacobian(f, (ours(B), ours(B)), strict=True)
    with pytest.raises(RuntimeError, match="independent of input 1"):
        TF.jacobian(f, (theirs(B), theirs(B)), strict=True)
    _, g = AF.vjp(f, (ours(B), ours(B)), ours(B))
    assert np.all(g[1].numpy() == 0)


STRICT_CALLS = {
    "vjp": lambda F, lib, x: F.vjp(lambda x: lib.ones(2), x, lib.ones(2), strict=True),
    "jvp": lambda F, lib, x: F.jvp(lambda x: lib.ones(2), x, lib.ones(2), strict=True),
    "jacobian": lambda F, lib, x: F.jacobian(lambda x: lib.ones(2), x, strict=True),
    "jacobian_second_output": lambda F, lib, x: F.jacobian(lambda x: (x * 2, lib.ones(2)), x, strict=True),
    "jacobian_unused_input": lambda F, lib, x: F.jacobian(lambda x, y: x * 2, (x, x.clone()), strict=True),
    "hessian": lambda F, lib, x: F.hessian(lambda x: lib.ones(()), x, strict=True),
    "hessian_of_linear": lambda F, lib, x: F.hessian(lambda x: x.sum() * 2, x, strict=True),
    "vhp": lambda F, lib, x: F.vhp(lambda x: lib.ones(()), x, lib.ones(2), strict=True),
    "hvp": lambda F, lib, x: F.hvp(lambda x: lib.ones(()), x, lib.ones(2), strict=True),
}


@pytest.mark.parametrize("name", sorted(STRICT_CALLS))
def test_strict_mode_errors_match_torch_word_for_word(name):
    messages = []
    for lib, F in ((gradcore, AF), (torch, TF)):
        with pytest.raises(RuntimeError) as error:
            STRICT_CALLS[name](F, lib, lib.tensor([1.0, 2.0]))
        messages.append(str(error.value))
    assert messages[0] == messages[1]


def test_errors_match_torch():
    with pytest.raises(TypeError, match="must be either a Tensor or a tuple of Tensors"):
        AF.jacobian(lambda x: x, [1.0])
    with pytest.raises(RuntimeError, match="v can only be None"):
        AF.vjp(lambda x: x * 2, ours(B))
    with pytest.raises(RuntimeError, match="v can only be None"):
        TF.vjp(lambda x: x * 2, theirs(B))
    with pytest.raises(RuntimeError, match="should contain a single element"):
        AF.hvp(lambda x: x * 2, ours(B), ours(B))
    with pytest.raises(RuntimeError, match="should contain a single element"):
        TF.hvp(lambda x: x * 2, theirs(B), theirs(B))
    with pytest.raises(RuntimeError, match="invalid size"):
        AF.vjp(lambda x: x * 2, ours(B), ours(X))
    with pytest.raises(ValueError, match="Expected strategy"):
        AF.jacobian(lambda x: x, ours(B), strategy="sideways")
    with pytest.raises(NotImplementedError):
        AF.jacobian(lambda x: x, ours(B), strategy="forward-mode")


def test_default_v_for_scalar_output():
    out, g = AF.vjp(lambda x: (x ** 2).sum(), ours(B))
    np.testing.assert_allclose(g.numpy(), 2 * B)
    assert not g.requires_grad
