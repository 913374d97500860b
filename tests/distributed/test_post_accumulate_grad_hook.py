"""``Tensor.register_post_accumulate_grad_hook``, against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

import gradcore


def _run(lib, calls: list, *, twice: bool = False, with_grad_hook: bool = False, remove_after_first: bool = False):
    w = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
    b = lib.tensor([0.5], requires_grad=True)
    handle = w.register_post_accumulate_grad_hook(lambda t: calls.append(("w", t.grad.detach().clone().tolist())))
    b.register_post_accumulate_grad_hook(lambda t: calls.append(("b", t.grad.detach().clone().tolist())))
    if with_grad_hook:
        w.register_hook(lambda g: g * 3)
    for step in range(2 if twice else 1):
        ((w * w).sum() * b + b).sum().backward()
        if remove_after_first:
            handle.remove()
    return w, b


@pytest.mark.parametrize("options", [{}, {"twice": True}, {"with_grad_hook": True}, {"remove_after_first": True,
                                                                                       "twice": True}])
def test_hook_sees_accumulated_grad_as_pytorch(options: dict) -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = [], []
    _run(gradcore, ours, **options)
    _run(torch, theirs, **options)
    assert len(ours) == len(theirs)
    # The order between leaves follows each engine's scheduling; each leaf's sequence of calls must match.
    for name in ("w", "b"):
        mine = [grad for leaf, grad in ours if leaf == name]
        reference = [grad for leaf, grad in theirs if leaf == name]
        assert len(mine) == len(reference)
        for a, b in zip(mine, reference):
            np.testing.assert_allclose(a, b, rtol=1e-6)


def test_hook_gets_the_tensor_itself_and_not_autograd_grad() -> None:
    torch = pytest.importorskip("torch")
    for lib in (gradcore, torch):
        w = lib.ones(2, requires_grad=True)
        seen = []
        w.register_post_accumulate_grad_hook(seen.append)
        lib.autograd.grad((w * 2).sum(), w)  # no accumulation, no call
        assert seen == []
        (w * 2).sum().backward()
        assert len(seen) == 1 and seen[0] is w


def test_hook_errors_match_pytorch() -> None:
    torch = pytest.importorskip("torch")
    for lib in (gradcore, torch):
        with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require gradient"):
            lib.ones(2).register_post_accumulate_grad_hook(lambda t: None)
        non_leaf = lib.ones(2, requires_grad=True) * 2
        with pytest.raises(RuntimeError, match="post accumulate grad hooks cannot be registered on non-leaf"):
            non_leaf.register_post_accumulate_grad_hook(lambda t: None)


def test_hook_on_parameter() -> None:
    p = gradcore.nn.Parameter(gradcore.ones(3))
    seen = []
    p.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    (p * p).sum().backward()
    assert seen == [[2.0, 2.0, 2.0]]
