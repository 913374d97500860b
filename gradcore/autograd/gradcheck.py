"""``gradcheck`` and ``gradgradcheck``: compare autograd's Jacobians with central finite differences."""
from __future__ import annotations

import warnings
from typing import Callable


__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    """Raised by gradcheck when an analytical gradient does not match the numerical one."""


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


def _differentiable_outputs(func: Callable, inputs: tuple) -> tuple:
    from ..tensor import Tensor

    out = _as_tuple(func(*inputs))
    return tuple(o for o in out if isinstance(o, Tensor) and o.requires_grad)


def _output_arrays(func: Callable, inputs: tuple) -> list:
    """The differentiable outputs of ``func`` as flat float64 arrays."""
    return [o._data.astype("float64").reshape(-1) for o in _differentiable_outputs(func, inputs)]


def _numerical_jacobian(func: Callable, inputs: tuple, index: int, eps: float, n_outputs: int) -> list:
    """Columns d(output)/d(input[index][j]) by central differences, one list per output (each numel_in x numel_out)."""
    from ..tensor import Tensor

    x = inputs[index]
    flat = x._data.reshape(-1) if x._data.flags.c_contiguous else None
    if flat is None:
        raise ValueError("gradcheck needs contiguous inputs")
    columns = [[] for _ in range(n_outputs)]
    # The function runs with grad mode as it is: gradgradcheck's function needs it to take derivatives.
    for j in range(flat.size):
        original = flat[j].item()
        flat[j] = original + eps
        plus = _output_arrays(func, inputs)
        flat[j] = original - eps
        minus = _output_arrays(func, inputs)
        flat[j] = original
        for k in range(n_outputs):
            columns[k].append((plus[k] - minus[k]) / (2 * eps))
    return columns


def _analytical_jacobian(outputs: tuple, inputs: tuple, k: int, wanted: list) -> dict:
    """Rows d(output[k][i])/d(inputs) from one backward per output element."""
    from . import grad as autograd_grad
    from ..backend import array_module

    out = outputs[k]
    xp = array_module(out._data)
    rows = {i: [] for i in wanted}
    for i in range(out.numel()):
        seed = xp.zeros(out.numel(), dtype=out._data.dtype)
        seed[i] = 1
        from ..tensor import make_tensor

        grads = autograd_grad(out, [inputs[w] for w in wanted], make_tensor(seed.reshape(out.shape)),
                              retain_graph=True, allow_unused=True)
        for w, g in zip(wanted, grads):
            rows[w].append(xp.zeros(inputs[w].numel()) if g is None else g._data.astype("float64").reshape(-1))
    return rows


def gradcheck(func: Callable, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0, check_undefined_grad: bool = True,
              check_grad_dtypes: bool = False, check_batched_grad: bool = False, fast_mode: bool = False,
              masked=None) -> bool:
    """Checks the gradients of ``func`` at ``inputs`` against finite differences.

    Every input that requires grad should be float64.  Returns True, or raises GradcheckError naming
    the output, the input and the worst element (or returns False with ``raise_exception=False``).
    """
    from ..tensor import Tensor
    from ..backend import array_module

    inputs = _as_tuple(inputs)
    wanted = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not wanted:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of the them have requires_grad=True.")
    for i in wanted:
        if inputs[i].dtype.name != "float64":
            warnings.warn(
                f"Input #{i} requires gradient and is not a double precision floating point. "
                "This check will likely fail if all the inputs are not of double precision floating point.",
                stacklevel=2,
            )
    outputs = _differentiable_outputs(func, inputs)
    if not outputs:
        raise ValueError("gradcheck expects at least one output that requires grad")

    def fail(message: str) -> bool:
        if raise_exception:
            raise GradcheckError(message)
        return False

    for k, out in enumerate(outputs):
        analytical = _analytical_jacobian(outputs, inputs, k, wanted) if out.numel() else {w: [] for w in wanted}
        for w in wanted:
            numerical_columns = _numerical_jacobian(func, inputs, w, eps, len(outputs))[k]
            xp = array_module(out._data)
            n_in, n_out = inputs[w].numel(), out.numel()
            numerical = xp.stack(numerical_columns, axis=0) if numerical_columns else xp.zeros((n_in, n_out))
            numerical = numerical.reshape(n_in, n_out)
            rows = analytical[w]
            analytic = xp.stack(rows, axis=1) if rows else xp.zeros((n_in, n_out))
            analytic = analytic.reshape(n_in, n_out)
            if numerical.size == 0:
                continue
            error = xp.abs(analytic - numerical) - (atol + rtol * xp.abs(numerical))
            if bool((error > 0).any()) or not bool(xp.isfinite(analytic).all()) and bool(xp.isfinite(numerical).all()):
                worst = int(xp.argmax(xp.where(xp.isnan(error), xp.inf, error)))
                j, i = divmod(worst, n_out)
                return fail(
                    f"Jacobian mismatch for output {k} with respect to input {w},\n"
                    f"numerical:{numerical}\nanalytical:{analytic}\n"
                    f"The worst element is d(output {k}[{i}]) / d(input {w}[{j}]) (flat indices): "
                    f"numerical={float(numerical[j, i])!r}, analytical={float(analytic[j, i])!r}, "
                    f"difference={abs(float(numerical[j, i]) - float(analytic[j, i]))!r} "
                    f"(tolerance atol={atol} + rtol={rtol} * |numerical|).\n"
                )
    return True


def gradgradcheck(func: Callable, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, gen_non_contig_grad_outputs: bool = False, raise_exception: bool = True,
                  nondet_tol: float = 0.0, check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
                  check_batched_grad: bool = False, check_fwd_over_rev: bool = False,
                  check_rev_over_rev: bool = True, fast_mode: bool = False, masked: bool = False) -> bool:
    """Checks second derivatives: gradcheck of the function (inputs, grad_outputs) -> d(func)/d(inputs)."""
    from . import grad as autograd_grad
    from ..creation import randn_like
    from ..tensor import Tensor

    inputs = _as_tuple(inputs)
    outputs = _differentiable_outputs(func, inputs)
    if grad_outputs is None:
        grad_outputs = tuple(randn_like(o, dtype=o.dtype).requires_grad_(True) for o in outputs)
    else:
        grad_outputs = _as_tuple(grad_outputs)
    n_inputs = len(inputs)
    wanted = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]

    def first_derivatives(*args):
        ins, gos = args[:n_inputs], args[n_inputs:]
        outs = _differentiable_outputs(func, ins)
        grads = autograd_grad(outs, [ins[i] for i in wanted], gos, create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_derivatives, inputs + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
