"""Out-of-distribution detection with a garbage class (paper Section 5.2; NOTES.md, 2505.23448).

Training (``train_garbage_classifier``): an (N+1)-way classifier whose class N is "garbage".

1. The garbage class starts as ``noise_init`` Gaussian-noise images,
   x = clip(mu + sigma * eps, 0, 1), eps ~ N(0, I), with mu, sigma the per-channel mean and std of
   the training images.
2. Each epoch: train one epoch with the class-weighted cross-entropy
   L = -sum_i w_{y_i} log softmax(f(x_i))_{y_i} / sum_i w_{y_i},   w_c = n / ((N+1) * n_c),
   the weights recomputed from the current class counts n_c at the start of every epoch;
   then invert the current classifier for all N+1 classes (one conditioned generator, L_Inv of
   Section 3.3, warm-started from the previous epoch's generator and trained
   ``gen_steps_per_epoch`` steps) and add ``inverted_per_epoch`` inverted samples, balanced over
   the N+1 conditioning labels, to the garbage class.
3. Bounded growth: the garbage set holds at most ``garbage_cap`` images (default: twice the mean
   in-distribution class size). When full, new samples replace uniformly chosen old ones
   (reservoir-style), so the set stays a mixture of noise and every epoch's inverted samples and
   memory stays constant. Images are stored as uint8, like the datasets.
4. Optional (``selection="uncertain"``, the follow-up 2512.00229; default ``"all"`` = the paper):
   generate ``candidates`` x ``inverted_per_epoch`` samples and add, per conditioning label, only
   the ones the current classifier is most uncertain about, by the uncertainty of NOTES.md
   UE(p) = 1 - sum_i (p_i - 1/K)^2 / sum_i (delta_ik - 1/K)^2,  k = argmax_i p_i,  K = N+1,
   which is 0 for a one-hot p and 1 for the uniform p.

Inference: a prediction of class N means out-of-distribution; otherwise the confidence on the
in-distribution classes, max_{c<N} softmax(f(x))_c, is the second tier.

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

Image conversion between datasets (``convert_images``): grayscale -> RGB repeats the channel;
RGB -> grayscale is the ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B; sizes are matched by bilinear
resizing with antialiasing (28 <-> 32). Any other channel count is an error.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .cache import checkpoint_path, load_checkpoint, save_checkpoint
from .classifier import Classifier, channel_stats
from .config import ClassifierConfig, GeneratorConfig, check_dataset, to_dict
from .data import CLASS_NAMES, IMAGE_SHAPES, ImageData, balanced_subset, load_dataset
from .errors import CheckpointError, ConfigError, ShapeError
from .generator import Generator
from .inversion import FeatureTap, frozen, inversion_step
from .metrics import generate

OOD_DATASETS = ("mnist", "fashionmnist", "svhn", "cifar10")
SELECTIONS = ("all", "uncertain")


@dataclass(frozen=True)
class OODConfig:
    """Garbage-class training on top of a classifier config (its dataset, epochs, seed, ...)."""

    classifier: ClassifierConfig
    generator: GeneratorConfig           # per-epoch inversion; ``steps`` = steps per epoch
    noise_init: int | None = None        # Gaussian-noise images to start with; None = mean class size
    inverted_per_epoch: int = 2000       # inverted samples added to the garbage class per epoch
    garbage_cap: int | None = None       # max garbage images; None = 2 x mean class size
    selection: str = "all"               # "all" (the paper) | "uncertain" (step 4 of the module doc)
    candidates: int = 1                  # "uncertain": candidates generated per sample kept

    def __post_init__(self):
        if self.selection not in SELECTIONS:
            raise ConfigError(f"selection={self.selection!r}; choose one of {SELECTIONS}")
        if not isinstance(self.candidates, int) or self.candidates < 1:
            raise ConfigError(f"candidates={self.candidates!r} must be an int >= 1")
        if self.selection == "all" and self.candidates != 1:
            raise ConfigError("candidates > 1 only makes sense with selection='uncertain'")
        for name in ("noise_init", "garbage_cap"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v <= 0):
                raise ConfigError(f"{name}={v!r} must be a positive int or None (the default)")
        if not isinstance(self.inverted_per_epoch, int) or self.inverted_per_epoch < 0:
            raise ConfigError(f"inverted_per_epoch={self.inverted_per_epoch!r} must be an int >= 0")


def _key_dict(cfg: OODConfig) -> dict:
    """The config as checkpoint keys see it; the selection fields only when not the paper's
    default, so checkpoints written before they existed stay valid."""
    d = to_dict(cfg)
    if cfg.selection == "all":
        d.pop("selection"), d.pop("candidates")
    return d


# ---------------------------------------------------------------------------------------------
# image conversion

def convert_images(x: torch.Tensor, shape) -> torch.Tensor:
    """Convert float images (B, C, H, W) in [0, 1] to ``shape`` = (C', H', W') (see module doc)."""
    shape = tuple(shape)
    if x.dim() != 4:
        raise ShapeError(f"expected a batch of images (B, C, H, W), got shape {tuple(x.shape)}")
    c, tc = x.shape[1], shape[0]
    if c not in (1, 3) or tc not in (1, 3):
        raise ShapeError(f"can only convert between 1-channel (grayscale) and 3-channel (RGB) "
                         f"images, got {c} -> {tc} channels; convert the data yourself first")
    if c == 1 and tc == 3:
        x = x.repeat(1, 3, 1, 1)
    elif c == 3 and tc == 1:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
        x = (x * w).sum(1, keepdim=True)
    if tuple(x.shape[-2:]) != shape[1:]:
        x = F.interpolate(x, size=shape[1:], mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0, 1)


def as_ood_set(data: ImageData, shape, n: int | None = None, seed: int = 0) -> torch.Tensor:
    """Up to ``n`` images of ``data`` (seeded choice), converted to ``shape``."""
    idx = torch.arange(len(data))
    if n is not None and n < len(data):
        idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    return convert_images(data.images(idx), shape)


# ---------------------------------------------------------------------------------------------
# scores and metrics (higher score = more OOD)

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


# ---------------------------------------------------------------------------------------------
# garbage-class training

def class_weights(counts: torch.Tensor) -> torch.Tensor:
    """w_c = n / (K * n_c) for class counts n_c (K classes, n = sum n_c); 0 for empty classes."""
    counts = counts.double()
    w = counts.sum() / (len(counts) * counts.clamp(min=1))
    return torch.where(counts > 0, w, torch.zeros_like(w)).float()


def uncertainty(probs: torch.Tensor) -> torch.Tensor:
    """UE(p) = 1 - sum_i (p_i - 1/K)^2 / sum_i (delta_ik - 1/K)^2 with k = argmax p, for (B, K)
    probabilities; the denominator is (K - 1) / K. 0 for a one-hot p, 1 for the uniform p."""
    k = probs.shape[1]
    return 1.0 - ((probs - 1.0 / k) ** 2).sum(1) / ((k - 1) / k)


def select_uncertain(model, images: torch.Tensor, labels: torch.Tensor, n: int, device="cpu"):
    """Keep ``n`` of ``images`` (float, [0, 1]), balanced over ``labels``: within each label the
    ones with the highest ``uncertainty`` under ``model`` (ties broken by position)."""
    with torch.no_grad():
        was = model.training
        model.eval()
        ue = torch.cat([uncertainty(torch.softmax(model(images[i:i + 1000].to(device)), 1)).cpu()
                        for i in range(0, len(images), 1000)])
        model.train(was)
    classes = torch.unique(labels)
    per = [n // len(classes) + (1 if i < n % len(classes) else 0) for i in range(len(classes))]
    keep = []
    for c, m in zip(classes, per):
        idx = torch.nonzero(labels == c).flatten()
        keep.append(idx[torch.argsort(ue[idx], descending=True, stable=True)[:m]])
    keep = torch.cat(keep)
    return images[keep], labels[keep]


def _add_to_garbage(garbage: torch.Tensor, new: torch.Tensor, cap: int, g: torch.Generator):
    """Append ``new`` (uint8) to ``garbage``; beyond ``cap``, overwrite uniformly chosen entries."""
    room = max(cap - len(garbage), 0)
    garbage = torch.cat([garbage, new[:room]])
    rest = new[room:]
    if len(rest):
        slots = torch.randperm(len(garbage), generator=g)[:len(rest)]
        garbage[slots] = rest[:len(slots)]
    return garbage


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def train_garbage_classifier(cfg: OODConfig, train: ImageData, *, device="cpu",
                             checkpoint: str | Path | None = None, progress: bool = True,
                             callback: Callable[[dict], None] | None = None):
    """Train the (N+1)-way garbage-class classifier; returns ``(model, history, garbage_examples)``.

    With ``checkpoint`` set, the whole state (both models, both optimisers, the garbage set, the
    random states) is written atomically after every epoch, and a rerun resumes after the last
    finished epoch. ``garbage_examples`` maps epoch -> a few (uint8) samples added that epoch.
    """
    ccfg, gcfg = cfg.classifier, cfg.generator
    n_cls = train.num_classes
    k = n_cls + 1
    mean_class = len(train) // n_cls
    cap = cfg.garbage_cap or 2 * mean_class
    torch.manual_seed(ccfg.seed)
    mean, std = channel_stats(train)
    model = Classifier(train.image_shape, k, ccfg.dropout, mean, std).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=ccfg.lr, weight_decay=ccfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(ccfg.epochs, 1))
    gen = Generator(k, train.image_shape, gcfg).to(device)
    gopt = torch.optim.Adam(gen.parameters(), lr=gcfg.lr, betas=(0.5, 0.999))
    rng = torch.Generator().manual_seed(ccfg.seed + 7)
    gen_rng = torch.Generator().manual_seed(gcfg.seed)
    noise = (mean.view(1, -1, 1, 1) + std.view(1, -1, 1, 1)
             * torch.randn(cfg.noise_init or mean_class, *train.image_shape, generator=rng))
    garbage = _to_uint8(noise)[:cap]
    history = {k_: [] for k_ in ("epoch", "loss", "train_accuracy", "garbage_size",
                                 "inversion_accuracy_last", "class_weight_garbage", "seconds")}
    examples: dict[int, torch.Tensor] = {0: garbage[:k].clone()}
    start = 0
    conf = {"ood": _key_dict(cfg)}
    if checkpoint is not None and Path(checkpoint).exists():
        st = load_checkpoint(checkpoint, kind="ood-partial", config=conf)
        model.load_state_dict(st["model"]); opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"]); gen.load_state_dict(st["generator"])
        gopt.load_state_dict(st["generator_optimizer"]); garbage = st["garbage"]
        rng.set_state(st["rng"]); gen_rng.set_state(st["gen_rng"])
        torch.set_rng_state(st["torch_rng"])
        history, start = st["history"], st["epoch"]
        examples = {int(e): v for e, v in st["examples"].items()}
    tap = FeatureTap(model)
    for epoch in range(start, ccfg.epochs):
        t0 = time.perf_counter()
        x_all = torch.cat([train.x, garbage])                                   # uint8
        y_all = torch.cat([train.y, torch.full((len(garbage),), n_cls, dtype=torch.long)])
        w = class_weights(torch.bincount(y_all, minlength=k)).to(device)
        n = len(y_all)
        order = torch.randperm(n, generator=rng)
        model.train()
        tot, correct = 0.0, 0
        bar = tqdm(range(0, n, ccfg.batch_size), desc=f"garbage classifier {train.name} epoch "
                   f"{epoch + 1}/{ccfg.epochs}", disable=not progress, leave=False)
        for i in bar:
            idx = order[i:i + ccfg.batch_size]
            x = x_all[idx].float().div_(255).to(device)
            y = y_all[idx].to(device)
            logits = model(x)
            loss = F.cross_entropy(logits, y, weight=w)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
        sched.step()
        # invert the current classifier for all N+1 classes; add the samples to the garbage class
        gen.train()
        with frozen(model):
            accs = [inversion_step(gen, gopt, tap, gcfg, gen_rng, device)["batch_accuracy"]
                    for _ in tqdm(range(gcfg.steps), desc=f"inversion epoch {epoch + 1}",
                                  disable=not progress, leave=False)]
        new, new_labels = generate(gen, cfg.inverted_per_epoch * cfg.candidates,
                                   seed=ccfg.seed * 1000 + epoch,
                                   keep_dropout=gcfg.dropout_at_generation)
        if cfg.selection == "uncertain":
            new, new_labels = select_uncertain(model, new, new_labels, cfg.inverted_per_epoch,
                                               device)
        new = _to_uint8(new)
        garbage = _add_to_garbage(garbage, new, cap, rng)
        first = [torch.nonzero(new_labels == c).flatten()[:1] for c in range(k)]
        examples[epoch + 1] = new[torch.cat(first)].clone()
        rec = {"epoch": epoch + 1, "loss": tot / n, "train_accuracy": correct / n,
               "garbage_size": len(garbage),
               "inversion_accuracy_last": float(np.mean(accs[-20:])) if accs else float("nan"),
               "class_weight_garbage": w[-1].item(), "seconds": time.perf_counter() - t0}
        for key, v in rec.items():
            history[key].append(v)
        if checkpoint is not None:
            save_checkpoint(checkpoint, kind="ood-partial", config=conf, tensors={
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "generator": gen.state_dict(),
                "generator_optimizer": gopt.state_dict(), "garbage": garbage,
                "rng": rng.get_state(), "gen_rng": gen_rng.get_state(),
                "torch_rng": torch.get_rng_state(), "history": history, "epoch": epoch + 1,
                "examples": {str(e): v for e, v in examples.items()}})
        if callback is not None:
            callback(rec)
    tap.remove()
    model.eval()
    return model, history, examples


def get_garbage_classifier(cfg: OODConfig, *, device="cpu", progress=True, retrain=False,
                           train_missing=True):
    """The garbage-class classifier for ``cfg``: cached, resumed, or trained and cached.

    Returns ``(model, history, examples)``.
    """
    conf = {"ood": _key_dict(cfg)}
    ds = cfg.classifier.dataset
    path = checkpoint_path("ood", conf, ds)
    if path.exists() and not retrain:
        st = load_checkpoint(path, kind="ood", config=conf)
        model = Classifier(IMAGE_SHAPES[ds], len(CLASS_NAMES[ds]) + 1, cfg.classifier.dropout)
        model.load_state_dict(st["model"])
        return (model.to(device).eval(), st["history"],
                {int(e): v for e, v in st["examples"].items()})
    if not train_missing:
        raise CheckpointError(f"no cached garbage-class classifier for {ds} in {path.parent}; "
                              f"make it with notebooks/fig4_ood.ipynb (./run_all.sh) or "
                              f"`python -m netinv_core.bench ood --train {ds} --profile PROFILE`")
    train = load_dataset(ds, "train")
    if cfg.classifier.train_size is not None:
        train = train.subset(balanced_subset(train.y, cfg.classifier.train_size,
                                             seed=cfg.classifier.seed))
    partial = path.with_suffix(".partial.pt")
    model, history, examples = train_garbage_classifier(cfg, train, device=device,
                                                        checkpoint=partial, progress=progress)
    save_checkpoint(path, kind="ood", config=conf, tensors={
        "model": model.state_dict(), "history": history,
        "examples": {str(e): v for e, v in examples.items()}})
    partial.unlink(missing_ok=True)
    return model, history, examples


# ---------------------------------------------------------------------------------------------
# evaluation

@torch.no_grad()
def _logits_feats(model, x: torch.Tensor, device, batch_size: int = 1000):
    model.eval()
    lg, ft = [], []
    for i in range(0, len(x), batch_size):
        a, b = model.forward_features(x[i:i + batch_size].to(device))
        lg.append(a.cpu())
        ft.append(b.cpu())
    return torch.cat(lg), torch.cat(ft)


def evaluate_ood(garbage_model, baseline_model, train: ImageData, test: ImageData,
                 ood_sets: dict[str, torch.Tensor], *, device="cpu",
                 mahalanobis_fit: int = 10000, seed: int = 0) -> dict:
    """Numbers for one training set: in-distribution accuracy, garbage rate per OOD set, the
    paper's confidence claim, and AUROC / AUPR-IN / AUPR-OUT / FPR95 for the garbage score and
    the MSP, energy and Mahalanobis baselines (``ood_sets``: name -> images already converted)."""
    n_cls = test.num_classes
    x_in = test.images()
    lg_in, _ = _logits_feats(garbage_model, x_in, device)
    pred_in = lg_in.argmax(1)
    conf_in = torch.softmax(lg_in, 1)[:, :-1].max(1).values
    kept_in = pred_in < n_cls
    b_lg_in, b_ft_in = _logits_feats(baseline_model, x_in, device)
    g = torch.Generator().manual_seed(seed)
    fit_idx = torch.randperm(len(train), generator=g)[:mahalanobis_fit]
    _, fit_ft = _logits_feats(baseline_model, train.images(fit_idx), device)
    maha = Mahalanobis(fit_ft, train.y[fit_idx])
    scores_in = {"garbage": garbage_score(lg_in), "msp": msp_score(b_lg_in),
                 "energy": energy_score(b_lg_in), "mahalanobis": maha(b_ft_in)}
    out = {"in_distribution_accuracy": (pred_in == test.y).float().mean().item(),
           "baseline_accuracy": (b_lg_in.argmax(1) == test.y).float().mean().item(),
           "in_distribution_garbage_rate": (~kept_in).float().mean().item(),
           "least_confident_in_distribution": conf_in[kept_in].min().item() if kept_in.any() else None,
           "ood": {}}
    for name, x_out in ood_sets.items():
        lg_out, _ = _logits_feats(garbage_model, x_out, device)
        pred_out = lg_out.argmax(1)
        conf_out = torch.softmax(lg_out, 1)[:, :-1].max(1).values
        missed = pred_out < n_cls
        b_lg_out, b_ft_out = _logits_feats(baseline_model, x_out, device)
        scores_out = {"garbage": garbage_score(lg_out), "msp": msp_score(b_lg_out),
                      "energy": energy_score(b_lg_out), "mahalanobis": maha(b_ft_out)}
        most_conf = conf_out[missed].max().item() if missed.any() else None
        least = out["least_confident_in_distribution"]
        out["ood"][name] = {
            "n": len(x_out),
            "garbage_rate": (~missed).float().mean().item(),
            "most_confident_misclassified_ood": most_conf,
            "clear_threshold": (None if least is None else
                                (most_conf is None or least > most_conf)),
            "methods": {m: ood_metrics(scores_in[m], scores_out[m]) for m in scores_in},
            # raw arrays for the histograms (dropped from the JSON record)
            "confidence_in": conf_in[kept_in].numpy(), "confidence_out": conf_out[missed].numpy(),
            "confidence_out_garbage": conf_out[~missed].numpy(),
        }
    return out


def check_train_dataset(name: str) -> str:
    check_dataset(name)
    if name not in OOD_DATASETS and name != "digits":
        raise ConfigError(f"OOD training set {name!r} not supported; choose one of {OOD_DATASETS}")
    return name


# ---------------------------------------------------------------------------------------------
# the experiment: one training set, several seeds, every other dataset as OOD

# Per-profile settings of the garbage training that the paper leaves open.
OOD_SETTINGS = {
    "smoke": {"gen_steps_per_epoch": 5, "inverted_per_epoch": 64, "ood_samples": 500},
    "quick": {"gen_steps_per_epoch": 150, "inverted_per_epoch": 2000, "ood_samples": None},
    "paper": {"gen_steps_per_epoch": 1000, "inverted_per_epoch": 10000, "ood_samples": None},
}


def ood_config(train_name: str, profile="quick", seed: int = 0) -> OODConfig:
    """The garbage-class config for ``train_name``: the profile's classifier (epochs, seed) and
    generator (width, batch) with ``OOD_SETTINGS`` for the per-epoch inversion."""
    from dataclasses import replace

    from .pipeline import _profile, classifier_config

    prof = _profile(profile)
    check_train_dataset(train_name)
    st = OOD_SETTINGS[prof.name]
    ccfg = classifier_config(train_name, prof, seed=seed)
    gcfg = replace(prof.generator_config(seed=seed), steps=st["gen_steps_per_epoch"])
    return OODConfig(classifier=ccfg, generator=gcfg, inverted_per_epoch=st["inverted_per_epoch"])


def sklearn_photo_patches(shape, n: int = 500, seed: int = 0) -> torch.Tensor:
    """``n`` random crops of scikit-learn's two embedded photographs (china.jpg, flower.jpg),
    converted to ``shape``: real natural images that are always available offline (smoke OOD set)."""
    from sklearn.datasets import load_sample_images

    photos = [torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 255
              for im in load_sample_images().images]                        # (3, 427, 640)
    g = torch.Generator().manual_seed(seed)
    crops = []
    for i in range(n):
        ph = photos[i % len(photos)]
        size = int(torch.randint(32, 128, (1,), generator=g))
        y0 = int(torch.randint(0, ph.shape[1] - size, (1,), generator=g))
        x0 = int(torch.randint(0, ph.shape[2] - size, (1,), generator=g))
        crops.append(F.interpolate(ph[None, :, y0:y0 + size, x0:x0 + size], size=(32, 32),
                                   mode="bilinear", antialias=True, align_corners=False)[0])
    return convert_images(torch.stack(crops), shape)


def ood_sets_for(train_name: str, shape, n: int | None = None, seed: int = 0):
    """``(sets, skipped)``: converted test splits of every other dataset (``sets``: name ->
    images), and name -> reason for those whose files are unavailable."""
    from .errors import DataUnavailableError

    if train_name == "digits":
        return {"sklearn_photos": sklearn_photo_patches(shape, n or 500, seed)}, {}
    sets, skipped = {}, {}
    for name in OOD_DATASETS:
        if name == train_name:
            continue
        try:
            sets[name] = as_ood_set(load_dataset(name, "test"), shape, n, seed)
        except DataUnavailableError as e:
            skipped[name] = str(e)
    return sets, skipped


def run_ood(train_name: str, profile="quick", *, seeds=(0, 1, 2), device=None, progress=True,
            train_missing=True, adjust: Callable[[OODConfig], OODConfig] | None = None) -> dict:
    """Train (or load) the garbage-class and baseline classifiers for each seed and evaluate them
    on the in-distribution test set and every available OOD set. Returns per-seed results, their
    mean/std summary, and garbage examples of the first seed. ``adjust`` maps each seed's
    ``ood_config`` to a variant (e.g. ``lambda c: replace(c, selection="uncertain", candidates=3)``);
    the baselines stay the profile's classifiers."""
    from .pipeline import _profile, classifier_config, default_device, get_classifier

    prof = _profile(profile)
    device = device or default_device()
    check_train_dataset(train_name)
    train, test = load_dataset(train_name, "train"), load_dataset(train_name, "test")
    st = OOD_SETTINGS[prof.name]
    sets, skipped = ood_sets_for(train_name, train.image_shape, st["ood_samples"])
    per_seed, examples, histories = [], None, []
    t0 = time.perf_counter()
    for seed in seeds:
        cfg = ood_config(train_name, prof, seed)
        cfg = adjust(cfg) if adjust is not None else cfg
        model, hist, ex = get_garbage_classifier(cfg, device=device, progress=progress,
                                                 train_missing=train_missing)
        base = get_classifier(classifier_config(train_name, prof, seed=seed), device=device,
                              progress=progress, train_missing=train_missing)
        res = evaluate_ood(model, base.model, train, test, sets, device=device, seed=seed)
        res["seed"] = seed
        per_seed.append(res)
        histories.append(hist)
        if examples is None:  # uint8 as stored -> float images in [0, 1] for plotting
            examples = {e: v.float() / 255 for e, v in ex.items()}
    return {"train": train_name, "profile": prof.name, "seeds": list(seeds),
            "classes": list(train.classes), "ood_sets": sorted(sets), "skipped": skipped,
            "per_seed": per_seed, "summary": summarize_ood(per_seed), "histories": histories,
            "examples": examples, "seconds": time.perf_counter() - t0}


def _ms(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return {"mean": None, "std": None}
    a = np.asarray(vals, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0}


def summarize_ood(per_seed: list[dict]) -> dict:
    """Mean and std over seeds of every number ``evaluate_ood`` returns (the raw confidences are
    dropped)."""
    first = per_seed[0]
    out = {k: _ms([r[k] for r in per_seed]) for k in
           ("in_distribution_accuracy", "baseline_accuracy", "in_distribution_garbage_rate",
            "least_confident_in_distribution")}
    out["ood"] = {}
    for name, o in first["ood"].items():
        rows = [r["ood"][name] for r in per_seed]
        out["ood"][name] = {
            "garbage_rate": _ms([r["garbage_rate"] for r in rows]),
            "most_confident_misclassified_ood": _ms([r["most_confident_misclassified_ood"]
                                                     for r in rows]),
            "clear_threshold_seeds": sum(bool(r["clear_threshold"]) for r in rows),
            "methods": {m: {k: _ms([r["methods"][m][k] for r in rows]) for k in v}
                        for m, v in o["methods"].items()},
        }
    out["n_seeds"] = len(per_seed)
    return out


def record(result: dict) -> dict:
    """A JSON-able record of ``run_ood`` output (raw confidences and images dropped)."""
    def strip(r):
        r = dict(r)
        r["ood"] = {k: {kk: vv for kk, vv in v.items() if not kk.startswith("confidence_")}
                    for k, v in r["ood"].items()}
        return r
    keep = {k: v for k, v in result.items() if k not in ("per_seed", "examples")}
    keep["per_seed"] = [strip(r) for r in result["per_seed"]]
    return keep


def paper_table(records: dict[str, dict]) -> dict:
    """The 4x4 table of NOTES.md from ``{train_name: record}``: rows = trained on, columns =
    tested on; diagonal = in-distribution accuracy, off-diagonal = share sent to garbage
    (mean over seeds, percent). Cells not run or without data are None."""
    table = {}
    for row in OOD_DATASETS:
        r = records.get(row)
        table[row] = {}
        for col in OOD_DATASETS:
            if r is None:
                table[row][col] = None
            elif col == row:
                table[row][col] = 100 * r["summary"]["in_distribution_accuracy"]["mean"]
            elif col in r["summary"]["ood"]:
                table[row][col] = 100 * r["summary"]["ood"][col]["garbage_rate"]["mean"]
            else:
                table[row][col] = None
    return table


def format_ood_table(rec: dict) -> str:
    """A plain-text table of one training set's record: per OOD set and method, mean ± std."""
    s = rec["summary"]
    pm = lambda d, f="{:.4f}": "n/a" if d["mean"] is None else (f.format(d["mean"]) + " ± " + f.format(d["std"]))  # noqa: E731
    lines = [f"trained on {rec['train']} ({rec['profile']}, {s['n_seeds']} seeds): in-distribution "
             f"accuracy {pm(s['in_distribution_accuracy'])} (baseline {pm(s['baseline_accuracy'])}), "
             f"least confident kept ID {pm(s['least_confident_in_distribution'])}",
             f"{'OOD set':13s} {'method':12s} {'AUROC':>17s} {'AUPR-IN':>17s} {'AUPR-OUT':>17s} "
             f"{'FPR95':>17s}"]
    for name, o in s["ood"].items():
        lines.append(f"{name:13s} garbage rate {pm(o['garbage_rate'])}; most confident kept OOD "
                     f"{pm(o['most_confident_misclassified_ood'])}; clear threshold in "
                     f"{o['clear_threshold_seeds']}/{s['n_seeds']} seeds")
        for m, v in o["methods"].items():
            lines.append(f"{'':13s} {m:12s} " + " ".join(f"{pm(v[k]):>17s}" for k in
                                                        ("auroc", "aupr_in", "aupr_out", "fpr95")))
    return "\n".join(lines)
