"""Training-like data reconstruction from a classifier's weights (paper Section 5.3, Figure 5).

    L_Recon = alpha L_KL + alpha' L_KL^pert + beta L_CE + beta' L_CE^pert
              + gamma L_Cosine + delta L_Ortho + eta1 L_Var + eta2 L_Pix + eta3 L_Grad

- Hot conditioning: the vector-matrix generator of Section 3.2 fed one-hot vectors P = e_y (and
  the hot matrix of y), so KL(P || Q) = -log Q_y: it asks for confident predictions.
- Perturbation: I_pert = I + u, u ~ Uniform[-eps, eps]^d, a *random* perturbation of L-infinity
  norm at most ``epsilon`` on the [0, 1] image scale (not adversarial: an FGSM step would cost one
  more backward pass per step); ``perturbation="sign"``: u = eps * sign(N(0, I)), the lab code's
  random sign noise. L_KL^pert and L_CE^pert are the KL and CE on I_pert.
- L_Var = 1/B sum_i sum_{c,h,w} (I_{i,c,h+1,w} - I_{i,c,h,w})^2 + (I_{i,c,h,w+1} - I_{i,c,h,w})^2
  (total variation as the paper writes it: summed over pixels, averaged over the batch).
- L_Pix = 1/B sum_i sum_{c,h,w} max(0, -I) + max(0, I - 1). The reconstruction generator's last
  layer is linear (no sigmoid), so this term is what keeps pixels in range; evaluation clamps.
- L_Grad = 1/k sum_{i<=k} || grad_theta CE(f_theta(I_i), y_i) ||_2, the gradient norm w.r.t. all
  classifier weights **per sample** (training samples are individually near-stationary points; a
  batch-mean gradient can be small by cancellation), on the first ``grad_samples`` images of the
  batch, computed with torch.func (vmap of grad) and differentiated through to the generator
  (as sqrt(||g||^2 + 1e-12): a saturated CE has an exactly zero gradient, where sqrt has an
  infinite derivative; a non-finite loss stops training with an error). On
  this CPU a sub-batch of 16 keeps a step well under 5x an inversion step (``bench reconstruction``
  prints the measured ratio); per-sample norms of a whole 128 batch cost about 7x.
- The classifier is frozen in eval mode (BatchNorm running statistics, no dropout) throughout.

Quantification (``match_report``), the protocol of the reconstruction-from-weights literature
(Haim et al. 2022; Buzaglo et al. 2023) with a held-out control:
for each reconstruction, its nearest training image of the same class and its nearest *test*
image of the same class by normalised cross-correlation NCC(a, b) = <a - mean a, b - mean b> /
(||a - mean a|| ||b - mean b||), then SSIM to each (uniform 3x3 window, K1 = 0.01, K2 = 0.03,
data range 1, averaged over channels). The training and test pools are size-matched per class
(both subsampled, seeded, to min(n_train_c, n_test_c)), so a larger pool cannot win by size alone.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .cache import Trained, default_device, load_or_train
from .config import ReconConfig, to_dict
from .data import IMAGE_SHAPES
from .errors import TrainingDivergedError
from .generator import Conditioning, Generator, generate, hot_matrix
from .inversion import FeatureTap, check_classifier_input, fit_generator
from .losses import (PerSampleGradNorm, ce_loss, cosine_loss, kl_loss, ortho_loss, pixel_loss,
                     variation_loss)


# fields added after checkpoints existed: left out of the checkpoint key at these defaults
_KEY_DEFAULTS = {"perturbation": "uniform", "dropout_last": None}
# how reconstructions are sampled (recon_attempts.SAMPLING_MODES): "train" = exactly the mode the
# generator trained in (dropout on, BatchNorm batch statistics). Measured on the MNIST-1000
# generator, seed 0, quick: label accuracy 0.956 "train", 0.948 "dropout" (BN running
# statistics), 0.814 BN re-estimated without dropout, 0.738 dropout off (the old choice).
DEFAULT_SAMPLING = "train"
RECON_TERMS = ("kl", "kl_pert", "ce", "ce_pert", "cosine", "ortho", "var", "pix", "grad")


def hot_conditioning(labels: torch.Tensor, num_classes: int) -> Conditioning:
    """One-hot P = e_y and the hot matrix of y (vector-matrix generator input)."""
    return Conditioning(labels, F.one_hot(labels, num_classes).float(),
                        hot_matrix(labels, num_classes))


def recon_loss(tap: FeatureTap, model: nn.Module, images: torch.Tensor, cond: Conditioning,
               cfg: ReconConfig, gradnorm: PerSampleGradNorm | None, rng: torch.Generator):
    """Return ``(L_Recon, terms)`` for generated ``images`` (raw generator output)."""
    w = cfg.weights
    logits, feats = tap(images)
    if cfg.perturbation == "sign":
        u = torch.randn(images.shape, generator=rng).sign().to(images.device)
    else:
        u = (torch.rand(images.shape, generator=rng) * 2 - 1).to(images.device)
    logits_p = model(images + cfg.epsilon * u)
    terms = {"kl": kl_loss(logits, cond.p), "kl_pert": kl_loss(logits_p, cond.p),
             "ce": ce_loss(logits, cond.labels), "ce_pert": ce_loss(logits_p, cond.labels),
             "cosine": cosine_loss(feats), "ortho": ortho_loss(feats),
             "var": variation_loss(images), "pix": pixel_loss(images)}
    k = cfg.grad_samples
    terms["grad"] = (gradnorm(images[:k], cond.labels[:k]).mean()
                     if gradnorm is not None and k > 0 and w.eta3 > 0 else images.new_zeros(()))
    total = (w.alpha * terms["kl"] + w.alpha_pert * terms["kl_pert"] + w.beta * terms["ce"]
             + w.beta_pert * terms["ce_pert"] + w.gamma * terms["cosine"]
             + w.delta * terms["ortho"] + w.eta1 * terms["var"] + w.eta2 * terms["pix"]
             + w.eta3 * terms["grad"])
    return total, terms, logits


def recon_generator(num_classes: int, image_shape, cfg: ReconConfig) -> Generator:
    """The vector-matrix generator with its final sigmoid replaced by the identity (L_Pix keeps
    the range)."""
    gen = Generator(num_classes, image_shape, cfg.generator_config())
    gen.up[-1] = nn.Identity()
    if cfg.dropout_last is not None:           # the Dropout of the last hidden block
        gen.up[-3] = nn.Dropout(cfg.dropout_last)
    return gen


def reconstruction_step(gen: Generator, opt: torch.optim.Optimizer, tap: FeatureTap,
                        cfg: ReconConfig, gradnorm: PerSampleGradNorm | None,
                        rng: torch.Generator, device="cpu") -> dict:
    """One Adam step on L_Recon for ``cfg.batch_size`` fresh latents and hot conditionings.

    Returns the step's loss, its unweighted terms and batch accuracy; a non-finite loss raises
    ``TrainingDivergedError`` (a ``FloatingPointError``) before the step is taken.
    """
    labels = torch.randint(0, gen.num_classes, (cfg.batch_size,), generator=rng)
    cond = hot_conditioning(labels, gen.num_classes).to(device)
    z = torch.randn(cfg.batch_size, cfg.latent_dim, generator=rng).to(device)
    x = gen(z, cond)                                                # (B, C, H, W), unbounded
    loss, terms, logits = recon_loss(tap, tap.model, x, cond, cfg, gradnorm, rng)
    if not torch.isfinite(loss):
        bad = [k for k, v in terms.items() if not torch.isfinite(v)]
        raise TrainingDivergedError(
            f"reconstruction diverged (non-finite {bad or 'loss'}); nothing was saved for this "
            f"step. Lower lr (now {cfg.lr}) or the weights of the non-finite terms and rerun")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.item(), **{k: v.item() for k, v in terms.items()},
            "batch_accuracy": (logits.argmax(1) == cond.labels).float().mean().item()}


def train_reconstructor(classifier: nn.Module, cfg: ReconConfig, image_shape, *,
                        feature_layer: str | None = None, device="cpu",
                        checkpoint: str | Path | None = None, checkpoint_every: int = 100,
                        progress: bool = True, callback: Callable[[dict], None] | None = None):
    """Train a reconstruction generator against the frozen ``classifier``; returns
    ``(generator, history)``. Resumable from ``checkpoint`` like ``train_generator``."""
    image_shape = tuple(image_shape)
    num_classes = check_classifier_input(classifier, image_shape, device)
    tap = FeatureTap(classifier, feature_layer)
    torch.manual_seed(cfg.seed)
    gen = recon_generator(num_classes, image_shape, cfg).to(device)
    opt = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    rng = torch.Generator().manual_seed(cfg.seed)
    meta = {"recon": _training_dict(cfg), "image_shape": list(image_shape),
            "num_classes": num_classes}
    gradnorm = PerSampleGradNorm(classifier) if cfg.weights.eta3 > 0 else None
    history = fit_generator(
        gen, opt, rng, lambda: reconstruction_step(gen, opt, tap, cfg, gradnorm, rng, device),
        cfg.steps, classifier=classifier, keys=("loss", *RECON_TERMS, "batch_accuracy"),
        kind="recon-partial", meta=meta, checkpoint=checkpoint,
        checkpoint_every=checkpoint_every, progress=progress, callback=callback,
        desc=f"reconstruction (seed {cfg.seed})",
        fold_batchnorm=False)  # L_Grad differentiates the classifier's own parameters (BN too)
    tap.remove()
    return gen, history


def reconstruct(gen: Generator, n_per_class: int, *, seed: int = 0, keep_dropout: bool = True):
    """``n_per_class`` reconstructions of every class, clamped to [0, 1]; ``(images, labels)``,
    plus the share of raw pixel values that were outside [0, 1] (one batch, ``generate``)."""
    labels = torch.arange(gen.num_classes).repeat_interleave(n_per_class)
    x, _ = generate(gen, len(labels), labels=labels, seed=seed, keep_dropout=keep_dropout,
                    batch_size=max(len(labels), 1),
                    conditioning=lambda lb: hot_conditioning(lb, gen.num_classes))
    out_of_range = ((x < 0) | (x > 1)).float().mean().item()
    return x.clamp(0, 1), labels, out_of_range


# ---------------------------------------------------------------------------------------------
# quantification

def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 3) -> torch.Tensor:
    """SSIM of image pairs a[i], b[i] (B, C, H, W) in [0, 1]: uniform ``window`` x ``window``
    means, C1 = (0.01)^2, C2 = (0.03)^2, no padding; averaged over positions and channels."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    pool = lambda t: F.avg_pool2d(t, window, stride=1)  # noqa: E731
    mu_a, mu_b = pool(a), pool(b)
    var_a = pool(a * a) - mu_a ** 2
    var_b = pool(b * b) - mu_b ** 2
    cov = pool(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


def ncc_nearest(queries: torch.Tensor, pool: torch.Tensor):
    """For each query image, the index in ``pool`` with the highest normalised cross-correlation,
    and that NCC."""
    def norm(x):
        x = x.flatten(1).double()
        x = x - x.mean(1, keepdim=True)
        return x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)
    s = norm(queries) @ norm(pool).T
    best, idx = s.max(1)
    return idx, best.float()


def size_matched_pools(train_y: torch.Tensor, test_y: torch.Tensor, seed: int = 0):
    """Per class, indices of equally many training and test images (seeded subsample to
    min(n_train_c, n_test_c)): ``{c: (train_idx, test_idx)}``."""
    g = torch.Generator().manual_seed(seed)
    pools = {}
    for c in torch.unique(train_y).tolist():
        tr = torch.nonzero(train_y == c).flatten()
        te = torch.nonzero(test_y == c).flatten()
        m = min(len(tr), len(te))
        pools[c] = (tr[torch.randperm(len(tr), generator=g)[:m]],
                    te[torch.randperm(len(te), generator=g)[:m]])
    return pools


def _quantiles(x: torch.Tensor) -> dict:
    q = torch.quantile(x.double(), torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=torch.float64))
    return {"mean": x.mean().item(), "q10": q[0].item(), "q25": q[1].item(), "median": q[2].item(),
            "q75": q[3].item(), "q90": q[4].item(), "max": x.max().item()}


def match_report(recons: torch.Tensor, labels: torch.Tensor, train_x: torch.Tensor,
                 train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, *,
                 seed: int = 0, window: int = 3) -> dict:
    """Nearest training vs nearest test image of the same class (NCC) and SSIM to each.

    ``train_x``/``test_x`` are float images in [0, 1]. Returns the SSIM distributions, the share
    of reconstructions whose nearest training image has a higher SSIM than their nearest test
    image, and the number of distinct training (and, as control, test) images matched with SSIM
    above 0.4 and 0.5, plus per-reconstruction matches (indices into ``train_x``/``test_x``).
    """
    pools = size_matched_pools(train_y, test_y, seed)
    n = len(recons)
    s_tr, s_te = torch.zeros(n), torch.zeros(n)
    i_tr, i_te = torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long)
    for c, (tr, te) in pools.items():
        q = torch.nonzero(labels == c).flatten()
        if not len(q) or not len(tr):
            continue
        j, _ = ncc_nearest(recons[q], train_x[tr])
        k, _ = ncc_nearest(recons[q], test_x[te])
        i_tr[q], i_te[q] = tr[j], te[k]
        s_tr[q] = ssim(recons[q], train_x[tr[j]], window)
        s_te[q] = ssim(recons[q], test_x[te[k]], window)
    out = {"n_reconstructions": n, "pool_per_class": {int(c): len(v[0]) for c, v in pools.items()},
           "ssim_train": _quantiles(s_tr), "ssim_test": _quantiles(s_te),
           "share_train_closer": (s_tr > s_te).float().mean().item(),
           "ssim_window": window}
    for t in (0.4, 0.5):
        out[f"distinct_train_ssim_gt_{t}"] = len(set(i_tr[s_tr > t].tolist()))
        out[f"distinct_test_ssim_gt_{t}"] = len(set(i_te[s_te > t].tolist()))
    out["_matches"] = {"train_index": i_tr, "test_index": i_te, "ssim_train": s_tr,
                       "ssim_test": s_te}
    return out


def _training_dict(cfg: ReconConfig) -> dict:
    """The config as the checkpoint key sees it: ``dropout_at_generation`` only affects sampling,
    so it is held at one canonical value (True, the value checkpoints were first written with)."""
    d = to_dict(replace(cfg, dropout_at_generation=True))
    for k, v in _KEY_DEFAULTS.items():
        if d.get(k) == v:
            d.pop(k)
    return d


def get_reconstructor(classifier: Trained, cfg: ReconConfig, *, device=None, progress=True,
                      train_missing=True, retrain=False, classifier_key: dict | None = None) -> Trained:
    """A reconstruction generator for the cached ``classifier``: cached, resumed, or trained;
    ``classifier_key`` replaces the classifier's config in the cache key (for classifiers whose
    architecture is not in their ``ClassifierConfig``)."""
    device = device or default_device()
    ccfg = classifier.config
    shape = IMAGE_SHAPES[ccfg.dataset]
    n = classifier.model.num_classes

    def train(partial):
        gen, history = train_reconstructor(classifier.model, cfg, shape, device=device,
                                           checkpoint=partial, progress=progress)
        return gen, history, {}, {}

    return load_or_train(
        "recon", {"classifier": classifier_key or to_dict(ccfg), "recon": _training_dict(cfg)},
        ccfg.dataset, cfg,
        device=device, retrain=retrain, train_missing=train_missing,
        build=lambda st: recon_generator(n, shape, cfg), train=train,
        what=f"reconstruction generator for {ccfg.dataset} (train_size {ccfg.train_size}, "
             f"seed {cfg.seed})",
        hint=f"make it with notebooks/fig5_reconstruction.ipynb (./run_all.sh) or "
             f"`python -m netinv_core.bench reconstruction --dataset {ccfg.dataset} "
             f"--train-size N --profile PROFILE`")
