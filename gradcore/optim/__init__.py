"""``gradcore.optim``: optimizers (``SGD``, ``Adam``, ``AdamW``, ``RMSprop``) and learning-rate schedulers."""

from __future__ import annotations

from . import lr_scheduler
from .adam import Adam
from .adamw import AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
