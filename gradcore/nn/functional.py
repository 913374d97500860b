"""``nn.functional``: the stateless forms of the layers and losses (``F.relu(x)``, ``F.cross_entropy(logits, y)``)."""
from __future__ import annotations

import warnings

from .. import creation
from ..backend import array_module
from ..ops import activation as _activation
from ..ops import elementwise as _elementwise
from ..ops import linalg as _linalg
from ..ops import loss as _loss
from ..ops.elementwise import tanh as _tanh
from ..tensor import Tensor

__all__ = ["linear", "relu", "sigmoid", "tanh", "leaky_relu", "gelu", "softmax", "log_softmax", "dropout",
           "mse_loss", "l1_loss", "cross_entropy", "nll_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "silu", "softplus", "elu", "selu", "mish", "hardtanh", "relu6",
           "prelu", "embedding", "layer_norm", "batch_norm", "smooth_l1_loss", "huber_loss", "kl_div"]


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

    The mask comes from gradcore's random generator of the input's device, drawn as PyTorch draws it
    (``bernoulli_(1 - p)``, then divided by ``1 - p``), so that the same seed drops the same elements as on
    PyTorch's CPU.
    """
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        mask = creation.zeros_like(input)
    else:
        mask = creation.empty(input.shape, dtype=input.dtype, device=input.device).bernoulli_(1.0 - p) / (1.0 - p)
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


# -- more activations -------------------------------------------------------------------------------------------
# Written with differentiable tensor ops, so that their gradients (and gradients of gradients) come from the ops'
# own backward formulas. Each form keeps every branch finite, because ``where`` sends a zero gradient into the
# branch it did not pick, and zero times an infinite local derivative would be NaN.

def _same_values(input: Tensor, out: Tensor, inplace: bool) -> Tensor:
    return input.copy_(out) if inplace else out


def _source(input: Tensor, inplace: bool) -> Tensor:
    """What an activation computes from: for an in-place call in a graph, a copy of the input, so that the
    values its backward saved are not the ones the in-place write then overwrites."""
    return input.clone() if inplace and input.requires_grad else input


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """Applies the Sigmoid Linear Unit (SiLU) element-wise: x * sigmoid(x)."""
    x = _source(input, inplace)
    return _same_values(input, x * _activation.sigmoid(x), inplace)


def _softplus_unit(z: Tensor) -> Tensor:
    """log(1 + exp(z)), as z + log1p(exp(-z)) for z > 0: exp never overflows, and at 0 the gradient is 1/2."""
    positive = _activation.clamp(z, min=0)
    negative = _activation.clamp(z, max=0)
    return _elementwise.where(z > 0, positive + (-positive).exp().log1p(), negative.exp().log1p())


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """Applies 1/beta * log(1 + exp(beta * x)) element-wise, and x itself where beta * x > threshold."""
    scaled = input * beta
    smooth = _softplus_unit(scaled) / beta if beta != 1.0 else _softplus_unit(scaled)
    return _elementwise.where(scaled > threshold, input, smooth)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """Applies the Exponential Linear Unit element-wise: x where x > 0, alpha * (exp(x) - 1) elsewhere."""
    x = _source(input, inplace)
    negative_part = _activation.clamp(x, max=0).expm1() * alpha
    return _same_values(input, _elementwise.where(x > 0, x, negative_part), inplace)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """Applies scale * elu(x, alpha) element-wise with the self-normalising constants of Klambauer et al."""
    x = _source(input, inplace)
    negative_part = _activation.clamp(x, max=0).expm1() * (_SELU_ALPHA * _SELU_SCALE)
    out = _elementwise.where(x > 0, x * _SELU_SCALE, negative_part)
    return _same_values(input, out, inplace)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """Applies the Mish function element-wise: x * tanh(softplus(x))."""
    x = _source(input, inplace)
    return _same_values(input, x * _tanh(_softplus_unit(x)), inplace)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """Clamps every element into [min_val, max_val]; the gradient passes strictly inside the interval."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    x = _source(input, inplace)
    clamped = _activation.clamp(x, min_val, max_val)
    # PyTorch's hardtanh (unlike clamp) passes no gradient at the bounds themselves.
    inside = (x > min_val) & (x < max_val)
    out = _elementwise.where(inside, x, clamped.detach())
    return _same_values(input, out, inplace)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """Applies min(max(0, x), 6) element-wise."""
    return hardtanh(input, 0.0, 6.0, inplace)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """Applies max(0, x) + weight * min(0, x) element-wise, ``weight`` one slope or one per channel (dim 1)."""
    if weight.numel() != 1:
        channels = input.shape[1] if input.ndim >= 2 else 1
        if weight.ndim != 1 or weight.numel() != channels:
            raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                               f"{weight.numel()} and channel size = {channels}.")
        if input.ndim >= 2:
            weight = weight.reshape((channels,) + (1,) * (input.ndim - 2))
    elif weight.ndim > 0:
        weight = weight.reshape(())
    return _elementwise.where(input > 0, input, input * weight)


# -- embeddings and normalization -------------------------------------------------------------------------------

def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Looks up rows of ``weight`` by the integer indices in ``input``: the result has shape input.shape + (dim,).

    ``padding_idx``'s row gets no gradient; ``max_norm`` renormalises (in place, as PyTorch does) the looked-up
    rows whose ``norm_type``-norm exceeds it; ``scale_grad_by_freq`` divides each row's gradient by how often
    the row occurs in ``input``.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"embedding(): argument 'indices' (position 2) must be Tensor, not {type(input).__name__}")
    if input.dtype.is_floating_point or input.dtype.name == "bool":
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got {input.type()} instead (while checking arguments for embedding)")
    if weight.ndim != 2:
        raise RuntimeError("'weight' must be 2-D")
    if sparse:
        raise NotImplementedError("embedding(sparse=True): gradcore has no sparse gradients")
    rows = weight.shape[0]
    if padding_idx is not None:
        if padding_idx > 0:
            if padding_idx >= rows:
                raise AssertionError("Padding_idx must be within num_embeddings")
        elif padding_idx < 0:
            if padding_idx < -rows:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx = rows + padding_idx
    if input.numel() and (int(input.min()) < 0 or int(input.max()) >= rows):
        raise IndexError("index out of range in self")
    if max_norm is not None:
        _embedding_renorm_(weight, input, max_norm, norm_type)
    out = weight[input]
    if out.requires_grad and (padding_idx is not None or scale_grad_by_freq):
        scale = creation.ones(input.shape, dtype=weight.dtype, device=weight.device)
        if scale_grad_by_freq:
            counts = creation.zeros(rows, dtype=weight.dtype, device=weight.device)
            counts._data[...] = array_module(counts._data).bincount(input._data.reshape(-1), minlength=rows)
            scale = scale / counts[input]
        if padding_idx is not None:
            scale = scale * (input != padding_idx).to(weight.dtype)
        scale = scale.unsqueeze(-1)
        out.register_hook(lambda grad: grad * scale)
    return out


def _embedding_renorm_(weight: Tensor, input: Tensor, max_norm: float, norm_type: float) -> None:
    """Scales the rows of ``weight`` that ``input`` names, whose norm exceeds ``max_norm``, down to it (in place)."""
    from ..autograd.grad_mode import no_grad

    xp = array_module(weight._data)
    with no_grad():
        used = xp.unique(input._data.reshape(-1))
        norms = (xp.abs(weight._data[used]) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
        too_long = norms > max_norm
        scales = max_norm / (norms[too_long] + 1e-7)
        weight._data[used[too_long]] *= scales[:, None].astype(weight._data.dtype)
        weight._version_counter.value += 1


def _normalized_dims(input: Tensor, normalized_shape) -> tuple:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not shape or tuple(input.shape[input.ndim - len(shape):]) != shape or input.ndim < len(shape):
        listed = ", ".join(str(s) for s in shape)
        sizes = ", ".join(str(s) for s in input.shape)
        raise RuntimeError(f"Given normalized_shape=[{listed}], expected input with shape [*, {listed}], but got "
                           f"input of size[{sizes}]")
    return tuple(range(input.ndim - len(shape), input.ndim))


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Applies Layer Normalization over the last dims (``normalized_shape``): (x - mean) / sqrt(var + eps)."""
    dims = _normalized_dims(input, normalized_shape)
    mean = input.mean(dims, keepdim=True)
    centered = input - mean
    variance = (centered * centered).mean(dims, keepdim=True)
    out = centered * (variance + eps).rsqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Applies Batch Normalization for each channel (dim 1) across the batch and any further dims.

    In training the batch statistics normalise the input and the running ones, when given, move a
    fraction ``momentum`` towards them (the running variance towards the unbiased batch variance).
    Otherwise the running statistics normalise it.
    """
    if input.ndim < 2:
        raise ValueError(f"Expected 2D or more input (got {input.ndim}D input)")
    channels = input.shape[1]
    dims = (0,) + tuple(range(2, input.ndim))
    count = input.numel() // channels if channels else 0
    shape = (1, channels) + (1,) * (input.ndim - 2)
    if training:
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {input.shape}")
        mean = input.mean(dims, keepdim=True)
        centered = input - mean
        variance = (centered * centered).mean(dims, keepdim=True)
        if running_mean is not None or running_var is not None:
            from ..autograd.grad_mode import no_grad

            with no_grad():
                if running_mean is not None:
                    running_mean.mul_(1 - momentum).add_(mean.detach().reshape(channels) * momentum)
                if running_var is not None:
                    unbiased = variance.detach().reshape(channels) * (count / (count - 1))
                    running_var.mul_(1 - momentum).add_(unbiased * momentum)
        out = centered * (variance + eps).rsqrt()
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
        out = (input - running_mean.reshape(shape)) * (running_var.reshape(shape) + eps).rsqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


# -- more losses ------------------------------------------------------------------------------------------------

def smooth_l1_loss(input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Measures 0.5 * d^2 / beta where |d| < beta and |d| - 0.5 * beta elsewhere (d = input - target), reduced."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    if beta == 0.0:
        return _loss.l1_loss(input, target, reduction)
    _loss._check_reduction(reduction)
    return _loss.SmoothL1Loss.apply(input, target, reduction, float(beta))


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """Measures 0.5 * d^2 where |d| < delta and delta * (|d| - 0.5 * delta) elsewhere (d = input - target)."""
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    _loss._check_reduction(reduction)
    if weight is None:
        return _loss.HuberLoss.apply(input, target, reduction, float(delta))
    # As PyTorch: the elementwise loss, weighted, then reduced (three nodes).
    return _loss.reduce_loss(_loss.HuberLoss.apply(input, target, "none", float(delta)) * weight, reduction)


def kl_div(input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """The Kullback-Leibler divergence of ``target`` from the log-probabilities ``input``, reduced.

    Pointwise ``target * (log(target) - input)`` (0 where target is 0), or ``exp(target) * (target - input)``
    with ``log_target``. ``reduction='batchmean'`` divides the sum by the batch size, which is the true KL
    divergence; ``'mean'`` divides by the number of elements, as PyTorch does (with its warning).
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum", "batchmean"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      stacklevel=2)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        positive = target > 0
        safe_target = _elementwise.where(positive, target, creation.ones_like(target))
        loss = target * safe_target.log() - target * input
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim else total
    return _loss.reduce_loss(loss, reduction)
