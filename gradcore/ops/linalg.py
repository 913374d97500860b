"""Matrix products: mm, matmul (1-d, 2-d and batched with broadcasting), bmm, dot."""
from __future__ import annotations

from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..backend import kernels
from ._util import Tensor, array_module, check_same_device, make_tensor, meta, reduce_grad

__all__ = ["mm", "matmul", "bmm", "dot", "linear", "einsum"]

_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half", "int64": "long int", "int32": "int"}


def _check_dtypes(a: Tensor, b: Tensor, names=("m1", "m2")) -> None:
    if a._data.dtype != b._data.dtype:
        raise RuntimeError(
            f"expected {names[0]} and {names[1]} to have the same dtype, but got: "
            f"{_NAMES.get(a.dtype.name, a.dtype.name)} != {_NAMES.get(b.dtype.name, b.dtype.name)}"
        )


def _check_operands(name: str, a, b) -> None:
    for pos, (arg, x) in enumerate((("input", a), ("mat2" if name in ("mm", "bmm") else "other", b))):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}(): argument '{arg}' (position {pos + 1}) must be Tensor, not {type(x).__name__}")
    check_same_device(a, b)


# -- our GEMM kernel or cuBLAS ---------------------------------------------------------------------------
# On a CUDA device a product runs our kernel (kernels/gemm.cu) only where ``kernels.product_path`` says it beats
# cuBLAS (the ``@`` of CuPy) for its shape: the one place where that is chosen, from what benchmarks/gpu.py
# measured on a GPU. Nothing is measured yet, so every product on a GPU stays with cuBLAS.

def _on_our_gemm(m: int, k: int, n: int, dtype) -> bool:
    """Whether an (m x k) @ (k x n) product goes to our GEMM rather than cuBLAS (where its arrays can)."""
    return kernels.product_path(m, k, n, str(dtype)) == "gemm"


def _gemm_launcher(m: int, k: int, n: int, *arrays):
    """Returns the launcher that runs our GEMM on ``arrays`` (None entries skipped), or None for cuBLAS/numpy."""
    present = [a for a in arrays if a is not None]
    if not _on_our_gemm(m, k, n, present[0].dtype):
        return None
    return kernels.runs_on(*present)


class Mm(Function):
    node_name = "MmBackward0"
    builtin = True
    operands = 2

    @staticmethod
    def forward(ctx, a, b):
        needs = ctx.needs_input_grad
        if needs[0] or needs[1]:
            ctx.save_for_backward(a if needs[1] else None, b if needs[0] else None)
        (m, k), n = a._data.shape, b._data.shape[1]
        launcher = _gemm_launcher(m, k, n, a._data, b._data)
        if launcher is not None:
            return kernels.gemm(a._data, b._data, launcher=launcher)
        return a._data @ b._data

    @staticmethod
    def backward(ctx, grad):
        # Both gradients are products through Mm again, so they take the same kernel-or-cuBLAS choice (the
        # kernel reads the transposed operands where they lie) and stay differentiable for create_graph.
        a, b = ctx.saved_tensors
        needs = ctx.needs_input_grad
        inner = a._data.shape[1] if a is not None else b._data.shape[0]
        rows, columns = grad._data.shape
        if not is_grad_enabled() and _gemm_launcher(rows, columns, inner, grad._data) is None:
            # No graph to record (no create_graph): the array module's products, without two more ops' nodes.
            g = grad._data
            return (make_tensor(g @ b._data.T) if needs[0] else None,
                    make_tensor(a._data.T @ g) if needs[1] else None)
        ga = Mm.apply(grad, b.t()) if needs[0] else None
        gb = Mm.apply(a.t(), grad) if needs[1] else None
        return ga, gb


# The C++ type names that PyTorch's products name dtypes by in their errors about ``out=``.
_CPP_TYPE_NAMES = {"float16": "c10::Half", "float32": "float", "float64": "double", "int64": "long int",
                   "int32": "int", "int16": "short int", "int8": "signed char", "uint8": "unsigned char",
                   "bool": "bool"}

def _product_out(name: str, input, other, out, product):
    """``product()`` written into ``out`` as PyTorch's matmul, mm and bmm do: ``out`` must be a tensor of the
    result's dtype (no casting), and no operand may require grad; a shape that differs resizes ``out``."""
    from .elementwise import write_out

    if not isinstance(out, Tensor):
        if name == "matmul":
            raise TypeError(f"matmul(): argument 'out' must be Tensor, not {type(out).__name__}")
        from .._arg_errors import _signatures, keyword_error

        raise keyword_error(name, _signatures("(Tensor input, Tensor mat2, *, Tensor out = None)",
                                              "(Tensor input, Tensor mat2, torch.dtype out_dtype, *, Tensor out "
                                              "= None)"), (input, other), {"out": out})
    if is_grad_enabled() and (input.requires_grad or other.requires_grad or out.requires_grad):
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic "
                           "differentiation, but one of the arguments requires grad.")
    result = product()
    if result.dtype is not out.dtype:
        raise RuntimeError(f"Expected out tensor to have dtype {_CPP_TYPE_NAMES[result.dtype.name]}, but got "
                           f"{_CPP_TYPE_NAMES[out.dtype.name]} instead")
    return write_out(result, out, name)


def mm(input, mat2, *, out=None):
    """Returns the product of two matrices (2-d tensors) (written into ``out`` when given)."""
    _check_operands("mm", input, mat2)
    shape_a, shape_b = input._data.shape, mat2._data.shape
    if len(shape_a) != 2:
        raise RuntimeError(f"self must be a matrix (got a {input.ndim}-D tensor of shape {list(input.shape)})")
    if len(shape_b) != 2:
        raise RuntimeError(f"mat2 must be a matrix (got a {mat2.ndim}-D tensor of shape {list(mat2.shape)})")
    (n, k), (k2, m) = shape_a, shape_b
    if k != k2:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({n}x{k} and {k2}x{m})")
    _check_dtypes(input, mat2, ("m1", "m2"))
    if out is not None:
        return _product_out("mm", input, mat2, out, lambda: Mm.apply(input, mat2))
    return Mm.apply(input, mat2)


class Matmul(Function):
    node_name = "MatmulBackward0"
    builtin = True
    operands = 2

    @staticmethod
    def forward(ctx, a, b):
        ctx.meta = (meta(a), meta(b))
        needs = ctx.needs_input_grad
        if needs[0] or needs[1]:
            ctx.save_for_backward(a if needs[1] else None, b if needs[0] else None)
        return array_module(a._data).matmul(a._data, b._data)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        (shape_a, dtype_a), (shape_b, dtype_b) = ctx.meta
        ga = gb = None
        if len(shape_a) == 1 and len(shape_b) == 1:
            ga = grad * b if ctx.needs_input_grad[0] else None
            gb = grad * a if ctx.needs_input_grad[1] else None
            return ga, gb
        # Give 1-d operands their matrix shape, then the gradient is that of a (batched) matrix product.
        g = grad
        if len(shape_a) == 1:
            g = g.unsqueeze(-2)
        if len(shape_b) == 1:
            g = g.unsqueeze(-1)
        if ctx.needs_input_grad[0]:
            b2 = b.unsqueeze(-1) if len(shape_b) == 1 else b
            ga = g.matmul(b2.transpose(-1, -2))
            if len(shape_a) == 1:
                ga = ga.squeeze(-2)
            ga = reduce_grad(ga, shape_a, dtype_a)
        if ctx.needs_input_grad[1]:
            a2 = a.unsqueeze(-2) if len(shape_a) == 1 else a
            gb = a2.transpose(-1, -2).matmul(g)
            if len(shape_b) == 1:
                gb = gb.squeeze(-1)
            gb = reduce_grad(gb, shape_b, dtype_b)
        return ga, gb


class Bmm(Matmul):
    """bmm: the batched product of Matmul under PyTorch's node name."""

    node_name = "BmmBackward0"


def _matmul_shape_error(a: Tensor, b: Tensor) -> RuntimeError:
    sa, sb = a.shape, b.shape
    if len(sa) == 1 and len(sb) == 1:
        return RuntimeError(
            f"inconsistent tensor size, expected tensor [{sa[0]}] and src [{sb[0]}] to have the same number of "
            f"elements, but got {sa[0]} and {sb[0]} elements respectively"
        )
    rows_a = sa[-2] if len(sa) > 1 else 1
    cols_b = sb[-1] if len(sb) > 1 else 1
    inner_b = sb[-2] if len(sb) > 1 else sb[0]
    return RuntimeError(
        f"mat1 and mat2 shapes cannot be multiplied ({rows_a}x{sa[-1]} and {inner_b}x{cols_b}) "
        f"(operand shapes {list(sa)} and {list(sb)})"
    )


def matmul(input, other, *, out=None):
    """Matrix product with NumPy's rules: dot for 1-d, matrix product for 2-d, broadcast batches beyond (written
    into ``out`` when given)."""
    _check_operands("matmul", input, other)
    if input.ndim == 0 or other.ndim == 0:
        raise RuntimeError(
            f"both arguments to matmul need to be at least 1D, but they are {input.ndim}D and {other.ndim}D"
        )
    inner_b = other.shape[-2] if other.ndim > 1 else other.shape[0]
    if input.shape[-1] != inner_b:
        raise _matmul_shape_error(input, other)
    if input.ndim > 2 or other.ndim > 2:
        from ._util import broadcast_shapes

        try:
            broadcast_shapes(input.shape[:-2], other.shape[:-2])
        except RuntimeError as exc:
            raise RuntimeError(f"matmul: batch dimensions of {list(input.shape)} and {list(other.shape)} "
                               f"do not broadcast: {exc}") from None
    _check_dtypes(input, other, ("m1", "m2"))
    if out is not None:
        return _product_out("matmul", input, other, out, lambda: matmul(input, other))
    if input.ndim == 2 and other.ndim == 2:
        return Mm.apply(input, other)
    return Matmul.apply(input, other)


def bmm(input, mat2, *, out=None):
    """Batched matrix product of two 3-d tensors with equal batch sizes (written into ``out`` when given)."""
    _check_operands("bmm", input, mat2)
    if input.ndim != 3 or mat2.ndim != 3:
        raise RuntimeError(f"batch1 and batch2 must be 3D tensors, got {input.ndim}D and {mat2.ndim}D")
    if input.shape[0] != mat2.shape[0] or input.shape[2] != mat2.shape[1]:
        raise RuntimeError(
            f"Expected size for first two dimensions of batch2 tensor to be: [{input.shape[0]}, {input.shape[2]}] "
            f"but got: [{mat2.shape[0]}, {mat2.shape[1]}]."
        )
    _check_dtypes(input, mat2, ("m1", "m2"))
    if out is not None:
        return _product_out("bmm", input, mat2, out, lambda: Bmm.apply(input, mat2))
    return Bmm.apply(input, mat2)


def dot(input, other):
    """Returns the dot product of two 1-d tensors."""
    _check_operands("dot", input, other)
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    if input.shape != other.shape:
        raise _matmul_shape_error(input, other)
    _check_dtypes(input, other, ("self", "tensor"))
    return Matmul.apply(input, other)


class Linear(Function):
    """``input @ weight.T + bias`` as one op, as PyTorch's addmm: the weight and bias gradients come out as
    new arrays of the parameters' own layout, which the leaves keep without copying."""

    node_name = "AddmmBackward0"
    builtin = True
    operands = 3

    @staticmethod
    def forward(ctx, x, weight, bias):
        needs = ctx.needs_input_grad
        if needs[0] or needs[1]:
            ctx.save_for_backward(x if needs[1] else None, weight if needs[0] else None)
        ctx.bias_meta = meta(bias)
        x_data, w_data = x._data, weight._data
        b_data = None if bias is None else bias._data
        # The kernels take a 2-d input and a bias of the output's width; other shapes keep the matmul code.
        fits = x_data.ndim == 2 and (b_data is None or b_data.shape == (w_data.shape[0],))
        launcher = _gemm_launcher(x_data.shape[0], x_data.shape[-1], w_data.shape[0], x_data, w_data, b_data) \
            if fits else None
        ctx.on_kernels = launcher is not None
        if launcher is not None:
            out, _ = kernels.linear_forward(x_data, w_data, b_data, launcher=launcher)
            return out
        out = array_module(x_data).matmul(x_data, w_data.T)
        if bias is not None:
            out += b_data
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad
        # The kernels' gradients have no history, so they serve only where no graph is being recorded.
        launcher = None
        if ctx.on_kernels and not is_grad_enabled():
            launcher = kernels.runs_on(grad._data, *(t._data for t in (x, weight) if t is not None))
        if launcher is not None:
            grads = kernels.linear_backward(grad._data, None if x is None else x._data,
                                            None if weight is None else weight._data,
                                            needs_input_grad=needs, launcher=launcher)
            return tuple(None if g is None else make_tensor(g) for g in grads)
        if not is_grad_enabled() and grad.ndim == 2 and (ctx.bias_meta is None or ctx.bias_meta[0] == grad.shape[1:]):
            # No graph to record (no create_graph): the array module's products, without the ops' nodes.
            g = grad._data
            return (make_tensor(g @ weight._data) if needs[0] else None,
                    make_tensor(g.T @ x._data) if needs[1] else None,
                    make_tensor(g.sum(0)) if needs[2] else None)
        grad_x = grad.matmul(weight) if needs[0] else None
        rows = grad.reshape(-1, grad.shape[-1]) if grad.ndim != 2 else grad
        grad_weight = rows.t().mm(x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x) if needs[1] else None
        grad_bias = reduce_grad(rows.sum(0), *ctx.bias_meta) if needs[2] else None
        return grad_x, grad_weight, grad_bias


class LinearNoBias(Linear):
    node_name = "MmBackward0"


def linear(input, weight, bias=None):
    """Returns ``input @ weight.T + bias`` (bias optional) for a 2-d weight; the input may have leading dims."""
    _check_linear(input, weight, bias)
    return _apply_linear(input, weight, bias)


def _apply_linear(input, weight, bias):
    """Records linear on checked operands: AddmmBackward0 with a bias, MmBackward0 without, as PyTorch names them."""
    return (Linear if bias is not None else LinearNoBias).apply(input, weight, bias)


def _check_linear(input, weight, bias) -> None:
    """Raises PyTorch's errors for operands of linear that do not fit together."""
    _check_operands("linear", input, weight)
    if weight.ndim != 2 or input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        if weight.ndim == 2 and input.ndim >= 1:
            rows = input.numel() // max(input.shape[-1], 1) if input.shape[-1] else input.shape[0]
            raise RuntimeError(
                f"mat1 and mat2 shapes cannot be multiplied ({rows}x{input.shape[-1]} and "
                f"{weight.shape[1]}x{weight.shape[0]})"
            )
        raise RuntimeError(f"linear: expected a 2-d weight and an input of at least 1 dim, got weight "
                           f"{list(weight.shape)} and input {list(input.shape)}")
    _check_dtypes(input, weight, ("m1", "m2"))
    if bias is not None:
        if not isinstance(bias, Tensor):
            raise TypeError(f"linear(): argument 'bias' must be Tensor, not {type(bias).__name__}")
        check_same_device(input, bias)
        if bias.shape not in ((weight.shape[0],), (), (1,)):
            raise RuntimeError(
                f"The size of tensor a ({weight.shape[0]}) must match the size of tensor b ({bias.shape[-1]}) "
                "at non-singleton dimension 1"
            )
        _check_dtypes(input, bias, ("m1", "bias"))


# -- einsum ---------------------------------------------------------------------------------------

def _einsum_spec(equation: str, operands: tuple):
    """Parses an einsum equation into explicit subscripts: a string of letters per operand and for the output.

    An ellipsis becomes letters the equation does not use, right-aligned across operands (so that batch dims
    broadcast); an equation without ``->`` gets PyTorch's implicit output, the ellipsis dims and then the letters
    used once, in alphabetical order.
    """
    import string

    equation = equation.replace(" ", "")
    if "->" in equation:
        left, output = equation.split("->")
    else:
        left, output = equation, None
    inputs = left.split(",")
    if len(inputs) != len(operands):
        raise RuntimeError(f"einsum(): {'fewer' if len(inputs) > len(operands) else 'more'} operands were provided "
                           "than specified in the equation")
    used = set(equation) - set(".,->")
    for ch in used:
        if ch not in string.ascii_letters:
            raise RuntimeError(f"einsum(): invalid subscript given at index {equation.index(ch)} in the equation "
                               f"string, subscripts must be in [a-zA-Z]")
    spare = [c for c in string.ascii_letters if c not in used]
    batch_ranks = []
    for sub, op in zip(inputs, operands):
        explicit = len(sub.replace("...", ""))
        if "..." in sub:
            batch_ranks.append(op.ndim - explicit)
            if op.ndim < explicit:
                raise RuntimeError(f"einsum(): the number of subscripts in the equation ({explicit}) is more than "
                                   f"the number of dimensions ({op.ndim}) for operand {len(batch_ranks) - 1}")
        else:
            batch_ranks.append(0)
            if explicit != op.ndim:
                raise RuntimeError(f"einsum(): the number of subscripts in the equation ({explicit}) does not match "
                                   f"the number of dimensions ({op.ndim}) for operand {len(batch_ranks) - 1} and no "
                                   "ellipsis was given")
    width = max(batch_ranks, default=0)
    batch = "".join(spare[:width])
    explicit_inputs = [sub.replace("...", batch[width - rank:]) for sub, rank in zip(inputs, batch_ranks)]
    if output is None:
        letters = "".join(explicit_inputs)
        once = sorted(c for c in set(letters) if letters.count(c) == 1 and c not in batch)
        output = batch + "".join(once)
    else:
        output = output.replace("...", batch)
        for ch in output:
            if ch not in "".join(explicit_inputs):
                raise RuntimeError(f"einsum(): output subscript {ch} does not appear in the equation for any input "
                                   "operand")
            if output.count(ch) > 1:
                raise RuntimeError(f"einsum(): output subscript {ch} appears more than once in the output")
    return explicit_inputs, output


def _einsum_sizes(inputs: list, operands: tuple) -> dict:
    """Returns each letter's size; size-1 dims broadcast, other mismatches raise."""
    sizes: dict = {}
    for sub, op in zip(inputs, operands):
        for ch, n in zip(sub, op.shape):
            have = sizes.get(ch, 1)
            if have != n and have != 1 and n != 1:
                raise RuntimeError(f"einsum(): operands do not broadcast with remapped shapes (original->remapped): "
                                   + " ".join(str(list(o.shape)) for o in operands))
            sizes[ch] = max(have, n) if n != 1 else have
    return sizes


class Einsum(Function):
    """``einsum`` over explicit subscripts; the gradient of each operand is another einsum of the others."""

    node_name = "EinsumBackward0"
    builtin = True
    operands = -1

    @staticmethod
    def forward(ctx, spec, *operands):
        inputs, output = spec
        sizes = _einsum_sizes(inputs, operands)
        xp = array_module(operands[0]._data)
        arrays = [xp.broadcast_to(op._data, tuple(sizes[c] for c in sub)) for sub, op in zip(inputs, operands)]
        ctx.spec, ctx.sizes = spec, sizes
        ctx.save_for_backward(*operands)
        out = xp.einsum(f"{','.join(inputs)}->{output}", *arrays, optimize=len(arrays) > 2)
        return xp.asarray(out)

    @staticmethod
    def backward(ctx, grad):
        inputs, output = ctx.spec
        operands = ctx.saved_tensors
        grads = [None]
        for i, (sub, op) in enumerate(zip(inputs, operands)):
            if not ctx.needs_input_grad[i + 1]:
                grads.append(None)
                continue
            others = [o for j, o in enumerate(operands) if j != i]
            other_subs = [s for j, s in enumerate(inputs) if j != i]
            present = set(output).union(*other_subs) if other_subs else set(output)
            # Letters of this operand found nowhere else were summed out: their gradient is a broadcast.
            kept = "".join(dict.fromkeys(c for c in sub if c in present))
            g = einsum(f"{','.join([output] + other_subs)}->{kept}", grad, *others)
            unique = "".join(dict.fromkeys(sub))
            full = tuple(ctx.sizes[c] for c in unique)
            if kept != unique:
                g = g.reshape(tuple(ctx.sizes[c] if c in kept else 1 for c in unique)) if kept else g.reshape(
                    (1,) * len(unique))
                # The kept letters are in this operand's order, so the reshape above only inserts ones.
                g = g.expand(full)
            if unique != sub:
                # A repeated letter (a diagonal): place the gradient on that diagonal of zeros.
                # Each axis of this operand reads the arange of its letter, broadcast over the unique letters.
                xp = array_module(g._data)
                target = xp.zeros(tuple(ctx.sizes[c] for c in sub), dtype=g._data.dtype)
                grids = []
                for c in sub:
                    shape = [1] * len(unique)
                    shape[unique.index(c)] = ctx.sizes[c]
                    grids.append(xp.arange(ctx.sizes[c]).reshape(shape))
                target[tuple(grids)] = g._data
                g = make_tensor(target)
            grads.append(reduce_grad(g, op.shape, op._data.dtype))
        return tuple(grads)


def einsum(equation: str, *operands):
    """Returns the sum of products of ``operands``' elements over the indices named by ``equation`` (as in
    ``'ij,jk->ik'``)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise RuntimeError("einsum(): must provide at least one operand")
    for i, op in enumerate(operands):
        if not isinstance(op, Tensor):
            raise TypeError(f"einsum(): argument 'operands' must be tuple of Tensors, not {type(op).__name__}")
    check_same_device(*operands)
    inputs, output = _einsum_spec(equation, operands)
    dtypes = {op.dtype for op in operands}
    if len(dtypes) > 1:
        names = sorted(str(d).replace("gradcore.", "") for d in dtypes)
        raise RuntimeError(f"expected scalar type {names[0].capitalize()} but found {names[1].capitalize()}")
    return Einsum.apply((inputs, output), *operands)
