"""Test-wide options: ``--device`` runs the suite with tensors created on another device.

``pytest --device cuda`` makes CUDA device 0 the default device, so that every tensor the tests create without
naming a device lives on the GPU; on a machine without a usable GPU every test is skipped, with the reason.
``pytest --device fake-cuda`` does the same on the CuPy test double of ``tests/devices/fake_cupy.py`` (no GPU
needed): it checks that the ops reach device memory through the backend only, not what CuPy computes.

The suite compares values through ``.numpy()``, which refuses device memory by design; under ``--device``
those reads copy to the host instead, so that the comparisons themselves run unchanged.
"""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "devices"))

import fake_cupy  # (needs the path above)

import gradcore
from gradcore import backend as _backend
from gradcore.backend import cuda as _cuda_backend

DEVICES = ("cpu", "cuda", "fake-cuda")


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--device", action="store", default="cpu", choices=DEVICES,
        help="create the tests' tensors on this device by default: cpu (the default), cuda (needs a GPU; "
             "skips otherwise) or fake-cuda (the CuPy test double, no GPU needed)",
    )


def pytest_report_header(config) -> str:
    device = config.getoption("--device")
    if device == "cuda" and not gradcore.cuda.is_available():
        return f"device: cuda requested, unavailable: {_cuda_backend.unavailable_reason()}"
    return f"device: {device}"


# Tests that assert facts of CPU tensors, so that they cannot hold on another default device: PyTorch's CPU
# random numbers (CUDA generators draw others, in PyTorch too), reprs and type names that name the device,
# numpy memory sharing. Keyed by file name or test function name, so that moving a file keeps them; new tests
# of that kind say so with @pytest.mark.cpu_only instead of joining these lists.
CPU_ONLY_FILES = {
    "test_random_compat.py": "reproduces PyTorch's CPU generator",
}
CPU_ONLY_TESTS = {
    "test_repr": "the repr names a CUDA device",
    "test_reprs_match_torch": "the repr names a CUDA device",
    "test_parameter_basics": "the repr names a CUDA device",
    "test_001_detached_weight_shares_memory_printed_values": "the repr names a CUDA device",
    "test_001_detached_weight_with_optim_sgd": "the repr names a CUDA device",
    "test_device": "asserts the CPU device",
    "test_001_tensor_attributes_shape_dtype_device": "prints the CPU device",
    "test_001_dtype_conversions": "prints CPU type names",
    "test_setattr_registers_and_rejects": "the message names the CPU type",
    "test_numpy_shares_memory": "numpy() shares CPU memory only",
    "test_numpy_on_tensor_requiring_grad_raises": "numpy() reads device tensors under --device",
    "test_001_manual_seed_20200910_printed_values": "reproduces PyTorch's CPU generator",
    "test_linear_default_initialisation_draws_what_pytorch_draws": "reproduces PyTorch's CPU generator",
    "test_a_generator_fixes_the_order_independently_of_the_global_seed": "reproduces PyTorch's CPU generator",
    "test_shuffled_batches_equal_torchs_for_the_same_seed": "reproduces PyTorch's CPU generator",
    "test_device_option_without_cuda_fails_clearly": "needs a machine without CUDA",
    "test_cuda_checkpoint_without_cuda_asks_for_map_location": "needs a machine without CUDA",
}


def _cpu_only_reason(item) -> str | None:
    if item.get_closest_marker("cpu_only"):
        return "marked cpu_only"
    return CPU_ONLY_FILES.get(item.path.name) or CPU_ONLY_TESTS.get(getattr(item, "originalname", item.name))


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "cpu_only: asserts facts of CPU tensors; skipped under --device")
    device = config.getoption("--device")
    if device == "fake-cuda":
        _install(fake_cupy)
    if device != "cpu" and gradcore.cuda.is_available():
        # For the whole session, so that tensors made at import time (module constants) are on the device too.
        _backend.set_default_device("cuda")
        gradcore.Tensor.numpy = _numpy_via_host


def pytest_collection_modifyitems(config, items) -> None:
    device = config.getoption("--device")
    if device == "cpu":
        return
    if device == "cuda" and not gradcore.cuda.is_available():
        skip = pytest.mark.skip(reason=f"--device cuda: {_cuda_backend.unavailable_reason()}")
        for item in items:
            item.add_marker(skip)
        return
    for item in items:
        reason = _cpu_only_reason(item)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"CPU-only under --device {device}: {reason}"))
        elif device == "fake-cuda" and (item.path.name == "test_cuda_gpu.py"
                                        or getattr(item, "originalname", "") == "test_examples_on_cuda"):
            item.add_marker(pytest.mark.skip(reason="needs a real GPU and CuPy, not the test double"))


_CUDA_STATE = ("_cupy", "_cupyx", "_import_error", "_device_count", "_device_error", "_backends")


def _install(module, setattr=setattr) -> None:
    """Puts a CuPy-like module behind the CUDA backend, with fresh device state."""
    values = (module, module.cupyx, None, None, None, {})
    for name, value in zip(_CUDA_STATE, values):
        setattr(_cuda_backend, name, value)


def install_fake_cupy(monkeypatch, count: int = 1):
    """Puts the CuPy test double with ``count`` fake GPUs behind the CUDA backend until the test ends."""
    fake_cupy.reset(count)
    _install(fake_cupy, monkeypatch.setattr)
    return fake_cupy


@pytest.fixture
def fake_cuda(monkeypatch):
    """The CuPy test double with one fake GPU, installed for this test only."""
    return install_fake_cupy(monkeypatch)


@pytest.fixture
def fake_cuda_2(monkeypatch):
    """The CuPy test double with two fake GPUs, installed for this test only."""
    return install_fake_cupy(monkeypatch, count=2)


def _numpy_via_host(self, *, force: bool = False):
    if self.device.type != "cpu":
        force = True
    return _original_numpy(self, force=force)


_original_numpy = gradcore.Tensor.numpy


@pytest.fixture(autouse=True)
def _device_tests_start_on_the_cpu(request, monkeypatch):
    """Under ``--device``, the tests of tests/devices start from the CPU default they are written for."""
    if _backend.get_default_device().type == "cpu" or request.node.path.parent.name != "devices":
        yield
        return
    monkeypatch.setattr(gradcore.Tensor, "numpy", _original_numpy)
    # The backend object itself is put back (by monkeypatch, last): a device's backend must stay one object.
    monkeypatch.setattr(_backend, "_default_backend", _backend.CPU)
    yield
