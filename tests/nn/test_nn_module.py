"""Module API behaviour without PyTorch: registration, traversal order, state dicts, modes, hooks, conversions."""
import copy

import numpy as np
import pytest

import gradcore
import gradcore.nn as nn


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(4, 2)
        self.register_buffer("steps", gradcore.zeros(1))
        self.register_buffer("scratch", gradcore.zeros(2), persistent=False)
        self.scale = 2.0  # a plain attribute: not registered anywhere

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale


def test_parameters_and_names_in_registration_order():
    net = TwoLayer()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert [p.shape for p in net.parameters()] == [(4, 3), (4,), (2, 4), (2,)]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert [n for n, _ in net.named_children()] == ["fc1", "act", "fc2"]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "act", "fc2"]
    assert list(net.modules())[0] is net
    assert [n for n, _ in net.named_buffers()] == ["steps", "scratch"]
    assert len(list(net.parameters(recurse=False))) == 0
    assert net.get_parameter("fc2.bias") is net.fc2.bias
    assert net.get_submodule("fc1") is net.fc1


def test_shared_parameters_and_modules_are_listed_once():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(seq.parameters())) == 2
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1"]
    assert len(list(seq.named_parameters(remove_duplicate=False))) == 4


def test_setattr_registers_and_rejects():
    net = TwoLayer()
    net.extra = nn.Parameter(gradcore.ones(2))
    assert "extra" in dict(net.named_parameters())
    with pytest.raises(TypeError, match="cannot assign 'gradcore.FloatTensor' as parameter 'extra'"):
        net.extra = gradcore.ones(2)
    net.extra = None  # allowed: an absent parameter
    assert "extra" not in dict(net.named_parameters())
    net.steps = gradcore.ones(1)  # buffers accept plain tensors
    assert net.state_dict()["steps"].tolist() == [1.0]
    with pytest.raises(TypeError):
        net.fc1 = 3
    with pytest.raises(KeyError):
        net.register_buffer("a.b", None)
    with pytest.raises(KeyError, match="already exists"):
        net.register_parameter("scale", None)
    with pytest.raises(TypeError, match="gradcore.nn.Parameter or None required"):
        net.register_parameter("w", (gradcore.ones(2, requires_grad=True) * 2))
    with pytest.raises(AttributeError, match="'TwoLayer' object has no attribute 'missing'"):
        net.missing
    del net.fc2
    assert [n for n, _ in net.named_children()] == ["fc1", "act"]

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(gradcore.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()


def test_state_dict_and_strict_loading():
    net = TwoLayer()
    state = net.state_dict()
    # A module's own parameters and buffers come before its children's, as in PyTorch.
    assert list(state) == ["steps", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert not any(v.requires_grad for v in state.values())
    # The values share memory with the module (as in PyTorch).
    with gradcore.no_grad():
        net.fc1.bias.fill_(3.0)
    assert state["fc1.bias"].tolist() == [3.0] * 4

    other = TwoLayer()
    result = other.load_state_dict({k: v.clone() for k, v in state.items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    x = gradcore.randn(5, 3)
    assert gradcore.equal(other(x), net(x))

    partial = {k: v for k, v in state.items() if k != "fc2.bias"}
    partial["bogus"] = gradcore.zeros(1)
    with pytest.raises(RuntimeError) as error:
        other.load_state_dict(partial)
    assert 'Missing key(s) in state_dict: "fc2.bias"' in str(error.value)
    assert 'Unexpected key(s) in state_dict: "bogus"' in str(error.value)
    result = other.load_state_dict(partial, strict=False)
    assert result == (["fc2.bias"], ["bogus"])
    with pytest.raises(RuntimeError, match="size mismatch for fc1.bias"):
        other.load_state_dict({"fc1.bias": gradcore.zeros(5)}, strict=False)


def test_load_state_dict_keeps_parameter_objects_and_dtype():
    net = nn.Linear(2, 2)
    weight = net.weight
    net.load_state_dict({"weight": gradcore.ones(2, 2, dtype=gradcore.float64), "bias": gradcore.zeros(2)})
    assert net.weight is weight and net.weight.dtype is gradcore.float32 and net.weight.requires_grad
    assert net.weight.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_train_eval_and_dropout():
    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    assert net.training and net[1].training
    assert net.eval() is net
    assert not net.training and not net[1].training
    x = gradcore.randn(8, 4)
    assert gradcore.equal(net(x), net[0](x))  # evaluation mode: dropout is the identity
    net.train()
    gradcore.manual_seed(0)
    first = net(x)
    gradcore.manual_seed(0)
    assert gradcore.equal(net(x), first)  # the mask comes from gradcore's seeded generator
    with pytest.raises(ValueError):
        net.train("yes")


def test_dropout_mask_and_scaling():
    gradcore.manual_seed(3)
    x = gradcore.ones(200, 50, requires_grad=True)
    y = nn.Dropout(p=0.3)(x)
    values = np.unique(y.detach().numpy())
    np.testing.assert_allclose(values, [0.0, 1 / 0.7], rtol=1e-6)
    kept = (y.detach().numpy() != 0).mean()
    assert abs(kept - 0.7) < 0.02
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())  # the gradient is mask / (1 - p)
    assert gradcore.equal(nn.Dropout(p=1.0)(x), gradcore.zeros(200, 50))
    assert nn.functional.dropout(x, p=0.5, training=False) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(p=-0.1)


def test_zero_grad_set_to_none_and_to_zero():
    net = nn.Linear(3, 1)
    net(gradcore.randn(2, 3)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and float(p.grad.abs().sum()) == 0.0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_requires_grad_apply_and_conversions():
    net = TwoLayer()
    assert net.requires_grad_(False) is net
    assert not any(p.requires_grad for p in net.parameters())
    net.requires_grad_()
    visited = []
    assert net.apply(lambda m: visited.append(type(m).__name__)) is net
    assert visited == ["Linear", "ReLU", "Linear", "TwoLayer"]

    weight = net.fc1.weight
    net(gradcore.randn(2, 3)).sum().backward()
    assert net.double() is net
    assert net.fc1.weight is weight  # the Parameter object survives, so optimizers keep working
    assert weight.dtype is gradcore.float64 and weight.grad.dtype is gradcore.float64
    assert net.steps.dtype is gradcore.float64
    assert net(gradcore.randn(2, 3, dtype=gradcore.float64)).dtype is gradcore.float64
    net.to(gradcore.float32)
    assert weight.dtype is gradcore.float32
    net.to("cpu")
    net.cpu()
    assert weight.device == gradcore.device("cpu")
    with pytest.raises(TypeError, match="floating point"):
        net.to(gradcore.int64)


def test_forward_hooks():
    net = nn.Linear(2, 2)
    seen = []
    handle = net.register_forward_hook(lambda module, args, output: seen.append(output.shape))
    pre = net.register_forward_pre_hook(lambda module, args: (args[0] * 0,))
    out = net(gradcore.ones(3, 2))
    assert seen == [(3, 2)]
    assert gradcore.allclose(out, net.bias.expand(3, 2))  # the pre-hook zeroed the input
    handle.remove()
    pre.remove()
    net(gradcore.ones(1, 2))
    assert seen == [(3, 2)]


def test_deepcopy_gives_independent_parameters():
    net = TwoLayer()
    twin = copy.deepcopy(net)
    assert isinstance(twin.fc1.weight, nn.Parameter)
    assert twin.fc1.weight is not net.fc1.weight
    x = gradcore.randn(2, 3)
    assert gradcore.equal(twin(x), net(x))
    with gradcore.no_grad():
        twin.fc1.weight.zero_()
    assert not gradcore.equal(twin.fc1.weight, net.fc1.weight)


def test_parameter_basics():
    t = gradcore.ones(3)
    p = nn.Parameter(t)
    assert p.requires_grad and p.is_leaf and isinstance(p, gradcore.Tensor)
    if p.device.type == "cpu":  # the repr names any other device
        assert repr(p) == "Parameter containing:\ntensor([1., 1., 1.], requires_grad=True)"
    with gradcore.no_grad():
        p.mul_(2)
    assert t.tolist() == [2.0, 2.0, 2.0]  # shares memory with the tensor it was made from
    assert type(p * 2) is gradcore.Tensor
    assert not nn.Parameter(gradcore.ones(1), requires_grad=False).requires_grad
    assert nn.Parameter().shape == (0,)


def test_sequential_and_modulelist_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    seq.append(nn.Sigmoid())
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    out = seq(gradcore.randn(4, 2))
    assert out.shape == (4, 1) and float(out.min()) > 0 and float(out.max()) < 1
    del seq[1]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]
    with pytest.raises(IndexError, match="index 7 is out of range"):
        seq[7]
    from collections import OrderedDict
    named = nn.Sequential(OrderedDict([("encoder", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert list(named.state_dict()) == ["encoder.weight", "encoder.bias"]
    assert named.encoder is named[0]

    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.ReLU())
    layers.extend([nn.Tanh()])
    layers.insert(0, nn.Identity())
    assert len(layers) == 6 and isinstance(layers[0], nn.Identity) and isinstance(layers[-1], nn.Tanh)
    assert [n for n, _ in layers.named_children()] == [str(i) for i in range(6)]
    assert len(list(layers.parameters())) == 6
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    with pytest.raises(NotImplementedError):
        layers(gradcore.ones(1))


def test_custom_module_trains_by_hand():
    gradcore.manual_seed(0)
    net = TwoLayer()
    x = gradcore.randn(16, 3)
    y = x[:, :2] * 0.5
    loss_fn = nn.MSELoss()
    losses = []
    for _ in range(50):
        loss = loss_fn(net(x), y)
        losses.append(loss.item())
        net.zero_grad()
        loss.backward()
        with gradcore.no_grad():
            for p in net.parameters():
                p -= 0.05 * p.grad
    assert losses[-1] < 0.5 * losses[0]
