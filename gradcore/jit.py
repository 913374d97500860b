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
    return ScriptFunction(obj)


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
