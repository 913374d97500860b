"""``RAdam``: Adam with the variance of its adaptive learning rate rectified."""

from __future__ import annotations

import math
from typing import Any, Callable

from .. import creation
from .._dtypes import float32
from ..backend import array_module
from ..ops._util import quiet_float_errors
from .optimizer import Optimizer, ParamsT, check_betas_and_basics, lerp_array_, written
from .sgd import _check_unsupported

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """Implements the RAdam algorithm.

    With ``m``, ``v`` as in Adam, ``rho_inf = 2 / (1 - beta2) - 1`` and
    ``rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)``: while ``rho_t <= 5`` the step is plain momentum,
    ``p -= lr * m / (1 - beta1**t)``; afterwards it is scaled by the adaptive rate
    ``sqrt(1 - beta2**t) / (sqrt(v) + eps)`` and the rectification
    ``sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_betas_and_basics(lr, eps, weight_decay, betas)
        _check_unsupported(foreach, differentiable, None)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "decoupled_weight_decay": decoupled_weight_decay,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _init_state(self, param) -> dict:
        state = self.state[param]
        if len(state) == 0:
            state["step"] = creation.tensor(0.0, dtype=float32)
            state["exp_avg"] = creation.zeros_like(param)
            state["exp_avg_sq"] = creation.zeros_like(param)
        return state

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step to update the parameters."""
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay, decoupled, maximize = group["weight_decay"], group["decoupled_weight_decay"], \
                group["maximize"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                p = param._data
                xp = array_module(p)
                grad = -param.grad._data if maximize else param.grad._data
                state = self._init_state(param)
                step_t, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
                step_t._data += 1
                step = step_t.item()
                if weight_decay != 0:
                    if decoupled:
                        p *= 1 - lr * weight_decay
                    else:
                        grad = grad + p * weight_decay
                lerp_array_(exp_avg._data, grad, 1 - beta1)
                v = exp_avg_sq._data
                v *= beta2
                squared = grad * (1 - beta2)
                squared *= grad
                v += squared

                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                corrected = exp_avg._data / bias_correction1
                rho_inf = 2 / (1 - beta2) - 1
                rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
                update = corrected * lr
                if rho_t > 5.0:
                    rectification = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                                              / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                    with quiet_float_errors(p):
                        root = xp.sqrt(v)
                        root += eps
                        adaptive = (bias_correction2**0.5) / root
                        update *= adaptive
                        update *= rectification
                p -= update
                written(param, step_t, exp_avg, exp_avg_sq)
        return loss
