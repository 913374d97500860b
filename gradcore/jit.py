"""``gradcore.jit``: ``script`` and ``trace``, on the capture-and-replay machinery of ``gradcore.compile``.

``script(fn)`` returns a callable that captures the array program of each new kind of call and replays it, with
the guards of ``gradcore.compile``: Python control flow (``w2a if prev_loss < 5.0 else w2b``) is followed by
capturing each branch once, and a replay never takes a branch that the eager code would not take.
``trace(fn, example_inputs)`` captures at once, from the example inputs; later calls replay that capture while
its guards hold (and are captured anew otherwise, where PyTorch would silently reuse its one trace).
"""
from __future__ import annotations

import inspect
import warnings
from typing import Any, Callable

from ._capture.compiler import CompiledCallable, OptimizedModule

__all__ = ["script", "trace", "ScriptFunction", "TracerWarning", "ignore", "unused", "is_scripting", "is_tracing"]


class TracerWarning(Warning):
    """Warns that a traced call depended on something a trace cannot see in general (a tensor's value)."""


class ScriptFunction(CompiledCallable):
    """What ``script`` and ``trace`` return for a function; call it as the function."""

    _check_arguments = False  # script checks arguments against the signature, as TorchScript does; trace not

    def __call__(self, *args, **kwargs):
        if self._check_arguments:
            _check_script_arguments(self._fn, args, kwargs)
        return super().__call__(*args, **kwargs)

    @property
    def graph(self) -> str:
        """The captured programs as text, one line per array operation."""
        return self.listing()

    @property
    def code(self) -> str:
        """The Python source of the scripted function."""
        try:
            return inspect.getsource(self._fn)
        except (OSError, TypeError):
            return ""


def script(obj: Any, optimize: Any = None, _frames_up: int = 0, _rcb: Any = None, example_inputs: Any = None) -> Any:
    """Compiles a function or ``nn.Module`` (``torch.jit.script``): its calls are captured and replayed."""
    from .nn.modules.module import Module

    if isinstance(obj, Module):
        return OptimizedModule(obj)
    if not callable(obj):
        raise RuntimeError(f"jit.script(): expected a function or an nn.Module, got {type(obj).__name__}")
    scripted = ScriptFunction(obj)
    scripted._check_arguments = True
    return scripted


# TorchScript's view of a signature: a parameter without annotation is a Tensor.
_SCRIPT_TYPES = {float: "float", int: "int", bool: "bool", str: "str"}


def _script_type(parameter: inspect.Parameter) -> tuple:
    """Returns (the type's name, the check of a value, whether the type was inferred)."""
    from .tensor import Tensor

    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return "Tensor", lambda v: isinstance(v, Tensor), True
    if annotation is Tensor or annotation in ("Tensor", "torch.Tensor", "gradcore.Tensor"):
        return "Tensor", lambda v: isinstance(v, Tensor), False
    name = _SCRIPT_TYPES.get(annotation) or (annotation if annotation in _SCRIPT_TYPES.values() else None)
    if name == "float":
        return name, lambda v: isinstance(v, (float, int)) and not isinstance(v, bool), False
    if name == "int":
        return name, lambda v: isinstance(v, int) and not isinstance(v, bool), False
    if name == "bool":
        return name, lambda v: isinstance(v, bool), False
    if name == "str":
        return name, lambda v: isinstance(v, str), False
    return getattr(annotation, "__name__", str(annotation)), lambda v: True, False


def _check_script_arguments(fn: Callable, args: tuple, kwargs: dict) -> None:
    """Raises TorchScript's RuntimeError for a missing argument or an argument of the wrong type."""
    signature = inspect.signature(fn)
    name = fn.__name__
    types = {p: _script_type(parameter) for p, parameter in signature.parameters.items()}
    returns = signature.return_annotation
    declaration = "{}({}) -> {}".format(name, ", ".join(f"{t[0]} {p}" for p, t in types.items()),
                                       "Tensor" if returns is inspect.Signature.empty else
                                       getattr(returns, "__name__", str(returns)))
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError as exc:
        raise RuntimeError(f"{name}() {exc}. Declaration: {declaration}") from None
    for position, (parameter_name, parameter) in enumerate(signature.parameters.items()):
        type_name, accepts, inferred = types[parameter_name]
        if parameter_name not in bound.arguments:
            if parameter.default is inspect.Parameter.empty:
                raise RuntimeError(f"{name}() is missing value for argument '{parameter_name}'. "
                                   f"Declaration: {declaration}")
            continue
        value = bound.arguments[parameter_name]
        if accepts(value):
            continue
        lines = [f"{name}() Expected a value of type '{type_name}{' (inferred)' if inferred else ''}' for argument "
                 f"'{parameter_name}' but instead found type '{type(value).__name__}'."]
        if inferred:
            lines.append(f"Inferred '{parameter_name}' to be of type 'Tensor' because it was not annotated with an "
                         "explicit type.")
        lines += [f"Position: {position}", f"Value: {value!r}", f"Declaration: {declaration}",
                  f"Cast error details: Unable to cast {value!r} to Tensor" if type_name == "Tensor" else
                  f"Cast error details: Unable to cast Python instance of type {type(value)} to {type_name}"]
        raise RuntimeError("\n".join(lines))


def trace(func: Callable, example_inputs: Any = None, optimize: Any = None, check_trace: bool = True,
          check_inputs: Any = None, check_tolerance: float = 1e-5, strict: bool = True, *,
          example_kwarg_inputs: dict | None = None, **kwargs: Any) -> Any:
    """Captures ``func`` called on ``example_inputs`` (a tensor or a tuple of arguments) and returns a callable
    that replays the capture (``torch.jit.trace``). The example call runs for real, as the first call would."""
    from .nn.modules.module import Module
    from .tensor import Tensor

    if example_inputs is None and example_kwarg_inputs is None:
        raise RuntimeError("jit.trace(): example_inputs (or example_kwarg_inputs) must be given")
    args = (example_inputs,) if isinstance(example_inputs, Tensor) else tuple(example_inputs or ())
    traced = OptimizedModule(func) if isinstance(func, Module) else ScriptFunction(func)
    compiled = traced._compiled_call if isinstance(traced, OptimizedModule) else traced
    compiled(*args, **(example_kwarg_inputs or {}))
    programs = compiled.programs()
    if programs and any(ins.kind == "guard" for ins in programs[0].instructions):
        warnings.warn(f"jit.trace: {compiled.__name__} decides on the value of a tensor; the trace is guarded by that "
                      "decision and captured again when it changes", TracerWarning, stacklevel=2)
    return traced


def ignore(drop: Any = False, **kwargs: Any) -> Any:
    """Marks a function to be left to Python (``torch.jit.ignore``): captures follow it like any other code."""
    if callable(drop):
        return drop
    return lambda fn: fn


def unused(fn: Callable) -> Callable:
    """``torch.jit.unused``: returns the function unchanged."""
    return fn


def is_scripting() -> bool:
    """False: code runs as Python, also while being captured (``torch.jit.is_scripting``)."""
    return False


def is_tracing() -> bool:
    """Whether a capture is in progress (``torch.jit.is_tracing``)."""
    from ._capture.trace import current_recorder

    return current_recorder() is not None
