"""``Optimizer``: the base class of all optimizers (parameter groups, per-parameter state, state dicts)."""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from collections.abc import Iterable
from itertools import chain
from typing import Any, Callable, Union

from ..autograd.grad_mode import enable_grad
from ..tensor import Tensor

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marks an option that every parameter group must give (it has no default)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()

ParamsT = Union[Iterable[Tensor], Iterable[dict[str, Any]], Iterable[tuple]]


def _typename(obj: Any) -> str:
    if isinstance(obj, Tensor):
        return f"gradcore.{type(obj).__name__}"
    module = type(obj).__module__
    return type(obj).__qualname__ if module == "builtins" else f"{module}.{type(obj).__qualname__}"


class Optimizer:
    """Base class for all optimizers.

    Holds ``param_groups`` (a list of dicts: ``'params'`` plus the options of that group, missing options
    taken from ``defaults``) and ``state`` (a dict from each parameter to its own buffers, such as a
    momentum buffer). Subclasses implement ``step``; updates happen in place on the parameters' data.
    """

    # State entries that are buffers shaped like their parameter; ``load_state_dict`` checks their shapes so that
    # a mismatched checkpoint fails when it is loaded rather than deep inside a later ``step``. A subclass with
    # buffers under other names adds them here.
    _param_shaped_state: frozenset[str] = frozenset(
        {"momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "exp_inf", "square_avg", "grad_avg", "sum"})

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                f"but got {_typename(params)}"
            )
        self.state: dict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            lines.extend(f"    {key}: {group[key]}" for key in sorted(group) if key != "params")
        lines.append(")")
        return "\n".join(lines)

    # -- parameter groups -----------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group to the Optimizer's ``param_groups`` (options it lacks take the defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering of "
                "tensors in sets will change between runs. Please use a list instead."
            )
        else:
            params = list(params)

        # Parameters may come as (name, tensor) pairs, as from named_parameters(); the names are kept.
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names:
            if len(names) != len(params):
                raise ValueError(
                    "all optimizer params should be with/without names. Some param names are missing"
                )
            param_group["param_names"] = names
        param_group["params"] = params

        for param in params:
            if not isinstance(param, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but one of the params is {_typename(param)}"
                )
            if not (param.is_leaf or param.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    f"parameter group didn't specify a value of required optimization parameter {name}"
                )
            param_group.setdefault(name, default)

        if len({id(p) for p in params}) != len(params):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; in future, this will "
                "cause an error",
                stacklevel=3,
            )

        for group in self.param_groups:
            if ("param_names" in group) != ("param_names" in param_group):
                kind = "with names" if "param_names" in param_group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {kind} to the optimizer"
                )
        existing = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in existing for p in params):
            raise ValueError("some parameters appear in more than one parameter group")

        self.param_groups.append(param_group)

    # -- gradients and steps --------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized tensors (to None by default, or to zeros in place)."""
        for group in self.param_groups:
            for param in group["params"]:
                grad = param.grad
                if grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:
                    # A gradient built with create_graph=True is part of a graph; zeroing it must not be recorded.
                    if grad.grad_fn is not None:
                        grad.detach_()
                    else:
                        grad.requires_grad_(False)
                    grad.zero_()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step to update the parameters."""
        raise NotImplementedError

    @staticmethod
    def _evaluate_closure(closure: Callable[[], Any] | None) -> Any:
        # The closure recomputes the loss and its gradients, so it runs with recording on even though the
        # update itself runs under no_grad.
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # -- state dicts ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Return the state of the optimizer as a dict.

        ``{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]}``: parameters are replaced by
        their position counted across all groups, so the dict holds no references to the parameters themselves.
        """
        index_of: dict[int, int] = {}
        packed_groups = []
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            for param in group["params"]:
                index_of.setdefault(id(param), len(index_of))
            packed["params"] = [index_of[id(param)] for param in group["params"]]
            packed_groups.append(packed)
        packed_state = {
            (index_of[id(key)] if isinstance(key, Tensor) else key): value
            for key, value in self.state.items()
        }
        return {"state": packed_state, "param_groups": packed_groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load the optimizer state: the groups' options and each parameter's buffers (moved to its device)."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"load_state_dict(): expected state_dict to be a dict, but got {_typename(state_dict)}")
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of "
                "optimizer's group"
            )

        param_of = dict(
            zip(
                chain.from_iterable(g["params"] for g in saved_groups),
                chain.from_iterable(g["params"] for g in groups),
            )
        )
        state: dict[Any, dict[str, Any]] = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if key in param_of:
                param = param_of[key]
                self._check_loaded_state(key, param, value)
                state[param] = _cast_state(param, value)
            else:
                state[key] = value

        new_groups = []
        for group, saved in zip(groups, saved_groups):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
            new_groups.append(saved)
        self.state = state
        self.param_groups = new_groups

    def _check_loaded_state(self, index: Any, param: Tensor, entry: Any) -> None:
        """Raises when a loaded state entry cannot serve ``param``: an array that is not a Tensor, or a buffer
        whose shape is not the parameter's (which would otherwise surface as a broadcasting error in ``step``)."""
        if not isinstance(entry, dict):
            return
        for name, value in entry.items():
            if type(value).__module__.split(".")[0] in ("numpy", "cupy"):
                raise TypeError(f"loaded state dict has state {name!r} of parameter {index} as a "
                                f"{_typename(value)}; expected a Tensor")
            if name in self._param_shaped_state and isinstance(value, Tensor) and value.shape != param.shape:
                raise RuntimeError(f"loaded state dict has state {name!r} of shape {list(value.shape)} for "
                                   f"parameter {index} of shape {list(param.shape)}")


def _cast_state(param: Tensor, value: Any, key: Any = None) -> Any:
    """Returns a state entry moved to ``param``'s device (and, for floating buffers, its dtype).

    The step counter keeps its own dtype: it counts steps and is not a buffer shaped like the parameter.
    """
    if isinstance(value, Tensor):
        if key == "step":
            return value
        if param.is_floating_point() and value.is_floating_point():
            return value.to(dtype=param.dtype, device=param.device)
        return value.to(device=param.device)
    if isinstance(value, dict):
        return {k: _cast_state(param, v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_state(param, v) for v in value)
    return value


# -- arithmetic shared by the optimizers ------------------------------------------------------------------
# SGD and Adam update the parameters' and their state's arrays directly: a step records nothing, and the
# same arithmetic through tensor ops would only add each op's bookkeeping. ``written`` then does what an
# in-place op does for autograd.


def refuse_cuda_graph_capture(optimizer: Optimizer) -> None:
    """Raises RuntimeError when a CUDA graph capture is underway on the current stream, as PyTorch does for an
    optimizer whose step keeps values on the host (its step count): a replay would not advance them."""
    from .. import cuda

    if not (cuda.is_available() and cuda.is_current_stream_capturing()):
        return
    name = type(optimizer).__name__
    if not all(group.get("capturable", False) for group in optimizer.param_groups):
        raise RuntimeError(f"Attempting CUDA graph capture of step() for an instance of {name} but "
                           "param_groups' capturable is False.")
    raise RuntimeError(f"Attempting CUDA graph capture of step() for an instance of {name}: capturable=True is "
                       "not supported by gradcore, whose step reads its step count on the host")


def written(*tensors: Tensor) -> None:
    """Marks tensors whose arrays a step updated directly as changed in place (bumps their version), so that a
    backward through a graph that saved one of them before the step refuses to run, as after an in-place op."""
    for t in tensors:
        t._version_counter.value += 1


# The tensor class has no fused addcmul_/addcdiv_/lerp_, so these spell them out in the order of operations
# of their definitions; they run under no_grad inside step().


def addcmul_(target: Tensor, tensor1: Tensor, tensor2: Tensor, value: float = 1.0) -> Tensor:
    """In place ``target += value * tensor1 * tensor2``."""
    return target.add_(tensor1.mul(value).mul_(tensor2))


def addcdiv_(target: Tensor, tensor1: Tensor, tensor2: Tensor, value: float = 1.0) -> Tensor:
    """In place ``target += value * tensor1 / tensor2``."""
    return target.add_(tensor1.div(tensor2).mul_(value))


def lerp_(target: Tensor, end: Tensor, weight: float) -> Tensor:
    """In place ``target += weight * (end - target)``.

    For weights of at least one half the value is computed from ``end`` instead, which is exact at
    ``weight == 1`` and loses less precision near it.
    """
    difference = end - target
    if abs(weight) < 0.5:
        return target.add_(difference.mul_(weight))
    return target.copy_(end - difference.mul_(1 - weight))


def lerp_array_(target, end, weight: float) -> None:
    """``lerp_`` on arrays: in place ``target += weight * (end - target)``, computed as PyTorch's kernel does."""
    difference = end - target
    if abs(weight) < 0.5:
        difference *= weight
        target += difference
    else:
        difference *= 1 - weight
        target[...] = end - difference


def check_betas_and_basics(lr: float, eps: float, weight_decay: float, betas: tuple | None = None) -> None:
    """Raises PyTorch's ValueError for a negative learning rate, epsilon or weight decay, or a beta outside [0, 1)."""
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if betas is not None:
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
