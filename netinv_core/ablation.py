"""Quantify the paper's design claims (Sections 3.2-3.3; its conclusion names this as future work):
conditioning scheme, generator dropout and each loss term, one factor at a time from the default.

Factors and their values (``FACTORS``):
- ``conditioning``: label, vector, matrix, vector_matrix (default vector_matrix);
- ``dropout``: 0.0, 0.1, 0.3, 0.5 (default 0.5);
- ``loss_off``: none (the default, all four terms), alpha (KL off), beta (CE off), gamma (cosine
  off), delta (orthogonality off).
Every setting is trained with each seed; settings equal to the default are trained once.

Per setting and seed (definitions as in ``metrics`` and ``interpret``):
- inversion accuracy on fresh samples; ``steps_to_95``: the first step at which the mean batch
  accuracy over the last ``window`` steps reaches 0.95 (None if never), and ``seconds_to_95`` =
  steps_to_95 x the run's mean seconds per step;
- diversity: within-class feature cosine (and the real test images' value), pixel spread, clusters
  per class (``interpret.clusters_per_class``).
Generators are cached by config, so an interrupted sweep resumes without retraining finished settings.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .config import GeneratorConfig
from .errors import ConfigError
from .interpret import clusters_per_class, features_of, summarize_clusters
from .generator import generate
from .config import classifier_config, get_profile
from .pipeline import get_classifier, get_generator
from .results import mean_std
from .inversion import steps_to_accuracy  # noqa: F401  (re-exported: ablation.steps_to_accuracy)

FACTORS = {
    "conditioning": ("label", "vector", "matrix", "vector_matrix"),
    "dropout": (0.0, 0.1, 0.3, 0.5),
    "loss_off": ("none", "alpha", "beta", "gamma", "delta"),
}
DEFAULTS = {"conditioning": "vector_matrix", "dropout": 0.5, "loss_off": "none"}


def parse_spec(spec: dict | None = None) -> list[tuple[str, object]]:
    """``{factor: [values]}`` (None: every factor, every value) -> the list of distinct settings.
    Unknown factors or values raise ``ConfigError`` before anything is trained."""
    spec = {k: list(v) for k, v in FACTORS.items()} if spec is None else spec
    settings, seen = [], set()
    for factor, values in spec.items():
        if factor not in FACTORS:
            raise ConfigError(f"unknown ablation factor {factor!r}; choose from {sorted(FACTORS)}")
        for v in values:
            if v not in FACTORS[factor]:
                raise ConfigError(f"unknown value {v!r} for factor {factor!r}; choose from "
                                  f"{list(FACTORS[factor])}")
            key = "default" if v == DEFAULTS[factor] else (factor, v)
            if key not in seen:
                seen.add(key)
                settings.append(("default", None) if key == "default" else (factor, v))
    return settings


def setting_config(base: GeneratorConfig, factor: str, value) -> GeneratorConfig:
    if factor == "default":
        return base
    if factor == "conditioning":
        return replace(base, conditioning=value)
    if factor == "dropout":
        return replace(base, dropout=float(value))
    return replace(base, weights=replace(base.weights, **{value: 0.0}))


def run_ablation(dataset: str, profile="quick", *, spec=None, seeds=(0, 1, 2), n_samples=None,
                 device="cpu", progress=True, grid_per_class: int = 1) -> dict:
    """Train (or load) every setting x seed; returns ``{"rows": [...], "grids": {label: images}}``."""
    settings = parse_spec(spec)
    prof = get_profile(profile)
    clf = get_classifier(classifier_config(dataset, prof), device=device, progress=progress)
    rows, grids = [], {}
    n_cls = clf.model.num_classes
    for factor, value in settings:
        label = "default" if factor == "default" else f"{factor}={value}"
        for seed in seeds:
            cfg = setting_config(prof.generator_config(seed=seed), factor, value)
            gen = get_generator(clf, cfg, device=device, progress=progress,
                                checkpoint_every=prof.checkpoint_every,
                                eval_samples=n_samples or prof.eval_samples)
            m, hist = gen.metrics, gen.history
            imgs, labels = generate(gen.model, n_samples or prof.eval_samples, seed=1000 + seed,
                                    keep_dropout=cfg.dropout_at_generation)
            _, feats = features_of(clf.model, imgs, device=device)
            cl = summarize_clusters(clusters_per_class(feats, labels.numpy(), seed=seed))
            s95 = steps_to_accuracy(hist["batch_accuracy"])
            per_step = m["generator_seconds"] / max(cfg.steps, 1)
            rows.append({"setting": label, "factor": factor, "value": value, "seed": seed,
                         "inversion_accuracy": m["inversion_accuracy"], "steps_to_95": s95,
                         "seconds_to_95": None if s95 is None else s95 * per_step,
                         "feature_cosine_inverted": m["feature_cosine_inverted"],
                         "feature_cosine_real": m["feature_cosine_real"],
                         "pixel_spread_inverted": m["pixel_spread_inverted"],
                         "pixel_spread_real": m["pixel_spread_real"],
                         "clusters_per_class_mean": cl["clusters_per_class_mean"],
                         "generator_seconds": m["generator_seconds"], "steps": cfg.steps})
            if seed == seeds[0]:
                grid_labels = torch.arange(n_cls).repeat(grid_per_class)
                grids[label], _ = generate(gen.model, len(grid_labels), labels=grid_labels, seed=7)
    return {"rows": rows, "grids": grids, "classifier_test_accuracy": clf.metrics["test_accuracy"]}


NUMERIC = ("inversion_accuracy", "steps_to_95", "seconds_to_95", "feature_cosine_inverted",
           "pixel_spread_inverted", "clusters_per_class_mean")


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and std over seeds per setting (std with ddof=1; ``reached_95`` counts seeds)."""
    out = []
    for label in dict.fromkeys(r["setting"] for r in rows):
        rs = [r for r in rows if r["setting"] == label]
        rec = {"setting": label, "seeds": len(rs),
               "reached_95": sum(r["steps_to_95"] is not None for r in rs),
               "feature_cosine_real": rs[0]["feature_cosine_real"]}
        for k in NUMERIC:
            ms = mean_std([r[k] for r in rs], std_of_one=None)
            rec[k + "_mean"], rec[k + "_std"] = ms["mean"], ms["std"]
        out.append(rec)
    return out


def format_table(summary: list[dict]) -> str:
    """A Markdown table of the summary (mean ± std over seeds)."""
    def pm(r, k, fmt):
        m, s = r[k + "_mean"], r[k + "_std"]
        if m is None:
            return "never"
        return f"{m:{fmt}}" + (f" ± {s:{fmt}}" if s is not None else "")
    lines = ["| setting | inversion accuracy | steps to 95% (seeds reaching) | feature cosine (real) "
             "| pixel spread | clusters/class |", "|---|---|---|---|---|---|"]
    for r in summary:
        lines.append(f"| {r['setting']} | {pm(r, 'inversion_accuracy', '.3f')} | "
                     f"{pm(r, 'steps_to_95', '.0f')} ({r['reached_95']}/{r['seeds']}) | "
                     f"{pm(r, 'feature_cosine_inverted', '.3f')} ({r['feature_cosine_real']:.3f}) | "
                     f"{pm(r, 'pixel_spread_inverted', '.3f')} | {pm(r, 'clusters_per_class_mean', '.1f')} |")
    return "\n".join(lines)
