"""CUDA graphs captured by hand: the CuPy test double's stream capture, ``gradcore.cuda.CUDAGraph``, the
``gradcore.cuda.graph`` context and ``gradcore.cuda.make_graphed_callables``.

Every replay is compared with the same computation run eagerly on new inputs. The tests run on the CuPy test
double (no GPU), on a GPU under ``--device cuda``, and with gradcore's kernels emulated on the CPU: there the
launches of sigmoid, relu, clamp and the GEMM must be recorded by the capture, not run by it, and run (and
counted) at every replay.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest

import fake_cupy
import gradcore
import kernel_emulation
from gradcore import nn
from gradcore.backend import cuda as cuda_backend
from gradcore.backend import kernels


@pytest.fixture
def cuda(request):
    """The CUDA device the graphs run on: the GPU under ``--device cuda``, else the CuPy test double,
    installed for this test (under ``--device fake-cuda-kernels`` the session's kernel launcher stays)."""
    if request.config.getoption("--device") == "cuda":
        if not gradcore.cuda.is_available():
            pytest.skip(f"--device cuda: {cuda_backend.unavailable_reason()}")
        return cuda_backend._cupy
    return request.getfixturevalue("fake_cuda")


@pytest.fixture
def emulated_kernels(fake_cuda, monkeypatch):
    """The CuPy test double with gradcore's kernels emulated on the CPU, behind a fresh launcher whose
    ``counts`` hold this test's launches; every product runs on gradcore's GEMM."""
    compiler = kernel_emulation.compiler()
    if compiler is None:
        if os.environ.get("GRADCORE_REQUIRE_KERNEL_TOOLS") == "1":
            pytest.fail("no C++ compiler for the kernel emulation (GRADCORE_REQUIRE_KERNEL_TOOLS=1)")
        pytest.skip("no C++ compiler (g++ or c++, or $CXX) to build the CPU emulation of the CUDA kernels")
    libraries, _ = kernel_emulation.build_once(compiler)
    launcher = kernel_emulation.CountingLauncher(
        kernel_emulation.EmulatedLauncher(libraries, multiprocessors=2, record_launches=False), fake_cupy)
    monkeypatch.setattr(kernels, "GEMM_CROSSOVER_OVERRIDE", 2**62)
    with kernels.use_launcher_for(fake_cupy.ndarray, launcher):
        yield launcher


def host(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def capture_error(cupy):
    return cupy.cuda.runtime.CUDARuntimeError


# -- the test double's stream capture ------------------------------------------------------------------------

def test_the_double_replays_a_capture_with_new_values_in_the_static_inputs(fake_cuda):
    cp = fake_cuda
    rng = np.random.default_rng(0)
    x, w = cp.asarray(rng.standard_normal((4, 3))), cp.asarray(rng.standard_normal((3, 5)))
    out = cp.zeros((4, 5))
    rows = cp.asarray(np.array([2, 0, 2]))
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        assert stream.is_capturing() and cp.cuda.get_current_stream() is stream
        h = cp.tanh(x @ w)  # ufunc and matmul, fresh results
        scaled = cp.maximum(h * 2.0, 0.0).astype(np.float32)  # module function, astype
        total = scaled.sum(axis=0)  # reduction
        cp.multiply(h, 3.0, out=out)  # out=
        out[0] = -1.0  # __setitem__
        column = h.copy()[:, 1]  # copy, then a view
        gathered = h[rows]  # advanced indexing with a device index array
        graph = stream.end_capture()
    assert not stream.is_capturing()
    assert len(graph) >= 9
    # As on a GPU, the capture ran nothing: what was written keeps its values, fresh results hold garbage.
    np.testing.assert_array_equal(out.get(), np.zeros((4, 5)))
    assert np.isnan(h.get()).all()

    for _ in range(2):
        new_x, new_w = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
        x[...], w[...] = cp.asarray(new_x), cp.asarray(new_w)  # new values into the static inputs
        graph.launch()
        expected_h = np.tanh(new_x @ new_w)
        np.testing.assert_allclose(h.get(), expected_h)
        expected_scaled = np.maximum(expected_h * 2.0, 0.0).astype(np.float32)
        np.testing.assert_allclose(scaled.get(), expected_scaled)
        np.testing.assert_allclose(total.get(), expected_scaled.sum(axis=0), rtol=1e-6)
        expected_out = expected_h * 3.0
        expected_out[0] = -1.0
        np.testing.assert_allclose(out.get(), expected_out)
        np.testing.assert_allclose(column.get(), expected_h[:, 1])
        np.testing.assert_allclose(gathered.get(), expected_h[[2, 0, 2]])


def test_the_double_writes_a_replayed_result_into_the_array_of_the_capture(fake_cuda):
    cp = fake_cuda
    x = cp.asarray(np.arange(3.0))
    stream = cp.cuda.Stream()
    with stream:
        stream.begin_capture()
        y = x + 1.0
        graph = stream.end_capture()
    address = y.data.ptr
    x[...] = cp.asarray(np.array([10.0, 20.0, 30.0]))
    with stream:
        graph.launch()
    assert y.data.ptr == address
    np.testing.assert_array_equal(y.get(), [11.0, 21.0, 31.0])
    graph.launch(stream=cp.cuda.Stream.null)  # a graph replays on any stream
    np.testing.assert_array_equal(y.get(), [11.0, 21.0, 31.0])


def _host_reads(cp, x):
    return {
        "float": lambda: float(x.sum()),
        "bool": lambda: bool(x.sum() > 0),
        "item": lambda: x[0].item(),
        "get": lambda: x.get(),
        "asnumpy": lambda: cp.asnumpy(x),
        "asarray of numpy data": lambda: cp.asarray(np.ones(3)),
        "asarray of a Python number": lambda: cp.asarray(2.0),
        "host index array": lambda: x[np.array([0, 1])],
        "host value assigned": lambda: x.__setitem__(slice(None), np.zeros(3)),
        "stream synchronize": lambda: cp.cuda.get_current_stream().synchronize(),
        "device synchronize": lambda: cp.cuda.Device().synchronize(),
    }


@pytest.mark.parametrize("operation", list(_host_reads(fake_cupy, None)))
def test_the_double_refuses_during_capture_what_cuda_refuses(fake_cuda, operation):
    cp = fake_cuda
    x = cp.asarray(np.arange(3.0))
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        with pytest.raises(cp.cuda.runtime.CUDARuntimeError,
                           match="cudaErrorStreamCaptureUnsupported") as info:
            _host_reads(cp, x)[operation]()
        assert info.value.status == 900
        # As in CUDA, the error invalidates the capture.
        with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="cudaErrorStreamCaptureInvalidated"):
            stream.end_capture()
    # Outside a capture the same calls work.
    _host_reads(cp, x)[operation]()


def test_the_double_refuses_legacy_stream_work_and_capture_on_it(fake_cuda):
    cp = fake_cuda
    x = cp.asarray(np.arange(3.0))
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="cudaErrorStreamCaptureUnsupported"):
        cp.cuda.Stream.null.begin_capture()
    stream = cp.cuda.Stream(non_blocking=True)
    stream.begin_capture()  # capturing, but not current: the work below goes to the legacy stream
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="cudaErrorStreamCaptureImplicit"):
        x + 1.0
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="cudaErrorStreamCaptureInvalidated"):
        stream.end_capture()
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="cudaErrorIllegalState"):
        stream.end_capture()


def test_the_double_leaves_work_on_another_stream_out_of_the_capture(fake_cuda):
    cp = fake_cuda
    x = cp.asarray(np.arange(3.0))
    capturing, other = cp.cuda.Stream(), cp.cuda.Stream()
    with capturing:
        capturing.begin_capture()
        y = x * 2.0
        with other:
            z = x * 3.0
        graph = capturing.end_capture()
    x[...] = cp.asarray(np.ones(3))
    graph.launch()
    np.testing.assert_array_equal(y.get(), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(z.get(), [0.0, 3.0, 6.0])  # not recorded: not replayed


def test_emulated_kernel_launches_are_recorded_and_replayed(emulated_kernels):
    rng = np.random.default_rng(1)
    x = gradcore.tensor(rng.standard_normal((6, 8)), dtype=gradcore.float32, device="cuda")
    weight = gradcore.tensor(rng.standard_normal((5, 8)), dtype=gradcore.float32, device="cuda")
    bias = gradcore.tensor(rng.standard_normal(5), dtype=gradcore.float32, device="cuda")

    def block():
        z = nn.functional.linear(x, weight, bias)
        return z.sigmoid(), z.relu(), z.clamp(-0.5, 0.5)

    g = gradcore.cuda.CUDAGraph()
    with gradcore.cuda.graph(g):
        static = block()
    assert not emulated_kernels.counts  # the capture recorded the launches without running them
    block()
    eager = dict(emulated_kernels.counts)
    assert {"gemm", "sigmoid_forward", "clamp_forward"} <= set(eager)

    for _ in range(2):
        x.copy_(gradcore.tensor(rng.standard_normal((6, 8)), dtype=gradcore.float32, device="cuda"))
        g.replay()
        for replayed, expected in zip(static, block()):
            np.testing.assert_allclose(host(replayed), host(expected), rtol=1e-6, atol=1e-6)
    # Each replay launched the kernels of one eager call (and so did each of the three eager calls).
    for name, count in eager.items():
        assert emulated_kernels.counts[name] == 5 * count, name


# -- gradcore.cuda.CUDAGraph and gradcore.cuda.graph ---------------------------------------------------------

def test_graph_replays_a_block_on_new_data_in_its_static_input(cuda):
    rng = np.random.default_rng(2)
    static_input = gradcore.tensor(rng.standard_normal((3, 4)), device="cuda")

    def block(x):
        return (x * 2 + 1).sigmoid() * x.relu() + x.clamp(min=-0.25).sum(dim=0)

    g = gradcore.cuda.CUDAGraph()
    with gradcore.cuda.graph(g) as entered:
        static_output = block(static_input)
    assert entered is None  # as PyTorch's graph context
    for _ in range(3):
        data = rng.standard_normal((3, 4))
        static_input.copy_(gradcore.tensor(data, device="cuda"))
        g.replay()
        expected = block(gradcore.tensor(data))  # eagerly on the CPU
        np.testing.assert_allclose(host(static_output), host(expected), rtol=1e-12)


def test_capture_begin_and_end_by_hand_on_a_side_stream(cuda):
    x = gradcore.ones(4, device="cuda")
    side = gradcore.cuda.Stream()
    g = gradcore.cuda.CUDAGraph()
    with gradcore.cuda.stream(side):
        assert gradcore.cuda.current_stream() == side
        g.capture_begin()
        assert gradcore.cuda.is_current_stream_capturing()
        y = x * 3
        g.capture_end()
        assert not gradcore.cuda.is_current_stream_capturing()
    assert gradcore.cuda.current_stream() == gradcore.cuda.default_stream()
    x.fill_(2.0)
    g.replay()
    assert y.tolist() == [6.0, 6.0, 6.0, 6.0]
    g.reset()
    with pytest.raises(RuntimeError, match="replay without a preceding successful capture"):
        g.replay()


def test_graph_errors_are_pytorchs(cuda):
    g = gradcore.cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match="without a preceding successful capture"):
        g.replay()
    with pytest.raises(RuntimeError, match="must be captured on a non-default stream"):
        g.capture_begin()
    with pytest.raises(RuntimeError, match="capture_end without a preceding CUDAGraph::capture_begin"):
        g.capture_end()
    with gradcore.cuda.stream(gradcore.cuda.Stream()):
        g.capture_begin()
        with gradcore.cuda.stream(gradcore.cuda.Stream()):
            with pytest.raises(RuntimeError, match="Capture must end on the same stream it began on"):
                g.capture_end()
        g.capture_end()
    g = gradcore.cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match="Unknown capture error mode"):
        with gradcore.cuda.graph(g, capture_error_mode="loose"):
            pass
    x = gradcore.ones(2, device="cuda")
    with gradcore.cuda.graph(g):
        x.mul_(2)
    with pytest.raises(RuntimeError, match="already owns a captured graph"):
        with gradcore.cuda.graph(g):
            pass


def test_a_host_read_inside_a_capture_raises_the_readers_error(cuda):
    x = gradcore.ones(3, device="cuda")
    g = gradcore.cuda.CUDAGraph()
    with pytest.raises(capture_error(cuda), match="cudaErrorStreamCaptureUnsupported"):
        with gradcore.cuda.graph(g):
            y = x * 2
            if y.sum().item() > 0:  # data-dependent Python control flow cannot be captured
                y = y + 1
    with pytest.raises(RuntimeError, match="without a preceding successful capture"):
        g.replay()
    # The failed capture left nothing behind: the next one works.
    g = gradcore.cuda.CUDAGraph()
    with gradcore.cuda.graph(g):
        z = x + 1
    x.fill_(5.0)
    g.replay()
    assert z.tolist() == [6.0, 6.0, 6.0]


def test_graphs_share_a_memory_pool(cuda):
    x = gradcore.ones(2, device="cuda")
    first, second = gradcore.cuda.CUDAGraph(), gradcore.cuda.CUDAGraph()
    with gradcore.cuda.graph(first):
        y = x + 1
    with gradcore.cuda.graph(second, pool=first.pool()):
        z = y * 10
    assert second.pool() is first.pool()
    handle = gradcore.cuda.graph_pool_handle()
    third = gradcore.cuda.CUDAGraph()
    with gradcore.cuda.graph(third, pool=handle):
        w = z - 1
    assert third.pool() is handle
    x.fill_(2.0)
    for g in (first, second, third):
        g.replay()
    assert w.tolist() == [29.0, 29.0]


def test_debug_dump_writes_the_graph(cuda, tmp_path):
    g = gradcore.cuda.CUDAGraph()
    x = gradcore.ones(2, device="cuda")
    with gradcore.cuda.graph(g):
        x.mul_(2)
    with pytest.raises(RuntimeError, match="enable_debug_mode"):
        g.debug_dump(str(tmp_path / "graph.dot"))
    g.enable_debug_mode()
    g.debug_dump(str(tmp_path / "graph.dot"))
    assert (tmp_path / "graph.dot").read_text().lstrip().startswith("digraph")


def _seed_model(device: str) -> tuple:
    gradcore.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.Sigmoid(), nn.Linear(16, 4))
    return model.to(device)


def _batches(count: int, seed: int = 3) -> list:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((5, 8)).astype(np.float32), rng.standard_normal((5, 4)).astype(np.float32))
            for _ in range(count)]


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_a_whole_training_step_captured_by_hand_trains_as_eager(cuda, momentum):
    """PyTorch's whole-network capture: warm up on a side stream, capture forward, backward and step, then
    copy each batch into the static input and target and replay."""
    captured_model, eager_model = _seed_model("cuda"), _seed_model("cuda")
    loss_fn = nn.MSELoss()
    captured_opt = gradcore.optim.SGD(captured_model.parameters(), lr=0.1, momentum=momentum)
    eager_opt = gradcore.optim.SGD(eager_model.parameters(), lr=0.1, momentum=momentum)
    batches = _batches(8)

    def eager_step(model, optimizer, x, target):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), target)
        loss.backward()
        optimizer.step()
        return loss

    static_input = gradcore.tensor(batches[0][0], device="cuda")
    static_target = gradcore.tensor(batches[0][1], device="cuda")
    side = gradcore.cuda.Stream()
    side.wait_stream(gradcore.cuda.current_stream())
    with gradcore.cuda.stream(side):
        for _ in range(3):
            eager_step(captured_model, captured_opt, static_input, static_target)
    gradcore.cuda.current_stream().wait_stream(side)
    for _ in range(3):
        eager_step(eager_model, eager_opt, static_input, static_target)

    g = gradcore.cuda.CUDAGraph()
    captured_opt.zero_grad(set_to_none=True)
    with gradcore.cuda.graph(g):
        static_loss = loss_fn(captured_model(static_input), static_target)
        static_loss.backward()
        captured_opt.step()
    # As in PyTorch, the capture ran nothing: the parameters are those of the warm-up.
    for captured, eager in zip(captured_model.parameters(), eager_model.parameters()):
        np.testing.assert_array_equal(host(captured), host(eager))

    for x, target in batches:
        static_input.copy_(gradcore.tensor(x, device="cuda"))
        static_target.copy_(gradcore.tensor(target, device="cuda"))
        g.replay()
        eager_loss = eager_step(eager_model, eager_opt, gradcore.tensor(x, device="cuda"),
                                gradcore.tensor(target, device="cuda"))
        np.testing.assert_allclose(host(static_loss), host(eager_loss), rtol=1e-5)
    for captured, eager in zip(captured_model.parameters(), eager_model.parameters()):
        np.testing.assert_allclose(host(captured), host(eager), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(host(captured.grad), host(eager.grad), rtol=1e-5, atol=1e-6)


def test_a_captured_training_step_replays_its_kernel_launches(emulated_kernels):
    model = _seed_model("cuda")
    optimizer = gradcore.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.MSELoss()
    (x, target), *rest = _batches(3)
    static_input, static_target = gradcore.tensor(x, device="cuda"), gradcore.tensor(target, device="cuda")
    for _ in range(2):  # warm-up
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(static_input), static_target).backward()
        optimizer.step()
    reference = _seed_model("cpu")
    reference.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    reference_opt = gradcore.optim.SGD(reference.parameters(), lr=0.1)

    g = gradcore.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    before_capture = dict(emulated_kernels.counts)
    with gradcore.cuda.graph(g):
        static_loss = loss_fn(model(static_input), static_target)
        static_loss.backward()
        optimizer.step()
    assert dict(emulated_kernels.counts) == before_capture  # recorded, not run
    captured = None

    for x, target in [(x, target)] + rest:
        before = dict(emulated_kernels.counts)
        static_input.copy_(gradcore.tensor(x, device="cuda"))
        static_target.copy_(gradcore.tensor(target, device="cuda"))
        g.replay()
        launched = {name: count - before.get(name, 0) for name, count in emulated_kernels.counts.items()}
        assert launched["gemm"] > 0  # every product, forward and backward, on gradcore's GEMM
        assert captured is None or launched == captured  # each replay launches the same kernels
        captured = launched
        reference_opt.zero_grad()
        expected_loss = loss_fn(reference(gradcore.tensor(x)), gradcore.tensor(target))
        expected_loss.backward()
        reference_opt.step()
        np.testing.assert_allclose(host(static_loss), host(expected_loss), rtol=1e-5)
    for replayed, expected in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(host(replayed), host(expected), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("optimizer_class", ["Adam", "AdamW", "RMSprop"])
@pytest.mark.parametrize("capturable", [False, True])
def test_optimizers_that_count_steps_on_the_host_refuse_capture(cuda, optimizer_class, capturable):
    """Their step count lives on the host: a replay would not advance it (Adam's bias correction would
    freeze), so capturing their step raises, as PyTorch's does without capturable=True."""
    model = _seed_model("cuda")
    optimizer = getattr(gradcore.optim, optimizer_class)(model.parameters(), lr=0.01, capturable=capturable)
    x = gradcore.ones(5, 8, device="cuda")
    model(x).sum().backward()
    optimizer.step()  # outside a capture: fine
    g = gradcore.cuda.CUDAGraph()
    message = "capturable is False" if not capturable else "capturable=True is not supported"
    with pytest.raises(RuntimeError, match=f"CUDA graph capture of step\\(\\) for an instance of "
                                           f"{optimizer_class}.*{message}"):
        with gradcore.cuda.graph(g):
            model(x).sum().backward()
            optimizer.step()


# -- make_graphed_callables ----------------------------------------------------------------------------------

def test_make_graphed_callables_module_matches_eager(cuda):
    graphed_model, eager_model = _seed_model("cuda"), _seed_model("cuda")
    sample = gradcore.randn(5, 8, device="cuda", requires_grad=True)
    graphed_model = gradcore.cuda.make_graphed_callables(graphed_model, (sample,))
    for x, target in _batches(3, seed=5):
        outputs = []
        for model in (graphed_model, eager_model):
            model.zero_grad(set_to_none=True)
            inputs = gradcore.tensor(x, device="cuda", requires_grad=True)
            out = model(inputs)
            ((out - gradcore.tensor(target, device="cuda")) ** 2).sum().backward()
            outputs.append((out, inputs.grad))
        np.testing.assert_allclose(host(outputs[0][0]), host(outputs[1][0]), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(host(outputs[0][1]), host(outputs[1][1]), rtol=1e-5, atol=1e-6)
        for graphed, eager in zip(graphed_model.parameters(), eager_model.parameters()):
            np.testing.assert_allclose(host(graphed.grad), host(eager.grad), rtol=1e-5, atol=1e-6)
    # In the other training mode the module runs eagerly.
    graphed_model.eval()
    x = gradcore.tensor(_batches(1)[0][0], device="cuda")
    np.testing.assert_allclose(host(graphed_model(x)), host(eager_model(x)), rtol=1e-6)


def test_make_graphed_callables_functions_share_a_pool(cuda):
    weight = gradcore.randn(4, 4, device="cuda", requires_grad=True)

    def first(x):
        return (x @ weight).sigmoid()

    def second(h):
        return h.relu() * 2, h.sum(dim=1)

    a = gradcore.randn(3, 4, device="cuda", requires_grad=True)
    h = gradcore.randn(3, 4, device="cuda", requires_grad=True)
    graphed_first, graphed_second = gradcore.cuda.make_graphed_callables((first, second), ((a,), (h,)))
    x = gradcore.randn(3, 4, device="cuda", requires_grad=True)
    doubled, sums = graphed_second(graphed_first(x))
    (doubled.sum() + (sums * sums).sum()).backward()
    graphed_grads = host(x.grad)
    x.grad = None
    # Graphed functions do not see the weight as an input: compare the input's gradient with eager's.
    eager_doubled, eager_sums = second(first(x))
    (eager_doubled.sum() + (eager_sums * eager_sums).sum()).backward()
    np.testing.assert_allclose(host(doubled), host(eager_doubled), rtol=1e-6)
    np.testing.assert_allclose(graphed_grads, host(x.grad), rtol=1e-5, atol=1e-6)


def test_make_graphed_callables_rejects_what_pytorch_rejects(cuda):
    model = _seed_model("cuda")
    model.register_forward_hook(lambda *args: None)
    with pytest.raises(AssertionError, match="must not have hooks"):
        gradcore.cuda.make_graphed_callables(model, (gradcore.ones(5, 8, device="cuda"),))
    with pytest.raises(AssertionError, match="must contain only Tensors"):
        gradcore.cuda.make_graphed_callables(lambda x: x, (3.0,))


# -- without CUDA --------------------------------------------------------------------------------------------

def test_graphs_and_streams_need_cuda():
    if gradcore.cuda.is_available():
        pytest.skip("CUDA (or the test double of this session) is available")
    for call in (gradcore.cuda.CUDAGraph, gradcore.cuda.Stream, gradcore.cuda.current_stream,
                 gradcore.cuda.graph_pool_handle, gradcore.cuda.is_current_stream_capturing,
                 lambda: gradcore.cuda.graph(None)):
        with pytest.raises(RuntimeError, match="requires CUDA support"):
            call()
    with contextlib.suppress(RuntimeError), gradcore.cuda.stream(None):
        pass  # no stream: nothing to select, as in PyTorch
