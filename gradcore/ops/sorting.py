"""Sorting and selection along a dim: sort, argsort, topk; and the histograms histc and histogram."""
from __future__ import annotations

from .. import _dtypes
from ._util import Tensor, array_module, make_tensor, normalize_dim, return_type
from .indexing import Gather

__all__ = ["sort", "argsort", "topk", "histc", "histogram"]

SortResult = return_type("sort", ["values", "indices"], __name__, "SortResult")
TopkResult = return_type("topk", ["values", "indices"], __name__, "TopkResult")
HistogramResult = return_type("histogram", ["hist", "bin_edges"], __name__, "HistogramResult")


class SortValues(Gather):
    """The sorted values: a gather of the input at the sorted indices, whose gradient scatters back."""

    node_name = "SortBackward0"


class TopkValues(Gather):
    node_name = "TopkBackward0"


def _sorted_indices(data, dim: int, descending: bool):
    """Returns the indices that sort ``data`` along ``dim``, stably, with NaN taken as the largest value.

    A descending sort keeps equal elements in their original order, as PyTorch's stable sort does: it sorts the
    reversed data ascending and reads the result backwards.
    """
    xp = array_module(data)
    if not descending:
        return xp.argsort(data, axis=dim, kind="stable")
    n = data.shape[dim]
    ascending = xp.argsort(xp.flip(data, axis=dim), axis=dim, kind="stable")
    return (n - 1) - xp.flip(ascending, axis=dim)


def _check_sortable(input, name: str) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    if input.dtype is _dtypes.bool_ and name == "topk":
        raise RuntimeError('"topk_cpu" not implemented for \'Bool\'')


def sort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    """Returns (values, indices) of ``input`` sorted along ``dim`` (ascending unless ``descending``).

    The sort is always stable; NaN sorts as the largest value, as in PyTorch.
    """
    _check_sortable(input, "sort")
    d = normalize_dim(dim, input.ndim)
    if input.ndim == 0:
        return SortResult(input.clone(), make_tensor(array_module(input._data).zeros((), dtype="int64")))
    indices = _sorted_indices(input._data, d, descending).astype("int64")
    values = SortValues.apply(input, d, indices)
    return SortResult(values, make_tensor(indices))


def argsort(input, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """Returns the indices that sort ``input`` along ``dim``."""
    return sort(input, dim, descending, stable).indices


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """Returns (values, indices) of the ``k`` largest (or smallest) elements along ``dim``, largest first."""
    _check_sortable(input, "topk")
    d = normalize_dim(dim, input.ndim)
    size = input.shape[d] if input.ndim else 1
    if not isinstance(k, int) or k < 0 or k > size:
        raise RuntimeError("selected index k out of range")
    xp = array_module(input._data)
    if input.ndim == 0:
        return TopkResult(input.clone(), make_tensor(xp.zeros((), dtype="int64")))
    indices = _sorted_indices(input._data, d, largest)
    indices = xp.take(indices, xp.arange(k), axis=d).astype("int64")
    return TopkResult(TopkValues.apply(input, d, indices), make_tensor(indices))


def _histogram_range(data, min, max):
    """The leftmost and rightmost bin edges: the given range, or the data's, widened by 1 when it is empty."""
    if min == max and data.size:
        min, max = data.min().item(), data.max().item()
    if min == max:
        min, max = min - 1, max + 1
    return min, max


def histc(input, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:
    """Returns the histogram of ``input`` with ``bins`` equal-width bins between ``min`` and ``max``.

    With min == max the data's own minimum and maximum are used; elements outside the range are ignored.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"histc(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f'"histogram_cpu" not implemented for \'{input.dtype.legacy_name}\'')
    if bins <= 0:
        raise RuntimeError("torch.histc(): bins must be > 0, but got " + str(bins) + " for dimension 0")
    if min > max:
        raise RuntimeError("torch.histc(): max must be larger than min")
    data = input._data.reshape(-1)
    left, right = _histogram_range(data, min, max)
    if not (abs(left) < float("inf") and abs(right) < float("inf")):
        raise RuntimeError(f"torch.histc(): range of [{left}, {right}] is not finite")
    counts = _bin_counts(data, bins, left, right, None, local_search=False)
    return make_tensor(counts.astype(input._data.dtype))


def _bin_counts(data, bins: int, left, right, weight, local_search: bool, edges=None):
    """Counts (or sums ``weight``) per bin; bin = floor((x - left) * bins / (right - left)) in the data's dtype.

    The last bin is closed on the right. With ``local_search`` the computed bin is corrected against the actual
    edges (which linspace rounds), as ``histogram`` does.
    """
    xp = array_module(data)
    dtype = data.dtype
    left_d, right_d = dtype.type(left), dtype.type(right)
    inside = (data >= left_d) & (data <= right_d)
    values = data[inside]
    position = ((values - left_d) * dtype.type(bins) / (right_d - left_d)).astype("int64")
    position = xp.minimum(position, bins - 1)
    if local_search and edges is not None:
        position = xp.where((position > 0) & (values < edges[position]), position - 1, position)
        position = xp.where((position < bins - 1) & (values >= edges[xp.minimum(position + 1, bins)]),
                            position + 1, position)
    w = None if weight is None else weight.reshape(-1)[inside]
    return xp.bincount(position, weights=w, minlength=bins)[:bins]


def histogram(input, bins=100, *, range=None, weight=None, density: bool = False):
    """Returns (hist, bin_edges): the histogram of ``input`` over ``bins`` equal bins (an int) or given edges."""
    if not isinstance(input, Tensor):
        raise TypeError(f"histogram(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f'"histogram_cpu" not implemented for \'{input.dtype.legacy_name}\'')
    data = input._data.reshape(-1)
    xp = array_module(data)
    if weight is not None and tuple(weight.shape) != tuple(input.shape):
        raise RuntimeError("torch.histogram: if weight tensor is provided, it should have the same shape as the "
                           "input tensor excluding its innermost dimension")
    weight_data = None if weight is None else weight._data
    if isinstance(bins, Tensor):
        edges = bins._data.astype(data.dtype)
        if edges.ndim != 1 or edges.shape[0] < 1:
            raise RuntimeError("torch.histogram(): bins tensor should have one dimension and at least 1 element")
        n = edges.shape[0] - 1
        counts = xp.zeros(n, dtype=data.dtype if weight_data is None else weight_data.dtype)
        if n > 0:
            inside = (data >= edges[0]) & (data <= edges[-1])
            position = xp.searchsorted(edges, data[inside], side="right") - 1
            position = xp.minimum(position, n - 1)
            w = None if weight_data is None else weight_data.reshape(-1)[inside]
            counts = xp.bincount(position, weights=w, minlength=n)[:n]
    else:
        if not isinstance(bins, int) or bins <= 0:
            raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {bins} for dimension 0")
        if range is not None:
            left, right = range
            if left > right:
                raise ValueError("max must be larger than min")
        else:
            left, right = (data.min().item(), data.max().item()) if data.size else (0.0, 0.0)
        if left == right:
            left, right = left - 0.5, right + 0.5
        edges = xp.linspace(left, right, bins + 1).astype(data.dtype)
        counts = _bin_counts(data, bins, left, right, weight_data, local_search=True, edges=edges)
        n = bins
    counts = counts.astype(data.dtype)
    if density and n > 0:
        widths = xp.diff(edges)
        total = counts.sum()
        counts = (counts / (total * widths)).astype(data.dtype)
    return HistogramResult(make_tensor(counts), make_tensor(edges.astype(data.dtype)))
