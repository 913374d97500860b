"""StepLR and CosineAnnealingLR: learning-rate sequences against PyTorch's and against the closed forms."""

import math
import warnings

import pytest

import gradcore
from gradcore.optim import lr_scheduler


def make_optimizer(lib, lrs=(0.1, 0.03)):
    params = [lib.zeros(2, requires_grad=True) for _ in lrs]
    return lib.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], lr=1.0, momentum=0.9)


def lr_sequence(lib, make_scheduler, epochs, optimizer_lrs=(0.1, 0.03)):
    """get_last_lr() after creation and after each of ``epochs`` steps (optimizer.step() first, as users do)."""
    optimizer = make_optimizer(lib, optimizer_lrs)
    scheduler = make_scheduler(lib.optim.lr_scheduler, optimizer)
    sequence = [scheduler.get_last_lr()]
    for _ in range(epochs):
        optimizer.step()
        scheduler.step()
        sequence.append(scheduler.get_last_lr())
        assert [g["lr"] for g in optimizer.param_groups] == sequence[-1]
    return sequence


SCHEDULERS = {
    "step": lambda m, opt: m.StepLR(opt, step_size=3, gamma=0.5),
    "step_default_gamma": lambda m, opt: m.StepLR(opt, step_size=1),
    "cosine": lambda m, opt: m.CosineAnnealingLR(opt, T_max=7, eta_min=0.001),
    "cosine_zero_min": lambda m, opt: m.CosineAnnealingLR(opt, T_max=4),
}


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_lr_sequence_matches_torch(name):
    torch = pytest.importorskip("torch")
    ours = lr_sequence(gradcore, SCHEDULERS[name], 30)
    theirs = lr_sequence(torch, SCHEDULERS[name], 30)
    assert len(ours) == 31
    for our_lrs, their_lrs in zip(ours, theirs):
        assert our_lrs == pytest.approx(their_lrs, rel=1e-12, abs=1e-15)


def test_step_lr_values():
    sequence = lr_sequence(gradcore, SCHEDULERS["step"], 7, (0.1,))
    assert [lrs[0] for lrs in sequence] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025])


def test_cosine_follows_the_closed_form_and_comes_back_up_after_t_max():
    t_max, eta_min, base = 7, 0.001, 0.1
    sequence = [lrs[0] for lrs in lr_sequence(gradcore, SCHEDULERS["cosine"], 2 * t_max, (base,))]
    expected = [
        eta_min + (base - eta_min) * (1 + math.cos(math.pi * e / t_max)) / 2 for e in range(2 * t_max + 1)
    ]
    assert sequence == pytest.approx(expected, rel=1e-9)
    assert sequence[t_max] == pytest.approx(eta_min) and sequence[2 * t_max] == pytest.approx(base)


def test_creating_a_scheduler_records_initial_lr_and_base_lrs():
    optimizer = make_optimizer(gradcore)
    scheduler = lr_scheduler.StepLR(optimizer, step_size=2)
    assert [g["initial_lr"] for g in optimizer.param_groups] == [0.1, 0.03]
    assert scheduler.base_lrs == [0.1, 0.03] and scheduler.last_epoch == 0
    assert scheduler.get_last_lr() == [0.1, 0.03]


def test_resuming_needs_initial_lr():
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(make_optimizer(gradcore), step_size=2, last_epoch=3)


def test_step_with_an_epoch_uses_the_closed_form_and_warns():
    optimizer = make_optimizer(gradcore, (0.1,))
    scheduler = lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    with pytest.warns(UserWarning, match="epoch parameter"):
        scheduler.step(5)
    assert scheduler.get_last_lr() == pytest.approx([0.025]) and scheduler.last_epoch == 5
    cosine = lr_scheduler.CosineAnnealingLR(make_optimizer(gradcore, (0.2,)), T_max=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cosine.step(5)
    assert cosine.get_last_lr() == pytest.approx([0.1])


def test_scheduler_state_dict_round_trip_continues_identically():
    optimizer = make_optimizer(gradcore)
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=5, eta_min=0.01)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    state = scheduler.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 3 and state["T_max"] == 5
    saved_optimizer = optimizer.state_dict()

    resumed_optimizer = make_optimizer(gradcore)
    resumed_optimizer.load_state_dict(saved_optimizer)
    resumed = lr_scheduler.CosineAnnealingLR(resumed_optimizer, T_max=99)
    resumed.load_state_dict(state)
    assert resumed.T_max == 5
    for _ in range(6):
        optimizer.step()
        scheduler.step()
        resumed_optimizer.step()
        resumed.step()
        assert resumed.get_last_lr() == scheduler.get_last_lr()


def test_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.StepLR(object(), step_size=1)
