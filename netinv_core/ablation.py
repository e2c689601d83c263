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

``student_probe`` asks which setting teaches the most (issue 13): for each setting and seed, a
``probes.SmallNet`` student trained only on ``n`` of its samples with the classifier's soft labels
(``probes.student_accuracy``), scored on the real test set; the same student on ``n`` uniform-noise
images is the floor and on ``n`` real training images the ceiling. Recorded in ``ablation.json``
under ``datasets/<dataset>/student`` by ``python -m netinv_core.ablation student``.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .config import GeneratorConfig
from .errors import ConfigError
from .interpret import clusters_per_class, features_of, summarize_clusters
from .generator import generate
from .config import DEFAULT_PROFILE, classifier_config, get_profile
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


def run_ablation(dataset: str, profile=None, *, spec=None, seeds=(0, 1, 2), n_samples=None,
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
            steps = len(hist["batch_accuracy"])    # fewer than cfg.steps after an early stop
            per_step = m["generator_seconds"] / max(steps, 1)
            rows.append({"setting": label, "factor": factor, "value": value, "seed": seed,
                         "inversion_accuracy": m["inversion_accuracy"], "steps_to_95": s95,
                         "seconds_to_95": None if s95 is None else s95 * per_step,
                         "feature_cosine_inverted": m["feature_cosine_inverted"],
                         "feature_cosine_real": m["feature_cosine_real"],
                         "pixel_spread_inverted": m["pixel_spread_inverted"],
                         "pixel_spread_real": m["pixel_spread_real"],
                         "clusters_per_class_mean": cl["clusters_per_class_mean"],
                         "generator_seconds": m["generator_seconds"], "steps": steps})
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


STUDENT_SETTINGS = ("default", "conditioning=label", "loss_off=alpha")


def _parse_setting(label: str):
    if label == "default":
        return "default", None
    factor, _, raw = label.partition("=")
    values = {str(v): v for v in FACTORS.get(factor, ())}
    if raw not in values:
        raise ConfigError(f"unknown ablation setting {label!r}; use 'default' or factor=value with "
                          f"factor in {sorted(FACTORS)} (e.g. conditioning=label, loss_off=alpha)")
    return factor, values[raw]


def student_probe(dataset: str, profile=None, *, settings=STUDENT_SETTINGS, seeds=(0, 1, 2),
                  n_samples: int | None = None, epochs: int = 3, device="cpu", progress=True,
                  seed: int = 11) -> dict:
    """The student probe per ablation setting (module docstring); generators come from the same
    cache as ``run_ablation``. Returns ``{"n_samples", "epochs", "architecture", "settings": [{"setting",
    "seeds", "accuracy": [...], "accuracy_mean", "accuracy_std"}], "noise_accuracy", "real_accuracy"}``."""
    from .data import load_dataset
    from .figure2 import STUDENT_SAMPLES
    from .probes import SMALLNET, student_accuracy, student_floor_ceiling

    prof = get_profile(profile)
    parsed = [(label, *_parse_setting(label)) for label in settings]
    n = n_samples or STUDENT_SAMPLES.get(prof.name, 20000)
    clf = get_classifier(classifier_config(dataset, prof), device=device, progress=progress)
    train, test = load_dataset(dataset, "train"), load_dataset(dataset, "test")
    rows = []
    for label, factor, value in parsed:
        accs = []
        for s in seeds:
            cfg = setting_config(prof.generator_config(seed=s), factor, value)
            gen = get_generator(clf, cfg, device=device, progress=progress,
                                checkpoint_every=prof.checkpoint_every, eval_samples=prof.eval_samples)
            x, _ = generate(gen.model, n, seed=seed + 1, keep_dropout=cfg.dropout_at_generation)
            accs.append(student_accuracy(clf.model, x, test, epochs=epochs, seed=seed, device=device))
        ms = mean_std(accs)
        rows.append({"setting": label, "seeds": list(seeds), "accuracy": accs,
                     "accuracy_mean": ms["mean"], "accuracy_std": ms["std"]})
    return {"n_samples": n, "epochs": epochs, "architecture": SMALLNET, "settings": rows,
            **student_floor_ceiling(clf.model, train, test, n,
                                    generator=torch.Generator().manual_seed(seed), epochs=epochs,
                                    seed=seed, device=device)}


def main(argv=None) -> int:
    """``python -m netinv_core.ablation student ...``; a ``NetinvError`` prints one line, exit 2."""
    import sys

    from .errors import NetinvError

    try:
        _student_cli(argv)
    except NetinvError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _student_cli(argv=None):
    import argparse
    import json
    from pathlib import Path

    from .results import save_json

    ap = argparse.ArgumentParser(prog="python -m netinv_core.ablation",
                                 description="Add the student probe per ablation setting to ablation.json.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("student", help="student probe per setting -> <json>#/datasets/<dataset>/student")
    st.add_argument("--dataset", required=True)
    st.add_argument("--profile", default=DEFAULT_PROFILE)
    st.add_argument("--settings", nargs="+", default=list(STUDENT_SETTINGS))
    st.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    st.add_argument("--n-samples", type=int, default=None)
    st.add_argument("--json", default="figures/ablation.json")
    a = ap.parse_args(argv)
    for label in a.settings:          # bad settings fail before anything is trained
        _parse_setting(label)
    path = Path(a.json)
    record = json.loads(path.read_text()) if path.exists() else {"profile": a.profile, "datasets": {}}
    if record.get("profile") != a.profile:
        raise ConfigError(f"{path} was made with profile {record.get('profile')!r}, not {a.profile!r}; "
                          f"pass --json with another file")
    res = student_probe(a.dataset, a.profile, settings=a.settings, seeds=tuple(a.seeds),
                        n_samples=a.n_samples)
    record.setdefault("datasets", {}).setdefault(a.dataset, {})["student"] = res
    save_json(record, path)
    for r in res["settings"]:
        print(f"{a.dataset} {r['setting']:>20s}: student {r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f}")
    print(f"{a.dataset} floor (noise) {res['noise_accuracy']:.4f}, ceiling (real) {res['real_accuracy']:.4f}")


if __name__ == "__main__":
    raise SystemExit(main())
