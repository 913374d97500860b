"""gradcore.compile: captured calls give what eager calls give, bit for bit, and every guard recaptures.

Each test runs the same code twice from the same seed, eagerly and compiled, and compares losses and
parameters exactly (``np.array_equal``): a replay runs the very array operations the eager call ran. (On CUDA
tensors with gradcore's kernels, fused kernels make that "to float rounding": see ``FUSED``.)
"""
import warnings

import numpy as np
import pytest

import gradcore as torch
from gradcore import nn


def host(t):
    return t.detach().cpu().numpy()


# On CUDA tensors with gradcore's kernels (--device fake-cuda-kernels, or a GPU) a compiled program fuses Linear
# with its activation (gradcore/_capture/fusion.py), whose kernels add in another order: there compiled and eager
# agree to float rounding; elsewhere bit for bit.
FUSED = torch.zeros(1).device.type != "cpu"


def same_values(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if FUSED:
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-5, atol=1e-6))
    return bool(np.array_equal(a, b))


def same_parameters(a, b) -> bool:
    return all(same_values(host(p), host(q)) for p, q in zip(a, b))


# -- whole training steps ----------------------------------------------------------------------------

def seed_mlp(seed: int = 0):
    torch.manual_seed(seed)
    x, y = torch.randn(64, 1000), torch.randn(64, 10)
    w1 = torch.randn(1000, 100, requires_grad=True)
    w2 = torch.randn(100, 10, requires_grad=True)
    return x, y, w1, w2


def seed_step(x, y, w1, w2, lr=1e-6):
    y_pred = x.mm(w1).clamp(min=0).mm(w2)
    loss = (y_pred - y).pow(2).sum()
    loss.backward()
    with torch.no_grad():
        w1 -= lr * w1.grad
        w2 -= lr * w2.grad
        w1.grad.zero_()
        w2.grad.zero_()
    return loss.item()


def test_seed_mlp_equals_eager():
    eager_data, compiled_data = seed_mlp(), seed_mlp()
    compiled = torch.compile(seed_step)
    for _ in range(12):
        assert seed_step(*eager_data) == compiled(*compiled_data)
    assert same_parameters(eager_data[2:], compiled_data[2:])
    # The first call finds no .grad, the second finds the zeroed ones; the third call is captured again and
    # compared with the second (CompiledCallable._verify) before any replay.
    assert compiled.stats == {"captures": 3, "replays": 9, "eager": 0}


def digits_like_run(compiled: bool, epochs: int = 3):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    torch.manual_seed(1)
    data = torch.utils.data.TensorDataset(torch.randn(100, 64), torch.randint(0, 10, (100,)))

    def step(xb, yb):
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        return loss.item()

    run = torch.compile(step) if compiled else step
    # 100 samples in batches of 32: the short last batch of 4 is another variant.
    loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True,
                                         generator=torch.Generator().manual_seed(3))
    losses = [run(xb, yb) for _ in range(epochs) for xb, yb in loader]
    return losses, list(model.parameters()), optimizer, run


def test_digits_mlp_with_adam_label_smoothing_and_a_short_last_batch_equals_eager():
    eager_losses, eager_params, eager_optimizer, _ = digits_like_run(False)
    losses, params, optimizer, compiled = digits_like_run(True)
    assert same_values(losses, eager_losses)
    assert same_parameters(eager_params, params)
    for p, q in zip(eager_params, params):  # the optimizer state is a real tensor, readable between calls
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert same_values(host(eager_optimizer.state[p][key]), host(optimizer.state[q][key]))
        assert same_values(host(p.grad), host(q.grad))
    assert compiled.stats["replays"] >= 6 and compiled.stats["eager"] == 0


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_with_momentum_equals_eager(nesterov):
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.Sigmoid(), nn.Linear(16, 1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=nesterov,
                                    weight_decay=1e-3)
        torch.manual_seed(1)
        batches = [(torch.randn(5, 8), torch.randn(5, 1)) for _ in range(6)]

        def step(x, y):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            return loss

        run = torch.compile(step) if compiled else step
        losses = [host(run(x, y)).item() for x, y in batches]
        results.append((losses, list(model.parameters())))
    assert same_values(results[0][0], results[1][0])
    assert same_parameters(results[0][1], results[1][1])


def test_compiled_module_forward_and_backward_outside():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    compiled = torch.compile(model)
    assert compiled._orig_mod is model and len(list(compiled.parameters())) == 4
    for i in range(3):
        x = torch.randn(3, 4)
        expected_out = model(x)
        expected_out.sum().backward()
        expected = [host(p.grad).copy() for p in model.parameters()]
        model.zero_grad()
        out = compiled(x)
        assert same_values(host(out), host(expected_out))
        if i == 2:  # the first two calls are captures (the second one verifies the first)
            assert out.grad_fn.name() == "CompiledFunctionBackward"
        out.sum().backward()
        assert all(same_values(host(p.grad), e) for p, e in zip(model.parameters(), expected))
        model.zero_grad()
    assert compiled._compiled_call.stats["replays"] == 1


def test_calling_again_before_backward_is_refused():
    torch.manual_seed(0)
    w = torch.randn(3, 3, requires_grad=True)
    f = torch.compile(lambda x: (x @ w).sigmoid().sum())
    x = torch.randn(2, 3)
    f(x).backward()
    f(x).backward()
    first = f(x)
    f(x)
    with pytest.raises(RuntimeError, match="called again before the backward"):
        first.backward()


# -- guards --------------------------------------------------------------------------------------------

def test_shape_dtype_and_requires_grad_changes_capture_again():
    f = torch.compile(lambda x: (x * 2).sum())
    for _ in range(3):
        f(torch.ones(3))
    assert f.stats == {"captures": 2, "replays": 1, "eager": 0}
    assert host(f(torch.ones(4))) == 8  # another shape
    assert f(torch.ones(4, dtype=torch.float64)).dtype == torch.float64  # another dtype
    out = f(torch.ones(4, requires_grad=True))  # another requires_grad
    assert out.requires_grad
    assert f.stats["captures"] == 5


def test_grad_mode_is_a_guard():
    w = torch.ones(3, requires_grad=True)
    f = torch.compile(lambda x: (x * w).sum())
    assert f(torch.ones(3)).requires_grad
    with torch.no_grad():
        assert not f(torch.ones(3)).requires_grad
    assert f.stats["captures"] == 2


def test_python_number_arguments_are_guarded_by_the_decisions_they_made():
    def f(x, scale, threshold):
        y = x * scale  # scale flows into the program: a new value replays without a new capture
        return y.sum() if threshold > 0 else y.prod()

    compiled = torch.compile(f)
    x = torch.tensor([1.0, 2.0, 3.0])
    cases = [(2.0, 1.0), (3.0, 5.0), (0.5, 2.0), (2.0, -1.0), (4.0, -3.0), (1.0, 1.0), (0.25, -2.0)]
    for scale, threshold in cases:
        assert host(compiled(x, scale, threshold)) == host(f(x, scale, threshold))
    assert compiled.stats == {"captures": 4, "replays": 3, "eager": 0}


def test_a_branch_on_a_tensor_value_is_right_on_every_call_gradients_included():
    w = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)

    def f(x):
        if (x * w).sum() > 0:
            return (x * w).exp().sum()
        return ((x - w) ** 2).sum()

    compiled = torch.compile(f)
    inputs = [torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])] * 4
    for x in inputs:
        out = compiled(x)
        out.backward()
        grad = host(w.grad).copy()
        w.grad = None
        expected = f(x)
        expected.backward()
        assert host(out) == host(expected)
        assert np.array_equal(grad, host(w.grad))
        w.grad = None
    assert compiled.stats == {"captures": 4, "replays": 4, "eager": 0}


def test_replaced_parameter_data_captures_again():
    lin = nn.Linear(2, 1)
    f = torch.compile(lambda x: lin(x))
    x = torch.ones(1, 2)
    for _ in range(3):
        f(x)
    assert f.stats == {"captures": 2, "replays": 1, "eager": 0}
    lin.weight.data = torch.zeros(1, 2)
    lin.bias.data = torch.zeros(1)
    assert host(f(x)).item() == 0.0
    assert f.stats["captures"] == 3


def test_optimizer_settings_and_module_mode_are_guards():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.0), nn.Linear(3, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(x):
        optimizer.zero_grad()
        loss = model(x).sum()
        loss.backward()
        optimizer.step()

    f = torch.compile(step)
    x = torch.ones(2, 3)
    for _ in range(4):
        f(x)
    assert f.stats["replays"] == 1
    captures = f.stats["captures"]
    before = host(model[0].weight).copy()
    optimizer.param_groups[0]["lr"] = 0.0  # a new learning rate must not replay the old one
    f(x)
    assert np.array_equal(host(model[0].weight), before)
    assert f.stats["captures"] == captures + 1
    model.eval()
    f(x)
    assert f.stats["captures"] == captures + 2


def test_a_global_tensor_rebound_to_another_captures_again():
    global scale_tensor
    scale_tensor = torch.tensor(2.0)
    f = torch.compile(lambda x: x * scale_tensor)
    assert host(f(torch.ones(2))).tolist() == [2.0, 2.0]
    scale_tensor = torch.tensor(3.0)
    assert host(f(torch.ones(2))).tolist() == [3.0, 3.0]


def test_a_python_number_kept_between_calls_is_found_and_runs_eagerly():
    """A value that comes from Python state the capture cannot follow would be replayed stale: the second
    capture shows it differs, and the function runs eagerly from then on."""
    state = {"calls": 0}

    def f(x):
        state["calls"] += 1
        return x * state["calls"]

    compiled = torch.compile(f)
    with pytest.warns(UserWarning, match="is not the same in two calls"):
        results = [host(compiled(torch.ones(2))).tolist() for _ in range(4)]
    assert results == [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]]
    assert compiled.stats["replays"] == 0


def test_cache_limit_falls_back_to_eager_with_one_warning(monkeypatch):
    monkeypatch.setattr(torch._capture.compiler, "cache_size_limit", 3)
    f = torch.compile(lambda x: x.sum() * 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = [host(f(torch.ones(n))).item() for n in range(1, 7)]
    assert results == [2.0 * n for n in range(1, 7)]
    assert f.stats == {"captures": 3, "replays": 0, "eager": 3}
    assert sum("cache_size_limit" in str(w.message) for w in caught) == 1


def test_random_sampling_runs_eagerly_with_a_warning():
    f = torch.compile(lambda x: x + torch.rand(3))
    with pytest.warns(UserWarning, match="random numbers"):
        a = f(torch.zeros(3))
    b = f(torch.zeros(3))
    assert not np.array_equal(host(a), host(b))
    assert f.stats == {"captures": 1, "replays": 0, "eager": 1}


@pytest.mark.parametrize("kind", ["tensor hook", "retain_grad", "module hook", "post-accumulate hook"])
def test_calls_that_run_hooks_run_eagerly(kind):
    """A hook is Python that a replay would skip (a gradient clip in a hook): such calls are never replayed
    (DistributedDataParallel's hook is marked capture_safe and records its all-reduces as host steps)."""
    torch.manual_seed(0)
    lin = nn.Linear(3, 1)
    seen = []
    if kind == "module hook":
        lin.register_forward_hook(lambda module, args, out: seen.append(1))
    if kind == "post-accumulate hook":
        lin.weight.register_post_accumulate_grad_hook(lambda p: seen.append(1))

    def step(x):
        lin.zero_grad()
        h = lin(x)
        if kind == "tensor hook":
            h.register_hook(lambda g: seen.append(1))
        if kind == "retain_grad":
            h.retain_grad()
            seen.append(1)
        h.sum().backward()

    f = torch.compile(step)
    with pytest.warns(UserWarning, match="hooks"):
        for _ in range(3):
            f(torch.ones(2, 3))
    assert f.stats["replays"] == 0 and len(seen) == 3


def test_fullgraph_raises_where_a_call_cannot_be_captured():
    f = torch.compile(lambda x: x + torch.rand(3), fullgraph=True)
    with pytest.raises(RuntimeError, match="fullgraph"):
        f(torch.zeros(3))


def test_in_place_writes_to_an_input_reach_the_callers_tensor():
    f = torch.compile(lambda x: x.mul_(2))
    for _ in range(3):
        x = torch.ones(3)
        f(x)
        assert host(x).tolist() == [2.0, 2.0, 2.0]


def test_outputs_do_not_share_memory_between_calls():
    f = torch.compile(lambda x: x * 2)
    a = f(torch.ones(2))
    b = f(torch.full((2,), 3.0))
    c = f(torch.full((2,), 5.0))
    assert host(a).tolist() == [2.0, 2.0] and host(b).tolist() == [6.0, 6.0] and host(c).tolist() == [10.0, 10.0]


def test_disable_runs_the_function_itself():
    calls = []
    f = torch.compile(lambda x: calls.append(1) or x + 1, disable=True)
    f(torch.ones(1))
    f(torch.ones(1))
    assert len(calls) == 2


def test_decorator_forms():
    @torch.compile
    def f(x):
        return x + 1

    @torch.compile(fullgraph=True)
    def g(x):
        return x * 3

    assert host(f(torch.ones(1))).item() == 2.0 and host(g(torch.ones(1))).item() == 3.0
    assert f.__name__ == "f"


# -- looking inside ------------------------------------------------------------------------------------

def test_listing_and_dot_name_the_operations():
    f = torch.compile(seed_step)
    data = seed_mlp()
    f(*data)
    f(*data)
    listing = f.listing()
    assert "float32[64, 1000]" in listing
    # The clamp runs numpy's maximum, or gradcore's kernel where the arrays are on a device that has them.
    assert "= maximum(" in listing or "= clamp_forward(" in listing and "[gradcore kernel]" in listing
    program = f.programs()[-1]
    products = sum(line.count("= matmul(") + line.count("= gemm(") for line in program.listing().splitlines())
    assert products == 5  # 2 forward, 3 backward
    dot = f.to_dot()
    assert dot.startswith('digraph "seed_step" {') and dot.rstrip().endswith("}")
    assert dot.count("->") >= 10 and ("matmul" in dot or "gemm" in dot)


def test_python_side_effects_happen_only_while_capturing():
    seen = []

    def f(x):
        seen.append(x.shape)
        return x + 1

    compiled = torch.compile(f)
    for _ in range(4):
        compiled(torch.ones(2))
    assert len(seen) == 2  # the first capture and the one that verifies it
