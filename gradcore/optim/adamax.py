"""``Adamax``: Adam with the infinity norm of past gradients in place of their second moment."""

from __future__ import annotations

from typing import Any, Callable

from .. import creation
from .._dtypes import float32
from ..backend import array_module
from ..ops._util import quiet_float_errors
from .optimizer import Optimizer, ParamsT, check_betas_and_basics, lerp_array_, written
from .sgd import _check_unsupported

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """Implements the Adamax algorithm (a variant of Adam based on the infinity norm).

    For each parameter ``p`` with gradient ``g`` at step ``t``: ``g += weight_decay * p``,
    ``m = beta1 * m + (1 - beta1) * g``, ``u = max(beta2 * u, |g| + eps)`` and
    ``p -= lr / (1 - beta1**t) * m / u``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        check_betas_and_basics(lr, eps, weight_decay, betas)
        _check_unsupported(foreach, differentiable, None)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "capturable": capturable,
        }
        super().__init__(params, defaults)

    def _init_state(self, param) -> dict:
        state = self.state[param]
        if len(state) == 0:
            state["step"] = creation.tensor(0.0, dtype=float32)
            state["exp_avg"] = creation.zeros_like(param)
            state["exp_inf"] = creation.zeros_like(param)
        return state

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step to update the parameters."""
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay, maximize = group["weight_decay"], group["maximize"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                p = param._data
                xp = array_module(p)
                grad = -param.grad._data if maximize else param.grad._data
                state = self._init_state(param)
                step_t, exp_avg, exp_inf = state["step"], state["exp_avg"], state["exp_inf"]
                step_t._data += 1
                written(step_t)
                if weight_decay != 0:
                    grad = grad + p * weight_decay
                lerp_array_(exp_avg._data, grad, 1 - beta1)
                exp_inf._data *= beta2
                magnitude = xp.abs(grad)
                magnitude += eps
                xp.maximum(exp_inf._data, magnitude, out=exp_inf._data)
                clr = lr / (1 - beta1 ** step_t.item())
                with quiet_float_errors(p):
                    update = exp_avg._data * -clr
                    update /= exp_inf._data
                p += update
                written(param, exp_avg, exp_inf)
        return loss
