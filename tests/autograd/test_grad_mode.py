import gradcore as torch

import threading

import pytest


@pytest.fixture(autouse=True)
def grad_mode_restored():
    assert torch.is_grad_enabled()
    yield
    # A failing test must not leak a disabled grad mode into the next one.
    enabled = torch.is_grad_enabled()
    torch.set_grad_enabled(True)
    assert enabled


def leaf():
    return torch.tensor([1.0, 2.0], requires_grad=True)


def test_grad_enabled_by_default():
    assert torch.is_grad_enabled() is True


def test_no_grad_context_manager():
    x = leaf()
    with torch.no_grad():
        assert torch.is_grad_enabled() is False
        y = x * 2
        z = (x + 1).sum()
    assert torch.is_grad_enabled() is True
    assert not y.requires_grad
    assert y.grad_fn is None
    assert y.is_leaf
    assert not z.requires_grad
    assert z.grad_fn is None


def test_no_grad_result_cannot_be_backpropagated():
    x = leaf()
    with torch.no_grad():
        y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_no_grad_does_not_change_leaf_flags():
    x = leaf()
    with torch.no_grad():
        _ = x * 2
        assert x.requires_grad
    assert x.requires_grad
    assert x.grad is None


def test_no_grad_as_decorator():
    x = leaf()

    @torch.no_grad()
    def double(t):
        assert not torch.is_grad_enabled()
        return t * 2

    y = double(x)
    assert not y.requires_grad
    assert torch.is_grad_enabled()


def test_no_grad_as_bare_decorator():
    @torch.no_grad
    def probe():
        return torch.is_grad_enabled()

    assert probe() is False
    assert torch.is_grad_enabled()


def test_decorated_function_keeps_name_and_return_value():
    @torch.no_grad()
    def compute(a, b=3):
        """doc"""
        return a + b

    assert compute(1, b=4) == 5
    assert compute.__name__ == "compute"
    assert compute.__doc__ == "doc"


def test_no_grad_restored_after_exception():
    with pytest.raises(ValueError):
        with torch.no_grad():
            raise ValueError("boom")
    assert torch.is_grad_enabled()


def test_decorator_restores_after_exception():
    @torch.no_grad()
    def fail():
        raise KeyError("x")

    with pytest.raises(KeyError):
        fail()
    assert torch.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = leaf()
    with torch.no_grad():
        with torch.enable_grad():
            assert torch.is_grad_enabled()
            y = x * 2
        assert not torch.is_grad_enabled()
        z = x * 2
    assert y.requires_grad
    assert y.grad_fn is not None
    assert not z.requires_grad


def test_enable_grad_as_decorator():
    x = leaf()

    @torch.enable_grad()
    def double(t):
        return t * 2

    with torch.no_grad():
        y = double(x)
        assert not torch.is_grad_enabled()
    assert y.requires_grad
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_nested_no_grad():
    with torch.no_grad():
        with torch.no_grad():
            assert not torch.is_grad_enabled()
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()


def test_set_grad_enabled_as_function_call():
    x = leaf()
    torch.set_grad_enabled(False)
    try:
        assert torch.is_grad_enabled() is False
        y = x * 2
    finally:
        torch.set_grad_enabled(True)
    assert torch.is_grad_enabled() is True
    assert not y.requires_grad


@pytest.mark.parametrize("mode", [False, True])
def test_set_grad_enabled_context_manager(mode):
    x = leaf()
    with torch.set_grad_enabled(mode):
        assert torch.is_grad_enabled() is mode
        y = x * 2
    assert torch.is_grad_enabled()
    assert y.requires_grad is mode
    assert (y.grad_fn is not None) is mode


def test_set_grad_enabled_true_inside_no_grad():
    x = leaf()
    with torch.no_grad():
        with torch.set_grad_enabled(True):
            y = x * 2
        assert not torch.is_grad_enabled()
    assert y.requires_grad


def test_set_grad_enabled_as_decorator():
    @torch.set_grad_enabled(False)
    def probe():
        return torch.is_grad_enabled()

    assert probe() is False
    assert torch.is_grad_enabled()


def test_set_grad_enabled_context_restores_previous_state():
    with torch.no_grad():
        with torch.set_grad_enabled(True):
            assert torch.is_grad_enabled()
        assert not torch.is_grad_enabled()


def test_inference_mode_context_manager():
    x = leaf()
    with torch.inference_mode():
        assert not torch.is_grad_enabled()
        y = x * 2
    assert torch.is_grad_enabled()
    assert not y.requires_grad
    assert y.grad_fn is None
    assert y.tolist() == [2.0, 4.0]


def test_inference_mode_as_decorator():
    @torch.inference_mode()
    def probe(t):
        return torch.is_grad_enabled(), t * 3

    enabled, y = probe(leaf())
    assert enabled is False
    assert not y.requires_grad
    assert torch.is_grad_enabled()


def test_inference_mode_false_keeps_grad():
    x = leaf()
    with torch.inference_mode(False):
        assert torch.is_grad_enabled()
        y = x * 2
    assert y.requires_grad


def test_no_grad_in_another_thread_does_not_affect_this_thread():
    entered = threading.Event()
    release = threading.Event()
    seen_in_thread = []

    def worker():
        with torch.no_grad():
            seen_in_thread.append(torch.is_grad_enabled())
            entered.set()
            release.wait(timeout=10)

    t = threading.Thread(target=worker)
    t.start()
    try:
        assert entered.wait(timeout=10)
        assert torch.is_grad_enabled()
        x = leaf()
        y = x * 2
        assert y.requires_grad
    finally:
        release.set()
        t.join(timeout=10)
    assert seen_in_thread == [False]


def test_new_thread_starts_with_grad_enabled_even_under_no_grad():
    seen = []

    def worker():
        seen.append(torch.is_grad_enabled())
        x = leaf()
        seen.append((x * 2).requires_grad)

    with torch.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join(timeout=10)
    assert seen == [True, True]


def test_backward_works_inside_no_grad():
    # The graph was recorded with grad enabled; running backward later
    # under no_grad still computes (non-differentiable) gradients.
    x = leaf()
    y = (x * x).sum()
    with torch.no_grad():
        y.backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_manual_sgd_step_under_no_grad():
    w = torch.tensor([1.0, -1.0], requires_grad=True)
    loss = (w * w).sum()
    loss.backward()
    with torch.no_grad():
        w -= 0.25 * w.grad
    assert w.is_leaf
    assert w.requires_grad
    assert w.grad_fn is None
    assert w.tolist() == [0.5, -0.5]


def test_backward_in_several_threads_accumulates_every_gradient():
    import threading

    w = torch.ones(1000, requires_grad=True)

    def work():
        for _ in range(20):
            (w * 2).sum().backward()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert w.grad.tolist() == [160.0] * 1000
