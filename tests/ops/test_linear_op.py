"""gradcore.nn.functional.linear as one op: values and gradients against finite differences and PyTorch."""
import numpy as np
import pytest

import gradcore
import gradcore.nn.functional as F


@pytest.mark.parametrize("input_shape", [(5, 3), (2, 4, 3), (3,), (0, 3)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_gradcheck(input_shape, with_bias):
    rng = np.random.default_rng(0)
    x = gradcore.tensor(rng.normal(size=input_shape), requires_grad=True)
    w = gradcore.tensor(rng.normal(size=(4, 3)), requires_grad=True)
    inputs = (x, w, gradcore.tensor(rng.normal(size=(4,)), requires_grad=True)) if with_bias else (x, w)
    assert gradcore.autograd.gradcheck(F.linear, inputs)
    assert gradcore.autograd.gradgradcheck(F.linear, inputs)


@pytest.mark.parametrize("input_shape", [(5, 3), (2, 4, 3)])
def test_linear_matches_torch(input_shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    data = [rng.normal(size=input_shape), rng.normal(size=(4, 3)), rng.normal(size=(4,))]
    results = []
    for lib, linear in ((gradcore, F.linear), (torch, torch.nn.functional.linear)):
        x, w, b = (lib.tensor(d, requires_grad=True) for d in data)
        y = linear(x, w, b)
        (y.sin() * 3).sum().backward()
        results.append([y.detach().numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_linear_shape_errors_name_the_shapes():
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(5x3 and 4x2\)"):
        F.linear(gradcore.ones(5, 3), gradcore.ones(2, 4))
    with pytest.raises(RuntimeError, match="must match the size of tensor b"):
        F.linear(gradcore.ones(5, 3), gradcore.ones(4, 3), gradcore.ones(5))
