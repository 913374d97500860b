"""A captured program: the instructions of one call, folded and bound into a flat list of steps to replay.

``Program.build`` takes what a ``Recorder`` saw and decides, for every slot, whether a replay changes it
(inputs, external arrays such as parameters, and whatever is computed from them) or not (constants, folded: the
instruction that made one is not replayed, its value from the capture stays). Each remaining instruction
becomes one step, a callable with its arrays already bound: a fresh result is written into the array the
capture produced (``out=``), so that every buffer is allocated once and views taken during the capture stay
valid. ``run`` executes the steps; a guard step raises ``GuardFailed`` when a value the capture depended on
differs.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from .trace import Instruction, Recorder, Ref, ScalarRef, leaves

__all__ = ["Program", "GuardFailed"]

# Array methods that accept ``out=`` (a replay writes the captured result array instead of a new one).
_METHODS_WITH_OUT = frozenset({"sum", "prod", "max", "min", "mean", "cumsum", "cumprod", "clip", "dot", "any",
                               "all", "argmax", "argmin", "std", "var", "round"})


class GuardFailed(Exception):
    """A value that the capture depended on is different in this call: the replay stops."""

    def __init__(self, position: int, label: str) -> None:
        super().__init__(label)
        self.position = position


def _resolve(template, arrays: list, registers: list):
    if template.__class__ is Ref:
        return arrays[template.index]
    if template.__class__ is ScalarRef:
        return registers[template.index]
    if isinstance(template, (tuple, list)):
        return type(template)(_resolve(t, arrays, registers) for t in template)
    if isinstance(template, dict):
        return {k: _resolve(v, arrays, registers) for k, v in template.items()}
    return template


def _has_scalar(template) -> bool:
    return any(True for _ in _scalar_refs(template))


def _refs(template):
    """The slots an operand template reads."""
    return (v.index for v in leaves(template) if v.__class__ is Ref)


def _scalar_refs(template):
    """The scalar registers an operand template reads."""
    return (v.index for v in leaves(template) if v.__class__ is ScalarRef)


def _is_ufunc_call(fn) -> bool:
    """Whether ``fn`` is a ufunc or a ufunc's method (both take ``out=``)."""
    return isinstance(fn, np.ufunc) or isinstance(getattr(fn, "__self__", None), np.ufunc)


def _method_name(fn) -> str:
    return getattr(fn, "__name__", "")


class Program:
    """The replayable form of one capture (see the module docstring)."""

    def __init__(self, recorder: Recorder, input_slots: list[int], dynamic_registers: set[int],
                 shared: set[int]) -> None:
        self.slots = recorder.slots
        self.instructions = recorder.instructions
        self.registers = list(recorder.registers)
        self.register_labels = recorder.register_labels
        self.input_slots = input_slots
        self.arrays = self._buffers(shared)
        self.dynamic = self._dynamic_slots(dynamic_registers)
        self.live = [i for i, ins in enumerate(self.instructions) if self._is_live(ins)]
        self.resets = [(s.array, s.initial) for s in self.slots if s.origin == "constant" and s.written]
        self.steps = [self._step(position, self.instructions[position]) for position in self.live]

    def _buffers(self, shared: set[int]) -> list:
        """The program's own arrays: new buffers, so that a replay never writes into what the capture call
        returned or saved for its backward; the arrays of persistent state (``shared`` slots: parameters,
        optimizer state, gradients bound to leaves) and their views are the capture's own."""
        arrays: list = [None] * len(self.slots)
        for i, slot in enumerate(self.slots):
            if slot.view_of is None:
                if i in shared or slot.origin == "external":
                    arrays[i] = slot.array
                else:
                    arrays[i] = slot.array.copy()  # the values of folded constants are needed
        for ins in self.instructions:
            if ins.kind == "view":
                (index,) = ins.outputs
                base = self.slots[index].view_of
                while self.slots[base].view_of is not None:
                    base = self.slots[base].view_of
                if arrays[base] is self.slots[base].array:
                    arrays[index] = self.slots[index].array
                else:
                    arrays[index] = ins.fn(*_resolve(ins.args, arrays, self.registers),
                                           **_resolve(ins.kwargs, arrays, self.registers))
        for i, slot in enumerate(self.slots):
            if arrays[i] is None:  # a view whose making was not recorded (the same object as its base)
                arrays[i] = arrays[slot.view_of] if slot.view_of is not None else slot.array
            slot.array = arrays[i]
            if slot.initial is not None:
                slot.initial = slot.initial.copy()
        return arrays

    # -- analysis --------------------------------------------------------------------------------------
    def _dynamic_slots(self, dynamic_registers: set[int]) -> set:
        """Slots whose value a replay may change, and (in ``self.dynamic_registers``) such registers."""
        dynamic = {i for i, s in enumerate(self.slots) if s.origin in ("input", "external")
                   or (s.origin == "constant" and s.written)}
        registers = set(dynamic_registers)
        changed = True
        while changed:  # views may be recorded before the instruction that writes their base
            changed = False
            for i, s in enumerate(self.slots):
                if s.view_of is not None and s.view_of in dynamic and i not in dynamic:
                    dynamic.add(i)
                    changed = True
            for ins in self.instructions:
                operands = (ins.args, ins.kwargs)
                if any(r in dynamic for r in _refs(operands)) or any(r in registers for r in _scalar_refs(operands)):
                    for o in ins.outputs:
                        if o not in dynamic:
                            dynamic.add(o)
                            changed = True
                    if ins.register is not None and ins.register not in registers:
                        registers.add(ins.register)
                        changed = True
        self.dynamic_registers = registers
        return dynamic

    def _is_live(self, ins: Instruction) -> bool:
        if ins.host:  # Python a replay must run, even one that writes no array (trace.host_call)
            return True
        if ins.kind == "view":
            return False
        if ins.kind == "guard":
            return any(r in self.dynamic_registers for r in _scalar_refs(ins.args))
        if ins.register is not None:
            return ins.register in self.dynamic_registers
        return any(o in self.dynamic for o in ins.outputs)

    def host_steps(self) -> list[bool]:
        """For each step, whether it must run from Python (outside a CUDA graph): guards, scalar reads and
        arithmetic, host calls (``trace.host_call``: collectives, for example), array steps that take a Python
        number a replay may change, and those that touch host (numpy) arrays."""
        return [self._on_host(self.instructions[p]) for p in self.live]

    def _on_host(self, ins: Instruction) -> bool:
        if ins.kind != "array" or ins.host:
            return True
        operands = (ins.args, ins.kwargs)
        return (any(r in self.dynamic_registers for r in _scalar_refs(operands))
                or any(type(self.arrays[i]) is np.ndarray for i in (*_refs(operands), *ins.outputs)))

    def hoistable(self, position: int) -> bool:
        """Whether host step ``position`` reads and writes only Python numbers and host (numpy) arrays: scalar
        arithmetic, a value read from a host array (Adam's step count), an array step on host arrays. Nothing
        on the device reads what it writes but through the scalar arrays of ``device_scalars`` steps, so on a
        CUDA device it may run before the device steps that precede it, up to the previous host step that is
        not hoistable (a guard, a read from a device array, a host call)."""
        ins = self.instructions[position]
        if ins.host or ins.kind == "guard":
            return False
        if ins.kind == "scalar":
            return True
        operands = (ins.args, ins.kwargs)
        arrays = [self.arrays[i] for i in (*_refs(operands), *ins.outputs)]
        return ins.kind in ("read", "array") and all(type(a) is np.ndarray for a in arrays)

    def device_scalars(self, position: int) -> list | None:
        """For a device array step that takes Python numbers a replay may change: [(argument index, register,
        dtype)], when each such number can be read from a 0-d device array of ``dtype`` with the same result,
        else None. That is the case for a ufunc call whose array operands all have one floating dtype: numpy
        (NEP 50) casts a Python number to that dtype, so a float32 array times a Python float computes in
        float32, and a float32 0-d array gives the same bits."""
        ins = self.instructions[position]
        called_ufunc = isinstance(ins.fn, np.ufunc) or (isinstance(getattr(ins.fn, "__self__", None), np.ufunc)
                                                        and _method_name(ins.fn) == "__call__")
        if ins.kind != "array" or ins.host or not called_ufunc or set(ins.kwargs) - {"out"} \
                or any(r in self.dynamic_registers for r in _scalar_refs(ins.kwargs)):
            return None
        dtypes = {self.arrays[i].dtype for i in (*_refs((ins.args, ins.kwargs)), *ins.outputs)}
        if len(dtypes) != 1 or any(type(self.arrays[i]) is np.ndarray for i in _refs((ins.args, ins.kwargs))):
            return None
        (dtype,) = dtypes
        if dtype.kind != "f":
            return None
        found = []
        for k, a in enumerate(ins.args):
            if a.__class__ is ScalarRef and a.index in self.dynamic_registers:
                value = self.registers[a.index]
                if type(value) not in (float, int) or np.result_type(dtype, value) != dtype:
                    return None
                found.append((k, a.index, dtype))
            elif a.__class__ is not Ref and a.__class__ is not ScalarRef and not isinstance(a, (float, int)):
                return None
        return found or None

    def step_reading_scalars(self, position: int, scalars: dict) -> Callable:
        """Array step ``position`` with the arrays of ``scalars`` (register -> 0-d device array) in place of
        its Python numbers (see ``device_scalars``): a step with no Python number left, which a CUDA graph can
        hold."""
        ins = self.instructions[position]
        args = tuple(scalars[a.index] if a.__class__ is ScalarRef and a.index in scalars else a for a in ins.args)
        bound = Instruction(ins.kind, ins.fn, args, ins.kwargs, ins.outputs, ins.fresh, ins.register,
                            ins.expected, ins.name, ins.label)
        bound.positions, bound.host = ins.positions, ins.host
        return self._step(position, bound)

    # -- steps -----------------------------------------------------------------------------------------
    def _step(self, position: int, ins: Instruction) -> Callable:
        arrays, registers = self.arrays, self.registers
        args, kwargs = ins.args, ins.kwargs
        if ins.kind == "guard":
            fn, expected, label = ins.fn, ins.expected, ins.label

            def guard():
                if fn(*_resolve(args, arrays, registers)) != expected:
                    raise GuardFailed(position, label)

            return guard
        if ins.kind in ("scalar", "read"):
            fn, register = ins.fn, ins.register

            def scalar():
                registers[register] = fn(*_resolve(args, arrays, registers), **_resolve(kwargs, arrays, registers))

            return scalar
        outputs = [arrays[o] for o in ins.outputs]
        fn = ins.fn
        if ins.fresh and len(outputs) == 1 and (_is_ufunc_call(fn) or _method_name(fn) in _METHODS_WITH_OUT) \
                and "out" not in kwargs:
            kwargs = dict(kwargs, out=outputs[0] if not _is_ufunc_call(fn) else (outputs[0],))
            writes_itself = True
        elif ins.fresh and _method_name(fn) == "copy" and len(args) == 1 and not kwargs:
            return functools.partial(np.copyto, outputs[0], arrays[args[0].index])
        else:
            writes_itself = not ins.fresh
        positions = ins.positions
        if _has_scalar((args, kwargs)):
            def step_with_scalars():
                result = fn(*_resolve(args, arrays, registers), **_resolve(kwargs, arrays, registers))
                if not writes_itself:
                    _copy_results(outputs, result, positions)

            return step_with_scalars
        bound_args = _resolve(args, arrays, registers)
        bound_kwargs = _resolve(kwargs, arrays, registers)
        if writes_itself:
            return functools.partial(fn, *bound_args, **bound_kwargs)

        def step_with_copy():
            _copy_results(outputs, fn(*bound_args, **bound_kwargs), positions)

        return step_with_copy

    def run(self) -> None:
        """Replays the program: resets the temporaries the capture wrote, then every step in order."""
        for array, initial in self.resets:
            np.copyto(array, initial)
        for step in self.steps:
            step()

    # -- looking inside --------------------------------------------------------------------------------
    def listing(self) -> str:
        """One line per replayed operation: its result slots, the operation, operands, shapes and dtypes."""
        lines = []
        inputs = ", ".join(f"%{i}: {self._describe(i)}" for i in self.input_slots)
        lines.append(f"inputs: {inputs or '-'}")
        externals = [i for i, s in enumerate(self.slots) if s.origin == "external" and i in self.dynamic]
        if externals:
            lines.append("external: " + ", ".join(f"%{i}: {self._describe(i)}" for i in externals))
        for position in self.live:
            lines.append(self._line(self.instructions[position]))
        return "\n".join(lines)

    def _describe(self, index: int) -> str:
        array = self.arrays[index]
        module = type(array).__module__.split(".")[0]
        place = "" if module == "numpy" else f" on {module}"
        return f"{array.dtype}{list(array.shape)}{place}"

    def _line(self, ins: Instruction) -> str:
        operands = ", ".join([_show(a) for a in ins.args] + [f"{k}={_show(v)}" for k, v in ins.kwargs.items()
                                                              if k != "out"])
        if ins.kind == "guard":
            return f"guard {ins.label}"
        if ins.register is not None:
            return f"$s{ins.register} = {ins.name}({operands})"
        if ins.host and not ins.outputs:
            return f"{ins.name}({operands}) [host]"
        targets = ", ".join(f"%{o}" for o in ins.outputs)
        kind = "" if ins.fresh else " (in place)"
        shapes = ", ".join(self._describe(o) for o in ins.outputs)
        return f"{targets} = {ins.name}({operands}){kind} : {shapes} [{self._kernel(ins)}]"

    def _kernel(self, ins: Instruction) -> str:
        """What runs the operation: gradcore's CUDA kernels, the array module (numpy, cupy), or the host (a host
        step such as a collective, ``trace.host_call``)."""
        if ins.host:
            return "host"
        if getattr(ins.fn, "__module__", "") == "gradcore.backend.kernels":
            return "gradcore kernel"
        return type(self.arrays[ins.outputs[0]]).__module__.split(".")[0] if ins.outputs else "numpy"

    def to_dot(self, name: str = "program") -> str:
        """Returns the program as Graphviz DOT text: one node per operation, edges from the slots it reads."""
        lines = [f"digraph {_dot_id(name)} {{", "  rankdir=TB;", '  node [shape=box, fontname="monospace"];']
        producer: dict = {}
        for i in self.input_slots:
            lines.append(f'  s{i} [label="input %{i}\\n{self._describe(i)}", shape=ellipse];')
            producer[i] = f"s{i}"
        for i, s in enumerate(self.slots):
            if s.origin == "external" and i in self.dynamic:
                lines.append(f'  s{i} [label="external %{i}\\n{self._describe(i)}", shape=ellipse, style=dashed];')
                producer[i] = f"s{i}"
        for position in self.live:
            ins = self.instructions[position]
            node = f"i{position}"
            label = _dot_escape(self._line(ins))
            lines.append(f'  {node} [label="{label}"{", shape=diamond" if ins.kind == "guard" else ""}];')
            for r in dict.fromkeys(_refs((ins.args, ins.kwargs))):
                source = producer.get(r) or producer.get(self.slots[r].view_of)
                if source is not None:
                    lines.append(f"  {source} -> {node};")
            for o in ins.outputs:
                producer[o] = node
            for i, s in enumerate(self.slots):
                if s.view_of in ins.outputs:
                    producer[i] = node
        lines.append("}")
        return "\n".join(lines)


def _copy_results(outputs: list, result, positions) -> None:
    if positions is not None:
        for o, k in zip(outputs, positions):
            np.copyto(o, result[k])
    elif len(outputs) == 1:
        np.copyto(outputs[0], result)
    else:
        for o, r in zip(outputs, result):
            np.copyto(o, r)


def _show(value) -> str:
    if isinstance(value, (Ref, ScalarRef)):
        return repr(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, slice):
        return ":" if value == slice(None) else f"{value.start}:{value.stop}" + (f":{value.step}" if value.step else "")
    if value is Ellipsis:
        return "..."
    return repr(value)


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _dot_id(name: str) -> str:
    return '"' + _dot_escape(name) + '"'
