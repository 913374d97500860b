"""``Parameter``: a tensor that a ``Module`` registers as one of its parameters."""
from __future__ import annotations

from ..tensor import Tensor, make_tensor
from .. import creation

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A kind of Tensor that is to be considered a module parameter (requires_grad=True by default).

    Assigning a Parameter as an attribute of a ``Module`` adds it to the module's ``parameters()``.
    It shares memory (and the version counter) with the tensor it was made from, and is always a leaf.
    Operations on a Parameter return plain tensors.
    """

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        # Tensor.__init__ is the legacy size/data constructor, so it is not called here.
        if data is None:
            data = creation.empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter(): argument 'data' must be Tensor, not {type(data).__name__}")
        source = make_tensor(data._data)
        for name in ("_data", "_output_nr", "_base", "_grad", "_backward_hooks", "_accumulator_ref"):
            object.__setattr__(self, name, getattr(source, name))
        self._grad_fn = None
        self._requires_grad = False
        self._version_counter = data._version_counter
        self.requires_grad_(requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo: dict) -> "Parameter":
        if id(self) in memo:
            return memo[id(self)]
        copied = Parameter(make_tensor(self._data.copy()), self._requires_grad)
        if self._grad is not None:
            copied._grad = make_tensor(self._grad._data.copy())
        memo[id(self)] = copied
        return copied
