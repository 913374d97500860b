"""Datasets, samplers, default_collate and DataLoader (batching, shuffling, drop_last, len, the device option)."""

import collections

import numpy as np
import pytest

import gradcore
from gradcore.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)


def make_dataset(n=10):
    features = gradcore.arange(n * 2, dtype=gradcore.float32).reshape(n, 2)
    labels = gradcore.arange(n)
    return TensorDataset(features, labels)


def labels_of(batches):
    return [batch[1].tolist() for batch in batches]


def order_of(batches):
    """The labels of all batches, in the order they came."""
    return [label for batch in batches for label in batch[1].tolist()]


# -- datasets ---------------------------------------------------------------------------------------------
def test_tensor_dataset_indexing_returns_a_tuple_of_rows():
    dataset = make_dataset(5)
    assert len(dataset) == 5
    sample = dataset[3]
    assert isinstance(sample, tuple) and len(sample) == 2
    assert sample[0].tolist() == [6.0, 7.0] and sample[1].item() == 3
    assert dataset[1:3][0].shape == (2, 2)


def test_tensor_dataset_checks_first_dimensions():
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        TensorDataset(gradcore.zeros(4, 2), gradcore.zeros(5))


def test_dataset_base_class_needs_getitem():
    with pytest.raises(NotImplementedError):
        Dataset()[0]


def test_random_split_partitions_the_dataset():
    gradcore.manual_seed(0)
    train, test = random_split(make_dataset(10), [0.7, 0.3])
    assert isinstance(train, Subset) and (len(train), len(test)) == (7, 3)
    assert sorted(train.indices + test.indices) == list(range(10))
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(make_dataset(10), [3, 3])


# -- collation --------------------------------------------------------------------------------------------
def test_default_collate_stacks_tensors_numbers_and_containers():
    batch = default_collate(
        [(gradcore.tensor([1.0, 2.0]), 1, 0.5, True, "a"), (gradcore.tensor([3.0, 4.0]), 2, 1.5, False, "b")]
    )
    assert isinstance(batch, list) and len(batch) == 5  # a tuple of fields comes back as a list
    assert batch[0].tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert batch[1].dtype is gradcore.int64 and batch[1].tolist() == [1, 2]
    assert batch[2].dtype is gradcore.float64 and batch[2].tolist() == [0.5, 1.5]
    assert batch[3].dtype is gradcore.bool and batch[3].tolist() == [True, False]
    assert batch[4] == ["a", "b"]

    as_dict = default_collate([{"x": np.ones(2, np.float32), "y": np.int64(3)}] * 3)
    assert as_dict["x"].shape == (3, 2) and as_dict["x"].dtype is gradcore.float32
    assert as_dict["y"].dtype is gradcore.int64 and as_dict["y"].tolist() == [3, 3, 3]

    exact = default_collate([0.1, 1e300])
    assert exact.dtype is gradcore.float64 and exact.tolist() == [0.1, 1e300]
    scalars = default_collate([np.float64(0.1), np.float64(0.2)])
    assert scalars.dtype is gradcore.float64 and scalars.tolist() == [0.1, 0.2]
    assert default_collate([np.float32(0.5)]).dtype is gradcore.float32

    Point = collections.namedtuple("Point", "x y")
    points = default_collate([Point(1.0, 2), Point(3.0, 4)])
    assert isinstance(points, Point) and points.x.tolist() == [1.0, 3.0]


def test_default_collate_rejects_ragged_lists_and_unknown_types():
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([object(), object()])


# -- the loader -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "n, batch_size, drop_last, sizes",
    [
        (10, 3, False, [3, 3, 3, 1]),
        (10, 3, True, [3, 3, 3]),
        (9, 3, True, [3, 3, 3]),
        (10, 20, False, [10]),
        (10, 20, True, []),
    ],
)
def test_batches_len_and_drop_last(n, batch_size, drop_last, sizes):
    loader = DataLoader(make_dataset(n), batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(sizes) == len(batches)
    assert [len(b[1]) for b in batches] == sizes
    assert order_of(batches) == list(range(sum(sizes)))  # in order without shuffle
    if batches:
        features, labels = batches[0]
        assert features.shape == (sizes[0], 2) and labels.dtype is gradcore.int64


def test_batch_size_one_by_default_and_none_disables_batching():
    dataset = make_dataset(4)
    assert [b[1].shape for b in DataLoader(dataset)] == [(1,)] * 4
    unbatched = list(DataLoader(dataset, batch_size=None))
    assert len(unbatched) == 4 and unbatched[2][1].item() == 2 and unbatched[2][1].shape == ()


def test_shuffle_is_a_permutation_fixed_by_the_seed_and_new_each_epoch():
    loader = DataLoader(make_dataset(20), batch_size=4, shuffle=True)
    gradcore.manual_seed(7)
    first_epoch = order_of(loader)
    second_epoch = order_of(loader)
    gradcore.manual_seed(7)
    again = order_of(loader)
    assert sorted(first_epoch) == list(range(20))
    assert first_epoch != list(range(20)) and first_epoch != second_epoch
    assert again == first_epoch
    gradcore.manual_seed(8)
    assert order_of(loader) != first_epoch


@pytest.mark.cpu_only  # PyTorch's CPU random numbers
def test_a_generator_fixes_the_order_independently_of_the_global_seed():
    orders = []
    for global_seed in (1, 2):
        gradcore.manual_seed(global_seed)
        generator = gradcore.Generator().manual_seed(3)
        loader = DataLoader(make_dataset(12), batch_size=5, shuffle=True, generator=generator)
        orders.append(order_of(loader))
    assert orders[0] == orders[1] and sorted(orders[0]) == list(range(12))
    # What manual_seed returns stands for the global generator, as in PyTorch: it is drawn from directly.
    first = labels_of(
        DataLoader(make_dataset(12), batch_size=5, shuffle=True, generator=gradcore.manual_seed(5))
    )
    again = labels_of(
        DataLoader(make_dataset(12), batch_size=5, shuffle=True, generator=gradcore.manual_seed(5))
    )
    assert first == again == [[7, 4, 8, 10, 1], [2, 6, 11, 0, 9], [5, 3]]  # PyTorch's batches for this seed


@pytest.mark.cpu_only  # PyTorch's CPU random numbers
def test_shuffled_batches_equal_torchs_for_the_same_seed():
    torch = pytest.importorskip("torch")
    for seed in (0, 1, 123):
        for lib in (gradcore, torch):
            lib.manual_seed(seed)
        ours = DataLoader(make_dataset(23), batch_size=4, shuffle=True, drop_last=True)
        features = torch.arange(46, dtype=torch.float32).reshape(23, 2)
        theirs = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(features, torch.arange(23)),
            batch_size=4,
            shuffle=True,
            drop_last=True,
        )
        for _ in range(2):  # two epochs
            assert labels_of(ours) == labels_of(theirs)
        # Loading also draws from the global generator as PyTorch does, so the numbers after it agree too.
        assert gradcore.rand(3, device="cpu").tolist() == torch.rand(3).tolist()


def test_generator_order_equals_torch_generator_order():
    torch = pytest.importorskip("torch")
    ours = DataLoader(
        make_dataset(17), batch_size=3, shuffle=True, generator=gradcore.Generator().manual_seed(42)
    )
    generator = torch.Generator()
    generator.manual_seed(42)
    theirs = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.zeros(17), torch.arange(17)),
        batch_size=3,
        shuffle=True,
        generator=generator,
    )
    assert labels_of(ours) == labels_of(theirs)
    assert labels_of(ours) == labels_of(theirs)


def test_custom_sampler_collate_fn_and_batch_sampler():
    dataset = make_dataset(6)
    loader = DataLoader(
        dataset,
        batch_size=2,
        sampler=[5, 4, 3, 2, 1, 0],
        collate_fn=lambda samples: [int(s[1]) for s in samples],
    )
    assert list(loader) == [[5, 4], [3, 2], [1, 0]]
    by_batches = DataLoader(dataset, batch_sampler=BatchSampler(SequentialSampler(dataset), 4, False))
    assert labels_of(by_batches) == [[0, 1, 2, 3], [4, 5]] and len(by_batches) == 2


def test_mutually_exclusive_options():
    dataset = make_dataset(4)
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(dataset, sampler=[0, 1], shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(dataset, batch_size=2, batch_sampler=[[0, 1]])
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        DataLoader(dataset, batch_size=0)


def test_random_sampler_len_and_samples():
    sampler = RandomSampler(list(range(5)), num_samples=7, generator=gradcore.Generator().manual_seed(0))
    drawn = list(sampler)
    assert len(sampler) == 7 and len(drawn) == 7 and set(drawn) == set(range(5))


def test_device_option_moves_each_batch():
    loader = DataLoader(make_dataset(4), batch_size=2, device="cpu")
    assert loader.device == gradcore.device("cpu")
    for features, labels in loader:
        assert features.device == gradcore.device("cpu") and labels.device == gradcore.device("cpu")


def test_device_option_gives_cuda_batches():
    if not gradcore.cuda.is_available():
        pytest.skip("needs CUDA")
    check_cuda_batches()


def test_device_option_gives_cuda_batches_on_the_cupy_test_double(fake_cuda):
    check_cuda_batches()


def check_cuda_batches():
    features = gradcore.arange(10, dtype=gradcore.float32, device="cpu").reshape(5, 2)
    loader = DataLoader(
        TensorDataset(features, gradcore.arange(5, device="cpu")), batch_size=2, shuffle=True, device="cuda"
    )
    batches = list(loader)
    assert len(batches) == 3
    assert all(f.is_cuda and y.is_cuda for f, y in batches)
    assert sorted(label for _, labels in batches for label in labels.cpu().tolist()) == list(range(5))


def test_device_option_without_cuda_fails_clearly():
    if gradcore.cuda.is_available():
        pytest.skip("checks the message on a machine without CUDA")
    with pytest.raises(RuntimeError, match="CuPy|CUDA"):
        next(iter(DataLoader(make_dataset(4), batch_size=2, device="cuda")))


# -- determinism end to end -----------------------------------------------------------------------------------
def train_losses(lib, seed, epochs=3):
    """Trains a linear model made of raw tensors with a shuffled loader and Adam; returns every batch's loss."""
    lib.manual_seed(seed)
    features = lib.randn(24, 3, dtype=lib.float64)
    targets = features.matmul(lib.tensor([[1.0], [-2.0], [0.5]], dtype=lib.float64)) + 0.1
    weight = lib.randn(3, 1, dtype=lib.float64).requires_grad_()
    bias = lib.zeros(1, dtype=lib.float64, requires_grad=True)
    optimizer = lib.optim.Adam([weight, bias], lr=0.05)
    data = lib.utils.data
    loader = data.DataLoader(data.TensorDataset(features, targets), batch_size=5, shuffle=True)
    losses = []
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            loss = ((x.matmul(weight) + bias - y) ** 2).mean()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


def test_the_same_seed_gives_the_same_losses():
    first = train_losses(gradcore, 0)
    assert len(first) == 15 and sum(first[-5:]) < sum(first[:5])  # it learns: the last epoch beats the first
    assert train_losses(gradcore, 0) == first
    assert train_losses(gradcore, 1) != first


@pytest.mark.cpu_only  # PyTorch's CPU random numbers
def test_the_same_seed_gives_torchs_losses():
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(train_losses(gradcore, 3), train_losses(torch, 3), rtol=1e-10, atol=1e-12)
