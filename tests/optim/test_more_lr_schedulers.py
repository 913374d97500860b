"""MultiStepLR, ExponentialLR, LambdaLR, LinearLR, OneCycleLR, ReduceLROnPlateau, SequentialLR and
CosineAnnealingWarmRestarts: learning-rate (and momentum) sequences against PyTorch's, and state dict round trips.
"""

import pytest

import gradcore

torch = pytest.importorskip("torch")


def make_optimizer(lib, kind="SGD", lrs=(0.1, 0.03)):
    params = [lib.zeros(2, requires_grad=True) for _ in lrs]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs)]
    if kind == "Adam":
        return lib.optim.Adam(groups, lr=1.0)
    return lib.optim.SGD(groups, lr=1.0, momentum=0.9)


def warmup(epoch):
    return min(1.0, (epoch + 1) / 4) * 0.9 ** epoch


class Scale:
    """A callable object: its attributes are part of LambdaLR's state dict."""

    def __init__(self, factor):
        self.factor = factor

    def __call__(self, epoch):
        return self.factor ** epoch


SCHEDULERS = {
    "multistep": lambda m, opt: m.MultiStepLR(opt, milestones=[2, 5, 5, 9], gamma=0.3),
    "exponential": lambda m, opt: m.ExponentialLR(opt, gamma=0.8),
    "lambda": lambda m, opt: m.LambdaLR(opt, warmup),
    "lambda_per_group": lambda m, opt: m.LambdaLR(opt, [warmup, Scale(0.7)]),
    "linear": lambda m, opt: m.LinearLR(opt, start_factor=0.25, end_factor=0.9, total_iters=6),
    "linear_default": lambda m, opt: m.LinearLR(opt),
    "onecycle": lambda m, opt: m.OneCycleLR(opt, max_lr=[0.5, 0.2], total_steps=14),
    "onecycle_linear_three_phase": lambda m, opt: m.OneCycleLR(opt, max_lr=0.4, epochs=2, steps_per_epoch=7,
                                                                anneal_strategy="linear", three_phase=True,
                                                                pct_start=0.25),
    "onecycle_no_momentum": lambda m, opt: m.OneCycleLR(opt, max_lr=0.4, total_steps=14, cycle_momentum=False),
    "warm_restarts": lambda m, opt: m.CosineAnnealingWarmRestarts(opt, T_0=3, eta_min=0.001),
    "warm_restarts_mult": lambda m, opt: m.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2),
    "sequential": lambda m, opt: m.SequentialLR(opt, [m.LinearLR(opt, start_factor=0.1, total_iters=3),
                                                      m.ExponentialLR(opt, gamma=0.7)], milestones=[4]),
    "sequential_three": lambda m, opt: m.SequentialLR(opt, [m.ExponentialLR(opt, gamma=0.9),
                                                            m.MultiStepLR(opt, [2, 4], gamma=0.5),
                                                            m.CosineAnnealingLR(opt, T_max=3)], milestones=[3, 7]),
}
EPOCHS = 13


def momenta(optimizer):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in optimizer.param_groups]


def run(lib, make, kind="SGD", epochs=EPOCHS, scheduler_state=None):
    optimizer = make_optimizer(lib, kind)
    scheduler = make(lib.optim.lr_scheduler, optimizer)
    sequence = [(scheduler.get_last_lr(), momenta(optimizer))]
    for _ in range(epochs):
        optimizer.step()
        scheduler.step()
        sequence.append((scheduler.get_last_lr(), momenta(optimizer)))
        assert [g["lr"] for g in optimizer.param_groups] == sequence[-1][0]
    return sequence, scheduler, optimizer


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_lr_and_momentum_sequences_match_torch(name, kind):
    ours, _, _ = run(gradcore, SCHEDULERS[name], kind)
    theirs, _, _ = run(torch, SCHEDULERS[name], kind)
    assert len(ours) == len(theirs)
    for (lrs, moms), (t_lrs, t_moms) in zip(ours, theirs):
        assert lrs == pytest.approx(t_lrs, rel=1e-13, abs=1e-15)
        assert moms == pytest.approx(t_moms, rel=1e-13)
    assert len({tuple(lrs) for lrs, _ in ours}) > 2  # the schedule moved


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_state_dict_round_trip_continues_identically(name):
    _, scheduler, _ = run(gradcore, SCHEDULERS[name], epochs=5)
    state = scheduler.state_dict()
    assert "optimizer" not in state
    _, t_scheduler, _ = run(torch, SCHEDULERS[name], epochs=5)
    # PyTorch's one extra key is the flag behind its "get_lr called outside step" warning.
    assert set(state) == set(t_scheduler.state_dict()) - {"_get_lr_called_within_step"}
    # A fresh pair, moved to the same epoch by loading the state: both optimizers keep the saved rates.
    uninterrupted, _, _ = run(gradcore, SCHEDULERS[name], epochs=9)
    optimizer = make_optimizer(gradcore)
    resumed = SCHEDULERS[name](gradcore.optim.lr_scheduler, optimizer)
    resumed.load_state_dict(state)
    for group, lr in zip(optimizer.param_groups, state["_last_lr"]):
        group["lr"] = lr
    if "_schedulers" in state:
        for group, lr in zip(optimizer.param_groups, state["_last_lr"]):
            group["lr"] = lr
    for step in range(4):
        optimizer.step()
        resumed.step()
        assert resumed.get_last_lr() == pytest.approx(uninterrupted[6 + step][0], rel=1e-13)


def plateau_run(lib, **options):
    optimizer = make_optimizer(lib)
    scheduler = lib.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **options)
    metrics = [5.0, 4.0, 4.0, 3.99999, 4.1, 4.2, 4.3, 2.0, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0, 3.1, 1.0, 1.5, 1.6, 1.7]
    rates = []
    for value in metrics:
        optimizer.step()
        scheduler.step(value if options.get("mode") != "max" else -value)
        rates.append(scheduler.get_last_lr())
    return rates, scheduler


@pytest.mark.parametrize("options", [
    {}, {"patience": 1}, {"patience": 2, "cooldown": 2, "factor": 0.5},
    {"mode": "max", "patience": 1, "threshold": 0.1}, {"threshold_mode": "abs", "threshold": 0.5, "patience": 0},
    {"patience": 0, "min_lr": [0.01, 0.02]}, {"patience": 0, "min_lr": 0.05, "factor": 0.2},
])
def test_reduce_lr_on_plateau_matches_torch(options):
    ours, scheduler = plateau_run(gradcore, **options)
    theirs, t_scheduler = plateau_run(torch, **options)
    assert [lr for lrs in ours for lr in lrs] == pytest.approx([lr for lrs in theirs for lr in lrs], rel=1e-13)
    if options:  # (with the default patience of 10 these metrics never reduce the rate)
        assert len({tuple(lrs) for lrs in ours}) > 1
    state = scheduler.state_dict()
    assert set(state) == set(t_scheduler.state_dict()) - {"_get_lr_called_within_step"}
    assert state["best"] == t_scheduler.state_dict()["best"]
    assert state["num_bad_epochs"] == t_scheduler.state_dict()["num_bad_epochs"]


@pytest.mark.parametrize("make,message", [
    (lambda m, opt: m.ReduceLROnPlateau(opt, factor=1.0), "Factor should be < 1.0."),
    (lambda m, opt: m.ReduceLROnPlateau(opt, mode="up"), "mode up is unknown!"),
    (lambda m, opt: m.LinearLR(opt, start_factor=0), "Starting multiplicative factor"),
    (lambda m, opt: m.CosineAnnealingWarmRestarts(opt, T_0=0), "Expected positive integer T_0, but got 0"),
    (lambda m, opt: m.OneCycleLR(opt, max_lr=0.1), "You must define either total_steps"),
    (lambda m, opt: m.LambdaLR(opt, [warmup]), "Expected 2 lr_lambdas, but got 1"),
    (lambda m, opt: m.SequentialLR(opt, [m.ExponentialLR(opt, 0.5)], milestones=[2]),
     "Sequential Schedulers expects number of schedulers provided to be one more"),
])
def test_errors_match_torch(make, message):
    for lib in (gradcore, torch):
        with pytest.raises(ValueError, match=message):
            make(lib.optim.lr_scheduler, make_optimizer(lib))


def test_onecycle_past_the_end_raises_like_torch():
    for lib in (gradcore, torch):
        optimizer = make_optimizer(lib)
        scheduler = lib.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=2)
        optimizer.step()
        scheduler.step()
        scheduler.step()
        with pytest.raises(ValueError, match="Tried to step 3 times. The specified number of total steps is 2"):
            scheduler.step()


def test_warm_restarts_fractional_epochs_match_torch():
    sequences = []
    for lib in (gradcore, torch):
        optimizer = make_optimizer(lib)
        scheduler = lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=2, T_mult=2)
        rates = []
        for epoch in [0.5, 1.0, 1.75, 2.5, 6.2, 7.0, 3.3]:
            scheduler.step(epoch)
            rates.append(scheduler.get_last_lr())
        sequences.append(rates)
    flat = [[lr for lrs in sequence for lr in lrs] for sequence in sequences]
    assert flat[0] == pytest.approx(flat[1], rel=1e-13)
