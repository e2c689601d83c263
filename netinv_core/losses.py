"""The inversion losses of Section 3.3, each a pure function, and their weighted sum.

    L_Inv = alpha * L_KL + beta * L_CE + gamma * L_Cosine + delta * L_Ortho

Notation: a batch of B generated images; P (B, N) the conditioning distributions, Q = softmax of the
classifier's logits; y the encoded labels (argmax of P); f_i the penultimate features of image i.

Choices the paper leaves open (also in the README):
- KL and CE take *logits* and apply log-softmax once (docs/choices.md pitfall 1: no double softmax).
- Cosine and orthogonality use L2-normalised features f_i / ||f_i|| (pitfall 2), so the Gram
  matrix's diagonal is exactly 1 and the identity target is meaningful for any feature scale and
  batch size. Both compare every pair in the batch, across classes, as the paper defines them.
- The terms are averaged over the batch, so the weights do not depend on the batch size.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import LossWeights
from .errors import ConfigError


def kl_loss(logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """L_KL = D_KL(P || Q) = sum_i P(i) log(P(i) / Q(i)), averaged over the batch.

    ``p`` are probabilities (rows sum to 1, zeros allowed: 0 log 0 = 0); Q = softmax(logits).
    """
    log_q = F.log_softmax(logits, dim=1)
    return (torch.xlogy(p, p) - p * log_q).sum(dim=1).mean()


def ce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_CE = -sum_i y_i log(y_hat_i) with y the one-hot encoded label, averaged over the batch."""
    return F.cross_entropy(logits, labels)


def cosine_loss(features: torch.Tensor) -> torch.Tensor:
    """L_Cosine = 1 / (B(B-1)) * sum_{i != j} cos(theta_ij), cos(theta_ij) = <f_i, f_j>/(|f_i||f_j|)."""
    b = features.shape[0]
    if b < 2:
        raise ValueError("cosine_loss needs at least 2 feature vectors")
    f = F.normalize(features.flatten(1), dim=1)
    s = f @ f.T
    return (s.sum() - s.diagonal().sum()) / (b * (b - 1))


def ortho_loss(features: torch.Tensor) -> torch.Tensor:
    """L_Ortho = 1 / B^2 * sum_{i,j} (G_ij - delta_ij)^2 with G = F F^T of L2-normalised rows of F.

    With normalised rows G_ii = 1, so this equals 1/B^2 * sum_{i != j} cos^2(theta_ij).
    """
    f = F.normalize(features.flatten(1), dim=1)
    g = f @ f.T
    eye = torch.eye(g.shape[0], device=g.device, dtype=g.dtype)
    return ((g - eye) ** 2).mean()


def inversion_loss(logits: torch.Tensor, features: torch.Tensor, p: torch.Tensor,
                   labels: torch.Tensor, weights: LossWeights):
    """Return ``(L_Inv, terms)`` where ``terms`` maps kl/ce/cosine/ortho to their unweighted values."""
    terms = {"kl": kl_loss(logits, p), "ce": ce_loss(logits, labels),
             "cosine": cosine_loss(features), "ortho": ortho_loss(features)}
    total = (weights.alpha * terms["kl"] + weights.beta * terms["ce"]
             + weights.gamma * terms["cosine"] + weights.delta * terms["ortho"])
    return total, terms


# ---------------------------------------------------------------------------------------------
# the extra terms of L_Recon (Section 5.3, ``netinv_core.reconstruct``)

def variation_loss(images: torch.Tensor) -> torch.Tensor:
    """L_Var = 1/B sum_i sum_{c,h,w} (I_{h+1,w} - I_{h,w})^2 + (I_{h,w+1} - I_{h,w})^2."""
    dh = (images[..., 1:, :] - images[..., :-1, :]).pow(2).flatten(1).sum(1)
    dw = (images[..., :, 1:] - images[..., :, :-1]).pow(2).flatten(1).sum(1)
    return (dh + dw).mean()


def pixel_loss(images: torch.Tensor) -> torch.Tensor:
    """L_Pix = 1/B sum_i sum_{c,h,w} max(0, -I) + max(0, I - 1)."""
    return (F.relu(-images) + F.relu(images - 1)).flatten(1).sum(1).mean()


class PerSampleGradNorm:
    """``norms(x, y)`` = || grad_theta CE(f_theta(x_i), y_i) ||_2 for each i, differentiable in x.

    Uses torch.func.vmap(grad(...)) over the model's parameters (taken as constants) with the
    model in eval mode; the result backpropagates to ``x`` through ordinary autograd.
    """

    eps = 1e-12

    def __init__(self, model: nn.Module):
        from torch.func import functional_call, grad, vmap

        self.model = model
        params = {k: v.detach() for k, v in model.named_parameters()}
        if not params:
            raise ConfigError(f"{type(model).__name__} has no parameters: the gradient-norm term "
                              f"needs a classifier with weights (set eta3=0 to drop the term)")
        buffers = {k: v.detach() for k, v in model.named_buffers()}

        def loss(p, x, y):
            return F.cross_entropy(functional_call(model, (p, buffers), (x[None],)), y[None])

        self._grads = vmap(grad(loss), in_dims=(None, 0, 0))
        self._params = params

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g = self._grads(self._params, x, y)
        # + eps: a saturated CE has an exactly zero gradient, and d sqrt(u)/du is infinite at 0
        return (sum(v.flatten(1).pow(2).sum(1) for v in g.values()) + self.eps).sqrt()
