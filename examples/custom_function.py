#!/usr/bin/env python3
"""Define custom autograd Functions with gradcore, check their gradients, and train with them.

The two Functions are the ones users meet first when they write their own derivatives:

- ``SigmoidFunction``: ``forward`` computes ``1 / (1 + exp(-x))`` and saves its *output* with
  ``ctx.save_for_backward``; ``backward`` returns ``grad * y * (1 - y)``.
- ``CustomReLU``: ``forward`` computes ``input.clamp(min=0)`` and saves its *input*; ``backward`` copies the
  incoming gradient and zeroes it where the input was negative.

Each Function is checked three ways: ``gradcore.autograd.gradcheck`` compares its backward with central finite
differences in float64; its values and gradients are compared with the built-in ``torch.sigmoid`` /
``torch.relu``; and a small network built from both is trained by gradient descent, which must lower the loss.

Usage::

    python examples/custom_function.py                  # 200 training steps on the CPU
    python examples/custom_function.py --device cuda    # the same on a CUDA GPU
    GRADCORE_EXAMPLE_QUICK=1 python examples/custom_function.py   # 50 steps (smoke test)

The script exits with an error message if any check fails.
"""

from __future__ import annotations

import argparse
import os

import gradcore as torch

DEFAULT_STEPS = 200
QUICK_STEPS = 50
LEARNING_RATE = 0.5
# Largest accepted final/initial loss ratio. 200 steps typically end near 0.2 and 50 steps near 0.5.
MAX_RATIO_FULL = 0.5
MAX_RATIO_SHORT = 0.8


class SigmoidFunction(torch.autograd.Function):
    """The logistic sigmoid, with its derivative written from the saved output."""

    @staticmethod
    def forward(ctx, input: torch.Tensor) -> torch.Tensor:
        result = 1 / (1 + torch.exp(-input))
        # The derivative y * (1 - y) needs only the output, so the output is what is saved.
        ctx.save_for_backward(result)
        return result

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (result,) = ctx.saved_tensors
        return grad_output * result * (1 - result)


class CustomReLU(torch.autograd.Function):
    """The rectified linear unit, with its derivative written from the saved input."""

    @staticmethod
    def forward(ctx, input: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(input)
        return input.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (input,) = ctx.saved_tensors
        # grad_output may be used elsewhere in the graph, so it is copied before being changed in place.
        grad_input = grad_output.clone()
        grad_input[input < 0] = 0
        return grad_input


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; GRADCORE_EXAMPLE_QUICK=1 cuts the default step count."""
    quick = os.environ.get("GRADCORE_EXAMPLE_QUICK", "") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="where to run (default: cpu)"
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


def report(name: str, passed: bool, detail: str = "") -> bool:
    """Print one check's outcome as `name: passed|FAILED (detail)` and return whether it passed."""
    outcome = "passed" if passed else "FAILED"
    print(f"{name}: {outcome}" + (f" ({detail})" if detail else ""))
    return passed


def check_gradients(device: str) -> bool:
    """Run gradcheck on both Functions in float64 and compare them with the built-in ops; True if all pass."""
    torch.manual_seed(0)
    x = torch.randn(4, 5, dtype=torch.float64, device=device)
    # ReLU has no derivative at 0, and finite differences straddling the kink disagree with either one-sided
    # derivative, so every input is pushed at least 0.1 away from 0.
    x = x + 0.1 * x.sign()
    x.requires_grad_(True)

    ok = True
    for name, function, builtin in [
        ("SigmoidFunction", SigmoidFunction.apply, torch.sigmoid),
        ("CustomReLU", CustomReLU.apply, torch.relu),
    ]:
        try:
            passed = torch.autograd.gradcheck(function, (x,))
            detail = "backward matches central finite differences, float64, 20 inputs"
        except RuntimeError as error:  # gradcheck raises its GradcheckError (a RuntimeError) on a mismatch
            passed, detail = False, str(error).splitlines()[0].rstrip(",")
        ok &= report(f"gradcheck {name}", passed, detail)

        # The same upstream gradient through the custom Function and through the built-in op.
        upstream = torch.randn(x.shape, dtype=torch.float64, device=device)
        (custom_grad,) = torch.autograd.grad(function(x), x, upstream)
        (builtin_grad,) = torch.autograd.grad(builtin(x), x, upstream)
        same_values = torch.allclose(function(x), builtin(x), rtol=1e-12, atol=1e-12)
        same_grads = torch.allclose(custom_grad, builtin_grad, rtol=1e-12, atol=1e-12)
        ok &= report(
            f"{name} against torch.{builtin.__name__}",
            same_values and same_grads,
            f"values {'equal' if same_values else 'differ'}, gradients {'equal' if same_grads else 'differ'}",
        )
    return ok


def train(device: str, steps: int) -> tuple[float, float]:
    """Fit a 2-8-1 network built from the custom Functions to a toy task; return (initial loss, final loss).

    The task is to tell whether a point of the plane lies inside the unit circle. The hidden layer uses
    CustomReLU and the output SigmoidFunction, so every backward pass runs through both custom backwards.
    """
    torch.manual_seed(0)
    points = torch.randn(128, 2, device=device)
    inside = (points.pow(2).sum(dim=1, keepdim=True) < 1).float()

    w1 = (0.5 * torch.randn(2, 8, device=device)).requires_grad_()
    b1 = torch.zeros(8, device=device, requires_grad=True)
    w2 = (0.5 * torch.randn(8, 1, device=device)).requires_grad_()
    b2 = torch.zeros(1, device=device, requires_grad=True)
    parameters = [w1, b1, w2, b2]

    losses = []
    for _ in range(steps):
        hidden = CustomReLU.apply(points.mm(w1) + b1)
        probability = SigmoidFunction.apply(hidden.mm(w2) + b2)
        # Binary cross-entropy, written out; the clamp keeps log away from 0.
        probability = probability.clamp(1e-7, 1 - 1e-7)
        loss = -(inside * probability.log() + (1 - inside) * (1 - probability).log()).mean()
        losses.append(loss.item())

        loss.backward()
        with torch.no_grad():
            for parameter in parameters:
                parameter -= LEARNING_RATE * parameter.grad
                parameter.grad.zero_()
    return losses[0], losses[-1]


def main(argv: list[str] | None = None) -> None:
    """Run the checks and the training, and raise SystemExit with a message if any check fails."""
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")

    ok = check_gradients(args.device)

    initial_loss, final_loss = train(args.device, args.steps)
    max_ratio = MAX_RATIO_FULL if args.steps >= DEFAULT_STEPS else MAX_RATIO_SHORT
    # Written so that a NaN loss fails the check too.
    ok &= report(
        "training with CustomReLU and SigmoidFunction",
        final_loss < max_ratio * initial_loss,
        f"loss {initial_loss:.4f} -> {final_loss:.4f} in {args.steps} steps, needed below "
        f"{max_ratio:g} x the initial loss",
    )
    if not ok:
        raise SystemExit("FAILED: at least one check above failed")
    print("all checks passed")


if __name__ == "__main__":
    main()
