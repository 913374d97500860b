"""``RMSprop``: gradients divided by a running root mean square, with optional momentum and centering."""

from __future__ import annotations

from typing import Any, Callable

from .. import creation
from .._dtypes import float32
from ..autograd.grad_mode import no_grad
from .optimizer import Optimizer, ParamsT, addcdiv_, addcmul_, lerp_, refuse_cuda_graph_capture
from .sgd import _check_unsupported

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """Implements the RMSprop algorithm.

    For each parameter ``p`` with gradient ``g``: ``v = alpha * v + (1 - alpha) * g * g``; the divisor is
    ``sqrt(v) + eps``, or, centered, ``sqrt(v - a * a) + eps`` with ``a`` the running mean of ``g`` (same
    ``alpha``). Without momentum ``p -= lr * g / divisor``; with it the buffer ``b = momentum * b + g / divisor``
    and ``p -= lr * b``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        _check_unsupported(foreach, differentiable, None)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _init_state(self, param, momentum: float, centered: bool) -> dict:
        state = self.state[param]
        if len(state) == 0:
            state["step"] = creation.tensor(0.0, dtype=float32)
            state["square_avg"] = creation.zeros_like(param)
            if momentum > 0:
                state["momentum_buffer"] = creation.zeros_like(param)
            if centered:
                state["grad_avg"] = creation.zeros_like(param)
        return state

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step to update the parameters."""
        loss = self._evaluate_closure(closure)
        refuse_cuda_graph_capture(self)
        with no_grad():
            for group in self.param_groups:
                lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
                weight_decay, momentum = group["weight_decay"], group["momentum"]
                centered, maximize = group["centered"], group["maximize"]
                for param in group["params"]:
                    if param.grad is None:
                        continue
                    grad = -param.grad if maximize else param.grad
                    state = self._init_state(param, momentum, centered)
                    state["step"] += 1
                    if weight_decay != 0:
                        grad = grad.add(param, alpha=weight_decay)

                    square_avg = addcmul_(state["square_avg"].mul_(alpha), grad, grad, value=1 - alpha)
                    if centered:
                        grad_avg = lerp_(state["grad_avg"], grad, 1 - alpha)
                        # The variance estimate: E[g^2] - E[g]^2.
                        average = addcmul_(square_avg.clone(), grad_avg, grad_avg, value=-1).sqrt_()
                    else:
                        average = square_avg.sqrt()
                    average.add_(eps)

                    if momentum > 0:
                        buffer = addcdiv_(state["momentum_buffer"].mul_(momentum), grad, average)
                        param.add_(buffer, alpha=-lr)
                    else:
                        addcdiv_(param, grad, average, value=-lr)
        return loss
