"""Automatic differentiation: ``backward``, ``grad``, ``Function``, grad modes and checking tools."""
from __future__ import annotations

from .anomaly_mode import detect_anomaly, set_detect_anomaly, is_anomaly_enabled
from .dot import graph_to_dot, render_graph
from .function import Function, FunctionCtx, once_differentiable
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
                        set_grad_enabled)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = ["backward", "grad", "Function", "FunctionCtx", "once_differentiable", "no_grad", "enable_grad",
           "set_grad_enabled", "is_grad_enabled", "inference_mode", "is_inference_mode_enabled", "gradcheck",
           "gradgradcheck", "GradcheckError", "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled", "Variable",
           "functional", "graph_to_dot", "render_graph"]


def _as_tuple(x) -> tuple:
    if x is None:
        return (None,)
    if isinstance(x, (list, tuple)):
        return tuple(x)
    return (x,)


def _root_grads(outputs: tuple, grad_outputs: tuple, create_graph: bool) -> list:
    """Checks the gradients given for ``outputs`` (or makes ones for scalars) as PyTorch does."""
    from ..tensor import Tensor, make_tensor
    from ..backend import array_module

    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad can be implicitly created only for scalar outputs (got {len(grad_outputs)} "
                           f"gradients for {len(outputs)} outputs)")
    grads = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not isinstance(out, Tensor):
            raise TypeError(f"outputs must be Tensors, got {type(out).__name__} at position {i}")
        if g is None:
            if out.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            if not out.dtype.is_floating_point:
                raise RuntimeError(f"grad can be implicitly created only for real scalar outputs but got {out.dtype}")
            g = make_tensor(array_module(out._data).ones(out.shape, dtype=out._data.dtype))
        else:
            if not isinstance(g, Tensor):
                raise TypeError(f"gradient must be a Tensor or None, got {type(g).__name__}")
            if g.shape != out.shape:
                raise RuntimeError(
                    f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape} and output[{i}] has a shape "
                    f"of {out.shape}."
                )
            if g._data.__class__ is not out._data.__class__ or g.device != out.device:
                raise RuntimeError(
                    f"invalid gradient at index {i} - expected device {out.device} but got {g.device}"
                )
            if g.dtype is not out.dtype:
                g = g.to(out.dtype)
            if not create_graph:
                g = g.detach()
        grads.append(g)
    return grads


def _check_requires_grad(outputs: tuple) -> None:
    for i, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph: bool = False, grad_variables=None,
             inputs=None) -> None:
    """Computes the sum of gradients of ``tensors`` with respect to the graph's leaves, accumulated into ``.grad``."""
    from .engine import run_backward

    if grad_variables is not None:
        grad_tensors = grad_variables
    outputs = _as_tuple(tensors)
    grads = _as_tuple(grad_tensors) if grad_tensors is not None else (None,) * len(outputs)
    if retain_graph is None:
        retain_graph = create_graph
    _check_requires_grad(outputs)
    root_grads = _root_grads(outputs, grads, create_graph)
    if inputs is not None:
        input_list = _as_tuple(inputs)
        if not input_list:
            raise RuntimeError("'inputs' argument to backward() cannot be empty.")
        captured = run_backward(outputs, root_grads, retain_graph, create_graph, inputs=input_list, accumulate=True)
        # Leaves accumulated inside the engine, and so did non-leaf inputs that retain their gradient (through
        # retain_grad's hook); the other non-leaf inputs get theirs here.
        for t, g in zip(input_list, captured):
            if g is not None and t._grad_fn is not None and not t.retains_grad:
                t.grad = g if t._grad is None else t._grad + g
        return
    run_backward(outputs, root_grads, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         only_inputs: bool = True, allow_unused=None, is_grads_batched: bool = False,
         materialize_grads: bool = False) -> tuple:
    """Returns the gradients of ``outputs`` with respect to ``inputs`` (without touching any ``.grad``)."""
    from ..tensor import Tensor
    from .engine import run_backward

    if is_grads_batched:
        raise NotImplementedError("is_grads_batched=True is not supported by gradcore")
    if allow_unused is None:
        allow_unused = materialize_grads
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True, but got: allow_unused=False.")
    outputs_t = _as_tuple(outputs)
    inputs_t = _as_tuple(inputs)
    for i, t in enumerate(inputs_t):
        if not isinstance(t, Tensor):
            raise TypeError(f"inputs must be Tensors, got {type(t).__name__} at position {i}")
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    grads = _as_tuple(grad_outputs) if grad_outputs is not None else (None,) * len(outputs_t)
    if retain_graph is None:
        retain_graph = create_graph
    _check_requires_grad(outputs_t)
    root_grads = _root_grads(outputs_t, grads, create_graph)
    captured = run_backward(outputs_t, root_grads, retain_graph, create_graph, inputs=inputs_t, accumulate=False)
    result = []
    for i, (t, g) in enumerate(zip(inputs_t, captured)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"The differentiated Tensor at index {i} appears to not have been used in the graph. "
                    "Set allow_unused=True if this is the desired behavior."
                )
            if materialize_grads:
                from ..creation import zeros_like

                g = zeros_like(t)
        elif not create_graph:
            g = g.detach()
        result.append(g)
    return tuple(result)



class _VariableMeta(type):
    def __instancecheck__(cls, instance) -> bool:
        from ..tensor import Tensor

        return isinstance(instance, Tensor)


class Variable(metaclass=_VariableMeta):
    """The pre-0.4 wrapper, kept for old programs: ``Variable(t)`` returns a tensor sharing ``t``'s data.

    The result is a new leaf (detached from ``t``'s history) that requires grad when ``requires_grad`` says
    so, and every tensor is an instance of ``Variable``, as in PyTorch.
    """

    def __new__(cls, data=None, requires_grad: bool = False, volatile: bool = False):
        from ..creation import tensor as _tensor
        from ..tensor import Tensor

        if data is None:
            data = _tensor([])
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        return data.detach().requires_grad_(requires_grad)


from . import functional  # noqa: E402  (it uses grad and backward, defined above)
