"""Fusion: the one pass that merges a linear layer's product with the activation after it, forward and backward.

``fuse`` runs once over a captured program (a ``Recorder``'s instructions), before ``Program`` binds it for
replay. Eager code runs each op alone, as PyTorch eager does; the captured program shows which values have no
other reader, and that is what fusion needs. On the CUDA backends (CuPy, or the CuPy test double with our
kernels emulated) the eager ops call our kernels (``gradcore/backend/kernels.py``), each call one instruction,
and the pass rewrites these patterns:

Forward: ``z = x @ W.T (+ b)``, Linear's product (``matmul`` of ``x`` and ``W``'s transposed view, then the
bias added in place, or our GEMM's ``linear_forward``), read only by ``clamp_forward`` (ReLU, clamp) or
``sigmoid_forward``, becomes ``linear_forward(x, W, b, activation)``: our GEMM with bias and activation in its
epilogue, where ``kernels.product_path`` chooses our GEMM for the shape; where it chooses cuBLAS the product
stays and ``bias_activation`` adds the bias and applies the activation in one pass. A clamp's pre-activation,
which its backward reads, is written by the fused kernel too.

Backward: the activation's derivative (``relu_backward``, ``sigmoid_backward``, ``clamp_backward``) whose
result ``dz`` is read only by Linear's backward (``dz @ W``, ``dz.T @ x``, ``dz.sum(0)``, or our GEMM's
``linear_backward``) becomes one ``linear_backward`` with the derivative in the GEMM's prologue and the bias
gradient summed by the weight-gradient launch, where ``product_path`` chooses our GEMM; where it chooses cuBLAS,
``activation_backward`` computes ``dz`` and the bias gradient's row sums in one pass before cuBLAS's products.

A value fuses away only when nothing else reads it: no other instruction, no output of the call, no persistent
state (``protected`` slots). Buffers that no instruction uses any more are dropped. On the CPU (numpy) no op
calls our kernels and the program is left as it is.
"""
from __future__ import annotations

from ..backend import kernels
from .trace import Instruction, Recorder, Ref, leaves

__all__ = ["fuse"]

_KERNEL_MODULE = "gradcore.backend.kernels"
_DERIVATIVES = {"relu_backward": "relu", "sigmoid_backward": "sigmoid", "clamp_backward": "clamp"}
_DTYPES = ("float32", "float64")


def _is_kernel(ins: Instruction, *names: str) -> bool:
    return ins.kind == "array" and ins.name in names and getattr(ins.fn, "__module__", "") == _KERNEL_MODULE


def _ref(value) -> int | None:
    return value.index if value.__class__ is Ref else None


class _Graph:
    """Who reads and writes each slot (views counted as their base), over the instructions of a capture."""

    def __init__(self, recorder: Recorder) -> None:
        self.slots = recorder.slots
        self.instructions = recorder.instructions
        self.readers: dict = {}
        self.writers: dict = {}
        self.views: dict = {}  # view slot -> the view instruction that made it
        for position, ins in enumerate(self.instructions):
            if ins.kind == "view":
                self.views[ins.outputs[0]] = ins
                continue
            operands = (ins.args, {k: v for k, v in ins.kwargs.items() if k != "out"})
            for index in {v.index for v in leaves(operands) if v.__class__ is Ref}:
                self.readers.setdefault(self.base(index), []).append(position)
            for index in ins.outputs:
                self.writers.setdefault(self.base(index), []).append(position)

    def base(self, index: int) -> int:
        while self.slots[index].view_of is not None:
            index = self.slots[index].view_of
        return index

    def array(self, index: int):
        return self.slots[index].array

    def transposed_of(self, index: int) -> int | None:
        """The slot that ``index`` is the ``.T`` view of, or None."""
        ins = self.views.get(index)
        if ins is None or ins.name != "T" or len(ins.args) != 1 or _ref(ins.args[0]) is None:
            return None
        return ins.args[0].index

    def untouched(self, slots, start: int, stop: int) -> bool:
        """Whether no instruction in positions [start, stop] writes any of ``slots`` (None entries skipped)."""
        for index in slots:
            if index is not None and any(start <= p <= stop for p in self.writers.get(self.base(index), ())):
                return False
        return True


class _Fusion:
    def __init__(self, recorder: Recorder, protected: set, boundary: int | None) -> None:
        self.graph = _Graph(recorder)
        self.protected = {self.graph.base(i) for i in protected}  # a view seen outside shows its base too
        self.boundary = boundary
        self.removed: set = set()
        self.replaced: dict = {}  # position -> new instruction

    # -- checks ----------------------------------------------------------------------------------------
    def temporary(self, index: int) -> bool:
        """Whether a slot is a value the program computes for itself: not an input, output or persistent state."""
        slot = self.graph.slots[index]
        return slot.origin == "computed" and slot.view_of is None and index not in self.protected

    def same_side(self, *positions: int) -> bool:
        """Whether the positions are all in the forward or all in the captured backward."""
        if self.boundary is None:
            return True
        return len({p < self.boundary for p in positions}) == 1

    def free(self, *positions: int) -> bool:
        return not any(p in self.removed or p in self.replaced for p in positions)

    @staticmethod
    def fits(*arrays) -> bool:
        return all(a is None or (a.ndim in (1, 2) and str(a.dtype) in _DTYPES) for a in arrays) and \
            len({str(a.dtype) for a in arrays if a is not None}) == 1

    # -- forward ---------------------------------------------------------------------------------------
    def forward(self, position: int, ins: Instruction) -> None:
        g = self.graph
        z = _ref(ins.args[0]) if ins.args else None
        if z is None or not self.temporary(z):
            return
        if ins.name == "sigmoid_forward":
            activation, low, high = "sigmoid", None, None
        else:
            low, high = (tuple(ins.args[1:3]) + (None, None))[:2]
            activation = "clamp"
        launcher = ins.kwargs.get("launcher")
        writers = g.writers.get(z, [])
        product = self.instructions(writers)
        if product is None:
            return
        kind, x, w, b, first = product
        readers = set(g.readers.get(z, ())) - set(writers) - {position}
        if activation == "clamp" and not readers and low == 0 and high is None and type(low) is int:
            activation = "relu"  # relu's clamp_forward(z, 0, None): nothing else needs the pre-activation
        for p in readers:  # only the clamp's own derivative may read the pre-activation, which its kernel writes
            other = g.instructions[p]
            if activation != "clamp" or p < position or not _is_kernel(other, "clamp_backward") or \
                    len(other.args) < 2 or _ref(other.args[1]) != z:
                return
        if not (self.free(position, *writers) and self.same_side(position, *writers)
                and g.untouched((x, w, b), first, position)):
            return
        xa, wa = g.array(x), g.array(w)
        ba = None if b is None else g.array(b)
        if xa.ndim != 2 or wa.ndim != 2 or not self.fits(xa, wa, ba) or \
                (ba is not None and ba.shape != (wa.shape[0],)):
            return
        (m, k), n = xa.shape, wa.shape[0]
        outputs = (ins.outputs[0], z) if readers else (ins.outputs[0],)
        bounds = {"clamp_min": low, "clamp_max": high} if activation == "clamp" else {}
        if kernels.product_path(m, k, n, str(xa.dtype)) == "gemm":
            fused = Instruction("array", kernels.linear_forward, (Ref(x), Ref(w), None if b is None else Ref(b)),
                                {"activation": activation, **bounds, "launcher": launcher}, outputs, True,
                                name="linear_forward")
            self.removed.update(writers)
        elif kind == "matmul" and b is not None:
            fused = Instruction("array", kernels.bias_activation, (Ref(z), Ref(b)),
                                {"activation": activation, **bounds, "launcher": launcher}, outputs, True,
                                name="bias_activation")
            self.removed.update(writers[1:])  # cuBLAS's product stays
        else:
            return
        fused.positions = tuple(range(len(outputs)))
        self.replaced[position] = fused

    def instructions(self, writers: list):
        """Linear's product among the writers of a slot: ("matmul" or "linear_forward", x, w, b, position)."""
        g = self.graph
        if not writers:
            return None
        first = g.instructions[writers[0]]
        if _is_kernel(first, "linear_forward") and len(writers) == 1:
            args = first.args
            activation = args[3] if len(args) > 3 else first.kwargs.get("activation", "none")
            if first.positions != (0,) or not 2 <= len(args) <= 4 or activation != "none":
                return None
            x, w = _ref(args[0]), _ref(args[1])
            bias = args[2] if len(args) > 2 else first.kwargs.get("bias")
            b = _ref(bias)
            if x is None or w is None or (bias is not None and b is None):
                return None
            return "linear_forward", x, w, b, writers[0]
        if first.name != "matmul" or not first.fresh or first.kwargs or len(first.args) != 2 or len(writers) > 2:
            return None
        x, transposed = _ref(first.args[0]), _ref(first.args[1])
        w = None if transposed is None else g.transposed_of(transposed)
        if x is None or w is None:
            return None
        b = None
        if len(writers) == 2:
            add = g.instructions[writers[1]]
            z = first.outputs[0]
            if not (add.name == "add" and not add.fresh and len(add.args) == 2 and _ref(add.args[0]) == z
                    and _ref(add.args[1]) is not None and add.outputs == (z,)):
                return None
            b = add.args[1].index
        return "matmul", x, w, b, writers[0]

    # -- backward --------------------------------------------------------------------------------------
    def backward(self, position: int, ins: Instruction) -> None:
        g = self.graph
        activation = _DERIVATIVES[ins.name]
        if len(ins.args) < 2 or ins.positions is not None or len(ins.outputs) != 1:
            return
        grad, saved = _ref(ins.args[0]), _ref(ins.args[1])
        dz = ins.outputs[0]
        if grad is None or saved is None or not self.temporary(dz) or g.writers.get(dz) != [position]:
            return
        low, high = (tuple(ins.args[2:4]) + (None, None))[:2] if activation == "clamp" else (None, None)
        launcher = ins.kwargs.get("launcher")
        consumers = self.consumers(dz)
        if consumers is None:
            return
        positions = sorted(p for name, p in consumers.items() if name not in ("x", "w"))
        if not positions or not (self.free(position, *positions) and self.same_side(position, *positions)):
            return
        dza = g.array(dz)
        derivative = {"saved": Ref(saved), "activation": activation}
        if activation == "clamp":
            derivative.update(clamp_min=low, clamp_max=high)
        if "linear_backward" in consumers:
            lb = g.instructions[consumers["linear_backward"]]
            x, w = lb.args[1], lb.args[2]
            operand = g.array(x.index) if x.__class__ is Ref else (g.array(w.index) if w.__class__ is Ref else None)
            if operand is None or kernels.product_path(dza.shape[0], dza.shape[1], operand.shape[1],
                                                       str(dza.dtype)) != "gemm":
                return
            if not g.untouched((_ref(x), _ref(w)), position, positions[-1]):
                return
            fused = Instruction("array", kernels.linear_backward, (Ref(grad), x, w),
                                {**derivative, "needs_input_grad": lb.kwargs.get("needs_input_grad", (True,) * 3),
                                 "launcher": launcher}, lb.outputs, True, name="linear_backward")
            fused.positions = lb.positions
        else:
            x = consumers.get("x")  # dz.T @ x
            w = consumers.get("w")  # dz @ w
            operand = g.array(x) if x is not None else (g.array(w) if w is not None else None)
            path = None if operand is None else kernels.product_path(dza.shape[0], dza.shape[1], operand.shape[1],
                                                                    str(dza.dtype))
            if path == "gemm" and set(consumers) <= {"gx", "gw", "gb", "x", "w"} and \
                    g.untouched((x, w), position, positions[-1]):
                needs = tuple(name in consumers for name in ("gx", "gw", "gb"))
                outputs = tuple(g.instructions[consumers[name]].outputs[0] for name in ("gx", "gw", "gb")
                                if name in consumers)
                fused = Instruction("array", kernels.linear_backward,
                                    (Ref(grad), None if x is None else Ref(x), None if w is None else Ref(w)),
                                    {**derivative, "needs_input_grad": needs, "launcher": launcher}, outputs, True,
                                    name="linear_backward")
                fused.positions = tuple(k for k, need in enumerate(needs) if need)
            elif "gb" in consumers:
                # cuBLAS keeps the products; the derivative and the bias gradient's row sums take one pass.
                total = g.instructions[consumers["gb"]].outputs[0]
                args = (Ref(grad), Ref(saved), activation) + ((low, high) if activation == "clamp" else ())
                fused = Instruction("array", kernels.activation_backward, args,
                                    {"column_sums": True, "launcher": launcher}, (dz, total), True,
                                    name="activation_backward")
                fused.positions = (0, 1)
                positions = [consumers["gb"]]
            else:
                return
        if not self.fits(dza, g.array(grad), g.array(saved)) or dza.ndim != 2:
            return
        self.removed.update(positions)
        self.replaced[position] = fused

    def consumers(self, dz: int) -> dict | None:
        """Linear's backward among the readers of ``dz``: {"linear_backward": position} or positions of "gx"
        (dz @ w), "gw" (dz.T @ x) and "gb" (dz.sum(0)), with the slots "x" and "w"; None for anything else."""
        g = self.graph
        found: dict = {}
        dz_shape = g.array(dz).shape
        for p in g.readers.get(dz, ()):
            ins = g.instructions[p]
            if _is_kernel(ins, "linear_backward") and _ref(ins.args[0]) == dz and len(ins.args) == 3 \
                    and "saved" not in ins.kwargs and "linear_backward" not in found:
                found["linear_backward"] = p
                continue
            if not ins.fresh or len(ins.outputs) != 1 or ins.positions is not None:
                return None
            args = ins.args
            if ins.name == "matmul" and len(args) == 2 and not ins.kwargs and _ref(args[0]) == dz \
                    and _ref(args[1]) is not None and "gx" not in found:
                w = args[1].index
                if g.slots[w].view_of is not None or g.array(w).ndim != 2 or g.array(w).shape[0] != dz_shape[1]:
                    return None
                found["gx"], found["w"] = p, w
            elif ins.name == "matmul" and len(args) == 2 and not ins.kwargs and _ref(args[0]) is not None \
                    and g.transposed_of(args[0].index) == dz and _ref(args[1]) is not None and "gw" not in found:
                x = args[1].index
                if g.slots[x].view_of is not None or g.array(x).ndim != 2 or g.array(x).shape[0] != dz_shape[0]:
                    return None
                found["gw"], found["x"] = p, x
            elif ins.name == "sum" and _ref(args[0]) == dz and len(args) == 2 and args[1] == 0 \
                    and type(args[1]) is int and not ins.kwargs and "gb" not in found:
                found["gb"] = p
            else:
                return None
        if "linear_backward" in found and len(found) > 1:
            return None
        if "gx" in found and "gw" in found and g.array(found["w"]).shape[1] != g.array(found["x"]).shape[1]:
            return None
        return found or None

    # -- the pass --------------------------------------------------------------------------------------
    def run(self) -> None:
        for position, ins in enumerate(self.graph.instructions):
            if _is_kernel(ins, "clamp_forward", "sigmoid_forward") and ins.positions is None:
                self.forward(position, ins)
        for position, ins in enumerate(self.graph.instructions):
            if _is_kernel(ins, *_DERIVATIVES) and self.free(position):
                self.backward(position, ins)


def fuse(recorder: Recorder, protected: set, boundary: int | None = None) -> int | None:
    """Rewrites ``recorder.instructions`` in place (see the module docstring) and returns the new ``boundary``.

    ``protected``: slots whose values are seen outside the program (outputs of the call, gradients it returns,
    persistent state); they are never fused away. ``boundary``: where the captured backward begins (None for a
    program without one); no fusion crosses it.
    """
    instructions = recorder.instructions
    if not any(getattr(ins.fn, "__module__", "") == _KERNEL_MODULE for ins in instructions):
        return boundary  # the CPU, or a program with no kernel calls: nothing to fuse
    fusion = _Fusion(recorder, protected, boundary)
    fusion.run()
    if not fusion.replaced:
        return boundary
    rewritten = []
    new_boundary = boundary
    for position, ins in enumerate(instructions):
        if position in fusion.replaced:
            rewritten.append(fusion.replaced[position])
        elif position in fusion.removed:
            if boundary is not None and position < boundary:
                new_boundary -= 1
        else:
            rewritten.append(ins)
    instructions[:] = rewritten
    _drop_unused(recorder, protected)
    return new_boundary


def _drop_unused(recorder: Recorder, protected: set) -> None:
    """Gives the slots that no instruction reads or writes any more (fused-away temporaries, and their views) an
    empty array, so that the program allocates no buffer for them."""
    slots = recorder.slots
    used: set = set()
    for ins in recorder.instructions:
        if ins.kind != "view":
            used.update(v.index for v in leaves((ins.args, ins.kwargs)) if v.__class__ is Ref)
            used.update(ins.outputs)

    def base(index: int) -> int:
        while slots[index].view_of is not None:
            index = slots[index].view_of
        return index

    kept = {base(i) for i in used} | {base(i) for i in protected}
    dropped = {i for i, s in enumerate(slots) if s.origin in ("computed", "view") and base(i) not in kept
               and slots[base(i)].origin == "computed"}
    if not dropped:
        return
    recorder.instructions[:] = [ins for ins in recorder.instructions
                                if not (ins.kind == "view" and ins.outputs[0] in dropped)]
    for i in dropped:
        slots[i].array = slots[i].array.reshape(-1)[:0]
