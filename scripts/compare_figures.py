"""Compare two sets of recorded figures (``figures/*.json``) and print a Markdown report: claims
whose verdict changed, Figure 2 per dataset, the ablation summary, Figure 3's scalars and
Figure 5's plain-inversion control.

Written for the quick profile's switch to bf16 / lr 2e-3 / early stop (issue 14); the old set
is kept in ``figures/archive/quick-fp32/``:

    python scripts/compare_figures.py figures/archive/quick-fp32 figures
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def load(folder: Path, name: str):
    p = folder / name
    return json.loads(p.read_text()) if p.exists() else None


def f(x, nd=3):
    if x is None:
        return "-"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def span(xs, nd=3, pct=False):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    k = 100 if pct else 1
    m = statistics.mean(xs) * k
    s = (statistics.stdev(xs) * k) if len(xs) > 1 else 0.0
    return f"{m:.{1 if pct else nd}f} ± {s:.{1 if pct else nd}f}"


def claims(a, b):
    if not (a and b):
        return []
    out = [f"Claims ledger: {a['counts']} -> {b['counts']}", "",
           "| claim | old verdict | new verdict | new evidence (first 300 characters) |", "|---|---|---|---|"]
    old = {c["id"]: c for c in a["claims"]}
    changed = 0
    for c in b["claims"]:
        o = old.get(c["id"])
        if o is None or o["verdict"] != c["verdict"]:
            changed += 1
            out.append(f"| `{c['id']}` | {o['verdict'] if o else '-'} | **{c['verdict']}** | "
                       f"{c['evidence'][:300].replace('|', '/')} |")
    if not changed:
        out.append("| (no verdict changed) | | | |")
    return out


def figure2(a, b):
    if not (a and b):
        return []
    out = ["| dataset | inversion acc. % (old -> new) | feature cosine inverted | steps trained | "
           "generator seconds (sum) |", "|---|---|---|---|---|"]
    for ds, nb in b["datasets"].items():
        ga, gb = a["datasets"].get(ds, {}).get("generators", []), nb.get("generators", [])
        if not gb:
            continue

        def col(gs, k):
            return [g.get(k) for g in gs]
        out.append(
            f"| {ds} | {span(col(ga, 'inversion_accuracy'), pct=True)} -> "
            f"{span(col(gb, 'inversion_accuracy'), pct=True)} | "
            f"{span(col(ga, 'feature_cosine_inverted'))} -> {span(col(gb, 'feature_cosine_inverted'))} | "
            f"{'/'.join(f(x) for x in col(ga, 'steps'))} -> {'/'.join(f(x) for x in col(gb, 'steps'))} | "
            f"{sum(col(ga, 'generator_seconds')):.0f} -> {sum(col(gb, 'generator_seconds')):.0f} |")
    return out + ["", "(Generator seconds as recorded: each set was trained under its own machine load, "
                  "so only their order of magnitude compares.)"]


def ablation(a, b):
    if not (a and b):
        return []
    keys = ("inversion_accuracy", "feature_cosine_inverted", "steps_to_95")
    out = ["| dataset | setting | inversion acc. (old -> new) | feature cosine | steps to 95% |",
           "|---|---|---|---|---|"]
    for ds, nb in b["datasets"].items():
        sa = {r["setting"]: r for r in a["datasets"].get(ds, {}).get("summary", [])}
        for r in nb["summary"]:
            o = sa.get(r["setting"], {})
            cells = []
            for k in keys:
                nd = 0 if k == "steps_to_95" else 3
                cells.append(f"{f(o.get(k + '_mean'), nd)} ± {f(o.get(k + '_std'), nd)} -> "
                             f"{f(r.get(k + '_mean'), nd)} ± {f(r.get(k + '_std'), nd)}")
            out.append(f"| {ds} | {r['setting']} | " + " | ".join(cells) + " |")
    return out


def figure3(a, b):
    if not (a and b):
        return []
    keys = ("inversion_accuracy", "feature_cosine_inverted", "clusters_per_class_mean",
            "silhouette_mean", "boundary_faithfulness", "sae_topk_jaccard_mean", "sae_anomaly_auroc")
    out = ["| dataset | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for ds, y in b["datasets"].items():
        x = a["datasets"].get(ds, {})
        if "inversion_accuracy" not in y:     # skipped (no data)
            continue
        out.append(f"| {ds} | " + " | ".join(f"{f(x.get(k))} -> {f(y.get(k))}" for k in keys) + " |")
    return out


def figure5(a, b):
    if not (a and b):
        return []
    keys = ("label_accuracy", "label_confidence", "ncc_train", "ncc_test", "verifier_accuracy")
    out = ["Figure 5's plain-inversion control (the profile's generator on the subset classifier):", "",
           "| dataset | train size | " + " | ".join(keys) + " |", "|---|---" + "|---" * len(keys) + "|"]
    for ds, rows in b["datasets"].items():
        old = {e.get("train_size"): e for e in a["datasets"].get(ds, [])}
        for e in rows:
            x = old.get(e.get("train_size"), {}).get("plain_inversion", {})
            y = e.get("plain_inversion", {})
            out.append(f"| {ds} | {e.get('train_size')} | "
                       + " | ".join(f"{f(x.get(k))} -> {f(y.get(k))}" for k in keys) + " |")
    return out


def main(old: str, new: str) -> None:
    a, b = Path(old), Path(new)
    for title, fn, name in (("Claims", claims, "claims.json"),
                            ("Figure 2 generators (3 seeds, 2000 fresh samples)", figure2,
                             "fig2_inversion.json"),
                            ("Ablation (mean ± std over 3 seeds)", ablation, "ablation.json"),
                            ("Figure 3 (seed-0 generator)", figure3, "fig3_interpretability.json"),
                            ("Figure 5", figure5, "fig5_reconstruction.json")):
        lines = fn(load(a, name), load(b, name))
        if lines:
            print(f"**{title}**\n")
            print("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(*(sys.argv[1:3] if len(sys.argv) >= 3 else ("figures/archive/quick-fp32", "figures")))
