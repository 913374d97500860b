"""gradcore.compile on a CUDA device: replays are CUDA graph launches, and give what eager calls give.

Every test runs on the CuPy test double (installed for the test, in every ``--device`` mode), whose stream
capture records operations without running them and whose ``counters`` tell graph launches from operations
run one by one. Where a C++ compiler is at hand, gradcore's kernels run emulated on the CPU, so that a replay
shows whether kernel launches came from the graph or one by one from Python. The oracle is the same function
run eagerly on the same device, from the same seed.
"""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

import gradcore as torch
import kernel_emulation
from gradcore import backend, nn
from gradcore.backend import kernels


@pytest.fixture
def cp(fake_cuda):
    """The CuPy test double, with gradcore's kernels emulated behind a launcher of this test where a C++
    compiler exists (under ``--device fake-cuda-kernels`` the session's launcher is installed already)."""
    compiler = kernel_emulation.compiler()
    with contextlib.ExitStack() as stack:
        if compiler is not None:
            libraries, _ = kernel_emulation.build_once(compiler)
            emulated = kernel_emulation.EmulatedLauncher(libraries, multiprocessors=2, record_launches=False)
            launcher = kernel_emulation.CountingLauncher(emulated, fake_cuda)
            stack.enter_context(kernels.use_launcher_for(fake_cuda.ndarray, launcher))
        yield fake_cuda


def host(t) -> np.ndarray:
    return t.detach().cpu().numpy()


def counted(cp, call):
    """Runs ``call`` and returns its result and what the double counted meanwhile."""
    before = dict(cp.counters)
    result = call()
    return result, {k: v - before.get(k, 0) for k, v in cp.counters.items() if v - before.get(k, 0)}


def segments(compiled) -> int:
    """How many graphs one replay of the variant captured last launches."""
    runners = [r for vs in compiled._variants.values() for v in vs for r in v.cuda_graphs.values()]
    return sum(r.segments for r in runners[-1:])


def training_run(optimizer_name: str, compiled: bool, batches: list, device: str = "cuda"):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.Sigmoid(), nn.Linear(16, 4))
    model = model.to(device)
    if optimizer_name == "SGD":
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def step(x, y):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    run = torch.compile(step) if compiled else step
    return model, optimizer, run


def make_batches(count: int, rows: int = 5, seed: int = 1) -> list:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((rows, 8)).astype(np.float32),
             rng.standard_normal((rows, 4)).astype(np.float32)) for _ in range(count)]


@pytest.mark.parametrize("optimizer_name, default_device", [("SGD", "cpu"), ("Adam", "cpu"), ("Adam", "cuda")])
def test_a_compiled_training_step_replays_as_graph_launches_and_trains_as_eager(cp, monkeypatch, optimizer_name,
                                                                                default_device):
    # Adam makes its step counts on the default device: on the host (PyTorch's default) every read of them
    # is a host step, hoisted before the launch; on the device each read (.item()) ends a graph.
    monkeypatch.setattr(backend, "_default_backend", backend._default_backend)
    torch.set_default_device(default_device)
    counts_on_device = optimizer_name == "Adam" and default_device == "cuda"
    parameters = 6  # three Linear layers, weight and bias
    batches = make_batches(8)
    eager_model, _, eager_step = training_run(optimizer_name, False, batches)
    model, _, step = training_run(optimizer_name, True, batches)
    for n, (x, y) in enumerate(batches):
        xs, ys = torch.tensor(x, device="cuda"), torch.tensor(y, device="cuda")
        (expected, eager_counts) = counted(cp, lambda: eager_step(xs, ys))
        loss, replay_counts = counted(cp, lambda: step(xs, ys))
        # The fusion pass (fusion.py) adds in another order than eager's separate kernels: float rounding.
        np.testing.assert_allclose(host(loss), host(expected), rtol=1e-5, atol=1e-7)
        # The first call finds no .grad, the second and third capture (the third verifies the second), the
        # fourth builds the graphs and launches them, later calls only launch.
        if n >= 4:
            # One graph for the whole step (Adam's as SGD's), or one more per step count read from the device.
            launches = 1 + parameters if counts_on_device else 1
            assert segments(step) == launches
            assert replay_counts.get("graph_launches") == launches
            assert "kernel_launches" not in replay_counts  # no kernel launched one by one from Python
            assert replay_counts["operations"] < eager_counts["operations"]
        if n >= 5:
            # One by one: the copies of x and y into the static inputs and of the loss out of its buffer; for
            # Adam the copies of the Python numbers its graphs read (the bias corrections of every parameter,
            # computed on the host from the step counts): one before the one graph, or one before each graph
            # that follows a read of a step count (reads are not device operations). The first replay (n == 4)
            # also made the views of those numbers.
            expected_operations = {"SGD": 3, "Adam": 3 + 1}[optimizer_name]
            if counts_on_device:
                expected_operations = 3 + parameters
            assert replay_counts["operations"] == expected_operations
    for p, q in zip(eager_model.parameters(), model.parameters()):
        np.testing.assert_allclose(host(p), host(q), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(host(p.grad), host(q.grad), rtol=1e-5, atol=1e-7)
    assert step.cuda_graph_stats["fallback"] is None
    assert step.cuda_graph_stats["graphs"] == segments(step)  # built once
    assert step.stats["replays"] == 5


def test_the_static_inputs_are_refreshed_on_every_call(cp):
    torch.manual_seed(0)
    w = torch.randn(4, 3, device="cuda")

    def f(x):
        return (x @ w).relu().sum(dim=1) * 2 + x.mean()

    compiled = torch.compile(f)
    inputs = [torch.randn(5, 4, device="cuda") for _ in range(6)]
    results = [host(compiled(x)) for x in inputs]
    for x, result in zip(inputs, results):
        np.testing.assert_array_equal(result, host(f(x)))
    assert not np.array_equal(results[-1], results[-2])  # different data, different results
    assert compiled.cuda_graph_stats["launches"] == 4 and compiled.cuda_graph_stats["graphs"] == 1


def test_a_host_step_splits_the_program_into_graph_segments(cp):
    torch.manual_seed(0)
    w = torch.randn(4, 4, device="cuda")

    def f(x):
        h = (x @ w).sigmoid()
        scale = h.mean().item()  # read on the host: the first graph ends here
        return (h * scale).tanh() + 1  # takes the value read: runs from Python, then a second graph

    compiled = torch.compile(f)
    for n in range(5):
        x = torch.randn(3, 4, device="cuda")
        result, counts = counted(cp, lambda: compiled(x))
        np.testing.assert_allclose(host(result), host(f(x)), rtol=1e-6)
        if n >= 3:
            assert counts["graph_launches"] == 2
    assert segments(compiled) == 2


def test_a_new_variant_gets_its_own_graph(cp):
    torch.manual_seed(0)
    w = torch.randn(4, 2, device="cuda", requires_grad=True)

    def f(x):
        loss = (x @ w).sigmoid().pow(2).sum()
        loss.backward()
        return loss

    compiled = torch.compile(f)
    shapes = [(3, 4)] * 3 + [(5, 4)] * 3 + [(3, 4), (5, 4)] * 2
    for rows, columns in shapes:
        x = torch.randn(rows, columns, device="cuda")
        w.grad = None
        loss = compiled(x)
        grad = host(w.grad)
        w.grad = None
        expected = f(x)
        np.testing.assert_allclose(host(loss), host(expected), rtol=1e-6)
        np.testing.assert_allclose(grad, host(w.grad), rtol=1e-6)
    assert compiled.stats["replays"] == 6
    assert compiled.cuda_graph_stats["graphs"] == 2  # one per variant (the first replay of each built it)
    assert compiled.cuda_graph_stats["launches"] == 6


def test_a_capture_that_cuda_refuses_falls_back_to_step_by_step_replay(cp, monkeypatch):
    def refuse(stream, mode=None):
        raise cp.cuda.runtime.CUDARuntimeError(900)

    monkeypatch.setattr(cp.cuda.Stream, "begin_capture", refuse)
    torch.manual_seed(0)
    w = torch.randn(4, 3, device="cuda")

    def f(x):
        return (x @ w).sigmoid()

    compiled = torch.compile(f)
    for _ in range(4):
        x = torch.randn(2, 4, device="cuda")
        result, counts = counted(cp, lambda: compiled(x))
        np.testing.assert_array_equal(host(result), host(f(x)))
    assert "graph_launches" not in counts
    assert compiled.stats["replays"] == 2
    assert compiled.cuda_graph_stats["graphs"] == 0
    assert "cudaErrorStreamCaptureUnsupported" in compiled.cuda_graph_stats["fallback"]


def test_a_cpu_program_is_replayed_step_by_step_without_graphs():
    torch.manual_seed(0)
    w = torch.randn(4, 3, device="cpu")
    compiled = torch.compile(lambda x: (x @ w).relu())
    for _ in range(4):
        x = torch.randn(2, 4, device="cpu")
        np.testing.assert_array_equal(host(compiled(x)), host((x @ w).relu()))
    assert compiled.stats["replays"] == 2
    assert compiled.cuda_graph_stats == {"graphs": 0, "launches": 0, "fallback": None}


def test_a_host_call_runs_from_python_between_graph_segments(cp):
    """A host call (a collective, for example) is never captured into a graph: every replay calls it on the
    values the operations before it computed, and the operations after it read what it wrote."""
    from gradcore._capture import trace

    seen = []

    def negate_in_place(array):
        seen.append(cp.asnumpy(array).copy())
        array *= -1

    def f(x):
        y = (x * 2).sigmoid()
        trace.host_call(negate_in_place, "negate", y._data)
        return y + 1

    compiled = torch.compile(f)
    torch.manual_seed(0)
    for n in range(5):
        x = torch.randn(3, 4, device="cuda")
        result, counts = counted(cp, lambda: compiled(x))
        expected = 1 - 1 / (1 + np.exp(-2 * host(x)))  # float32 sigmoid: within float32's spacing near 1
        np.testing.assert_allclose(host(result), expected, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(seen[-1], 1 / (1 + np.exp(-2 * host(x))), rtol=1e-6, atol=1e-7)
        if n >= 3:
            assert counts["graph_launches"] == 2
    assert segments(compiled) == 2


def test_a_python_number_argument_reaches_the_graph_on_every_call(cp):
    """A Python number passed to the compiled function (a learning rate, different on every call) and the
    arithmetic on it run on the host before the launch; the operations that take it stay in the graph and read
    it from a device array refreshed before each launch, with the bits of the eager call (numpy casts a Python
    float to the float32 of the array it meets, and so does a float32 device array)."""
    torch.manual_seed(0)
    w = torch.randn(4, 3, device="cuda")

    def f(x, lr, step):
        correction = 1 - 0.9**step  # host arithmetic on the numbers
        return (x @ w).tanh() * (lr / correction) + lr

    compiled = torch.compile(f)
    rates = [0.1, 0.05, 0.3, 1e-3, 2.5, 0.7, 0.01, 1 / 3]
    for n, lr in enumerate(rates):
        x = torch.randn(5, 4, device="cuda")
        result, counts = counted(cp, lambda: compiled(x, lr, n + 1))
        expected = f(x, lr, n + 1)
        assert result.dtype == expected.dtype == torch.float32
        np.testing.assert_array_equal(host(result), host(expected))
        if n >= 2:  # the first two calls capture, the third builds the graph, later ones only launch it
            assert counts["graph_launches"] == 1
            assert "kernel_launches" not in counts
        if n >= 3:  # one by one: the copy of x in, of the numbers into their device array, of the result out
            assert counts["operations"] == 3
    assert segments(compiled) == 1
    assert compiled.stats["replays"] == len(rates) - 2
    assert compiled.cuda_graph_stats["graphs"] == 1
    # The replays did not keep the number of the capture: each call's result follows its own rate.
    x = torch.randn(5, 4, device="cuda")
    first, second = host(compiled(x, 0.5, 3)), host(compiled(x, 0.25, 3))
    np.testing.assert_array_equal(first, host(f(x, 0.5, 3)))
    np.testing.assert_array_equal(second, host(f(x, 0.25, 3)))
    assert not np.array_equal(first, second)
