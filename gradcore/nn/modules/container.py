"""Containers: ``Sequential`` (modules called in a chain) and ``ModuleList`` (modules held in a list)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterable, Iterator, Mapping

from ...tensor import Tensor
from ..parameter import Parameter
from .module import Module, _indent

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]


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
        for module in self._modules.values():
            input = module(input)
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


class ModuleDict(Module):
    """Holds submodules in a dictionary (insertion-ordered), registered so that ``parameters()`` sees them."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def clear(self) -> None:
        """Removes every item."""
        self._modules.clear()

    def pop(self, key: str) -> Module:
        """Removes the module under ``key`` and returns it."""
        module = self[key]
        del self[key]
        return module

    def keys(self):
        """Returns an iterable of the keys."""
        return self._modules.keys()

    def items(self):
        """Returns an iterable of the (key, module) pairs."""
        return self._modules.items()

    def values(self):
        """Returns an iterable of the modules."""
        return self._modules.values()

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Adds (or overwrites) the modules of a mapping or of an iterable of (key, module) pairs."""
        if isinstance(modules, (OrderedDict, ModuleDict, dict, Mapping)):
            for key, module in modules.items():
                self[key] = module
            return
        if isinstance(modules, (str, bytes)) or not isinstance(modules, Iterable):
            raise TypeError("ModuleDict.update should be called with an iterable of key/value pairs, but got "
                            + type(modules).__name__)
        for index, pair in enumerate(modules):
            if not isinstance(pair, Iterable) or isinstance(pair, (str, bytes)):
                raise TypeError(f"ModuleDict update sequence element #{index} should be Iterable; is "
                                + type(pair).__name__)
            pair = tuple(pair)
            if len(pair) != 2:
                raise ValueError(f"ModuleDict update sequence element #{index} has length {len(pair)}; 2 is "
                                 "required")
            self[pair[0]] = pair[1]


def _as_parameter(value: Any) -> Any:
    """A plain tensor stored in a parameter container becomes a Parameter, as in PyTorch."""
    if isinstance(value, Tensor) and not isinstance(value, Parameter):
        return Parameter(value)
    return value


class ParameterList(Module):
    """Holds parameters in a list, registered (as "0", "1", ...) so that ``parameters()`` sees them.

    Tensors added become Parameters; other objects are kept as plain attributes, as PyTorch keeps them.
    """

    def __init__(self, values: Iterable[Any] | None = None) -> None:
        super().__init__()
        self._size = 0
        if values is not None:
            self += values

    def _key(self, index: int) -> str:
        return str(_position(index, self._size))

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return ParameterList([self[i] for i in range(self._size)[index]])
        return getattr(self, self._key(index))

    def __setitem__(self, index: int, value: Any) -> None:
        setattr(self, self._key(index), _as_parameter(value))

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Any]:
        return iter(self[i] for i in range(self._size))

    def __iadd__(self, values: Iterable[Any]) -> "ParameterList":
        return self.extend(values)

    def append(self, value: Any) -> "ParameterList":
        """Appends a parameter (a tensor becomes a Parameter) at the end; returns the list."""
        name = str(self._size)
        self._size += 1
        setattr(self, name, _as_parameter(value))
        return self

    def extend(self, values: Iterable[Any]) -> "ParameterList":
        """Appends every value of an iterable; returns the list."""
        if not isinstance(values, Iterable) or isinstance(values, Tensor):
            raise TypeError("ParameterList.extend should be called with an iterable, but got "
                            + type(values).__name__)
        for value in values:
            self.append(value)
        return self

    def extra_repr(self) -> str:
        lines = []
        for i, value in enumerate(self):
            if isinstance(value, Tensor):
                size = "x".join(str(s) for s in value.shape)
                kind = "Parameter" if isinstance(value, Parameter) else "Tensor"
                lines.append(f"  ({i}): {kind} containing: [{value.dtype} of size {size}]")
            else:
                lines.append(f"  ({i}): Object of type: {type(value).__name__}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        body = self.extra_repr()
        return f"ParameterList(\n{body}\n)" if body else "ParameterList()"


class ParameterDict(Module):
    """Holds parameters in a dictionary (insertion-ordered), registered so that ``parameters()`` sees them."""

    def __init__(self, parameters: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None) -> None:
        super().__init__()
        self._keys: dict[str, None] = {}
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"parameter name should be a string. Got {type(key).__name__}")
        self._keys[key] = None
        setattr(self, key, _as_parameter(value))

    def __delitem__(self, key: str) -> None:
        del self._keys[key]
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def keys(self):
        """Returns an iterable of the keys."""
        return self._keys.keys()

    def items(self):
        """Returns an iterable of the (key, parameter) pairs."""
        return ((key, self[key]) for key in self._keys)

    def values(self):
        """Returns an iterable of the parameters."""
        return (self[key] for key in self._keys)

    def get(self, key: str, default: Any = None) -> Any:
        """Returns the parameter under ``key``, or ``default``."""
        return self[key] if key in self else default

    def pop(self, key: str) -> Any:
        """Removes the parameter under ``key`` and returns it."""
        value = self[key]
        del self[key]
        return value

    def clear(self) -> None:
        """Removes every item."""
        for key in list(self._keys):
            del self[key]

    def update(self, parameters: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Adds (or overwrites) the parameters of a mapping or of an iterable of (key, value) pairs."""
        if isinstance(parameters, (Mapping, ParameterDict)):
            for key, value in parameters.items():
                self[key] = value
            return
        if not isinstance(parameters, Iterable):
            raise TypeError("ParametersDict.update should be called with an iterable of key/value pairs, but got "
                            + type(parameters).__name__)
        for index, pair in enumerate(parameters):
            pair = tuple(pair)
            if len(pair) != 2:
                raise ValueError(f"ParameterDict update sequence element #{index} has length {len(pair)}; 2 is "
                                 "required")
            self[pair[0]] = pair[1]

    def __repr__(self) -> str:
        lines = []
        for key, value in self.items():
            if isinstance(value, Tensor):
                size = "x".join(str(s) for s in value.shape)
                kind = "Parameter" if isinstance(value, Parameter) else "Tensor"
                lines.append(f"  ({key}): {kind} containing: [{value.dtype} of size {size}]")
            else:
                lines.append(f"  ({key}): Object of type: {type(value).__name__}")
        return "ParameterDict(\n" + "\n".join(lines) + "\n)" if lines else "ParameterDict()"
