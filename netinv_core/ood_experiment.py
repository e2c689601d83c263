"""The Section 5.2 experiment: a garbage-class classifier per training set and seed, evaluated on
every other dataset against the MSP, energy and Mahalanobis baselines; the paper's 4x4 table.

The method itself (garbage-class training, scores, metrics) is ``netinv_core.ood``.

Image conversion between datasets (``convert_images``): grayscale -> RGB repeats the channel;
RGB -> grayscale is the ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B; sizes are matched by bilinear
resizing with antialiasing (28 <-> 32). Any other channel count is an error.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .checks import LEGACY_OOD_VARIANT
from .data import ImageData, load_dataset
from .errors import DataUnavailableError, ShapeError
from .frozen import inversion_ready
from .ood import OOD_DATASETS, OODConfig, check_train_dataset, get_garbage_classifier
from .ood_scores import Mahalanobis, energy_score, garbage_score, msp_score, ood_metrics
from .cache import default_device
from .config import GeneratorConfig, classifier_config, get_profile
from .pipeline import get_classifier
from .results import format_pm, mean_std

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
# evaluation

@torch.no_grad()
def _logits_feats(model, x: torch.Tensor, device, batch_size: int = 1000):
    lg, ft = [], []
    with inversion_ready(model):   # evaluation mode, BatchNorm folded, channels-last (issue 14)
        for i in range(0, len(x), batch_size):
            a, b = model.forward_features(x[i:i + batch_size].to(device))
            lg.append(a.cpu())
            ft.append(b.cpu())
    model.eval()
    return torch.cat(lg), torch.cat(ft)


@dataclass
class OODConfidences:
    """Confidence max_{c<N} p_c of one garbage-class model (the histograms; never recorded):
    ``in_kept``: in-distribution test images it keeps (not sent to garbage); per OOD set name,
    ``out_kept``: OOD images it keeps (misclassified OOD) and ``out_garbage``: those it sends to
    garbage."""
    in_kept: np.ndarray
    out_kept: dict = field(default_factory=dict)
    out_garbage: dict = field(default_factory=dict)


@dataclass
class OODTensors:
    """What the Section 5.2 figures draw for one training set (never recorded): the confidences of
    each seed, and the first seed's garbage examples per epoch (float images in [0, 1])."""
    confidences: list
    examples: dict


MAHALANOBIS_FIT = 10000   # training images the Mahalanobis baseline is fitted on


def evaluate_ood(garbage_model, baseline_model, train: ImageData, test: ImageData,
                 ood_sets: dict[str, torch.Tensor], *, device="cpu",
                 mahalanobis_fit: int = MAHALANOBIS_FIT, seed: int = 0) -> tuple[dict, OODConfidences]:
    """Numbers for one training set: in-distribution accuracy, garbage rate per OOD set, the
    paper's confidence claim, and AUROC / AUPR-IN / AUPR-OUT / FPR95 for the garbage score and
    the MSP, energy and Mahalanobis baselines (``ood_sets``: name -> images already converted).
    Returns ``(numbers, confidences)``: a JSON-able dict and the raw ``OODConfidences``."""
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
    conf = OODConfidences(in_kept=conf_in[kept_in].numpy())
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
        }
        conf.out_kept[name] = conf_out[missed].numpy()
        conf.out_garbage[name] = conf_out[~missed].numpy()
    return out, conf


# ---------------------------------------------------------------------------------------------
# the experiment: one training set, several seeds, every other dataset as OOD

# The default configuration of Section 5.2 (issue 12): the best variant that is faithful to the
# paper, chosen after the attempts of ``netinv_core.ood_attempts`` (figures/fig4_ood.json).
DEFAULT_VARIANT = "diverse_garbage"


def capped_config(train_name: str, profile=None, seed: int = 0) -> OODConfig:
    """The first table's configuration (attempt ``capped``; the base every variant changes): the
    profile's classifier (epochs, seed) and generator (width, batch) with the profile's ``ood``
    settings for the per-epoch inversion, and ``OODConfig``'s own defaults (garbage set capped at
    twice the mean class size, one warm-started generator, cosine LR to 0). Each round trains its
    fixed number of steps in fp32 at lr 1e-3, whatever the profile's ``generator_speed`` (which
    is for the inversion figures): the recorded Section 5.2 models keep their keys."""
    prof = get_profile(profile)
    check_train_dataset(train_name)
    st = prof.ood
    ccfg = classifier_config(train_name, prof, seed=seed)
    gcfg = replace(prof.generator_config(seed=seed), steps=st.gen_steps_per_epoch,
                   **{k: getattr(GeneratorConfig, k) for k, _ in prof.generator_speed})
    return OODConfig(classifier=ccfg, generator=gcfg, inverted_per_epoch=st.inverted_per_epoch)


def no_cap(cfg: OODConfig, rounds: int = 10) -> OODConfig:
    """The paper's loop: the garbage set only grows (uint8), ``rounds`` inversion rounds each
    trained on (``rounds`` + 1 classifier epochs, no inversion after the last), LR cosine to 10%
    of lr, and the OOD paper's loss KL + CE + Cos (delta = 0)."""
    g = cfg.generator
    return replace(cfg, keep_all=True, garbage_cap=None, invert_after_last_epoch=False,
                   lr_floor=0.1, classifier=replace(cfg.classifier, epochs=rounds + 1),
                   generator=replace(g, weights=replace(g.weights, delta=0.0)))


def diverse_garbage(cfg: OODConfig) -> OODConfig:
    """``no_cap`` with as many rounds as ``cfg`` has classifier epochs, a fresh generator every
    round trained twice the steps, dropout 0.1 and none at generation, gamma = 20, and hot
    (one-hot) conditioning: the default (``DEFAULT_VARIANT``)."""
    c = no_cap(cfg, rounds=cfg.classifier.epochs)
    g = c.generator
    return replace(c, fresh_generator=True, hot_conditioning=True, generator=replace(
        g, dropout=0.1, dropout_at_generation=False, steps=2 * g.steps,
        weights=replace(g.weights, gamma=20.0)))


def ood_config(train_name: str, profile=None, seed: int = 0) -> OODConfig:
    """The default garbage-class config for ``train_name``: ``DEFAULT_VARIANT`` of
    ``capped_config``. Trained on MNIST it sends 89.5 +- 1.3% of FashionMNIST to garbage (3
    seeds; the paper: 89.5%) against 83.5 +- 2.8% for ``capped``."""
    return diverse_garbage(capped_config(train_name, profile, seed))


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


def run_ood(train_name: str, profile=None, *, seeds=(0, 1, 2), device=None, progress=True,
            train_missing=True, adjust: Callable[[OODConfig], OODConfig] | None = None,
            base: Callable[..., OODConfig] | None = None) -> dict:
    """Train (or load) the garbage-class and baseline classifiers for each seed and evaluate them
    on the in-distribution test set and every available OOD set. Returns per-seed results, their
    mean/std summary, and garbage examples of the first seed. ``base(train_name, profile, seed)``
    gives each seed's config (default ``ood_config``; ``capped_config`` for the first table's),
    and ``adjust`` maps it to a variant (e.g. ``lambda c: replace(c, selection="uncertain",
    candidates=3)``); the baselines stay the profile's classifiers. The record's ``variant`` is
    ``DEFAULT_VARIANT``, ``"capped"`` (``capped_config``) or ``"adjusted"``."""
    prof = get_profile(profile)
    device = device or default_device()
    check_train_dataset(train_name)
    make_config = base or ood_config
    variant = ("adjusted" if adjust is not None else DEFAULT_VARIANT if make_config is ood_config
               else LEGACY_OOD_VARIANT if make_config is capped_config else "adjusted")
    train, test = load_dataset(train_name, "train"), load_dataset(train_name, "test")
    st = prof.ood
    sets, skipped = ood_sets_for(train_name, train.image_shape, st.ood_samples)
    per_seed, confidences, examples, histories = [], [], None, []
    t0 = time.perf_counter()
    for seed in seeds:
        cfg = make_config(train_name, prof, seed)
        cfg = adjust(cfg) if adjust is not None else cfg
        garb = get_garbage_classifier(cfg, device=device, progress=progress,
                                      train_missing=train_missing)
        model, hist, ex = garb.model, garb.history, garb.extras["examples"]
        base = get_classifier(classifier_config(train_name, prof, seed=seed), device=device,
                              progress=progress, train_missing=train_missing)
        res, conf = evaluate_ood(model, base.model, train, test, sets, device=device, seed=seed)
        res["seed"] = seed
        per_seed.append(res)
        confidences.append(conf)
        histories.append(hist)
        if examples is None:  # uint8 as stored -> float images in [0, 1] for plotting
            examples = {e: v.float() / 255 for e, v in ex.items()}
    return {"train": train_name, "profile": prof.name,
            "variant": variant, "seeds": list(seeds),
            "classes": list(train.classes), "ood_sets": sorted(sets), "skipped": skipped,
            "per_seed": per_seed, "summary": summarize_ood(per_seed), "histories": histories,
            "seconds": time.perf_counter() - t0,
            "tensors": OODTensors(confidences=confidences, examples=examples)}


def summarize_ood(per_seed: list[dict]) -> dict:
    """Mean and std over seeds of every number ``evaluate_ood`` returns."""
    first = per_seed[0]
    out = {k: mean_std([r[k] for r in per_seed]) for k in
           ("in_distribution_accuracy", "baseline_accuracy", "in_distribution_garbage_rate",
            "least_confident_in_distribution")}
    out["ood"] = {}
    for name, o in first["ood"].items():
        rows = [r["ood"][name] for r in per_seed]
        out["ood"][name] = {
            "garbage_rate": mean_std([r["garbage_rate"] for r in rows]),
            "most_confident_misclassified_ood": mean_std([r["most_confident_misclassified_ood"]
                                                     for r in rows]),
            "clear_threshold_seeds": sum(bool(r["clear_threshold"]) for r in rows),
            "methods": {m: {k: mean_std([r["methods"][m][k] for r in rows]) for k in v}
                        for m, v in o["methods"].items()},
        }
    out["n_seeds"] = len(per_seed)
    return out


def record(result: dict) -> dict:
    """A JSON-able record of ``run_ood`` output (its ``tensors`` dropped)."""
    return {k: v for k, v in result.items() if k != "tensors"}


def merge_previous_runs(records: dict[str, dict], path, profile: str) -> tuple[dict, dict]:
    """``records`` (train set -> ``record``) completed from the ``runs`` of the JSON at ``path``
    when that file exists and was made with the same ``profile``; otherwise unchanged.

    - a training set this run did not touch keeps its previous record whole;
    - a training set run here with some seeds keeps the previous per-seed results of the seeds it
      did not run (same profile, hence the same configs and cache keys), and its ``summary`` is
      recomputed over all of them, so a long training set can be run one seed at a time.
    New results always win. A previous record made with another configuration than the default
    (its ``variant``; records without one were made with ``capped``) is never kept, and a new
    record only takes previous seeds of its own configuration: a dropped training set is left out
    (``kept`` says so) rather than mixed into the default's table.
    Returns ``(merged, kept)`` where ``kept`` maps each training set to the previous seeds it
    kept (``"all"`` for a whole kept record; ``"none: ..."`` for a dropped one); each merged
    record with kept seeds lists them in ``seeds_from_previous``."""
    import json
    from pathlib import Path

    path = Path(path)
    try:
        old = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        old = {}
    if old.get("profile") != profile:
        return dict(records), {}
    merged, kept = {}, {}
    previous = {}
    for name, prev in old.get("runs", {}).items():
        made = prev.get("variant", LEGACY_OOD_VARIANT)
        if made == DEFAULT_VARIANT:
            previous[name] = prev
        elif name not in records:
            kept[name] = (f"none: the previous record was made with {made!r}, not the default "
                          f"{DEFAULT_VARIANT!r}")
    for name, prev in previous.items():
        if name not in records:
            merged[name], kept[name] = prev, "all"
    for name, rec in records.items():
        prev = old.get("runs", {}).get(name)
        if prev is not None and prev.get("variant", LEGACY_OOD_VARIANT) != rec.get("variant"):
            prev = None     # another configuration's seeds never join this record
        have = set(rec["seeds"])
        extra = [] if prev is None else [i for i, r in enumerate(prev["per_seed"])
                                         if r["seed"] not in have]
        if not extra:
            merged[name] = rec
            continue
        rows = [(prev["per_seed"][i], prev["histories"][i] if i < len(prev.get("histories", []))
                 else None) for i in extra] + list(zip(rec["per_seed"], rec["histories"]))
        rows.sort(key=lambda rh: rh[0]["seed"])
        per_seed = [r for r, _ in rows]
        merged[name] = {**rec, "seeds": [r["seed"] for r in per_seed], "per_seed": per_seed,
                        "histories": [h for _, h in rows], "summary": summarize_ood(per_seed),
                        "seeds_from_previous": sorted(prev["per_seed"][i]["seed"] for i in extra)}
        kept[name] = merged[name]["seeds_from_previous"]
    return merged, kept


def paper_table(records: dict[str, dict]) -> dict:
    """The 4x4 table of docs/choices.md from ``{train_name: record}``: rows = trained on, columns =
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
    pm = format_pm
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
