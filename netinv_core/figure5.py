"""Figure 5 (paper, Section 5.3): training-like data reconstruction on classifiers trained on
subsets of the training split, against plain inversion and a size-matched held-out control.

The method (L_Recon, the reconstruction generator, SSIM / NCC matching) is
``netinv_core.reconstruct``; its extra loss terms are in ``netinv_core.losses`` and its weights
(``ReconWeights``, ``ReconConfig``) in ``netinv_core.config``.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import torch

from .config import ClassifierConfig, ReconConfig
from .data import IMAGE_SHAPES, balanced_subset, load_dataset
from .errors import ConfigError
from .generator import Generator
from .inversion import FeatureTap, frozen, inversion_step
from .metrics import generate
from .pipeline import _profile, classifier_config, get_classifier, get_generator
from .reconstruct import (PerSampleGradNorm, get_reconstructor, match_report, reconstruct,
                          recon_generator, reconstruction_step)


# the paper's training-set sizes (Section 5.3)
TRAIN_SIZES = {"mnist": (1000, 10000, 60000), "fashionmnist": (1000, 10000, 60000),
               "svhn": (1000, 5000, 10000), "cifar10": (1000, 5000, 10000),
               "digits": (300, 1257)}


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
    st = RECON_SETTINGS[_profile(profile).name]
    cfg = ReconConfig(steps=st["steps"], batch_size=st["batch_size"], width=st["width"],
                      grad_samples=st["grad_samples"], seed=seed)
    return replace(cfg, **overrides) if overrides else cfg


def _strip(rep: dict) -> dict:
    return {k: v for k, v in rep.items() if not k.startswith("_")}


def reconstruction_experiment(dataset: str, train_size: int, profile="quick", *, device="cpu",
                              progress=True, train_missing=True, n_generators=None) -> dict:
    """Classifier on ``train_size`` images; ``n_generators`` reconstruction generators and one
    plain-inversion generator (Section 3 losses) on it; the match report of each against the
    classifier's own training images and the size-matched held-out control.
    """
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
