"""Tests for the runnable code snippets of the seed documents (shared/seeds/).

Each test reproduces one snippet with `import gradcore as torch` and asserts what the post prints.
Only the core is exercised here: tensors, autograd, autograd.Function, no_grad, dtypes, numpy interop,
in-place ops, detach/clone, retain_grad, grad_fn / next_functions, backward(gradient=...),
retain_graph / create_graph, the hand-written two-layer MLP and the legacy constructors.

Snippets left to the nn issue (they need nn / optim / jit / nn.functional, or are not PyTorch code):
  - 000 "Modules": SimpleNet with nn.Module, nn.Linear, nn.ReLU, nn.MSELoss and optim.SGD.
  - 000 "静态计算图" (static graph): the MLP wrapped in torch.jit.script (needs jit).
  - 001 clone() vs detach() with f = torch.nn.Linear(3, 1), both variants (x requiring grad, and
    x.clone().requires_grad_()) - need nn.Linear.
  - 001 w = f.weight.detach() followed by optim.SGD(f.parameters(), 0.1).step() - needs nn.Linear, optim.
  - 001 torch.nn.functional.binary_cross_entropy_with_logits(z, y) on torch.matmul(torch.ones(5), w) + b
    - needs nn.functional.
  - 002 SimpleModel (nn.Linear(10, 1), nn.MSELoss, optim.SGD) trained with loss.backward() / optimizer.step().
  - 003 the generic training loop (optimizer.zero_grad() / net(x) / loss.backward() / optimizer.step())
    and the MyNet(torch.nn.Module) template - need nn and optim.
  - 004 the TensorFlow 1.x static-graph version of x = a + b; y = c * d; z = x + y (not PyTorch code).
"""

import gradcore as torch
import numpy as np
import pytest


def as_printed_by_torch(text: str) -> str:
    """gradcore names itself where PyTorch prints "torch." (torch.Size, torch.float32, torch.FloatTensor)."""
    return text.replace("gradcore.", "torch.")


def _close(actual, expected, rtol=1e-5, atol=1e-6):
    """Numeric comparison of a tensor (or nested list / number) with the expected values."""
    if hasattr(actual, "tolist"):
        actual = actual.tolist()
    return np.allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                       rtol=rtol, atol=atol)


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-np.asarray(v, dtype=np.float64)))


# --------------------------------------------------------------------------------------------------
# 000_33bd822df550f711.txt
# --------------------------------------------------------------------------------------------------

# 000, "使用 Autograd" (using autograd): y = x[0]**2 + x[1]**3 with x = [2., 3.];
# print(x.grad) -> tensor([4., 27.]).
def test_000_indexing_power_backward_gives_4_27():
    x = torch.tensor([2.0, 3.0], requires_grad=True)
    y = x[0] ** 2 + x[1] ** 3
    assert _close(y.item(), 4.0 + 27.0)
    y.backward()
    assert x.grad.tolist() == [4.0, 27.0]


# 000, text after the first snippet: .grad accumulates over backward() calls; x.grad.zero_() resets it.
def test_000_gradient_accumulation_and_zero_():
    x = torch.tensor([2.0, 3.0], requires_grad=True)
    (x[0] ** 2 + x[1] ** 3).backward()
    (x[0] ** 2 + x[1] ** 3).backward()
    assert x.grad.tolist() == [8.0, 54.0]
    x.grad.zero_()
    assert x.grad.tolist() == [0.0, 0.0]
    (x[0] ** 2 + x[1] ** 3).backward()
    assert x.grad.tolist() == [4.0, 27.0]


# 000, text: "default requires_grad is False" and operations under torch.no_grad() are not tracked.
def test_000_requires_grad_default_and_no_grad():
    t = torch.tensor([1.0, 2.0])
    assert t.requires_grad is False
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    with torch.no_grad():
        y = x * 2
    assert y.requires_grad is False
    assert y.grad_fn is None
    assert y.tolist() == [2.0, 4.0]
    z = x * 2
    assert z.requires_grad is True


# 000, "Example": two-layer MLP y_pred = x.mm(w1).clamp(min=0).mm(w2), N=64, D_in=1000, H=100, D_out=10,
# trained 500 steps by hand with lr=1e-6, updates under torch.no_grad() and w.grad.zero_().
def test_000_two_layer_mlp_manual_sgd():
    torch.manual_seed(0)
    N, D_in, H, D_out = 64, 1000, 100, 10
    x = torch.randn(N, D_in)
    y = torch.randn(N, D_out)
    w1 = torch.randn(D_in, H, requires_grad=True)
    w2 = torch.randn(H, D_out, requires_grad=True)
    assert x.shape == (N, D_in) and w1.shape == (D_in, H) and w2.shape == (H, D_out)

    learning_rate = 1e-6
    losses = []
    for t in range(500):
        y_pred = x.mm(w1).clamp(min=0).mm(w2)
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            w1 -= learning_rate * w1.grad
            w2 -= learning_rate * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()

    assert y_pred.shape == (N, D_out)
    assert all(np.isfinite(losses))
    # The loss drops by several orders of magnitude on this seeded problem.
    assert losses[-1] < losses[0] / 1e6
    assert losses[-1] < losses[250] < losses[0]
    # The in-place updates under no_grad keep the weights as trainable leaves; grads are zeroed.
    assert w1.is_leaf and w1.requires_grad and w1.grad_fn is None
    assert w2.is_leaf and w2.requires_grad
    assert float(np.abs(np.asarray(w1.grad.tolist())).max()) == 0.0


# 000, "自定义函数" (custom function): SigmoidFunction(torch.autograd.Function) with ctx.save_for_backward(result);
# y = SigmoidFunction.apply(x) for x = [1., 2., 3.]; y.backward(torch.ones_like(x)); print(x.grad).
def test_000_custom_sigmoid_function():
    class SigmoidFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            result = 1 / (1 + torch.exp(-input))
            ctx.save_for_backward(result)
            return result

        @staticmethod
        def backward(ctx, grad_output):
            result, = ctx.saved_tensors
            grad_input = grad_output * result * (1 - result)
            return grad_input

    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    sigmoid = SigmoidFunction.apply
    y = sigmoid(x)
    s = _sigmoid([1.0, 2.0, 3.0])
    assert _close(y, s)
    assert y.requires_grad is True
    assert y.grad_fn is not None
    y.backward(torch.ones_like(x))
    assert _close(x.grad, s * (1 - s))


# 000, "动态计算图" (dynamic graph): dynamic_model(x, threshold) takes the `x * 2` branch because x.sum() = 6 > 5;
# y.backward(torch.ones_like(x)); print(x.grad) -> [2., 2., 2.].
def test_000_dynamic_model_python_control_flow():
    def dynamic_model(x, threshold):
        if x.sum() > threshold:
            return x * 2
        else:
            return x / 2

    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = dynamic_model(x, 5.0)
    y.backward(torch.ones_like(x))
    assert x.grad.tolist() == [2.0, 2.0, 2.0]

    # Same function, other branch (sum 6 <= 10): the graph follows the taken path.
    x2 = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    dynamic_model(x2, 10.0).backward(torch.ones_like(x2))
    assert x2.grad.tolist() == [0.5, 0.5, 0.5]


# --------------------------------------------------------------------------------------------------
# 001_9e253ae0dff8d1d4.txt
# --------------------------------------------------------------------------------------------------

# 001, first snippet: y = (x + w) * (w + 1) with w = 1, x = 2 built from torch.add / torch.mul;
# prints w.grad 5, is_leaf True True False False False, gradient tensor([5.]) tensor([2.]) None None None.
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_001_graph_add_mul_leaf_grads():
    w = torch.tensor([1.0], requires_grad=True)
    x = torch.tensor([2.0], requires_grad=True)
    a = torch.add(w, x)
    b = torch.add(w, 1)
    y = torch.mul(a, b)
    assert y.tolist() == [6.0]
    y.backward()
    assert w.grad.tolist() == [5.0]
    assert (w.is_leaf, x.is_leaf, a.is_leaf, b.is_leaf, y.is_leaf) == (True, True, False, False, False)
    assert x.grad.tolist() == [2.0]
    assert a.grad is None
    assert b.grad is None
    assert y.grad is None


# 001, second snippet: same graph with a.retain_grad();
# prints gradient tensor([5.]) tensor([2.]) tensor([2.]) None None.
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_001_retain_grad_on_non_leaf():
    w = torch.tensor([1.0], requires_grad=True)
    x = torch.tensor([2.0], requires_grad=True)
    a = torch.add(w, x)
    a.retain_grad()
    b = torch.add(w, 1)
    y = torch.mul(a, b)
    y.backward()
    assert w.grad.tolist() == [5.0]
    assert x.grad.tolist() == [2.0]
    assert a.grad.tolist() == [2.0]
    assert b.grad is None
    assert y.grad is None
    assert (w.is_leaf, x.is_leaf, a.is_leaf, b.is_leaf, y.is_leaf) == (True, True, False, False, False)


# 001, "grad_fn" snippet: print(w.grad_fn, x.grad_fn, a.grad_fn, b.grad_fn, y.grad_fn)
# -> None None <AddBackward0> <AddBackward0> <MulBackward0>.
def test_001_grad_fn_of_leaves_and_results():
    w = torch.tensor([1.0], requires_grad=True)
    x = torch.tensor([2.0], requires_grad=True)
    a = torch.add(w, x)
    b = torch.add(w, 1)
    y = torch.mul(a, b)
    assert w.grad_fn is None
    assert x.grad_fn is None
    assert a.grad_fn.name() == "AddBackward0"
    assert b.grad_fn.name() == "AddBackward0"
    assert y.grad_fn.name() == "MulBackward0"


# 001, dtype paragraph: the default tensor type is torch.FloatTensor; long(), int(), double(), float(),
# byte() convert; a LongTensor becomes a FloatTensor with data.float().
def test_001_dtype_conversions():
    data = torch.tensor([1.0, 2.0, 3.0])
    assert data.dtype == torch.float32
    assert as_printed_by_torch(data.type()) == "torch.FloatTensor"

    assert data.long().dtype == torch.int64
    assert as_printed_by_torch(data.long().type()) == "torch.LongTensor"
    assert data.int().dtype == torch.int32
    assert as_printed_by_torch(data.int().type()) == "torch.IntTensor"
    assert data.double().dtype == torch.float64
    assert as_printed_by_torch(data.double().type()) == "torch.DoubleTensor"
    assert data.byte().dtype == torch.uint8
    assert as_printed_by_torch(data.byte().type()) == "torch.ByteTensor"

    long_data = torch.tensor([1, 2, 3])
    assert long_data.dtype == torch.int64
    as_float = long_data.float()
    assert as_float.dtype == torch.float32
    assert as_printed_by_torch(as_float.type()) == "torch.FloatTensor"
    assert as_float.tolist() == [1.0, 2.0, 3.0]

    # Conversion to an integer type truncates toward zero.
    assert torch.tensor([1.7, -2.7]).long().tolist() == [1, -2]
    assert torch.tensor([1.7, -2.7]).int().tolist() == [1, -2]


# 001, CPU-GPU paragraph: data.cuda() gives a torch.cuda.FloatTensor, data.cpu() brings it back.
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_001_cuda_and_cpu_transfer():
    data = torch.tensor([1.0, 2.0, 3.0])
    gpu = data.cuda()
    assert gpu.is_cuda
    assert gpu.device.type == "cuda"
    assert as_printed_by_torch(gpu.type()) == "torch.cuda.FloatTensor"
    back = gpu.cpu()
    assert not back.is_cuda
    assert back.device.type == "cpu"
    assert as_printed_by_torch(back.type()) == "torch.FloatTensor"
    assert back.tolist() == [1.0, 2.0, 3.0]


# 001, Tensor <-> numpy paragraph: data.numpy() and torch.from_numpy(data).
def test_001_numpy_interop():
    data = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    arr = data.numpy()
    assert isinstance(arr, np.ndarray)
    assert arr.dtype == np.float32
    assert arr.tolist() == [[1.0, 2.0], [3.0, 4.0]]

    src = np.array([1.0, 2.0, 3.0])
    t = torch.from_numpy(src)
    assert t.dtype == torch.float64
    assert t.tolist() == [1.0, 2.0, 3.0]
    # from_numpy shares memory with the array.
    src[0] = 10.0
    assert t.tolist() == [10.0, 2.0, 3.0]

    ints = torch.from_numpy(np.array([1, 2], dtype=np.int64))
    assert ints.dtype == torch.int64


# 001, "tensor 操作" (tensor operations): a = torch.FloatTensor([[1, 2, 3], [4, 5, 6]]);
# a.shape -> torch.Size([2, 3]); torch.FloatTensor([1, 2, 3]).shape -> torch.Size([3]).
def test_001_float_tensor_from_list_shape():
    a = torch.FloatTensor([[1, 2, 3], [4, 5, 6]])
    assert a.shape == torch.Size([2, 3])
    assert a.shape == (2, 3)
    assert a.size() == (2, 3)
    assert a.dtype == torch.float32
    assert a.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    b = torch.FloatTensor([1, 2, 3])
    assert b.shape == torch.Size([3])
    assert b.shape == (3,)


# 001, "一个空张量" (an empty tensor of a given size): torch.IntTensor(2, 4).zero_(),
# torch.FloatTensor(2, 4).zero_(), a = torch.ones(2, 2, requires_grad=True),
# b = torch.rand_like(a, requires_grad=True).
def test_001_sized_legacy_constructors_ones_rand_like():
    i = torch.IntTensor(2, 4).zero_()
    assert i.dtype == torch.int32
    assert i.shape == (2, 4)
    assert i.tolist() == [[0, 0, 0, 0], [0, 0, 0, 0]]
    f = torch.FloatTensor(2, 4).zero_()
    assert f.dtype == torch.float32
    assert f.shape == (2, 4)
    assert f.tolist() == [[0.0] * 4, [0.0] * 4]

    a = torch.ones(2, 2, requires_grad=True)
    assert a.requires_grad and a.is_leaf
    assert a.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    b = torch.rand_like(a, requires_grad=True)
    assert b.shape == (2, 2)
    assert b.dtype == torch.float32
    assert b.requires_grad and b.is_leaf
    vals = np.asarray(b.tolist())
    assert ((vals >= 0.0) & (vals < 1.0)).all()


# 001, in-place paragraph: a function with a trailing underscore changes its operand; without the
# underscore the result is a new tensor.
def test_001_inplace_ops_trailing_underscore():
    t = torch.tensor([1.0, 2.0, 3.0])
    u = t.add(1)
    assert t.tolist() == [1.0, 2.0, 3.0]
    assert u.tolist() == [2.0, 3.0, 4.0]
    r = t.add_(1)
    assert t.tolist() == [2.0, 3.0, 4.0]
    assert r is t
    t.mul_(2)
    assert t.tolist() == [4.0, 6.0, 8.0]
    t.zero_()
    assert t.tolist() == [0.0, 0.0, 0.0]


# 001, last sentence: a leaf that requires grad cannot be modified in place; nodes that depend on a
# leaf requiring grad require grad themselves.
def test_001_leaf_requiring_grad_rejects_inplace():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        w.add_(1)
    assert w.tolist() == [1.0, 2.0]
    y = w * 3
    assert y.requires_grad is True


# 001, clone()/detach() paragraph (the part that needs no nn): clone() stays in the graph and gradient
# flows back to the original; detach() (and detach().clone()) do not require grad.
def test_001_clone_in_graph_detach_out_of_graph():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    clone_x = x.clone()
    detach_x = x.detach()
    clone_detach_x = x.detach().clone()
    assert clone_x.requires_grad is True
    assert clone_x.grad_fn is not None
    assert detach_x.requires_grad is False
    assert clone_detach_x.requires_grad is False

    (clone_x * torch.tensor([4.0, 5.0, 6.0])).sum().backward()
    assert x.grad.tolist() == [4.0, 5.0, 6.0]

    # clone() owns new memory, detach() shares it.
    with torch.no_grad():
        x[0] = 100.0
    assert clone_x.tolist()[0] == 1.0
    assert clone_detach_x.tolist()[0] == 1.0
    assert detach_x.tolist()[0] == 100.0


# 001, detach() snippet: out = a.sigmoid(); c = out.detach(); c.zero_() also zeroes out;
# then out.sum().backward() fails because a tensor saved for backward was modified in place.
def test_001_detach_shares_memory_and_inplace_breaks_backward():
    a = torch.tensor([1, 2, 3.0], requires_grad=True)
    out = a.sigmoid()
    c = out.detach()
    c.zero_()
    assert c.requires_grad is False
    assert c.tolist() == [0.0, 0.0, 0.0]
    assert out.requires_grad is True
    assert out.tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


# 001, "tensor属性" (tensor attributes): tensor = torch.rand(3, 4);
# prints "Shape of tensor: torch.Size([3, 4])", "Datatype of tensor: torch.float32",
# "Device tensor is stored on: cpu".
def test_001_tensor_attributes_shape_dtype_device():
    tensor = torch.rand(3, 4)
    assert as_printed_by_torch(f"Shape of tensor: {tensor.shape}") == "Shape of tensor: torch.Size([3, 4])"
    assert as_printed_by_torch(f"Datatype of tensor: {tensor.dtype}") == "Datatype of tensor: torch.float32"
    assert f"Device tensor is stored on: {tensor.device}" == "Device tensor is stored on: cpu"
    assert tensor.shape == (3, 4)
    assert tensor.dtype == torch.float32


# 001, grad snippet: a = torch.randn(3, 5, requires_grad=True); b = a.sum(); c = a.mean();
# b.backward() -> ones; c.backward() accumulates 1/15; a.grad.zero_(); c.backward() -> 1/15.
def test_001_sum_mean_accumulation_and_zero_():
    a = torch.randn(3, 5, requires_grad=True)
    assert a.grad is None
    b = a.sum()
    c = a.mean()
    b.backward()
    assert _close(a.grad, np.ones((3, 5)))
    c.backward()
    assert _close(a.grad, np.full((3, 5), 1.0 + 1.0 / 15.0))
    a.grad.zero_()
    assert _close(a.grad, np.zeros((3, 5)))
    c.backward()
    assert _close(a.grad, np.full((3, 5), 1.0 / 15.0))


# 001, requires_grad snippets: print(tensor.grad_fn), print(tensor.requires_grad), x.requires_grad_();
# a = torch.randn(3, 5); a.requires_grad_(); a -> requires_grad=True.
def test_001_requires_grad_():
    a = torch.randn(3, 5)
    assert a.requires_grad is False
    assert a.grad_fn is None
    r = a.requires_grad_()
    assert r is a
    assert a.requires_grad is True
    assert a.is_leaf
    a.sum().backward()
    assert _close(a.grad, np.ones((3, 5)))


# 001, interactive session after torch.manual_seed(seed=20200910): data_mean, data_1, data_2 (with
# retain_grad), data_3, loss; after loss.backward() data_in.grad is 20200910 everywhere, data_2.grad is
# tensor(1.), the other grads are None; is_leaf: True False False False False False.
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_001_mean_chain_retain_grad_session():
    torch.manual_seed(seed=20200910)
    data_in = torch.randn(3, 5, requires_grad=True)
    data_mean = data_in.mean()
    assert data_in.requires_grad is True
    assert data_mean.requires_grad is True
    data_1 = data_mean * 20200910.0
    data_2 = data_1 * 15.0
    data_2.retain_grad()
    data_3 = 2 * (data_2 + 55.0)
    loss = data_3 / 2.0 + 89.2
    assert _close(loss.item(), data_mean.item() * 20200910.0 * 15.0 + 55.0 + 89.2, rtol=1e-5)
    assert (data_in.grad, data_mean.grad, data_1.grad, data_2.grad, data_3.grad, loss.grad) == (None,) * 6

    loss.backward()
    assert _close(data_in.grad, np.full((3, 5), 20200910.0), rtol=1e-6)
    assert data_2.grad.shape == ()
    assert data_2.grad.item() == 1.0
    assert data_mean.grad is None
    assert data_1.grad is None
    assert data_3.grad is None
    assert loss.grad is None
    leaves = (data_in.is_leaf, data_mean.is_leaf, data_1.is_leaf,
              data_2.is_leaf, data_3.is_leaf, loss.is_leaf)
    assert leaves == (True, False, False, False, False, False)


# 001, same session: the values printed after torch.manual_seed(seed=20200910) - data_in,
# data_mean tensor(0.0585), data_1 tensor(1182591.), data_2 tensor(17738864.), loss tensor(17739010.).
def test_001_manual_seed_20200910_printed_values():
    torch.manual_seed(seed=20200910)
    data_in = torch.randn(3, 5, requires_grad=True)
    expected = [[0.2824, -0.3715, 0.9088, -1.7601, -0.1806],
                [2.0937, 1.0406, -1.7651, 1.1216, 0.8440],
                [0.1783, 0.6859, -1.5942, -0.2006, -0.4050]]
    assert _close(data_in, expected, rtol=0, atol=1e-4)
    data_mean = data_in.mean()
    assert _close(data_mean.item(), 0.0585, rtol=0, atol=1e-4)
    data_1 = data_mean * 20200910.0
    data_2 = data_1 * 15.0
    loss = 2 * (data_2 + 55.0) / 2.0 + 89.2
    assert _close(data_1.item(), 1182591.0, rtol=1e-6)
    assert _close(data_2.item(), 17738864.0, rtol=1e-6)
    assert _close(loss.item(), 17739010.0, rtol=1e-6)


# 001, torch.autograd.backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False):
# torch.autograd.backward(z) is the same as z.backward().
def test_001_autograd_backward_function_equals_method():
    w = torch.tensor([1.0], requires_grad=True)
    x = torch.tensor([2.0], requires_grad=True)
    z = torch.mul(torch.add(w, x), torch.add(w, 1))
    torch.autograd.backward(z)
    assert w.grad.tolist() == [5.0]
    assert x.grad.tolist() == [2.0]

    v = torch.ones(2, requires_grad=True)
    torch.autograd.backward(v * 3, grad_tensors=torch.tensor([1.0, 2.0]))
    assert v.grad.tolist() == [3.0, 6.0]


# 001, grad_tensors snippet: loss = torch.cat([y0, y1], dim=0) with y0 = (x+w)*(w+1), y1 = (x+w)+(w+1);
# loss.backward(gradient=torch.tensor([1., 2.])) -> w.grad tensor([9.]); with [1., 1.] or
# torch.ones_like(loss) -> tensor([7.]).
def test_001_backward_with_gradient_weights_on_cat():
    def build():
        w = torch.tensor([1.0], requires_grad=True)
        x = torch.tensor([2.0], requires_grad=True)
        a = torch.add(w, x)
        b = torch.add(w, 1)
        y0 = torch.mul(a, b)
        y1 = torch.add(a, b)
        loss = torch.cat([y0, y1], dim=0)
        return w, x, loss

    w, x, loss = build()
    assert loss.tolist() == [6.0, 5.0]
    assert loss.shape == (2,)
    loss.backward(gradient=torch.tensor([1.0, 2.0]))
    assert w.grad.tolist() == [9.0]
    assert x.grad.tolist() == [4.0]

    w, x, loss = build()
    loss.backward(gradient=torch.tensor([1.0, 1.0]))
    assert w.grad.tolist() == [7.0]

    w, x, loss = build()
    loss.backward(gradient=torch.ones_like(loss))
    assert w.grad.tolist() == [7.0]


# 001, x = torch.ones(2, requires_grad=True); z = x + 2; z.backward()
# -> RuntimeError: grad can be implicitly created only for scalar outputs.
def test_001_implicit_backward_on_non_scalar_raises():
    x = torch.ones(2, requires_grad=True)
    z = x + 2
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        z.backward()


# 001, the two fixes: z.backward(torch.ones_like(z)) and z.sum().backward() both print tensor([1., 1.]).
def test_001_non_scalar_backward_with_ones_or_sum():
    x = torch.ones(2, requires_grad=True)
    z = x + 2
    z.backward(torch.ones_like(z))
    assert x.grad.tolist() == [1.0, 1.0]

    x = torch.ones(2, requires_grad=True)
    z = x + 2
    z.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


# 001, retain_graph snippet: z = torch.mm(x.view(1, 2), y) -> [[5., 8.]];
# z.backward(torch.Tensor([[1., 0]]), retain_graph=True) -> x.grad [1., 3.], y.grad [[2., 0.], [1., 0.]]
# (the post shows x.grad as [[1., 3.]], but x is 1-D so its grad has shape (2,)).
def test_001_mm_backward_with_retain_graph():
    x = torch.tensor([2.0, 1.0], requires_grad=True)
    y = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    z = torch.mm(x.view(1, 2), y)
    assert z.tolist() == [[5.0, 8.0]]
    assert z.grad_fn.name() == "MmBackward0"
    z.backward(torch.Tensor([[1.0, 0]]), retain_graph=True)
    assert x.grad.shape == (2,)
    assert x.grad.tolist() == [1.0, 3.0]
    assert y.grad.tolist() == [[2.0, 0.0], [1.0, 0.0]]

    # The retained graph can be traversed again; gradients accumulate.
    z.backward(torch.Tensor([[1.0, 0]]))
    assert x.grad.tolist() == [2.0, 6.0]
    assert y.grad.tolist() == [[4.0, 0.0], [2.0, 0.0]]


# 001, retain_graph text: without retain_graph=True the graph is freed after backward(), so a second
# backward() through it fails.
def test_001_second_backward_without_retain_graph_raises():
    x = torch.tensor([3.0], requires_grad=True)
    y = x * x
    y.backward()
    assert x.grad.tolist() == [6.0]
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


# 001, create_graph text: with create_graph=True the derivative itself is part of a graph, which allows
# higher-order derivatives (d/dx x**3 = 27 at x=3, then d2/dx2 = 18).
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_001_create_graph_second_derivative():
    x = torch.tensor(3.0, requires_grad=True)
    y = x ** 3
    y.backward(create_graph=True)
    g = x.grad
    assert g.item() == 27.0
    assert g.requires_grad is True
    assert g.grad_fn is not None
    x.grad = None
    g.backward()
    assert x.grad.item() == 18.0


# 001, "梯度不自动清零" (gradients are not zeroed automatically) loop: four backward() calls on
# y = (x + w) * (w + 1) print w.grad tensor([5.]), tensor([10.]), tensor([15.]), tensor([20.]).
def test_001_gradient_accumulates_over_loop():
    w = torch.tensor([1.0], requires_grad=True)
    x = torch.tensor([2.0], requires_grad=True)
    seen = []
    for i in range(4):
        a = torch.add(w, x)
        b = torch.add(w, 1)
        y = torch.mul(a, b)
        y.backward()
        seen.append(w.grad.item())
    assert seen == [5.0, 10.0, 15.0, 20.0]


# 001, same loop with the commented-out w.grad.zero_() enabled: w.grad is tensor([5.]) every time.
def test_001_gradient_zeroed_each_iteration():
    w = torch.tensor([1.0], requires_grad=True)
    x = torch.tensor([2.0], requires_grad=True)
    seen = []
    for i in range(4):
        a = torch.add(w, x)
        b = torch.add(w, 1)
        y = torch.mul(a, b)
        y.backward()
        seen.append(w.grad.item())
        w.grad.zero_()
    assert seen == [5.0, 5.0, 5.0, 5.0]
    assert w.grad.tolist() == [0.0]


# --------------------------------------------------------------------------------------------------
# 002_4cbe1333a2ca43fd.txt
# --------------------------------------------------------------------------------------------------

class CustomReLU(torch.autograd.Function):
    # 002, custom autograd Function section: forward saves the input and returns input.clamp(min=0);
    # backward clones grad_output and zeroes it where input < 0.
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input < 0] = 0
        return grad_input


# 002, section 三.1: custom_relu = CustomReLU.apply on input_tensor = torch.randn(5, requires_grad=True);
# loss = output.sum(); loss.backward(); the gradient is 1 where the input is >= 0 and 0 elsewhere.
def test_002_custom_relu_on_random_input():
    torch.manual_seed(0)
    custom_relu = CustomReLU.apply
    input_tensor = torch.randn(5, requires_grad=True)
    output = custom_relu(input_tensor)
    vals = np.asarray(input_tensor.tolist())
    assert _close(output, np.maximum(vals, 0.0))
    loss = output.sum()
    loss.backward()
    assert input_tensor.grad.shape == (5,)
    assert _close(input_tensor.grad, (vals >= 0).astype(np.float64))


# 002, same CustomReLU on a fixed input with both signs (the random one may have only one sign).
def test_002_custom_relu_masked_backward_fixed_input():
    input_tensor = torch.tensor([-2.0, -0.5, 0.5, 1.0, 3.0], requires_grad=True)
    output = CustomReLU.apply(input_tensor)
    assert output.tolist() == [0.0, 0.0, 0.5, 1.0, 3.0]
    assert output.requires_grad is True
    output.backward(torch.tensor([10.0, 20.0, 30.0, 40.0, 50.0]))
    assert input_tensor.grad.tolist() == [0.0, 0.0, 30.0, 40.0, 50.0]


# 002, section 二: ctx.save_for_backward(...) in forward and ctx.saved_tensors (a tuple, unpacked with
# `input, = ...`) in backward carry data between the two passes.
def test_002_ctx_saved_tensors_is_tuple():
    seen = {}

    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return input * input

        @staticmethod
        def backward(ctx, grad_output):
            saved = ctx.saved_tensors
            seen["type"] = type(saved)
            seen["len"] = len(saved)
            input, = saved
            seen["input"] = input.tolist()
            return 2 * input * grad_output

    x = torch.tensor([1.0, -3.0], requires_grad=True)
    Square.apply(x).sum().backward()
    assert seen == {"type": tuple, "len": 1, "input": [1.0, -3.0]}
    assert x.grad.tolist() == [2.0, -6.0]


# --------------------------------------------------------------------------------------------------
# 003_78637b8a72789645.txt
# --------------------------------------------------------------------------------------------------

# 003, "张量底层结构" (tensor internals): a tensor is a header (shape, strides) over a shared storage, so views and
# reshapes of a contiguous tensor share the same data.
def test_003_views_and_reshapes_share_storage():
    t = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    v = t.view(2, 3)
    assert v.shape == (2, 3)
    assert v.stride() == (3, 1)
    v[0, 0] = 100.0
    assert t.tolist()[0] == 100.0
    r = t.reshape(3, 2)
    assert r.stride() == (2, 1)
    r[2, 1] = -5.0
    assert t.tolist()[5] == -5.0
    assert v.tolist()[1][2] == -5.0
    t.add_(1)
    assert v.tolist() == [[101.0, 2.0, 3.0], [4.0, 5.0, -4.0]]


# 003, "张量几个关键属性" (key tensor attributes): tensor.data, tensor.grad, tensor.grad_fn and walking the
# graph through tensor.grad_fn.next_functions, here for tensor = sigmoid(x).
def test_003_data_grad_grad_fn_next_functions():
    x = torch.tensor([0.0, 1.0], requires_grad=True)
    tensor = torch.sigmoid(x)
    assert tensor.grad_fn.name() == "SigmoidBackward0"
    data = tensor.data
    assert data.requires_grad is False
    assert _close(data, _sigmoid([0.0, 1.0]))
    nf = tensor.grad_fn.next_functions
    assert len(nf) == 1
    node, index = nf[0]
    assert index == 0
    assert node.variable is x
    assert tensor.is_leaf is False
    tensor.sum().backward()
    s = _sigmoid([0.0, 1.0])
    assert _close(x.grad, s * (1 - s))


# --------------------------------------------------------------------------------------------------
# 004_1567401928104a72.txt
# --------------------------------------------------------------------------------------------------

# 004, section 2.2 (PyTorch version): a, b, c, d = 1, 2, 3, 4; x = a + b (AddBackward0),
# y = c * d (MulBackward0), z = x + y (AddBackward0); values 3, 12, 15; grads a=1, b=1, c=4, d=3.
def test_004_add_mul_graph_values_names_and_grads():
    a = torch.tensor([1.0], requires_grad=True)
    b = torch.tensor([2.0], requires_grad=True)
    c = torch.tensor([3.0], requires_grad=True)
    d = torch.tensor([4.0], requires_grad=True)
    x = a + b
    assert x.item() == 3.0
    assert x.grad_fn.name() == "AddBackward0"
    y = c * d
    assert y.item() == 12.0
    assert y.grad_fn.name() == "MulBackward0"
    z = x + y
    assert z.item() == 15.0
    assert z.grad_fn.name() == "AddBackward0"

    L = z
    L.backward()
    assert a.grad.item() == 1.0
    assert b.grad.item() == 1.0
    assert c.grad.item() == 4.0
    assert d.grad.item() == 3.0


# 004, same graph walked through grad_fn.next_functions: z's node points to x's AddBackward0 and y's
# MulBackward0, which point to the accumulators of the leaves a, b and c, d.
def test_004_next_functions_walk_the_graph():
    a = torch.tensor([1.0], requires_grad=True)
    b = torch.tensor([2.0], requires_grad=True)
    c = torch.tensor([3.0], requires_grad=True)
    d = torch.tensor([4.0], requires_grad=True)
    x = a + b
    y = c * d
    z = x + y
    (n0, _), (n1, _) = z.grad_fn.next_functions
    assert n0.name() == "AddBackward0"
    assert n1.name() == "MulBackward0"
    assert len(n0.next_functions) == 2 and len(n1.next_functions) == 2
    assert all(fn.variable is leaf for (fn, _), leaf in zip(n0.next_functions, (a, b)))
    assert all(fn.variable is leaf for (fn, _), leaf in zip(n1.next_functions, (c, d)))


# 004, section 3: control flow on a.item() > 0 with a = 1, b = 2: x = a + b = 3, y = x * 2 = 6,
# y.backward(); a.grad 2, b.grad 2.
def test_004_dynamic_control_flow_on_item():
    a = torch.tensor([1.0], requires_grad=True)
    b = torch.tensor([2.0], requires_grad=True)
    if a.item() > 0:
        x = a + b
        assert x.item() == 3.0
    else:
        x = a - b
    y = x * 2
    assert y.item() == 6.0
    y.backward()
    assert a.grad.item() == 2.0
    assert b.grad.item() == 2.0


# 004, section 3, the other branch of the same code (a = -1 takes x = a - b): a.grad 2, b.grad -2.
def test_004_dynamic_control_flow_else_branch():
    a = torch.tensor([-1.0], requires_grad=True)
    b = torch.tensor([2.0], requires_grad=True)
    if a.item() > 0:
        x = a + b
    else:
        x = a - b
    assert x.grad_fn.name() == "SubBackward0"
    y = x * 2
    assert y.item() == -6.0
    y.backward()
    assert a.grad.item() == 2.0
    assert b.grad.item() == -2.0
