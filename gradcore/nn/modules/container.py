"""Containers: ``Sequential`` (modules called in a chain) and ``ModuleList`` (modules held in a list)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Iterator

from ...backend import CPU_ARRAY
from ...ops import linalg
from ...tensor import Tensor
from .activation import ReLU, Sigmoid
from .linear import Linear
from .module import Module, _indent

_FUSED_ACTIVATIONS = {ReLU: "relu", Sigmoid: "sigmoid"}

__all__ = ["Sequential", "ModuleList"]


def _position(index: int, length: int) -> int:
    """Returns a non-negative position for ``index`` (negative counts from the end), or raises IndexError."""
    if not isinstance(index, int) or isinstance(index, bool):
        raise TypeError(f"indices must be integers or slices, not {type(index).__name__}")
    if not -length <= index < length:
        raise IndexError(f"index {index} is out of range")
    return index % length


class _IndexedModules(Module):
    """What Sequential and ModuleList share: children named "0", "1", ... addressed by position."""

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def _key(self, index: int) -> str:
        return list(self._modules)[_position(index, len(self))]

    def __setitem__(self, index: int, module: Module) -> None:
        setattr(self, self._key(index), module)

    def __delitem__(self, index: int | slice) -> None:
        keys = list(self._modules)
        doomed = keys[index] if isinstance(index, slice) else [keys[_position(index, len(keys))]]
        for key in doomed:
            del self._modules[key]
        self._renumber()

    def _renumber(self) -> None:
        # Keep the names 0..n-1 after a removal or an insertion, as PyTorch does.
        modules = list(self._modules.values())
        self._modules.clear()
        for i, module in enumerate(modules):
            self._modules[str(i)] = module

    def append(self, module: Module) -> "_IndexedModules":
        """Appends a module at the end; returns the container."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> "_IndexedModules":
        """Appends every module of an iterable; returns the container."""
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Inserts a module before position ``index``."""
        if not isinstance(module, Module):
            raise AssertionError(f"module should be of type: {Module}")
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def pop(self, index: int = -1) -> Module:
        """Removes and returns the module at ``index``."""
        module = self[index]
        del self[index]
        return module

    def __dir__(self) -> list:
        return [key for key in super().__dir__() if not key.isdigit()]


def _fused_activation(module: Module, following: Module) -> str | None:
    """Returns "relu" or "sigmoid" where ``module`` is a plain Linear and ``following`` a plain ReLU or Sigmoid
    that ``linalg.linear_activation`` may compute together, else None.

    Only the library's own classes, with no forward hooks and no forward replaced on the instance: anything
    that could observe or change the value between the two modules keeps them apart.
    """
    kind = _FUSED_ACTIVATIONS.get(type(following))
    if kind is None or type(module) is not Linear or getattr(following, "inplace", False):
        return None
    for m in (module, following):
        if m._forward_pre_hooks or m._forward_hooks or "forward" in m.__dict__:
            return None
    return kind


def _on_device(input) -> bool:
    return isinstance(input, Tensor) and input._data.__class__ is not CPU_ARRAY


class Sequential(_IndexedModules):
    """A sequential container: ``forward`` feeds its input to the first module and each output to the next.

    Built from modules (``Sequential(nn.Linear(2, 3), nn.ReLU())``, named "0", "1", ...) or from an OrderedDict
    of named modules.
    """

    def __init__(self, *args: Module) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def __getitem__(self, index: int | slice) -> "Module":
        if isinstance(index, slice):
            return type(self)(OrderedDict(list(self._modules.items())[index]))
        return self._modules[self._key(index)]

    def __add__(self, other: "Sequential") -> "Sequential":
        if not isinstance(other, Sequential):
            raise ValueError(f"add operator supports only objects of Sequential class, but {type(other)} is given.")
        return Sequential(*self, *other)

    def forward(self, input):
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            module = modules[i]
            activation = None
            if i + 1 < len(modules) and _on_device(input):  # (on the CPU, the common case, nothing fuses)
                activation = _fused_activation(module, modules[i + 1])
            if activation is not None:
                # Linear then ReLU/Sigmoid on a GPU: the activation computed in the product's pass (same graph).
                input = linalg.linear_activation(input, module.weight, module.bias, activation)
                i += 2
                continue
            input = module(input)
            i += 1
        return input


class ModuleList(_IndexedModules):
    """Holds submodules in a list: indexable, iterable, and registered so that ``parameters()`` sees them."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, index: int | slice) -> "Module":
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[self._key(index)]

    def __iadd__(self, modules: Iterable[Module]) -> "ModuleList":
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> "ModuleList":
        return ModuleList(list(self) + list(other))

    def __repr__(self) -> str:
        # Runs of equal children print once, as "(0-2): 3 x Linear(...)".
        entries = [(name, repr(module)) for name, module in self._modules.items()]
        if not entries:
            return "ModuleList()"
        lines = []
        start = 0
        while start < len(entries):
            end = start
            while end + 1 < len(entries) and entries[end + 1][1] == entries[start][1]:
                end += 1
            text = _indent(entries[start][1], 2)
            if end == start:
                lines.append(f"({entries[start][0]}): {text}")
            else:
                lines.append(f"({entries[start][0]}-{entries[end][0]}): {end - start + 1} x {text}")
            start = end + 1
        return "ModuleList(\n  " + "\n  ".join(lines) + "\n)"
