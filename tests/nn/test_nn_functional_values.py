"""New ops of gradcore.nn checked without PyTorch: gradcheck in float64, analytic values, extreme inputs, init."""
import math

import numpy as np
import pytest

import gradcore
import gradcore.nn as nn
import gradcore.nn.functional as F
from gradcore.autograd import gradcheck, gradgradcheck
from gradcore.ops.activation import erf
from gradcore.ops.indexing import gather


def leaf(array):
    return gradcore.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def away_from(values, kinks, gap=0.1):
    """Moves values at least ``gap`` away from the points where a function is not differentiable."""
    for k in kinks:
        values = np.where(np.abs(values - k) < gap, k + gap * np.sign(values - k + 1e-12), values)
    return values


RNG = np.random.default_rng(11)
X = away_from(RNG.standard_normal((3, 4)) * 2, [0.0])
TARGET = gradcore.tensor([0, 3, 1])


# -- gradcheck (and gradgradcheck where the derivative is smooth) ---------------------------------------------------

@pytest.mark.parametrize("name,fn,smooth", [
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), False),
    ("gelu", lambda x: F.gelu(x), True),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), True),
    ("erf", erf, True),
    ("gather", lambda x: gather(x, 1, gradcore.tensor([[0, 0, 3], [2, 1, 2], [3, 3, 0]])), True),
    ("linear", lambda x: F.linear(x, x[:2] * 0.5, x[0, :2]), True),
    ("dropout_eval", lambda x: F.dropout(x, 0.5, training=False) * 1.0, True),
])
def test_gradcheck_activations(name, fn, smooth):
    x = leaf(X)
    assert gradcheck(fn, (x,))
    if smooth:
        assert gradgradcheck(fn, (x,))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_gradcheck_losses(reduction):
    x = leaf(X)
    y = leaf(RNG.standard_normal((3, 4)))
    probabilities = leaf(RNG.uniform(0.1, 0.9, size=(3, 4)))
    targets = leaf(RNG.uniform(0, 1, size=(3, 4)))
    weight = leaf(RNG.uniform(0.5, 2, size=4))
    pos_weight = leaf(RNG.uniform(0.5, 2, size=4))
    assert gradcheck(lambda a, b: F.mse_loss(a, b, reduction=reduction), (x, y))
    assert gradcheck(lambda a, b: F.l1_loss(a, b, reduction=reduction), (x, leaf(away_from(y.detach().numpy() - X, [0.0]) + X)))
    assert gradcheck(lambda a, w: F.cross_entropy(a, TARGET, weight=w, reduction=reduction, label_smoothing=0.2),
                     (x, weight))
    assert gradcheck(lambda a: F.nll_loss(a, TARGET, ignore_index=3, reduction=reduction), (x,))
    assert gradcheck(lambda a, t: F.cross_entropy(a, t, reduction=reduction), (x, targets))
    assert gradcheck(lambda p, t, w: F.binary_cross_entropy(p, t, weight=w, reduction=reduction),
                     (probabilities, targets, weight))
    assert gradcheck(lambda a, t, w, pw: F.binary_cross_entropy_with_logits(a, t, w, reduction=reduction,
                                                                              pos_weight=pw),
                     (x, targets, weight, pos_weight))
    assert gradgradcheck(lambda a, t: F.binary_cross_entropy_with_logits(a, t, reduction=reduction), (x, targets))
    assert gradgradcheck(lambda a: F.cross_entropy(a, TARGET, reduction=reduction), (x,))


# -- analytic values ----------------------------------------------------------------------------------------------

def test_erf_matches_the_math_module():
    points = np.concatenate([np.linspace(-7, 7, 2801), [0.0, 2.999999, 3.0, 3.000001, 30.0, -1e4]])
    ours = erf(gradcore.tensor(points)).numpy()
    expected = np.array([math.erf(v) for v in points])
    np.testing.assert_allclose(ours, expected, rtol=0, atol=5e-15)


def test_gelu_and_leaky_relu_values():
    x = gradcore.tensor([-2.0, 0.0, 1.0, 3.0], dtype=gradcore.float64)
    phi = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x.tolist()])
    np.testing.assert_allclose(F.gelu(x).numpy(), x.numpy() * phi, rtol=1e-14)
    tanh_form = [0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))) for v in x.tolist()]
    np.testing.assert_allclose(F.gelu(x, approximate="tanh").numpy(), tanh_form, rtol=1e-14)
    assert F.leaky_relu(x, 0.1).tolist() == [-0.2, 0.0, 1.0, 3.0]
    x = leaf([-2.0, 0.0, 1.0])
    F.leaky_relu(x, 0.1).sum().backward()
    assert x.grad.tolist() == [0.1, 0.1, 1.0]  # the slope applies at 0


def test_loss_values_by_hand():
    x = gradcore.tensor([[1.0, 2.0], [3.0, 5.0]])
    y = gradcore.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert F.mse_loss(x, y).item() == pytest.approx((0 + 4 + 9 + 16) / 4)
    assert F.mse_loss(x, y, reduction="sum").item() == pytest.approx(29.0)
    assert F.l1_loss(x, y, reduction="none").tolist() == [[0.0, 2.0], [3.0, 4.0]]

    logits = gradcore.tensor([[0.0, 0.0, 0.0, 0.0], [math.log(3.0), 0.0, 0.0, 0.0]], dtype=gradcore.float64)
    target = gradcore.tensor([2, 0])
    expected = [math.log(4.0), -math.log(3.0 / 6.0)]
    np.testing.assert_allclose(F.cross_entropy(logits, target, reduction="none").numpy(), expected)
    weight = gradcore.tensor([2.0, 1.0, 4.0, 1.0], dtype=gradcore.float64)
    # The weighted mean divides by the weights of the targets (4 + 2), not by the batch size.
    weighted = (4.0 * expected[0] + 2.0 * expected[1]) / 6.0
    assert F.cross_entropy(logits, target, weight=weight).item() == pytest.approx(weighted)
    # All targets ignored: the mean is 0 / 0.
    assert math.isnan(F.cross_entropy(logits, gradcore.tensor([-100, -100])).item())

    p = gradcore.tensor([0.0, 1.0, 0.5])
    t = gradcore.tensor([1.0, 0.0, 1.0])
    np.testing.assert_allclose(F.binary_cross_entropy(p, t, reduction="none").numpy(), [100.0, 100.0, math.log(2.0)],
                               rtol=1e-6)
    z = gradcore.tensor([0.0, 2.0])
    np.testing.assert_allclose(
        F.binary_cross_entropy_with_logits(z, gradcore.tensor([1.0, 0.0]), reduction="none").numpy(),
        [math.log(2.0), math.log1p(math.exp(2.0))], rtol=1e-6)


def test_losses_stay_finite_for_extreme_inputs():
    for dtype in (gradcore.float32, gradcore.float64):
        x = gradcore.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1.0]], dtype=dtype, requires_grad=True)
        target = gradcore.tensor([1, 0])
        for loss in (F.cross_entropy(x, target), F.cross_entropy(x, target, label_smoothing=0.1),
                     F.binary_cross_entropy_with_logits(x, gradcore.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=dtype)),
                     F.mse_loss(x, x * 0.5), F.gelu(x).sum(), F.gelu(x, approximate="tanh").sum(),
                     F.leaky_relu(x).sum(), F.log_softmax(x, 1).sum()):
            x.grad = None
            loss.backward()
            assert math.isfinite(loss.item())
            assert np.isfinite(x.grad.numpy()).all()
    # Confident and right: zero loss; confident and wrong: a loss of about the logit gap.
    x = gradcore.tensor([[1e4, -1e4]])
    assert F.cross_entropy(x, gradcore.tensor([0])).item() == 0.0
    assert F.cross_entropy(x, gradcore.tensor([1])).item() == pytest.approx(2e4)
    assert F.binary_cross_entropy_with_logits(gradcore.tensor([-1e4]), gradcore.tensor([1.0])).item() == pytest.approx(1e4)


def test_float64_stays_float64():
    x = gradcore.randn(3, 4, dtype=gradcore.float64, requires_grad=True)
    for out in (F.gelu(x), F.leaky_relu(x), F.cross_entropy(x, TARGET), F.mse_loss(x, x.detach() * 2),
                F.binary_cross_entropy_with_logits(x, x.detach().sigmoid()), F.dropout(x, 0.3),
                nn.Linear(4, 2, dtype=gradcore.float64)(x)):
        assert out.dtype is gradcore.float64
    assert nn.Linear(4, 2)(gradcore.randn(1, 4)).dtype is gradcore.float32


def test_size_average_and_reduce_still_work():
    x, y = gradcore.ones(2, 2), gradcore.zeros(2, 2)
    with pytest.warns(UserWarning):
        assert F.mse_loss(x, y, size_average=False).item() == 4.0
    with pytest.warns(UserWarning):
        assert F.mse_loss(x, y, reduce=False).shape == (2, 2)


# -- nn.init ------------------------------------------------------------------------------------------------------

def test_calculate_gain_and_fans():
    assert nn.init.calculate_gain("linear") == 1 and nn.init.calculate_gain("sigmoid") == 1
    assert nn.init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert nn.init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 1e-4)))
    with pytest.raises(ValueError):
        nn.init.calculate_gain("swish")
    assert nn.init._calculate_fan_in_and_fan_out(gradcore.empty(5, 3)) == (3, 5)
    assert nn.init._calculate_fan_in_and_fan_out(gradcore.empty(5, 3, 2, 2)) == (12, 20)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init._calculate_fan_in_and_fan_out(gradcore.empty(5))


def test_init_functions_fill_in_place_without_graph():
    w = nn.Parameter(gradcore.empty(200, 300))
    for fill, check in [
        (lambda t: nn.init.zeros_(t), lambda a: (a == 0).all()),
        (lambda t: nn.init.ones_(t), lambda a: (a == 1).all()),
        (lambda t: nn.init.constant_(t, 0.25), lambda a: (a == 0.25).all()),
        (lambda t: nn.init.uniform_(t, -2, 3), lambda a: a.min() >= -2 and a.max() < 3 and abs(a.mean() - 0.5) < 0.02),
        (lambda t: nn.init.normal_(t, 1.0, 0.5), lambda a: abs(a.mean() - 1) < 0.01 and abs(a.std() - 0.5) < 0.01),
        (lambda t: nn.init.xavier_uniform_(t), lambda a: abs(a).max() <= math.sqrt(6 / 500)),
        (lambda t: nn.init.xavier_normal_(t, gain=2.0), lambda a: abs(a.std() - 2 * math.sqrt(2 / 500)) < 0.002),
        (lambda t: nn.init.kaiming_uniform_(t, nonlinearity="relu"), lambda a: abs(a).max() <= math.sqrt(6 / 300)
         and abs(a.std() - math.sqrt(2 / 300)) < 0.002),
        (lambda t: nn.init.kaiming_normal_(t, mode="fan_out"), lambda a: abs(a.std() - math.sqrt(2 / 200)) < 0.002),
        (lambda t: nn.init.eye_(t), lambda a: (a[:200, :200] == np.eye(200)).all() and (a[:, 200:] == 0).all()),
    ]:
        assert fill(w) is w
        assert w.requires_grad and w.grad_fn is None
        assert check(w.detach().numpy())
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        nn.init.kaiming_uniform_(w, mode="fan_avg")


def test_linear_default_initialisation_bounds():
    gradcore.manual_seed(1)
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    weight, bias = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    assert abs(weight).max() <= bound and abs(bias).max() <= bound
    assert abs(weight).max() > 0.95 * bound  # uniform over the whole range, not a narrower one
    assert abs(weight.std() - bound / math.sqrt(3)) < 0.001
    gradcore.manual_seed(1)
    assert gradcore.equal(nn.Linear(400, 300).weight, layer.weight)  # seeded: the same draw
