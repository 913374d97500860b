"""Sorting, scatter/gather, cumulative, repeating, histogram ops and einsum, side by side with PyTorch.

Each case runs the same program on both libraries (``lib`` is gradcore or torch) and compares the results'
values, dtypes and shapes, and the gradients of the inputs; error cases compare the exception type and message.
"""
import numpy as np
import pytest

import gradcore
import gradcore.nn.functional as F

torch = pytest.importorskip("torch")


def _inputs(lib, seed: int = 0, dtype="float64"):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 5)).astype(dtype)
    x[1, 2] = x[0, 1]  # a tie, so that stable ordering matters
    return lib.tensor(x, requires_grad=True)


def _flatten(result):
    if isinstance(result, (tuple, list)):
        return [r for item in result for r in _flatten(item)]
    return [result]


def _compare(program, *, grad: bool = True, seed: int = 0):
    """Runs ``program(lib, x)`` for both libraries and compares outputs and (for float outputs) gradients."""
    xg, xt = _inputs(gradcore, seed), _inputs(torch, seed)
    outs_g, outs_t = _flatten(program(gradcore, xg)), _flatten(program(torch, xt))
    assert len(outs_g) == len(outs_t)
    for a, b in zip(outs_g, outs_t):
        assert tuple(a.shape) == tuple(b.shape)
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)
    if grad and any(o.requires_grad for o in outs_t):
        weights = [np.random.default_rng(i).standard_normal(tuple(b.shape)) for i, b in enumerate(outs_t)]
        loss_g = sum((o * gradcore.tensor(w)).sum() for o, w in zip(outs_g, weights) if o.requires_grad)
        loss_t = sum((o * torch.tensor(w)).sum() for o, w in zip(outs_t, weights) if o.requires_grad)
        loss_g.backward()
        loss_t.backward()
        np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def _index(lib, values):
    return lib.tensor(np.array(values, dtype=np.int64))


PROGRAMS = {
    "log2": lambda lib, x: lib.log2(x.abs()),
    "log10": lambda lib, x: x.abs().log10(),
    "nan_to_num": lambda lib, x: lib.nan_to_num(x / (x > 0) * 2, nan=1.5, neginf=-7.0),
    "sort": lambda lib, x: lib.sort(x, dim=1),
    "sort_descending": lambda lib, x: x.sort(0, descending=True),
    "sort_stable_kw": lambda lib, x: lib.sort(x, dim=-1, descending=True, stable=True),
    "argsort": lambda lib, x: (x * 0 + x.argsort(dim=1)).sum() + lib.argsort(x, 0, descending=True).sum(),
    "topk": lambda lib, x: lib.topk(x, 3),
    "topk_smallest_dim0": lambda lib, x: x.topk(2, dim=0, largest=False),
    "topk_named": lambda lib, x: (lib.topk(x, 2).values, lib.topk(x, 2).indices, x.sort().values),
    "gather": lambda lib, x: x.gather(1, _index(lib, [[0, 0, 4], [2, 1, 3]])),
    "index_select": lambda lib, x: lib.index_select(x, 1, _index(lib, [4, 0, 0])),
    "index_select_0d_index": lambda lib, x: x.index_select(0, _index(lib, 2)),
    "scatter": lambda lib, x: lib.zeros(4, 5, dtype=lib.float64).scatter(0, _index(lib, [[0, 3], [2, 1]]), x[1:, :2]),
    # A src larger than index: PyTorch's backward refuses it, so only the values are compared.
    "scatter_larger_src": lambda lib, x: lib.zeros(4, 5, dtype=lib.float64).scatter(0, _index(lib, [[0, 3]]),
                                                                                  x.detach()),
    "scatter_into_x": lambda lib, x: x.scatter(1, _index(lib, [[4, 0], [1, 1]]), -1.0),
    "scatter_reduce": lambda lib, x: (x.detach().scatter(1, _index(lib, [[4, 0], [1, 1]]), x.detach() * 2,
                                                         reduce="add"),
                                      x.detach().scatter(0, _index(lib, [[2, 0], [2, 1]]), 3.0, reduce="multiply")),
    "scatter_int32_index": lambda lib, x: x.scatter(1, lib.tensor([[4, 0], [1, 1]], dtype=lib.int32), x[1:, 3:]),
    "scatter_add": lambda lib, x: lib.scatter_add(x, 0, _index(lib, [[0, 0, 2, 1, 0], [0, 0, 0, 0, 0]]),
                                                  (x * 3)[:2]),
    "scatter_inplace": lambda lib, x: (x * 1).scatter_(1, _index(lib, [[1], [3]]), x[:2, 2:3]),
    "scatter_add_inplace": lambda lib, x: (x * 1).scatter_add_(0, _index(lib, [[1, 1, 2, 0, 0]]), x[:1] * 5),
    "index_add": lambda lib, x: x.index_add(0, _index(lib, [2, 2, 0]), x, alpha=3),
    "cumsum": lambda lib, x: (lib.cumsum(x, 1), x.cumsum(dim=0)),
    "cumsum_int": lambda lib, x: (x > 0).cumsum(1),
    "cumsum_dtype": lambda lib, x: lib.cumsum(x.detach(), 0, dtype=lib.float32),
    "cumprod": lambda lib, x: (lib.cumprod(x, 1), x.cumprod(0)),
    "cumprod_zeros": lambda lib, x: (x * (x.abs() > 0.5)).cumprod(1),
    "tril_triu": lambda lib, x: (x.tril(), lib.triu(x, 1), lib.tril(x, -1), x.triu(-2)),
    "roll": lambda lib, x: (lib.roll(x, 2), x.roll(-1, 0), x.roll((1, 3), (0, 1))),
    "flip": lambda lib, x: (lib.flip(x, [0]), x.flip(0, 1), x.flip(-1)),
    "repeat": lambda lib, x: (x.repeat(2, 3), x.repeat(2, 1, 1)),
    "tile": lambda lib, x: (lib.tile(x, (2,)), x.tile(2, 1, 2)),
    "repeat_interleave": lambda lib, x: (x.repeat_interleave(2), lib.repeat_interleave(x, 3, dim=1),
                                         x.repeat_interleave(_index(lib, [2, 0, 1]), dim=0)),
    "repeat_interleave_counts": lambda lib, x: lib.repeat_interleave(_index(lib, [2, 0, 3])),
    "einsum": lambda lib, x: (lib.einsum("ij,kj->ik", x, x), lib.einsum("ij->", x), lib.einsum("i j -> j i", x),
                              lib.einsum("ij,ij->i", [x, x]), lib.einsum("bi,bj->bij", x, x)),
    "einsum_ellipsis": lambda lib, x: lib.einsum("...j,j->...", x.reshape(3, 1, 5), x[0]),
    "einsum_implicit": lambda lib, x: lib.einsum("ji", x),
    "einsum_diagonal": lambda lib, x: lib.einsum("ii->i", x[:, :3]) + lib.einsum("ii", x[:, 1:4]),
}


@pytest.mark.filterwarnings("ignore:The reduce argument of torch.scatter")
@pytest.mark.parametrize("name", list(PROGRAMS))
def test_matches_torch(name):
    _compare(PROGRAMS[name])


@pytest.mark.parametrize("seed", range(3))
def test_sort_with_nan_and_ties_matches_torch(seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 4, size=(4, 9)).astype(np.float32)
    data[rng.random(data.shape) < 0.2] = np.nan
    for descending in (False, True):
        a = gradcore.sort(gradcore.tensor(data), dim=1, descending=descending)
        b = torch.sort(torch.tensor(data), dim=1, descending=descending, stable=True)
        np.testing.assert_array_equal(a.values.numpy(), b.values.numpy())
        np.testing.assert_array_equal(a.indices.numpy(), b.indices.numpy())


def test_sort_and_topk_of_integers_and_0d():
    data = np.array([[3, 1, 2], [0, 0, -5]])
    a, b = gradcore.tensor(data).sort(descending=True), torch.tensor(data).sort(descending=True)
    np.testing.assert_array_equal(a.values.numpy(), b.values.numpy())
    np.testing.assert_array_equal(a.indices.numpy(), b.indices.numpy())
    assert gradcore.tensor(2.5).topk(1).values.item() == 2.5
    assert gradcore.tensor(2.5).sort().indices.item() == 0


@pytest.mark.parametrize("data, bins, low, high", [
    ([1.0, 2.0, 1.0, 2.5, 4.0], 4, 0, 0),
    ([1.0, 2.0, 1.0, 2.5, 4.0], 3, 1, 3),
    ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 10, 0, 1),
    ([2.0, 2.0], 5, 0, 0),
    ([], 3, 0, 0),
])
def test_histc_matches_torch(data, bins, low, high):
    for dtype in ("float32", "float64"):
        a = gradcore.histc(gradcore.tensor(np.array(data, dtype=dtype)), bins, low, high)
        b = torch.histc(torch.tensor(np.array(data, dtype=dtype)), bins, low, high)
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("seed", range(3))
def test_histc_random_data_matches_torch(seed):
    data = np.random.default_rng(seed).standard_normal(1000).astype(np.float32)
    for bins in (7, 100):
        np.testing.assert_array_equal(gradcore.tensor(data).histc(bins).numpy(), torch.tensor(data).histc(bins).numpy())
        np.testing.assert_array_equal(gradcore.histc(gradcore.tensor(data), bins, -1, 1).numpy(),
                                      torch.histc(torch.tensor(data), bins, -1, 1).numpy())


@pytest.mark.parametrize("kwargs", [
    dict(bins=5), dict(bins=4, range=(-1.0, 1.0)), dict(bins=6, density=True), dict(bins=3, weight=True),
    dict(bins="edges"), dict(bins=1),
])
def test_histogram_matches_torch(kwargs):
    data = np.random.default_rng(1).standard_normal(200)
    weight = np.random.default_rng(2).random(200)
    results = []
    for lib in (gradcore, torch):
        kw = dict(kwargs)
        if kw.get("weight"):
            kw["weight"] = lib.tensor(weight)
        if kw["bins"] == "edges":
            kw["bins"] = lib.tensor([-2.0, -0.5, 0.0, 0.1, 3.0], dtype=lib.float64)
        results.append(lib.histogram(lib.tensor(data), **kw))
    (hist_g, edges_g), (hist_t, edges_t) = results
    np.testing.assert_allclose(hist_g.numpy(), hist_t.numpy(), rtol=1e-12)
    np.testing.assert_allclose(edges_g.numpy(), edges_t.numpy(), rtol=1e-12)


def test_one_hot_matches_torch():
    labels = np.array([[0, 3], [2, 2]])
    a = F.one_hot(gradcore.tensor(labels))
    b = torch.nn.functional.one_hot(torch.tensor(labels))
    assert a.dtype == gradcore.int64 and a.shape == b.shape
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(F.one_hot(gradcore.tensor(labels), 6).numpy(),
                                  torch.nn.functional.one_hot(torch.tensor(labels), 6).numpy())


@pytest.mark.cpu_only
def test_randint_high_size_overload():
    gradcore.manual_seed(5)
    torch.manual_seed(5)
    np.testing.assert_array_equal(gradcore.randint(10, (3, 4)).numpy(), torch.randint(10, (3, 4)).numpy())
    np.testing.assert_array_equal(gradcore.randint(10, size=(6,)).numpy(), torch.randint(10, size=(6,)).numpy())
    np.testing.assert_array_equal(gradcore.randint(3, 10, (5,)).numpy(), torch.randint(3, 10, (5,)).numpy())


def _same_error(program):
    """Runs ``program(lib)`` on both libraries; both must raise the same exception type and message."""
    with pytest.raises(Exception) as expected:
        program(torch)
    with pytest.raises(type(expected.value)) as got:
        program(gradcore)
    first_line = str(expected.value).splitlines()[0]
    assert str(got.value).splitlines()[0] == first_line


ERRORS = {
    "topk_k_too_large": lambda lib: lib.topk(lib.ones(3), 4),
    "gather_negative_index": lambda lib: lib.ones(2, 3).gather(1, _index(lib, [[0, -1, 0], [0, 0, 0]])),
    "gather_too_large_index": lambda lib: lib.ones(2, 3).gather(1, _index(lib, [[0, 3]])),
    "index_select_out_of_range": lambda lib: lib.ones(2, 3).index_select(1, _index(lib, [3])),
    "index_select_out_of_range_dim0": lambda lib: lib.ones(2, 3).index_select(0, _index(lib, [2])),
    "index_select_negative_1d": lambda lib: lib.ones(3).index_select(0, _index(lib, [-1])),
    "index_select_negative_dim1": lambda lib: lib.ones(2, 3).index_select(1, _index(lib, [0, -1, 7])),
    "index_select_last_of_3d": lambda lib: lib.ones(2, 3, 4).index_select(-1, _index(lib, [4])),
    "index_select_dim1_of_3d": lambda lib: lib.ones(2, 3, 4).index_select(1, _index(lib, [1, 5, 3])),
    "index_select_0d": lambda lib: lib.ones(()).index_select(0, _index(lib, [1])),
    "index_select_matrix_index": lambda lib: lib.ones(2, 3).index_select(1, _index(lib, [[0]])),
    "scatter_out_of_bounds": lambda lib: lib.zeros(2, 3).scatter(1, _index(lib, [[3]]), 1.0),
    "scatter_negative": lambda lib: lib.zeros(2, 3).scatter_add(1, _index(lib, [[-1]]), lib.ones(1, 1)),
    "scatter_dtype": lambda lib: lib.zeros(2, 3).scatter(1, _index(lib, [[0]]), lib.ones(1, 1, dtype=lib.float64)),
    "scatter_int16_index": lambda lib: lib.zeros(2, 3).scatter(1, lib.zeros(1, 1, dtype=lib.int16), 1.0),
    "scatter_reduce_grad": lambda lib: lib.zeros(2, 3, requires_grad=True).scatter(
        1, _index(lib, [[0]]), 2.0, reduce="add").sum().backward(),
    "tril_1d": lambda lib: lib.ones(3).tril(),
    "repeat_too_few": lambda lib: lib.ones(2, 3).repeat(2),
    "roll_mismatch": lambda lib: lib.ones(2, 3).roll((1, 2), 0),
    "flip_duplicate": lambda lib: lib.ones(2, 3).flip(0, 0),
    "one_hot_float": lambda lib: lib.nn.functional.one_hot(lib.ones(3)),
    "one_hot_negative": lambda lib: lib.nn.functional.one_hot(_index(lib, [-1, 0])),
    "one_hot_too_large": lambda lib: lib.nn.functional.one_hot(_index(lib, [3]), 3),
    "einsum_operand_count": lambda lib: lib.einsum("ij,jk->ik", lib.ones(2, 2)),
    "einsum_rank": lambda lib: lib.einsum("ijk->i", lib.ones(2, 2)),
    "histc_int": lambda lib: lib.histc(lib.ones(3, dtype=lib.int64)),
    "cumsum_dim": lambda lib: lib.ones(2, 3).cumsum(2),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_match_torch(name):
    _same_error(ERRORS[name])


@pytest.mark.cpu_only  # a device tensor's repr names its device
def test_several_results_print_as_pytorchs_return_types():
    data = np.array([[3.0, 1.0, 2.0]])
    for program in (lambda lib, x: lib.sort(x), lambda lib, x: x.topk(2), lambda lib, x: x.max(1)):
        ours = repr(program(gradcore, gradcore.tensor(data)))
        theirs = repr(program(torch, torch.tensor(data)))
        assert ours.replace("gradcore", "torch") == theirs
