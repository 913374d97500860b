"""``gradcore.nn``: modules, parameters, layers, losses, ``functional``, ``init`` and ``utils``, with PyTorch's names.

``import gradcore.nn as nn`` then ``nn.Linear(2, 3)``, ``nn.functional.relu(x)``, ``nn.init.zeros_(w)``.
"""
from . import functional, init, utils
from .modules import *  # noqa: F401,F403  (the layers, listed in modules.__all__)
from .modules import __all__ as _module_names
from .parameter import Parameter

__all__ = ["Parameter", "functional", "init", "utils"] + list(_module_names)


def __getattr__(name: str):
    # nn.parallel loads on first use: it imports gradcore.distributed, which the rest of nn does not need.
    if name == "parallel":
        import importlib

        return importlib.import_module(".parallel", __name__)
    raise AttributeError(f"module 'gradcore.nn' has no attribute '{name}'")
