"""``gradcore.optim``: optimizers and learning-rate schedulers, with PyTorch's names."""

from __future__ import annotations

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Adagrad", "Adamax", "NAdam", "RAdam", "Optimizer", "RMSprop", "lr_scheduler"]
