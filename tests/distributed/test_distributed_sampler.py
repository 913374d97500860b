"""``DistributedSampler``: the indices of PyTorch's for the same arguments, seed and epoch."""
from __future__ import annotations

import pytest

import gradcore
from gradcore.utils.data import DataLoader, DistributedSampler, TensorDataset


@pytest.mark.parametrize("length", [1, 7, 10, 13])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_indices_match_pytorch(length: int, replicas: int, shuffle: bool, drop_last: bool) -> None:
    torch = pytest.importorskip("torch")
    for rank in range(replicas):
        ours = DistributedSampler(list(range(length)), num_replicas=replicas, rank=rank, shuffle=shuffle, seed=11,
                                  drop_last=drop_last)
        theirs = torch.utils.data.DistributedSampler(list(range(length)), num_replicas=replicas, rank=rank,
                                                     shuffle=shuffle, seed=11, drop_last=drop_last)
        for epoch in (0, 1, 5):
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs), (rank, epoch)
            assert len(ours) == len(theirs)


def test_ranks_cover_the_dataset_and_epochs_differ() -> None:
    samplers = [DistributedSampler(range(10), num_replicas=3, rank=r, seed=2) for r in range(3)]
    first = [list(s) for s in samplers]
    # 10 indices over 3 ranks: 12, the first two of the permutation (ranks 0 and 1 take them first) repeated
    assert sorted(i for part in first for i in part) == sorted(list(range(10)) + [first[0][0], first[1][0]])
    for s in samplers:
        s.set_epoch(1)
    assert [list(s) for s in samplers] != first


def test_with_data_loader() -> None:
    data = TensorDataset(gradcore.arange(8.0))
    loader = DataLoader(data, batch_size=2, sampler=DistributedSampler(data, num_replicas=2, rank=1, shuffle=False))
    assert [batch[0].tolist() for batch in loader] == [[1.0, 3.0], [5.0, 7.0]]


def test_errors_match_pytorch() -> None:
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        DistributedSampler(range(4))
