"""Training-like data reconstruction from a classifier's weights (paper Section 5.3, Figure 5).

    L_Recon = alpha L_KL + alpha' L_KL^pert + beta L_CE + beta' L_CE^pert
              + gamma L_Cosine + delta L_Ortho + eta1 L_Var + eta2 L_Pix + eta3 L_Grad

- Hot conditioning: the vector-matrix generator of Section 3.2 fed one-hot vectors P = e_y (and
  the hot matrix of y), so KL(P || Q) = -log Q_y: it asks for confident predictions.
- Perturbation: I_pert = I + u, u ~ Uniform[-eps, eps]^d, a *random* perturbation of L-infinity
  norm at most ``epsilon`` on the [0, 1] image scale (not adversarial: an FGSM step would cost one
  more backward pass per step). L_KL^pert and L_CE^pert are the KL and CE on I_pert.
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

import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .cache import checkpoint_path, load_checkpoint, save_checkpoint
from .config import ClassifierConfig, GeneratorConfig, _check_weight, to_dict
from .errors import CheckpointError, ConfigError
from .generator import Conditioning, Generator, generation_mode, hot_matrix
from .inversion import FeatureTap, check_classifier_input, fit_generator, frozen
from .losses import ce_loss, cosine_loss, kl_loss, ortho_loss

# the paper's training-set sizes (Section 5.3)
TRAIN_SIZES = {"mnist": (1000, 10000, 60000), "fashionmnist": (1000, 10000, 60000),
               "svhn": (1000, 5000, 10000), "cifar10": (1000, 5000, 10000),
               "digits": (300, 1257)}
RECON_TERMS = ("kl", "kl_pert", "ce", "ce_pert", "cosine", "ortho", "var", "pix", "grad")


@dataclass(frozen=True)
class ReconWeights:
    """Weights of L_Recon. Defaults: NOTES.md's public values (KL 5, perturbed KL 5, CE 10,
    perturbed CE 10, cosine 10, orthogonality 7, gradient norm 2); eta1 (variation) and eta2
    (pixel range) are not given anywhere and are ours, scaled to the summed-over-pixels terms."""

    alpha: float = 5.0        # KL
    alpha_pert: float = 5.0   # KL on the perturbed images
    beta: float = 10.0        # CE
    beta_pert: float = 10.0   # CE on the perturbed images
    gamma: float = 10.0       # cosine
    delta: float = 7.0        # orthogonality
    eta1: float = 0.02        # total variation (summed over pixels)
    eta2: float = 1.0         # pixel range
    eta3: float = 2.0         # per-sample gradient norm

    def __post_init__(self):
        for f in fields(self):
            object.__setattr__(self, f.name, _check_weight(f.name, getattr(self, f.name)))


@dataclass(frozen=True)
class ReconConfig:
    """The reconstruction generator (vector-matrix architecture, hot conditioning, linear output)."""

    weights: ReconWeights = field(default_factory=ReconWeights)
    epsilon: float = 0.05      # L-infinity radius of the random perturbation, image scale [0, 1]
    grad_samples: int = 16     # per-sample gradient norms on this many images of each batch
    latent_dim: int = 100
    cond_dim: int = 100
    width: int = 64
    dropout: float = 0.5
    # Reconstructions are sampled without dropout: with the linear output layer, dropout noise
    # lands straight in the pixels (measured on MNIST-1000: mean SSIM to the nearest training
    # image 0.038 with it, 0.075 without). Sampling only: not part of the checkpoint key.
    dropout_at_generation: bool = False
    steps: int = 500
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.weights, dict):
            object.__setattr__(self, "weights", ReconWeights(**self.weights))
        e = self.epsilon
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not 0 < e < 1:
            raise ConfigError(f"epsilon={e!r} is outside the image range: it is an L-infinity "
                              f"radius on the [0, 1] pixel scale, choose 0 < epsilon < 1 (e.g. 0.05)")
        if not isinstance(self.grad_samples, int) or not 0 <= self.grad_samples <= self.batch_size:
            raise ConfigError(f"grad_samples={self.grad_samples!r} must be an int in "
                              f"[0, batch_size={self.batch_size}]")
        if self.steps < 0 or self.batch_size < 2:
            raise ConfigError("steps must be >= 0 and batch_size >= 2")

    def generator_config(self) -> GeneratorConfig:
        return GeneratorConfig(conditioning="vector_matrix", latent_dim=self.latent_dim,
                               cond_dim=self.cond_dim, width=self.width, dropout=self.dropout,
                               dropout_at_generation=self.dropout_at_generation,
                               steps=self.steps, batch_size=self.batch_size, lr=self.lr,
                               seed=self.seed)


# ---------------------------------------------------------------------------------------------
# losses

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


def hot_conditioning(labels: torch.Tensor, num_classes: int) -> Conditioning:
    """One-hot P = e_y and the hot matrix of y (vector-matrix generator input)."""
    return Conditioning(labels, F.one_hot(labels, num_classes).float(),
                        hot_matrix(labels, num_classes))


def recon_loss(tap: FeatureTap, model: nn.Module, images: torch.Tensor, cond: Conditioning,
               cfg: ReconConfig, gradnorm: PerSampleGradNorm | None, rng: torch.Generator):
    """Return ``(L_Recon, terms)`` for generated ``images`` (raw generator output)."""
    w = cfg.weights
    logits, feats = tap(images)
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
    return gen


def reconstruction_step(gen: Generator, opt: torch.optim.Optimizer, tap: FeatureTap,
                        cfg: ReconConfig, gradnorm: PerSampleGradNorm | None,
                        rng: torch.Generator, device="cpu") -> dict:
    """One Adam step on L_Recon for ``cfg.batch_size`` fresh latents and hot conditionings.

    Returns the step's loss, its unweighted terms and batch accuracy; a non-finite loss raises
    ``FloatingPointError`` before the step is taken.
    """
    labels = torch.randint(0, gen.num_classes, (cfg.batch_size,), generator=rng)
    cond = hot_conditioning(labels, gen.num_classes).to(device)
    z = torch.randn(cfg.batch_size, cfg.latent_dim, generator=rng).to(device)
    x = gen(z, cond)                                                # (B, C, H, W), unbounded
    loss, terms, logits = recon_loss(tap, tap.model, x, cond, cfg, gradnorm, rng)
    if not torch.isfinite(loss):
        bad = [k for k, v in terms.items() if not torch.isfinite(v)]
        raise FloatingPointError(
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
        desc=f"reconstruction (seed {cfg.seed})")
    tap.remove()
    return gen, history


@torch.no_grad()
def reconstruct(gen: Generator, n_per_class: int, *, seed: int = 0, keep_dropout: bool = True):
    """``n_per_class`` reconstructions of every class, clamped to [0, 1]; ``(images, labels)``,
    plus the share of raw pixel values that were outside [0, 1]."""
    labels = torch.arange(gen.num_classes).repeat_interleave(n_per_class)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    device = next(gen.parameters()).device
    with generation_mode(gen, keep_dropout):
        z = torch.randn(len(labels), gen.latent_dim, generator=g)
        x = gen(z.to(device), hot_conditioning(labels, gen.num_classes).to(device)).cpu()
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


# ---------------------------------------------------------------------------------------------
# cached pipeline: classifiers on subsets, reconstruction generators, plain-inversion control

RECON_SETTINGS = {
    # classifier_min_steps: a small training set gets at least this many Adam steps (a 1000-image
    # set at the profile's epochs would see only a few dozen); the paper gives no schedule.
    "smoke": {"classifier_min_steps": 40, "n_generators": 2, "steps": 8, "batch_size": 32,
              "width": 32, "grad_samples": 4, "n_per_class": 10},
    "quick": {"classifier_min_steps": 1500, "n_generators": 3, "steps": 300, "batch_size": 64,
              "width": 64, "grad_samples": 16, "n_per_class": 50},
    "paper": {"classifier_min_steps": 10000, "n_generators": 3, "steps": 3000, "batch_size": 256,
              "width": 128, "grad_samples": 32, "n_per_class": 200},
}


def subset_classifier_config(dataset: str, train_size: int, profile="quick") -> ClassifierConfig:
    """The profile's classifier trained on a class-balanced subset of ``train_size`` images (the
    whole split when ``train_size`` equals its size), with at least the profile's
    ``classifier_min_steps`` optimiser steps."""
    import math

    from .data import load_dataset
    from .pipeline import _profile, classifier_config

    prof = _profile(profile)
    n_train = len(load_dataset(dataset, "train"))
    if not isinstance(train_size, int) or train_size <= 0:
        raise ConfigError(f"train_size={train_size!r} must be a positive int")
    if train_size > n_train:
        raise ConfigError(f"train_size={train_size} is larger than the {dataset} training split "
                          f"({n_train} images); choose at most {n_train} "
                          f"(the paper's sizes: {TRAIN_SIZES.get(dataset)})")
    base = classifier_config(dataset, prof)
    if train_size == n_train:
        return base
    min_steps = RECON_SETTINGS[prof.name]["classifier_min_steps"]
    epochs = max(base.epochs, math.ceil(min_steps / math.ceil(train_size / base.batch_size)))
    return replace(base, train_size=train_size, epochs=epochs)


def recon_config(profile="quick", seed: int = 0, **overrides) -> ReconConfig:
    from .pipeline import _profile

    st = RECON_SETTINGS[_profile(profile).name]
    cfg = ReconConfig(steps=st["steps"], batch_size=st["batch_size"], width=st["width"],
                      grad_samples=st["grad_samples"], seed=seed)
    return replace(cfg, **overrides) if overrides else cfg


def _training_dict(cfg: ReconConfig) -> dict:
    """The config as the checkpoint key sees it: ``dropout_at_generation`` only affects sampling,
    so it is held at one canonical value (True, the value checkpoints were first written with)."""
    return to_dict(replace(cfg, dropout_at_generation=True))


def get_reconstructor(classifier, cfg: ReconConfig, *, device="cpu", progress=True,
                      train_missing=True, retrain=False):
    """A reconstruction generator for the cached ``classifier`` (``pipeline.Trained``)."""
    from .data import IMAGE_SHAPES

    ccfg = classifier.config
    conf = {"classifier": to_dict(ccfg), "recon": _training_dict(cfg)}
    path = checkpoint_path("recon", conf, ccfg.dataset)
    shape = IMAGE_SHAPES[ccfg.dataset]
    n = classifier.model.num_classes
    if path.exists() and not retrain:
        st = load_checkpoint(path, kind="recon", config=conf)
        gen = recon_generator(n, shape, cfg)
        gen.load_state_dict(st["model"])
        return gen.to(device), st["history"]
    if not train_missing:
        raise CheckpointError(f"no cached reconstruction generator for {ccfg.dataset} "
                              f"(train_size {ccfg.train_size}, seed {cfg.seed}) in {path.parent}; "
                              f"make it with notebooks/fig5_reconstruction.ipynb (./run_all.sh) or "
                              f"`python -m netinv_core.bench reconstruction --dataset "
                              f"{ccfg.dataset} --train-size N --profile PROFILE`")
    partial = path.with_suffix(".partial.pt")
    gen, history = train_reconstructor(classifier.model, cfg, shape, device=device,
                                       checkpoint=partial, progress=progress)
    save_checkpoint(path, kind="recon", config=conf, tensors={"model": gen.state_dict(),
                                                               "history": history})
    partial.unlink(missing_ok=True)
    return gen, history


def _strip(rep: dict) -> dict:
    return {k: v for k, v in rep.items() if not k.startswith("_")}


def reconstruction_experiment(dataset: str, train_size: int, profile="quick", *, device="cpu",
                              progress=True, train_missing=True, n_generators=None) -> dict:
    """Classifier on ``train_size`` images; ``n_generators`` reconstruction generators and one
    plain-inversion generator (Section 3 losses) on it; the match report of each against the
    classifier's own training images and the size-matched held-out control.
    """
    from .data import balanced_subset, load_dataset
    from .pipeline import _profile, get_classifier, get_generator

    prof = _profile(profile)
    st = RECON_SETTINGS[prof.name]
    t0 = time.perf_counter()
    ccfg = subset_classifier_config(dataset, train_size, prof)
    clf = get_classifier(ccfg, device=device, progress=progress, train_missing=train_missing)
    train, test = load_dataset(dataset, "train"), load_dataset(dataset, "test")
    if ccfg.train_size is not None:
        train = train.subset(balanced_subset(train.y, ccfg.train_size, seed=ccfg.seed))
    train_x, test_x = train.images(), test.images()
    gens, reports = [], []
    for seed in range(n_generators or st["n_generators"]):
        cfg = recon_config(prof, seed)
        gen, hist = get_reconstructor(clf, cfg, device=device, progress=progress,
                                      train_missing=train_missing)
        x, y, oor = reconstruct(gen, st["n_per_class"], seed=1000 + seed,
                                keep_dropout=cfg.dropout_at_generation)
        with torch.no_grad():
            acc = (clf.model(x.to(device)).argmax(1).cpu() == y).float().mean().item()
        rep = match_report(x, y, train_x, train.y, test_x, test.y, seed=seed)
        rep.update(seed=seed, accuracy=acc, raw_out_of_range_share=oor,
                   generator_seconds=hist["seconds"])
        reports.append(rep)
        gens.append((x, y))
    # control: plain inversion (Section 3 losses, the profile's Figure 2 generator) on the same
    # classifier
    icfg = prof.generator_config(seed=0)
    inv = get_generator(clf, icfg, device=device, progress=progress,
                        checkpoint_every=prof.checkpoint_every, eval_samples=prof.eval_samples,
                        train_missing=train_missing)
    from .metrics import generate

    xi, yi = generate(inv.model, st["n_per_class"] * clf.model.num_classes,
                      labels=torch.arange(clf.model.num_classes).repeat_interleave(st["n_per_class"]),
                      seed=999, keep_dropout=icfg.dropout_at_generation)
    inv_rep = match_report(xi, yi, train_x, train.y, test_x, test.y, seed=0)
    inv_rep["accuracy"] = inv.metrics["inversion_accuracy"]

    def agg(key, sub=None):
        vals = [r[key][sub] if sub else r[key] for r in reports]
        return {"mean": float(np.mean(vals)), "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0}

    summary = {"ssim_train_mean": agg("ssim_train", "mean"), "ssim_test_mean": agg("ssim_test", "mean"),
               "ssim_train_median": agg("ssim_train", "median"),
               "ssim_test_median": agg("ssim_test", "median"),
               "share_train_closer": agg("share_train_closer"), "accuracy": agg("accuracy"),
               **{f"distinct_{w}_ssim_gt_{t}": agg(f"distinct_{w}_ssim_gt_{t}")
                  for w in ("train", "test") for t in (0.4, 0.5)}}
    return {"dataset": dataset, "train_size": len(train), "profile": prof.name,
            "classifier_test_accuracy": clf.metrics["test_accuracy"],
            "classifier_epochs": ccfg.epochs, "reconstruction": [_strip(r) for r in reports],
            "summary": summary, "plain_inversion": _strip(inv_rep),
            "seconds": time.perf_counter() - t0,
            # tensors for the figures (not recorded to JSON)
            "_images": gens, "_inversion_images": (xi, yi),
            "_matches": reports[0]["_matches"], "_train_x": train_x, "_test_x": test_x,
            "_ssim": {k: torch.cat([r["_matches"][k] for r in reports]).numpy()
                      for k in ("ssim_train", "ssim_test")},
            "_inv_ssim": {k: inv_rep["_matches"][k].numpy() for k in ("ssim_train", "ssim_test")},
            "_train_images_per_class": [train_x[train.y == c][0] for c in range(train.num_classes)]}


def step_time_ratio(dataset: str = "mnist", profile="quick", *, repeats: int = 5, device="cpu"):
    """Median seconds of one reconstruction step and one inversion step at the same batch size on
    the profile's classifier, and their ratio (the issue's <= 5x budget for the gradient term)."""
    from .data import IMAGE_SHAPES
    from .generator import Generator
    from .inversion import inversion_step
    from .pipeline import _profile, classifier_config, get_classifier

    prof = _profile(profile)
    clf = get_classifier(classifier_config(dataset, prof), device=device, progress=False)
    rcfg = recon_config(prof)
    shape = IMAGE_SHAPES[dataset]
    gcfg = replace(prof.generator_config(), batch_size=rcfg.batch_size, width=rcfg.width)
    n = clf.model.num_classes
    rng = torch.Generator().manual_seed(0)

    def median_seconds(step):
        t = []
        for _ in range(repeats + 1):  # the first step warms up and is dropped
            s = time.perf_counter()
            step()
            t.append(time.perf_counter() - s)
        return float(np.median(t[1:]))

    times = {}
    with frozen(clf.model):
        tap = FeatureTap(clf.model)
        gen = Generator(n, shape, gcfg).to(device)
        opt = torch.optim.Adam(gen.parameters())
        times["inversion"] = median_seconds(lambda: inversion_step(gen, opt, tap, gcfg, rng, device))
        gn = PerSampleGradNorm(clf.model)
        for mode, k in (("reconstruction", rcfg.grad_samples), ("reconstruction_no_grad_term", 0)):
            cfg = replace(rcfg, grad_samples=k)
            rgen = recon_generator(n, shape, cfg).to(device)
            ropt = torch.optim.Adam(rgen.parameters())
            times[mode] = median_seconds(
                lambda: reconstruction_step(rgen, ropt, tap, cfg, gn, rng, device))
        tap.remove()
    return {"batch_size": rcfg.batch_size, "grad_samples": rcfg.grad_samples,
            "seconds_per_step": times,
            "ratio_reconstruction_to_inversion": times["reconstruction"] / times["inversion"]}


def strip_record(result: dict) -> dict:
    """``reconstruction_experiment`` output without its tensors (JSON-able)."""
    return {k: v for k, v in result.items() if not k.startswith("_")}


def format_recon_table(records: list[dict]) -> str:
    """One line per training-set size: reconstruction vs plain inversion, train vs test control."""
    head = (f"{'n train':>8s} {'clf acc':>8s} | {'SSIM train':>16s} {'SSIM test':>16s} "
            f"{'train closer':>16s} {'#train>0.4':>11s} {'#test>0.4':>10s} | inversion: "
            f"{'SSIM tr':>7s} {'SSIM te':>7s} {'closer':>6s}")
    lines = [head]
    for r in records:
        s, i = r["summary"], r["plain_inversion"]
        pm = lambda d: f"{d['mean']:.3f} ± {d['std']:.3f}"  # noqa: E731
        lines.append(f"{r['train_size']:8d} {r['classifier_test_accuracy']:8.4f} | "
                     f"{pm(s['ssim_train_mean']):>16s} {pm(s['ssim_test_mean']):>16s} "
                     f"{pm(s['share_train_closer']):>16s} "
                     f"{s['distinct_train_ssim_gt_0.4']['mean']:11.1f} "
                     f"{s['distinct_test_ssim_gt_0.4']['mean']:10.1f} | "
                     f"{'':10s} {i['ssim_train']['mean']:7.3f} {i['ssim_test']['mean']:7.3f} "
                     f"{i['share_train_closer']:6.2f}")
    return "\n".join(lines)
