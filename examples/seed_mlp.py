#!/usr/bin/env python3
"""Train a two-layer network by hand with gradcore, exactly as a PyTorch user would.

The network is ``relu(x @ w1) @ w2`` with a sum-of-squares loss, trained by plain
gradient descent: autograd computes the gradients, and the weights are updated
under ``torch.no_grad()`` before the gradients are zeroed for the next step.

Usage::

    python examples/seed_mlp.py                  # 500 steps on the CPU
    python examples/seed_mlp.py --device cuda    # the same on a CUDA GPU
    GRADCORE_EXAMPLE_QUICK=1 python examples/seed_mlp.py   # 50 steps (smoke test)

The script exits with an error message if the loss did not fall far enough:
below 1% of the initial loss for a run of 500 steps or more, below 10% for a
shorter run.
"""

from __future__ import annotations

import argparse
import os

import gradcore as torch

DEFAULT_STEPS = 500
QUICK_STEPS = 50
PRINT_EVERY = 100
# Largest accepted final/initial loss ratio. A 500-step run typically ends many
# orders of magnitude lower; 50 steps typically reach a ratio below 1e-3.
MAX_RATIO_FULL = 0.01
MAX_RATIO_SHORT = 0.1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; GRADCORE_EXAMPLE_QUICK=1 cuts the default step count."""
    quick = os.environ.get("GRADCORE_EXAMPLE_QUICK", "") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="where to train (default: cpu)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=QUICK_STEPS if quick else DEFAULT_STEPS,
        help=f"training steps (default: {DEFAULT_STEPS}, or {QUICK_STEPS} with GRADCORE_EXAMPLE_QUICK=1)",
    )
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    return args


def train(device: str, steps: int) -> tuple[float, float]:
    """Train the two-layer network for `steps` steps and return (initial loss, final loss)."""
    torch.manual_seed(0)

    # N is the batch size; D_in the input dimension; H the hidden dimension; D_out the output dimension.
    N, D_in, H, D_out = 64, 1000, 100, 10

    x = torch.randn(N, D_in, device=device)
    y = torch.randn(N, D_out, device=device)
    w1 = torch.randn(D_in, H, device=device, requires_grad=True)
    w2 = torch.randn(H, D_out, device=device, requires_grad=True)

    learning_rate = 1e-6
    initial_loss = final_loss = float("nan")
    for t in range(steps):
        y_pred = x.mm(w1).clamp(min=0).mm(w2)
        loss = (y_pred - y).pow(2).sum()
        if t == 0:
            initial_loss = loss.item()
        if t == steps - 1:
            final_loss = loss.item()
        if t % PRINT_EVERY == PRINT_EVERY - 1:
            print(f"step {t + 1:4d}  loss {loss.item():.6g}")

        loss.backward()

        with torch.no_grad():
            w1 -= learning_rate * w1.grad
            w2 -= learning_rate * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()

    return initial_loss, final_loss


def main(argv: list[str] | None = None) -> None:
    """Run the example and raise SystemExit with a message if the loss did not drop enough."""
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")

    initial_loss, final_loss = train(args.device, args.steps)
    max_ratio = MAX_RATIO_FULL if args.steps >= DEFAULT_STEPS else MAX_RATIO_SHORT
    print(f"initial loss {initial_loss:.6g}")
    print(f"final loss   {final_loss:.6g}  ({args.steps} steps, ratio {final_loss / initial_loss:.3g})")
    # Written so that a NaN loss fails the check too.
    if not final_loss < max_ratio * initial_loss:
        raise SystemExit(
            f"FAILED: final loss {final_loss:.6g} is not below "
            f"{max_ratio:g} x initial loss {initial_loss:.6g}"
        )


if __name__ == "__main__":
    main()
