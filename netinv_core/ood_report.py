"""The ``attempts`` list of ``figures/fig4_ood.json`` and the per-round figure, from the per-seed
JSON files that ``python -m netinv_core.ood_attempts run`` writes (issue 12).

Each entry: ``name``, ``train`` (training set), ``settings``, ``seeds`` (seed 0 first), the
in-distribution accuracy and, per OOD set, the garbage rate, AUROC and FPR95 (mean over seeds and
per seed), with ``fpr95_convention``. Evaluation-only entries name the ``model`` they evaluate.
Attempts that were not run are listed, with why, in ``attempts_not_run``.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from .ood_attempts import FPR95_CONVENTION, VARIANTS

# The co-author's published UE figures (MNIST in-distribution; REPRODUCTION_GAPS.md section 1B).
CO_AUTHOR_UE = {"fashionmnist": {"auroc": 0.9784, "fpr95": 0.0747},
                "cifar10": {"auroc": 0.9704, "fpr95": 0.1137}}
# The paper's table (NOTES.md): share of the OOD test set sent to garbage, percent.
PAPER = {"mnist": {"mnist": 99.1, "fashionmnist": 89.5, "cifar10": 99.4},
         "fashionmnist": {"mnist": 85.2, "fashionmnist": 92.6, "cifar10": 95.7},
         "cifar10": {"mnist": 97.8, "fashionmnist": 95.7, "cifar10": 85.5}}


def _stat(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return {"mean": None, "per_seed": []}
    return {"mean": float(np.mean(vals)), "per_seed": [float(v) for v in vals]}


def load_runs(out_dir) -> dict:
    """(train, variant) -> per-seed records, seed 0 first."""
    runs = defaultdict(list)
    for f in sorted(Path(out_dir).glob("*.json")):
        r = json.loads(f.read_text())
        runs[(r["train"], r["variant"])].append(r)
    return {k: sorted(v, key=lambda r: r["seed"]) for k, v in runs.items()}


def variant_entry(recs: list) -> dict:
    r0 = recs[0]
    e = {"name": r0["variant"], "train": r0["train"], "settings": r0["settings"],
         "seeds": [r["seed"] for r in recs], "status": "measured",
         "command": f"python -m netinv_core.ood_attempts run --train {r0['train']} "
                    f"--variant {r0['variant']} --seed SEED",
         "in_distribution_accuracy": _stat([r["in_distribution_accuracy"] for r in recs]),
         "fpr95_convention": FPR95_CONVENTION, "ood": {}}
    for name in r0["ood"]:
        rows = [r["ood"][name] for r in recs]
        e["ood"][name] = {k: _stat([o[k] for o in rows]) for k in ("garbage_rate", "auroc", "fpr95")}
        paper = PAPER.get(r0["train"], {}).get(name)
        if paper is not None:
            e["ood"][name]["paper_garbage_rate"] = paper / 100
    h = r0.get("history") or {}
    if any(h.get("round_eval") or []):
        e["per_round_seed0"] = {k: h.get(k) for k in (
            "epoch", "round_eval", "garbage_size", "garbage_bytes", "lr", "inverted_uncertainty",
            "inverted_feature_cosine_all", "inverted_feature_cosine_within",
            "inversion_accuracy_last")}
        e["per_round_seed0"]["note"] = ("round_eval = share of the first 2000 images of each OOD "
                                        "set sent to garbage after that epoch")
    return e


def evaluation_entries(recs: list) -> list:
    """The evaluation-only attempts on the models of ``recs`` (one variant, several seeds)."""
    r0 = recs[0]
    base = {"train": r0["train"], "model": r0["variant"], "seeds": [r["seed"] for r in recs],
            "fpr95_convention": FPR95_CONVENTION}
    out = []
    if all("own_normalisation" in r for r in recs):
        ood = {}
        for name in r0["own_normalisation"]:
            ood[name] = {
                "in_distribution_preprocessing": {k: _stat([r["ood"][name][k] for r in recs])
                                                  for k in ("garbage_rate", "auroc", "fpr95")},
                "own_normalisation": {k: _stat([r["own_normalisation"][name][k] for r in recs])
                                      for k in ("garbage_rate", "auroc", "fpr95")},
                "paper_garbage_rate": PAPER.get(r0["train"], {}).get(name, 0) / 100 or None}
        out.append({"name": "own_normalisation", **base, "status": "measured",
                    "settings": "evaluation only: each OOD set normalised with its own dataset's "
                                "statistics (lab-loader pattern; unsound) vs the in-distribution "
                                "preprocessing (sound)", "ood": ood})
    if all("uncertainty_score" in r["ood"][n] for r in recs for n in r["ood"]):
        ood = {}
        for name in r0["ood"]:
            ood[name] = {conv: {k: _stat([r["ood"][name]["uncertainty_score"][conv][k]
                                          for r in recs]) for k in ("auroc", "fpr95")}
                         for conv in ("ue_all", "ue_id")}
            ood[name]["garbage_score"] = {k: _stat([r["ood"][name][k] for r in recs])
                                          for k in ("auroc", "fpr95")}
            if r0["train"] == "mnist" and name in CO_AUTHOR_UE:
                ood[name]["co_author_ue"] = CO_AUTHOR_UE[name]
        out.append({"name": "uncertainty_score", **base, "status": "measured",
                    "settings": "evaluation only: UE of NOTES.md as the score; ue_all = UE of the "
                                "(N+1)-way softmax, ue_id = 1 for a garbage prediction else UE of "
                                "the softmax renormalised over the ID classes", "ood": ood})
        out.append({"name": "robust_threshold", **base, "status": "measured",
                    "settings": "evaluation only: least confident kept (and correctly classified) "
                                "ID test image, its 0.1% / 1% quantiles, against the most "
                                "confident escaped OOD image and its 99.9% / 99% quantiles",
                    "ood": {name: [r["ood"][name]["robust_threshold"] for r in recs]
                            for name in r0["ood"]}})
        ood = {}
        for name in r0["ood"]:
            ood[name] = {"garbage": {k: _stat([r["ood"][name][k] for r in recs])
                                     for k in ("auroc", "fpr95")}}
            for m in r0["ood"][name]["baselines"]:
                ood[name][m] = {k: _stat([r["ood"][name]["baselines"][m][k] for r in recs])
                                for k in ("auroc", "fpr95")}
        out.append({"name": "knn_vim", **base, "status": "measured",
                    "settings": "post-hoc scores on the plain classifier of the same seed: MSP, "
                                "energy, Mahalanobis (netinv), KNN k=50 on normalised features and "
                                "ViM d=64 (pytorch-ood), vs the garbage score", "ood": ood})
    return out


# whose model the evaluation-only checks describe, by preference (the noise-only control last)
# (CIFAR-10 has no default model: its >= 85% backbone attempt comes before the 79% capped one)
EVAL_MODEL_ORDER = ("diverse_garbage", "backbone_sgd", "capped", "no_cap", "long", "backbone",
                    "noise_only")


def build_attempts(out_dir) -> list:
    """The ``attempts`` list (measured ones only; those not run are in ``attempts_not_run``):
    evaluation-only entries first (one model per training set, ``EVAL_MODEL_ORDER``; its name is
    the entry's ``model``), then each training variant."""
    runs = load_runs(out_dir)
    attempts = []
    order = list(VARIANTS)
    for train in sorted({t for t, _ in runs}):
        # the evaluation-only checks of one model per training set: the default's
        # (diverse_garbage) when it has them, else the first variant in EVAL_MODEL_ORDER whose
        # every seed has them
        for variant in EVAL_MODEL_ORDER:
            recs = runs.get((train, variant))
            if recs and all("own_normalisation" in r for r in recs):
                attempts += evaluation_entries(recs)
                break
    for (train, variant), recs in sorted(runs.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1]))):
        attempts.append(variant_entry(recs))
    return attempts


def rounds_figure(out_dir):
    """Garbage rate of each OOD set, mean UE and feature cosine of the added samples, and the
    garbage set's memory, per round, for every seed-0 run that recorded them."""
    import matplotlib.pyplot as plt
    runs = {k: v[0] for k, v in load_runs(out_dir).items()
            if any((v[0].get("history") or {}).get("round_eval") or [])}
    if not runs:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(16, 6))
    # one colour per run in every panel; in the first, OOD sets told apart by line style
    colours = plt.get_cmap("tab10").colors
    # the far set (CIFAR-10) dashed; the near ones solid, MNIST with circles, FashionMNIST triangles
    styles = {"cifar10": ("--", "s"), "fashionmnist": ("-", "^")}
    for i, ((train, variant), r) in enumerate(sorted(runs.items())):
        h, c = r["history"], colours[i % len(colours)]
        ep = h["epoch"]
        for name in r["ood"]:
            ls, mk = styles.get(name, ("-", "o"))
            axes[0].plot(ep, [100 * (e or {}).get(name, np.nan) for e in h["round_eval"]],
                         color=c, ls=ls, marker=mk, label=f"{train} {variant}: {name}")
        nan = lambda v: [np.nan if x is None else x for x in v]  # noqa: E731  (no samples added)
        axes[1].plot(ep, nan(h["inverted_uncertainty"]), color=c, marker="o",
                     label=f"{train} {variant}: UE")
        axes[1].plot(ep, nan(h["inverted_feature_cosine_all"]), color=c, marker="s", ls="--",
                     label=f"{train} {variant}: feature cosine (all labels)")
        axes[2].plot(ep, np.asarray(h["garbage_bytes"]) / 2 ** 20, color=c, marker="o",
                     label=f"{train} {variant}")
    if not axes[1].lines or all(np.isnan(ln.get_ydata().astype(float)).all() for ln in axes[1].lines):
        axes[1].text(0.5, 0.5, "no inverted samples added\n(noise-only control)", ha="center",
                     va="center", transform=axes[1].transAxes)
    axes[0].set(xlabel="classifier epoch (round)", ylabel="% of OOD set sent to garbage",
                title="garbage rate after each round (2000 images per set)")
    axes[1].set(xlabel="classifier epoch (round)", title="added samples: mean UE, feature cosine")
    axes[2].set(xlabel="classifier epoch (round)", ylabel="MiB (uint8)",
                title="garbage set memory")
    for ax in axes:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)  # off the data
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def collect(out_dir="figures/ood_attempts", json_path="figures/fig4_ood.json",
            not_run: dict | None = None) -> list:
    """Write ``attempts`` into ``json_path`` (other keys kept) and the per-round figure beside it.

    ``attempts_not_run`` (name -> why): ``not_run`` entries are added or replaced (an empty reason
    removes one); an entry named after an attempt that now has a measured record is dropped, so
    the file never says "not run" beside a result."""
    from .results import save_figure, save_json
    path = Path(json_path)
    data = json.loads(path.read_text()) if path.exists() else {}
    data["attempts"] = build_attempts(out_dir)
    measured = {a["name"] for a in data["attempts"]}
    pending = {k: v for k, v in {**data.get("attempts_not_run", {}), **(not_run or {})}.items()
               if v and k not in measured}
    if pending or "attempts_not_run" in data:
        data["attempts_not_run"] = pending
    save_json(data, path)
    fig = rounds_figure(out_dir)
    if fig is not None:
        save_figure(fig, path.parent / "fig4_ood_attempts_rounds")
    return data["attempts"]
