"""DLPack exchange with numpy and PyTorch on the CPU: no copies (a write on one side shows on the other)."""
import numpy as np
import pytest
import torch

import gradcore


def test_from_dlpack_of_a_numpy_array_shares_its_memory():
    array = np.arange(6.0).reshape(2, 3)
    t = gradcore.from_dlpack(array)
    assert t.dtype is gradcore.float64 and t.shape == (2, 3) and t.device.type == "cpu"
    assert t.data_ptr() == array.ctypes.data
    array[0, 1] = 50.0
    assert t[0, 1].item() == 50.0
    t[1, 2] = -7.0
    assert array[1, 2] == -7.0


def test_from_dlpack_keeps_the_strides_of_a_view():
    array = np.arange(12, dtype=np.int32).reshape(3, 4)[:, ::2]
    t = gradcore.from_dlpack(array)
    assert t.dtype is gradcore.int32 and t.tolist() == array.tolist()
    assert t.stride() == (4, 2)
    array[2, 1] = 99
    assert t[2, 1].item() == 99


def test_numpy_from_dlpack_of_a_tensor_shares_its_memory():
    t = gradcore.tensor([[1.0, 2.0], [3.0, 4.0]])
    array = np.from_dlpack(t)
    assert array.dtype == np.float32 and array.ctypes.data == t.data_ptr()
    array[1, 0] = 30.0
    assert t[1, 0].item() == 30.0
    t.add_(1)
    assert array.tolist() == [[2.0, 3.0], [31.0, 5.0]]


def test_pytorch_tensors_come_in_without_a_copy():
    source = torch.arange(5, dtype=torch.float64)
    t = gradcore.from_dlpack(source)
    assert t.dtype is gradcore.float64 and t.data_ptr() == source.data_ptr()
    source[2] = 42.0
    assert t[2].item() == 42.0
    t.mul_(2)
    assert source.tolist() == [0.0, 2.0, 84.0, 6.0, 8.0]


def test_tensors_go_to_pytorch_without_a_copy():
    t = gradcore.tensor([[1, 2, 3]], dtype=gradcore.int64)
    out = torch.from_dlpack(t)
    assert out.dtype == torch.int64 and out.data_ptr() == t.data_ptr() and out.device.type == "cpu"
    out[0, 0] = 11
    assert t[0, 0].item() == 11
    back = gradcore.from_dlpack(out)
    assert back.data_ptr() == t.data_ptr()


def test_from_dlpack_of_a_gradcore_tensor_is_a_new_tensor_over_the_same_memory():
    t = gradcore.ones(3)
    alias = gradcore.from_dlpack(t)
    assert alias is not t and alias.data_ptr() == t.data_ptr()
    alias[0] = 5.0
    assert t[0].item() == 5.0


def test_dlpack_device_is_the_cpu():
    assert tuple(gradcore.ones(1).__dlpack_device__()) == (1, 0)


def test_tensors_that_require_grad_are_not_exported():
    t = gradcore.ones(2, requires_grad=True)
    message = r"Can't export tensors that require gradient, use tensor\.detach\(\)"
    for consumer in (np.from_dlpack, torch.from_dlpack, gradcore.from_dlpack):
        with pytest.raises(BufferError, match=message):
            consumer(t)
    assert gradcore.from_dlpack(t.detach()).data_ptr() == t.data_ptr()


def test_from_dlpack_refuses_what_is_not_dlpack_data():
    with pytest.raises(TypeError, match="__dlpack__"):
        gradcore.from_dlpack([1.0, 2.0])
    with pytest.raises(TypeError):
        gradcore.from_dlpack(np.ones(2, dtype=np.complex128))


def test_from_dlpack_of_cuda_memory_shares_it(fake_cuda):
    # On the CuPy test double: CUDA DLPack producers go to the CUDA backend, on the producer's GPU.
    t = gradcore.tensor([1.0, 2.0], device="cuda")
    assert tuple(t.__dlpack_device__()) == (2, 0)
    alias = gradcore.from_dlpack(t)
    assert alias.is_cuda and alias.data_ptr() == t.data_ptr()
    alias[1] = 20.0
    assert t.tolist() == [1.0, 20.0]
    # Device memory cannot become a numpy array: numpy refuses a CUDA capsule with BufferError, the double's
    # stand-in capsule with ValueError.
    with pytest.raises((BufferError, ValueError)):
        np.from_dlpack(t)
