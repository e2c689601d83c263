"""The claim rules of Sections 3-4 (conditioning, dropout, loss terms, what the inverted samples
are): each ``c_*(src)`` returns ``(verdict, evidence, seeds)`` and reads its numbers through
``src.get`` (which records the source pointers). Rules and thresholds: the docstring of
``netinv_core.claims``.
"""
from __future__ import annotations

import statistics

from .claims_common import (AGREEMENT_UNLIKE, CONFIDENT_MIN, DIVERSITY_DATASETS, EFFECT_CLEAR,
                            EFFECT_NONE, INVERSION_MIN, NAMES, NN_RATIO_UNLIKE, diversity_verdict,
                            effect_size, pct, per_dataset)


def _ablation(src, ds, setting, key):
    p = src.find(f"ablation.json#/datasets/{ds}/summary", setting=setting)
    mean = src.get(f"{p}/{key}_mean")
    std = src.get(f"{p}/{key}_std")
    return mean, std, src.get(f"{p}/seeds")


def _diversity_claim(src, more: str, less: str, label_more: str, label_less: str, extra=None):
    ds_d, parts, seeds = [], [], []
    for ds in DIVERSITY_DATASETS:
        am, as_, an = _ablation(src, ds, more, "feature_cosine_inverted")
        bm, bs, bn = _ablation(src, ds, less, "feature_cosine_inverted")
        real = src.get(src.find(f"ablation.json#/datasets/{ds}/summary", setting="default")
                       + "/feature_cosine_real")
        d = effect_size(am, as_, bm, bs)
        ds_d.append(d)
        seeds.append(min(an, bn))
        parts.append(f"{NAMES[ds]}: feature cosine {label_more} {am:.3f}±{as_:.3f} vs {label_less} "
                     f"{bm:.3f}±{bs:.3f} (d = {d:.1f} SD; real {real:.3f})")
        if extra:
            parts[-1] += extra(src, ds)
    return diversity_verdict(ds_d), "; ".join(parts), min(seeds)


def _fig2_block(src, ds, block: str, what: str, *keys):
    """The values of ``keys`` in ``block`` of ``ds`` in fig2_inversion.json; the claim is
    ``not run`` when the block (``what``) is not recorded."""
    base = f"fig2_inversion.json#/datasets/{ds}/{block}"
    src.require(base, what)
    return [src.get(f"{base}/{key}") for key in keys]


def c_label_conditioning(src):
    return _diversity_claim(src, "default", "conditioning=label", "vector-matrix", "label")


def c_vector_vs_label(src):
    verdict, ev, seeds = _diversity_claim(src, "conditioning=vector", "conditioning=label",
                                          "vector", "label")
    accs = {ds: _ablation(src, ds, "conditioning=vector", "inversion_accuracy")[0]
            for ds in DIVERSITY_DATASETS}
    ev += "; vector inversion accuracy " + ", ".join(f"{NAMES[d]} {pct(a)}" for d, a in accs.items())
    if verdict == "supported" and min(accs.values()) < INVERSION_MIN:
        verdict = "partly"
        ev += f" (< {INVERSION_MIN:.0%}: more diverse, but not a working inversion in this budget)"
    return verdict, ev, seeds


def c_vector_matrix(src):
    def rule(ds):
        dm, dsd, n = _ablation(src, ds, "default", "feature_cosine_inverted")
        acc = _ablation(src, ds, "default", "inversion_accuracy")[0]
        d, seeds = {}, []
        for s in ("label", "matrix", "vector"):
            m, sd, k = _ablation(src, ds, f"conditioning={s}", "feature_cosine_inverted")
            d[s] = effect_size(dm, dsd, m, sd)
            seeds.append(min(n, k))
        if acc >= INVERSION_MIN and all(v >= EFFECT_CLEAR for v in d.values()):
            verdict = "supported"
        elif acc >= INVERSION_MIN and d["label"] >= EFFECT_CLEAR and d["matrix"] >= EFFECT_CLEAR:
            verdict = "partly"
        else:
            verdict = "refuted"
        return verdict, min(seeds), (
            f"{NAMES[ds]}: vector-matrix (acc {pct(acc)}) is more diverse than label by "
            f"{d['label']:.1f} SD, than matrix by {d['matrix']:.1f} SD, than vector by "
            f"{d['vector']:.1f} SD")
    return per_dataset(src, rule)


def c_dropout(src):
    def rule(ds):
        c5, s5, n5 = _ablation(src, ds, "default", "feature_cosine_inverted")
        c0, s0, n0 = _ablation(src, ds, "dropout=0.0", "feature_cosine_inverted")
        p5, q5, _ = _ablation(src, ds, "default", "pixel_spread_inverted")
        p0, q0, _ = _ablation(src, ds, "dropout=0.0", "pixel_spread_inverted")
        st5 = _ablation(src, ds, "default", "steps_to_95")[0]
        st0 = _ablation(src, ds, "dropout=0.0", "steps_to_95")[0]
        d_feat = effect_size(c5, s5, c0, s0)
        d_pix = effect_size(-p5, q5, -p0, q0)   # higher spread = more diverse
        return diversity_verdict([min(d_feat, d_pix)]), min(n5, n0), (
            f"{NAMES[ds]}: dropout 0 -> 0.5: feature cosine {c0:.3f} -> {c5:.3f} "
            f"({d_feat:.1f} SD), pixel spread {p0:.3f} -> {p5:.3f} ({d_pix:.1f} SD), "
            f"steps to 95% {st0:.0f} -> {st5:.0f}")
    return per_dataset(src, rule)


def c_cosine_term(src):
    def sweep(src, ds):
        rows = src.get(f"fig3_interpretability.json#/datasets/{ds}/gamma_sweep")
        n = min(r.get("n_seeds", 1) for r in rows)
        return f" (gamma sweep, {'seed 0' if n == 1 else f'mean over {n} seeds'}: " + ", ".join(
            f"{r['gamma']:g}: {r['feature_cosine_inverted']:.3f}" for r in rows) + ")"
    return _diversity_claim(src, "default", "loss_off=gamma", "with cosine", "without", sweep)


def c_ortho_term(src):
    return _diversity_claim(src, "default", "loss_off=delta", "with orthogonality", "without")


def c_cosine_pixels(src):
    """Section 4: a high cosine weight raises inter- and intra-class diversity of one generator,
    in pixels (between/within-class distance ratio; lower ratio = classes less distinct). Each
    distance "grows" from the lowest to the highest gamma when it rises by d >= EFFECT_CLEAR seed
    SDs, and "does not" below EFFECT_NONE, as the other diversity rules judge; per dataset:
    supported when both grow, refuted when neither grows, else partly. (Until 2026-12-01 any rise
    counted: the verdict then flipped on 0.009 of between-class distance, a quarter of a seed SD,
    when the quick profile's generators were retrained.)"""
    def rule(ds):
        rows, real = _fig2_block(src, ds, "pixel_diversity", "the pixel-space diversity experiment",
                                 "gamma", "real")
        g = {r["gamma"]: r for r in rows}
        if len(g) < 2:
            return None, None, (f"{NAMES[ds]}: one cosine weight only (gamma {min(g):g}), no "
                                f"comparison")
        lo, hi = g[min(g)], g[max(g)]

        def rise(key):
            sd = [statistics.stdev([s[key] for s in r["per_seed"]]) if len(r["per_seed"]) > 1
                  else 0.0 for r in (lo, hi)]
            return effect_size(lo[f"{key}_mean"], sd[0], hi[f"{key}_mean"], sd[1])
        d_in, d_out = rise("within"), rise("between")
        grows = [d >= EFFECT_CLEAR for d in (d_in, d_out)]
        flat = [d < EFFECT_NONE for d in (d_in, d_out)]
        verdict = "supported" if all(grows) else "refuted" if all(flat) else "partly"
        return verdict, min(r["n_seeds"] for r in rows), (
            f"{NAMES[ds]}: gamma {min(g):g} -> {max(g):g}: within-class pixel distance "
            f"{lo['within_mean']:.2f} -> {hi['within_mean']:.2f} (d = {d_in:.1f} SD), between-class "
            f"{lo['between_mean']:.2f} -> {hi['between_mean']:.2f} (d = {d_out:.1f} SD), ratio "
            f"{lo['ratio_mean']:.3f} -> {hi['ratio_mean']:.3f} (real images: within "
            f"{real['within']:.2f}, ratio {real['ratio']:.3f})")
    return per_dataset(src, rule, empty="the pixel-diversity probe was recorded at one cosine "
                                        "weight only; the comparison needs two")


def c_inversion_accuracy(src):
    datasets = src.get("fig2_inversion.json#/datasets")

    def rule(ds):
        if "skipped" in datasets[ds]:
            src.get(f"fig2_inversion.json#/datasets/{ds}/skipped")
            return None, None, f"{NAMES.get(ds, ds)}: not run (no data)"
        gens = src.get(f"fig2_inversion.json#/datasets/{ds}/generators")
        accs = [src.get(f"fig2_inversion.json#/datasets/{ds}/generators/{i}/inversion_accuracy")
                for i in range(len(gens))]
        return "supported" if min(accs) >= INVERSION_MIN else "refuted", len(accs), (
            f"{NAMES.get(ds, ds)}: {', '.join(pct(a) for a in accs)} (threshold "
            f"{INVERSION_MIN:.0%}; classifier {pct(datasets[ds]['classifier']['test_accuracy'])})")
    return per_dataset(src, rule, sorted(datasets))


def c_confident(src):
    def rule(ds):
        gens = src.get(f"fig2_inversion.json#/datasets/{ds}/generators")
        conf = [src.get(f"fig2_inversion.json#/datasets/{ds}/generators/{i}/mean_confidence")
                for i in range(len(gens))]
        src.require(f"fig2_inversion.json#/datasets/{ds}/independent",
                    "the independent-classifier check")
        real = src.get(f"fig2_inversion.json#/datasets/{ds}/independent/real_mean_confidence")
        m = sum(conf) / len(conf)
        return "supported" if m >= CONFIDENT_MIN else "refuted", len(conf), (
            f"{NAMES[ds]}: mean max-softmax of inverted samples "
            f"{', '.join(f'{c:.3f}' for c in conf)} vs real test images {real:.3f} "
            f"(rule: >= {CONFIDENT_MIN})")
    return per_dataset(src, rule)


def c_unlike_training(src):
    def rule(ds):
        agree, ref, arch, nn_inv, nn_real = _fig2_block(
            src, ds, "independent", "the independent-classifier check", "agreement_inverted",
            "test_accuracy", "architecture", "nearest_train_distance_inverted",
            "nearest_train_distance_real")
        ratio = (sum(nn_inv) / len(nn_inv)) / nn_real
        unlike = max(agree) < AGREEMENT_UNLIKE and ratio >= NN_RATIO_UNLIKE
        verdict = ("supported" if unlike else
                   "partly" if (max(agree) < AGREEMENT_UNLIKE or ratio >= NN_RATIO_UNLIKE)
                   else "refuted")
        return verdict, len(agree), (
            f"{NAMES[ds]}: an independent {arch} (test acc. {pct(ref)}) gives the "
            f"conditioning label to {', '.join(pct(a) for a in agree)} of inverted "
            f"samples (chance 10%); nearest-training-image distance inverted / real test "
            f"= {ratio:.2f}")
    return per_dataset(src, rule)


def c_learns_distribution(src):
    def rule(ds):
        inv, noise, real, n = _fig2_block(src, ds, "student", "the student probe",
                                          "inverted_accuracy", "noise_accuracy", "real_accuracy",
                                          "n_samples")
        m = sum(inv) / len(inv)
        verdict = "supported" if m >= 0.9 * real else "partly" if m >= noise + 0.2 else "refuted"
        return verdict, len(inv), (
            f"{NAMES[ds]}: student trained on {n} inverted samples (soft labels) scores "
            f"{', '.join(pct(a) for a in inv)} on real test images; uniform noise "
            f"{pct(noise)}, {n} real training images {pct(real)}" + _ablation_students(src, ds))
    return per_dataset(src, rule)


def _ablation_students(src, ds) -> str:
    """Which ablation setting teaches the best student (``ablation.student_probe``), when recorded."""
    base = f"ablation.json#/datasets/{ds}/student"
    src._load("ablation.json")
    if not src.has(base):
        return ""
    rows = src.get(f"{base}/settings")
    best = max(rows, key=lambda r: r["accuracy_mean"])
    # "best" only when it leads every other setting by more than the larger of the two stds
    ties = [r["setting"] for r in rows if r is not best and best["accuracy_mean"] - r["accuracy_mean"]
            <= max(best["accuracy_std"] or 0.0, r["accuracy_std"] or 0.0)]
    verdict = (f"best: {best['setting']}" if not ties else
               f"no clear best: {', '.join([best['setting']] + ties)} within one std of each other")
    return (" (by ablation setting, mean ± std over seeds: "
            + ", ".join(f"{r['setting']} {pct(r['accuracy_mean'])} ± {pct(r['accuracy_std'])}"
                        for r in rows) + f"; {verdict})")

