"""``gradcore.utils``: helpers around the core; ``gradcore.utils.data`` holds datasets and ``DataLoader``."""

from __future__ import annotations

from . import data

__all__ = ["data"]
