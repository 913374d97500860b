"""gradcore.distributed before ``init_process_group``: PyTorch's errors, raised at the call (no MPI needed)."""
from __future__ import annotations

import pytest

import gradcore
import gradcore.distributed as dist


def _calls(lib, distributed):
    t = lib.ones(2)
    return {
        "get_rank": lambda: distributed.get_rank(),
        "get_world_size": lambda: distributed.get_world_size(),
        "all_reduce": lambda: distributed.all_reduce(t),
        "broadcast": lambda: distributed.broadcast(t, 0),
        "all_gather": lambda: distributed.all_gather([t], t),
        "reduce_scatter": lambda: distributed.reduce_scatter(t, [t]),
        "reduce": lambda: distributed.reduce(t, 0),
        "gather": lambda: distributed.gather(t, [t], dst=0),
        "scatter": lambda: distributed.scatter(t, [t], src=0),
        "all_to_all": lambda: distributed.all_to_all([t], [t]),
        "all_to_all_single": lambda: distributed.all_to_all_single(t, t),
        "barrier": lambda: distributed.barrier(),
        "send": lambda: distributed.send(t, 1),
    }


@pytest.mark.parametrize("name", list(_calls(gradcore, dist)))
def test_collectives_before_init_raise_pytorchs_error(name: str) -> None:
    torch = pytest.importorskip("torch")
    import torch.distributed as torch_dist
    with pytest.raises(ValueError) as theirs:
        _calls(torch, torch_dist)[name]()
    with pytest.raises(ValueError) as ours:
        _calls(gradcore, dist)[name]()
    assert str(ours.value) == str(theirs.value)


def test_state_before_init() -> None:
    assert dist.is_available() and not dist.is_initialized()
    with pytest.raises(AssertionError, match="Process group cannot be None"):
        dist.destroy_process_group()
    with pytest.raises(ValueError, match="Invalid backend: 'gloo'"):
        dist.init_process_group("gloo")
    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        gradcore.nn.parallel.DistributedDataParallel(gradcore.nn.Linear(2, 2))


def test_reduce_op_names() -> None:
    torch = pytest.importorskip("torch")
    for name in ("SUM", "AVG", "PRODUCT", "MIN", "MAX"):
        assert repr(getattr(dist.ReduceOp, name)) == repr(getattr(torch.distributed.ReduceOp, name))


def test_debug_level_is_checked(monkeypatch) -> None:
    from gradcore.distributed._environment import debug_level
    monkeypatch.setenv("TORCH_DISTRIBUTED_DEBUG", "detail")
    assert debug_level() == "DETAIL"
    monkeypatch.setenv("TORCH_DISTRIBUTED_DEBUG", "LOUD")
    with pytest.raises(ValueError, match="must be OFF, INFO, or DETAIL"):
        debug_level()


def test_work_wait_is_bounded_by_the_timeout() -> None:
    from gradcore.distributed._work import Work
    polls = []
    never = Work(lambda: polls.append(1) and False, "all_reduce (op SUM) of shape [2]", 0.2, rank=3)
    with pytest.raises(dist.DistBackendError, match=r"\[Rank 3\] all_reduce \(op SUM\) of shape \[2\] timed out "
                                                    r"after 0.2 s"):
        never.wait()
    assert not never.is_completed() and len(polls) > 2
    finished = []
    eventually = Work(lambda: len(polls) > 0 and bool(polls.pop()), "barrier", 5.0, rank=0,
                      finish=lambda: finished.append(True))
    assert eventually.wait() is True and eventually.is_completed() and finished == [True]
    assert eventually.wait() is True and finished == [True]  # the finishing step runs once
