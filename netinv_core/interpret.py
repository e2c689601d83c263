"""Interpretability of inverted samples (paper, Section 5.1, Figure 3), with numbers.

All analyses use the classifier's penultimate features f (128-d for netinv's classifier).

- PCA: a 2-D PCA of the inverted samples' features; ``explained_variance`` of the two components.
- Decision boundaries (the paper's construction): a mesh over the 2-D PCA plane is mapped back to
  feature space, x_hat = mean + [u1 u2] (a, b), and classified by the network's own head. Its
  faithfulness is the share of inverted samples whose label at their projected point,
  head(PCA^-1(PCA(f))), equals the classifier's label on their full features, head(f).
- t-SNE / UMAP of the same features (on a sample; t-SNE needs n > 3 * perplexity).
- Clusters per class: within each class, k-means with k = 2..k_max on the L2-normalised features
  (the cosine geometry of the losses); k is the one with the highest silhouette score, and a class
  whose best silhouette is below 0.25 ("no substantial structure", Kaufman & Rousseeuw) counts as
  one cluster.
- Sparse autoencoder (SAE) on standardised features of the *training* data: 128 -> 512 (sigmoid)
  -> 128, loss = MSE + beta_s * sum_j KL(rho || rho_hat_j), rho = 0.05 (NOTES.md). Reported:
  reconstruction MSE and mean activation on held-out real (test) features; per class the Jaccard
  overlap of the top-k most active units for real versus inverted samples; and the SAE as an
  anomaly detector: score = reconstruction MSE (higher = more anomalous), AUROC of inverted
  samples (positives) against real test images (negatives).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from .errors import ConfigError
from .inversion import FeatureTap, frozen
from .metrics import tap_batches

SILHOUETTE_MIN = 0.25


def features_of(classifier, images: torch.Tensor, *, feature_layer=None, device="cpu"):
    """``(predicted labels, features)`` as numpy arrays."""
    with frozen(classifier):
        tap = FeatureTap(classifier, feature_layer)
        logits, feats = tap_batches(tap, images, device)
        tap.remove()
    return logits.argmax(1).numpy(), feats.numpy()


def _head_predict(head: nn.Module, feats: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return head(torch.as_tensor(feats, dtype=torch.float32)).argmax(1).numpy()


@dataclass
class DecisionPlane:
    """The 2-D PCA plane of the features and the head's labels on a mesh over it."""

    points: np.ndarray          # (n, 2) projected features
    xx: np.ndarray              # (r, r) mesh coordinates
    yy: np.ndarray
    mesh_labels: np.ndarray     # (r, r) head's label at each mesh point
    explained_variance: list    # of the two components
    faithfulness: float         # share of samples whose 2-D label equals their full label


def decision_plane(feats: np.ndarray, head: nn.Module, *, resolution: int = 200,
                   margin: float = 0.05) -> DecisionPlane:
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=0).fit(feats)
    pts = pca.transform(feats)
    lo, hi = pts.min(0), pts.max(0)
    pad = (hi - lo) * margin
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    xx, yy = np.meshgrid(xs, ys)
    grid = pca.inverse_transform(np.c_[xx.ravel(), yy.ravel()])
    mesh = _head_predict(head, grid).reshape(xx.shape)
    label_2d = _head_predict(head, pca.inverse_transform(pts))
    label_full = _head_predict(head, feats)
    return DecisionPlane(pts, xx, yy, mesh, pca.explained_variance_ratio_.tolist(),
                         float((label_2d == label_full).mean()))


def embed_tsne(feats: np.ndarray, *, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    from sklearn.manifold import TSNE

    n = len(feats)
    if n <= 3 * perplexity:
        raise ConfigError(f"t-SNE with perplexity {perplexity} needs more than {3 * perplexity:.0f} "
                          f"samples, got {n}; lower the perplexity or use more samples")
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(feats)


def embed_umap(feats: np.ndarray, *, n_neighbors: int = 15, seed: int = 0) -> np.ndarray:
    import umap

    if len(feats) <= n_neighbors:
        raise ConfigError(f"UMAP with n_neighbors={n_neighbors} needs more than {n_neighbors} "
                          f"samples, got {len(feats)}")
    return umap.UMAP(n_neighbors=n_neighbors, random_state=seed).fit_transform(feats)


def clusters_per_class(feats: np.ndarray, labels: np.ndarray, *, k_max: int = 6, seed: int = 0,
                       max_points: int = 1000) -> dict:
    """``{class: {"k": clusters, "silhouette": best score}}`` by the rule in the module docstring."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    x_all = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    out = {}
    for c in np.unique(labels):
        x = x_all[labels == c]
        if len(x) > max_points:
            x = x[rng.choice(len(x), max_points, replace=False)]
        best_k, best_s = 1, -1.0
        for k in range(2, min(k_max, len(x) - 1) + 1):
            km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
            if len(np.unique(km.labels_)) < 2:
                continue
            s = float(silhouette_score(x, km.labels_))
            if s > best_s:
                best_k, best_s = k, s
        out[int(c)] = {"k": best_k if best_s >= SILHOUETTE_MIN else 1, "silhouette": best_s}
    return out


def summarize_clusters(per_class: dict) -> dict:
    ks = [v["k"] for v in per_class.values()]
    return {"clusters_per_class_mean": float(np.mean(ks)), "clusters_per_class": ks,
            "silhouette_mean": float(np.mean([v["silhouette"] for v in per_class.values()]))}


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
    """Train the sparse autoencoder (loss = MSE + sparsity_weight * sum_j KL(rho || rho_hat_j))."""
    torch.manual_seed(seed)
    mean, std = train_feats.mean(0), train_feats.std(0) + 1e-6
    x_all = torch.as_tensor((train_feats - mean) / std, dtype=torch.float32)
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
