"""``Adam``: adaptive moment estimation, with optional AMSGrad and (decoupled) weight decay."""

from __future__ import annotations

from typing import Any, Callable

from .. import creation
from .._capture.trace import scalar_sqrt
from .._dtypes import float32
from ..backend import array_module
from ..ops._util import quiet_float_errors
from .optimizer import Optimizer, ParamsT, refuse_cuda_graph_capture, written, check_betas_and_basics
from .sgd import _check_unsupported

__all__ = ["Adam"]


class Adam(Optimizer):
    """Implements the Adam algorithm.

    For each parameter ``p`` with gradient ``g`` at step ``t``: ``m = beta1 * m + (1 - beta1) * g``,
    ``v = beta2 * v + (1 - beta2) * g * g`` (with AMSGrad the running maximum of ``v`` replaces it below),
    then ``p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``. Weight decay adds
    ``weight_decay * p`` to ``g``; with ``decoupled_weight_decay`` (AdamW) it scales ``p`` by
    ``1 - lr * weight_decay`` instead.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_betas_and_basics(lr, eps, weight_decay, betas)
        _check_unsupported(foreach, differentiable, fused)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _init_state(self, param, amsgrad: bool) -> dict:
        state = self.state[param]
        if len(state) == 0:
            # The step count is a float32 scalar tensor, as PyTorch keeps it, so state dicts look alike.
            state["step"] = creation.tensor(0.0, dtype=float32)
            state["exp_avg"] = creation.zeros_like(param)
            state["exp_avg_sq"] = creation.zeros_like(param)
            if amsgrad:
                state["max_exp_avg_sq"] = creation.zeros_like(param)
        return state

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step to update the parameters."""
        loss = self._evaluate_closure(closure)
        refuse_cuda_graph_capture(self)
        # On the arrays (see optimizer.written), in the order of operations of the tensor ops that spell the
        # update out: optimizer.lerp_, addcmul_ and addcdiv_.
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
            decoupled = group["decoupled_weight_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                p = param._data
                grad = -param.grad._data if maximize else param.grad._data
                state = self._init_state(param, amsgrad)
                exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
                step_t._data += 1
                written(step_t)
                step = step_t.item()

                if weight_decay != 0:
                    if decoupled:
                        p *= 1 - lr * weight_decay
                    else:
                        grad = grad + p * weight_decay

                # exp_avg moves a fraction 1 - beta1 of the way to grad (lerp_).
                m, v = exp_avg._data, exp_avg_sq._data
                weight = 1 - beta1
                difference = grad - m
                if abs(weight) < 0.5:
                    difference *= weight
                    m += difference
                else:
                    difference *= 1 - weight
                    m[...] = grad - difference
                v *= beta2
                squared = grad * (1 - beta2)
                squared *= grad
                v += squared

                bias_correction1 = 1 - beta1**step
                bias_correction2_sqrt = scalar_sqrt(1 - beta2**step)  # math.sqrt, followed by captures
                step_size = lr / bias_correction1
                if amsgrad:
                    max_exp_avg_sq = state["max_exp_avg_sq"]
                    xp = array_module(p)
                    xp.maximum(max_exp_avg_sq._data, v, out=max_exp_avg_sq._data)
                    written(max_exp_avg_sq)
                    second_moment = max_exp_avg_sq._data
                else:
                    second_moment = v
                with quiet_float_errors(p):
                    denominator = array_module(p).sqrt(second_moment) / bias_correction2_sqrt
                    denominator += eps
                    update = m / denominator
                update *= -step_size
                p += update
                written(param, exp_avg, exp_avg_sq)
        return loss
