"""``repr`` of tensors in PyTorch's layout: aligned columns, 4 decimals or scientific notation, suffixes."""
from __future__ import annotations

import math

from . import _dtypes
from .backend import backend_of

LINEWIDTH = 80
THRESHOLD = 1000
EDGEITEMS = 3
PRECISION = 4


class _Formatter:
    """Chooses one format for all elements so that columns line up."""

    def __init__(self, values, dtype) -> None:
        self.floating = dtype.is_floating_point
        self.is_bool = dtype is _dtypes.bool_
        self.int_mode = True
        self.sci_mode = False
        if self.floating:
            finite = [v for v in values if math.isfinite(v)]
            nonzero = [abs(v) for v in finite if v != 0]
            self.int_mode = all(v == math.ceil(v) for v in finite)
            if nonzero:
                largest, smallest = max(nonzero), min(nonzero)
                if self.int_mode:
                    self.sci_mode = largest / smallest > 1000.0 or largest > 1.0e8
                else:
                    self.sci_mode = largest / smallest > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4
        if self.floating:
            # As PyTorch does, only non-zero finite values set the column width (nan and inf do not).
            self.width = max((len(self._plain(v)) for v in values if math.isfinite(v) and v != 0), default=1)
        else:
            self.width = max((len(self._plain(v)) for v in values), default=1)

    def _plain(self, value) -> str:
        if self.is_bool:
            return str(bool(value))
        if not self.floating:
            return str(int(value))
        if self.sci_mode:
            return f"{value:.{PRECISION}e}"
        if self.int_mode:
            text = f"{value:.0f}"
            return text if math.isinf(value) or math.isnan(value) else text + "."
        return f"{value:.{PRECISION}f}"

    def format(self, value) -> str:
        return self._plain(value).rjust(self.width)


def _flat_shown(array, summarize: bool) -> list:
    """The elements that will be printed (edges only when summarizing)."""
    if array.ndim == 0:
        return [array.item()]
    if summarize and array.shape[0] > 2 * EDGEITEMS:
        parts = [array[:EDGEITEMS], array[-EDGEITEMS:]]
    else:
        parts = [array]
    out = []
    for p in parts:
        if p.ndim == 1:
            out.extend(p.tolist())
        else:
            for row in p:
                out.extend(_flat_shown(row, summarize))
    return out


def _vector(array, indent: int, summarize: bool, fmt: _Formatter) -> str:
    element_length = fmt.width + 2
    per_line = max(1, math.floor((LINEWIDTH - indent) / element_length))
    if summarize and array.shape[0] > 2 * EDGEITEMS:
        items = [fmt.format(v) for v in array[:EDGEITEMS].tolist()] + [" ..."] + \
            [fmt.format(v) for v in array[-EDGEITEMS:].tolist()]
    else:
        items = [fmt.format(v) for v in array.tolist()]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested(array, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if array.ndim == 0:
        return fmt.format(array.item()).strip()
    if array.ndim == 1:
        return _vector(array, indent, summarize, fmt)
    n = array.shape[0]
    if summarize and n > 2 * EDGEITEMS:
        rows = [_nested(array[i], indent + 1, summarize, fmt) for i in range(EDGEITEMS)] + ["..."] + \
            [_nested(array[i], indent + 1, summarize, fmt) for i in range(n - EDGEITEMS, n)]
    else:
        rows = [_nested(array[i], indent + 1, summarize, fmt) for i in range(n)]
    return "[" + ("," + "\n" * (array.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def _add_suffixes(text: str, suffixes: list, indent: int) -> str:
    parts = [text]
    last_line = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line + len(suffix) + 2 > LINEWIDTH:
            parts.append(",\n" + " " * indent + suffix)
            last_line = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


def array_str(array, dtype, indent: int) -> str:
    """The bracketed body of a tensor's repr."""
    array = backend_of(array).to_numpy(array)
    summarize = array.size > THRESHOLD
    if dtype is _dtypes.float16:
        array = array.astype("float32")
    fmt = _Formatter(_flat_shown(array, summarize), dtype)
    return _nested(array, indent, summarize, fmt)


def tensor_repr(tensor) -> str:
    """Returns ``tensor(...)`` as PyTorch prints it."""
    prefix = "tensor("
    indent = len(prefix)
    suffixes = []
    if tensor.device.type != "cpu":
        suffixes.append(f"device='{tensor.device}'")
    dtype = tensor.dtype
    if tensor.numel() == 0:
        if tensor.ndim != 1:
            suffixes.append(f"size={tuple(tensor.shape)}")
        if dtype is not _dtypes.get_default_dtype():
            suffixes.append(f"dtype={dtype}")
        body = "[]"
    else:
        if dtype not in (_dtypes.get_default_dtype(), _dtypes.int64, _dtypes.bool_):
            suffixes.append(f"dtype={dtype}")
        body = array_str(tensor._data, dtype, indent)
    fn = tensor.grad_fn
    if fn is not None:
        suffixes.append(f"grad_fn=<{fn.name()}>")
    elif tensor.requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent)
