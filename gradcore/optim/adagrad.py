"""``Adagrad``: per-element learning rates scaled by the accumulated squared gradients."""

from __future__ import annotations

from typing import Any, Callable

from .. import creation
from .._dtypes import float32
from ..backend import array_module
from ..ops._util import quiet_float_errors
from .optimizer import Optimizer, ParamsT, written
from .sgd import _check_unsupported

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Implements the Adagrad algorithm.

    For each parameter ``p`` with gradient ``g`` at step ``t``: ``g += weight_decay * p``,
    ``clr = lr / (1 + (t - 1) * lr_decay)``, ``sum += g * g`` and ``p -= clr * g / (sqrt(sum) + eps)``.
    The state (``step`` and ``sum``, which starts at ``initial_accumulator_value``) exists from construction,
    as in PyTorch.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        _check_unsupported(foreach, differentiable, fused)
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                self._init_state(param)

    def _init_state(self, param) -> dict:
        state = self.state[param]
        if len(state) == 0:
            state["step"] = creation.tensor(0.0, dtype=float32)
            state["sum"] = creation.full_like(param, self.defaults["initial_accumulator_value"])
        return state

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step to update the parameters."""
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
            weight_decay, maximize = group["weight_decay"], group["maximize"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                p = param._data
                grad = -param.grad._data if maximize else param.grad._data
                state = self._init_state(param)
                step_t, state_sum = state["step"], state["sum"]
                step_t._data += 1
                written(step_t)
                step = step_t.item()
                if weight_decay != 0:
                    grad = grad + p * weight_decay
                clr = lr / (1 + (step - 1) * lr_decay)
                total = state_sum._data
                total += grad * grad
                with quiet_float_errors(p):
                    std = array_module(p).sqrt(total)
                    std += eps
                    update = grad * -clr
                    update /= std
                p += update
                written(param, state_sum)
        return loss
