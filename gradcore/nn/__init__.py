"""``gradcore.nn``: modules, parameters, layers, losses, ``functional`` and ``init``, with PyTorch's names.

``import gradcore.nn as nn`` then ``nn.Linear(2, 3)``, ``nn.functional.relu(x)``, ``nn.init.zeros_(w)``.
"""
from . import functional, init
from .modules import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, Dropout, Flatten, GELU, Identity, L1Loss,
                      LeakyReLU, Linear, LogSoftmax, Module, ModuleList, MSELoss, NLLLoss, ReLU, Sequential, Sigmoid,
                      Softmax, Tanh)
from .parameter import Parameter

__all__ = ["Module", "Parameter", "functional", "init", "Linear", "Identity", "ReLU", "Sigmoid", "Tanh", "LeakyReLU",
           "GELU", "Softmax", "LogSoftmax", "Dropout", "Flatten", "Sequential", "ModuleList", "MSELoss", "L1Loss",
           "NLLLoss", "CrossEntropyLoss", "BCELoss", "BCEWithLogitsLoss"]


def __getattr__(name: str):
    # nn.parallel loads on first use: it imports gradcore.distributed, which the rest of nn does not need.
    if name == "parallel":
        import importlib

        return importlib.import_module(".parallel", __name__)
    raise AttributeError(f"module 'gradcore.nn' has no attribute '{name}'")
