import gradcore as torch

import numpy as np
import pytest


def dtype_name(dtype):
    # The package prints its own module name in dtype reprs; normalize it.
    return str(dtype).replace("gradcore.", "torch.")


def normalized_str(t):
    return str(t).replace("gradcore.", "torch.")


# ---------------------------------------------------------------------------
# torch.tensor(...)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, dtype, shape",
    [
        ([1, 2, 3], torch.int64, (3,)),
        ([1.0, 2.0], torch.float32, (2,)),
        ([1, 2.5], torch.float32, (2,)),
        ([True, False], torch.bool, (2,)),
        ([1, True], torch.int64, (2,)),
        ([[1, 2], [3, 4], [5, 6]], torch.int64, (3, 2)),
        (2.5, torch.float32, ()),
        (7, torch.int64, ()),
        (True, torch.bool, ()),
        ([], torch.float32, (0,)),
    ],
)
def test_tensor_infers_dtype_and_shape(data, dtype, shape):
    t = torch.tensor(data)
    assert t.dtype == dtype
    assert t.shape == shape
    assert tuple(t.shape) == shape


def test_tensor_values():
    t = torch.tensor([[1.5, -2.0], [0.0, 3.25]])
    assert t.tolist() == [[1.5, -2.0], [0.0, 3.25]]


def test_tensor_with_explicit_dtype():
    t = torch.tensor([1, 2], dtype=torch.float64)
    assert t.dtype == torch.float64
    assert t.tolist() == [1.0, 2.0]
    assert torch.tensor([1.7, -1.7], dtype=torch.int32).tolist() == [1, -1]


def test_tensor_requires_grad():
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    assert t.requires_grad
    assert t.is_leaf
    assert t.grad is None
    assert t.grad_fn is None
    assert not torch.tensor([1.0]).requires_grad


def test_tensor_from_numpy_array_copies_and_keeps_dtype():
    a = np.array([1.0, 2.0])
    t = torch.tensor(a)
    assert t.dtype == torch.float64
    a[0] = 100.0
    assert t.tolist() == [1.0, 2.0]
    assert torch.tensor(np.array([1, 2], dtype=np.int32)).dtype == torch.int32


def test_tensor_from_numpy_scalar():
    assert torch.tensor(np.float64(2.0)).dtype == torch.float64


# ---------------------------------------------------------------------------
# Factory functions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("factory, fill", [(torch.zeros, 0.0), (torch.ones, 1.0)])
def test_zeros_ones(factory, fill):
    t = factory(2, 3)
    assert t.shape == (2, 3)
    assert t.dtype == torch.float32
    assert t.tolist() == [[fill] * 3] * 2
    assert factory((2, 3)).shape == (2, 3)
    assert factory([4]).shape == (4,)
    assert factory(2, dtype=torch.int64).tolist() == [int(fill)] * 2
    assert factory(2, requires_grad=True).requires_grad


def test_scalar_shaped_factories():
    assert torch.zeros(()).shape == ()
    assert torch.ones(()).item() == 1.0
    assert torch.zeros(0).numel() == 0


def test_empty():
    t = torch.empty(3, 4)
    assert t.shape == (3, 4)
    assert t.dtype == torch.float32
    assert torch.empty(2, dtype=torch.int32).dtype == torch.int32
    assert torch.empty(0).shape == (0,)


def test_full():
    t = torch.full((2, 2), 1.5)
    assert t.dtype == torch.float32
    assert t.tolist() == [[1.5, 1.5], [1.5, 1.5]]
    assert torch.full((2,), 3).dtype == torch.int64
    assert torch.full((2,), True).dtype == torch.bool
    assert torch.full((2,), 3, dtype=torch.float64).dtype == torch.float64


def test_like_factories_keep_shape_and_dtype():
    src = torch.tensor([[1, 2, 3], [4, 5, 6]])
    for factory in (torch.zeros_like, torch.ones_like, torch.empty_like):
        out = factory(src)
        assert out.shape == (2, 3)
        assert out.dtype == torch.int64
        assert not out.requires_grad
    assert torch.zeros_like(src).tolist() == [[0, 0, 0], [0, 0, 0]]
    assert torch.ones_like(src).tolist() == [[1, 1, 1], [1, 1, 1]]
    assert torch.full_like(src, 7).tolist() == [[7, 7, 7], [7, 7, 7]]


def test_like_factories_dtype_override_and_independence():
    src = torch.tensor([1.0, 2.0], requires_grad=True)
    out = torch.ones_like(src, dtype=torch.float64)
    assert out.dtype == torch.float64
    assert not out.requires_grad
    z = torch.zeros_like(src)
    z.add_(5)
    assert src.tolist() == [1.0, 2.0]
    assert torch.full_like(src, 7).tolist() == [7.0, 7.0]
    assert torch.full_like(src, 7).dtype == torch.float32


def test_arange():
    t = torch.arange(5)
    assert t.dtype == torch.int64
    assert t.tolist() == [0, 1, 2, 3, 4]
    assert torch.arange(2, 8, 2).tolist() == [2, 4, 6]
    f = torch.arange(0, 1, 0.25)
    assert f.dtype == torch.float32
    assert f.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert torch.arange(5.0).dtype == torch.float32
    assert torch.arange(3, dtype=torch.float64).dtype == torch.float64
    assert torch.arange(5, 0, -2).tolist() == [5, 3, 1]


def test_eye():
    t = torch.eye(3)
    assert t.dtype == torch.float32
    np.testing.assert_array_equal(t.numpy(), np.eye(3))
    r = torch.eye(2, 3, dtype=torch.int64)
    assert r.tolist() == [[1, 0, 0], [0, 1, 0]]


def test_linspace():
    t = torch.linspace(0, 1, 5)
    assert t.dtype == torch.float32
    np.testing.assert_allclose(t.numpy(), [0.0, 0.25, 0.5, 0.75, 1.0])
    assert torch.linspace(-1, 1, 3).tolist() == [-1.0, 0.0, 1.0]
    assert torch.linspace(0, 1, 1).tolist() == [0.0]


def test_rand_and_randn_shapes_dtypes_and_range():
    r = torch.rand(50, 40)
    assert r.shape == (50, 40)
    assert r.dtype == torch.float32
    values = r.numpy()
    assert values.min() >= 0.0
    assert values.max() < 1.0
    assert 0.4 < values.mean() < 0.6
    n = torch.randn(100, 50)
    assert n.shape == (100, 50)
    assert n.dtype == torch.float32
    assert abs(float(n.numpy().mean())) < 0.1
    assert 0.9 < float(n.numpy().std()) < 1.1
    assert torch.rand(2, dtype=torch.float64).dtype == torch.float64
    assert torch.randn((3, 2), dtype=torch.float64).shape == (3, 2)


def test_manual_seed_reproducibility():
    torch.manual_seed(1234)
    a = torch.rand(5).tolist()
    b = torch.randn(3, 2).tolist()
    torch.manual_seed(1234)
    assert torch.rand(5).tolist() == a
    assert torch.randn(3, 2).tolist() == b
    torch.manual_seed(4321)
    assert torch.rand(5).tolist() != a


def test_consecutive_random_draws_differ():
    torch.manual_seed(0)
    assert torch.rand(4).tolist() != torch.rand(4).tolist()


# ---------------------------------------------------------------------------
# numpy interop
# ---------------------------------------------------------------------------


def test_from_numpy_shares_memory_both_ways():
    a = np.array([1.0, 2.0, 3.0])
    t = torch.from_numpy(a)
    assert t.dtype == torch.float64
    a[0] = 10.0
    assert t[0].item() == 10.0
    t[1] = 20.0
    assert a[1] == 20.0
    t.add_(1)
    np.testing.assert_array_equal(a, [11.0, 21.0, 4.0])


def test_from_numpy_keeps_dtype():
    assert torch.from_numpy(np.zeros(2, dtype=np.float32)).dtype == torch.float32
    assert torch.from_numpy(np.zeros(2, dtype=np.int32)).dtype == torch.int32
    assert torch.from_numpy(np.zeros(2, dtype=np.int64)).dtype == torch.int64
    assert torch.from_numpy(np.zeros(2, dtype=np.bool_)).dtype == torch.bool
    assert torch.from_numpy(np.zeros(2, dtype=np.float16)).dtype == torch.float16


def test_numpy_shares_memory():
    t = torch.tensor([1.0, 2.0])
    a = t.numpy()
    assert a.dtype == np.float32
    a[0] = 5.0
    assert t.tolist() == [5.0, 2.0]
    t.mul_(2)
    np.testing.assert_array_equal(a, [10.0, 4.0])


def test_numpy_dtypes():
    assert torch.tensor([1, 2]).numpy().dtype == np.int64
    assert torch.tensor([True]).numpy().dtype == np.bool_
    assert torch.tensor([1.0], dtype=torch.float64).numpy().dtype == np.float64


def test_numpy_on_tensor_requiring_grad_raises():
    t = torch.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Can't call numpy\\(\\) on Tensor that requires grad"):
        t.numpy()
    assert t.detach().numpy().tolist() == [1.0]


# ---------------------------------------------------------------------------
# dtypes, promotion and conversion
# ---------------------------------------------------------------------------


def test_dtype_aliases():
    assert torch.float is torch.float32
    assert torch.double is torch.float64
    assert torch.half is torch.float16
    assert torch.long is torch.int64
    assert torch.int is torch.int32


def test_dtype_str():
    assert dtype_name(torch.float32) == "torch.float32"
    assert dtype_name(torch.float64) == "torch.float64"
    assert dtype_name(torch.int64) == "torch.int64"
    assert dtype_name(torch.bool) == "torch.bool"
    assert dtype_name(torch.tensor([1.0]).dtype) == "torch.float32"


def test_dtype_is_floating_point():
    assert torch.float16.is_floating_point
    assert torch.float32.is_floating_point
    assert torch.float64.is_floating_point
    assert not torch.int32.is_floating_point
    assert not torch.int64.is_floating_point
    assert not torch.bool.is_floating_point
    assert torch.tensor([1.0]).is_floating_point()
    assert not torch.tensor([1]).is_floating_point()


def test_default_dtype():
    assert torch.get_default_dtype() == torch.float32


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: torch.tensor([1, 2]) + torch.tensor([1.0, 2.0]), torch.float32),
        (lambda: torch.tensor([1, 2]) + 2.5, torch.float32),
        (lambda: torch.tensor([1, 2]) * 2.0, torch.float32),
        (lambda: torch.tensor([1.0, 2.0]) * 2.0, torch.float32),
        (lambda: torch.tensor([1, 2], dtype=torch.int32) + 1, torch.int32),
        (lambda: torch.tensor([1.0], dtype=torch.float16) + torch.tensor([1.0]), torch.float32),
        (lambda: torch.tensor([1.0], dtype=torch.float16) + 2.5, torch.float16),
        (lambda: torch.tensor([1.0]) + torch.tensor([2.0], dtype=torch.float64), torch.float64),
        (lambda: torch.tensor([1, 2], dtype=torch.int32) + torch.tensor([5]), torch.int64),
        # Zero-dim tensors only win when they are of a higher category.
        (lambda: torch.tensor([1.0, 2.0]) + torch.tensor(1.0, dtype=torch.float64), torch.float32),
        (lambda: torch.tensor([1, 2]) + torch.tensor(1.0, dtype=torch.float64), torch.float64),
        (lambda: torch.tensor([1, 2], dtype=torch.int32) + torch.tensor(5), torch.int32),
        (lambda: torch.tensor([1.0], dtype=torch.float16) + torch.tensor(2.5), torch.float16),
        (lambda: torch.tensor(1) + torch.tensor(2.0, dtype=torch.float64), torch.float64),
        (lambda: torch.tensor([True]) + torch.tensor([True]), torch.bool),
        (lambda: torch.tensor([True]) + 1, torch.int64),
        (lambda: torch.tensor([True]) + 1.5, torch.float32),
        (lambda: torch.tensor([True]) * torch.tensor([2.0]), torch.float32),
        (lambda: torch.tensor([1, 2]) / torch.tensor([2, 2]), torch.float32),
        (lambda: torch.tensor([1, 2]) / 2, torch.float32),
        (lambda: torch.tensor([1, 2]) // 2, torch.int64),
        (lambda: torch.tensor([1.0, 2.0]) > 1, torch.bool),
    ],
)
def test_type_promotion(make, expected):
    assert make().dtype == expected


def test_integer_true_division_values():
    assert (torch.tensor([1, 3]) / torch.tensor([2, 2])).tolist() == [0.5, 1.5]


@pytest.mark.parametrize(
    "method, expected",
    [
        ("float", torch.float32),
        ("double", torch.float64),
        ("half", torch.float16),
        ("long", torch.int64),
        ("int", torch.int32),
        ("bool", torch.bool),
    ],
)
def test_conversion_methods(method, expected):
    t = torch.tensor([0.0, 1.5, -2.7])
    out = getattr(t, method)()
    assert out.dtype == expected
    assert out.shape == (3,)


def test_conversion_values():
    assert torch.tensor([1.5, 2.7]).long().tolist() == [1, 2]
    assert torch.tensor([-1.5, 2.7]).int().tolist() == [-1, 2]
    assert torch.tensor([0.0, 2.0]).bool().tolist() == [False, True]
    assert torch.tensor([1, 2]).float().tolist() == [1.0, 2.0]


def test_to_dtype():
    t = torch.tensor([1.0, 2.0])
    assert t.to(torch.float64).dtype == torch.float64
    assert t.to(dtype=torch.int64).tolist() == [1, 2]
    assert t.to("cpu").tolist() == [1.0, 2.0]
    assert t.to(torch.float32) is t


def test_conversion_returns_copy():
    t = torch.tensor([1.0, 2.0])
    d = t.double()
    d.add_(1)
    assert t.tolist() == [1.0, 2.0]


def test_conversion_is_differentiable():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == torch.float32
    assert x.grad.tolist() == [2.0, 4.0]


# ---------------------------------------------------------------------------
# Attributes and accessors
# ---------------------------------------------------------------------------


def test_shape_size_and_friends():
    t = torch.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4)
    assert isinstance(t.shape, tuple)
    assert t.shape == torch.Size([2, 3, 4])
    assert t.size() == (2, 3, 4)
    assert t.size(0) == 2
    assert t.size(1) == 3
    assert t.size(-1) == 4
    assert t.numel() == 24
    assert t.dim() == 3
    assert t.ndim == 3
    assert len(t) == 2


def test_scalar_tensor_attributes():
    t = torch.tensor(3.5)
    assert t.shape == ()
    assert t.dim() == 0
    assert t.numel() == 1
    assert t.item() == 3.5


def test_transpose_attribute():
    t = torch.tensor([[1, 2, 3], [4, 5, 6]])
    assert t.T.shape == (3, 2)
    assert t.T.tolist() == [[1, 4], [2, 5], [3, 6]]


def test_item_returns_python_types():
    f = torch.tensor([2.5]).item()
    i = torch.tensor(7).item()
    b = torch.tensor(True).item()
    assert type(f) is float and f == 2.5
    assert type(i) is int and i == 7
    assert type(b) is bool and b is True


def test_item_on_multi_element_tensor_raises():
    with pytest.raises(RuntimeError, match="a Tensor with 3 elements cannot be converted to Scalar"):
        torch.ones(3).item()


def test_tolist():
    assert torch.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert torch.tensor(3).tolist() == 3
    values = torch.tensor([0.5, 1.0]).tolist()
    assert all(type(v) is float for v in values)


def test_data_attribute():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    d = x.data
    assert not d.requires_grad
    assert d.is_leaf
    assert d.tolist() == [1.0, 2.0]


def test_grad_attribute_and_grad_fn():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    assert x.grad is None
    y = x * 2
    assert y.grad_fn is not None
    assert not y.is_leaf
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_grad_can_be_assigned():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    x.grad = torch.tensor([0.5, 0.5])
    assert x.grad.tolist() == [0.5, 0.5]
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.5, 2.5]


def test_device():
    t = torch.tensor([1.0])
    assert str(t.device) == "cpu"
    assert t.device == torch.device("cpu")
    assert t.device.type == "cpu"
    assert torch.device("cpu").index is None
    cuda = torch.device("cuda:0")
    assert cuda.type == "cuda"
    assert cuda.index == 0
    assert str(cuda) == "cuda:0"
    assert torch.device("cuda", 1).index == 1
    assert torch.device("cpu") != cuda


def test_cuda_is_available_returns_bool():
    assert isinstance(torch.cuda.is_available(), bool)


# ---------------------------------------------------------------------------
# repr / str
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: torch.tensor([4.0, 27.0]), "tensor([ 4., 27.])"),
        (lambda: torch.tensor([1.5, 2.25]), "tensor([1.5000, 2.2500])"),
        (lambda: torch.tensor([0.1, -2.5, 100.0]), "tensor([  0.1000,  -2.5000, 100.0000])"),
        (lambda: torch.tensor([-1.0, 2.0]), "tensor([-1.,  2.])"),
        (lambda: torch.tensor([1, 2, 3]), "tensor([1, 2, 3])"),
        (lambda: torch.tensor([-1, 20, 3]), "tensor([-1, 20,  3])"),
        (lambda: torch.tensor([1.0, 2.0], requires_grad=True), "tensor([1., 2.], requires_grad=True)"),
        (
            lambda: torch.tensor([1.0, 2.0], requires_grad=True) * 2,
            "tensor([2., 4.], grad_fn=<MulBackward0>)",
        ),
        (
            lambda: torch.tensor([1.0, 2.0], requires_grad=True).sum(),
            "tensor(3., grad_fn=<SumBackward0>)",
        ),
        (lambda: torch.tensor([1.0, 2.0], dtype=torch.float64), "tensor([1., 2.], dtype=torch.float64)"),
        (
            lambda: torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True) * 2,
            "tensor([2., 4.], dtype=torch.float64, grad_fn=<MulBackward0>)",
        ),
        (lambda: torch.tensor([1.0, 2.0], dtype=torch.float16), "tensor([1., 2.], dtype=torch.float16)"),
        (lambda: torch.tensor([1, 2], dtype=torch.int32), "tensor([1, 2], dtype=torch.int32)"),
        (lambda: torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "tensor([[1., 2.],\n        [3., 4.]])"),
        (lambda: torch.tensor([[1, 2, 3], [4, 5, 6]]), "tensor([[1, 2, 3],\n        [4, 5, 6]])"),
        (lambda: torch.zeros(2, 1, 2), "tensor([[[0., 0.]],\n\n        [[0., 0.]]])"),
        (lambda: torch.tensor(3.0), "tensor(3.)"),
        (lambda: torch.tensor(0.5), "tensor(0.5000)"),
        (lambda: torch.tensor(5), "tensor(5)"),
        (lambda: torch.tensor([]), "tensor([])"),
        (lambda: torch.tensor([], dtype=torch.int64), "tensor([], dtype=torch.int64)"),
        (lambda: torch.tensor([True, False]), "tensor([ True, False])"),
        (lambda: torch.tensor(True), "tensor(True)"),
        (lambda: torch.tensor([1e-5, 1.0]), "tensor([1.0000e-05, 1.0000e+00])"),
        (lambda: torch.tensor([float("inf"), float("-inf"), float("nan")]), "tensor([inf, -inf, nan])"),
        (lambda: torch.tensor([float("nan"), 1.0]), "tensor([nan, 1.])"),
        (lambda: torch.tensor([float("inf"), 1.5]), "tensor([   inf, 1.5000])"),
        (lambda: torch.arange(1001.0), "tensor([   0.,    1.,    2.,  ...,  998.,  999., 1000.])"),
    ],
)
def test_repr(make, expected):
    t = make()
    assert normalized_str(t) == expected
    assert repr(t).replace("gradcore.", "torch.") == expected


def test_pickle_round_trip_of_a_leaf_keeps_values_dtype_and_requires_grad():
    import copy
    import pickle

    t = torch.tensor([[1.5, -2.0], [3.0, 4.25]], dtype=torch.float64, requires_grad=True)
    for restored in (pickle.loads(pickle.dumps(t)), copy.copy(t), copy.deepcopy(t)):
        assert restored.tolist() == t.tolist()
        assert restored.dtype == torch.float64
        assert restored.requires_grad
        assert restored.is_leaf
        assert restored.data_ptr() != t.data_ptr()


def test_pickle_of_a_non_leaf_raises():
    import pickle

    t = torch.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="graph leaves"):
        pickle.dumps(t)


def test_tensor_with_a_dtype_converts_python_floats_directly():
    assert torch.tensor([0.1], dtype=torch.float64).item() == 0.1
    assert torch.tensor([1e300], dtype=torch.float64).item() == 1e300
    assert torch.tensor([1.7, -2.5], dtype=torch.int64).tolist() == [1, -2]
