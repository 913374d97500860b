"""Loss functions: mean squared and absolute error, negative log-likelihood, cross entropy and binary cross entropy.

Each function takes PyTorch's arguments (``reduction`` is ``'none'``, ``'mean'`` or ``'sum'``).  Losses that are a
few core ops (mse, l1, nll, cross entropy) are written as compositions; the two binary cross entropies are
Functions of their own, because their composition is either unstable or has the wrong gradient where ``log`` is
clamped.
"""
from __future__ import annotations

import warnings

from .. import _dtypes
from ..autograd.function import Function
from ._util import Tensor, array_module, make_tensor, meta, quiet_float_errors, reduce_grad
from .activation import log_softmax, sigmoid
from .indexing import gather_backward

__all__ = ["mse_loss", "l1_loss", "nll_loss", "cross_entropy", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "reduce_loss"]

_REDUCTIONS = ("none", "mean", "sum")
_LOG_FLOOR = -100.0  # PyTorch clamps the logs of BCE here, so that log(0) gives a large finite loss
_BCE_GRAD_EPSILON = 1e-12  # and keeps x * (1 - x) above this in the gradient


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")


def reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    """Returns the elementwise ``loss`` unchanged ('none'), averaged ('mean') or summed ('sum')."""
    _check_reduction(reduction)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _warn_if_broadcast(input: Tensor, target: Tensor) -> None:
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
            "This will likely lead to incorrect results due to broadcasting. Please ensure they have the same size.",
            stacklevel=3,
        )


class _DistanceLoss(Function):
    """A loss of d = input - target elementwise, then reduced, as one node named as PyTorch's (``MseLossBackward0``
    ...). Subclasses give the elementwise loss of an array and its derivative in d as tensor ops (so that it can
    be differentiated again)."""

    builtin = True
    operands = 2

    @staticmethod
    def losses(d, parameter):  # pragma: no cover - subclasses implement
        raise NotImplementedError

    @staticmethod
    def derivative(d: Tensor, parameter) -> Tensor:  # pragma: no cover - subclasses implement
        raise NotImplementedError

    @staticmethod
    def forward(ctx, x, y, reduction, parameter):
        d = (x - y)._data  # (the tensor op: its broadcasting, promotion and device checks)
        losses = ctx._forward_cls.losses(d, parameter)
        ctx.save_for_backward(x, y)
        ctx.meta = (meta(x), meta(y), losses.shape, reduction, parameter)
        return _reduce_array(losses, reduction)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        meta_x, meta_y, shape, reduction, parameter = ctx.meta
        g = _spread(grad, reduction, shape) * ctx._forward_cls.derivative(x - y, parameter)
        gx = reduce_grad(g, *meta_x) if ctx.needs_input_grad[0] else None
        gy = reduce_grad(-g, *meta_y) if ctx.needs_input_grad[1] else None
        return gx, gy, None, None


class MseLoss(_DistanceLoss):
    node_name = "MseLossBackward0"

    @staticmethod
    def losses(d, parameter):
        return d * d

    @staticmethod
    def derivative(d, parameter):
        return d * 2


class SmoothL1Loss(_DistanceLoss):
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere."""

    node_name = "SmoothL1LossBackward0"

    @staticmethod
    def losses(d, beta):
        distance = array_module(d).abs(d)
        return array_module(d).where(distance < beta, distance * distance * (0.5 / beta), distance - 0.5 * beta)

    @staticmethod
    def derivative(d, beta):
        from .elementwise import where

        return where(d.abs() < beta, d / beta, d.sign())


class HuberLoss(_DistanceLoss):
    """0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere."""

    node_name = "HuberLossBackward0"

    @staticmethod
    def losses(d, delta):
        distance = array_module(d).abs(d)
        return array_module(d).where(distance < delta, distance * distance * 0.5, (distance - 0.5 * delta) * delta)

    @staticmethod
    def derivative(d, delta):
        from .elementwise import where

        return where(d.abs() < delta, d, d.sign() * delta)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Returns the mean squared error (squared L2 norm) between each element of ``input`` and ``target``."""
    _check_reduction(reduction)
    _warn_if_broadcast(input, target)
    return MseLoss.apply(input, target, reduction, None)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Returns the mean absolute error between each element of ``input`` and ``target``."""
    _check_reduction(reduction)
    _warn_if_broadcast(input, target)
    return reduce_loss((input - target).abs(), reduction)


# -- negative log-likelihood and cross entropy -------------------------------------------------------------------

def _check_class_target(input: Tensor, target: Tensor) -> None:
    """Checks a class-index target against an (N, C, d1, ...) or (C,) input, with PyTorch's messages."""
    if target.dtype.name not in ("int64", "uint8"):
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {target.dtype.legacy_name}")
    if input.ndim == 0:
        raise ValueError("Expected 1 or more dimensions (got 0)")
    if input.ndim == 1:
        if target.ndim != 0:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        return
    if target.ndim == 0 or input.shape[0] != target.shape[0]:
        batch = target.shape[0] if target.ndim else 1
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size ({batch}).")
    if tuple(target.shape[1:]) != tuple(input.shape[2:]):
        raise RuntimeError(f"Expected target size {[input.shape[0]] + list(input.shape[2:])}, got {list(target.shape)}")


def _target_weights(target: Tensor, weight: Tensor | None, ignore_index: int, n_classes: int, like: Tensor):
    """Returns (the target with ignored entries replaced by class 0, the weight of each target element).

    An ignored element weighs 0, so it neither adds to the loss nor to the mean's denominator.
    """
    data = target._data.astype("int64", copy=False)
    xp = array_module(data)
    kept = data != ignore_index
    bad = kept & ((data < 0) | (data >= n_classes))
    if bad.any():
        raise IndexError(f"Target {int(data[bad].ravel()[0])} is out of bounds.")
    safe = make_tensor(xp.where(kept, data, 0))
    kept_weight = make_tensor(kept.astype(like.dtype.numpy))
    if weight is None:
        return safe, kept_weight
    return safe, weight.to(like.dtype)[safe] * kept_weight


def _check_weight(weight: Tensor | None, n_classes: int) -> None:
    if weight is not None and (weight.ndim != 1 or weight.shape[0] != n_classes):
        raise RuntimeError(
            f"weight tensor should be defined either for all {n_classes} classes or no classes but got weight "
            f"tensor of shape: {list(weight.shape)}"
        )


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Returns the negative log likelihood loss of log-probabilities ``input`` (N, C, ...) for class indices ``target``.

    With ``reduction='mean'`` the sum is divided by the total weight of the non-ignored targets.
    """
    _check_reduction(reduction)
    _check_class_target(input, target)
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    _check_weight(weight, n_classes)
    safe_target, target_weight = _target_weights(target, weight, ignore_index, n_classes, input)
    node = NllLoss if input.ndim <= 2 else NllLoss2d
    return node.apply(input, target_weight, safe_target.unsqueeze(class_dim), class_dim, reduction)


class NllLoss(Function):
    """-input[target] times the target's weight, reduced (the mean divides by the total weight): one node, as
    PyTorch's ``NllLossBackward0`` (``NllLoss2DBackward0`` for inputs of more than two dims)."""

    node_name = "NllLossBackward0"
    builtin = True
    operands = 2

    @staticmethod
    def forward(ctx, x, target_weight, index, class_dim, reduction):
        xd, wd = x._data, target_weight._data
        xp = array_module(xd)
        picked = xp.take_along_axis(xd, index._data, axis=class_dim).squeeze(class_dim)
        losses = -(picked * wd)
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, target_weight, index)
        ctx.meta = (tuple(xd.shape), class_dim, reduction)
        _show_input_and_target_only(ctx, 1)
        if reduction == "none":
            return losses
        if reduction == "sum":
            return losses.sum()
        with quiet_float_errors(xd):  # no target weighs anything: 0 / 0, NaN as in PyTorch
            return losses.sum() / wd.sum()

    @staticmethod
    def backward(ctx, grad):
        x, target_weight, index = ctx.saved_tensors
        shape, class_dim, reduction = ctx.meta
        total = None
        if reduction == "mean":
            total = target_weight.sum()
            grad = grad / total
        grad = grad.expand(target_weight.shape)
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = gather_backward(-(grad * target_weight).unsqueeze(class_dim), class_dim, index._data, shape)
        if ctx.needs_input_grad[1]:
            # (gradcore differentiates the class weights, which PyTorch does not)
            picked = x.gather(class_dim, index).squeeze(class_dim)
            gw = -(grad * picked)
            if total is not None:  # the mean -sum(p w) / sum(w) also depends on w through its denominator
                gw = gw + grad * ((picked * target_weight).sum() / total)
        return gx, gw, None, None, None


class NllLoss2d(NllLoss):
    node_name = "NllLoss2DBackward0"


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Returns the cross entropy between the logits ``input`` and ``target`` (class indices or class probabilities).

    With ``label_smoothing`` = e the target mixes (1 - e) of itself with e of the uniform distribution over classes.
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if input.ndim == 0:
        raise ValueError("Expected 1 or more dimensions (got 0)")
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    _check_weight(weight, n_classes)
    log_probs = log_softmax(input, class_dim)
    if target.dtype.is_floating_point:
        return _cross_entropy_with_probabilities(log_probs, target, weight, reduction, label_smoothing, class_dim)

    loss = nll_loss(log_probs, target, weight, ignore_index, reduction)
    if label_smoothing == 0.0:
        return loss
    # The uniform part: minus the (weighted) sum of all log-probabilities of each element, 0 where ignored.
    class_weight = _class_weight_shape(weight, log_probs, class_dim)
    weighted = log_probs if class_weight is None else log_probs * class_weight
    _, target_weight = _target_weights(target, weight, ignore_index, n_classes, input)
    kept = make_tensor((target._data != ignore_index).astype(input.dtype.numpy))
    smooth = -weighted.sum(dim=class_dim) * kept
    if reduction == "sum":
        smooth = smooth.sum()
    elif reduction == "mean":
        smooth = smooth.sum() / target_weight.sum()
    return loss * (1.0 - label_smoothing) + smooth * (label_smoothing / n_classes)


def _class_weight_shape(weight: Tensor | None, like: Tensor, class_dim: int) -> Tensor | None:
    """Returns the class weights shaped to broadcast along ``class_dim`` of ``like``."""
    if weight is None:
        return None
    shape = [1] * like.ndim
    shape[class_dim] = weight.shape[0]
    return weight.to(like.dtype).reshape(shape)


def _cross_entropy_with_probabilities(log_probs: Tensor, target: Tensor, weight, reduction: str,
                                      label_smoothing: float, class_dim: int) -> Tensor:
    if tuple(target.shape) != tuple(log_probs.shape):
        raise RuntimeError(
            f"Expected target size {list(log_probs.shape)}, got {list(target.shape)}"
        )
    n_classes = log_probs.shape[class_dim]
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / n_classes
    class_weight = _class_weight_shape(weight, log_probs, class_dim)
    weighted = log_probs * target if class_weight is None else log_probs * target * class_weight
    if reduction == "none":
        return -weighted.sum(dim=class_dim)
    total = -weighted.sum()  # (summed over everything, then negated, in PyTorch's order)
    if reduction == "mean":
        # With probabilities, the mean is over the elements of the batch, whatever the weights.
        batch = log_probs.numel() // n_classes if log_probs.ndim > 1 else 1
        return total / batch
    return total


# -- binary cross entropy ---------------------------------------------------------------------------------------

def _reduce_array(losses, reduction: str):
    """The elementwise losses (an array) kept, averaged or summed, as a loss Function's forward returns them."""
    if reduction == "mean":
        if losses.size == 0:
            return array_module(losses).full((), float("nan"), dtype=losses.dtype)
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


def _spread(grad: Tensor, reduction: str, shape: tuple) -> Tensor:
    """The gradient of each elementwise loss of ``shape``, from the gradient of the reduced loss."""
    if reduction == "none":
        return grad
    if reduction == "mean":
        count = 1
        for n in shape:
            count *= n
        grad = grad / count
    return grad.expand(shape)


def _show_input_and_target_only(ctx, shown: int = 2) -> None:
    """PyTorch's loss nodes link to the input and the target only (it does not differentiate the weights): so do
    ours, unless a weight requires grad (which gradcore differentiates)."""
    if len(ctx.next_functions) > shown and not any(ctx.needs_input_grad[shown:len(ctx.next_functions)]):
        ctx.next_functions = ctx.next_functions[:shown]


class BinaryCrossEntropy(Function):
    """-(y log x + (1 - y) log(1 - x)) elementwise, each log clamped at -100, times ``weight``, then reduced: one
    node, as PyTorch's."""

    node_name = "BinaryCrossEntropyBackward0"
    builtin = True
    operands = 3

    @staticmethod
    def forward(ctx, x, y, weight, reduction):
        xd, yd = x._data, y._data
        xp = array_module(xd)
        with quiet_float_errors(xd):
            log_x = xp.maximum(xp.log(xd), _LOG_FLOOR)
            log_1mx = xp.maximum(xp.log1p(-xd), _LOG_FLOOR)
        losses = (log_1mx * (yd - 1) - log_x * yd).astype(xd.dtype, copy=False)
        if weight is not None:
            losses = (losses * weight._data).astype(_dtypes.result_type(x, weight).numpy, copy=False)
        ctx.save_for_backward(x, y, weight)
        _show_input_and_target_only(ctx)
        ctx.meta = (meta(x), meta(y), meta(weight), losses.shape, reduction)
        return _reduce_array(losses, reduction)

    @staticmethod
    def backward(ctx, grad):
        x, y, weight = ctx.saved_tensors
        meta_x, meta_y, meta_w, shape, reduction = ctx.meta
        g = _spread(grad, reduction, shape)
        gw = None
        if ctx.needs_input_grad[2]:
            unweighted = -(y * x.log().clamp(min=_LOG_FLOOR) + (1 - y) * (-x).log1p().clamp(min=_LOG_FLOOR))
            gw = reduce_grad(g * unweighted, *meta_w)
        if weight is not None:
            g = g * weight
        gx = gy = None
        if ctx.needs_input_grad[0]:
            # d/dx = (x - y) / (x (1 - x)), its denominator kept away from 0 as in PyTorch.
            gx = reduce_grad(g * (x - y) / (x * (1 - x)).clamp(min=_BCE_GRAD_EPSILON), *meta_x)
        if ctx.needs_input_grad[1]:
            # PyTorch does not clamp here: the target's gradient is infinite where x is 0 or 1.
            gy = reduce_grad(g * ((-x).log1p() - x.log()), *meta_y)
        return gx, gy, gw


class BinaryCrossEntropyWithLogits(Function):
    """(1 - y) x + (1 + (p - 1) y) softplus(-x) elementwise (BCE of sigmoid(x), computed without overflow), times
    ``weight``, then reduced: one node, as PyTorch's."""

    node_name = "BinaryCrossEntropyWithLogitsBackward0"
    builtin = True
    operands = 4

    @staticmethod
    def forward(ctx, x, y, pos_weight, weight, reduction):
        xd, yd = x._data, y._data
        xp = array_module(xd)
        # softplus(-x) = -log(sigmoid(x)) = log1p(exp(-|x|)) + max(-x, 0): exp never sees a positive argument.
        softplus_neg = xp.log1p(xp.exp(-xp.abs(xd))) + xp.maximum(-xd, 0)
        if pos_weight is None:
            out = (1 - yd) * xd + softplus_neg
        else:
            out = (1 - yd) * xd + (1 + (pos_weight._data - 1) * yd) * softplus_neg
        losses = out.astype(xd.dtype, copy=False)
        if weight is not None:
            losses = (losses * weight._data).astype(_dtypes.result_type(x, weight).numpy, copy=False)
        ctx.save_for_backward(x, y, pos_weight, weight)
        _show_input_and_target_only(ctx)
        ctx.meta = (meta(x), meta(y), meta(pos_weight), meta(weight), losses.shape, reduction)
        return _reduce_array(losses, reduction)

    @staticmethod
    def backward(ctx, grad):
        x, y, pos_weight, weight = ctx.saved_tensors
        meta_x, meta_y, meta_p, meta_w, shape, reduction = ctx.meta
        needs = ctx.needs_input_grad
        g = _spread(grad, reduction, shape)
        softplus_neg = None
        if needs[1] or needs[2] or needs[3]:
            softplus_neg = (-x.abs()).exp().log1p() + (-x).relu()
        gw = None
        if needs[3]:
            unweighted = (1 - y) * x + (softplus_neg if pos_weight is None else
                                        ((pos_weight - 1) * y + 1) * softplus_neg)
            gw = reduce_grad(g * unweighted, *meta_w)
        if weight is not None:
            g = g * weight
        gx = gy = gp = None
        if pos_weight is None:
            if needs[0]:
                gx = reduce_grad(g * (sigmoid(x) - y), *meta_x)
            if needs[1]:
                gy = reduce_grad(g * -x, *meta_y)
            return gx, gy, None, gw
        if needs[0]:
            log_weight = (pos_weight - 1) * y + 1
            gx = reduce_grad(g * ((1 - y) - log_weight * sigmoid(-x)), *meta_x)
        if needs[1]:
            gy = reduce_grad(g * ((pos_weight - 1) * softplus_neg - x), *meta_y)
        if needs[2]:
            gp = reduce_grad(g * y * softplus_neg, *meta_p)
        return gx, gy, gp, gw


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """Returns the binary cross entropy between probabilities ``input`` and ``target`` (logs clamped at -100)."""
    _check_reduction(reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Using a target size ({target.shape}) that is different to the input size ({input.shape}) is "
            "deprecated. Please ensure they have the same size."
        )
    data = input._data
    if data.size and ((data < 0) | (data > 1)).any():
        raise RuntimeError("all elements of input should be between 0 and 1")
    return BinaryCrossEntropy.apply(input, target, weight, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """Returns the binary cross entropy of sigmoid(``input``) and ``target``, stable for any logit.

    ``pos_weight`` (broadcast along the last dim) multiplies the loss of the positive examples.
    """
    _check_reduction(reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    return BinaryCrossEntropyWithLogits.apply(input, target, pos_weight, weight, reduction)
