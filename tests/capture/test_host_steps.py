"""Host steps (``trace.host_call``): Python that a replay runs at its place among the array operations, on the
program's own arrays (what DistributedDataParallel records for its all-reduces under ``gradcore.compile``)."""
import warnings

import numpy as np

import gradcore as torch
from gradcore._capture import trace


def test_a_host_step_runs_on_every_replay_in_its_place():
    calls = []

    def double_in_place(array):
        calls.append(array.copy())
        array *= 2

    @torch.compile
    def f(x):
        y = x + 1
        trace.host_call(double_in_place, "double", y._data)
        return y * 3

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for k in range(5):
            x = np.arange(3.0) + k
            out = f(torch.from_numpy(x.copy()))
            np.testing.assert_array_equal(out.numpy(), (x + 1) * 2 * 3)
            # The host step saw the value of the operations before it, and the ones after saw what it wrote.
            np.testing.assert_array_equal(calls[-1], x + 1)
    assert len(calls) == 5
    assert f.stats == {"captures": 2, "replays": 3, "eager": 0}
    (program,) = f.programs()
    host = [program.instructions[p] for p in program.live if program.instructions[p].host]
    assert [ins.name for ins in host] == ["double"]
    assert all(not program.instructions[p].host for p in program.live if program.instructions[p].name != "double")
    assert "= double(" in f.listing() and "[host]" in f.listing()


def test_host_call_outside_a_capture_just_calls():
    seen = []
    array = np.ones(2)
    trace.host_call(lambda a: seen.append(a), "look", array)
    assert seen[0] is array


def test_a_host_step_without_arrays_is_replayed_too():
    state = {"calls": 0}

    def bump():
        state["calls"] += 1

    @torch.compile
    def f(x):
        trace.host_call(bump, "bump")
        return x * 2

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for k in range(4):
            np.testing.assert_array_equal(f(torch.full((2,), float(k))).numpy(), [2.0 * k] * 2)
    assert state["calls"] == 4 and f.stats["replays"] == 2
    assert "\nbump() [host]" in f.listing()
