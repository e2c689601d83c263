"""Out-of-distribution scores and metrics for Section 5.2 (garbage class and baselines).

Scores follow one convention everywhere: **higher = more out-of-distribution**.
- garbage: s(x) = 1 - max_{c<N} softmax_{N+1}(f(x))_c, the (N+1)-way softmax's mass *not* on the
  most likely in-distribution class: it is high when the garbage class (or no class) claims x, and
  ranks the samples the classifier keeps by their second-tier confidence;
- MSP (Hendrycks & Gimpel 2017): s(x) = 1 - max_c softmax(g(x))_c;
- energy (Liu et al. 2020): s(x) = -T log sum_c exp(g_c(x) / T), T = 1;
- Mahalanobis (Lee et al. 2018, penultimate layer, no input preprocessing):
  s(x) = min_c (phi(x) - mu_c)^T Sigma^{-1} (phi(x) - mu_c), class means mu_c and one tied
  covariance Sigma of the training features.
The baselines use the same backbone trained without the garbage class (the profile's classifier).

Metrics (OOD = positive class for AUROC and AUPR-OUT; in-distribution = positive for AUPR-IN):
AUROC, AUPR-IN, AUPR-OUT, and FPR95 = the share of OOD samples whose score is at or below the
threshold that keeps 95% of the in-distribution test images (TPR on in-distribution = 95%).
"""
from __future__ import annotations

import numpy as np
import torch


def garbage_score(logits: torch.Tensor) -> torch.Tensor:
    """s = 1 - max_{c<N} softmax(logits)_c for (B, N+1) logits whose last class is garbage."""
    return 1.0 - torch.softmax(logits, 1)[:, :-1].max(1).values


def msp_score(logits: torch.Tensor) -> torch.Tensor:
    """s = 1 - max_c softmax(logits)_c (maximum softmax probability, negated)."""
    return 1.0 - torch.softmax(logits, 1).max(1).values


def energy_score(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """s = -T * logsumexp(logits / T) (the free energy; higher = more OOD)."""
    return -temperature * torch.logsumexp(logits / temperature, 1)


class Mahalanobis:
    """s(x) = min_c (phi - mu_c)^T Sigma^-1 (phi - mu_c) on penultimate features phi (tied Sigma)."""

    def __init__(self, feats: torch.Tensor, labels: torch.Tensor, eps: float = 1e-6):
        f = feats.double()
        classes = torch.unique(labels)
        self.means = torch.stack([f[labels == c].mean(0) for c in classes])       # (N, D)
        centred = f - self.means[torch.searchsorted(classes, labels)]
        cov = centred.T @ centred / len(f)                                         # (D, D)
        self.precision = torch.linalg.inv(cov + eps * torch.eye(cov.shape[0], dtype=cov.dtype))

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        d = feats.double()[:, None, :] - self.means[None]                        # (B, N, D)
        m = torch.einsum("bnd,de,bne->bn", d, self.precision, d)
        return m.min(1).values.float()


def ood_metrics(score_in, score_out) -> dict:
    """AUROC, AUPR-IN, AUPR-OUT and FPR95 for scores where higher = more OOD."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    s_in = np.asarray(score_in, dtype=np.float64)
    s_out = np.asarray(score_out, dtype=np.float64)
    y = np.r_[np.zeros(len(s_in)), np.ones(len(s_out))]
    s = np.r_[s_in, s_out]
    thr = np.quantile(s_in, 0.95)
    return {"auroc": float(roc_auc_score(y, s)),
            "aupr_in": float(average_precision_score(1 - y, -s)),
            "aupr_out": float(average_precision_score(y, s)),
            "fpr95": float((s_out <= thr).mean())}
