"""Figure 5 (paper, Section 5.3): training-like data reconstruction on classifiers trained on
subsets of the training split, scored by the calibrated metrics of ``netinv_core.recon_metrics``
against plain inversion, trivial baselines and a size-matched held-out control.

The method (L_Recon, the reconstruction generator, SSIM / NCC matching) is
``netinv_core.reconstruct``; its extra loss terms are in ``netinv_core.losses`` and its weights
(``ReconWeights``, ``ReconConfig``) in ``netinv_core.config``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from .config import ClassifierConfig, ReconConfig
from .data import IMAGE_SHAPES, load_dataset
from .errors import ConfigError
from .generator import Generator
from .inversion import FeatureTap, frozen, inversion_step
from .generator import generate
from .config import classifier_config, get_profile
from .pipeline import get_classifier, get_generator
from .results import mean_std
from .reconstruct import (DEFAULT_SAMPLING, PerSampleGradNorm, get_reconstructor,
                          recon_generator, reconstruction_step)


@dataclass
class ReconTensors:
    """What Figure 5 draws for one training-set size (never recorded to JSON).

    ``images``: per reconstruction generator ``(x, y)``; ``inversion_images``: plain inversion's
    ``(x, y)`` (``(None, None)`` when not run); ``matches``: generator 0's nearest training / held-out
    indices and NCC; ``train_x`` / ``test_x``: the pools those indices point into; ``ncc`` / ``inv_ncc``:
    NCC to the nearest training / held-out image (``{"ncc_train", "ncc_test"}`` arrays) of all
    reconstructions and of plain inversion (None when not run); ``train_images_per_class``: one
    training image per class."""
    images: list
    inversion_images: tuple
    matches: dict
    train_x: torch.Tensor
    test_x: torch.Tensor
    ncc: dict
    inv_ncc: dict | None
    train_images_per_class: list


# the paper's training-set sizes (Section 5.3)
TRAIN_SIZES = {"mnist": (1000, 10000, 60000), "fashionmnist": (1000, 10000, 60000),
               "svhn": (1000, 5000, 10000), "cifar10": (1000, 5000, 10000),
               "digits": (300, 1257)}


def subset_classifier_config(dataset: str, train_size: int, profile=None) -> ClassifierConfig:
    """The profile's classifier trained on a class-balanced subset of ``train_size`` images (the
    whole split when ``train_size`` equals its size), with at least the profile's
    ``classifier_min_steps`` optimiser steps."""
    prof = get_profile(profile)
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
    min_steps = prof.recon.classifier_min_steps
    epochs = max(base.epochs, math.ceil(min_steps / math.ceil(train_size / base.batch_size)))
    return replace(base, train_size=train_size, epochs=epochs)


def recon_config(profile=None, seed: int = 0, **overrides) -> ReconConfig:
    st = get_profile(profile).recon
    cfg = ReconConfig(steps=st.steps, batch_size=st.batch_size, width=st.width,
                      grad_samples=st.grad_samples, seed=seed)
    return replace(cfg, **overrides) if overrides else cfg


def _strip(rep: dict) -> dict:
    return {k: v for k, v in rep.items() if not k.startswith("_")}


def reconstruction_experiment(dataset: str, train_size: int, profile=None, *, device="cpu",
                              progress=True, train_missing=True, n_generators=None,
                              sampling: str = DEFAULT_SAMPLING, plain_inversion: bool = True) -> dict:
    """Classifier on ``train_size`` images; ``n_generators`` reconstruction generators and one
    plain-inversion generator (Section 3 losses) on it; the calibrated metrics of
    ``recon_metrics`` (label / verifier / 1-NN accuracy, NCC and SSIM to the nearest training and
    held-out image, train_closer with its permutation p-value) for each generator, for all
    generators' reconstructions pooled (the top-level keys), for plain inversion (unless
    ``plain_inversion`` is False) and for the
    trivial ``baselines``. Reconstructions are sampled in ``sampling`` mode
    (``recon_attempts.SAMPLING_MODES``); every generator also records its label accuracy in every
    mode (``sampling_modes``).
    """
    from .recon_attempts import sample, sampling_modes_report
    from .recon_metrics import METRIC_KEYS, make_judge

    prof = get_profile(profile)
    st = prof.recon
    t0 = time.perf_counter()
    ccfg = subset_classifier_config(dataset, train_size, prof)
    clf = get_classifier(ccfg, device=device, progress=progress, train_missing=train_missing)
    judge = make_judge(clf.model, dataset, ccfg.train_size, attacked_seed=ccfg.seed, device=device)
    gens, reports = [], []
    for seed in range(n_generators or st.n_generators):
        cfg = recon_config(prof, seed)
        rec = get_reconstructor(clf, cfg, device=device, progress=progress,
                                train_missing=train_missing)
        gen, hist = rec.model, rec.history
        x, y, oor = sample(gen, st.n_per_class, mode=sampling, seed=1000 + seed)
        rep = judge.metrics(x, y, with_matches=True)
        rep.update(seed=seed, raw_out_of_range_share=oor, generator_seconds=hist["seconds"],
                   sampling_modes=sampling_modes_report(gen, clf.model, st.n_per_class,
                                                        1000 + seed, device))
        reports.append(rep)
        gens.append((x, y))
    pooled = judge.metrics(torch.cat([g[0] for g in gens]), torch.cat([g[1] for g in gens]))
    # control: plain inversion (Section 3 losses, the profile's Figure 2 generator) on the same
    # classifier
    n_cls = clf.model.num_classes
    if plain_inversion:
        icfg = prof.generator_config(seed=0)
        inv = get_generator(clf, icfg, device=device, progress=progress,
                            checkpoint_every=prof.checkpoint_every,
                            eval_samples=prof.eval_samples, train_missing=train_missing)
        xi, yi = generate(inv.model, st.n_per_class * n_cls,
                          labels=torch.arange(n_cls).repeat_interleave(st.n_per_class),
                          seed=999, keep_dropout=icfg.dropout_at_generation)
        inv_rep = judge.metrics(xi, yi, with_matches=True)
    else:   # not run: the figures and the table show the reconstructions alone
        xi = yi = None
        inv_rep = {"not_run": "plain_inversion=False", "_matches": None}
    baselines = judge.baselines(st.n_per_class)

    def agg(key, sub=None):
        return mean_std([r[key][sub] if sub else r[key] for r in reports])

    summary = {k: agg(k) for k in METRIC_KEYS if k != "train_closer"}
    summary["train_closer_share"] = agg("train_closer", "share")
    train_x = judge.data.train_x
    return {"dataset": dataset, "train_size": len(judge.data.train_y), "profile": prof.name,
            "classifier_test_accuracy": clf.metrics["test_accuracy"],
            "classifier_epochs": ccfg.epochs, "sampling": sampling,
            **{k: pooled[k] for k in METRIC_KEYS}, "n_images": pooled["n_images"],
            "judge": judge.describe(), "baselines": baselines,
            "reconstruction": [_strip(r) for r in reports],
            "summary": summary, "plain_inversion": _strip(inv_rep),
            "seconds": time.perf_counter() - t0,
            "tensors": ReconTensors(
                images=gens, inversion_images=(xi, yi), matches=reports[0]["_matches"],
                train_x=train_x, test_x=judge.data.heldout_x,
                ncc={k: torch.cat([r["_matches"][k] for r in reports]).numpy()
                     for k in ("ncc_train", "ncc_test")},
                inv_ncc=({k: inv_rep["_matches"][k].numpy() for k in ("ncc_train", "ncc_test")}
                         if plain_inversion else None),
                train_images_per_class=[train_x[judge.data.train_y == c][0] for c in range(n_cls)])}


def step_time_ratio(dataset: str = "mnist", profile=None, *, repeats: int = 5, device="cpu",
                    train_size: int | None = None):
    """Median seconds of one reconstruction step and one inversion step at the same batch size on
    the profile's classifier (trained on ``train_size`` images when given: the same architecture,
    so the same step time, without training the full-data classifier), and their ratio (the
    issue's <= 5x budget for the gradient term)."""
    prof = get_profile(profile)
    ccfg = (subset_classifier_config(dataset, train_size, prof) if train_size
            else classifier_config(dataset, prof))
    clf = get_classifier(ccfg, device=device, progress=False)
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
    return {k: v for k, v in result.items() if k != "tensors"}


def format_recon_table(records: list[dict]) -> str:
    """Per training-set size: the reconstructions (all generators pooled), plain inversion and the
    baselines, one row each with every calibrated metric."""
    from .recon_metrics import METRICS_HEADER, format_metrics_row

    lines = []
    for r in records:
        lines.append(f"{r['dataset']} n={r['train_size']} (classifier test accuracy "
                     f"{r['classifier_test_accuracy']:.4f}; sampling: {r['sampling']})")
        lines.append(METRICS_HEADER)
        lines.append(format_metrics_row("reconstruction", r))
        if "not_run" not in r["plain_inversion"]:
            lines.append(format_metrics_row("plain inversion", r["plain_inversion"]))
        for k, m in r["baselines"].items():
            lines.append(format_metrics_row(f"baseline {k}", m))
    return "\n".join(lines)
