"""PyTorch's spellings that old and new programs use: accelerator, keepdims=, autograd.Variable."""
import numpy as np
import pytest

import gradcore

torch = pytest.importorskip("torch")


def test_accelerator_matches_torch_without_a_gpu():
    assert gradcore.accelerator.is_available() == gradcore.cuda.is_available()
    if not gradcore.cuda.is_available():
        assert gradcore.accelerator.current_accelerator() is None
        assert gradcore.accelerator.current_accelerator(check_available=True) is None
        assert gradcore.accelerator.device_count() == 0
    else:
        assert gradcore.accelerator.current_accelerator() == gradcore.device("cuda")
    # The line PyTorch's examples start with.
    device = gradcore.accelerator.current_accelerator().type if gradcore.accelerator.is_available() else "cpu"
    assert gradcore.ones(2, device=device).device.type == device


@pytest.mark.parametrize("name", ["sum", "mean", "prod", "amax", "amin", "std", "var", "logsumexp", "all", "any",
                                  "argmax", "argmin"])
def test_keepdims_is_an_alias_of_keepdim(name):
    values = np.random.default_rng(0).standard_normal((2, 3, 4))
    x, tx = gradcore.tensor(values), torch.tensor(values)
    if name in ("all", "any"):
        x, tx = x > 0, tx > 0
    ours = getattr(gradcore, name)(x, 1, keepdims=True)
    theirs = getattr(torch, name)(tx, 1, keepdims=True)
    assert tuple(ours.shape) == tuple(theirs.shape) == (2, 1, 4)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    assert tuple(getattr(gradcore, name)(x, 1, keepdims=False).shape) == (2, 4)


# Calls that give keepdim= and keepdims= together, as a function (the tensor first) and as a method (without it).
BOTH_KEEPDIMS_CALLS = [
    ((), {"keepdim": True, "keepdims": True}),
    ((), {"keepdims": True, "keepdim": True}),
    ((1,), {"keepdim": True, "keepdims": True}),
    ((1,), {"keepdims": False, "keepdim": True}),
    ((-1, True), {"keepdim": True, "keepdims": True}),
    (((0, 1),), {"keepdim": True, "keepdims": True}),
    ((), {"dim": 1, "keepdim": True, "keepdims": True}),
    ((), {"keepdim": True, "dim": 1, "keepdims": True}),
    ((), {"keepdims": True, "keepdim": True, "dim": 0}),
    ((1,), {"correction": 0, "keepdim": True, "keepdims": True}),
    ((1,), {"keepdim": None, "keepdims": 1}),
    ((1,), {"keepdims": True, "keepdim": "yes"}),
    ((0,), {"unbiased": False, "keepdims": True, "keepdim": True}),
    ((1, True, True), {"keepdim": True, "keepdims": True}),
]


@pytest.mark.parametrize("name", ["max", "min", "std", "var", "any", "all"])
@pytest.mark.parametrize("style", ["function", "method"])
@pytest.mark.parametrize("call", BOTH_KEEPDIMS_CALLS, ids=lambda call: repr(call).replace(" ", ""))
def test_keepdim_and_keepdims_together_raise_pytorchs_type_error(name, style, call):
    args, kwargs = call
    values = np.random.default_rng(0).standard_normal((2, 3))
    x, tx = gradcore.tensor(values), torch.tensor(values)
    if name in ("any", "all"):
        x, tx = x > 0, tx > 0
    if style == "function":
        ours, theirs = (lambda: getattr(gradcore, name)(x, *args, **kwargs)), (
            lambda: getattr(torch, name)(tx, *args, **kwargs))
    else:
        ours, theirs = (lambda: getattr(x, name)(*args, **kwargs)), (lambda: getattr(tx, name)(*args, **kwargs))
    with pytest.raises(TypeError) as expected:
        theirs()
    with pytest.raises(TypeError) as got:
        ours()
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("name", ["sum", "mean", "prod", "max", "min"])
@pytest.mark.parametrize("style", ["function", "method"])
@pytest.mark.parametrize("kwargs", [{"keepdim": True}, {"keepdims": False}, {"keepdims": True, "keepdim": True}],
                         ids=["keepdim", "keepdims", "both"])
def test_keepdim_without_dim_raises_pytorchs_type_error(name, style, kwargs):
    # PyTorch's sum, mean, prod, max and min have no overload that takes keepdim without dim.
    x, tx = gradcore.ones(2, 3), torch.ones(2, 3)
    texts = []
    for lib, tensor in ((gradcore, x), (torch, tx)):
        with pytest.raises(TypeError) as error:
            if style == "function":
                getattr(lib, name)(tensor, **kwargs)
            else:
                getattr(tensor, name)(**kwargs)
        texts.append(str(error.value))
    assert texts[0] == texts[1]
    # With a dim (or, for sum and mean, dim=None) the same flags are accepted, as in PyTorch.
    for dim in ([1, None] if name in ("sum", "mean") else [1]):
        ours = getattr(gradcore, name)(x, dim=dim, **{k: v for k, v in kwargs.items() if k == "keepdim"})
        theirs = getattr(torch, name)(tx, dim=dim, **{k: v for k, v in kwargs.items() if k == "keepdim"})
        ours, theirs = (ours[0], theirs[0]) if name in ("max", "min") else (ours, theirs)
        assert tuple(ours.shape) == tuple(theirs.shape)


def test_keepdims_on_max_min_gradient():
    x = gradcore.tensor([[1.0, 3.0], [4.0, 2.0]], requires_grad=True)
    values, indices = gradcore.max(x, 1, keepdims=True)
    assert values.shape == (2, 1) and indices.tolist() == [[1], [0]]
    values.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_variable_returns_a_detached_tensor():
    from gradcore.autograd import Variable

    a = gradcore.ones(2, requires_grad=True)
    b = Variable(a * 2)
    assert isinstance(b, gradcore.Tensor) and isinstance(a, Variable)
    assert not b.requires_grad and b.grad_fn is None and b.is_leaf
    c = Variable(a * 2, requires_grad=True)
    assert c.requires_grad and c.is_leaf
    (c * 3).sum().backward()
    assert c.grad.tolist() == [3.0, 3.0] and a.grad is None
    assert Variable().shape == (0,)
    with pytest.raises(TypeError, match="Variable data has to be a tensor, but got list"):
        Variable([1, 2])
    with pytest.raises(TypeError, match="Variable data has to be a tensor, but got list"):
        torch.autograd.Variable([1, 2])


def test_tensors_accept_new_attributes_as_torchs_do():
    import copy
    import pickle

    for lib in (gradcore, torch):
        t = lib.ones(2, requires_grad=True)
        t.tag = "weights"
        p = lib.nn.Parameter(lib.zeros(3))
        p.tag = ["a"]
        assert t.tag == "weights" and p.tag == ["a"]
        # PyTorch copies a tensor's attributes, but not a Parameter's.
        assert not hasattr(copy.deepcopy(p), "tag")
        copied = copy.deepcopy(t)
        assert copied.tag == "weights" and copied.requires_grad
        assert pickle.loads(pickle.dumps(t)).tag == "weights"
        out = t * 2  # results of ops start without attributes
        assert not hasattr(out, "tag")
        with pytest.raises(AttributeError):
            t.missing
    # Built-in properties keep their checks.
    with pytest.raises(RuntimeError):
        gradcore.ones(2).grad = gradcore.ones(3)


@pytest.mark.parametrize("name", ["sum", "mean", "prod", "max", "min", "amax", "amin", "std", "var", "logsumexp",
                                  "all", "any", "argmax", "argmin"])
def test_keepdims_is_an_alias_of_keepdim_on_tensor_methods(name):
    values = np.random.default_rng(1).standard_normal((2, 3, 4))
    x, tx = gradcore.tensor(values), torch.tensor(values)
    if name in ("all", "any"):
        x, tx = x > 0, tx > 0
    ours = getattr(x, name)(1, keepdims=True)
    theirs = getattr(tx, name)(1, keepdims=True)
    if name in ("max", "min"):
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
        ours, theirs = ours.values, theirs.values
    assert tuple(ours.shape) == tuple(theirs.shape) == (2, 1, 4)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    dropped = getattr(x, name)(1, keepdims=False)
    dropped = dropped.values if name in ("max", "min") else dropped
    assert tuple(dropped.shape) == (2, 4)
    # keepdim by name still works without the alias
    kept = getattr(x, name)(1, keepdim=True)
    kept = kept.values if name in ("max", "min") else kept
    assert tuple(kept.shape) == (2, 1, 4)


@pytest.mark.parametrize("name", ["sum", "mean", "prod", "max", "min", "amax", "amin", "std", "var", "logsumexp",
                                  "all", "any", "argmax", "argmin"])
@pytest.mark.parametrize("form", ["method", "function"])
def test_keepdim_and_keepdims_together_raise_type_error_like_torch(name, form):
    x, tx = gradcore.ones(2, 3), torch.ones(2, 3)
    if name in ("all", "any"):
        x, tx = x > 0, tx > 0

    def call(module, t):
        reduce = getattr(t, name) if form == "method" else (lambda *a, **k: getattr(module, name)(t, *a, **k))
        return reduce(1, keepdim=False, keepdims=True)

    with pytest.raises(TypeError):
        call(torch, tx)
    with pytest.raises(TypeError, match="keepdims"):
        call(gradcore, x)


def test_norm_method_rejects_keepdims_like_torch():
    with pytest.raises(TypeError):
        torch.ones(2, 3).norm(dim=1, keepdims=True)
    with pytest.raises(TypeError):
        gradcore.ones(2, 3).norm(dim=1, keepdims=True)


def test_keepdims_on_method_backward_matches_torch():
    values = np.random.default_rng(2).standard_normal((3, 4))
    x = gradcore.tensor(values, requires_grad=True)
    tx = torch.tensor(values, requires_grad=True)
    (x.std(1, keepdims=True) * x).sum().backward()
    (tx.std(1, keepdims=True) * tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)
