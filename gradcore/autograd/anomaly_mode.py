"""Anomaly detection: remember where each op was called, and fail at the backward that produces NaN."""
from __future__ import annotations

import warnings

from .grad_mode import _DecoratorContextManager, state

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled"]


def is_anomaly_enabled() -> bool:
    """True while anomaly detection is on in this thread."""
    return state.anomaly


class detect_anomaly(_DecoratorContextManager):
    """Inside this block, a backward that returns NaN raises RuntimeError naming its op, and warns with the
    stack of the forward call that created it. Slows everything down: use it for debugging only."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan
        self.prev = False
        warnings.warn(
            "Anomaly Detection has been enabled. This mode will increase the runtime and should only be enabled "
            "for debugging.",
            stacklevel=2,
        )

    def __enter__(self) -> None:
        self.prev = state.anomaly
        state.anomaly = self.check_nan

    def __exit__(self, *exc) -> None:
        state.anomaly = self.prev

    def clone(self):
        return self.__class__(self.check_nan)


class set_detect_anomaly(_DecoratorContextManager):
    """Turns anomaly detection on or off (at once, and back when used as a context manager)."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self.prev = state.anomaly
        state.anomaly = mode and check_nan

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        state.anomaly = self.prev
