"""Out-of-distribution detection with a garbage class (paper Section 5.2; docs/choices.md, 2505.23448).

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
3. Growth: with ``keep_all=True`` the garbage set only grows, as the paper says ("added after each
   epoch"); images are stored as uint8 (1 byte per pixel; ``history["garbage_bytes"]``). With
   ``keep_all=False`` it holds at most ``garbage_cap`` images (default: twice the mean class size)
   and, when full, new samples replace uniformly chosen old ones, noise included.
4. Optional (``selection="uncertain"``, the follow-up 2512.00229; default ``"all"`` = the paper):
   generate ``candidates`` x ``inverted_per_epoch`` samples and add, per conditioning label, only
   the ones the current classifier is most uncertain about, by the uncertainty of docs/choices.md
   UE(p) = 1 - sum_i (p_i - 1/K)^2 / sum_i (delta_ik - 1/K)^2,  k = argmax_i p_i,  K = N+1,
   which is 0 for a one-hot p and 1 for the uniform p.
5. Schedule options (issue 12; ``netinv_core.ood_rounds``): the classifier LR follows a cosine from
   lr to ``lr_floor`` * lr; ``invert_after_last_epoch=False`` skips the inversion after the last
   epoch, whose samples would never be trained on; ``fresh_generator`` starts every round from a
   new generator; ``hot_conditioning`` uses one-hot P; ``patience`` > 0 ends training one epoch
   after the mean UE of the added samples has not fallen for ``patience`` rounds.
   ``inverted_per_epoch=0`` is the noise-only control (no inversion at all).
6. Backbone option (issue 12, CIFAR-10): with ``backbone`` set, the (N+1)-way model starts from
   that trained plain classifier (every weight copied; the head gets a zero garbage row and bias),
   and the classifier's ``augment`` and ``label_smoothing`` apply to every batch, garbage included.

Inference: a prediction of class N means out-of-distribution; otherwise the confidence on the
in-distribution classes, max_{c<N} softmax(f(x))_c, is the second tier.

Scores (higher = more out-of-distribution: garbage, MSP, energy, Mahalanobis) and the metrics
(AUROC, AUPR-IN, AUPR-OUT, FPR95) are in ``netinv_core.ood_scores``.

The experiment (which datasets, settings per profile, evaluation against the baselines, the
tables) is ``netinv_core.ood_experiment``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.std import tqdm  # text bars: widget bars show "model not found" after a reload

from .cache import (GLOBAL_RNG, Trained, default_device, load_or_train, restore_state,
                    save_state)
from .classifier import Classifier, augment_batch, channel_stats, train_epoch
from .config import ClassifierConfig, GeneratorConfig, check_dataset, to_dict
from .data import CLASS_NAMES, IMAGE_SHAPES, ImageData, balanced_subset, load_dataset
from .errors import ConfigError
from .generator import Generator, sample_in_stream
from .frozen import channels_last_, inversion_ready
from .inversion import FeatureTap, inversion_step
from .ood_scores import (Mahalanobis, energy_score, garbage_score,  # noqa: F401
                         msp_score, ood_metrics)  # (re-exported: the method's scores)
from .ood_rounds import hot_conditioning, hot_inversion_step, round_stats, uncertainty, uncertainty_stalled


OOD_DATASETS = ("mnist", "fashionmnist", "svhn", "cifar10")
SELECTIONS = ("all", "uncertain")


@dataclass(frozen=True)
class OODConfig:
    """Garbage-class training on top of a classifier config (its dataset, epochs, seed, ...).

    The field defaults are the mechanism's plain settings (the first table's: capped garbage set,
    one warm-started generator, soft conditioning). The package's default configuration is
    ``netinv_core.ood_experiment.ood_config``: the attempt ``diverse_garbage`` (issue 12), which
    sets ``keep_all``, ``fresh_generator``, ``hot_conditioning``, ``lr_floor=0.1``,
    ``invert_after_last_epoch=False`` and the generator's dropout / steps / gamma / delta."""

    classifier: ClassifierConfig
    generator: GeneratorConfig           # per-epoch inversion; ``steps`` = steps per epoch
    noise_init: int | None = None        # Gaussian-noise images to start with; None = mean class size
    inverted_per_epoch: int = 2000       # inverted samples added to the garbage class per epoch
    garbage_cap: int | None = None       # max garbage images; None = 2 x mean class size
    selection: str = "all"               # "all" (the paper) | "uncertain" (step 4 of the module doc)
    candidates: int = 1                  # "uncertain": candidates generated per sample kept
    keep_all: bool = False               # True: the garbage set only grows (the paper); no cap
    lr_floor: float = 0.0                # the cosine LR schedule ends at lr_floor * lr (1 = constant)
    invert_after_last_epoch: bool = True  # False: no (unused) inversion after the last epoch
    fresh_generator: bool = False        # True: a new generator (and optimiser) every round
    hot_conditioning: bool = False       # True: one-hot P (2503.20187) instead of soft vectors
    patience: int = 0                    # > 0: stop once the round's inverted-sample uncertainty
    #                                      has not fallen for ``patience`` rounds (step 5)
    backbone: ClassifierConfig | None = None  # step 6: start from this trained plain classifier

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
        if self.keep_all and self.garbage_cap is not None:
            raise ConfigError("garbage_cap has no effect with keep_all=True (the set only grows); "
                              "leave garbage_cap=None")
        if isinstance(self.lr_floor, bool) or not isinstance(self.lr_floor, (int, float)) \
                or not 0 <= self.lr_floor <= 1:
            raise ConfigError(f"lr_floor={self.lr_floor!r} must be in [0, 1] (a fraction of lr)")
        object.__setattr__(self, "lr_floor", float(self.lr_floor))
        if not isinstance(self.patience, int) or self.patience < 0:
            raise ConfigError(f"patience={self.patience!r} must be an int >= 0 (0 = run all epochs)")
        needs = [n for n in ("fresh_generator", "hot_conditioning", "patience") if getattr(self, n)]
        if self.selection != "all":
            needs.append("selection")
        if self.inverted_per_epoch == 0 and needs:
            raise ConfigError(f"{needs} need inverted samples, but inverted_per_epoch=0 (the "
                              f"noise-only control); set inverted_per_epoch > 0 or drop them")
        if self.inverted_per_epoch and not self.invert_after_last_epoch \
                and self.classifier.epochs < 2:
            raise ConfigError("invert_after_last_epoch=False with fewer than 2 classifier epochs "
                              "leaves no inversion round; use epochs >= 2")
        if self.classifier.optimizer != "adam":   # the rounds' LR schedule is per epoch
            raise ConfigError("the garbage model trains with Adam; use optimizer='sgd' for a backbone")
        b = self.backbone
        if b is not None and (not isinstance(b, ClassifierConfig) or b.dataset != self.classifier.dataset
                              or b.train_size != self.classifier.train_size):
            raise ConfigError(f"backbone must be a ClassifierConfig of the same dataset and training "
                              f"set as the classifier ({self.classifier.dataset}, train_size="
                              f"{self.classifier.train_size}); got {b!r}")
        if self.hot_conditioning and self.generator.conditioning not in ("vector", "vector_matrix"):
            raise ConfigError(f"hot_conditioning only changes vector conditionings; the "
                              f"{self.generator.conditioning!r} scheme already uses one-hot P")


# Values of the fields added after the first checkpoints were written (the behaviour before they
# existed); a field at this value is left out of the checkpoint key, so those caches stay valid.
LEGACY_FIELDS = {"keep_all": False, "lr_floor": 0.0, "invert_after_last_epoch": True,
                 "fresh_generator": False, "hot_conditioning": False, "patience": 0,
                 "backbone": None}


def _key_dict(cfg: OODConfig) -> dict:
    """The config as checkpoint keys see it; the selection fields only when not the paper's
    default and the ``LEGACY_FIELDS`` only when not at their legacy value, so checkpoints written
    before they existed stay valid."""
    d = to_dict(cfg)
    if cfg.selection == "all":
        d.pop("selection"), d.pop("candidates")
    for name, legacy in LEGACY_FIELDS.items():
        if d[name] == legacy:
            d.pop(name)
    return d


# ---------------------------------------------------------------------------------------------
# garbage-class training

def class_weights(counts: torch.Tensor) -> torch.Tensor:
    """w_c = n / (K * n_c) for class counts n_c (K classes, n = sum n_c); 0 for empty classes."""
    counts = counts.double()
    w = counts.sum() / (len(counts) * counts.clamp(min=1))
    return torch.where(counts > 0, w, torch.zeros_like(w)).float()


def select_uncertain(model, images: torch.Tensor, labels: torch.Tensor, n: int, device="cpu"):
    """Keep ``n`` of ``images`` (float, [0, 1]), balanced over ``labels``: within each label the
    ones with the highest ``uncertainty`` under ``model`` (ties broken by position)."""
    with torch.no_grad(), inversion_ready(model):
        ue = torch.cat([uncertainty(torch.softmax(model(images[i:i + 1000].to(device)), 1)).cpu()
                        for i in range(0, len(images), 1000)])
    classes = torch.unique(labels)
    per = [n // len(classes) + (1 if i < n % len(classes) else 0) for i in range(len(classes))]
    keep = []
    for c, m in zip(classes, per):
        idx = torch.nonzero(labels == c).flatten()
        keep.append(idx[torch.argsort(ue[idx], descending=True, stable=True)[:m]])
    keep = torch.cat(keep)
    return images[keep], labels[keep]


def _add_to_garbage(garbage: torch.Tensor, new: torch.Tensor, cap: int | None,
                    g: torch.Generator):
    """Append ``new`` (uint8) to ``garbage``; beyond ``cap``, overwrite uniformly chosen entries
    (``cap=None``: append everything, the set only grows)."""
    if cap is None:
        return torch.cat([garbage, new])
    room = max(cap - len(garbage), 0)
    garbage = torch.cat([garbage, new[:room]])
    rest = new[room:]
    if len(rest):
        slots = torch.randperm(len(garbage), generator=g)[:len(rest)]
        garbage[slots] = rest[:len(slots)]
    return garbage


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


@torch.no_grad()
def start_from_backbone(model: Classifier, backbone: Classifier) -> None:
    """Copy a trained N-way classifier into the (N+1)-way ``model``: every weight and buffer, the
    head's N rows as they are and a zero row (weight and bias) for the garbage class."""
    src = backbone.state_dict()
    for name, t in model.state_dict().items():
        if name.startswith("head."):
            t.zero_()
            t[:src[name].shape[0]] = src[name]
        else:
            t.copy_(src[name])


def train_garbage_classifier(cfg: OODConfig, train: ImageData, *, device="cpu",
                             checkpoint: str | Path | None = None, progress: bool = True,
                             callback: Callable[[dict], None] | None = None,
                             round_eval: Callable[[torch.nn.Module], dict] | None = None):
    """Train the (N+1)-way garbage-class classifier; returns ``(model, history, garbage_examples)``.

    With ``checkpoint`` set, the whole state (both models, both optimisers, the garbage set, the
    random states) is written atomically after every epoch, and a rerun resumes after the last
    finished epoch. ``garbage_examples`` maps epoch -> a few (uint8) samples added that epoch.
    ``round_eval(model)`` (model in eval mode) runs after every epoch; its dict is kept in
    ``history["round_eval"]`` (e.g. the garbage rate of OOD sets after each round). The history
    also records per epoch the garbage set's bytes, the LR, and the mean UE and feature cosine of
    the samples added (``ood_rounds.round_stats``).
    """
    ccfg, gcfg = cfg.classifier, cfg.generator
    n_cls = train.num_classes
    k = n_cls + 1
    mean_class = len(train) // n_cls
    cap = None if cfg.keep_all else (cfg.garbage_cap or 2 * mean_class)
    backbone = None
    if cfg.backbone is not None:   # before seeding: loading or training it uses the global RNG
        from .pipeline import get_classifier
        backbone = get_classifier(cfg.backbone, device=device, progress=progress).model
    torch.manual_seed(ccfg.seed)
    mean, std = channel_stats(train)
    model = Classifier(train.image_shape, k, ccfg.dropout, mean, std).to(device)
    if backbone is not None:
        start_from_backbone(model, backbone)
    channels_last_(model)   # before the optimiser (issue 14: the same values, faster steps)
    opt = torch.optim.Adam(model.parameters(), lr=ccfg.lr, weight_decay=ccfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(ccfg.epochs, 1),
                                                       eta_min=cfg.lr_floor * ccfg.lr)
    gen = Generator(k, train.image_shape, gcfg).to(device).to(memory_format=torch.channels_last)
    gopt = torch.optim.Adam(gen.parameters(), lr=gcfg.lr, betas=(0.5, 0.999))
    rng = torch.Generator().manual_seed(ccfg.seed + 7)
    gen_rng = torch.Generator().manual_seed(gcfg.seed)
    noise = (mean.view(1, -1, 1, 1) + std.view(1, -1, 1, 1)
             * torch.randn(cfg.noise_init or mean_class, *train.image_shape, generator=rng))
    garbage = _to_uint8(noise)[:cap]
    history = {k_: [] for k_ in ("epoch", "loss", "train_accuracy", "garbage_size",
                                 "inversion_accuracy_last", "class_weight_garbage", "seconds",
                                 "garbage_bytes", "lr", "inverted_uncertainty",
                                 "inverted_feature_cosine_all", "inverted_feature_cosine_within",
                                 "round_eval")}
    examples: dict[int, torch.Tensor] = {0: garbage[:k].clone()}
    start, stopping, done = 0, False, False
    conf = {"ood": _key_dict(cfg)}
    state = {"model": model, "optimizer": opt, "scheduler": sched, "generator": gen,
             "generator_optimizer": gopt, "rng": rng, "gen_rng": gen_rng, "torch_rng": GLOBAL_RNG}
    rest = restore_state(checkpoint, kind="ood-partial", config=conf, objects=state)
    if rest is not None:
        garbage, history, start = rest["garbage"], rest["history"], rest["epoch"]
        stopping, done = bool(rest.get("stopping", False)), bool(rest.get("done", False))
        examples = {int(e): v for e, v in rest["examples"].items()}
    tap = FeatureTap(model)
    for epoch in range(start, ccfg.epochs):
        if done:  # stopped early by the uncertainty rule (``patience``)
            break
        last = epoch == ccfg.epochs - 1 or stopping
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        x_all = torch.cat([train.x, garbage])                                   # uint8
        y_all = torch.cat([train.y, torch.full((len(garbage),), n_cls, dtype=torch.long)])
        w = class_weights(torch.bincount(y_all, minlength=k)).to(device)
        n = len(y_all)
        order = torch.randperm(n, generator=rng)
        aug = torch.Generator().manual_seed(ccfg.seed * 1000 + epoch + 10 ** 6)
        loss, acc = train_epoch(model, opt, lambda idx: augment_batch(
                                    x_all[idx].float().div_(255), ccfg.augment, aug), y_all, order,
                                ccfg.batch_size, weight=w, device=device, progress=progress,
                                label_smoothing=ccfg.label_smoothing,
                                desc=f"garbage classifier {train.name} epoch {epoch + 1}/"
                                     f"{ccfg.epochs}")
        sched.step()
        # invert the current classifier for all N+1 classes; add the samples to the garbage class
        # (none for the noise-only control, none after the last epoch unless invert_after_last_epoch)
        invert = cfg.inverted_per_epoch > 0 and (cfg.invert_after_last_epoch or not last)
        accs, stats = [], {}
        if invert:
            if cfg.fresh_generator:
                with torch.random.fork_rng():
                    torch.manual_seed(gcfg.seed + 1000 * (epoch + 1))
                    gen = Generator(k, train.image_shape, gcfg).to(device).to(
                        memory_format=torch.channels_last)
                gopt = torch.optim.Adam(gen.parameters(), lr=gcfg.lr, betas=(0.5, 0.999))
                state["generator"], state["generator_optimizer"] = gen, gopt
            step = hot_inversion_step if cfg.hot_conditioning else inversion_step
            gen.train()
            with inversion_ready(model):   # as fit_generator: BatchNorm folded, channels-last
                accs = [step(gen, gopt, tap, gcfg, gen_rng, device)["batch_accuracy"]
                        for _ in tqdm(range(gcfg.steps), desc=f"inversion epoch {epoch + 1}",
                                      disable=not progress, leave=False)]
            # This loop owns torch's global stream: sampling reseeds it (and the next epoch's
            # dropout continues from there), as the cached garbage classifiers were made.
            seed_e = ccfg.seed * 1000 + epoch
            n_new = cfg.inverted_per_epoch * cfg.candidates
            new_labels = torch.arange(n_new) % k
            torch.manual_seed(seed_e)
            new = sample_in_stream(gen, new_labels, torch.Generator().manual_seed(seed_e),
                                   keep_dropout=gcfg.dropout_at_generation,
                                   conditioning=((lambda lb: hot_conditioning(gen, lb))
                                                 if cfg.hot_conditioning else None))
            if cfg.selection == "uncertain":
                new, new_labels = select_uncertain(model, new, new_labels, cfg.inverted_per_epoch,
                                                   device)
            model.eval()
            stats = round_stats(tap, new, new_labels, device)
            new = _to_uint8(new)
            garbage = _add_to_garbage(garbage, new, cap, rng)
            first = [torch.nonzero(new_labels == c).flatten()[:1] for c in range(k)]
            examples[epoch + 1] = new[torch.cat(first)].clone()
        model.eval()
        rec = {"epoch": epoch + 1, "loss": loss, "train_accuracy": acc,
               "garbage_size": len(garbage),
               "inversion_accuracy_last": float(np.mean(accs[-20:])) if accs else float("nan"),
               "class_weight_garbage": w[-1].item(), "seconds": time.perf_counter() - t0,
               "garbage_bytes": garbage.numel() * garbage.element_size(), "lr": lr,
               **{key: stats.get(key, float("nan")) for key in (
                   "inverted_uncertainty", "inverted_feature_cosine_all",
                   "inverted_feature_cosine_within")},
               "round_eval": round_eval(model) if round_eval is not None else None}
        for key, v in rec.items():
            history.setdefault(key, []).append(v)
        if invert and not stopping:
            stopping = uncertainty_stalled(
                [u for u in history["inverted_uncertainty"] if u == u], cfg.patience)
        if checkpoint is not None:
            save_state(checkpoint, kind="ood-partial", config=conf, objects=state,
                       garbage=garbage, history=history, epoch=epoch + 1, stopping=stopping,
                       done=last, examples={str(e): v for e, v in examples.items()})
        if callback is not None:
            callback(rec)
        if last:
            break
    tap.remove()
    # as a cached copy loads it (contiguous weights; see train_classifier)
    return model.to(memory_format=torch.contiguous_format).eval(), history, examples


def get_garbage_classifier(cfg: OODConfig, *, device=None, progress=True, retrain=False,
                           train_missing=True, round_eval=None) -> Trained:
    """The garbage-class classifier for ``cfg``: cached, resumed, or trained and cached.

    Returns a ``Trained`` whose ``extras["examples"]`` maps epoch -> a few uint8 samples added to
    the garbage class that epoch. ``round_eval``: see ``train_garbage_classifier`` (training only).
    """
    device = device or default_device()
    conf = {"ood": _key_dict(cfg)}
    ds = cfg.classifier.dataset

    def train(partial):
        data = load_dataset(ds, "train")
        if cfg.classifier.train_size is not None:
            data = data.subset(balanced_subset(data.y, cfg.classifier.train_size,
                                               seed=cfg.classifier.seed))
        model, history, examples = train_garbage_classifier(cfg, data, device=device,
                                                            checkpoint=partial, progress=progress,
                                                            round_eval=round_eval)
        return model, history, {}, {"examples": {str(e): v for e, v in examples.items()}}

    out = load_or_train(
        "ood", conf, ds, cfg, device=device, retrain=retrain, train_missing=train_missing,
        build=lambda st: Classifier(IMAGE_SHAPES[ds], len(CLASS_NAMES[ds]) + 1,
                                    cfg.classifier.dropout),
        train=train, extras=("examples",), what=f"garbage-class classifier for {ds}",
        hint=f"make it with notebooks/sec52_ood.ipynb (./run_all.sh) or "
             f"`python -m netinv_core.bench ood --train {ds} --profile PROFILE`")
    out.extras["examples"] = {int(e): v for e, v in out.extras["examples"].items()}
    return out


def check_train_dataset(name: str) -> str:
    check_dataset(name)
    if name not in OOD_DATASETS and name != "digits":
        raise ConfigError(f"OOD training set {name!r} not supported; choose one of {OOD_DATASETS}")
    return name
