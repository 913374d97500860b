"""Transfers, device errors and gradients across devices, on the CuPy test double (``fake_cupy``, no GPU).

"CUDA" tensors here hold arrays of the double's own array type, which refuses to meet numpy arrays in an op: a
missing transfer or an op mixing devices fails as it would on a GPU. What the double cannot check (CuPy's own
numerics, streams, memory) is listed in fake_cupy.py; tests/devices/test_cuda_gpu.py checks those on a GPU.
Gradients are compared with the same computation in PyTorch on the CPU.
"""
import numpy as np
import pytest
import torch

import gradcore

MIXED = "Expected all tensors to be on the same device, but found at least two devices, {} and {}!"


def on_device(t) -> bool:
    """True when the tensor's memory is the double's device array, not a numpy array."""
    return type(t._data) is not np.ndarray and t._data.__class__.__module__ == "fake_cupy"


# -- transfers ---------------------------------------------------------------------------------------------

def test_cuda_and_cpu_move_the_data_between_array_types(fake_cuda):
    x = gradcore.tensor([[1.0, 2.0], [3.0, 4.0]])
    y = x.cuda()
    assert y.device == gradcore.device("cuda", 0) and str(y.device) == "cuda:0" and y.is_cuda
    assert on_device(y)
    assert y.data_ptr() != x.data_ptr()  # a copy, not a view of host memory
    back = y.cpu()
    assert type(back._data) is np.ndarray and back.device.type == "cpu"
    assert back.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    x[0, 0] = 9.0
    assert y[0, 0].item() == 1.0


def test_transfer_to_the_current_device_returns_the_tensor_itself(fake_cuda):
    x = gradcore.ones(3)
    assert x.cpu() is x and x.to("cpu") is x and x.to(gradcore.float32) is x
    y = x.cuda()
    assert y.cuda() is y and y.to("cuda") is y and y.to("cuda:0") is y and y.to(0) is y and y.cuda(0) is y
    assert y.to(gradcore.device("cuda", 0), gradcore.float32) is y
    assert y.to("cuda", copy=True) is not y


@pytest.mark.parametrize("call", [
    lambda x, other: x.to("cuda", gradcore.float64),
    lambda x, other: x.to(device="cuda", dtype=gradcore.float64),
    lambda x, other: x.to(other),
    lambda x, other: x.to(gradcore.float64).cuda(),
    lambda x, other: x.type("gradcore.cuda.DoubleTensor"),
    lambda x, other: x.type("torch.cuda.DoubleTensor"),
], ids=["device_dtype", "keywords", "other", "dtype_then_cuda", "type_name", "torch_type_name"])
def test_to_overloads_change_device_and_dtype_together(fake_cuda, call):
    x = gradcore.tensor([1.5, 2.5])
    other = gradcore.zeros(1, dtype=gradcore.float64, device="cuda")
    y = call(x, other)
    assert y.device.type == "cuda" and y.dtype is gradcore.float64 and on_device(y)
    assert y.tolist() == [1.5, 2.5]


def test_type_names_follow_the_device(fake_cuda):
    x = gradcore.ones(2).cuda()
    assert x.type() == "gradcore.cuda.FloatTensor"
    assert x.type("gradcore.FloatTensor").device.type == "cpu"
    assert x.type(gradcore.DoubleTensor).device.type == "cpu"
    assert x.type(gradcore.float64).device.type == "cuda"
    with pytest.raises(ValueError, match="invalid type"):
        x.type("gradcore.cuda.NoSuchTensor")


@pytest.mark.parametrize("make", [
    lambda d: gradcore.tensor([1, 2], device=d),
    lambda d: gradcore.zeros(2, 3, device=d),
    lambda d: gradcore.ones((2,), device=d),
    lambda d: gradcore.empty(2, device=d),
    lambda d: gradcore.full((2,), 7.0, device=d),
    lambda d: gradcore.rand(4, device=d),
    lambda d: gradcore.randn(4, dtype=gradcore.float16, device=d),
    lambda d: gradcore.randint(0, 5, (4,), device=d),
    lambda d: gradcore.randperm(5, device=d),
    lambda d: gradcore.arange(0, 5, device=d),
    lambda d: gradcore.linspace(0, 1, 5, device=d),
    lambda d: gradcore.eye(3, device=d),
    lambda d: gradcore.zeros_like(gradcore.ones(2, device=d)),
    lambda d: gradcore.rand_like(gradcore.ones(2, device=d)),
    lambda d: gradcore.ones(2, device=d).new_zeros(3),
    lambda d: gradcore.tensor(gradcore.ones(2, device=d)),
    lambda d: gradcore.as_tensor(np.ones(2), device=d),
    lambda d: gradcore.Tensor(2, 3, device=d),
], ids=["tensor", "zeros", "ones", "empty", "full", "rand", "randn_half", "randint", "randperm", "arange",
        "linspace", "eye", "zeros_like", "rand_like", "new_zeros", "tensor_of_tensor", "as_tensor", "legacy"])
def test_creation_functions_put_tensors_on_the_device_given(fake_cuda, make):
    for device in ("cuda", gradcore.device("cuda:0"), 0):
        t = make(device)
        assert t.device == gradcore.device("cuda", 0) and on_device(t)
    cpu = make("cpu")
    assert type(cpu._data) is np.ndarray
    assert (t.shape, t.dtype) == (cpu.shape, cpu.dtype)


def test_values_drawn_on_the_device_follow_its_seed(fake_cuda):
    gradcore.cuda.manual_seed(3)
    first = gradcore.randn(5, device="cuda").tolist()
    gradcore.manual_seed(3)  # seeds every device
    assert gradcore.randn(5, device="cuda").tolist() == first
    assert sorted(gradcore.randperm(6, device="cuda").tolist()) == list(range(6))
    values = gradcore.randint(2, 5, (100,), device="cuda")
    assert values.dtype is gradcore.int64 and 2 <= values.min().item() and values.max().item() < 5
    with pytest.raises(RuntimeError, match="from=3 >= to=3"):
        gradcore.randint(3, 3, (2,), device="cuda")


def test_default_device_sends_new_tensors_to_the_gpu(fake_cuda):
    gradcore.backend.set_default_device("cuda")
    try:
        assert gradcore.backend.get_default_device() == "cuda:0"
        assert gradcore.ones(2).is_cuda and gradcore.tensor([1.0]).is_cuda and gradcore.arange(3).is_cuda
        assert gradcore.from_numpy(np.ones(2)).device.type == "cpu"  # shares host memory, as in PyTorch
    finally:
        gradcore.backend.set_default_device(None)
    assert gradcore.ones(2).device.type == "cpu"


# -- gradients across devices -------------------------------------------------------------------------------

def test_a_cpu_leaf_gets_its_gradient_through_cuda_on_its_own_device(fake_cuda):
    values = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
    x = gradcore.tensor(values, dtype=gradcore.float64, requires_grad=True)
    w = gradcore.tensor([1.0, -2.0, 0.5], dtype=gradcore.float64, device="cuda", requires_grad=True)
    y = ((x.cuda() * w).tanh().sum(dim=1) ** 2).sum()
    assert y.is_cuda
    y.backward()

    tx = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    tw = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    ((tx * tw).tanh().sum(dim=1) ** 2).sum().backward()

    assert x.grad.device.type == "cpu" and type(x.grad._data) is np.ndarray
    assert w.grad.device.type == "cuda" and on_device(w.grad)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.cpu().numpy(), tw.grad.numpy(), rtol=1e-12)


def test_gradient_through_a_device_and_dtype_change_comes_back_in_the_leaf_dtype(fake_cuda):
    x = gradcore.tensor([1.0, 2.0, 3.0], dtype=gradcore.float64, requires_grad=True)
    y = x.to("cuda", gradcore.float32)
    assert y.grad_fn is not None and y.dtype is gradcore.float32
    (y * y).sum().backward()
    assert x.grad.dtype is gradcore.float64 and x.grad.device.type == "cpu"
    assert x.grad.tolist() == [2.0, 4.0, 6.0]


def test_a_cuda_leaf_gets_its_gradient_through_cpu_and_second_derivatives_cross_too(fake_cuda):
    x = gradcore.tensor([0.5, 1.5], dtype=gradcore.float64, device="cuda", requires_grad=True)
    y = (x.cpu() ** 3).sum()
    (g,) = gradcore.autograd.grad(y, x, create_graph=True)
    assert g.is_cuda and g.tolist() == [0.75, 6.75]  # 3 x^2
    g.sum().backward()
    assert x.grad.is_cuda and x.grad.tolist() == [3.0, 9.0]  # 6 x


def test_gradients_stay_on_each_tensors_gpu_with_two_gpus(fake_cuda_2):
    x = gradcore.tensor([1.0, 2.0], device="cuda:0", requires_grad=True)
    y = x.to("cuda:1")
    assert y.device == "cuda:1" and y._data.device.id == 1
    (y * 3).sum().backward()
    assert x.grad.device == "cuda:0" and x.grad._data.device.id == 0 and x.grad.tolist() == [3.0, 3.0]


def test_backward_with_a_gradient_on_another_device_raises(fake_cuda):
    x = gradcore.ones(2, device="cuda", requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="expected device cuda:0 but got cpu"):
        y.backward(gradient=gradcore.ones(2))
    with pytest.raises(RuntimeError, match="expected device cpu but got cuda:0"):
        (gradcore.ones(2, requires_grad=True) * 2).backward(gradient=gradcore.ones(2, device="cuda"))


def test_assigning_a_grad_on_another_device_raises(fake_cuda):
    x = gradcore.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="different device: cuda:0 vs cpu"):
        x.grad = gradcore.ones(2, device="cuda")


def test_a_user_function_returning_a_gradient_on_another_device_raises(fake_cuda):
    class Wrong(gradcore.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad.cpu()

    x = gradcore.ones(2, device="cuda", requires_grad=True)
    with pytest.raises(RuntimeError, match="expected device cuda"):
        Wrong.apply(x).sum().backward()


# -- errors -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", [
    lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b, lambda a, b: a / b, lambda a, b: a ** b,
    lambda a, b: a % b, lambda a, b: a == b, lambda a, b: a < b, lambda a, b: (a > 0) & (b > 0),
    lambda a, b: gradcore.maximum(a, b), lambda a, b: gradcore.where(a > 0, a, b),
    lambda a, b: gradcore.cat([a, b]), lambda a, b: gradcore.stack([a, b]), lambda a, b: a.clamp(min=b),
    lambda a, b: a @ b, lambda a, b: gradcore.dot(a, b), lambda a, b: gradcore.allclose(a, b),
    lambda a, b: a.clone().add_(b),
], ids=["add", "mul", "sub", "div", "pow", "remainder", "eq", "lt", "and", "maximum", "where", "cat", "stack",
        "clamp", "matmul", "dot", "allclose", "add_"])
def test_ops_mixing_devices_raise_naming_both_devices(fake_cuda, op):
    a, b = gradcore.ones(3, device="cuda"), gradcore.ones(3)
    with pytest.raises(RuntimeError) as info:
        op(a, b)
    assert str(info.value) == MIXED.format("cuda:0", "cpu")
    with pytest.raises(RuntimeError) as info:
        op(b, a)
    assert str(info.value) == MIXED.format("cpu", "cuda:0")


@pytest.mark.parametrize("op", [
    pytest.param(lambda a, b: gradcore.where(b > 0, a, a), id="where_condition_on_cpu"),
    pytest.param(lambda a, b: a.masked_fill(b > 0, 0.0), id="masked_fill_mask_on_cpu"),
    pytest.param(lambda a, b: gradcore.equal(a, b), id="equal"),
])
def test_ops_mixing_devices_in_other_operands_raise(fake_cuda, op):
    with pytest.raises(RuntimeError) as info:
        op(gradcore.ones(3, device="cuda"), gradcore.ones(3))
    assert str(info.value) == MIXED.format("cuda:0", "cpu")


def test_ops_mixing_two_gpus_raise_naming_both(fake_cuda_2):
    with pytest.raises(RuntimeError) as info:
        gradcore.ones(3, device="cuda:0") + gradcore.ones(3, device="cuda:1")
    assert str(info.value) == MIXED.format("cuda:0", "cuda:1")


@pytest.mark.parametrize("op", [
    pytest.param(lambda lib, a: a[lib.tensor([0, 2])], id="cpu_index_tensor"),
    pytest.param(lambda lib, a: a[lib.tensor([True, False, True])], id="cpu_mask_tensor"),
    pytest.param(lambda lib, a: a * lib.tensor(2.0), id="cpu_scalar_tensor"),
    pytest.param(lambda lib, a: lib.tensor(5) - a, id="cpu_integer_scalar_tensor_on_the_left"),
])
def test_cpu_indices_and_cpu_scalars_meet_cuda_tensors_as_in_pytorch(fake_cuda, op):
    """PyTorch lets CPU index tensors and 0-d CPU tensors meet a CUDA tensor, and the result stays on the GPU.
    The installed PyTorch has no CUDA, so its values and dtype come from the same op on its CPU tensors."""
    out = op(gradcore, gradcore.tensor([1.0, 2.0, 3.0], device="cuda"))
    expected = op(torch, torch.tensor([1.0, 2.0, 3.0]))
    assert out.is_cuda and str(out.device) == "cuda:0"
    assert out.tolist() == expected.tolist() and str(out.dtype) == str(expected.dtype).replace("torch.", "gradcore.")


def test_a_cpu_tensor_with_dimensions_does_not_meet_a_cuda_tensor_as_in_pytorch(fake_cuda):
    """The other side of PyTorch's rule: only 0-d CPU tensors count as scalars; a one-element 1-d one is refused
    with the same message as any mixed-device operation."""
    with pytest.raises(RuntimeError) as info:
        gradcore.tensor([1.0, 2.0, 3.0], device="cuda") * gradcore.tensor([2.0])
    assert str(info.value) == MIXED.format("cuda:0", "cpu")


def test_numpy_of_a_cuda_tensor_raises_type_error_saying_to_call_cpu(fake_cuda):
    x = gradcore.ones(2, device="cuda")
    message = ("can't convert cuda:0 device type tensor to numpy. "
               "Use Tensor.cpu() to copy the tensor to host memory first.")
    with pytest.raises(TypeError) as info:
        x.numpy()
    assert str(info.value) == message
    with pytest.raises(TypeError, match=r"Tensor\.cpu\(\)"):
        np.asarray(x)
    with pytest.raises(TypeError, match=r"Tensor\.cpu\(\)"):
        np.asarray(gradcore.ones(2, device="cuda", requires_grad=True))
    assert x.numpy(force=True).tolist() == [1.0, 1.0]
    assert x.cpu().numpy().tolist() == [1.0, 1.0]


def test_bad_device_arguments_raise(fake_cuda):
    x = gradcore.ones(1)
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        x.cuda(1)
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
        x.to("tpu")
    with pytest.raises(TypeError, match="invalid combination"):
        x.to([1])


# -- gradcore.cuda -----------------------------------------------------------------------------------------

def test_cuda_module_reports_the_devices(fake_cuda_2):
    assert gradcore.cuda.is_available() and gradcore.cuda.device_count() == 2
    assert gradcore.cuda.current_device() == 0
    with gradcore.cuda.device(1):
        assert gradcore.cuda.current_device() == 1
        assert gradcore.ones(1, device="cuda").device == "cuda:1"  # "cuda" is the current device
    assert gradcore.cuda.current_device() == 0
    for device in (None, 0, "cuda:1", gradcore.device("cuda", 1)):
        gradcore.cuda.synchronize(device)
    with pytest.raises(ValueError, match="Expected a cuda device"):
        gradcore.cuda.synchronize("cpu")
    assert isinstance(gradcore.cuda.memory_allocated(), int)
    assert isinstance(gradcore.cuda.memory_allocated(1), int)
    gradcore.cuda.empty_cache()
    gradcore.cuda.manual_seed_all(4)
    a = [gradcore.rand(3, device=f"cuda:{i}").tolist() for i in (0, 1)]
    gradcore.cuda.manual_seed_all(4)
    assert [gradcore.rand(3, device=f"cuda:{i}").tolist() for i in (0, 1)] == a


# -- the backend layer -------------------------------------------------------------------------------------

def test_reshape_view_gives_views_or_none_on_the_device(fake_cuda):
    from gradcore.backend import reshape_view

    data = gradcore.arange(6.0, device="cuda")._data.reshape(2, 3)
    view = reshape_view(data, (3, 2))
    assert view is not None and view.data.ptr == data.data.ptr
    view[0, 0] = 42.0
    assert data[0, 0].item() == 42.0
    assert reshape_view(data.T, (6,)) is None


def test_put_along_axis_without_the_array_function_matches_numpy():
    # CuPy 13 has no put_along_axis; the backend then indexes with an open grid.
    from gradcore.backend.cuda import put_along_axis_by_indexing

    rng = np.random.default_rng(0)
    for shape, axis in [((3, 4), 1), ((3, 4), 0), ((2, 3, 4), 2), ((2, 3, 4), 1), ((5,), 0)]:
        kept = tuple(1 if i == axis else n for i, n in enumerate(shape))
        indices = rng.integers(0, shape[axis], size=kept)
        values = rng.normal(size=kept)
        expected, got = np.zeros(shape), np.zeros(shape)
        np.put_along_axis(expected, indices, values, axis)
        put_along_axis_by_indexing(np, got, indices, values, axis)
        np.testing.assert_array_equal(got, expected)


# -- every core op on the device, against the same op on the CPU ------------------------------------------

OPS = {
    "arithmetic": lambda x, y: ((x + y) * x - y / (x * x + 1) + 2 ** x - x % 0.7).sum(),
    "unary": lambda x, y: (x.exp() + (x * x + 1).log() + x.sin() * x.cos() + x.tanh() + x.sigmoid() + x.abs()
                           + (x * x + 1).sqrt() + x.relu() + x.square() + x.clamp(-0.5, 0.5) - y.neg()).sum(),
    "reductions": lambda x, y: (x.sum(0).prod() + x.mean() + x.max(dim=1).values.sum() + x.amin() + x.std()
                               + x.var(dim=0).sum() + x.logsumexp(dim=1).sum() + x.norm()
                               + y.amax(dim=0).sum()),
    "softmax": lambda x, y: (x.softmax(dim=1) * y).sum() + x.log_softmax(dim=0).sum(),
    "linalg": lambda x, y: (x @ y.T).sum() + gradcore.mm(x, y.t()).sum() + gradcore.dot(x[0], y[1]),
    "shape": lambda x, y: ((gradcore.cat([x, y]).view(-1)[::2]
                            * gradcore.stack([x, y]).permute(2, 0, 1).reshape(-1)[:6]).sum()
                           + x.unsqueeze(0).expand(2, 2, 3).transpose(0, 2).flatten().sum()),
    "indexing": lambda x, y: (x[gradcore.tensor([1, 0, 1], device=x.device)].sum() + x[x > 0].sum()
                              + x[:, 1].sum() + gradcore.where(x > y, x, y).sum()
                              + x.masked_fill(x < 0, 0.0).sum()),
    "chunks": lambda x, y: sum((c * i).sum() for i, c in enumerate(x.split(1, dim=0) + y.chunk(3, dim=1))),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_core_ops_run_on_the_device_and_match_the_cpu(fake_cuda, name):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    results = {}
    for device in ("cpu", "cuda"):
        x = gradcore.tensor(a, device=device, requires_grad=True)
        y = gradcore.tensor(b, device=device, requires_grad=True)
        out = OPS[name](x, y)
        out.backward()
        assert out.device.type == device and x.grad.device.type == device and y.grad.device.type == device
        results[device] = (out.item(), x.grad.cpu().numpy(), y.grad.cpu().numpy())
    np.testing.assert_allclose(results["cuda"][0], results["cpu"][0], rtol=1e-12)
    np.testing.assert_allclose(results["cuda"][1], results["cpu"][1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(results["cuda"][2], results["cpu"][2], rtol=1e-12, atol=1e-15)


def test_core_ops_on_the_device_match_pytorch_gradients(fake_cuda):
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    x = gradcore.tensor(a, device="cuda", requires_grad=True)
    y = gradcore.tensor(b, device="cuda", requires_grad=True)
    OPS["reductions"](x, y).backward()
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    OPS["reductions"](tx, ty).backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), tx.grad.numpy(), rtol=1e-10)


def test_in_place_ops_and_views_on_the_device(fake_cuda):
    x = gradcore.tensor([1.0, 2.0, 3.0, 4.0], device="cuda", requires_grad=True)
    y = x * 1
    v = y.view(2, 2)
    v[0].mul_(10)
    y.sum().backward()
    assert y.tolist() == [10.0, 20.0, 3.0, 4.0]
    assert x.grad.is_cuda and x.grad.tolist() == [10.0, 10.0, 1.0, 1.0]
    z = gradcore.zeros(3, device="cuda")
    z.copy_(gradcore.tensor([1.0, 2.0, 3.0]))  # copy_ crosses devices, as in PyTorch
    assert z.is_cuda and z.tolist() == [1.0, 2.0, 3.0]


def test_repr_names_the_device(fake_cuda):
    assert repr(gradcore.tensor([1.0, 2.0], device="cuda")) == "tensor([1., 2.], device='cuda:0')"
