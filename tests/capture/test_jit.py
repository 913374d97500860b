"""gradcore.jit: seed 000's static-graph snippet, script and trace on the capture machinery."""
import warnings

import numpy as np
import pytest

import gradcore as torch

N, D_in, H, D_out = 64, 1000, 100, 10


def model(x, y, w1, w2a, w2b, prev_loss):
    w2 = w2a if prev_loss < 5.0 else w2b
    y_pred = x.mm(w1).clamp(min=0).mm(w2)
    loss = (y_pred - y).pow(2).sum()
    return loss


def annotated_model(x, y, w1, w2a, w2b, prev_loss: float):
    """The seed's model with the annotation TorchScript needs to take prev_loss as a Python float."""
    w2 = w2a if prev_loss < 5.0 else w2b
    y_pred = x.mm(w1).clamp(min=0).mm(w2)
    loss = (y_pred - y).pow(2).sum()
    return loss


def seed_data(lib, device=None):
    """The seed's data; ``device="cpu"`` where it is compared with PyTorch's (whose CPU draws gradcore repeats)."""
    lib.manual_seed(0)
    x = lib.randn(N, D_in, device=device)
    y = lib.randn(N, D_out, device=device)
    w1 = lib.randn(D_in, H, requires_grad=True, device=device)
    w2a = lib.randn(H, D_out, requires_grad=True, device=device)
    w2b = lib.randn(H, D_out, requires_grad=True, device=device)
    return x, y, w1, w2a, w2b


def run_seed_snippet_as_written(lib):
    """Seed 000's loop as the post prints it; returns what it printed and the exception that stopped it."""
    x, y, w1, w2a, w2b = seed_data(lib, device="cpu")
    graph = lib.jit.script(model)
    prev_loss = 5.0
    learning_rate = 1e-6
    printed = []
    try:
        for t in range(500):
            loss = graph(x, y, w1, w2a, w2b, prev_loss)
            prev_loss = loss.item()
            printed.append(prev_loss)
            loss.backward()
            with lib.no_grad():
                w1 -= learning_rate * w1.grad
                w2a -= learning_rate * w2a.grad
                w2b -= learning_rate * w2b.grad
                w1.grad.zero_()
                w2a.grad.zero_()
                w2b.grad.zero_()
    except Exception as exc:  # noqa: BLE001 - the snippet's own failure is what is compared
        return printed, exc
    return printed, None


def test_seed_static_graph_snippet_fails_as_in_pytorch():
    """As written, PyTorch's script infers prev_loss (not annotated) to be a Tensor and refuses the float 5.0 at
    the first call, before anything is printed; gradcore's script raises the same error."""
    printed, error = run_seed_snippet_as_written(torch)
    assert printed == [] and isinstance(error, RuntimeError)
    assert str(error).startswith("model() Expected a value of type 'Tensor (inferred)' for argument 'prev_loss' "
                                 "but instead found type 'float'.")
    torch_lib = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch_printed, torch_error = run_seed_snippet_as_written(torch_lib)
    assert torch_printed == printed
    assert type(error) is type(torch_error) and str(error) == str(torch_error)


def test_seed_snippet_with_the_annotation_fails_where_pytorch_does():
    """With ``prev_loss: float`` the loop runs; prev_loss starts at 5.0, so the first step uses w2b, w2a.grad is
    None and the update of w2a fails, in both libraries, after the same printed loss."""
    global model
    seed_model = model
    model = annotated_model
    try:
        printed, error = run_seed_snippet_as_written(torch)
        torch_lib = pytest.importorskip("torch")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch_printed, torch_error = run_seed_snippet_as_written(torch_lib)
    finally:
        model = seed_model
    assert len(printed) == 1 and isinstance(error, TypeError) and "NoneType" in str(error)
    assert type(error) is type(torch_error) and str(error) == str(torch_error)
    assert printed == pytest.approx(torch_printed, rel=1e-5)


def test_script_checks_argument_types_as_pytorch_does():
    def f(x, k: float, n: int):
        return x * k * n

    scripted = torch.jit.script(f)
    assert scripted(torch.ones(1), 2, 3).cpu().tolist() == [6.0]
    with pytest.raises(RuntimeError, match="Expected a value of type 'int' for argument 'n' but instead found type "
                                           "'float'"):
        scripted(torch.ones(1), 2.0, 3.0)
    with pytest.raises(RuntimeError, match="missing value for argument 'n'"):
        scripted(torch.ones(1), 2.0)


def run_skipping_none(script: bool, steps: int = 500):
    x, y, w1, w2a, w2b = seed_data(torch)
    graph = torch.jit.script(annotated_model) if script else annotated_model
    prev_loss = 5.0
    losses = []
    for _ in range(steps):
        loss = graph(x, y, w1, w2a, w2b, prev_loss)
        prev_loss = loss.item()
        losses.append(prev_loss)
        loss.backward()
        with torch.no_grad():
            for w in (w1, w2a, w2b):
                if w.grad is not None:
                    w -= 1e-6 * w.grad
                    w.grad.zero_()
    return losses, (w1, w2a, w2b), graph


def test_seed_static_graph_skipping_none_gradients_equals_eager_over_500_steps():
    eager_losses, eager_weights, _ = run_skipping_none(False)
    losses, weights, graph = run_skipping_none(True)
    assert losses == eager_losses
    assert all(np.array_equal(a.detach().cpu().numpy(), b.detach().cpu().numpy())
               for a, b in zip(eager_weights, weights))
    # The branch switches when prev_loss crosses 5.0, both ways; each branch is one capture, replayed after.
    below = [v < 5.0 for v in losses]
    assert any(below) and not all(below)
    switches = sum(a != b for a, b in zip(below, below[1:]))
    assert switches >= 2
    assert graph.stats == {"captures": 4, "replays": 496, "eager": 0}
    assert "guard $s0 < 5.0 is False" in graph.graph and "guard $s0 < 5.0 is True" in graph.graph
    assert "def annotated_model" in graph.code


def test_trace_captures_from_the_example_inputs():
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)

    def f(x):
        return (x @ w).relu().sum()

    traced = torch.jit.trace(f, (torch.ones(1, 2),))
    assert traced.stats["captures"] == 1
    traced(torch.tensor([[2.0, 1.0]]))  # captured again, to verify the trace
    out = traced(torch.tensor([[1.0, 0.5]]))  # x @ w = [[2.5, 4.0]]: relu passes both
    assert traced.stats["replays"] == 1 and out.item() == 6.5
    out.backward()
    assert w.grad.cpu().tolist() == [[1.0, 1.0], [0.5, 0.5]]  # x.T @ ones


def test_trace_warns_when_the_call_decides_on_a_value():
    def f(x):
        return x * 2 if x.sum() > 0 else x * 3

    with pytest.warns(torch.jit.TracerWarning):
        traced = torch.jit.trace(f, torch.ones(2))
    assert traced(-torch.ones(2)).cpu().tolist() == [-3.0, -3.0]  # never the traced branch where it is wrong


def test_script_module_and_helpers():
    lin = torch.nn.Linear(3, 2)
    scripted = torch.jit.script(lin)
    x = torch.ones(4, 3)
    assert torch.equal(scripted(x), lin(x)) and torch.equal(scripted(x), lin(x))
    assert not torch.jit.is_scripting() and not torch.jit.is_tracing()
    seen = []
    traced = torch.jit.trace(lambda t: seen.append(torch.jit.is_tracing()) or t + 1, torch.ones(1))
    assert seen == [True]
    assert torch.jit.ignore(model) is model
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        traced(torch.ones(1))
