"""Optimizers against PyTorch: the same starting parameters and gradients, every listed option, 20 steps.

A tiny linear model built from raw tensors (W, b) is trained on a fixed schedule of mini-batches, with a
quartic penalty so that the gradients keep changing. In the option grids both libraries get the same
gradients, computed in float64 by numpy from the current parameters, so that only the optimizers' arithmetic
can differ: the parameters must agree to 1e-6 (float32) or 1e-10 (float64) after 20 steps. Other tests let
each library's autograd compute the gradients, use parameter groups, leave a parameter without gradient and
resume from a state dict.
"""

import io
import itertools

import numpy as np
import pytest

import gradcore

STEPS = 20
TOLERANCE = {"float32": 1e-6, "float64": 1e-10}

rng = np.random.default_rng(1234)
W0 = rng.standard_normal((3, 4)) * 0.5
B0 = rng.standard_normal(3) * 0.5
X = rng.standard_normal((32, 4))
Y = rng.standard_normal((32, 3))
BATCHES = [rng.choice(32, 4, replace=False) for _ in range(STEPS)]


def loss_of(W, b, x, y):
    """Mean squared error of a linear layer plus a small quartic penalty (the same code runs in both libraries)."""
    prediction = x.matmul(W.t()) + b
    return ((prediction - y) ** 2).mean() + 0.05 * (W**4).sum()


def numpy_gradients(W, b, rows):
    """The gradients of ``loss_of`` on mini-batch ``rows``, in float64, from the parameters' current values."""
    W = np.asarray(W.detach().numpy(), dtype=np.float64)
    b = np.asarray(b.detach().numpy(), dtype=np.float64)
    residual = X[rows] @ W.T + b - Y[rows]
    grad_W = 2 * residual.T @ X[rows] / residual.size + 0.2 * W**3
    grad_b = 2 * residual.sum(axis=0) / residual.size
    return grad_W, grad_b


def train(lib, name, options, dtype, steps=STEPS, groups=None, autograd=False):
    """Runs ``steps`` steps of ``lib.optim.<name>`` and returns the final parameters as numpy arrays."""
    dt = getattr(lib, dtype)
    W = lib.tensor(W0, dtype=dt, requires_grad=True)
    b = lib.tensor(B0, dtype=dt, requires_grad=True)
    params = [W, b] if groups is None else [dict(group, params=[W, b][i]) for i, group in enumerate(groups)]
    optimizer = getattr(lib.optim, name)(params, **options)
    sign = -1 if options.get("maximize") else 1  # maximizing -loss follows the same path as minimizing loss
    for rows in BATCHES[:steps]:
        optimizer.zero_grad()
        if autograd:
            x, y = lib.tensor(X[rows], dtype=dt), lib.tensor(Y[rows], dtype=dt)
            (sign * loss_of(W, b, x, y)).backward()
        else:
            grad_W, grad_b = numpy_gradients(W, b, rows)
            W.grad = lib.tensor(sign * grad_W, dtype=dt)
            b.grad = lib.tensor(sign * grad_b, dtype=dt)
        optimizer.step()
    return W.detach().numpy().copy(), b.detach().numpy().copy()


def assert_same_training(name, options, dtype, **kwargs):
    torch = pytest.importorskip("torch")
    ours = train(gradcore, name, options, dtype, **kwargs)
    theirs = train(torch, name, options, dtype, **kwargs)
    for our_param, their_param, initial in zip(ours, theirs, (W0, B0)):
        assert our_param.dtype == their_param.dtype == np.dtype(dtype)
        # The run must have moved the parameters, or agreeing would prove nothing.
        assert np.abs(their_param - initial).max() > 1e-3
        np.testing.assert_allclose(our_param, their_param, rtol=0, atol=TOLERANCE[dtype])


def option_grid(**choices):
    keys = list(choices)
    return [dict(zip(keys, values)) for values in itertools.product(*(choices[k] for k in keys))]


def _valid_sgd(options):
    if options["nesterov"] and (options["momentum"] == 0 or options["dampening"] != 0):
        return False
    return not (options["momentum"] == 0 and options["dampening"] != 0)  # dampening only acts on momentum


SGD_CASES = [
    o
    for o in option_grid(
        lr=[0.05],
        momentum=[0.0, 0.9],
        dampening=[0.0, 0.3],
        nesterov=[False, True],
        weight_decay=[0.0, 0.1],
        maximize=[False, True],
    )
    if _valid_sgd(o)
]
ADAM_CASES = option_grid(
    lr=[0.02],
    betas=[(0.9, 0.999), (0.8, 0.9)],
    eps=[1e-8, 1e-3],
    weight_decay=[0.0, 0.1],
    amsgrad=[False, True],
    maximize=[False, True],
)
RMSPROP_CASES = option_grid(
    lr=[0.01],
    alpha=[0.99, 0.9],
    eps=[1e-8],
    weight_decay=[0.0, 0.1],
    momentum=[0.0, 0.9],
    centered=[False, True],
    maximize=[False, True],
)


def case_id(options):
    return ",".join(f"{k}={v}" for k, v in options.items())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("options", SGD_CASES, ids=case_id)
def test_sgd_matches_torch(options, dtype):
    assert_same_training("SGD", options, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("options", ADAM_CASES, ids=case_id)
def test_adam_matches_torch(options, dtype):
    assert_same_training("Adam", options, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("options", ADAM_CASES, ids=case_id)
def test_adamw_matches_torch(options, dtype):
    assert_same_training("AdamW", options, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adamw_default_weight_decay_matches_torch(dtype):
    assert_same_training("AdamW", {"lr": 0.05}, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("options", RMSPROP_CASES, ids=case_id)
def test_rmsprop_matches_torch(options, dtype):
    assert_same_training("RMSprop", options, dtype)


@pytest.mark.parametrize(
    "name, options",
    [
        ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
        ("Adam", {"lr": 0.02, "amsgrad": True, "weight_decay": 0.1}),
        ("AdamW", {"lr": 0.02, "maximize": True}),
        ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.1}),
    ],
)
def test_training_through_backward_matches_torch(name, options):
    # Gradients from each library's own autograd differ by round-off only, which float64 keeps far below 1e-10.
    assert_same_training(name, options, "float64", autograd=True)


@pytest.mark.parametrize(
    "name, options, groups",
    [
        ("SGD", {"lr": 0.05}, [{"lr": 0.1, "momentum": 0.9}, {"nesterov": False, "weight_decay": 0.2}]),
        ("Adam", {"lr": 0.01}, [{"lr": 0.05, "amsgrad": True}, {"betas": (0.5, 0.6)}]),
        ("AdamW", {"lr": 0.01}, [{"weight_decay": 0.5}, {"lr": 0.03}]),
        ("RMSprop", {"lr": 0.01}, [{"centered": True}, {"lr": 0.002, "momentum": 0.5}]),
    ],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_param_groups_with_their_own_options_match_torch(name, options, groups, dtype):
    assert_same_training(name, options, dtype, groups=groups)


def to_torch(torch, value):
    """Converts a gradcore state dict to PyTorch's types (tensors through numpy)."""
    if isinstance(value, gradcore.Tensor):
        return torch.from_numpy(value.numpy().copy())
    if isinstance(value, dict):
        return {k: to_torch(torch, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_torch(torch, v) for v in value)
    return value


@pytest.mark.parametrize(
    "name, options",
    [
        ("SGD", {"lr": 0.05, "momentum": 0.9}),
        ("Adam", {"lr": 0.02, "amsgrad": True}),
        ("AdamW", {"lr": 0.02}),
        ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    ],
)
def test_state_dict_has_torchs_layout_and_values(name, options):
    torch = pytest.importorskip("torch")
    state_dicts = []
    for lib in (gradcore, torch):
        W = lib.tensor(W0, dtype=lib.float64, requires_grad=True)
        b = lib.tensor(B0, dtype=lib.float64, requires_grad=True)
        unused = lib.zeros(2, dtype=lib.float64, requires_grad=True)  # no gradient: no state
        optimizer = getattr(lib.optim, name)([W, unused, b], **options)
        x, y = lib.tensor(X), lib.tensor(Y)
        for _ in range(3):
            optimizer.zero_grad()
            loss_of(W, b, x, y).backward()
            optimizer.step()
        state_dicts.append(optimizer.state_dict())
    ours, theirs = state_dicts
    assert ours["param_groups"] == theirs["param_groups"]
    assert sorted(ours["state"]) == sorted(theirs["state"]) == [0, 2]
    for index, their_state in theirs["state"].items():
        assert list(ours["state"][index]) == list(their_state)
        for key, value in their_state.items():
            np.testing.assert_allclose(ours["state"][index][key].numpy(), value.numpy(), rtol=0, atol=1e-12)
            assert ours["state"][index][key].dtype.name == str(value.dtype).replace("torch.", "")


@pytest.mark.parametrize(
    "name, options",
    [
        ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
        ("Adam", {"lr": 0.02, "amsgrad": True, "weight_decay": 0.1}),
        ("AdamW", {"lr": 0.02}),
        ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    ],
)
def test_resuming_from_a_saved_state_dict_continues_identically(name, options):
    def make():
        W = gradcore.tensor(W0, dtype=gradcore.float32, requires_grad=True)
        b = gradcore.tensor(B0, dtype=gradcore.float32, requires_grad=True)
        return W, b, getattr(gradcore.optim, name)([{"params": [W]}, {"params": [b], "lr": 0.001}], **options)

    x, y = gradcore.tensor(X, dtype=gradcore.float32), gradcore.tensor(Y, dtype=gradcore.float32)

    def run(W, b, optimizer, steps):
        for _ in range(steps):
            optimizer.zero_grad()
            loss_of(W, b, x, y).backward()
            optimizer.step()

    W, b, optimizer = make()
    run(W, b, optimizer, 10)
    checkpoint = io.BytesIO()
    gradcore.save({"W": W, "b": b, "optimizer": optimizer.state_dict()}, checkpoint)
    run(W, b, optimizer, 10)  # the uninterrupted run

    checkpoint.seek(0)
    saved = gradcore.load(checkpoint)
    W2, b2, resumed = make()
    with gradcore.no_grad():
        W2.copy_(saved["W"])
        b2.copy_(saved["b"])
    resumed.load_state_dict(saved["optimizer"])
    assert resumed.param_groups[1]["lr"] == 0.001
    assert resumed.param_groups[0]["params"][0] is W2
    run(W2, b2, resumed, 10)
    assert np.array_equal(W2.detach().numpy(), W.detach().numpy())
    assert np.array_equal(b2.detach().numpy(), b.detach().numpy())


def test_loading_torchs_adam_state_dict_continues_like_torch():
    torch = pytest.importorskip("torch")
    tW = torch.tensor(W0, requires_grad=True)
    tb = torch.tensor(B0, requires_grad=True)
    t_opt = torch.optim.Adam([tW, tb], lr=0.02, weight_decay=0.1)
    tx, ty = torch.tensor(X), torch.tensor(Y)
    for _ in range(5):
        t_opt.zero_grad()
        loss_of(tW, tb, tx, ty).backward()
        t_opt.step()

    def to_ours(value):
        if isinstance(value, torch.Tensor):
            return gradcore.tensor(value.detach().numpy())
        if isinstance(value, dict):
            return {k: to_ours(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(to_ours(v) for v in value)
        return value

    W = gradcore.tensor(tW.detach().numpy(), requires_grad=True)
    b = gradcore.tensor(tb.detach().numpy(), requires_grad=True)
    opt = gradcore.optim.Adam([W, b])
    opt.load_state_dict(to_ours(t_opt.state_dict()))
    x, y = gradcore.tensor(X), gradcore.tensor(Y)
    for _ in range(5):
        t_opt.zero_grad()
        loss_of(tW, tb, tx, ty).backward()
        t_opt.step()
        opt.zero_grad()
        loss_of(W, b, x, y).backward()
        opt.step()
    np.testing.assert_allclose(W.detach().numpy(), tW.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(b.detach().numpy(), tb.detach().numpy(), rtol=0, atol=1e-10)


# -- Adagrad, Adamax, NAdam and RAdam ---------------------------------------------------------------------------
MORE_CASES = {
    "Adagrad": option_grid(lr=[0.05], lr_decay=[0.0, 0.01], weight_decay=[0.0, 0.1],
                           initial_accumulator_value=[0.0, 0.5], eps=[1e-10, 1e-3], maximize=[False, True]),
    "Adamax": option_grid(lr=[0.02], betas=[(0.9, 0.999), (0.8, 0.9)], eps=[1e-8, 1e-3],
                          weight_decay=[0.0, 0.1], maximize=[False, True]),
    "NAdam": option_grid(lr=[0.02], betas=[(0.9, 0.999), (0.8, 0.9)], eps=[1e-8, 1e-3], weight_decay=[0.0, 0.1],
                         momentum_decay=[4e-3, 0.05], decoupled_weight_decay=[False, True],
                         maximize=[False, True]),
    # betas[1] = 0.9 makes rho_t pass 5 within the 20 steps, so both branches of the update run.
    "RAdam": option_grid(lr=[0.02], betas=[(0.9, 0.999), (0.8, 0.9)], eps=[1e-8, 1e-3], weight_decay=[0.0, 0.1],
                         decoupled_weight_decay=[False, True], maximize=[False, True]),
}
MORE_PARAMS = [(name, options) for name, cases in MORE_CASES.items() for options in cases]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,options", MORE_PARAMS, ids=lambda v: v if isinstance(v, str) else case_id(v))
def test_more_optimizers_match_torch(name, options, dtype):
    assert_same_training(name, options, dtype)


@pytest.mark.parametrize("name", ["Adagrad", "Adamax", "NAdam", "RAdam"])
def test_more_optimizers_with_autograd_groups_and_state_dicts(name):
    torch = pytest.importorskip("torch")
    assert_same_training(name, {"lr": 0.01}, "float32", autograd=True)
    assert_same_training(name, {}, "float64", groups=[{"lr": 0.03}, {"weight_decay": 0.2}])
    state_dicts = []
    for lib in (gradcore, torch):
        W = lib.tensor(W0, dtype=lib.float64, requires_grad=True)
        b = lib.tensor(B0, dtype=lib.float64, requires_grad=True)
        optimizer = getattr(lib.optim, name)([W, b], lr=0.01)
        for _ in range(3):
            optimizer.zero_grad()
            loss_of(W, b, lib.tensor(X), lib.tensor(Y)).backward()
            optimizer.step()
        state_dicts.append(optimizer.state_dict())
    ours, theirs = state_dicts
    assert ours["param_groups"] == theirs["param_groups"]
    for index, their_state in theirs["state"].items():
        assert list(ours["state"][index]) == list(their_state)
        for key, value in their_state.items():
            np.testing.assert_allclose(ours["state"][index][key].numpy(), value.numpy(), rtol=0, atol=1e-12)
            assert ours["state"][index][key].dtype.name == str(value.dtype).replace("torch.", "")


@pytest.mark.parametrize("name,bad,message", [
    ("Adagrad", {"lr_decay": -1}, "Invalid lr_decay value: -1"),
    ("Adagrad", {"initial_accumulator_value": -1}, "Invalid initial_accumulator_value value: -1"),
    ("Adamax", {"betas": (1.0, 0.9)}, "Invalid beta parameter at index 0: 1.0"),
    ("NAdam", {"momentum_decay": -1}, "Invalid momentum_decay value: -1"),
    ("RAdam", {"eps": -1}, "Invalid epsilon value: -1"),
    ("RAdam", {"lr": -1}, "Invalid learning rate: -1"),
])
def test_more_optimizers_reject_bad_options_like_torch(name, bad, message):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=message):
        getattr(gradcore.optim, name)([gradcore.zeros(2, requires_grad=True)], **bad)
    with pytest.raises(ValueError, match=message):
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **bad)
