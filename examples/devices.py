#!/usr/bin/env python3
"""Move a model and its optimizer between devices with gradcore's ``.to()``, and check training carries on.

A small regression network is trained with Adam in three legs: on the CPU, then on the chosen device, then
on the CPU again. Between legs, ``model.to(device)`` moves the parameters (the Parameter objects stay the
same, so the optimizer still updates them) and a loop over ``optimizer.state`` moves Adam's running averages
with ``Tensor.to``. A second network, built from the same seed, trains the same number of steps without
leaving the CPU; the two loss curves must match: bit for bit when the round trip stays on the CPU, to float32
rounding when it passes through a GPU.

Usage::

    python examples/devices.py                  # round trip CPU -> CPU -> CPU (works without a GPU)
    python examples/devices.py --device cuda    # round trip CPU -> CUDA -> CPU
    GRADCORE_EXAMPLE_QUICK=1 python examples/devices.py   # 5 steps per leg instead of 20 (smoke test)

The script exits with an error message if the losses do not match, or if ``--device cuda`` is asked for on a
machine where CUDA is not available.
"""

from __future__ import annotations

import argparse
import os

import gradcore as torch
from gradcore import nn

DEFAULT_STEPS_PER_LEG = 20
QUICK_STEPS_PER_LEG = 5
LEARNING_RATE = 1e-2
# Tolerance of the comparison when the middle leg runs on a GPU: its matrix products round differently from
# the CPU's, and Adam carries those differences forward, but over a few dozen steps they stay near 1e-6.
GPU_RTOL = 1e-4
GPU_ATOL = 1e-6


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; GRADCORE_EXAMPLE_QUICK=1 cuts the default number of steps per leg."""
    quick = os.environ.get("GRADCORE_EXAMPLE_QUICK", "") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device",
        default="cpu",
        choices=["cpu", "cuda"],
        help="where the middle leg of the round trip runs (default: cpu)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=QUICK_STEPS_PER_LEG if quick else DEFAULT_STEPS_PER_LEG,
        help=(
            f"training steps per leg (default: {DEFAULT_STEPS_PER_LEG}, "
            f"or {QUICK_STEPS_PER_LEG} with GRADCORE_EXAMPLE_QUICK=1)"
        ),
    )
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    return args


def make_data() -> tuple[torch.Tensor, torch.Tensor]:
    """Return 64 random inputs of 10 features and noisy linear targets for them, on the CPU."""
    torch.manual_seed(0)
    inputs = torch.randn(64, 10)
    targets = inputs @ torch.randn(10, 1) + 0.1 * torch.randn(64, 1)
    return inputs, targets


def build(seed: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    """Return a fresh 10-32-1 network on the CPU, initialised from `seed`, and an Adam optimizer for it."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
    return model, torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)


def move_optimizer_state(optimizer: torch.optim.Optimizer, device: str) -> None:
    """Move every tensor of the optimizer's per-parameter state (Adam's averages and step count) to `device`.

    ``model.to()`` moves only the parameters; the optimizer's state lives in ``optimizer.state`` and moves on
    its own.
    """
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                state[key] = value.to(device)


def train_steps(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: tuple[torch.Tensor, torch.Tensor],
    steps: int,
) -> list[float]:
    """Train for `steps` steps on the device the model is on and return the loss of each step."""
    device = next(model.parameters()).device
    inputs, targets = (tensor.to(device) for tensor in data)
    loss_fn = nn.MSELoss()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def describe(model: nn.Module, optimizer: torch.optim.Optimizer) -> str:
    """Return where the model's first parameter and the optimizer's state for it are, as one line."""
    parameter = next(model.parameters())
    exp_avg = optimizer.state[parameter]["exp_avg"]
    return f"parameters on {parameter.device}, Adam's exp_avg on {exp_avg.device}"


def main(argv: list[str] | None = None) -> None:
    """Run the round trip and the CPU-only reference, and raise SystemExit if their losses differ."""
    args = parse_args(argv)
    if torch.cuda.is_available():
        print(f"CUDA is available ({torch.cuda.device_count()} device(s))")
        if args.device == "cpu":
            print("the round trip stays on the CPU; pass --device cuda to take it through the GPU")
    elif args.device == "cuda":
        raise SystemExit(
            "--device cuda: CUDA is not available on this machine (torch.cuda.is_available() is False); "
            "run without --device to see the CPU round trip"
        )
    else:
        print("CUDA is not available on this machine: the round trip stays on the CPU (cpu -> cpu -> cpu)")

    data = make_data()
    steps = args.steps

    # The reference: the same network and optimizer, trained for all three legs on the CPU.
    reference_model, reference_optimizer = build(seed=1)
    reference = train_steps(reference_model, reference_optimizer, data, 3 * steps)

    model, optimizer = build(seed=1)
    # As in PyTorch, Module.to() moves the parameters in place: the optimizer knows only the original
    # Parameter objects, so the check after the loop makes sure they are still the model's.
    parameter = next(model.parameters())
    legs: list[list[float]] = []
    for number, device in enumerate(["cpu", args.device, "cpu"], start=1):
        model = model.to(device)
        move_optimizer_state(optimizer, device)
        if optimizer.state:
            print(f"moved to {device}: {describe(model, optimizer)}")
        legs.append(train_steps(model, optimizer, data, steps))
        print(f"leg {number} on {device}: loss {legs[-1][0]:.6f} -> {legs[-1][-1]:.6f} ({steps} steps)")
    round_trip = [loss for leg in legs for loss in leg]

    if next(model.parameters()) is not parameter:
        raise SystemExit("FAILED: model.to() replaced the Parameter objects; the optimizer lost them")
    if args.device == "cpu":
        matches = round_trip == reference
        how = "bit for bit"
    else:
        matches = torch.allclose(
            torch.tensor(round_trip, dtype=torch.float64),
            torch.tensor(reference, dtype=torch.float64),
            rtol=GPU_RTOL,
            atol=GPU_ATOL,
        )
        how = f"to rtol {GPU_RTOL:g}"
    worst = max(abs(a - b) for a, b in zip(round_trip, reference))
    print(f"CPU-only reference: loss {reference[0]:.6f} -> {reference[-1]:.6f} ({3 * steps} steps)")
    if not matches:
        raise SystemExit(
            f"FAILED: the losses after moving cpu -> {args.device} -> cpu differ from the CPU-only run "
            f"(largest difference {worst:.3g})"
        )
    print(f"losses after the round trip cpu -> {args.device} -> cpu match the CPU-only run {how} "
          f"(largest difference {worst:.3g})")


if __name__ == "__main__":
    main()
