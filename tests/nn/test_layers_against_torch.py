"""The activations, normalization layers, embeddings, containers and losses of issue 14 against PyTorch.

Values and gradients are compared in float64 with the same inputs, which avoid the kinks (0 for the
rectifiers, exactly the bounds for Hardtanh) except where a test puts points on them on purpose.
"""
import math
import warnings

import numpy as np
import pytest

import gradcore
import gradcore.nn as nn
import gradcore.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

rng = np.random.default_rng(14)
VALUES = rng.standard_normal((4, 3, 5)) * 3
# Points where the branches meet, and values large enough to overflow exp in a naive formula.
EDGES = np.array([0.0, -1.0, 1.0, 6.0, 20.0, 25.0, -800.0, 800.0, -20.0, 1e-3])


def pair(values, requires_grad=True):
    ours = gradcore.tensor(values, dtype=gradcore.float64, requires_grad=requires_grad)
    theirs = torch.tensor(values, dtype=torch.float64, requires_grad=requires_grad)
    return ours, theirs


def check(our_fn, their_fn, values, weight_seed=3):
    x, tx = pair(values)
    out, t_out = our_fn(x), their_fn(tx)
    np.testing.assert_allclose(out.detach().numpy(), t_out.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(weight_seed).standard_normal(out.shape)
    (out * gradcore.tensor(g)).sum().backward()
    (t_out * torch.tensor(g)).sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


ACTIVATIONS = [
    ("silu", {}), ("softplus", {}), ("softplus", {"beta": 2.0, "threshold": 5.0}), ("elu", {}),
    ("elu", {"alpha": 0.5}), ("selu", {}), ("mish", {}), ("hardtanh", {}), ("hardtanh", {"min_val": -2.0,
                                                                                             "max_val": 0.5}),
    ("relu6", {}), ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("leaky_relu", {"negative_slope": 0.2}),
]


@pytest.mark.parametrize("name,kwargs", ACTIVATIONS)
def test_functional_activation_values_and_gradients(name, kwargs):
    check(lambda x: getattr(F, name)(x, **kwargs), lambda x: getattr(TF, name)(x, **kwargs), VALUES)


@pytest.mark.parametrize("name,kwargs", ACTIVATIONS)
def test_activations_at_edges_and_extremes(name, kwargs):
    check(lambda x: getattr(F, name)(x, **kwargs), lambda x: getattr(TF, name)(x, **kwargs), EDGES)


@pytest.mark.parametrize("module,kwargs", [("SiLU", {}), ("Softplus", {"beta": 0.5}), ("ELU", {"alpha": 2.0}),
                                           ("SELU", {}), ("Mish", {}), ("Hardtanh", {"min_val": -0.5}),
                                           ("ReLU6", {}), ("GELU", {"approximate": "tanh"}), ("LeakyReLU", {})])
def test_activation_modules(module, kwargs):
    ours, theirs = getattr(nn, module)(**kwargs), getattr(torch.nn, module)(**kwargs)
    check(ours, theirs, VALUES)
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("name", ["silu", "elu", "selu", "mish", "hardtanh", "relu6"])
def test_inplace_activations(name):
    x, tx = pair(VALUES, requires_grad=False)
    out = getattr(F, name)(x, inplace=True)
    getattr(TF, name)(tx, inplace=True)
    assert out is x
    np.testing.assert_allclose(x.numpy(), tx.numpy(), rtol=1e-12, atol=1e-12)
    # In a graph: the gradient reaches the tensor the in-place input was computed from.
    a, ta = pair(VALUES)
    getattr(F, name)(a * 1, inplace=True).sum().backward()
    getattr(TF, name)(ta * 1, inplace=True).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("num_parameters", [1, 3])
def test_prelu(num_parameters):
    ours, theirs = nn.PReLU(num_parameters, init=0.3).double(), torch.nn.PReLU(num_parameters, init=0.3).double()
    check(ours, theirs, VALUES)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-10)
    with pytest.raises(RuntimeError, match="Mismatch of parameter numbers and input channel size"):
        nn.PReLU(2)(gradcore.ones(4, 3))


def test_activation_gradcheck_second_order():
    for fn in (F.silu, F.softplus, F.elu, F.mish, F.selu):
        x = gradcore.tensor(rng.standard_normal(6), dtype=gradcore.float64, requires_grad=True)
        assert gradcore.autograd.gradcheck(fn, (x,))
        assert gradcore.autograd.gradgradcheck(fn, (x,))


# -- normalization ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,normalized", [((4, 6), 6), ((2, 3, 4), (3, 4)), ((5, 7), [7])])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(shape, normalized, affine):
    values = rng.standard_normal(shape) * 2 + 1
    ours = nn.LayerNorm(normalized, elementwise_affine=affine).double()
    theirs = torch.nn.LayerNorm(normalized, elementwise_affine=affine).double()
    if affine:
        w = rng.standard_normal(ours.weight.shape)
        b = rng.standard_normal(ours.bias.shape)
        ours.weight.data = gradcore.tensor(w)
        ours.bias.data = gradcore.tensor(b)
        theirs.weight.data = torch.tensor(w)
        theirs.bias.data = torch.tensor(b)
    check(ours, theirs, values)
    if affine:
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-10)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_layer_norm_shape_error_matches_torch():
    with pytest.raises(RuntimeError) as ours:
        F.layer_norm(gradcore.ones(2, 3), (4,))
    with pytest.raises(RuntimeError) as theirs:
        TF.layer_norm(torch.ones(2, 3), (4,))
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5)])
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("affine,track", [(True, True), (False, True), (True, False)])
def test_batch_norm_1d_training_and_eval(shape, momentum, affine, track):
    ours = nn.BatchNorm1d(3, momentum=momentum, affine=affine, track_running_stats=track).double()
    theirs = torch.nn.BatchNorm1d(3, momentum=momentum, affine=affine, track_running_stats=track).double()
    for step in range(3):
        values = rng.standard_normal(shape) * (step + 1) + step
        check(ours, theirs, values)
        if affine:
            np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-10)
            ours.zero_grad()
            theirs.zero_grad()
    if track:
        np.testing.assert_allclose(ours.running_mean.numpy(), theirs.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy(), rtol=1e-12)
        assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item() == 3
        assert ours.num_batches_tracked.dtype == gradcore.int64
    ours.eval()
    theirs.eval()
    check(ours, theirs, rng.standard_normal(shape))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)


def test_batch_norm_errors_match_torch():
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        nn.BatchNorm1d(3)(gradcore.ones(2, 3, 4, 5))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        nn.BatchNorm1d(3)(gradcore.ones(1, 3))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        torch.nn.BatchNorm1d(3)(torch.ones(1, 3))
    nn.BatchNorm1d(3).eval()(gradcore.ones(1, 3))  # one sample is fine in eval mode


def test_batch_norm_2d_and_functional():
    ours, theirs = nn.BatchNorm2d(2).double(), torch.nn.BatchNorm2d(2).double()
    check(ours, theirs, rng.standard_normal((3, 2, 4, 4)))
    np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy(), rtol=1e-12)
    mean, var = rng.standard_normal(3), rng.random(3) + 0.5
    check(lambda x: F.batch_norm(x, gradcore.tensor(mean), gradcore.tensor(var)),
          lambda x: TF.batch_norm(x, torch.tensor(mean), torch.tensor(var)), VALUES)


# -- embeddings -------------------------------------------------------------------------------------------------

def embedding_pair(rows=10, dim=4, **kwargs):
    weight = rng.standard_normal((rows, dim))
    ours = nn.Embedding(rows, dim, **kwargs).double()
    theirs = torch.nn.Embedding(rows, dim, **kwargs).double()
    ours.weight.data = gradcore.tensor(weight)
    theirs.weight.data = torch.tensor(weight)
    return ours, theirs


INDICES = np.array([[1, 2, 4, 5], [4, 3, 2, 9], [0, 0, 4, 4]])


@pytest.mark.parametrize("kwargs", [{}, {"padding_idx": 4}, {"padding_idx": -6}, {"scale_grad_by_freq": True},
                                    {"padding_idx": 0, "scale_grad_by_freq": True}, {"max_norm": 1.0},
                                    {"max_norm": 1.5, "norm_type": 1.0}])
def test_embedding_values_gradients_and_renorm(kwargs):
    ours, theirs = embedding_pair(**kwargs)
    idx, t_idx = gradcore.tensor(INDICES), torch.tensor(INDICES)
    out, t_out = ours(idx), theirs(t_idx)
    np.testing.assert_allclose(out.detach().numpy(), t_out.detach().numpy(), rtol=1e-12)
    g = rng.standard_normal(out.shape)
    (out * gradcore.tensor(g)).sum().backward()
    (t_out * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-12, atol=1e-14)
    # max_norm renormalises the weight itself.
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-12)
    assert repr(ours) == repr(theirs)


def test_embedding_init_draws_torchs_numbers_and_zeroes_padding():
    gradcore.manual_seed(5)
    torch.manual_seed(5)
    # On the CPU, whose generator draws PyTorch's numbers, whatever the default device of the run.
    ours, theirs = nn.Embedding(7, 3, padding_idx=2, device="cpu"), torch.nn.Embedding(7, 3, padding_idx=2)
    np.testing.assert_array_equal(ours.weight.detach().numpy(), theirs.weight.detach().numpy())
    assert (ours.weight.detach().numpy()[2] == 0).all()


def test_embedding_errors_and_from_pretrained():
    emb = nn.Embedding(5, 2)
    with pytest.raises(IndexError, match="index out of range in self"):
        emb(gradcore.tensor([5]))
    with pytest.raises(RuntimeError, match="Expected tensor for argument #1 'indices'"):
        emb(gradcore.tensor([1.0]))
    with pytest.raises(AssertionError, match="Padding_idx must be within num_embeddings"):
        nn.Embedding(5, 2, padding_idx=5)
    weights = gradcore.tensor([[1.0, 2.0], [3.0, 4.0]])
    frozen = nn.Embedding.from_pretrained(weights)
    assert not frozen.weight.requires_grad
    assert frozen(gradcore.tensor([1, 0])).tolist() == [[3.0, 4.0], [1.0, 2.0]]
    assert nn.Embedding.from_pretrained(weights, freeze=False).weight.requires_grad


# -- containers -------------------------------------------------------------------------------------------------

def test_module_dict_registers_and_orders_like_torch():
    ours = nn.ModuleDict({"b": nn.Linear(2, 3), "a": nn.ReLU()})
    ours["c"] = nn.Linear(3, 1)
    ours.update([("d", nn.Tanh())])
    theirs = torch.nn.ModuleDict({"b": torch.nn.Linear(2, 3), "a": torch.nn.ReLU()})
    theirs["c"] = torch.nn.Linear(3, 1)
    theirs.update([("d", torch.nn.Tanh())])
    assert list(ours.keys()) == list(theirs.keys()) == ["b", "a", "c", "d"]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert len(list(ours.parameters())) == 4 and "a" in ours and len(ours) == 4
    assert isinstance(ours.pop("a"), nn.ReLU) and "a" not in ours
    assert repr(ours) == repr(theirs).replace("(a): ReLU()\n  ", "")


def test_parameter_list_and_dict():
    plist = nn.ParameterList([gradcore.ones(2), nn.Parameter(gradcore.zeros(3))])
    plist.append(gradcore.ones(1))
    assert len(plist) == 3 and all(isinstance(p, nn.Parameter) for p in plist)
    assert [n for n, _ in plist.named_parameters()] == ["0", "1", "2"]
    assert plist[-1].shape == (1,)
    t_plist = torch.nn.ParameterList([torch.ones(2), torch.nn.Parameter(torch.zeros(3)), torch.ones(1)])
    assert list(plist.state_dict()) == list(t_plist.state_dict())

    pdict = nn.ParameterDict({"w": gradcore.ones(2, 2)})
    pdict["b"] = gradcore.zeros(2)
    assert isinstance(pdict["b"], nn.Parameter) and list(pdict.keys()) == ["w", "b"]
    model = nn.Module()
    model.params = pdict
    assert [n for n, _ in model.named_parameters()] == ["params.w", "params.b"]
    del pdict["w"]
    assert list(pdict) == ["b"] and len(list(pdict.parameters())) == 1


# -- losses -----------------------------------------------------------------------------------------------------

TARGET = rng.standard_normal(VALUES.shape) * 3


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("beta", [1.0, 0.5, 0.0, 2.5])
def test_smooth_l1_loss(reduction, beta):
    check(lambda x: F.smooth_l1_loss(x, gradcore.tensor(TARGET), reduction=reduction, beta=beta),
          lambda x: TF.smooth_l1_loss(x, torch.tensor(TARGET), reduction=reduction, beta=beta), VALUES)
    check(lambda x: nn.SmoothL1Loss(reduction=reduction, beta=beta)(x, gradcore.tensor(TARGET)),
          lambda x: torch.nn.SmoothL1Loss(reduction=reduction, beta=beta)(x, torch.tensor(TARGET)), VALUES)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("delta", [1.0, 0.3, 4.0])
def test_huber_loss(reduction, delta):
    check(lambda x: nn.HuberLoss(reduction=reduction, delta=delta)(x, gradcore.tensor(TARGET)),
          lambda x: torch.nn.HuberLoss(reduction=reduction, delta=delta)(x, torch.tensor(TARGET)), VALUES)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    log_probs = np.log(rng.dirichlet(np.ones(5), size=4))
    target = rng.dirichlet(np.ones(5), size=4)
    target[0, 1] = 0.0  # a zero probability contributes 0
    target = np.log(target + 1e-3) if log_target else target
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(lambda x: nn.KLDivLoss(reduction=reduction, log_target=log_target)(x, gradcore.tensor(target)),
              lambda x: torch.nn.KLDivLoss(reduction=reduction, log_target=log_target)(x, torch.tensor(target)),
              log_probs)
    if reduction == "mean":
        with pytest.warns(UserWarning, match="batchmean"):
            F.kl_div(gradcore.tensor(log_probs), gradcore.tensor(target), reduction="mean")


def test_loss_errors():
    with pytest.raises(RuntimeError, match="negative values for beta"):
        F.smooth_l1_loss(gradcore.ones(2), gradcore.ones(2), beta=-1.0)
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        F.kl_div(gradcore.ones(2), gradcore.ones(2), reduction="avg")


# -- nn.utils ---------------------------------------------------------------------------------------------------

def grads_pair(scale=1.0):
    shapes = [(3, 4), (4,), (2, 2)]
    grads = [rng.standard_normal(s) * scale for s in shapes]
    ours = [gradcore.tensor(rng.standard_normal(s), dtype=gradcore.float32, requires_grad=True) for s in shapes]
    theirs = [torch.tensor(p.detach().numpy(), requires_grad=True) for p in ours]
    for p, tp, g in zip(ours, theirs, grads):
        p.grad = gradcore.tensor(g, dtype=gradcore.float32)
        tp.grad = torch.tensor(g, dtype=torch.float32)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.0, math.inf, "inf", 0.5])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm(norm_type, max_norm):
    ours, theirs = grads_pair()
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type, foreach=False)
    t_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type, foreach=False)
    assert total.dtype == gradcore.float32 and total.shape == ()
    np.testing.assert_allclose(total.item(), t_total.item(), rtol=1e-6)
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_clip_grad_norm_nonfinite_and_empty():
    ours, _ = grads_pair()
    ours[0].grad._data[0, 0] = np.inf
    with pytest.raises(RuntimeError, match="is non-finite, so it cannot be clipped"):
        nn.utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    assert nn.utils.clip_grad_norm_([gradcore.ones(2, requires_grad=True)], 1.0).item() == 0.0
    single = gradcore.ones(4, requires_grad=True)
    single.grad = gradcore.full((4,), 2.0)
    assert nn.utils.clip_grad_norm_(single, 1.0).item() == pytest.approx(4.0)
    np.testing.assert_allclose(single.grad.numpy(), 0.5 / (4 + 1e-6) * 2 * 2, rtol=1e-6)


def test_clip_grad_value():
    ours, theirs = grads_pair(scale=2.0)
    assert nn.utils.clip_grad_value_(ours, 0.7) is None
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, tp in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), tp.grad.numpy())


def test_parameters_to_vector_and_back():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    vector = nn.utils.parameters_to_vector(model.parameters())
    assert vector.shape == (11,) and vector.requires_grad
    (vector * gradcore.arange(11.0)).sum().backward()
    assert model[0].weight.grad.reshape(-1).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    nn.utils.vector_to_parameters(gradcore.arange(11.0), model.parameters())
    assert model[1].bias.tolist() == [10.0] and model[0].bias.tolist() == [6.0, 7.0]
    with pytest.raises(TypeError, match="expected torch.Tensor, but got: list"):
        nn.utils.vector_to_parameters([1.0], model.parameters())
