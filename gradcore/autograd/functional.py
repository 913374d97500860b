"""``gradcore.autograd.functional``: Jacobians, Hessians and their products with vectors, as in PyTorch.

Every function takes a Python function ``func`` of one tensor or a tuple of tensors, evaluates it on copies of
``inputs`` that require grad, and differentiates it with ``autograd.grad``. The results have the structure
PyTorch gives them: a tensor where ``inputs`` (or the function's output) is one tensor, a tuple where it is a
tuple. Without ``create_graph`` the results carry no history; with it, they can be differentiated again.

``vectorize=True`` is accepted and computes the same numbers as ``vectorize=False``: gradcore has no batched
gradient (``vmap``), so both run one backward pass per output element (per input element in forward mode).
"""
from __future__ import annotations

from typing import Callable

from . import grad as _grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]


def _as_tuple(value, arg_name: str, fn_name: str) -> tuple[bool, tuple]:
    """Returns (was_tuple, value as a tuple of tensors), with PyTorch's TypeError for anything else."""
    from ..tensor import Tensor

    is_tuple = isinstance(value, (tuple, list))
    values = tuple(value) if is_tuple else (value,)
    for i, item in enumerate(values):
        if not isinstance(item, Tensor):
            if is_tuple:
                raise TypeError(f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of Tensors "
                                f"but the value at index {i} has type {type(item)}.")
            raise TypeError(f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of Tensors but "
                            f"the given {arg_name} has type {type(item)}.")
    return is_tuple, values


def _unpack(values: tuple, was_tuple: bool):
    return values if was_tuple else values[0]


def _prepare_inputs(inputs: tuple, create_graph: bool) -> tuple:
    """Inputs to differentiate with respect to: with ``create_graph`` they stay linked to the caller's graph."""
    prepared = []
    for inp in inputs:
        if create_graph and inp.requires_grad:
            prepared.append(inp.view_as(inp))
        else:
            prepared.append(inp.detach().requires_grad_(True))
    return tuple(prepared)


def _finish(values: tuple, create_graph: bool) -> tuple:
    """The results handed back: detached unless the caller asked for a graph."""
    if create_graph:
        return values
    return tuple(None if v is None else v.detach() for v in values)


def _check_outputs(outputs, fn_name: str, strict: bool = False) -> tuple[bool, tuple]:
    """The outputs as a tuple; in strict mode each must require grad, as PyTorch checks first."""
    result = _as_tuple(outputs, "outputs of the user-provided function", fn_name)
    if strict:
        for i, output in enumerate(result[1]):
            if not output.requires_grad:
                raise RuntimeError(f"Output {i} of the user-provided function does not require gradients. The "
                                   "outputs must be computed in a differentiable manner from the input when running "
                                   "in strict mode.")
    return result


def _gradients(outputs: tuple, inputs: tuple, grad_outputs: tuple, create_graph: bool, strict: bool,
               fn_name: str, zeros_for_unused: bool = True, retain_graph: bool = True) -> tuple:
    """``autograd.grad`` of ``outputs`` weighted by ``grad_outputs``, zeros (or strict's error) for unused inputs."""
    from ..creation import zeros_like

    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if pairs:
        grads = _grad([o for o, _ in pairs], inputs, [g for _, g in pairs], retain_graph=retain_graph,
                      create_graph=create_graph, allow_unused=True)
    else:
        grads = (None,) * len(inputs)
    result = []
    for i, (g, inp) in enumerate(zip(grads, inputs)):
        if g is None:
            if strict:
                raise RuntimeError(f"The output of the user-provided function is independent of input {i}. "
                                   "This is not allowed in strict mode.")
            g = zeros_like(inp) if zeros_for_unused else None
        elif strict and create_graph and not g.requires_grad:
            raise RuntimeError("The jacobian of the user-provided function is independent of input "
                               f"{i}. This is not allowed in strict mode when create_graph=True.")
        result.append(g)
    return tuple(result)


def _check_v(v, reference: tuple, fn_name: str, what: str) -> tuple:
    """Checks that ``v`` matches ``reference`` (the outputs for vjp, the inputs for jvp) in number and shapes."""
    _, vs = _as_tuple(v, "v", fn_name)
    if len(vs) != len(reference):
        raise RuntimeError(f"v is a tuple of invalid length: should be {len(reference)} but got {len(vs)}.")
    for i, (vi, ref) in enumerate(zip(vs, reference)):
        if vi.shape != ref.shape:
            raise RuntimeError(f"Entry {i} in v has invalid size: should be {ref.shape} but got {vi.shape}.")
    return vs


def _default_v(reference: tuple, fn_name: str, what: str) -> tuple:
    from ..creation import ones_like

    if len(reference) != 1 or reference[0].numel() != 1:
        raise RuntimeError(f"The vector v can only be None if the {what} contains a single element.")
    return (ones_like(reference[0]),)


def vjp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False) -> tuple:
    """Compute the dot product between a vector ``v`` and the Jacobian of ``func`` at ``inputs``.

    Returns ``(func_output, vjp)``; ``v`` may be None when ``func`` returns a single element.
    """
    from .grad_mode import enable_grad

    with enable_grad():
        inputs_tuple, inputs_t = _as_tuple(inputs, "inputs", "vjp")
        inputs_t = _prepare_inputs(inputs_t, create_graph)
        outputs_tuple, outputs_t = _check_outputs(func(*inputs_t), "vjp", strict)
        if v is None:
            if len(outputs_t) != 1 or outputs_t[0].numel() != 1:
                raise RuntimeError("The vector v can only be None if the user-provided function returns a single "
                                   "Tensor with a single element.")
            vs = _default_v(outputs_t, "vjp", "user-provided function output")
        else:
            vs = _check_v(v, outputs_t, "vjp", "outputs")
        grads = _gradients(outputs_t, inputs_t, vs, create_graph, strict, "vjp")
    return _unpack(_finish(outputs_t, create_graph), outputs_tuple), _unpack(_finish(grads, create_graph),
                                                                             inputs_tuple)


def jvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False) -> tuple:
    """Compute the dot product between the Jacobian of ``func`` at ``inputs`` and a vector ``v``.

    Returns ``(func_output, jvp)``. Computed with two reverse passes (the "double backward trick"): the vjp
    is linear in its vector ``u``, so differentiating ``u -> J^T u`` against ``v`` gives ``J v``.
    """
    from .grad_mode import enable_grad

    with enable_grad():
        inputs_tuple, inputs_t = _as_tuple(inputs, "inputs", "jvp")
        inputs_t = _prepare_inputs(inputs_t, create_graph)
        if v is None:
            if len(inputs_t) != 1 or inputs_t[0].numel() != 1:
                raise RuntimeError("The vector v can only be None if the input to the user-provided function is a "
                                   "single Tensor with a single element.")
            vs = _default_v(inputs_t, "jvp", "input")
        else:
            vs = _check_v(v, inputs_t, "jvp", "inputs")
        outputs_tuple, outputs_t = _check_outputs(func(*inputs_t), "jvp", strict)
        jvps = _forward_products(outputs_t, inputs_t, vs, create_graph, strict)
    return _unpack(_finish(outputs_t, create_graph), outputs_tuple), _unpack(_finish(jvps, create_graph),
                                                                             outputs_tuple)


def _forward_products(outputs_t: tuple, inputs_t: tuple, vs: tuple, create_graph: bool, strict: bool) -> tuple:
    """J v for each output, by the double backward trick (see ``jvp``)."""
    from ..creation import zeros_like

    dummies = tuple(zeros_like(o).requires_grad_(True) for o in outputs_t)
    pulled = _gradients(outputs_t, inputs_t, dummies, True, strict, "jvp", zeros_for_unused=False)
    used = [(p, v) for p, v in zip(pulled, vs) if p is not None and p.requires_grad]
    if used:
        products = _grad([p for p, _ in used], dummies, [v for _, v in used], retain_graph=True,
                         create_graph=create_graph, allow_unused=True)
    else:
        products = (None,) * len(dummies)
    result = []
    for i, (product, out) in enumerate(zip(products, outputs_t)):
        if product is None:
            if strict:
                raise RuntimeError(f"The output of the user-provided function is independent of input {i}. "
                                   "This is not allowed in strict mode.")
            product = zeros_like(out)
        result.append(product)
    return tuple(result)


_STRATEGIES = ("forward-mode", "reverse-mode")


def jacobian(func: Callable, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode"):
    """Compute the Jacobian of ``func`` at ``inputs``.

    Entry ``[i][j]`` (for tuples) has shape ``outputs[i].shape + inputs[j].shape``. ``strategy='reverse-mode'``
    takes one backward pass per output element, ``'forward-mode'`` one Jacobian-vector product per input
    element (PyTorch asks ``vectorize=True`` for it, as here).
    """
    from ..creation import zeros
    from ..ops.shape import stack
    from .grad_mode import enable_grad

    if strategy not in _STRATEGIES:
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
                         'function has more outputs than inputs, "forward-mode" tends to be more performant. '
                         'Otherwise, prefer to use "reverse-mode".')
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError("torch.autograd.functional.jacobian: `strategy=\"forward-mode\"` does not "
                                      "support `create_graph=True`")
        if not vectorize:
            raise NotImplementedError("Computing Jacobian using forward-AD or forward-over-reverse Hessian is"
                                      "only implemented for `vectorize=True`.")
        if strict:
            raise RuntimeError("torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` are not "
                               "supported together. Please either set `strict=False` or `vectorize=False`.")
    elif strict and vectorize:
        raise RuntimeError("torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` are not "
                           "supported together. Please either set `strict=False` or `vectorize=False`.")

    with enable_grad():
        inputs_tuple, inputs_t = _as_tuple(inputs, "inputs", "jacobian")
        inputs_t = _prepare_inputs(inputs_t, create_graph)
        outputs_tuple, outputs_t = _check_outputs(func(*inputs_t), "jacobian", strict)
        blocks = [[None] * len(inputs_t) for _ in outputs_t]
        if strategy == "reverse-mode":
            for i, out in enumerate(outputs_t):
                flat = out.reshape(-1)
                rows = [[] for _ in inputs_t]
                for k in range(flat.numel()):
                    if flat.requires_grad:
                        grads = _grad(flat[k], inputs_t, retain_graph=True, create_graph=create_graph,
                                      allow_unused=True)
                    else:
                        grads = (None,) * len(inputs_t)
                    for j, (g, inp) in enumerate(zip(grads, inputs_t)):
                        if g is None:
                            if strict:
                                raise RuntimeError(f"Output {i} of the user-provided function is independent of "
                                                   f"input {j}. This is not allowed in strict mode.")
                            g = zeros(inp.shape, dtype=inp.dtype, device=inp.device)
                        rows[j].append(g)
                for j, inp in enumerate(inputs_t):
                    if rows[j]:
                        block = stack(rows[j]).reshape(tuple(out.shape) + tuple(inp.shape))
                    else:
                        block = zeros(tuple(out.shape) + tuple(inp.shape), dtype=inp.dtype, device=inp.device)
                    blocks[i][j] = block
        else:
            for j, inp in enumerate(inputs_t):
                columns = [[] for _ in outputs_t]
                for k in range(inp.numel()):
                    basis = []
                    for m, other in enumerate(inputs_t):
                        e = zeros(other.numel(), dtype=other.dtype, device=other.device)
                        if m == j:
                            e[k] = 1.0
                        basis.append(e.reshape(other.shape))
                    products = _forward_products(outputs_t, inputs_t, tuple(basis), False, False)
                    for i, product in enumerate(products):
                        columns[i].append(product)
                for i, out in enumerate(outputs_t):
                    if columns[i]:
                        block = stack(columns[i], dim=-1).reshape(tuple(out.shape) + tuple(inp.shape))
                    else:
                        block = zeros(tuple(out.shape) + tuple(inp.shape), dtype=out.dtype, device=out.device)
                    blocks[i][j] = block
        blocks = [list(_finish(tuple(row), create_graph)) for row in blocks]
    if outputs_tuple:
        return tuple(_unpack(tuple(row), inputs_tuple) for row in blocks)
    return _unpack(tuple(blocks[0]), inputs_tuple)


def hessian(func: Callable, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode"):
    """Compute the Hessian of ``func`` (which must return a single element) at ``inputs``.

    Entry ``[i][j]`` (for tuples) has shape ``inputs[i].shape + inputs[j].shape``: the Jacobian of the gradient.
    """
    from .grad_mode import enable_grad

    if outer_jacobian_strategy not in _STRATEGIES:
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode".')
    inputs_tuple, inputs_t = _as_tuple(inputs, "inputs", "hessian")

    def gradient_of_func(*inp):
        with enable_grad():
            outputs_tuple, outputs_t = _check_outputs(func(*inp), "hessian", strict)
            out = _single_element(outputs_t, outputs_tuple, "hessian")
            if not out.requires_grad:
                if strict:
                    raise RuntimeError("The function given to hessian does not depend on its input. This is not "
                                       "allowed in strict mode.")
                from ..creation import zeros_like

                return tuple(zeros_like(i).requires_grad_(True) for i in inp)
            grads = _grad(out, inp, create_graph=True, allow_unused=True)
            result = []
            for j, (g, i) in enumerate(zip(grads, inp)):
                if g is None:
                    if strict:
                        raise RuntimeError(f"The output of the user-provided function is independent of input {j}. "
                                           "This is not allowed in strict mode.")
                    from ..creation import zeros_like

                    g = zeros_like(i)
                elif strict and not g.requires_grad:
                    raise RuntimeError(
                        f"While computing the hessian, found that the jacobian of the user-provided function with "
                        f"respect to input {j} is independent of the input. This is not allowed in strict mode. You "
                        "should ensure that your function is twice differentiable and that the jacobian depends on "
                        "the inputs (this would be violated by a linear function for example).")
                result.append(g)
            return tuple(result)

    result = jacobian(gradient_of_func, inputs_t, create_graph=create_graph, strict=strict, vectorize=vectorize,
                      strategy=outer_jacobian_strategy)
    if inputs_tuple:
        return result
    return result[0][0]


def _single_element(outputs_t: tuple, outputs_tuple: bool, fn_name: str):
    if outputs_tuple or len(outputs_t) != 1:
        raise RuntimeError(f"The function given to {fn_name} should return a single Tensor")
    if outputs_t[0].numel() != 1:
        raise RuntimeError(f"The Tensor returned by the function given to {fn_name} should contain a single element")
    return outputs_t[0]


def _second_order_product(func: Callable, inputs, v, create_graph: bool, strict: bool, fn_name: str) -> tuple:
    from .grad_mode import enable_grad

    with enable_grad():
        inputs_tuple, inputs_t = _as_tuple(inputs, "inputs", fn_name)
        inputs_t = _prepare_inputs(inputs_t, create_graph)
        if v is None:
            if len(inputs_t) != 1 or inputs_t[0].numel() != 1:
                raise RuntimeError("The vector v can only be None if the input to the user-provided function is a "
                                   "single Tensor with a single element.")
            vs = _default_v(inputs_t, fn_name, "input")
        else:
            vs = _check_v(v, inputs_t, fn_name, "inputs")
        outputs_tuple, outputs_t = _check_outputs(func(*inputs_t), fn_name, strict)
        out = _single_element(outputs_t, outputs_tuple, fn_name)
        first = _gradients((out,), inputs_t, (None,), True, strict, fn_name, zeros_for_unused=False)
        used = [(g, v) for g, v in zip(first, vs) if g is not None and g.requires_grad]
        if used:
            second = _grad([g for g, _ in used], inputs_t, [v for _, v in used], retain_graph=True,
                           create_graph=create_graph, allow_unused=True)
        else:
            second = (None,) * len(inputs_t)
        from ..creation import zeros_like

        products = []
        for j, (s, inp) in enumerate(zip(second, inputs_t)):
            if s is None:
                if strict:
                    raise RuntimeError(f"The output of the user-provided function is independent of input {j}. "
                                       "This is not allowed in strict mode.")
                s = zeros_like(inp)
            products.append(s)
    return _finish((out,), create_graph)[0], _unpack(_finish(tuple(products), create_graph), inputs_tuple)


def vhp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False) -> tuple:
    """Compute the dot product between vector ``v`` and the Hessian of ``func`` at ``inputs``.

    Returns ``(func_output, vhp)``; ``func`` must return a single element.
    """
    return _second_order_product(func, inputs, v, create_graph, strict, "vhp")


def hvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False) -> tuple:
    """Compute the dot product between the Hessian of ``func`` at ``inputs`` and vector ``v``.

    Returns ``(func_output, hvp)``. The Hessian of a twice continuously differentiable function is symmetric,
    so ``H v`` equals ``v^T H``: it is computed by the same two reverse passes as ``vhp``.
    """
    return _second_order_product(func, inputs, v, create_graph, strict, "hvp")
