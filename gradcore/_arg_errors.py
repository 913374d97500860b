"""PyTorch's TypeError for a call that matches none of an op's signatures, word for word.

PyTorch's argument parser explains such a call in one of two ways: when exactly one signature takes as many
arguments as were given, the error of binding the call to it (``max() got an unexpected keyword argument
'keepdims'``); otherwise ``max() received an invalid combination of arguments - got (...), but expected one of:``
with every signature and, under the signatures that take that many arguments, why they did not match. The text
lists keyword arguments in the iteration order of the C++ hash map that holds them, which this module computes
as libstdc++ does (its string hash and bucket layout), so that the messages agree with PyTorch's exactly.

Ops call ``keyword_error`` only for calls they refuse (today: ``keepdim=`` and ``keepdims=`` given together).
"""

from __future__ import annotations

import functools

_MASK = (1 << 64) - 1
_MUL = (0xC6A4A793 << 32) + 0x5BD1E995
_SEED = 0xC70F6907
# libstdc++'s bucket counts for small tables (its prime rehash policy's fast path), indexed by the minimum.
_FAST_BUCKETS = (2, 2, 2, 3, 5, 5, 7, 7, 11, 11, 11, 11, 13, 13)
_PRIMES = (17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 103, 109, 113, 127)


def _shift_mix(value: int) -> int:
    return value ^ (value >> 47)


def _string_hash(text: str) -> int:
    """``std::hash<std::string>`` of libstdc++ on a 64-bit machine (its ``_Hash_bytes``, a Murmur hash)."""
    data = text.encode("utf-8")
    length = len(data)
    aligned = length & ~7
    result = (_SEED ^ (length * _MUL)) & _MASK
    for start in range(0, aligned, 8):
        word = int.from_bytes(data[start:start + 8], "little")
        word = (_shift_mix((word * _MUL) & _MASK) * _MUL) & _MASK
        result = ((result ^ word) * _MUL) & _MASK
    if length & 7:
        result = ((result ^ int.from_bytes(data[aligned:], "little")) * _MUL) & _MASK
    result = (_shift_mix(result) * _MUL) & _MASK
    return _shift_mix(result)


def _next_bucket_count(minimum: int) -> int:
    if minimum < len(_FAST_BUCKETS):
        return _FAST_BUCKETS[minimum]
    return next(p for p in _PRIMES if p >= minimum)


def hash_map_order(keys: list[str]) -> list[str]:
    """The order in which a ``std::unordered_map<std::string, T>`` filled with ``keys`` (in this order) lists
    them: libstdc++ keeps one list, and puts a new key first in its bucket, or first of all in an empty one.
    Its first insertion makes 13 buckets (at least 11 wanted), and it grows when the keys outnumber them."""
    order: list[str] = []  # the node list, first node first
    buckets, next_resize = 1, 0
    for key in keys:
        wanted = len(order) + 1
        if wanted > next_resize:
            minimum = max(wanted, 0 if next_resize else 11)
            if minimum >= buckets:
                buckets = _next_bucket_count(max(minimum + 1, buckets * 2))
                next_resize = buckets
                order = _relink(order, buckets)
            else:
                next_resize = buckets
        order = _insert(order, key, buckets)
    return order


def _insert(order: list[str], key: str, buckets: int) -> list[str]:
    bucket = _string_hash(key) % buckets
    for position, other in enumerate(order):
        if _string_hash(other) % buckets == bucket:
            return order[:position] + [key] + order[position:]  # first of its bucket's run
    return [key] + order


def _relink(order: list[str], buckets: int) -> list[str]:
    """A rehash walks the old list and puts each node first in its new bucket, or first of all."""
    result: list[str] = []
    for key in order:
        result = _insert(result, key, buckets)
    return result


# -- signatures --------------------------------------------------------------------------------------------
class _Signature:
    """One overload as PyTorch prints it, e.g. ``(Tensor input, int dim, bool keepdim = False, *, Tensor out =
    None)``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.params: list[tuple[str, str, bool, bool]] = []  # (type, name, optional, keyword only)
        keyword_only = False
        for piece in text[1:-1].split(", ") if text != "()" else []:
            if piece == "*":
                keyword_only = True
                continue
            declaration, _, _default = piece.partition(" = ")
            kind, _, name = declaration.rpartition(" ")
            self.params.append((kind, name, " = " in piece, keyword_only))
        self.min_args = sum(1 for param in self.params if not param[2])
        self.max_args = len(self.params)


def _typename(value) -> str:
    """The ``tp_name`` of a value's type, which PyTorch prints: a Python class's name, a C type's dotted name."""
    kind = type(value)
    if kind.__flags__ & (1 << 9) or kind.__module__ == "builtins":  # a heap type, or a builtin
        return kind.__name__
    return f"{kind.__module__}.{kind.__name__}"


def _matches(kind: str, value) -> bool:
    """Whether PyTorch's parser accepts ``value`` for a parameter of type ``kind`` (the types used here)."""
    from .tensor import Tensor

    if kind == "Tensor":
        return isinstance(value, Tensor)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "Number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "tuple of ints":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, (tuple, list)) and all(isinstance(v, int) for v in value))
    return True


def _bind_error(name: str, signature: _Signature, args: tuple, kwargs: dict) -> str:
    """What PyTorch says when it binds a call to the one signature that takes that many arguments."""
    positional = [param for param in signature.params if not param[3]]
    if len(args) > len(positional):
        count = len(positional)
        return (f"{name}() takes {count} positional argument{'s' if count != 1 else ''} but {len(args)} "
                f"{'was' if len(args) == 1 else 'were'} given")
    for index, (kind, param, optional, _keyword_only) in enumerate(signature.params):
        if index < len(args):
            value, by_keyword = args[index], False
        elif param in kwargs:
            value, by_keyword = kwargs[param], True
        else:
            if not optional:
                missing = [p[1] for p in signature.params[index:] if not p[2] and p[1] not in kwargs]
                return (f"{name}() missing {len(missing)} required positional arguments: "
                        + ", ".join(f'"{m}"' for m in missing))
            continue
        if not _matches(kind, value):
            where = "" if by_keyword else f" (position {index + 1})"
            return f"{name}(): argument '{param}'{where} must be {kind}, not {_typename(value)}"
    names = {param[1] for param in signature.params}
    unknown = next(key for key in kwargs if key not in names)
    return f"{name}() got an unexpected keyword argument '{unknown}'"


def _described(args: tuple, kwargs_in_order: list[tuple[str, object]]) -> str:
    text = "(" + "".join(f"{_typename(a)}, " for a in args)
    text += "".join(f"{key}={_typename(value)}, " for key, value in kwargs_in_order)
    if args:
        text = text[:-2]  # (PyTorch trims the last separator only when there are positional arguments)
    return text + ")"


def _invalid_combination(name: str, signatures: list[_Signature], args: tuple, kwargs: dict) -> str:
    order = hash_map_order(list(kwargs))
    lines = [f"{name}() received an invalid combination of arguments - got "
             f"{_described(args, [(key, kwargs[key]) for key in order])}, but expected one of:"]
    given = len(args) + len(kwargs)
    for signature in signatures:
        lines.append(f" * {signature.text}")
        # PyTorch's message splits the printed signature at ", " and reads each piece's last word as its name
        # ("*" and defaults included), and compares counts and names on that reading.
        pieces = signature.text[1:-1].split(", ")
        if len(pieces) != given:
            continue
        names = [piece.rpartition(" ")[2] for piece in pieces]
        start = max(len(pieces) - len(kwargs), 0)
        unmatched = [key for key in order if key not in names[start:]]
        if unmatched:
            lines.append("      didn't match because some of the keywords were incorrect: " + ", ".join(unmatched))
    return "\n".join(lines) + "\n"


def keyword_error(name: str, signatures: list[_Signature], args: tuple, kwargs: dict) -> TypeError:
    """PyTorch's TypeError for the call ``name(*args, **kwargs)`` (``self`` left out of ``args`` for a method)
    that matches none of ``signatures``."""
    given = len(args) + len(kwargs)
    plausible = [s for s in signatures if s.min_args <= given <= s.max_args]
    if len(plausible) == 1:
        return TypeError(_bind_error(name, plausible[0], args, kwargs))
    return TypeError(_invalid_combination(name, signatures, args, kwargs))


def _signatures(*texts: str) -> list[_Signature]:
    return [_Signature(text) for text in texts]


# PyTorch's visible overloads of the reductions that take ``keepdim``, as its errors print them.
FUNCTION_SIGNATURES = {
    "max": _signatures("(Tensor input, *, Tensor out = None)", "(Tensor input, Tensor other, *, Tensor out = None)",
                       "(Tensor input, int dim, bool keepdim = False, *, tuple of Tensors out = None)"),
    "std": _signatures(
        "(Tensor input, tuple of ints dim, bool unbiased = True, bool keepdim = False, *, Tensor out = None)",
        "(Tensor input, tuple of ints dim = None, *, Number correction = None, bool keepdim = False, "
        "Tensor out = None)",
        "(Tensor input, bool unbiased = True)"),
    "any": _signatures("(Tensor input, *, Tensor out = None)",
                       "(Tensor input, tuple of ints dim = None, bool keepdim = False, *, Tensor out = None)",
                       "(Tensor input, int dim, bool keepdim = False, *, Tensor out = None)"),
}
FUNCTION_SIGNATURES.update({
    "sum": _signatures("(Tensor input, *, torch.dtype dtype = None)",
                       "(Tensor input, tuple of ints dim, bool keepdim = False, *, torch.dtype dtype = None, "
                       "Tensor out = None)"),
    "mean": _signatures("(Tensor input, *, torch.dtype dtype = None, Tensor out = None)",
                        "(Tensor input, tuple of ints dim, bool keepdim = False, *, torch.dtype dtype = None, "
                        "Tensor out = None)"),
    "prod": _signatures("(Tensor input, *, torch.dtype dtype = None)",
                        "(Tensor input, int dim, bool keepdim = False, *, torch.dtype dtype = None, "
                        "Tensor out = None)"),
})
FUNCTION_SIGNATURES["min"] = FUNCTION_SIGNATURES["max"]
FUNCTION_SIGNATURES["var"] = FUNCTION_SIGNATURES["std"]
FUNCTION_SIGNATURES["all"] = FUNCTION_SIGNATURES["any"]
METHOD_SIGNATURES = {
    "max": _signatures("()", "(Tensor other)", "(int dim, bool keepdim = False)"),
    "std": _signatures("(tuple of ints dim, bool unbiased = True, bool keepdim = False)",
                       "(tuple of ints dim = None, *, Number correction = None, bool keepdim = False)",
                       "(bool unbiased = True)"),
    "any": _signatures("()", "(tuple of ints dim = None, bool keepdim = False)", "(int dim, bool keepdim = False)"),
}
METHOD_SIGNATURES.update({
    "sum": _signatures("(*, torch.dtype dtype = None)",
                       "(tuple of ints dim, bool keepdim = False, *, torch.dtype dtype = None)"),
    "prod": _signatures("(*, torch.dtype dtype = None)", "(int dim, bool keepdim = False, *, torch.dtype dtype = None)"),
})
METHOD_SIGNATURES["mean"] = METHOD_SIGNATURES["sum"]
METHOD_SIGNATURES["min"] = METHOD_SIGNATURES["max"]
METHOD_SIGNATURES["var"] = METHOD_SIGNATURES["std"]
METHOD_SIGNATURES["all"] = METHOD_SIGNATURES["any"]


def refuses_keepdim_and_keepdims(name: str, method: bool = False, needs_dim: bool = False):
    """Decorates reduction ``name`` (a function, or a Tensor method when ``method``) so that a call giving both
    ``keepdim=`` and ``keepdims=`` raises PyTorch's TypeError for it; with ``needs_dim``, so does a call giving
    either without a ``dim`` (PyTorch's ``sum``, ``mean``, ``prod``, ``max`` and ``min`` have no such overload)."""
    signatures = (METHOD_SIGNATURES if method else FUNCTION_SIGNATURES)[name]

    def decorate(function):
        @functools.wraps(function)
        def call(*args, **kwargs):
            if kwargs and (("keepdims" in kwargs and "keepdim" in kwargs) or (
                    needs_dim and ("keepdim" in kwargs or "keepdims" in kwargs) and len(args) < 2
                    and "dim" not in kwargs)):
                raise keyword_error(name, signatures, args[1:] if method else args, kwargs)
            return function(*args, **kwargs)

        return call

    return decorate
