"""Stronger post-hoc OOD baselines on the plain classifier's penultimate features, from pytorch-ood
(not written again): KNN (Sun et al. 2022) and ViM (Wang et al. 2022).

- KNN: z = phi(x) / ||phi(x)||_2; s(x) = the Euclidean distance from z to its k-th nearest
  neighbour among the normalised training features (k = 50, the paper's value for CIFAR-10).
- ViM: with the head's weights W (C x D) and bias b, the origin o = -pinv(W) b; the principal
  subspace P of the centred training features phi - o (top ``d`` eigenvectors), the residual
  x_res = (I - P P^T)(phi - o) and alpha = sum_i max_c l_c(x_i) / sum_i ||x_res(x_i)|| over the
  training set; s(x) = alpha ||x_res|| - logsumexp_c l_c(x) (the virtual logit minus the energy).
Both follow the convention of ``netinv_core.ood``: higher = more out-of-distribution.
"""
from __future__ import annotations

import torch

from .errors import ConfigError

VIM_DIM = 64   # principal subspace of ViM for 128-d features (half; ViM's paper uses D/2-ish)
KNN_K = 50


def _require():
    try:
        from pytorch_ood.detector import KNN, ViM  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ConfigError("the KNN / ViM baselines need pytorch-ood: `pip install pytorch-ood` "
                          "(it is in netinv's dev and notebooks extras)") from e


class KNNScore:
    """s(x) = distance of the L2-normalised features to their k-th nearest normalised training
    feature (pytorch-ood's ``KNN``; higher = more OOD)."""

    def __init__(self, train_feats: torch.Tensor, k: int = KNN_K):
        _require()
        from pytorch_ood.detector import KNN
        if not 1 <= k <= len(train_feats):
            raise ConfigError(f"k={k} must be between 1 and the number of training features "
                              f"({len(train_feats)})")
        self.det = KNN(None, k=k, normalize=True)
        self.det.fit_features(train_feats.float(), torch.zeros(len(train_feats), dtype=torch.long))

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        return self.det.predict_features(feats.float()).float()


class ViMScore:
    """ViM (pytorch-ood's ``ViM``) with the classifier head ``head`` (an ``nn.Linear``)."""

    def __init__(self, train_feats: torch.Tensor, head: torch.nn.Linear, d: int = VIM_DIM):
        _require()
        from pytorch_ood.detector import ViM
        if not 1 <= d < train_feats.shape[1]:
            raise ConfigError(f"ViM subspace d={d} must be in [1, {train_feats.shape[1]})")
        self.det = ViM(None, d=d, w=head.weight.detach().cpu(), b=head.bias.detach().cpu())
        self.det.fit_features(train_feats.float(), torch.zeros(len(train_feats), dtype=torch.long))

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        return self.det.predict_features(feats.float()).float()
