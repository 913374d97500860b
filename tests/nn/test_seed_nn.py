"""The seed documents' snippets that need gradcore.nn (shared/seeds/), with what the posts print.
"""
import numpy as np
import pytest

import gradcore as torch  # the seeds' spelling
import gradcore.nn as nn
import gradcore.optim as optim

# 001 prints the weight of a randomly initialised nn.Linear(3, 1); the tests set those values.
POST_WEIGHT = [[-0.0043, 0.3097, -0.4752]]


def linear_with_post_weight():
    f = torch.nn.Linear(3, 1)
    with torch.no_grad():
        f.weight.copy_(torch.tensor(POST_WEIGHT))
    return f


def close(actual, expected, atol=1e-6):
    return np.allclose(np.asarray(actual.tolist() if hasattr(actual, "tolist") else actual, dtype=np.float64),
                       np.asarray(expected, dtype=np.float64), atol=atol, rtol=1e-5)


# 000 "Modules": SimpleNet (fc1 = Linear(10, 50), ReLU, fc2 = Linear(50, 1)), MSELoss; the optimizer step is
# written by hand here (see test_000_simplenet_with_optim_sgd for the optim version).
class SimpleNet(nn.Module):
    def __init__(self):
        super(SimpleNet, self).__init__()
        self.fc1 = nn.Linear(10, 50)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(50, 1)

    def forward(self, x):
        x = self.fc1(x)
        x = self.relu(x)
        x = self.fc2(x)
        return x


def test_000_simplenet_mse_and_hand_update():
    torch.manual_seed(0)
    model = SimpleNet()
    criterion = nn.MSELoss()
    input = torch.randn(5, 10)
    target = torch.randn(5, 1)
    output = model(input)
    assert output.shape == (5, 1)
    loss = criterion(output, target)
    assert loss.shape == () and loss.grad_fn is not None
    assert close(loss.item(), ((output.detach() - target) ** 2).mean().item())
    model.zero_grad()
    loss.backward()
    assert [n for n, _ in model.named_parameters()] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.01 * p.grad
    for p, old in zip(model.parameters(), before):
        assert torch.allclose(p.detach(), old - 0.01 * p.grad)
    assert criterion(model(input), target).item() < loss.item()


def test_000_simplenet_with_optim_sgd():
    torch.manual_seed(0)
    model = SimpleNet()
    criterion = nn.MSELoss()
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    input = torch.randn(5, 10)
    target = torch.randn(5, 1)
    output = model(input)
    loss = criterion(output, target)
    optimizer.zero_grad()
    loss.backward()
    expected = [p.detach() - 0.01 * p.grad for p in model.parameters()]
    optimizer.step()
    for p, e in zip(model.parameters(), expected):
        assert torch.allclose(p.detach(), e)


# 001 clone() versus detach() with f = torch.nn.Linear(3, 1); the post prints
# tensor([-0.0043, 0.3097, -0.4752]) None False False.
def test_001_clone_keeps_gradient_flowing_to_the_original():
    x = torch.tensor([1., 2., 3.], requires_grad=True)
    clone_x = x.clone()
    detach_x = x.detach()
    clone_detach_x = x.detach().clone()
    f = linear_with_post_weight()
    y = f(clone_x)
    y.backward()
    assert close(x.grad, POST_WEIGHT[0])
    with pytest.warns(UserWarning, match="not a leaf Tensor"):  # PyTorch warns here too
        assert clone_x.grad is None
    assert detach_x.requires_grad is False
    assert clone_detach_x.requires_grad is False


# The second variant prints None tensor([-0.0043, 0.3097, -0.4752]) False False.
def test_001_clone_requires_grad_gets_the_gradient():
    x = torch.tensor([1., 2., 3.], requires_grad=False)
    clone_x = x.clone().requires_grad_()
    detach_x = x.detach()
    clone_detach_x = x.detach().clone()
    f = linear_with_post_weight()
    y = f(clone_x)
    y.backward()
    assert x.grad is None
    assert close(clone_x.grad, POST_WEIGHT[0])
    assert detach_x.requires_grad is False
    assert clone_detach_x.requires_grad is False


# 001 w = f.weight.detach() shares memory with the weight; the post prints the weight before
# (Parameter containing: tensor([[-0.0043, 0.3097, -0.4752]], requires_grad=True), and w the same without the
# flag) and after one SGD step of lr 0.1: [[-0.1043, 0.1097, -0.7752]] for both.
def test_001_detached_weight_shares_memory_printed_values():
    x = torch.tensor([1., 2., 3.], requires_grad=True)
    f = linear_with_post_weight()
    w = f.weight.detach()
    if w.device.type == "cpu":  # the printed lines; under --device cuda the repr names the device
        assert repr(f.weight) == "Parameter containing:\ntensor([[-0.0043,  0.3097, -0.4752]], requires_grad=True)"
        assert repr(w) == "tensor([[-0.0043,  0.3097, -0.4752]])"
    y = f(x)
    y.backward()
    with torch.no_grad():  # what optim.SGD(f.parameters(), 0.1).step() does
        for p in f.parameters():
            p -= 0.1 * p.grad
    assert close(f.weight, [[-0.1043, 0.1097, -0.7752]])
    assert close(w, [[-0.1043, 0.1097, -0.7752]])


def test_001_detached_weight_with_optim_sgd():
    x = torch.tensor([1., 2., 3.], requires_grad=True)
    f = linear_with_post_weight()
    w = f.weight.detach()
    y = f(x)
    y.backward()
    optimizer = torch.optim.SGD(f.parameters(), 0.1)
    optimizer.step()
    assert optim is torch.optim
    assert close(f.weight, [[-0.1043, 0.1097, -0.7752]])
    assert close(w, [[-0.1043, 0.1097, -0.7752]])  # the detached tensor shares the weight's memory
    if w.device.type == "cpu":  # the printed lines; under --device cuda the repr names the device
        assert repr(f.weight) == "Parameter containing:\ntensor([[-0.1043,  0.1097, -0.7752]], requires_grad=True)"
        assert repr(w) == "tensor([[-0.1043,  0.1097, -0.7752]])"


# 001 binary_cross_entropy_with_logits on z = matmul(ones(5), w) + b against y = zeros(3); prints w.grad, b.grad.
def test_001_binary_cross_entropy_with_logits_gradients():
    torch.manual_seed(0)
    x = torch.ones(5)  # input tensor
    y = torch.zeros(3)  # expected output
    w = torch.randn(5, 3, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    z = torch.matmul(x, w) + b
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
    loss.backward()
    # d(mean BCE)/dz = (sigmoid(z) - y) / 3; every row of w.grad is that, since x is all ones.
    dz = (1 / (1 + np.exp(-z.detach().numpy().astype(np.float64))) - 0.0) / 3
    assert close(b.grad, dz)
    assert close(w.grad, np.tile(dz, (5, 1)))
    assert w.grad.shape == (5, 3) and b.grad.shape == (3,)


# 002 SimpleModel(nn.Linear(10, 1)), MSELoss against [[1.]], trained with loss.backward() and SGD.
class SimpleModel(nn.Module):
    def __init__(self):
        super(SimpleModel, self).__init__()
        self.fc = nn.Linear(10, 1)

    def forward(self, x):
        return self.fc(x)


def test_002_simple_model_loss_backward():
    model = SimpleModel()
    criterion = nn.MSELoss()
    input_tensor = torch.randn(1, 10, requires_grad=True)
    target = torch.tensor([[1.]])
    output = model(input_tensor)
    loss = criterion(output, target)
    model.zero_grad()
    loss.backward()
    residual = output.item() - 1.0
    assert close(model.fc.bias.grad, [2 * residual])
    assert close(model.fc.weight.grad, 2 * residual * input_tensor.detach().numpy())
    assert close(input_tensor.grad, 2 * residual * model.fc.weight.detach().numpy())


def test_002_simple_model_with_optim_sgd():
    model = SimpleModel()
    criterion = nn.MSELoss()
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    input_tensor = torch.randn(1, 10, requires_grad=True)
    target = torch.tensor([[1.]])
    losses = []
    for _ in range(20):
        output = model(input_tensor)
        loss = criterion(output, target)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[-1] < losses[0]


# 003 the MyNet(torch.nn.Module) template: hidden Linear, sigmoid, output Linear; net(x) calls forward.
class MyNet(torch.nn.Module):
    def __init__(self, input_size, output_size, hidden_size):
        super().__init__()
        self.hidden = torch.nn.Linear(input_size, hidden_size)
        self.output = torch.nn.Linear(hidden_size, output_size)

    def forward(self, x):
        x = self.hidden(x)
        x = torch.sigmoid(x)
        x = self.output(x)
        return x


def test_003_mynet_template_and_generic_training_loop():
    torch.manual_seed(0)
    net = MyNet(4, 2, 8)
    x = torch.randn(16, 4)
    y = net(x)
    assert y.shape == (16, 2)
    manual = torch.sigmoid(x.mm(net.hidden.weight.t()) + net.hidden.bias).mm(net.output.weight.t()) + net.output.bias
    assert torch.allclose(y, manual)
    assert [n for n, _ in net.named_parameters()] == ["hidden.weight", "hidden.bias", "output.weight",
                                                      "output.bias"]
    # The loop of the post: zero_grad / forward / loss / backward / step (the step by hand).
    target = x[:, :2].detach() * 0.5
    compute_loss = nn.MSELoss()
    first = None
    for _ in range(100):
        net.zero_grad()
        output = net(x)
        loss = compute_loss(output, target)
        loss.backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= 0.1 * p.grad
        first = loss.item() if first is None else first
    assert loss.item() < 0.5 * first


def test_003_generic_training_loop_with_optim():
    torch.manual_seed(0)
    net = MyNet(4, 2, 8)
    optimizer = optim.SGD(net.parameters(), lr=0.1)
    x = torch.randn(16, 4)
    target = x[:, :2] * 0.5
    losses = []
    for _ in range(100):
        optimizer.zero_grad()
        output = net(x)
        loss = nn.MSELoss()(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
