"""Thread-local switches for recording the graph: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``inference_mode``."""
from __future__ import annotations

import functools
import threading

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode",
           "is_inference_mode_enabled"]


class _GradState(threading.local):
    # Class attributes are each thread's starting values.
    enabled = True
    inference = False
    anomaly = False


state = _GradState()


def is_grad_enabled() -> bool:
    """Returns True if grad mode is currently enabled in this thread."""
    return state.enabled


def is_inference_mode_enabled() -> bool:
    """Returns True if inference mode is currently enabled in this thread."""
    return state.inference


class _DecoratorContextManager:
    """A context manager that also decorates functions, with or without parentheses."""

    def __new__(cls, *args, **kwargs):
        # ``@no_grad`` without parentheses passes the function itself.
        if cls is not set_grad_enabled and len(args) == 1 and callable(args[0]) and not kwargs:
            return cls()(args[0])
        return super().__new__(cls)

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.clone():
                return func(*args, **kwargs)

        return wrapper

    def clone(self):
        return self.__class__()

    def __enter__(self):  # pragma: no cover - subclasses override
        raise NotImplementedError

    def __exit__(self, *exc):  # pragma: no cover
        raise NotImplementedError


class no_grad(_DecoratorContextManager):
    """Disables gradient recording inside the block (thread-local); a context manager or a decorator."""

    def __init__(self, func=None) -> None:
        self.prev = True

    def __enter__(self) -> None:
        self.prev = state.enabled
        state.enabled = False

    def __exit__(self, *exc) -> None:
        state.enabled = self.prev


class enable_grad(_DecoratorContextManager):
    """Enables gradient recording inside the block, even within ``no_grad``."""

    def __init__(self, func=None) -> None:
        self.prev = True

    def __enter__(self) -> None:
        self.prev = state.enabled
        state.enabled = True

    def __exit__(self, *exc) -> None:
        state.enabled = self.prev


class set_grad_enabled(_DecoratorContextManager):
    """Sets grad mode on or off: at once when called, and back to the previous mode when used as a context manager."""

    def __init__(self, mode: bool) -> None:
        if not isinstance(mode, bool):
            raise TypeError(f"set_grad_enabled(): argument 'mode' must be bool, not {type(mode).__name__}")
        self.prev = state.enabled
        self.mode = mode
        state.enabled = mode

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        state.enabled = self.prev

    def __call__(self, func):
        state.enabled = self.prev  # the decorator form must not change the mode where it is applied
        return super().__call__(func)

    def clone(self):
        return self.__class__(self.mode)


class inference_mode(_DecoratorContextManager):
    """Like ``no_grad``, for code that will never need gradients (``inference_mode(False)`` does nothing)."""

    def __init__(self, mode: bool = True) -> None:
        self.mode = mode
        self.prev = (True, False)

    def __enter__(self) -> None:
        self.prev = (state.enabled, state.inference)
        if self.mode:
            state.enabled = False
            state.inference = True

    def __exit__(self, *exc) -> None:
        state.enabled, state.inference = self.prev

    def clone(self):
        return self.__class__(self.mode)
