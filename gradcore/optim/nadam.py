"""``NAdam``: Adam with Nesterov momentum and a momentum schedule."""

from __future__ import annotations

from typing import Any, Callable

from .. import creation
from .._dtypes import float32
from ..backend import array_module
from ..ops._util import quiet_float_errors
from .optimizer import Optimizer, ParamsT, check_betas_and_basics, lerp_array_, written
from .sgd import _check_unsupported

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """Implements the NAdam algorithm.

    At step ``t`` the momentum coefficient is ``mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))``;
    with ``m``, ``v`` as in Adam and ``P_t`` the product of the ``mu`` so far (kept as ``mu_product``),
    ``p -= lr * (1 - mu_t) / (1 - P_t) * g / d + lr * mu_{t+1} / (1 - P_t mu_{t+1}) * m / d``, where
    ``d = sqrt(v / (1 - beta2**t)) + eps``. Weight decay adds ``weight_decay * p`` to ``g``, or with
    ``decoupled_weight_decay`` scales ``p`` by ``1 - lr * weight_decay`` (NAdamW).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_betas_and_basics(lr, eps, weight_decay, betas)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        _check_unsupported(foreach, differentiable, None)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _init_state(self, param) -> dict:
        state = self.state[param]
        if len(state) == 0:
            state["step"] = creation.tensor(0.0, dtype=float32)
            # A float32 scalar, as PyTorch keeps it: the product is rounded to float32 at every step.
            state["mu_product"] = creation.tensor(1.0, dtype=float32)
            state["exp_avg"] = creation.zeros_like(param)
            state["exp_avg_sq"] = creation.zeros_like(param)
        return state

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step to update the parameters."""
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay, momentum_decay = group["weight_decay"], group["momentum_decay"]
            decoupled, maximize = group["decoupled_weight_decay"], group["maximize"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                p = param._data
                xp = array_module(p)
                grad = -param.grad._data if maximize else param.grad._data
                state = self._init_state(param)
                step_t, mu_product_t = state["step"], state["mu_product"]
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                step_t._data += 1
                step = step_t.item()
                bias_correction2 = 1 - beta2**step
                if weight_decay != 0:
                    if decoupled:
                        p *= 1 - lr * weight_decay
                    else:
                        grad = grad + p * weight_decay
                mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
                mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
                mu_product_t._data *= mu
                mu_product = mu_product_t.item()

                lerp_array_(exp_avg._data, grad, 1 - beta1)
                v = exp_avg_sq._data
                v *= beta2
                squared = grad * (1 - beta2)
                squared *= grad
                v += squared
                with quiet_float_errors(p):
                    denominator = xp.sqrt(v / bias_correction2)
                    denominator += eps
                    mu_product_next = mu_product * mu_next
                    gradient_step = grad * (-lr * (1.0 - mu) / (1.0 - mu_product))
                    gradient_step /= denominator
                    p += gradient_step
                    momentum_step = exp_avg._data * ((-lr * mu_next) / (1.0 - mu_product_next))
                    momentum_step /= denominator
                    p += momentum_step
                written(param, step_t, mu_product_t, exp_avg, exp_avg_sq)
        return loss
