"""Test-wide options: ``--device`` runs the suite with tensors created on another device.

``pytest --device cuda`` makes CUDA device 0 the default device, so that every tensor the tests create without
naming a device lives on the GPU; on a machine without a usable GPU every test is skipped, with the reason.
``pytest --device fake-cuda`` does the same on the CuPy test double of ``tests/devices/fake_cupy.py`` (no GPU
needed): it checks that the ops reach device memory through the backend only, not what CuPy computes.

``pytest --device fake-cuda-kernels`` is fake-cuda with gradcore's own CUDA kernels: the C++ compiler builds
the CPU emulation of ``kernels/`` once per session (``tests/kernels/kernel_emulation.py``; the run stops with a
usage error where there is no g++), and its launcher is installed for the double's arrays for the whole
session, so that every test runs its ops as on a GPU: sigmoid, relu and clamp on their kernels and, with the
shipped GEMM crossover (0), each product on the array module's ``@`` (cuBLAS's place on a GPU); compiled
programs (``gradcore.compile``) fuse Linear with the activation after it into the one-pass epilogue and
prologue kernels around those products. Every kernel output is
poisoned with NaN and guarded against writes past its ends. The launches are counted by kernel name and
printed at the end of the run.

``--gemm-crossover=all`` (with ``--device cuda`` or ``fake-cuda-kernels``) raises
``kernels.GEMM_CROSSOVER_OVERRIDE`` above every product for the session, so that every product runs on gradcore's
GEMM kernel (in compiled programs with the activation in its epilogue and the activation's derivative and bias
gradient in its prologue). The default keeps the crossover of ``kernels.product_path``.

A few tests are skipped in these modes, each with its reason (the lists below): the test of the plain double,
those of the default crossover's paths under ``--gemm-crossover=all``, and training loops whose thousands of
launches take most of a minute on the emulation, which starts a host thread per CUDA thread.

The suite compares values through ``.numpy()``, which refuses device memory by design; under ``--device``
those reads copy to the host instead, so that the comparisons themselves run unchanged.
"""
from __future__ import annotations

import contextlib
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "devices"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "kernels"))

import fake_cupy  # (needs the paths above)
import kernel_emulation

import gradcore
from gradcore import backend as _backend
from gradcore.backend import cuda as _cuda_backend
from gradcore.backend import kernels as _kernels

DEVICES = ("cpu", "cuda", "fake-cuda", "fake-cuda-kernels")
FAKE_DEVICES = ("fake-cuda", "fake-cuda-kernels")  # the CuPy test double, no GPU needed
GEMM_CROSSOVERS = ("default", "all")
# --gemm-crossover=all: a crossover above every product (rows x inner x columns) a test can make.
ALL_PRODUCTS_ON_GEMM = 2**62


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--device", action="store", default="cpu", choices=DEVICES,
        help="create the tests' tensors on this device by default: cpu (the default), cuda (needs a GPU; "
             "skips otherwise), fake-cuda (the CuPy test double, no GPU needed) or fake-cuda-kernels (the "
             "double with gradcore's CUDA kernels emulated on the CPU; needs g++)",
    )
    parser.addoption(
        "--gemm-crossover", action="store", default="default", choices=GEMM_CROSSOVERS,
        help="with --device cuda or fake-cuda-kernels: default keeps kernels.product_path's measured choice; all raises it "
             "above every product, so that every product runs gradcore's GEMM kernel with its fused prologue "
             "and epilogue instead of the array module's @",
    )


def pytest_report_header(config) -> str:
    device = config.getoption("--device")
    if device == "cuda" and not gradcore.cuda.is_available():
        return f"device: cuda requested, unavailable: {_cuda_backend.unavailable_reason()}"
    crossover = config.getoption("--gemm-crossover")
    return f"device: {device}" + (f", GEMM crossover: {crossover}" if crossover != "default" else "")


# Tests that assert facts of CPU tensors, so that they cannot hold on another default device: PyTorch's CPU
# random numbers (CUDA generators draw others, in PyTorch too), reprs and type names that name the device,
# numpy memory sharing. Keyed by file name or test function name, so that moving a file keeps them; new tests
# of that kind say so with @pytest.mark.cpu_only instead of joining these lists.
CPU_ONLY_FILES = {
    "test_random_compat.py": "reproduces PyTorch's CPU generator",
}
CPU_ONLY_TESTS = {
    "test_repr": "the repr names a CUDA device",
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


# Under --device fake-cuda-kernels: tests of the plain double (no kernels), keyed by test function name.
FAKE_CUDA_ONLY_TESTS = {
    "test_the_double_without_an_installed_launcher_never_reaches_the_kernels":
        "asserts the plain double without a launcher; the session installs one",
}
# Under --device fake-cuda-kernels: tests too slow for the emulation, which starts a host thread per CUDA thread
# (10 to 20 ms per elementwise launch, 0.1 to 0.2 s per GEMM launch of a 64 x 1000 x 100 product on 2 cores),
# keyed by test function name; each with what it costs and where its kernel paths are covered instead.
KERNEL_EMULATION_SLOW_TESTS = {
    "test_000_two_layer_mlp_manual_sgd":
        "500 steps: about 55 s of emulated clamp launches (minutes with --gemm-crossover=all); one step of the "
        "same network runs on the kernels in tests/kernels/test_dispatch.py",
}
# The same with --gemm-crossover=all, where every product is a GEMM launch.
KERNEL_EMULATION_SLOW_TESTS_ALL_ON_GEMM = {
    "test_training_loop_memory_is_stable":
        "2000 training steps: 10000 emulated GEMM launches, about 45 s; runs with the default crossover",
}
# Under --gemm-crossover=all (any device): tests of the paths of the crossover that gradcore ships (products on cuBLAS, or
# the shipped value itself); they run in the same mode with the default crossover.
DEFAULT_CROSSOVER_TESTS = {
    "test_seed_network_clamps_on_the_kernels_and_keeps_products_on_cublas",
    "test_sequential_runs_each_activation_on_its_own_kernels_above_the_crossover",
    "test_functional_linear_then_activation_runs_the_activation_kernels",
}


def _device_independent(item) -> bool:
    marker = item.get_closest_marker("device_independent")
    return marker is not None and (not marker.args or bool(marker.args[0]))


def _kernel_emulation_reason(item, crossover: str) -> str | None:
    name = getattr(item, "originalname", item.name)
    if name in FAKE_CUDA_ONLY_TESTS:
        return FAKE_CUDA_ONLY_TESTS[name]
    slow = KERNEL_EMULATION_SLOW_TESTS.get(name)
    if slow is None and crossover == "all":
        slow = KERNEL_EMULATION_SLOW_TESTS_ALL_ON_GEMM.get(name)
    return None if slow is None else f"too slow under the kernel emulation: {slow}"


def _cpu_only_reason(item) -> str | None:
    if item.get_closest_marker("cpu_only"):
        return "marked cpu_only"
    return CPU_ONLY_FILES.get(item.path.name) or CPU_ONLY_TESTS.get(getattr(item, "originalname", item.name))


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "cpu_only: asserts facts of CPU tensors; skipped under --device")
    config.addinivalue_line("markers", "device_independent: does the same whatever --device says (builds, "
                                       "subprocesses); runs in the session without --device only. "
                                       "device_independent(False) on a test takes its module's mark back")
    device = config.getoption("--device")
    crossover = config.getoption("--gemm-crossover")
    if crossover != "default" and device not in ("cuda", "fake-cuda-kernels"):
        raise pytest.UsageError(f"--gemm-crossover={crossover} needs --device cuda or fake-cuda-kernels: "
                                f"under --device {device} no product runs on gradcore's kernels")
    if device in FAKE_DEVICES:
        _install(fake_cupy)
    if device == "fake-cuda-kernels":
        _install_emulated_kernels(config)
    if crossover == "all":
        # product_path (gradcore.backend.kernels) is where the choice is made; the ops that still read their own
        # constant get it raised as well.
        _session_patches.setattr(_kernels, "GEMM_CROSSOVER_OVERRIDE", ALL_PRODUCTS_ON_GEMM)
    if device != "cpu" and gradcore.cuda.is_available():
        # For the whole session, so that tensors made at import time (module constants) are on the device too.
        _backend.set_default_device("cuda")
        gradcore.Tensor.numpy = _numpy_via_host


def pytest_unconfigure(config) -> None:
    _session_changes.close()


# What pytest_configure changes for the whole session (the kernel launcher, the GEMM crossover), undone at the
# end of the session.
_session_changes = contextlib.ExitStack()
_session_patches = _session_changes.enter_context(pytest.MonkeyPatch.context())
# Pretend multiprocessors of the session's emulated launcher: the wrappers size elementwise grids and choose GEMM
# tiles by it; 2, as in the kernel tests, makes the grid-stride loops take several turns on small arrays.
EMULATED_MULTIPROCESSORS = 2

#: The launcher of --device fake-cuda-kernels (``.counts`` of the session's launches by kernel name), or None.
session_kernel_launcher = None


def _install_emulated_kernels(config) -> None:
    """Builds the CPU emulation of the CUDA kernels (once per session) and installs it for the double's arrays:
    every op on a "cuda" tensor takes the kernel paths it takes on a GPU."""
    global session_kernel_launcher
    cxx = kernel_emulation.compiler()
    if cxx is None:
        raise pytest.UsageError("--device fake-cuda-kernels needs a C++ compiler (g++ or c++, or $CXX) to build "
                                "the CPU emulation of the CUDA kernels; none was found")
    try:
        libraries, _ = kernel_emulation.build_once(cxx)
    except (RuntimeError, OSError) as error:
        raise pytest.UsageError(f"--device fake-cuda-kernels: the CPU emulation of the CUDA kernels does not "
                                f"build with {cxx}: {error}") from None
    emulated = kernel_emulation.EmulatedLauncher(libraries, multiprocessors=EMULATED_MULTIPROCESSORS,
                                                 record_launches=False)
    session_kernel_launcher = kernel_emulation.CountingLauncher(emulated, fake_cupy)
    _session_changes.enter_context(_kernels.use_launcher_for(fake_cupy.ndarray, session_kernel_launcher))


def pytest_collection_modifyitems(config, items) -> None:
    device = config.getoption("--device")
    if device == "cpu":
        return
    if device == "cuda" and not gradcore.cuda.is_available():
        skip = pytest.mark.skip(reason=f"--device cuda: {_cuda_backend.unavailable_reason()}")
        for item in items:
            item.add_marker(skip)
        return
    crossover = config.getoption("--gemm-crossover")
    for item in items:
        reason = _cpu_only_reason(item)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"CPU-only under --device {device}: {reason}"))
        elif _device_independent(item):
            item.add_marker(pytest.mark.skip(reason="device-independent (builds, subprocesses): runs in the "
                                                    "session without --device"))
        elif device in FAKE_DEVICES and (item.path.name == "test_cuda_gpu.py"
                                        or getattr(item, "originalname", "") == "test_examples_on_cuda"):
            item.add_marker(pytest.mark.skip(reason="needs a real GPU and CuPy, not the test double"))
        elif crossover == "all" and getattr(item, "originalname", item.name) in DEFAULT_CROSSOVER_TESTS:
            item.add_marker(pytest.mark.skip(reason="--gemm-crossover=all: asserts the paths of the default GEMM "
                                                    "crossover (products on cuBLAS)"))
        elif device == "fake-cuda-kernels" and (reason := _kernel_emulation_reason(item, crossover)) is not None:
            item.add_marker(pytest.mark.skip(reason=f"--device fake-cuda-kernels: {reason}"))


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


def pytest_terminal_summary(terminalreporter) -> None:
    if session_kernel_launcher is not None:
        counts = ", ".join(f"{name} {count}" for name, count in sorted(session_kernel_launcher.counts.items()))
        terminalreporter.write_line(f"emulated kernel launches on the session's launcher: {counts or 'none'}")
