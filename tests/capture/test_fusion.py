"""The fusion pass of gradcore.compile: Linear followed by ReLU, Sigmoid or clamp becomes our fused kernels.

Every test runs on "cuda" tensors of the CuPy test double with our kernels emulated on the CPU (the
``kernels_on_fake_cuda`` fixture below, as in tests/kernels), in every mode of the suite. The same training
step runs eagerly (one kernel per op, as PyTorch eager), compiled (the replay runs the fused kernels, counted
per kernel name on the emulated launcher) and eagerly on the CPU (numpy, no kernels): losses and parameters
agree to float rounding, since the fused kernels add in another order.
"""
import collections
import os

import fake_cupy
import kernel_emulation
import numpy as np
import pytest

import gradcore as torch
from gradcore import nn
from gradcore.backend import kernels

ALL_PRODUCTS_ON_GEMM = 10**9
TOLERANCE = {torch.float32: 2e-5, torch.float64: 1e-12}
STEPS = 5  # captures (the first finds no .grad; one more verifies a capture), then replays


@pytest.fixture
def kernels_on_fake_cuda(fake_cuda):
    """The CuPy test double with the emulated kernels installed for its arrays; yields the counting launcher."""
    cxx = kernel_emulation.compiler()
    if cxx is None:
        if os.environ.get("GRADCORE_REQUIRE_KERNEL_TOOLS") == "1":
            pytest.fail("no C++ compiler for the kernel emulation (GRADCORE_REQUIRE_KERNEL_TOOLS=1)", pytrace=False)
        pytest.skip("no C++ compiler (g++ or c++, or $CXX) to build the CPU emulation of the CUDA kernels")
    libraries, _ = kernel_emulation.build_once(cxx)
    spy = kernel_emulation.CountingLauncher(kernel_emulation.EmulatedLauncher(libraries, multiprocessors=2),
                                            fake_cupy)
    with kernels.use_launcher_for(fake_cupy.ndarray, spy):
        yield spy


@pytest.fixture(params=["cublas", "gemm"])
def crossover(request, monkeypatch):
    """Every product on cuBLAS (the crossover as shipped, nothing measured) or on our GEMM."""
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_OVERRIDE", None if request.param == "cublas" else ALL_PRODUCTS_ON_GEMM)
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_FILE", kernels.GEMM_CROSSOVER_FILE.with_name("no-such-file.json"))
    return request.param


class Clamp(nn.Module):
    def forward(self, x):
        return x.clamp(-0.5, 0.5)


LAST = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "clamp": Clamp}


def sample(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def training(last: str, device: str, dtype, compiled: bool, spy=None):
    """Runs STEPS SGD steps of Linear->ReLU->Linear->last; returns (losses, parameters, launches of the last
    step, the compiled step or None)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3), LAST[last]()).to(device=device, dtype=dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    x = torch.tensor(sample((5, 8), 1), dtype=dtype, device=device)
    target = torch.tensor(sample((5, 3), 2), dtype=dtype, device=device)

    def step(x, target):
        optimizer.zero_grad()
        loss = ((model(x) - target) ** 2).mean()
        loss.backward()
        optimizer.step()
        return loss.item()

    run = torch.compile(step) if compiled else step
    losses = []
    for _ in range(STEPS):
        if spy is not None:
            spy.counts.clear()
        losses.append(run(x, target))
    launches = collections.Counter(spy.counts) if spy is not None else None
    return losses, [p.detach().cpu().numpy().astype(np.float64) for p in model.parameters()], launches, \
        (run if compiled else None)


# Launches of one replayed step: per layer, the forward product with bias and activation, and the backward with
# the activation's derivative and the bias gradient's row sums.
FUSED_LAUNCHES = {
    # cuBLAS's products (the array module's @), then one pass for bias + activation, one for derivative + row sums
    "cublas": {"bias_activation": 2, "activation_backward": 2},
    # our GEMM: epilogue forward; backward dX and dW (+ bias sums) of the second layer, dW (+ sums) of the first
    "gemm": {"gemm": 5},
}
# The eager step: every activation on its own kernels, forward and backward.
EAGER_LAUNCHES = {
    "sigmoid": {"clamp_forward": 1, "sigmoid_forward": 1, "sigmoid_backward": 1, "relu_backward": 1},
    "relu": {"clamp_forward": 2, "relu_backward": 2},
    "clamp": {"clamp_forward": 2, "clamp_backward": 1, "relu_backward": 1},
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("last", list(LAST))
def test_compiled_training_step_runs_the_fused_kernels_and_matches_eager_and_the_cpu(kernels_on_fake_cuda,
                                                                                     crossover, last, dtype):
    spy = kernels_on_fake_cuda
    eager_losses, eager_params, eager_launches, _ = training(last, "cuda", dtype, False, spy)
    losses, params, launches, compiled = training(last, "cuda", dtype, True, spy)
    cpu_losses, cpu_params, _, _ = training(last, "cpu", dtype, False)
    assert compiled.stats["replays"] >= 2 and compiled.stats["eager"] == 0

    expected_eager = collections.Counter(EAGER_LAUNCHES[last])
    if crossover == "gemm":
        expected_eager["gemm"] = 5  # Linear's products on our GEMM, each alone
    assert eager_launches == expected_eager
    assert launches == collections.Counter(FUSED_LAUNCHES[crossover])

    tolerance = TOLERANCE[dtype]
    np.testing.assert_allclose(losses, eager_losses, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(losses, cpu_losses, rtol=tolerance, atol=tolerance)
    for p, eager, cpu in zip(params, eager_params, cpu_params):
        np.testing.assert_allclose(p, eager, rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(p, cpu, rtol=tolerance, atol=tolerance)
    assert eager_losses[-1] < eager_losses[0]  # it trains

    program = compiled.programs()[-1]
    if crossover == "gemm":  # the pre-activations (but the clamp's) and the activations' gradients are dropped
        assert sum(a.size == 0 for a in program.arrays) >= (3 if last == "clamp" else 4)
    listing = program.listing()
    forward, backward = (("linear_forward(", "linear_backward(") if crossover == "gemm"
                         else ("bias_activation(", "activation_backward("))
    fused_lines = [line for line in listing.splitlines() if forward in line or backward in line]
    assert len(fused_lines) == 4 and all(line.endswith("[gradcore kernel]") for line in fused_lines)
    assert f"activation='{'relu' if last == 'relu' else last}'" in listing
    assert "clamp_forward(" not in listing and "sigmoid_forward(" not in listing
    assert "relu_backward(" not in listing and "sigmoid_backward(" not in listing


def linear_then(name: str, device: str, compiled: bool = True):
    """A (compiled) training step of one Linear(8, 6) whose pre-activation ``h`` goes to ``code(h)`` and, where
    ``shown`` is given, out of the call as ``shown(h)``; returns (the results of its calls, the weight, the
    compiled step)."""
    code, shown = READ_ELSEWHERE[name]
    torch.manual_seed(0)
    layer = nn.Linear(8, 6).to(device=device, dtype=torch.float64)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    x = torch.tensor(sample((5, 8), 3), dtype=torch.float64, device=device)

    def step(x):
        optimizer.zero_grad()
        h = layer(x)
        out = code(h)
        loss = (out ** 2).mean()
        loss.backward()
        optimizer.step()
        return (loss.detach(),) + (() if shown is None else (shown(h.detach()),))

    run = torch.compile(step) if compiled else step
    results = [[t.cpu().numpy() for t in run(x)] for _ in range(STEPS)]
    return results, layer.weight.detach().cpu().numpy(), run


READ_ELSEWHERE = {
    # h is an output of the call, or a view of it is: it must be computed, so the forward keeps product and
    # activation apart
    "returned": (lambda h: h.relu(), lambda h: h),
    "returned_view": (lambda h: h.relu(), lambda h: h[1:3]),
    # h feeds the activation and another op: neither the forward nor the backward can drop it
    "used_twice": (lambda h: h.relu() + h * 0.25, None),
}


@pytest.mark.parametrize("name", list(READ_ELSEWHERE))
def test_a_pre_activation_read_elsewhere_is_not_fused(kernels_on_fake_cuda, crossover, name):
    results, weight, compiled = linear_then(name, "cuda")
    cpu_results, cpu_weight, _ = linear_then(name, "cpu", compiled=False)
    for values, cpu_values in zip(results, cpu_results):
        for value, cpu_value in zip(values, cpu_values):
            np.testing.assert_allclose(value, cpu_value, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weight, cpu_weight, rtol=1e-12, atol=1e-12)
    assert compiled.stats["replays"] >= 2 and compiled.stats["eager"] == 0

    kernels_on_fake_cuda.counts.clear()
    compiled(torch.tensor(sample((5, 8), 3), dtype=torch.float64, device="cuda"))
    counts = kernels_on_fake_cuda.counts
    # The forward: the product alone (our GEMM without epilogue or cuBLAS), then relu's own kernel.
    assert counts["clamp_forward"] == 1 and counts["bias_activation"] == 0
    listing = compiled.listing()
    assert "bias_activation(" not in listing
    assert all("activation=" not in line for line in listing.splitlines() if "linear_forward(" in line)
    if name == "used_twice":
        # dz = relu'(h) * grad is added to the other gradient of h: the derivative runs alone too.
        assert counts["relu_backward"] == 1 and counts["activation_backward"] == 0
        assert "saved=" not in listing
    else:
        # The backward still fuses: dz has no reader but Linear's backward (x needs no gradient: one launch of
        # our GEMM for dW and the bias sums, or one activation_backward pass before cuBLAS's dW).
        assert counts["relu_backward"] == 0
        if crossover == "cublas":
            assert counts["activation_backward"] == 1
        else:
            assert counts["gemm"] == 2 and "saved=" in listing


def test_a_pre_activation_read_elsewhere_than_its_backward_keeps_the_derivative(kernels_on_fake_cuda, crossover):
    """The activation's input gradient is read by the loss too (``retain``: another op reads dz): the derivative
    is computed alone."""
    def step_code(h):
        return h.sigmoid()

    torch.manual_seed(0)
    layer = nn.Linear(8, 6).to(device="cuda", dtype=torch.float64)
    x = torch.tensor(sample((5, 8), 4), dtype=torch.float64, device="cuda")

    def step(x):
        layer.zero_grad()
        h = layer(x)
        (grad_h,) = torch.autograd.grad(step_code(h).sum(), h, retain_graph=True)
        h.backward(grad_h)
        return grad_h.detach()

    compiled = torch.compile(step)
    values = [compiled(x).cpu().numpy() for _ in range(STEPS)]
    eager = step(x).cpu().numpy()
    for value in values:
        np.testing.assert_allclose(value, eager, rtol=1e-12, atol=1e-12)
    kernels_on_fake_cuda.counts.clear()
    compiled(x)
    assert kernels_on_fake_cuda.counts["sigmoid_backward"] == 1


def test_on_the_cpu_the_program_is_left_as_it_is():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3), nn.Sigmoid()).to(device="cpu")
    x = torch.tensor(sample((5, 8), 1), dtype=torch.float32, device="cpu")

    def step(x):
        model.zero_grad()
        loss = model(x).sum()
        loss.backward()
        return loss.item()

    compiled = torch.compile(step)
    losses = [compiled(x) for _ in range(STEPS)]
    assert losses == [step(x)] * STEPS  # nothing changes the parameters: every call gives the same loss
    listing = compiled.listing()
    assert "[gradcore kernel]" not in listing and "linear_forward(" not in listing
    assert "bias_activation(" not in listing
