"""Samplers with replacement, WeightedRandomSampler, random_split, ConcatDataset, IterableDataset and the
module layout of utils.data, against PyTorch (the same seed must give the same indices)."""
import numpy as np
import pytest

import gradcore
from gradcore.utils import data

torch = pytest.importorskip("torch")


def test_modules_are_importable_like_torchs():
    from gradcore.utils.data.dataloader import DataLoader, default_collate
    from gradcore.utils.data.dataset import ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset
    from gradcore.utils.data.sampler import RandomSampler, Sampler, WeightedRandomSampler

    assert DataLoader is data.DataLoader and default_collate is data.default_collate
    assert Dataset is data.Dataset and IterableDataset is data.IterableDataset and Subset is data.Subset
    assert TensorDataset is data.TensorDataset and ConcatDataset is data.ConcatDataset
    assert Sampler is data.Sampler and RandomSampler is data.RandomSampler
    assert WeightedRandomSampler is data.WeightedRandomSampler
    for name in ("dataloader", "dataset", "sampler"):
        assert hasattr(torch.utils.data, name) and hasattr(data, name)


@pytest.mark.parametrize("num_samples", [5, 32, 70])
@pytest.mark.parametrize("with_generator", [False, True])
def test_random_sampler_with_replacement_draws_torchs_indices(num_samples, with_generator):
    draws = []
    for lib in (gradcore, torch):
        lib.manual_seed(3)
        generator = lib.Generator().manual_seed(11) if with_generator else None
        sampler = lib.utils.data.RandomSampler(range(13), replacement=True, num_samples=num_samples,
                                               generator=generator)
        draws.append([list(sampler), list(sampler)])
        assert len(sampler) == num_samples
    assert draws[0] == draws[1]
    assert len(set(draws[0][0])) > 1


def test_random_sampler_rejects_what_torch_rejects():
    with pytest.raises(ValueError, match="num_samples should be a positive integer value"):
        data.RandomSampler(range(3), replacement=True, num_samples=0)
    with pytest.raises(TypeError, match="replacement should be a boolean value"):
        data.RandomSampler(range(3), replacement=1)


@pytest.mark.parametrize("weights", [[0.1, 0.9, 0.4, 0.0, 2.0], [1.0, 1.0], [5.0, 0.001, 3.0, 3.0, 0.5, 0.5, 1.0]])
def test_weighted_random_sampler_with_replacement_draws_torchs_indices(weights):
    draws = []
    for lib in (gradcore, torch):
        lib.manual_seed(0)
        sampler = lib.utils.data.WeightedRandomSampler(weights, 40)
        seeded = lib.utils.data.WeightedRandomSampler(lib.tensor(weights), 25,
                                                      generator=lib.Generator().manual_seed(4))
        draws.append([list(sampler), list(sampler), list(seeded)])
    assert draws[0] == draws[1]
    if weights[3:4] == [0.0]:
        assert 3 not in draws[0][0]


def test_weighted_random_sampler_without_replacement_and_errors():
    gradcore.manual_seed(0)
    sampler = data.WeightedRandomSampler([1.0, 0.0, 5.0, 2.0], 3, replacement=False)
    drawn = list(sampler)
    assert sorted(drawn) == [0, 2, 3] and len(sampler) == 3
    # The heaviest weight comes first most of the time.
    firsts = [next(iter(sampler)) for _ in range(400)]
    assert firsts.count(2) > firsts.count(3) > firsts.count(0)
    with pytest.raises(ValueError, match="num_samples should be a positive integer value"):
        data.WeightedRandomSampler([1.0], 0)
    with pytest.raises(ValueError, match="weights should be a 1d sequence"):
        data.WeightedRandomSampler([[1.0, 2.0]], 2)
    with pytest.raises(RuntimeError, match="cannot sample n_sample > prob_dist.size"):
        list(data.WeightedRandomSampler([1.0, 0.0], 3, replacement=False))


@pytest.mark.parametrize("seed", [0, 1, 7, 2024])
@pytest.mark.parametrize("replacement, num_samples", [(False, 1), (False, 3), (False, 7), (True, 1)])
def test_weighted_random_sampler_without_replacement_or_one_sample_draws_torchs_indices(seed, replacement,
                                                                                        num_samples):
    # PyTorch draws these through multinomial's exponential (Gumbel-max) path rather than the cumulative one.
    weights = [0.1, 0.9, 0.4, 0.0, 2.0, 0.7, 3.0]
    many = np.random.default_rng(seed).random(60).tolist()
    draws = []
    for lib in (gradcore, torch):
        lib.manual_seed(seed)
        sampler = lib.utils.data.WeightedRandomSampler(weights, num_samples, replacement=replacement)
        seeded = lib.utils.data.WeightedRandomSampler(lib.tensor(many), num_samples, replacement=replacement,
                                                      generator=lib.Generator().manual_seed(seed + 1))
        draws.append([list(sampler), list(sampler), list(seeded), list(seeded)])
    assert draws[0] == draws[1]
    assert len(draws[0][0]) == num_samples
    if not replacement:
        assert all(len(set(drawn)) == num_samples for drawn in draws[0])


@pytest.mark.parametrize("weights, num_samples, replacement", [
    ([1.0, 0.0, 0.0], 3, False),  # zero weights are drawn last rather than refused, as in PyTorch
    ([1.0, 0.0, 0.0], 4, False),
    ([-1.0, 1.0], 1, True),
    ([-1.0, 1.0], 2, True),
    ([0.0, 0.0], 2, True),
    ([float("nan"), 1.0], 1, False),
    ([float("inf"), 1.0], 2, True),
])
def test_weighted_random_sampler_bad_weights_match_torch(weights, num_samples, replacement):
    outcomes = []
    for lib in (gradcore, torch):
        sampler = lib.utils.data.WeightedRandomSampler(weights, num_samples, replacement=replacement,
                                                       generator=lib.Generator().manual_seed(0))
        try:
            outcomes.append(list(sampler))
        except RuntimeError as error:
            outcomes.append(str(error))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("lengths", [[3, 7], [0.3, 0.7], [0.5, 0.25, 0.25], [0.33, 0.33, 0.34], [4, 0, 6]])
def test_random_split_draws_torchs_permutation(lengths):
    splits = []
    for lib in (gradcore, torch):
        parts = lib.utils.data.random_split(range(10), lengths, generator=lib.Generator().manual_seed(42))
        splits.append([list(part) for part in parts])
        assert all(isinstance(part, lib.utils.data.Subset) for part in parts)
    assert splits[0] == splits[1]
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        data.random_split(range(10), [3, 3])


def test_random_split_fraction_errors_and_warnings():
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        data.random_split(range(3), [1.0, 0.0])


def test_concat_dataset_and_subset():
    first = data.TensorDataset(gradcore.arange(4))
    second = data.TensorDataset(gradcore.arange(10, 13))
    both = first + second
    assert isinstance(both, data.ConcatDataset) and len(both) == 7 and both.cumulative_sizes == [4, 7]
    assert [both[i][0].item() for i in range(7)] == [0, 1, 2, 3, 10, 11, 12]
    assert both[-1][0].item() == 12
    with pytest.raises(ValueError, match="absolute value of index should not exceed dataset length"):
        both[-8]
    with pytest.raises(AssertionError, match="datasets should not be an empty iterable"):
        data.ConcatDataset([])
    subset = data.Subset(both, [6, 0, 4])
    assert [subset[i][0].item() for i in range(3)] == [12, 0, 10]
    loader = data.DataLoader(subset, batch_size=2)
    assert [batch[0].tolist() for batch in loader] == [[12, 0], [10]]


class Countdown(data.IterableDataset):
    def __init__(self, start, with_length=True):
        self.start = start
        self.with_length = with_length

    def __iter__(self):
        return iter(range(self.start, 0, -1))

    def __len__(self):
        if not self.with_length:
            raise TypeError("no length")
        return self.start


class TorchCountdown(torch.utils.data.IterableDataset):
    def __init__(self, start):
        self.start = start

    def __iter__(self):
        return iter(range(self.start, 0, -1))

    def __len__(self):
        return self.start


@pytest.mark.parametrize("batch_size,drop_last", [(3, False), (3, True), (None, False), (1, False)])
def test_dataloader_over_an_iterable_dataset_matches_torch(batch_size, drop_last):
    ours = data.DataLoader(Countdown(7), batch_size=batch_size, drop_last=drop_last)
    theirs = torch.utils.data.DataLoader(TorchCountdown(7), batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs)
    our_batches = [b.tolist() if isinstance(b, gradcore.Tensor) else b for b in ours]
    their_batches = [b.tolist() if isinstance(b, torch.Tensor) else b for b in theirs]
    assert our_batches == their_batches
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        data.DataLoader(Countdown(3), shuffle=True)
    with pytest.raises(ValueError, match="expected unspecified sampler option"):
        data.DataLoader(Countdown(3), sampler=[0, 1])


def test_dataloader_over_an_iterable_dataset_keeps_the_random_stream_in_step():
    gradcore.manual_seed(5)
    torch.manual_seed(5)
    list(data.DataLoader(Countdown(4), batch_size=2))
    list(torch.utils.data.DataLoader(TorchCountdown(4), batch_size=2))
    np.testing.assert_array_equal(gradcore.rand(3, device="cpu").numpy(), torch.rand(3).numpy())
