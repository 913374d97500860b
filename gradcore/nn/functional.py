"""``nn.functional``: the stateless forms of the layers and losses (``F.relu(x)``, ``F.cross_entropy(logits, y)``)."""
from __future__ import annotations

import warnings

from .. import creation
from ..ops import activation as _activation
from ..ops import linalg as _linalg
from ..ops import loss as _loss
from ..ops.elementwise import tanh as _tanh
from ..tensor import Tensor

__all__ = ["linear", "relu", "sigmoid", "tanh", "leaky_relu", "gelu", "softmax", "log_softmax", "dropout",
           "mse_loss", "l1_loss", "cross_entropy", "nll_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits"]


def legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """Returns the ``reduction`` string that the deprecated ``size_average`` / ``reduce`` flags stand for."""
    if size_average is None and reduce is None:
        return reduction
    reduction = _legacy_to_string(size_average, reduce)
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
                  stacklevel=3)
    return reduction


def _legacy_to_string(size_average: bool | None, reduce: bool | None) -> str:
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


# -- layers and activations -------------------------------------------------------------------------------------

def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Applies a linear transformation to the incoming data: y = x A^T + b."""
    if weight.ndim == 2 and input.ndim >= 1:
        return _linalg.linear(input, weight, bias)
    out = input.matmul(weight.t()) if weight.ndim == 2 else input.matmul(weight)
    return out if bias is None else out + bias


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """Applies the rectified linear unit function element-wise: max(0, x)."""
    return input.relu_() if inplace else _activation.relu(input)


def sigmoid(input: Tensor) -> Tensor:
    """Applies the element-wise function 1 / (1 + exp(-x))."""
    return _activation.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    """Applies the element-wise hyperbolic tangent."""
    return _tanh(input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """Applies element-wise max(0, x) + negative_slope * min(0, x)."""
    out = _activation.leaky_relu(input, negative_slope)
    return input.copy_(out) if inplace else out


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Applies x * Phi(x) element-wise (Phi the Gaussian CDF); ``approximate='tanh'`` uses the tanh estimate."""
    return _activation.gelu(input, approximate)


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """Applies a softmax function along ``dim``: exp(x_i) / sum_j exp(x_j)."""
    if dim is None:
        warnings.warn("Implicit dimension choice for softmax has been deprecated. "
                      "Change the call to include dim=X as an argument.", stacklevel=_stacklevel)
    return _activation.softmax(input, dim, dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """Applies a softmax followed by a logarithm along ``dim``, computed without overflow."""
    if dim is None:
        warnings.warn("Implicit dimension choice for log_softmax has been deprecated. "
                      "Change the call to include dim=X as an argument.", stacklevel=_stacklevel)
    return _activation.log_softmax(input, dim, dtype)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """During training, randomly zeroes elements with probability ``p`` and scales the rest by 1 / (1 - p).

    The mask comes from gradcore's random generator of the input's device, so ``manual_seed`` repeats it.
    """
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        mask = creation.zeros_like(input)
    else:
        keep = creation.rand(input.shape, dtype=input.dtype, device=input.device) >= p
        mask = keep.to(input.dtype) * (1.0 / (1.0 - p))
    return input.mul_(mask) if inplace else input * mask


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Returns an int64 tensor of shape ``tensor.shape + (num_classes,)``: one at each class index, zero elsewhere.

    ``num_classes=-1`` takes one more than the largest class in ``tensor``.
    """
    from ..ops.indexing import one_hot as _one_hot

    return _one_hot(tensor, num_classes)


__all__ += ["one_hot"]


# -- losses -----------------------------------------------------------------------------------------------------

def mse_loss(input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
             reduction: str = "mean") -> Tensor:
    """Measures the element-wise mean squared error: (input - target)^2, reduced."""
    return _loss.mse_loss(input, target, legacy_reduction(size_average, reduce, reduction))


def l1_loss(input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
            reduction: str = "mean") -> Tensor:
    """Measures the element-wise mean absolute error: |input - target|, reduced."""
    return _loss.l1_loss(input, target, legacy_reduction(size_average, reduce, reduction))


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
             ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """Computes the negative log likelihood loss of log-probabilities and class indices."""
    return _loss.nll_loss(input, target, weight, ignore_index, legacy_reduction(size_average, reduce, reduction))


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
                  ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Computes the cross entropy loss between input logits and target (class indices or probabilities)."""
    return _loss.cross_entropy(input, target, weight, ignore_index, legacy_reduction(size_average, reduce, reduction),
                               label_smoothing)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> Tensor:
    """Measures the binary cross entropy between target and input probabilities (logs clamped at -100)."""
    return _loss.binary_cross_entropy(input, target, weight, legacy_reduction(size_average, reduce, reduction))


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average: bool | None = None, reduce: bool | None = None,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """Computes binary cross entropy between target and input logits, stable for any logit."""
    return _loss.binary_cross_entropy_with_logits(input, target, weight,
                                                  legacy_reduction(size_average, reduce, reduction), pos_weight)
