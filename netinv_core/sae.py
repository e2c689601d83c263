"""The sparse autoencoder of Section 5.1 (Figure 3), on the classifier's penultimate features.

A sparse autoencoder (SAE) on standardised features of the *training* data: 128 -> 512 (sigmoid)
-> 128, loss = MSE + beta_s * sum_j KL(rho || rho_hat_j), rho = 0.05 (docs/choices.md). Reported:
reconstruction MSE and mean activation on held-out real (test) features; per class the Jaccard
overlap of the top-k most active units for real versus inverted samples; and the SAE as an
anomaly detector: score = reconstruction MSE (higher = more anomalous), AUROC of inverted
samples (positives) against real test images (negatives).

``topk_jaccard_split`` is the control of the Jaccard overlap: two random halves of the real
samples of each class. ``netinv_core.interpret`` re-exports these names.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn


class SparseAutoencoder(nn.Module):
    """x -> h = sigmoid(W1 x + b1) -> x_hat = W2 h + b2."""

    def __init__(self, dim: int, hidden: int = 512):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(dim, hidden), nn.Sigmoid())
        self.dec = nn.Linear(hidden, dim)

    def forward(self, x):
        h = self.enc(x)
        return self.dec(h), h


@dataclass
class SAEResult:
    model: SparseAutoencoder
    mean: np.ndarray
    std: np.ndarray
    history: list

    def _prep(self, feats):
        return torch.as_tensor((feats - self.mean) / self.std, dtype=torch.float32)

    @torch.no_grad()
    def activations(self, feats: np.ndarray) -> np.ndarray:
        return self.model(self._prep(feats))[1].numpy()

    @torch.no_grad()
    def recon_error(self, feats: np.ndarray) -> np.ndarray:
        x = self._prep(feats)
        return ((self.model(x)[0] - x) ** 2).mean(1).numpy()


def train_sae(train_feats: np.ndarray, *, hidden: int = 512, rho: float = 0.05,
              sparsity_weight: float = 1.0, epochs: int = 20, batch_size: int = 256,
              lr: float = 1e-3, seed: int = 0) -> SAEResult:
    """Train the sparse autoencoder (loss = MSE + sparsity_weight * sum_j KL(rho || rho_hat_j)).

    The initial weights come from the CPU generator seeded with ``seed`` inside
    ``torch.random.fork_rng`` (the same weights as after ``torch.manual_seed(seed)``), the batch
    order from a local generator: the caller's random state is left as it was."""
    mean, std = train_feats.mean(0), train_feats.std(0) + 1e-6
    x_all = torch.as_tensor((train_feats - mean) / std, dtype=torch.float32)
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        sae = SparseAutoencoder(x_all.shape[1], hidden)
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(epochs):
        order = torch.randperm(len(x_all), generator=g)
        tot = 0.0
        for i in range(0, len(x_all), batch_size):
            x = x_all[order[i:i + batch_size]]
            recon, h = sae(x)
            rho_hat = h.mean(0).clamp(1e-6, 1 - 1e-6)
            kl = (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
            loss = ((recon - x) ** 2).mean() + sparsity_weight * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += loss.item() * len(x)
        history.append(tot / len(x_all))
    sae.eval()
    return SAEResult(sae, mean, std, history)


def top_units(acts: np.ndarray, k: int) -> set:
    return set(np.argsort(-acts.mean(0))[:k].tolist())


def sae_report(sae: SAEResult, real_feats, real_labels, inv_feats, inv_labels, *, top_k: int = 20) -> dict:
    from sklearn.metrics import roc_auc_score

    real_act, inv_act = sae.activations(real_feats), sae.activations(inv_feats)
    jacc = {}
    for c in np.unique(real_labels):
        a, b = top_units(real_act[real_labels == c], top_k), top_units(inv_act[inv_labels == c], top_k)
        jacc[int(c)] = len(a & b) / len(a | b)
    err_real, err_inv = sae.recon_error(real_feats), sae.recon_error(inv_feats)
    scores = np.r_[err_real, err_inv]
    truth = np.r_[np.zeros(len(err_real)), np.ones(len(err_inv))]
    return {
        "sae_recon_mse_real_test": float(err_real.mean()),
        "sae_recon_mse_inverted": float(err_inv.mean()),
        "sae_mean_activation_real_test": float(real_act.mean()),
        "sae_active_share_real_test": float((real_act > 0.5).mean()),
        "sae_top_k": top_k,
        "sae_topk_jaccard_per_class": jacc,
        "sae_topk_jaccard_mean": float(np.mean(list(jacc.values()))),
        "sae_anomaly_auroc": float(roc_auc_score(truth, scores)),
    }


def topk_jaccard_split(sae: SAEResult, feats: np.ndarray, labels: np.ndarray, *, top_k: int = 20,
                       seed: int = 0) -> float:
    """Control for the SAE Jaccard: the same top-k overlap between two random halves of the real
    samples of each class (what "the same distribution" scores), mean over classes."""
    rng = np.random.default_rng(seed)
    act = sae.activations(feats)
    vals = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        h = len(idx) // 2
        a, b = top_units(act[idx[:h]], top_k), top_units(act[idx[h:]], top_k)
        vals.append(len(a & b) / len(a | b))
    return float(np.mean(vals))
