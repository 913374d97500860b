"""The ops reach our kernels on CUDA tensors: user-level code on "cuda" tensors of the CuPy test double, with the
real kernel sources running on the CPU through the emulation (the ``kernels_on_fake_cuda`` fixture).

Each test runs the same code on CPU tensors (numpy, no kernels) and on "cuda" tensors, and checks that the kernels
were launched (counted by name), that values and gradients agree with the CPU path, that double backward through
a kernel path still differentiates the gradient, and that CPU tensors, other dtypes and the double without an
installed launcher launch nothing.

Eager mode runs each op alone, as PyTorch eager does: no launch here fuses a product with the activation after
it. That fusion is a pass over captured programs (``gradcore/_capture/fusion.py``), tested with its launch counts
in tests/capture/test_fusion.py.
"""
from __future__ import annotations

import collections

import fake_cupy
import numpy as np
import pytest

import gradcore
from gradcore import nn
from gradcore.backend import kernels

DTYPES = [gradcore.float32, gradcore.float64]
# Kernels agree with numpy to a few ulp (products sum in another order, over an inner dimension of at most 8
# here): bounds of some ulp of values of order one.
TOLERANCE = {gradcore.float32: 1e-6, gradcore.float64: 1e-12}
# A crossover above every product of these tests: Mm and Linear take our GEMM instead of the array module's @.
ALL_PRODUCTS_ON_GEMM = 10**9


def sample(shape, seed: int) -> np.ndarray:
    """Normal values with the clamp bounds used below (0, -0.5, 0.5) among them, where gradients switch."""
    values = np.random.default_rng(seed).standard_normal(shape)
    flat = values.reshape(-1)
    flat[:3] = [0.0, -0.5, 0.5][: flat.size]
    return values


def run(code, arrays, device: str, dtype, upstream_seed: int = 99):
    """Runs ``code`` on leaves made from ``arrays`` on ``device``, back-propagates a fixed upstream gradient and
    returns (output, gradients of the leaves) as float64 numpy arrays."""
    leaves = [gradcore.tensor(a, dtype=dtype, device=device, requires_grad=True) for a in arrays]
    out = code(*leaves)
    assert out.device.type == device and out.dtype is dtype
    if device == "cuda":
        assert isinstance(out._data, fake_cupy.ndarray)  # a kernel's output is a device array like any other
    upstream = gradcore.tensor(sample(tuple(out.shape), upstream_seed), dtype=dtype, device=device)
    out.backward(upstream)
    for leaf in leaves:
        assert leaf.grad.device.type == device and leaf.grad.dtype is dtype
    return host(out), [host(leaf.grad) for leaf in leaves]


def host(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


def assert_close(actual, expected, tolerance: float) -> None:
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance)


def assert_same_as_cpu(code, arrays, dtype, tolerance: float) -> None:
    cpu_out, cpu_grads = run(code, arrays, "cpu", dtype)
    cuda_out, cuda_grads = run(code, arrays, "cuda", dtype)
    assert_close(cuda_out, cpu_out, tolerance)
    assert len(cuda_grads) == len(cpu_grads)
    for cuda_grad, cpu_grad in zip(cuda_grads, cpu_grads):
        assert_close(cuda_grad, cpu_grad, tolerance)


# -- activations -------------------------------------------------------------------------------------------

ACTIVATIONS = {
    "sigmoid": (lambda x: gradcore.sigmoid(x), {"sigmoid_forward": 1, "sigmoid_backward": 1}),
    "sigmoid_method": (lambda x: x.sigmoid(), {"sigmoid_forward": 1, "sigmoid_backward": 1}),
    "nn_sigmoid": (lambda x: nn.Sigmoid()(x), {"sigmoid_forward": 1, "sigmoid_backward": 1}),
    "relu": (lambda x: gradcore.relu(x), {"clamp_forward": 1, "relu_backward": 1}),
    "functional_relu": (lambda x: nn.functional.relu(x), {"clamp_forward": 1, "relu_backward": 1}),
    "clamp_min_0": (lambda x: x.clamp(min=0), {"clamp_forward": 1, "clamp_backward": 1}),
    "clamp_both": (lambda x: gradcore.clamp(x, -0.5, 0.5), {"clamp_forward": 1, "clamp_backward": 1}),
    "clamp_max_only": (lambda x: x.clamp(max=0.5), {"clamp_forward": 1, "clamp_backward": 1}),
    # In place: forward sees a snapshot of the old value, so the saved x is not the clamped result.
    "clamp_inplace": (lambda x: (x * 1).clamp_(-0.5, 0.5), {"clamp_forward": 1, "clamp_backward": 1}),
    "relu_inplace": (lambda x: nn.functional.relu(x * 1, inplace=True), {"clamp_forward": 1, "relu_backward": 1}),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activations_launch_their_kernels_and_match_the_cpu(kernels_on_fake_cuda, name, dtype):
    code, launches = ACTIVATIONS[name]
    assert_same_as_cpu(code, [sample((7, 45), seed=1)], dtype, TOLERANCE[dtype])
    assert kernels_on_fake_cuda.counts == collections.Counter(launches)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ["sigmoid", "clamp_both", "relu"])
def test_double_backward_through_a_kernel_path_matches_the_cpu(kernels_on_fake_cuda, name, dtype):
    """create_graph=True: the first gradient must be recorded (tensor ops), so that differentiating it again
    gives what the CPU gives; the second backward records nothing and may use the kernel."""
    code, _ = ACTIVATIONS[name]
    backward_kernel = {"sigmoid": "sigmoid_backward", "clamp_both": "clamp_backward", "relu": "relu_backward"}[name]
    results = {}
    for device in ("cpu", "cuda"):
        x = gradcore.tensor(sample((5, 9), seed=2), dtype=dtype, device=device, requires_grad=True)
        upstream = gradcore.tensor(sample((5, 9), seed=3), dtype=dtype, device=device, requires_grad=True)
        y = code(x)
        (g,) = gradcore.autograd.grad(y, x, grad_outputs=upstream, create_graph=True)
        assert g.requires_grad  # recorded: a kernel's result would have no history here
        (g * y).sum().backward()
        results[device] = [host(t) for t in (g, x.grad, upstream.grad)]
    for cuda_value, cpu_value in zip(results["cuda"], results["cpu"]):
        assert_close(cuda_value, cpu_value, TOLERANCE[dtype])
    # One launch, in the second backward (through y's node); the recorded first gradient used tensor ops.
    assert kernels_on_fake_cuda.counts[backward_kernel] == 1


# -- products: the seed's network and nn.Linear ----------------------------------------------------------

def seed_loss(x, w1, w2, y):
    return (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()


def run_seed_step(device: str, dtype):
    x = gradcore.tensor(sample((6, 8), seed=4), dtype=dtype, device=device)
    y = gradcore.tensor(sample((6, 3), seed=5), dtype=dtype, device=device)
    w1 = gradcore.tensor(sample((8, 5), seed=6), dtype=dtype, device=device, requires_grad=True)
    w2 = gradcore.tensor(sample((5, 3), seed=7), dtype=dtype, device=device, requires_grad=True)
    loss = seed_loss(x, w1, w2, y)
    loss.backward()
    return [host(loss), host(w1.grad), host(w2.grad)]


def assert_seed_step_matches_the_cpu(dtype, tolerance: float) -> None:
    for cuda_value, cpu_value in zip(run_seed_step("cuda", dtype), run_seed_step("cpu", dtype)):
        assert_close(cuda_value, cpu_value, tolerance)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_seed_network_clamps_on_the_kernels_and_keeps_products_on_cublas(kernels_on_fake_cuda, dtype):
    # Not measured on a GPU yet: every product stays with cuBLAS.
    assert kernels.product_path(64, 1000, 100, "float32") == "cublas"
    assert_seed_step_matches_the_cpu(dtype, TOLERANCE[dtype])
    # The clamp forward and backward on their kernels; the products on the array module's @ (cuBLAS on a GPU).
    assert kernels_on_fake_cuda.counts == collections.Counter({"clamp_forward": 1, "clamp_backward": 1})


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_seed_network_below_the_crossover_runs_every_product_on_our_gemm(kernels_on_fake_cuda, monkeypatch, dtype):
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_OVERRIDE", ALL_PRODUCTS_ON_GEMM)
    assert_seed_step_matches_the_cpu(dtype, TOLERANCE[dtype])
    # Forward: two products. Backward: dW2 and dH of the second product, the clamp's derivative, dW1 of the first
    # (x needs no grad). Transposed operands are read in place.
    assert kernels_on_fake_cuda.counts == collections.Counter({"gemm": 5, "clamp_forward": 1, "clamp_backward": 1})


def mlp(last: str):
    gradcore.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3), nn.Sigmoid() if last == "sigmoid" else nn.ReLU())


def run_mlp_step(last: str, device: str, dtype):
    model = mlp(last).to(device=device, dtype=dtype)
    x = gradcore.tensor(sample((5, 8), seed=8), dtype=dtype, device=device)
    target = gradcore.tensor(sample((5, 3), seed=9), dtype=dtype, device=device)
    out = model(x)
    ((out - target) ** 2).mean().backward()
    return [host(out)] + [host(p.grad) for p in model.parameters()]


def assert_mlp_step_matches_the_cpu(last: str, dtype, tolerance: float) -> None:
    cuda_values, cpu_values = run_mlp_step(last, "cuda", dtype), run_mlp_step(last, "cpu", dtype)
    assert len(cuda_values) == 5  # the output and four parameter gradients
    for cuda_value, cpu_value in zip(cuda_values, cpu_values):
        assert_close(cuda_value, cpu_value, tolerance)


# The eager launches of the MLP's activations: ReLU then ReLU or Sigmoid, forward and backward.
MLP_ACTIVATION_LAUNCHES = {
    "relu": {"clamp_forward": 2, "relu_backward": 2},
    "sigmoid": {"clamp_forward": 1, "sigmoid_forward": 1, "relu_backward": 1, "sigmoid_backward": 1},
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("last", ["relu", "sigmoid"])
def test_sequential_runs_each_activation_on_its_own_kernels_above_the_crossover(kernels_on_fake_cuda, last, dtype):
    assert_mlp_step_matches_the_cpu(last, dtype, TOLERANCE[dtype])
    # Products on cuBLAS, bias added by the array module, every activation on its own kernel: nothing fuses.
    assert kernels_on_fake_cuda.counts == collections.Counter(MLP_ACTIVATION_LAUNCHES[last])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("last", ["relu", "sigmoid"])
def test_sequential_below_the_crossover_runs_each_product_on_our_gemm(kernels_on_fake_cuda, monkeypatch, last,
                                                                      dtype):
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_OVERRIDE", ALL_PRODUCTS_ON_GEMM)
    assert_mlp_step_matches_the_cpu(last, dtype, TOLERANCE[dtype])
    # Forward: one launch per layer (bias in the epilogue), then the activation's kernel. Backward: the
    # activation's derivative alone, then dX and dW (+ bias sums) of the second layer, dW (+ bias) of the first.
    assert kernels_on_fake_cuda.counts == collections.Counter({"gemm": 5, **MLP_ACTIVATION_LAUNCHES[last]})


@pytest.mark.parametrize("last", ["relu", "sigmoid"])
def test_sequential_records_the_graph_of_its_layers(kernels_on_fake_cuda, last):
    names = {}
    for device in ("cpu", "cuda"):
        out = mlp(last).to(device)(gradcore.tensor(sample((5, 8), seed=8), dtype=gradcore.float32, device=device))
        node, chain = out.grad_fn, []
        while node is not None and node.name() != "AccumulateGrad":
            chain.append(node.name())
            node = node.next_functions[0][0]
        names[device] = chain
    assert names["cuda"] == names["cpu"] == [
        "SigmoidBackward0" if last == "sigmoid" else "ReluBackward0", "AddmmBackward0", "ReluBackward0",
        "AddmmBackward0",
    ]
    assert kernels_on_fake_cuda.counts["bias_activation"] == 0


FUNCTIONAL = {
    "relu": lambda x, w, b: nn.functional.relu(nn.functional.linear(x, w, b)),
    "sigmoid": lambda x, w, b: nn.functional.linear(x, w, b).sigmoid(),
    "clamp": lambda x, w, b: nn.functional.linear(x, w, b).clamp(-0.5, 0.5),
    "no_bias_relu": lambda x, w, b: nn.functional.linear(x, w).relu() + b.sum(),
    # mm and @ on a transposed view (read where it lies, also by the fused backward)
    "mm_transposed_sigmoid": lambda x, w, b: x.mm(w.t()).sigmoid() + b.sum(),
    "matmul_clamp": lambda x, w, b: (x @ w.t()).clamp(min=0) + b.sum(),
}
FORWARD_KERNEL = {"relu": "clamp_forward", "sigmoid": "sigmoid_forward", "clamp": "clamp_forward",
                  "no_bias_relu": "clamp_forward", "mm_transposed_sigmoid": "sigmoid_forward",
                  "matmul_clamp": "clamp_forward"}
# The activation's own backward kernel, whatever the product before it.
BACKWARD_KERNEL = {"relu": "relu_backward", "sigmoid": "sigmoid_backward", "clamp": "clamp_backward",
                   "no_bias_relu": "relu_backward", "mm_transposed_sigmoid": "sigmoid_backward",
                   "matmul_clamp": "clamp_backward"}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(FUNCTIONAL))
def test_functional_linear_then_activation_runs_the_activation_kernels(kernels_on_fake_cuda, name, dtype):
    arrays = [sample((5, 8), seed=20), sample((6, 8), seed=21), sample((6,), seed=22)]
    assert_same_as_cpu(FUNCTIONAL[name], arrays, dtype, TOLERANCE[dtype])
    # Above the crossover: cuBLAS's products, the activation forward and backward on its own kernels.
    assert kernels_on_fake_cuda.counts == collections.Counter({FORWARD_KERNEL[name]: 1, BACKWARD_KERNEL[name]: 1})


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(FUNCTIONAL))
def test_functional_linear_then_activation_below_the_crossover(kernels_on_fake_cuda, monkeypatch, name, dtype):
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_OVERRIDE", ALL_PRODUCTS_ON_GEMM)
    arrays = [sample((5, 8), seed=20), sample((6, 8), seed=21), sample((6,), seed=22)]
    assert_same_as_cpu(FUNCTIONAL[name], arrays, dtype, TOLERANCE[dtype])
    # Forward: the product (bias in its epilogue), then the activation. Backward: the activation's derivative,
    # then dX and dW (+ bias sums).
    assert kernels_on_fake_cuda.counts == collections.Counter({"gemm": 3, FORWARD_KERNEL[name]: 1,
                                                               BACKWARD_KERNEL[name]: 1})


WATCHED = {
    # The pre-activation's gradient is asked for, or flows elsewhere too.
    "retain_grad": lambda h: (h.retain_grad(), h.relu())[1],
    "hook": lambda h: (h.register_hook(lambda g: g * 3), h.relu())[1],
    "second_reader": lambda h: h.relu() + h * 0.25,
    "grad_fn_prehook": lambda h: (h.grad_fn.register_prehook(lambda gs: (gs[0] * 2,)), h.relu())[1],
}


@pytest.mark.parametrize("crossover", [0, ALL_PRODUCTS_ON_GEMM])
@pytest.mark.parametrize("name", list(WATCHED))
def test_an_activation_gradient_that_someone_else_reads_is_computed(kernels_on_fake_cuda, monkeypatch, name,
                                                                    crossover):
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_OVERRIDE", crossover)
    arrays = [sample((5, 8), seed=23), sample((6, 8), seed=24), sample((6,), seed=25)]
    retained = {}

    def code(x, w, b):
        h = nn.functional.linear(x, w, b)
        out = WATCHED[name](h)
        retained[x.device.type] = h
        return out

    assert_same_as_cpu(code, arrays, gradcore.float64, TOLERANCE[gradcore.float64])
    if name == "retain_grad":
        assert_close(host(retained["cuda"].grad), host(retained["cpu"].grad), TOLERANCE[gradcore.float64])
    assert kernels_on_fake_cuda.counts["relu_backward"] == 1


def test_autograd_grad_of_the_pre_activation_is_computed(kernels_on_fake_cuda):
    results = {}
    for device in ("cpu", "cuda"):
        x, w = (gradcore.tensor(sample(shape, seed), dtype=gradcore.float64, device=device, requires_grad=True)
                for shape, seed in (((4, 6), 26), ((3, 6), 27)))
        h = x.mm(w.t())
        (gh, gw) = gradcore.autograd.grad(h.sigmoid().sum(), (h, w))
        results[device] = [host(gh), host(gw)]
    for cuda_value, cpu_value in zip(results["cuda"], results["cpu"]):
        assert_close(cuda_value, cpu_value, TOLERANCE[gradcore.float64])
    assert kernels_on_fake_cuda.counts["sigmoid_backward"] == 1


def test_a_saved_output_changed_in_place_is_still_caught(kernels_on_fake_cuda):
    x = gradcore.tensor(sample((4, 6), seed=28), device="cuda", requires_grad=True)
    w = gradcore.tensor(sample((3, 6), seed=29), device="cuda", requires_grad=True)
    y = nn.functional.linear(x, w).relu()
    with gradcore.no_grad():
        y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_linear_double_backward_below_the_crossover_matches_the_cpu(kernels_on_fake_cuda, monkeypatch):
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_OVERRIDE", ALL_PRODUCTS_ON_GEMM)
    results = {}
    for device in ("cpu", "cuda"):
        x = gradcore.tensor(sample((4, 6), seed=10), dtype=gradcore.float64, device=device, requires_grad=True)
        w = gradcore.tensor(sample((3, 6), seed=11), dtype=gradcore.float64, device=device, requires_grad=True)
        b = gradcore.tensor(sample((3,), seed=12), dtype=gradcore.float64, device=device, requires_grad=True)
        y = nn.functional.linear(x, w, b).sigmoid()
        gx, gw = gradcore.autograd.grad(y.sum(), (x, w), create_graph=True)
        ((gx ** 2).sum() + (gw ** 2).sum()).backward()
        results[device] = [host(t) for t in (gx, gw, x.grad, w.grad, b.grad)]
    for cuda_value, cpu_value in zip(results["cuda"], results["cpu"]):
        assert_close(cuda_value, cpu_value, TOLERANCE[gradcore.float64])
    assert kernels_on_fake_cuda.counts["gemm"] > 0


# -- where the kernels must not run ----------------------------------------------------------------------

def user_code_on(device: str) -> None:
    """Every user-level path of this file, on tensors of ``device``."""
    for code, _ in ACTIVATIONS.values():
        run(code, [sample((3, 4), seed=13)], device, gradcore.float32)
    run_seed_step(device, gradcore.float64)
    run_mlp_step("sigmoid", device, gradcore.float32)


def test_cpu_tensors_launch_nothing(kernels_on_fake_cuda, monkeypatch):
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_OVERRIDE", ALL_PRODUCTS_ON_GEMM)
    user_code_on("cpu")
    assert kernels_on_fake_cuda.counts == collections.Counter()
    assert kernels.runs_on(np.ones(3, dtype=np.float32)) is None
    with pytest.raises(ValueError, match="CPU arrays"), kernels.use_launcher_for(np.ndarray, kernels_on_fake_cuda):
        pass


@pytest.mark.parametrize("dtype", [gradcore.float16, gradcore.int64], ids=str)
def test_other_dtypes_keep_the_array_code(kernels_on_fake_cuda, dtype):
    ops = [lambda t: t.relu(), lambda t: t.clamp(min=0), lambda t: t.clamp(-1, 1), lambda t: t.mm(t)]
    if dtype.is_floating_point:
        ops.append(lambda t: t.sigmoid())
    x = gradcore.tensor([[-2, 0], [3, -1]], dtype=dtype, device="cuda")
    for op in ops:
        out = op(x)
        assert out.device.type == "cuda" and out.dtype is op(x.cpu()).dtype
        assert np.array_equal(host(out), host(op(x.cpu())))
    assert kernels_on_fake_cuda.counts == collections.Counter()


def test_mixed_dtypes_do_not_qualify(kernels_on_fake_cuda):
    single = fake_cupy.ones(3, dtype=np.float32)
    double = fake_cupy.ones(3, dtype=np.float64)
    assert kernels.runs_on(single) is kernels_on_fake_cuda
    assert kernels.runs_on(single, single) is kernels_on_fake_cuda
    assert kernels.runs_on(single, double) is None
    assert kernels.runs_on(single, np.ones(3, dtype=np.float32)) is None


def test_the_double_without_an_installed_launcher_never_reaches_the_kernels(fake_cuda, monkeypatch):
    """Plain ``--device fake-cuda`` runs: the double's arrays are not CuPy's, so no kernel path is taken (and the
    CuPy launcher, which would need a GPU, is never asked for)."""
    def no_launcher():
        raise AssertionError("a kernel path was taken on the CuPy test double without an installed launcher")

    monkeypatch.setattr(kernels, "default_launcher", no_launcher)
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_OVERRIDE", ALL_PRODUCTS_ON_GEMM)
    assert kernels.runs_on(fake_cupy.ones(3, dtype=np.float32)) is None
    user_code_on("cuda")
