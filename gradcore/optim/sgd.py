"""``SGD``: stochastic gradient descent, with optional momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from typing import Any, Callable

from ..tensor import make_tensor
from .optimizer import Optimizer, ParamsT, written

__all__ = ["SGD"]


def _check_unsupported(foreach: bool | None, differentiable: bool, fused: bool | None) -> None:
    # One implementation serves every case; foreach=None/False and fused=None/False ask for nothing else.
    if differentiable:
        raise NotImplementedError("gradcore optimizers do not support differentiable=True")
    if fused:
        raise NotImplementedError("gradcore optimizers have no fused implementation (fused=True)")


class SGD(Optimizer):
    """Implements stochastic gradient descent (optionally with momentum).

    For each parameter ``p`` with gradient ``g``: ``g += weight_decay * p``; with momentum, the buffer
    ``b`` starts as ``g`` and then becomes ``momentum * b + (1 - dampening) * g``, and ``g`` becomes
    ``g + momentum * b`` (Nesterov) or ``b``; finally ``p -= lr * g`` (``+=`` with ``maximize``).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        _check_unsupported(foreach, differentiable, fused)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step to update the parameters."""
        loss = self._evaluate_closure(closure)
        # On the arrays (see optimizer.written), in the order of operations of the tensor ops
        # ``param.add_(grad, alpha=-lr)`` and friends.
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                p = param._data
                grad = -param.grad._data if maximize else param.grad._data
                if weight_decay != 0:
                    grad = grad + p * weight_decay
                if momentum != 0:
                    state = self.state[param]
                    buffer = state.get("momentum_buffer")
                    if buffer is None:
                        # The first step has no history: the buffer starts as the gradient itself.
                        buffer = state["momentum_buffer"] = make_tensor(grad.copy())
                    else:
                        buffer._data *= momentum
                        buffer._data += grad if dampening == 0 else grad * (1 - dampening)
                        written(buffer)
                    grad = grad + buffer._data * momentum if nesterov else buffer._data
                p += grad * -lr
                written(param)
        return loss
