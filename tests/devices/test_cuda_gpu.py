"""CUDA tensors on a real GPU through CuPy: what the test double cannot show. Skipped without a usable GPU.

``pytest --device cuda`` also runs the whole suite with CUDA as the default device.
"""
import numpy as np
import pytest
import torch

import gradcore
from gradcore.backend import cuda as cuda_backend

pytestmark = pytest.mark.skipif(not gradcore.cuda.is_available(),
                                reason=f"needs a CUDA GPU: {cuda_backend.unavailable_reason()}")


def test_tensors_live_in_cupy_arrays_and_come_back():
    import cupy

    x = gradcore.tensor([[1.0, 2.0], [3.0, 4.0]], device="cuda")
    assert isinstance(x._data, cupy.ndarray) and x.device == gradcore.device("cuda", 0)
    assert x.cpu().tolist() == [[1.0, 2.0], [3.0, 4.0]] and x.cuda() is x
    assert gradcore.cuda.current_device() == 0 and gradcore.cuda.device_count() >= 1


def test_gradients_cross_devices_and_match_pytorch():
    values = np.random.default_rng(0).normal(size=(3, 4))
    x = gradcore.tensor(values, requires_grad=True)
    w = gradcore.tensor(values.T.copy(), device="cuda", requires_grad=True)
    y = (x.cuda() @ w).tanh().sum()
    y.backward()
    tx, tw = torch.tensor(values, requires_grad=True), torch.tensor(values.T.copy(), requires_grad=True)
    (tx @ tw).tanh().sum().backward()
    assert x.grad.device.type == "cpu" and w.grad.is_cuda
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(w.grad.cpu().numpy(), tw.grad.numpy(), rtol=1e-10)


def test_mixing_devices_raises_and_numpy_refuses_device_memory():
    a, b = gradcore.ones(2, device="cuda"), gradcore.ones(2)
    with pytest.raises(RuntimeError, match="found at least two devices, cuda:0 and cpu!"):
        a + b
    with pytest.raises(TypeError, match=r"Tensor\.cpu\(\)"):
        a.numpy()


def test_views_and_in_place_ops_share_device_memory():
    from gradcore.backend import put_along_axis, reshape_view

    data = gradcore.arange(6.0, device="cuda")._data.reshape(2, 3)
    assert reshape_view(data, (3, 2)).data.ptr == data.data.ptr
    assert reshape_view(data.T, (6,)) is None
    target = gradcore.zeros(2, 3, device="cuda")._data
    put_along_axis(target, gradcore.tensor([[2], [0]], device="cuda")._data, 1.0, 1)
    assert target.tolist() == [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    x = gradcore.ones(4, device="cuda", requires_grad=True)
    y = x * 1
    y.view(2, 2)[0].mul_(5)
    y.sum().backward()
    assert x.grad.tolist() == [5.0, 5.0, 1.0, 1.0]


def test_dlpack_exchange_with_cupy_shares_memory():
    import cupy

    source = cupy.arange(4, dtype=cupy.float32)
    t = gradcore.from_dlpack(source)
    assert t.is_cuda and t.data_ptr() == source.data.ptr
    source[1] = 10
    assert t[1].item() == 10.0
    back = cupy.from_dlpack(t)
    assert back.data.ptr == t.data_ptr()


def test_seeds_repeat_and_memory_is_counted():
    gradcore.manual_seed(7)
    first = gradcore.randn(8, device="cuda").tolist()
    gradcore.cuda.manual_seed(7)
    assert gradcore.randn(8, device="cuda").tolist() == first
    before = gradcore.cuda.memory_allocated()
    kept = gradcore.empty(1 << 20, device="cuda")
    assert gradcore.cuda.memory_allocated() >= before + (1 << 22)
    del kept
    gradcore.cuda.empty_cache()
    gradcore.cuda.synchronize()
