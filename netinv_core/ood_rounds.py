"""One round of the garbage-class loop (``netinv_core.ood``): hot-conditioned inversion, the
uncertainty of the added samples, their diversity, and the uncertainty stopping rule.

- UE(p) = 1 - sum_i (p_i - 1/K)^2 / sum_i (delta_ik - 1/K)^2 with k = argmax p (NOTES.md); the
  denominator is (K - 1)/K; 0 for a one-hot p, 1 for the uniform p.
- Hot conditioning (2503.20187): P = e_y (one-hot) and the hot matrix of y, so the KL term of
  L_Inv is -log Q_y and asks for confidently classified samples.
- Stopping rule (2505.23448: "till ... a significant drop in the uncertainty"): stop once the mean
  UE of the last ``patience`` rounds' inverted samples has not gone below the lowest before them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import GeneratorConfig
from .generator import Conditioning, Generator, hot_matrix
from .inversion import FeatureTap
from .losses import inversion_loss
from .metrics import mean_pairwise_cosine, tap_batches, within_class_cosine


def uncertainty(probs: torch.Tensor) -> torch.Tensor:
    """UE(p) = 1 - sum_i (p_i - 1/K)^2 / sum_i (delta_ik - 1/K)^2 with k = argmax p, for (B, K)
    probabilities; the denominator is (K - 1) / K. 0 for a one-hot p, 1 for the uniform p."""
    k = probs.shape[1]
    return 1.0 - ((probs - 1.0 / k) ** 2).sum(1) / ((k - 1) / k)


def hot_conditioning(gen: Generator, labels: torch.Tensor) -> Conditioning:
    """One-hot P = e_y for a vector-conditioned ``gen`` (and the hot matrix for vector-matrix)."""
    matrix = hot_matrix(labels, gen.num_classes) if gen.conditioning == "vector_matrix" else None
    return Conditioning(labels, F.one_hot(labels, gen.num_classes).float(), matrix)


def hot_inversion_step(gen, opt, tap, cfg: GeneratorConfig, rng, device) -> dict:
    """``inversion.inversion_step`` with hot conditioning: L_Inv with P = e_y, so the KL term is
    -log Q_y and asks for confident samples instead of samples held at a soft vector."""
    labels = torch.randint(0, gen.num_classes, (cfg.batch_size,), generator=rng)
    cond = hot_conditioning(gen, labels).to(device)
    z = torch.randn(cfg.batch_size, cfg.latent_dim, generator=rng)
    logits, feats = tap(gen(z.to(device), cond))
    loss, _ = inversion_loss(logits, feats, cond.p, cond.labels, cfg.weights)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"batch_accuracy": (logits.argmax(1) == cond.labels).float().mean().item()}


@torch.no_grad()
def round_stats(tap: FeatureTap, new: torch.Tensor, labels: torch.Tensor, device,
                 max_pairs: int = 1000) -> dict:
    """Per-round numbers of the added samples ``new`` (float, [0, 1]) under the current model:
    mean UE over the N+1 classes, and the mean pairwise feature cosine of up to ``max_pairs``
    samples across all labels and within each label (lower = more diverse)."""
    logits, feats = tap_batches(tap, new, device)
    ue = uncertainty(torch.softmax(logits, 1))
    sub = torch.arange(len(new))[:max_pairs]
    return {"inverted_uncertainty": ue.mean().item(),
            "inverted_feature_cosine_all": mean_pairwise_cosine(feats[sub]),
            "inverted_feature_cosine_within": within_class_cosine(feats[sub], labels[sub])}


def uncertainty_stalled(ues: list, patience: int) -> bool:
    """True once the last ``patience`` rounds' mean UE stayed at or above the lowest before them."""
    return patience > 0 and len(ues) > patience and min(ues[-patience:]) >= min(ues[:-patience])
