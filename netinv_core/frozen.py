"""The frozen classifier of generator training, and how to run it fast.

Generator training (inversion, reconstruction, the OOD rounds) passes images through a classifier
whose weights must not change: ``frozen`` (evaluation mode, no parameter gradients). The classifier
is the same *function* in ``inversion_ready``, which also folds evaluation-mode BatchNorm into the
convolutions and lays the weights out channels-last (issue 14: together about a third of an
inversion step on the CPU); every change is undone on exit.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch
import torch.nn as nn


@contextmanager
def frozen(model: nn.Module):
    """Evaluation mode and no parameter gradients for the duration; restored afterwards."""
    flags = [p.requires_grad for p in model.parameters()]
    was = model.training
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(was)


def _convolutions(model: nn.Module):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)
            and isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.dim() == 4]


def _channels_last_copy(w: torch.Tensor) -> torch.Tensor:
    """``w`` (O, I, kh, kw) with the explicit channels-last strides (I kh kw, 1, kw I, I)."""
    o, i, kh, kw = w.shape
    cl = torch.empty_strided(w.shape, (i * kh * kw, 1, kw * i, i), dtype=w.dtype, device=w.device)
    return cl.copy_(w.detach())


def channels_last_(model: nn.Module) -> nn.Module:
    """Lay every ``nn.Conv2d`` weight of ``model`` out channels-last for good (the strides of
    ``channels_last_weights``; the same values), for *training* the classifier: create the
    optimiser afterwards. One optimiser step of the quick MNIST classifier takes about 1.2x
    less time (issue 14), with the same numbers up to float rounding; state dicts and cache keys
    are unchanged (``load_state_dict`` copies values, whatever the strides)."""
    for m in _convolutions(model):
        m.weight.data = _channels_last_copy(m.weight.data)
    return model


@contextmanager
def channels_last_weights(model: nn.Module):
    """Every ``nn.Conv2d`` weight of ``model`` in channels-last strides for the duration (the
    same values; the original tensors are put back afterwards).

    ``module.to(memory_format=torch.channels_last)`` leaves a weight with one input channel
    (W of shape (O, 1, k, k)) as it is, since it is already "channels-last contiguous", and a
    1-channel image is too; oneDNN then runs the first block of a grayscale classifier
    (convolution, BatchNorm, activation, pooling) in the slow contiguous layout. The strides set
    here, (I k k, 1, k I, I), mark the layout explicitly, so the whole classifier runs
    channels-last (issue 14; the same numbers up to float rounding)."""
    saved = []
    for m in _convolutions(model):
        saved.append((m.weight, m.weight.data))
        m.weight.data = _channels_last_copy(m.weight.data)
    try:
        yield model
    finally:
        for p, data in saved:
            p.data = data


@contextmanager
def folded_batchnorm(model: nn.Module, keep: tuple[str, ...] = ()):
    """Each ``BatchNorm2d`` that directly follows a ``Conv2d`` in an ``nn.Sequential`` of a model in
    evaluation mode folded into that convolution for the duration; restored afterwards.

    In evaluation mode BatchNorm is the affine map y = g (x - mu) / sqrt(v + eps) + b with its
    running statistics, so BN(conv_{W, c}(x)) = conv_{W', c'}(x) with
        W' = W * s[:, None, None, None],  c' = (c - mu) * s + b,  s = g / sqrt(v + eps):
    the same function (up to float rounding) without BatchNorm's forward and backward passes over
    the largest activations (issue 14). BatchNorm layers named in ``keep`` (e.g. the feature layer
    a ``FeatureTap`` hooks), those in training mode and those already folded (a nested call) are
    left alone."""
    saved = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Sequential):
            continue
        kids = list(mod.named_children())
        for (_, conv), (bn_name, bn) in zip(kids, kids[1:]):
            full = f"{name}.{bn_name}" if name else bn_name
            if not (isinstance(conv, nn.Conv2d) and type(bn) is nn.BatchNorm2d) or bn.training \
                    or full in keep or bn.running_mean is None or bn._forward_hooks \
                    or bn._forward_pre_hooks or conv._forward_hooks or "forward" in vars(bn):
                continue
            scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps) if bn.affine else \
                1.0 / torch.sqrt(bn.running_var + bn.eps)
            shift = bn.bias.detach() if bn.affine else torch.zeros_like(scale)
            bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(scale)
            w = conv.weight.detach()
            folded_w = torch.empty_like(w).copy_(w * scale.view(-1, 1, 1, 1))  # keeps w's strides
            folded_b = (bias - bn.running_mean) * scale + shift
            saved.append((conv, conv.weight.data, conv.bias, bn))
            conv.weight.data = folded_w
            conv.bias = nn.Parameter(folded_b, requires_grad=False)
            bn.forward = _identity
    try:
        yield model
    finally:
        for conv, w, b, bn in saved:
            conv.weight.data = w
            conv.bias = b
            del bn.forward


def _identity(x):
    return x


@contextmanager
def inversion_ready(model: nn.Module, keep: tuple[str, ...] = (), fold: bool = True):
    """The frozen classifier of generator training, fast: ``frozen`` (evaluation mode, no
    parameter gradients), BatchNorm folded into the convolutions (``folded_batchnorm``, unless
    ``fold`` is False) and the weights channels-last (``channels_last_weights``); the same
    function up to float rounding, and the model as it was afterwards.

    Use ``fold=False`` where anything depends on the classifier's *parameters* rather than its
    function: folding reparametrises the convolutions and bypasses BatchNorm's forward, so a
    ``torch.func.functional_call`` with the original parameters (the per-sample gradient norm of
    L_Grad, Section 5.3) would run conv -> (no BatchNorm), a different network."""
    fold_ctx = folded_batchnorm(model, keep) if fold else nullcontext()
    with frozen(model), fold_ctx, channels_last_weights(model):
        yield model
