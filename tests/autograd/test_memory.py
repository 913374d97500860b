"""Memory held by graphs, saved tensors and training loops, measured rather than assumed.

``tracemalloc`` sees host memory only: numpy arrays, which hold the CPU tensors and the CuPy test double's
"cuda" tensors under ``--device fake-cuda``. A real GPU's arrays live in CuPy's memory pool, which tracemalloc
cannot see; ``current_memory`` adds that pool's bytes in use (``gradcore.cuda.memory_allocated``, 0 without
CUDA and for the double), so that the byte counts hold under ``--device cuda`` too.
"""
import gradcore as torch

import gc
import tracemalloc
import weakref

import numpy as np
import pytest

MiB = 1024 * 1024


class Payload:
    """Marker object stored on a custom Function's ctx to observe when the node dies."""


class Double(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.payload = Payload()
        return x * 2

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out * 2


@pytest.fixture
def traced():
    """Traces host allocations for the test (see the module docstring for device memory)."""
    torch.cuda.memory_allocated()  # looks for CuPy and a GPU once, outside the trace
    gc.collect()
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def current_memory():
    """Bytes in use: host memory traced by tracemalloc plus the GPU memory pool's live bytes (0 without a GPU)."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0] + torch.cuda.memory_allocated()


def test_saved_intermediate_freed_after_backward_while_output_alive():
    x = torch.ones(3, requires_grad=True)
    h = x * 3
    out = (h * h).sum()  # h is saved for backward
    ref = weakref.ref(h)
    del h
    out.backward()
    gc.collect()
    assert ref() is None
    assert x.grad.tolist() == [18.0, 18.0, 18.0]


def test_intermediates_freed_after_backward_and_del():
    x = torch.ones(3, requires_grad=True)
    y = x * 2
    z = y.exp()
    loss = z.sum()
    refs = [weakref.ref(y), weakref.ref(z), weakref.ref(loss)]
    del y, z
    loss.backward()
    del loss
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


def test_grad_fn_freed_with_its_graph():
    x = torch.ones(3, requires_grad=True)
    y = Double.apply(x)
    node_ref = weakref.ref(y.grad_fn)
    payload_ref = weakref.ref(y.grad_fn.payload)
    loss = (y * 1).sum()
    del y
    loss.backward()
    del loss
    gc.collect()
    assert node_ref() is None
    assert payload_ref() is None
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_graph_freed_without_backward():
    x = torch.ones(3, requires_grad=True)
    y = Double.apply(x)
    node_ref = weakref.ref(y.grad_fn)
    loss = (y.exp() * y).sum()
    del y, loss
    gc.collect()
    assert node_ref() is None


def test_leaf_grad_does_not_keep_graph_alive():
    x = torch.ones(3, requires_grad=True)
    y = Double.apply(x)
    node_ref = weakref.ref(y.grad_fn)
    y.sum().backward()
    del y
    gc.collect()
    assert node_ref() is None
    assert x.grad.grad_fn is None


def test_saved_arrays_released_after_backward(traced):
    n = 1_000_000  # 8 MB per float64 array
    x = torch.ones(n, dtype=torch.float64, requires_grad=True)
    baseline = current_memory()
    h = x * 0.5
    e = h.exp()
    out = e.sum()
    del h, e
    out.backward()
    after = current_memory()
    # Only x.grad (8 MB) may remain; the saved exp result must be gone even
    # though `out` (and so the graph) is still alive.
    assert after - baseline < 12 * MiB
    np.testing.assert_allclose(x.grad.numpy()[:3], [0.5 * np.exp(0.5)] * 3)
    del out


def test_training_loop_memory_is_stable(traced):
    torch.manual_seed(0)
    inputs = torch.randn(32, 20)
    targets = torch.randn(32, 1)
    w1 = (torch.randn(20, 16) * 0.1).requires_grad_()
    b1 = torch.zeros(16, requires_grad=True)
    w2 = (torch.randn(16, 1) * 0.1).requires_grad_()
    b2 = torch.zeros(1, requires_grad=True)
    params = [w1, b1, w2, b2]

    def step():
        hidden = (inputs @ w1 + b1).tanh()
        pred = hidden @ w2 + b2
        loss = ((pred - targets) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= 0.05 * p.grad
                p.grad = None
        return loss.item()

    first_loss = step()
    for _ in range(199):
        step()
    memory_at_200 = current_memory()
    for _ in range(1800):
        last_loss = step()
    memory_at_2000 = current_memory()

    assert memory_at_2000 - memory_at_200 < 64 * 1024
    assert last_loss < first_loss
    for p in params:
        assert p.is_leaf
        assert p.grad_fn is None
