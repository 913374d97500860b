"""The Optimizer base class and the optimizers' arithmetic against values worked out by hand; the
load_state_dict errors against PyTorch's."""

import copy
import math
import re
import warnings

import numpy as np
import pytest

import gradcore
from gradcore import optim


def scalar_param(value=1.0, dtype=gradcore.float64):
    return gradcore.tensor([value], dtype=dtype, requires_grad=True)


def run_constant_gradient(optimizer, param, gradient, steps):
    values = []
    for _ in range(steps):
        optimizer.zero_grad()
        (param * gradient).sum().backward()  # d/dp = gradient
        optimizer.step()
        values.append(param.item())
    return values


# -- the update rules, by hand ----------------------------------------------------------------------------
def test_sgd_plain_step():
    p = scalar_param()
    assert run_constant_gradient(optim.SGD([p], lr=0.1), p, 2.0, 2) == pytest.approx([0.8, 0.6])


def test_sgd_momentum_buffer_starts_as_the_first_gradient_without_dampening():
    p = scalar_param()
    opt = optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    values = run_constant_gradient(opt, p, 1.0, 2)
    # step 1: buffer = g = 1 (dampening not applied), p = 0.9; step 2: buffer = 0.9 + 0.5 * 1 = 1.4, p = 0.76
    assert values == pytest.approx([0.9, 0.76])
    assert opt.state[p]["momentum_buffer"].item() == pytest.approx(1.4)


def test_sgd_nesterov_and_weight_decay():
    p = scalar_param()
    opt = optim.SGD([p], lr=0.1, momentum=0.5, nesterov=True, weight_decay=1.0)
    # g = 1 + 1 * p = 2; buffer = 2; step = g + 0.5 * buffer = 3; p = 1 - 0.3
    assert run_constant_gradient(opt, p, 1.0, 1) == pytest.approx([0.7])


def test_sgd_without_momentum_keeps_no_state():
    p = scalar_param()
    opt = optim.SGD([p], lr=0.1)
    run_constant_gradient(opt, p, 1.0, 2)
    assert len(opt.state) == 0 and opt.state_dict()["state"] == {}


def test_adam_bias_correction_makes_each_step_lr_for_a_constant_gradient():
    p = scalar_param()
    opt = optim.Adam([p], lr=0.1)
    assert run_constant_gradient(opt, p, 2.0, 3) == pytest.approx([0.9, 0.8, 0.7], abs=1e-7)
    state = opt.state[p]
    assert state["step"].item() == 3.0 and state["step"].dtype is gradcore.float32
    assert state["exp_avg"].item() == pytest.approx(2.0 * (1 - 0.9**3))
    assert state["exp_avg_sq"].item() == pytest.approx(4.0 * (1 - 0.999**3))


def test_adam_amsgrad_keeps_the_largest_second_moment():
    p = scalar_param()
    opt = optim.Adam([p], lr=0.1, amsgrad=True)
    run_constant_gradient(opt, p, 10.0, 1)
    run_constant_gradient(opt, p, 0.1, 1)
    state = opt.state[p]
    assert state["max_exp_avg_sq"].item() == pytest.approx(100 * 0.001)
    assert state["exp_avg_sq"].item() < state["max_exp_avg_sq"].item()


def test_adamw_decays_the_weights_apart_from_the_gradient():
    p = scalar_param()
    opt = optim.AdamW([p], lr=0.1, weight_decay=0.5)
    assert opt.defaults["weight_decay"] == 0.5
    # A zero gradient moves nothing but the decay: p is scaled by 1 - lr * weight_decay each step.
    assert run_constant_gradient(opt, p, 0.0, 3) == pytest.approx([0.95, 0.95**2, 0.95**3])
    # Adam's coupled decay goes through the normalised gradient instead: one step of about lr.
    q = scalar_param()
    assert run_constant_gradient(optim.Adam([q], lr=0.1, weight_decay=0.5), q, 0.0, 1) == pytest.approx([0.9])


def test_adamw_default_weight_decay_is_1e_2():
    assert optim.AdamW([scalar_param()]).defaults["weight_decay"] == 1e-2


def test_rmsprop_first_step_and_centered():
    p = scalar_param()
    assert run_constant_gradient(optim.RMSprop([p], lr=0.01), p, 1.0, 1) == pytest.approx([0.9])
    q = scalar_param()
    opt = optim.RMSprop([q], lr=0.01, alpha=0.5, centered=True)
    # v = 0.5, mean = 0.5, variance = 0.5 - 0.25: step = 0.01 / 0.5
    assert run_constant_gradient(opt, q, 1.0, 1) == pytest.approx([0.98])


def test_maximize_climbs():
    for make in (
        lambda p: optim.SGD([p], lr=0.1, maximize=True),
        lambda p: optim.Adam([p], lr=0.1, maximize=True),
        lambda p: optim.RMSprop([p], lr=0.01, maximize=True),
    ):
        p = scalar_param()
        assert run_constant_gradient(make(p), p, 1.0, 1)[0] > 1.0


@pytest.mark.parametrize("dtype", [gradcore.float32, gradcore.float64])
def test_state_buffers_follow_the_parameter_dtype(dtype):
    p = scalar_param(dtype=dtype)
    opt = optim.Adam([p], lr=0.1)
    run_constant_gradient(opt, p, 1.0, 1)
    assert opt.state[p]["exp_avg"].dtype is dtype and p.dtype is dtype


# -- what a step does to the graph --------------------------------------------------------------------------
def test_step_records_no_graph_and_changes_parameters_in_place():
    for make in (
        lambda p: optim.SGD([p], lr=0.1, momentum=0.9),
        lambda p: optim.Adam([p]),
        lambda p: optim.AdamW([p]),
        lambda p: optim.RMSprop([p], centered=True, momentum=0.1),
    ):
        p = gradcore.ones(3, requires_grad=True)
        opt = make(p)
        p.sum().backward()
        memory, version = p.data_ptr(), p._version
        with gradcore.enable_grad():
            opt.step()
        assert p.is_leaf and p.grad_fn is None and p.requires_grad
        assert p.data_ptr() == memory
        assert p._version > version  # autograd sees the in-place change
        for value in opt.state[p].values():
            assert not value.requires_grad and value.grad_fn is None


def test_a_step_invalidates_tensors_saved_for_backward():
    p = gradcore.ones(3, requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    loss = (p * p).sum()
    p.grad = gradcore.ones(3)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_step_evaluates_the_closure_with_grad_enabled_and_returns_its_loss():
    p = scalar_param()
    opt = optim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with gradcore.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 1.0 and p.item() == pytest.approx(0.8)
    assert opt.step() is None


def test_parameters_without_gradient_are_skipped():
    used, unused = scalar_param(), scalar_param()
    opt = optim.Adam([used, unused], lr=0.1)
    run_constant_gradient(opt, used, 1.0, 2)
    assert unused.item() == 1.0 and unused not in opt.state
    assert list(opt.state_dict()["state"]) == [0]


def test_zero_grad_sets_to_none_or_zeroes_in_place():
    p = scalar_param()
    opt = optim.SGD([p], lr=0.1)
    (p * 3).sum().backward()
    grad = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is grad and grad.item() == 0.0
    opt.zero_grad()
    assert p.grad is None


def test_zero_grad_detaches_a_gradient_that_has_a_graph():
    p = scalar_param()
    (p**3).sum().backward(create_graph=True)
    assert p.grad.grad_fn is not None
    optim.SGD([p], lr=0.1).zero_grad(set_to_none=False)
    assert p.grad.grad_fn is None and p.grad.item() == 0.0


# -- parameter groups -----------------------------------------------------------------------------------------
def test_param_groups_take_missing_options_from_the_defaults():
    a, b = scalar_param(), scalar_param()
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.9]
    assert opt.param_groups[1]["params"] == [b]
    run_constant_gradient(opt, a, 0.0, 1)  # a's gradient only; b has none
    c = scalar_param()
    opt.add_param_group({"params": [c], "momentum": 0.0})
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[2]["momentum"] == 0.0


def test_named_parameters_keep_their_names():
    a = scalar_param()
    opt = optim.Adam([("weight", a)])
    assert opt.param_groups[0]["params"] == [a]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight"]


def test_required_option_must_be_given():
    class Custom(optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, {"lr": optim.optimizer.required})

    with pytest.raises(ValueError, match="didn't specify a value of required optimization parameter lr"):
        Custom([scalar_param()])
    assert Custom([{"params": [scalar_param()], "lr": 1.0}]).param_groups[0]["lr"] == 1.0


def test_constructor_errors():
    p = scalar_param()
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD([{"params": {p}}], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        optim.SGD([1.0], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optim.SGD([p, p], lr=0.1)
    assert any("duplicate parameters" in str(w.message) for w in caught)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: optim.SGD([p], lr=-1), "Invalid learning rate: -1"),
        (lambda p: optim.SGD([p], momentum=-0.5), "Invalid momentum value: -0.5"),
        (lambda p: optim.SGD([p], weight_decay=-1), "Invalid weight_decay value: -1"),
        (lambda p: optim.SGD([p], nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
        (lambda p: optim.SGD([p], momentum=0.9, dampening=0.1, nesterov=True), "Nesterov momentum requires"),
        (lambda p: optim.Adam([p], eps=-1), "Invalid epsilon value: -1"),
        (lambda p: optim.Adam([p], betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
        (lambda p: optim.AdamW([p], betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
        (lambda p: optim.RMSprop([p], alpha=-0.1), "Invalid alpha value: -0.1"),
    ],
)
def test_invalid_options_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make(scalar_param())


def test_repr_lists_each_group_sorted():
    text = repr(optim.SGD([scalar_param()], lr=0.1, momentum=0.9))
    lines = text.splitlines()
    assert lines[0] == "SGD (" and lines[1] == "Parameter Group 0" and lines[-1] == ")"
    assert "    lr: 0.1" in lines and "    momentum: 0.9" in lines
    keys = [line.split(":")[0].strip() for line in lines[2:-1]]
    assert keys == sorted(keys)


# -- state dicts ------------------------------------------------------------------------------------------
def test_state_dict_numbers_parameters_across_groups():
    a, b, c = scalar_param(), scalar_param(), scalar_param()
    opt = optim.Adam([{"params": [a, b]}, {"params": [c], "lr": 0.5}])
    for p in (a, c):
        (p * 1.0).sum().backward()
    opt.step()
    state_dict = opt.state_dict()
    assert [g["params"] for g in state_dict["param_groups"]] == [[0, 1], [2]]
    assert sorted(state_dict["state"]) == [0, 2]
    assert state_dict["param_groups"][1]["lr"] == 0.5
    assert set(state_dict["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}


def test_load_state_dict_casts_buffers_to_the_parameters_and_keeps_the_step():
    p64 = scalar_param(dtype=gradcore.float64)
    opt = optim.Adam([p64], lr=0.1)
    run_constant_gradient(opt, p64, 1.0, 2)
    p32 = scalar_param(dtype=gradcore.float32)
    other = optim.Adam([p32], lr=0.9)
    other.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert other.state[p32]["exp_avg"].dtype is gradcore.float32
    assert other.state[p32]["step"].dtype is gradcore.float32 and other.state[p32]["step"].item() == 2
    assert other.param_groups[0]["lr"] == 0.1 and other.param_groups[0]["params"][0] is p32


def test_load_state_dict_checks_the_groups():
    a, b = scalar_param(), scalar_param()
    state_dict = optim.SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(state_dict)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        optim.SGD([a], lr=0.1).load_state_dict(state_dict)


def _stepped_optimizer(lib, name):
    """Returns (parameters, optimizer) of ``lib`` (gradcore or torch) after one step, so that it has state."""
    params = [lib.nn.Parameter(lib.ones(2, 3)), lib.nn.Parameter(lib.ones(4))]
    options = {"SGD": {"lr": 0.1, "momentum": 0.9}}.get(name, {"lr": 0.1})
    optimizer = getattr(lib.optim, name)(params, **options)
    sum(p.sum() for p in params).backward()
    optimizer.step()
    return params, optimizer


def _step_again(params, optimizer):
    sum(p.sum() for p in params).backward()
    optimizer.step()


def _with_first_state(lib, state_dict, make_value):
    state_dict = copy.deepcopy(state_dict)
    first = state_dict["state"][0]
    for name in first:
        if name != "step":
            first[name] = make_value(lib)
    return state_dict


_BAD_STATE_DICTS = {
    "two groups": lambda lib, sd: {"state": sd["state"], "param_groups": sd["param_groups"] * 2},
    "group size": lambda lib, sd: {"state": {}, "param_groups": [dict(sd["param_groups"][0], params=[0])]},
    "no state": lambda lib, sd: {"param_groups": sd["param_groups"]},
    "no param_groups": lambda lib, sd: {"state": sd["state"]},
    "a list": lambda lib, sd: [sd["state"], sd["param_groups"]],
}


@pytest.mark.parametrize("name", ["SGD", "Adam"])
@pytest.mark.parametrize("case", list(_BAD_STATE_DICTS))
def test_load_state_dict_errors_match_torch(name, case):
    torch = pytest.importorskip("torch")
    raised = []
    for lib in (torch, gradcore):
        params, optimizer = _stepped_optimizer(lib, name)
        bad = _BAD_STATE_DICTS[case](lib, optimizer.state_dict())
        with pytest.raises(Exception) as info:
            optimizer.load_state_dict(bad)
        raised.append(info.value)
    theirs, ours = raised
    assert type(ours) is type(theirs)
    if isinstance(theirs, ValueError):
        assert str(ours) == str(theirs)


def test_load_state_dict_refuses_a_non_dict_with_a_clear_type_error():
    params, optimizer = _stepped_optimizer(gradcore, "SGD")
    for bad in (None, [1, 2], "state"):
        with pytest.raises(TypeError, match="expected state_dict to be a dict, but got"):
            optimizer.load_state_dict(bad)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad"])
@pytest.mark.parametrize("shape", [(5, 5), (), (3, 2)])
def test_load_state_dict_with_buffers_of_the_wrong_shape_raises_runtime_error(name, shape):
    torch = pytest.importorskip("torch")
    # PyTorch loads such a state and fails in the next step with a RuntimeError about sizes; we fail at the load,
    # with the same type, naming both shapes, and leave the optimizer's state as it was.
    params, optimizer = _stepped_optimizer(torch, name)
    optimizer.load_state_dict(_with_first_state(torch, optimizer.state_dict(), lambda lib: lib.zeros(shape)))
    with pytest.raises(RuntimeError):
        _step_again(params, optimizer)

    params, optimizer = _stepped_optimizer(gradcore, name)
    before = copy.deepcopy(optimizer.state_dict())
    bad = _with_first_state(gradcore, optimizer.state_dict(), lambda lib: lib.zeros(shape))
    with pytest.raises(RuntimeError, match=re.escape(f"of shape {list(shape)} for parameter 0 of shape [2, 3]")):
        optimizer.load_state_dict(bad)
    after = optimizer.state_dict()
    for name_, value in before["state"][0].items():
        np.testing.assert_array_equal(after["state"][0][name_].numpy(), value.numpy())


def test_load_state_dict_with_numpy_buffers_raises_type_error_like_torch():
    torch = pytest.importorskip("torch")
    for lib in (torch, gradcore):
        params, optimizer = _stepped_optimizer(lib, "Adam")
        bad = _with_first_state(lib, optimizer.state_dict(), lambda lib: np.zeros((2, 3)))
        with pytest.raises(TypeError):
            optimizer.load_state_dict(bad)


def test_load_state_dict_with_good_buffers_steps_like_torch():
    torch = pytest.importorskip("torch")
    results = []
    for lib in (torch, gradcore):
        params, optimizer = _stepped_optimizer(lib, "Adam")
        good = _with_first_state(lib, optimizer.state_dict(), lambda lib: lib.full((2, 3), 0.5))
        optimizer.load_state_dict(good)
        _step_again(params, optimizer)
        results.append(params[0].detach().numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6)


def test_constant_gradient_sgd_matches_the_closed_form_over_many_steps():
    p = scalar_param(0.0)
    opt = optim.SGD([p], lr=0.01, momentum=0.5)
    values = run_constant_gradient(opt, p, 1.0, 50)
    # buffer_k = sum_{i<k} 0.5^i, p_k = -0.01 * sum_{j<=k} buffer_j
    buffers = [sum(0.5**i for i in range(k + 1)) for k in range(50)]
    expected = -0.01 * np.cumsum(buffers)
    np.testing.assert_allclose(values, expected, rtol=1e-12)
    assert math.isclose(opt.state[p]["momentum_buffer"].item(), buffers[-1])


def test_state_lives_on_the_parameters_device_and_loading_moves_it_there(fake_cuda):
    cpu_param = gradcore.tensor([1.0], device="cpu", requires_grad=True)
    cpu_optimizer = optim.Adam([cpu_param], lr=0.1)
    run_constant_gradient(cpu_optimizer, cpu_param, 1.0, 2)

    cuda_param = gradcore.tensor([1.0], device="cpu").cuda().requires_grad_()
    cuda_optimizer = optim.Adam([cuda_param], lr=0.1)
    cuda_optimizer.load_state_dict(cpu_optimizer.state_dict())
    state = cuda_optimizer.state[cuda_param]
    assert state["exp_avg"].is_cuda and state["exp_avg_sq"].is_cuda
    # The step count stays where it was, as in PyTorch: it counts, it is not a buffer shaped like the parameter.
    assert state["step"].device == cpu_optimizer.state[cpu_param]["step"].device
    cuda_param.grad = gradcore.ones(1, device="cpu").cuda()
    cuda_optimizer.step()
    assert cuda_param.is_cuda and state["exp_avg"].is_cuda
