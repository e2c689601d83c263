"""The claim rules of Section 5.3 (reconstruction from the weights): each ``c_*(src)`` returns
``(verdict, evidence, seeds)`` and reads its numbers through ``src.get`` (which records the source
pointers). Rules and thresholds: the docstring of ``netinv_core.claims``.
"""
from __future__ import annotations

from .claims_common import MIN_SEEDS, NAMES, pct, per_dataset, stronger


def _recon_rows(src, ds):
    rows = src.get(f"fig5_reconstruction.json#/datasets/{ds}")
    return sorted(range(len(rows)), key=lambda i: rows[i]["train_size"]), rows


def _closer(src, base):
    """``(share, std over generators, p-value or None)`` of the train-closer lean of a fig5 row:
    the calibrated schema (``train_closer``, NCC, permutation p) or the older SSIM one."""
    if src.has(f"{base}/train_closer"):
        return (src.get(f"{base}/train_closer/share"),
                src.get(f"{base}/summary/train_closer_share/std"),
                src.get(f"{base}/train_closer/p_value"))
    return (src.get(f"{base}/summary/share_train_closer/mean"),
            src.get(f"{base}/summary/share_train_closer/std"), None)


def _training_like_attempts(src) -> str:
    name = "fig5_reconstruction.json"
    if not src.has(f"{name}#/attempts"):
        return ""
    att = src.get(f"{name}#/attempts")
    def like_(a):       # the rule on all seeds' reconstructions pooled, as the datasets' rows
        pooled = a.get("pooled")
        return pooled["training_like"] if pooled else a.get("training_like")
    like = [f"{a['name']} ({a['dataset']}-{a['train_size']})" for a in att if like_(a)]
    return (f"; training-like (seeds pooled) among the {len(att)} recorded attempts: "
            f"{', '.join(like) if like else 'none'}")


def _ncc_floor(src, base: str) -> float:
    """Halfway between the NCC to the nearest training image of noise and of real held-out
    images (the row's baselines): reconstructions below it are far from any real image, however
    the judges label them."""
    return 0.5 * (src.get(f"{base}/baselines/noise/ncc_train")
                  + src.get(f"{base}/baselines/real_test/ncc_train"))


def _under_floor(ncc: float, floor: float, what: str = "closer to the training set") -> str:
    """The evidence text for images whose NCC is under the floor (``_ncc_floor``)."""
    return (f"{ncc:.3f} < {floor:.3f}, halfway from noise to real held-out images: {what}, yet "
            f"far from any real image")


def _training_like_attempt(src, ds: str, train_size: int):
    """(pooled record, name, seeds) of an attempt on ``ds``-``train_size`` with at least
    ``MIN_SEEDS`` seeds whose pooled reconstructions are training-like (the best verifier
    accuracy first), the paper's setting only: positive controls (an MLP on 100 images) do not
    count. None when there is none."""
    name = "fig5_reconstruction.json"
    if not src.has(f"{name}#/attempts"):
        return None
    rows = [(a["pooled"], a["name"], len(a["seeds"])) for a in src.get(f"{name}#/attempts")
            if a["dataset"] == ds and a["train_size"] == train_size and a.get("pooled")
            and a["pooled"].get("training_like") and len(a["seeds"]) >= MIN_SEEDS
            and not a["name"].endswith("_control") and a.get("classifier") != "mlp"]
    return max(rows, key=lambda r: r[0]["verifier_accuracy"]) if rows else None


def c_recon_training_like(src):
    def rule(ds):
        order, rows = _recon_rows(src, ds)
        i = order[0]
        base = f"fig5_reconstruction.json#/datasets/{ds}/{i}"
        n = src.get(f"{base}/train_size")
        share, sd, p = _closer(src, base)
        k = len(src.get(f"{base}/reconstruction"))
        if p is not None:   # calibrated: verifier_accuracy >= 0.5 and a lean with p < 0.05
            va = src.get(f"{base}/verifier_accuracy")
            ncc = src.get(f"{base}/ncc_train")
            floor = _ncc_floor(src, base)
            judged, lean = va >= 0.5, share > 0.5 and p < 0.05
            verdict = ("supported" if judged and lean and ncc >= floor else
                       "partly" if judged or lean else "refuted")
            real = src.get(f"{base}/baselines/real_test/verifier_accuracy")
            ev = (f"{NAMES[ds]}-{n}: verifier accuracy {pct(va)} (real held-out "
                  f"{pct(real)}), train-closer share {share:.2f} (p = {p:.3f}; 0.5 = no "
                  f"preference), NCC to nearest train / held-out "
                  f"{ncc:.3f} / {src.get(f'{base}/ncc_test'):.3f}")
            if judged and lean and ncc < floor:
                ev += f" ({_under_floor(ncc, floor, 'training-like by the judges')})"
            best = _training_like_attempt(src, ds, n)
            if best is not None and verdict != "supported":
                pooled, name, seeds = best
                looks = pooled["ncc_train"] >= floor
                ev += (f"; the attempt {name} ({seeds} seeds pooled) is training-like by the "
                       f"judge: verifier {pct(pooled['verifier_accuracy'])}, train-closer share "
                       f"{pooled['train_closer']['share']:.2f} (p = "
                       f"{pooled['train_closer']['p_value']:.3f}), NCC to nearest train " + (
                           f"{pooled['ncc_train']:.3f} >= {floor:.3f}" if looks else
                           _under_floor(pooled["ncc_train"], floor)))
                v_attempt = "supported" if looks else "partly"
                if stronger(v_attempt, verdict):
                    verdict, k = v_attempt, seeds
                    ev += "; the verdict is that attempt's"
            return verdict, k, ev
        matched = src.get(f"{base}/summary/distinct_train_ssim_gt_0.4/mean")
        ssim = src.get(f"{base}/summary/ssim_train_mean/mean")
        lean = share - sd > 0.5
        verdict = "supported" if lean and matched > 0 else "partly" if lean else "refuted"
        return verdict, k, (
            f"{NAMES[ds]}-{n}: train-closer share {share:.2f} ± {sd:.2f} (0.5 = no "
            f"preference), SSIM to nearest train {ssim:.3f}, training images matched "
            f"with SSIM > 0.4: {matched:.1f}")
    verdict, evidence, seeds = per_dataset(src, rule, src.get("fig5_reconstruction.json#/datasets"))
    return verdict, evidence + _training_like_attempts(src), seeds


def c_recon_degrades(src):
    """Section 5.3: reconstructions degrade as the training set grows. Only testable where the
    smallest training set gives training-like reconstructions (verifier accuracy >= 0.5 and a
    lean towards the training images with p < 0.05); otherwise ``inconclusive``. Quality: the
    train-closer share and the NCC gap (nearest training minus nearest size-matched held-out
    image; SSIM to the nearest training image in older records). A trend that would be
    "supported" is "partly" when the smallest size's reconstructions are under the NCC floor of
    ``c_recon_training_like`` (a lean of images that resemble no real one)."""
    def rule(ds):
        order, rows = _recon_rows(src, ds)
        if len(order) < 2:
            return None
        vals, seeds = [], []
        for i in order:
            base = f"fig5_reconstruction.json#/datasets/{ds}/{i}"
            share, sd, p = _closer(src, base)
            calibrated = src.has(f"{base}/ncc_train")
            quality = (src.get(f"{base}/ncc_train") - src.get(f"{base}/ncc_test") if calibrated
                       else src.get(f"{base}/summary/ssim_train_mean/mean"))
            va = src.get(f"{base}/verifier_accuracy") if calibrated else None
            vals.append((src.get(f"{base}/train_size"), share, sd, quality, p, va))
            seeds.append(len(src.get(f"{base}/reconstruction")))
        (n0, s0, d0, q0, p0, v0), (_, s1, d1, q1, _, _) = vals[0], vals[-1]
        what = ("NCC gap train - held-out" if v0 is not None else "SSIM to nearest train")
        text = (f"{NAMES[ds]}: train-closer share " + " / ".join(
            f"{n}: {s:.2f}" for n, s, *_ in vals) + f"; {what} "
            + " / ".join(f"{q:+.3f}" if v0 is not None else f"{q:.3f}" for _, _, _, q, _, _ in vals))
        if v0 is not None and not (v0 >= 0.5 and s0 > 0.5 and p0 is not None and p0 < 0.05):
            return "inconclusive", min(seeds), (
                text + f"; nothing to degrade: {NAMES[ds]}-{n0} is not training-like (verifier "
                f"{pct(v0)}, p = {p0:.3f})")
        lean_fades, ssim_falls = s0 - s1 > max(d0, d1), q1 < q0
        verdict = ("supported" if lean_fades and ssim_falls else
                   "partly" if lean_fades or ssim_falls else "refuted")
        first = f"fig5_reconstruction.json#/datasets/{ds}/{order[0]}"
        if v0 is not None and verdict == "supported":
            ncc, floor = src.get(f"{first}/ncc_train"), _ncc_floor(src, first)
            if ncc < floor:   # what fades is a lean of images that resemble no real one
                verdict = "partly"
                text += (f"; the lean fades, but {NAMES[ds]}-{n0}'s NCC to nearest train is "
                         f"{_under_floor(ncc, floor)}: a fading statistical lean, not fading "
                         f"reconstructions")
        return verdict, min(seeds), text
    return per_dataset(src, rule, src.get("fig5_reconstruction.json#/datasets"),
                       empty="fig5_reconstruction.json holds one training-set size per dataset; "
                             "the trend needs two")
