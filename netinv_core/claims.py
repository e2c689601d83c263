"""The claims ledger: every claim of the paper with a verdict computed from the figures' JSON.

    python -m netinv_core.claims                    # figures/claims.json + the README table
    python -m netinv_core.claims --check            # exit 1 if either is out of date

Nothing here is typed by hand except the paper's own numbers (its OOD table, ``PAPER_OOD``) and
the rules below. Every number of a row is read from ``figures/*.json`` through a JSON pointer
(``file.json#/key/0/key``); the pointers a row read are its ``source``. A pointer that is missing
raises ``ClaimSourceError`` naming the claim, the file, the missing key and the command that
regenerates the file. ``command`` is the notebook that writes the source file.

Rules (the thresholds are constants of this module):

- Verdicts: ``supported``, ``partly``, ``refuted``, ``inconclusive``, ``not run``.
- Seeds: a row computed from fewer than ``MIN_SEEDS`` = 3 seeds (independently seeded
  generators, classifiers or garbage-class runs) is ``inconclusive`` whatever its number; the
  number stays in the evidence.
- "A is more diverse than B" (ablation, within-class feature cosine c, lower = more diverse, mean
  and std over seeds): effect size d = (c_B - c_A) / sqrt((s_A^2 + s_B^2) / 2). ``EFFECT_CLEAR`` = 2
  (two pooled seed SDs) counts as a clear effect, d < ``EFFECT_NONE`` = 1 as no effect. A claim
  "X increases diversity" is supported if d >= 2 on every dataset, refuted if d < 1 on every dataset
  (no effect beyond the seed spread, at a budget where the cosine term moves c by 7-10 SDs), partly
  otherwise.
- Inversion: a generator "inverts" when its inversion accuracy reaches ``INVERSION_MIN`` = 0.95
  (the paper's Section 5.1 threshold).
- "Confidently classified": mean max-softmax of inverted samples >= ``CONFIDENT_MIN`` = 0.9.
- "Unlike the training data": an independent classifier (another architecture, same training
  data) gives the conditioning label to < ``AGREEMENT_UNLIKE`` = 0.5 of the samples, and the mean
  pixel distance to the nearest training image is >= ``NN_RATIO_UNLIKE`` = 1.5 times that of real
  test images.
- Decision boundaries from the PCA mesh "reflect the classifier": faithfulness >= 0.9 supported,
  >= 0.5 partly, below refuted.
- SAE anomaly detection: AUROC >= 0.9 supported, >= 0.7 partly, below refuted (0.5 = chance).
- SAE features differ between real and inverted samples: the top-20 Jaccard real vs inverted is
  lower than the real-vs-real control (two halves of the real test images) by >= 0.2 on every
  dataset: supported; on some: partly; on none: refuted.
- OOD cell "most OOD samples go to garbage": garbage rate >= paper - ``OOD_MARGIN`` (5 points):
  supported; > 50%: partly (a majority, short of the paper); else refuted.
- OOD in-distribution accuracy kept: garbage-class accuracy >= baseline - 0.5 points everywhere.
- Clear threshold (least confident in-distribution image more confident than the most confident
  escaped OOD image): supported only if it holds in every seed of every direction; refuted if it
  fails in any.
- Reconstruction "training-like": at the smallest training set, verifier_accuracy >= 0.5 (an
  independent judge recognises the class) and a lean towards the training images (train-closer
  share > 0.5 with permutation p < 0.05): supported; only one of the two: partly; neither:
  refuted (``recon_metrics``). Older records without these keys: train-closer share (SSIM) mean -
  std > 0.5 and some training image matched with SSIM > 0.4.
- Reconstruction degrades with the training-set size: from the smallest to the largest training
  set, the train-closer share falls by more than its std AND the SSIM to the nearest training image
  falls: supported; only one of the two: partly; neither: refuted (per dataset, then combined).
- Learns the input distribution (student probe): a student trained only on inverted samples
  reaches >= 0.9 x the accuracy of the same student on as many real images: supported; >= noise
  floor + 0.2: partly; else refuted.
- Two clusters per class: the verdict of ``interpret.clusters_fair_verdict`` recorded in
  fig3_interpretability.json (``supported`` -> supported, ``supported as generator clusters`` ->
  partly, ``refuted`` -> refuted).
- A larger cosine weight gives more clusters: supported if, on some feature layer, the larger
  gamma has more classes above the Gaussian null than the smaller one and at least 8 of 10 above
  it; else refuted (one generator per gamma, so the seed rule makes it inconclusive).
- Cosine weight and inter-/intra-class diversity in pixels: from the smallest to the largest gamma,
  the within-class and the between-class mean pixel distance both rise: supported; one: partly.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

from .errors import ClaimSourceError

REPO = Path(__file__).resolve().parents[1]
VERDICTS = ("supported", "partly", "refuted", "inconclusive", "not run")
MIN_SEEDS = 3
EFFECT_CLEAR, EFFECT_NONE = 2.0, 1.0
INVERSION_MIN = 0.95
CONFIDENT_MIN = 0.9
AGREEMENT_UNLIKE, NN_RATIO_UNLIKE = 0.5, 1.5
OOD_MARGIN = 5.0
BEGIN, END = "<!-- claims:begin -->", "<!-- claims:end -->"

# The paper's OOD table (docs/choices.md, from 2505.23448 Table 1): percent of the OOD test set sent to
# the garbage class; the diagonal is in-distribution accuracy.
PAPER_OOD = {
    "mnist": {"mnist": 99.1, "fashionmnist": 89.5, "svhn": 99.1, "cifar10": 99.4},
    "fashionmnist": {"mnist": 85.2, "fashionmnist": 92.6, "svhn": 96.3, "cifar10": 95.7},
    "svhn": {"mnist": 93.6, "fashionmnist": 94.9, "svhn": 89.4, "cifar10": 87.6},
    "cifar10": {"mnist": 97.8, "fashionmnist": 95.7, "svhn": 88.2, "cifar10": 85.5},
}
NAMES = {"mnist": "MNIST", "fashionmnist": "FMNIST", "cifar10": "CIFAR-10", "svhn": "SVHN"}
DIVERSITY_DATASETS = ("mnist", "fashionmnist")


def _notebook_for(json_name: str, repo: Path = REPO) -> str:
    """The command that writes ``json_name``: the notebook that saves it (``out / "name"``), else
    the first that names it, else ``./run_all.sh`` (notebooks may be renamed: found, not listed)."""
    texts = {}
    for nb in sorted((repo / "notebooks").glob("*.ipynb")):
        try:
            texts[nb.name] = nb.read_text()
        except OSError:
            continue
    for test in (lambda t: f'/ \\"{json_name}\\"' in t, lambda t: json_name in t):
        for name, text in texts.items():
            if test(text):
                return f"python -m netinv_core.notebooks run notebooks/{name} -p profile quick"
    return "./run_all.sh"


class NotRecorded(Exception):
    """An optional experiment block is absent: the row becomes ``not run`` with this reason."""


class Source:
    """Reads figure JSONs for one claim and remembers every pointer it read."""

    def __init__(self, figures: Path, cache: dict, claim_id: str):
        self.figures, self.cache, self.claim = figures, cache, claim_id
        self.read: list[str] = []

    def _load(self, name: str):
        if name not in self.cache:
            path = self.figures / name
            if not path.exists():
                raise ClaimSourceError(
                    f"claim {self.claim!r}: its source file {path} does not exist; regenerate it "
                    f"with `{_notebook_for(name)}` (or ./run_all.sh), then rerun "
                    f"`python -m netinv_core.claims`")
            self.cache[name] = json.loads(path.read_text())
        return self.cache[name]

    def require(self, pointer: str, what: str) -> None:
        """Mark the row ``not run`` (``NotRecorded``) when the experiment block at ``pointer`` is
        absent from an existing file (a missing file is still a ``ClaimSourceError``)."""
        name = pointer.partition("#")[0]
        self._load(name)
        if not self.has(pointer):
            raise NotRecorded(f"{what} is not recorded in {name} ({pointer.partition('#')[2]}); "
                              f"regenerate it with `{_notebook_for(name)}`")

    def has(self, pointer: str) -> bool:
        try:
            self._resolve(pointer)
            return True
        except ClaimSourceError:
            return False

    def _resolve(self, pointer: str):
        name, _, path = pointer.partition("#")
        obj = self._load(name)
        done = ""
        for key in [k for k in path.split("/") if k]:
            key = key.replace("~1", "/").replace("~0", "~")
            if isinstance(obj, list) and key.isdigit() and int(key) < len(obj):
                obj = obj[int(key)]
            elif isinstance(obj, dict) and key in obj:
                obj = obj[key]
            else:
                have = (sorted(obj)[:12] if isinstance(obj, dict)
                        else f"a list of {len(obj)}" if isinstance(obj, list) else type(obj).__name__)
                raise ClaimSourceError(
                    f"claim {self.claim!r}: {self.figures / name} has no {key!r} at "
                    f"{done or '/'} (there: {have}); the claim reads {pointer}. Regenerate the "
                    f"file with `{_notebook_for(name)}`, or update the claim in "
                    f"netinv_core/claims.py if the file's layout changed")
            done += "/" + key
        return obj

    def get(self, pointer: str):
        value = self._resolve(pointer)
        if pointer not in self.read:
            self.read.append(pointer)
        return value

    def find(self, pointer: str, **match) -> str:
        """The pointer of the element of the list at ``pointer`` whose fields equal ``match``."""
        rows = self._resolve(pointer)
        for i, row in enumerate(rows if isinstance(rows, list) else []):
            if all(row.get(k) == v for k, v in match.items()):
                return f"{pointer}/{i}"
        name = pointer.partition("#")[0]
        raise ClaimSourceError(f"claim {self.claim!r}: no element with {match} in {pointer} of "
                               f"{self.figures / name}; regenerate it with `{_notebook_for(name)}`")


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _f(x, nd=3) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


def effect_size(a_mean, a_std, b_mean, b_std) -> float:
    """d = (b_mean - a_mean) / sqrt((a_std^2 + b_std^2) / 2): how much lower A is, in seed SDs."""
    pooled = math.sqrt((a_std ** 2 + b_std ** 2) / 2)
    diff = b_mean - a_mean
    return math.copysign(math.inf, diff) if pooled == 0 and diff else (diff / pooled if pooled else 0.0)


def diversity_verdict(ds: list[float]) -> str:
    """supported if every d >= EFFECT_CLEAR, refuted if every d < EFFECT_NONE, else partly."""
    if all(d >= EFFECT_CLEAR for d in ds):
        return "supported"
    if all(d < EFFECT_NONE for d in ds):
        return "refuted"
    return "partly"


def combine(verdicts: list[str]) -> str:
    """One verdict from per-dataset ones: all equal -> that one; any support -> partly;
    all refuted or inconclusive -> refuted if any refuted."""
    vs = [v for v in verdicts if v != "not run"]
    if not vs:
        return "not run"
    if len(set(vs)) == 1:
        return vs[0]
    if any(v in ("supported", "partly") for v in vs):
        return "partly"
    return "refuted" if "refuted" in vs else "inconclusive"


# ----------------------------------------------------------------------------------------------
# The claims. Each returns (verdict, evidence, seeds); ``src.get`` records the source pointers.

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


def c_label_conditioning(src):
    return _diversity_claim(src, "default", "conditioning=label", "vector-matrix", "label")


def c_vector_vs_label(src):
    verdict, ev, seeds = _diversity_claim(src, "conditioning=vector", "conditioning=label",
                                          "vector", "label")
    accs = {ds: _ablation(src, ds, "conditioning=vector", "inversion_accuracy")[0]
            for ds in DIVERSITY_DATASETS}
    ev += "; vector inversion accuracy " + ", ".join(f"{NAMES[d]} {_pct(a)}" for d, a in accs.items())
    if verdict == "supported" and min(accs.values()) < INVERSION_MIN:
        verdict = "partly"
        ev += f" (< {INVERSION_MIN:.0%}: more diverse, but not a working inversion in this budget)"
    return verdict, ev, seeds


def c_vector_matrix(src):
    per_ds, parts, seeds = [], [], []
    for ds in DIVERSITY_DATASETS:
        dm, dsd, n = _ablation(src, ds, "default", "feature_cosine_inverted")
        acc = _ablation(src, ds, "default", "inversion_accuracy")[0]
        d = {}
        for s in ("label", "matrix", "vector"):
            m, sd, k = _ablation(src, ds, f"conditioning={s}", "feature_cosine_inverted")
            d[s] = effect_size(dm, dsd, m, sd)
            seeds.append(min(n, k))
        if acc >= INVERSION_MIN and all(v >= EFFECT_CLEAR for v in d.values()):
            per_ds.append("supported")
        elif acc >= INVERSION_MIN and d["label"] >= EFFECT_CLEAR and d["matrix"] >= EFFECT_CLEAR:
            per_ds.append("partly")
        else:
            per_ds.append("refuted")
        parts.append(f"{NAMES[ds]}: vector-matrix (acc {_pct(acc)}) is more diverse than label by "
                     f"{d['label']:.1f} SD, than matrix by {d['matrix']:.1f} SD, than vector by "
                     f"{d['vector']:.1f} SD")
    return combine(per_ds), "; ".join(parts), min(seeds)


def c_dropout(src):
    per_ds, parts, seeds = [], [], []
    for ds in DIVERSITY_DATASETS:
        c5, s5, n5 = _ablation(src, ds, "default", "feature_cosine_inverted")
        c0, s0, n0 = _ablation(src, ds, "dropout=0.0", "feature_cosine_inverted")
        p5, q5, _ = _ablation(src, ds, "default", "pixel_spread_inverted")
        p0, q0, _ = _ablation(src, ds, "dropout=0.0", "pixel_spread_inverted")
        st5 = _ablation(src, ds, "default", "steps_to_95")[0]
        st0 = _ablation(src, ds, "dropout=0.0", "steps_to_95")[0]
        d_feat = effect_size(c5, s5, c0, s0)
        d_pix = effect_size(-p5, q5, -p0, q0)   # higher spread = more diverse
        per_ds.append(diversity_verdict([min(d_feat, d_pix)]))
        seeds.append(min(n5, n0))
        parts.append(f"{NAMES[ds]}: dropout 0 -> 0.5: feature cosine {c0:.3f} -> {c5:.3f} "
                     f"({d_feat:.1f} SD), pixel spread {p0:.3f} -> {p5:.3f} ({d_pix:.1f} SD), "
                     f"steps to 95% {st0:.0f} -> {st5:.0f}")
    return combine(per_ds), "; ".join(parts), min(seeds)


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
    in pixels (between/within-class distance ratio; lower ratio = classes less distinct) and in
    features."""
    per_ds, parts, seeds = [], [], []
    for ds in DIVERSITY_DATASETS:
        base = f"fig2_inversion.json#/datasets/{ds}/pixel_diversity"
        src.require(base, "the pixel-space diversity experiment")
        rows = src.get(f"{base}/gamma")
        real = src.get(f"{base}/real")
        g = {r["gamma"]: r for r in rows}
        lo, hi = g[min(g)], g[max(g)]
        intra_up = hi["within_mean"] > lo["within_mean"]
        inter_up = hi["between_mean"] > lo["between_mean"]
        per_ds.append("supported" if intra_up and inter_up else
                      "partly" if intra_up or inter_up else "refuted")
        seeds.append(min(r["n_seeds"] for r in rows))
        parts.append(
            f"{NAMES[ds]}: gamma {min(g):g} -> {max(g):g}: within-class pixel distance "
            f"{lo['within_mean']:.2f} -> {hi['within_mean']:.2f}, between-class "
            f"{lo['between_mean']:.2f} -> {hi['between_mean']:.2f}, ratio "
            f"{lo['ratio_mean']:.3f} -> {hi['ratio_mean']:.3f} (real images: within "
            f"{real['within']:.2f}, ratio {real['ratio']:.3f})")
    return combine(per_ds), "; ".join(parts), min(seeds)


def c_inversion_accuracy(src):
    parts, per_ds, seeds = [], [], []
    datasets = src.get("fig2_inversion.json#/datasets")
    for ds in sorted(datasets):
        if "skipped" in datasets[ds]:
            src.get(f"fig2_inversion.json#/datasets/{ds}/skipped")
            parts.append(f"{NAMES.get(ds, ds)}: not run (no data)")
            continue
        gens = src.get(f"fig2_inversion.json#/datasets/{ds}/generators")
        accs = [src.get(f"fig2_inversion.json#/datasets/{ds}/generators/{i}/inversion_accuracy")
                for i in range(len(gens))]
        per_ds.append("supported" if min(accs) >= INVERSION_MIN else "refuted")
        seeds.append(len(accs))
        parts.append(f"{NAMES.get(ds, ds)}: {', '.join(_pct(a) for a in accs)} (threshold "
                     f"{INVERSION_MIN:.0%}; classifier {_pct(datasets[ds]['classifier']['test_accuracy'])})")
    return combine(per_ds), "; ".join(parts), min(seeds)


def c_confident(src):
    parts, per_ds, seeds = [], [], []
    for ds in DIVERSITY_DATASETS:
        gens = src.get(f"fig2_inversion.json#/datasets/{ds}/generators")
        conf = [src.get(f"fig2_inversion.json#/datasets/{ds}/generators/{i}/mean_confidence")
                for i in range(len(gens))]
        src.require(f"fig2_inversion.json#/datasets/{ds}/independent",
                    "the independent-classifier check")
        real = src.get(f"fig2_inversion.json#/datasets/{ds}/independent/real_mean_confidence")
        m = sum(conf) / len(conf)
        per_ds.append("supported" if m >= CONFIDENT_MIN else "refuted")
        seeds.append(len(conf))
        parts.append(f"{NAMES[ds]}: mean max-softmax of inverted samples "
                     f"{', '.join(f'{c:.3f}' for c in conf)} vs real test images {real:.3f} "
                     f"(rule: >= {CONFIDENT_MIN})")
    return combine(per_ds), "; ".join(parts), min(seeds)


def c_unlike_training(src):
    parts, per_ds, seeds = [], [], []
    for ds in DIVERSITY_DATASETS:
        base = f"fig2_inversion.json#/datasets/{ds}/independent"
        src.require(base, "the independent-classifier check")
        agree = src.get(f"{base}/agreement_inverted")
        ref = src.get(f"{base}/test_accuracy")
        arch = src.get(f"{base}/architecture")
        nn_inv = src.get(f"{base}/nearest_train_distance_inverted")
        nn_real = src.get(f"{base}/nearest_train_distance_real")
        ratio = (sum(nn_inv) / len(nn_inv)) / nn_real
        unlike = max(agree) < AGREEMENT_UNLIKE and ratio >= NN_RATIO_UNLIKE
        per_ds.append("supported" if unlike else
                      "partly" if (max(agree) < AGREEMENT_UNLIKE or ratio >= NN_RATIO_UNLIKE)
                      else "refuted")
        seeds.append(len(agree))
        parts.append(f"{NAMES[ds]}: an independent {arch} (test acc. {_pct(ref)}) gives the "
                     f"conditioning label to {', '.join(_pct(a) for a in agree)} of inverted "
                     f"samples (chance 10%); nearest-training-image distance inverted / real test "
                     f"= {ratio:.2f}")
    return combine(per_ds), "; ".join(parts), min(seeds)


def c_learns_distribution(src):
    parts, per_ds, seeds = [], [], []
    for ds in DIVERSITY_DATASETS:
        base = f"fig2_inversion.json#/datasets/{ds}/student"
        src.require(base, "the student probe")
        inv = src.get(f"{base}/inverted_accuracy")
        noise = src.get(f"{base}/noise_accuracy")
        real = src.get(f"{base}/real_accuracy")
        n = src.get(f"{base}/n_samples")
        m = sum(inv) / len(inv)
        per_ds.append("supported" if m >= 0.9 * real else
                      "partly" if m >= noise + 0.2 else "refuted")
        seeds.append(len(inv))
        parts.append(f"{NAMES[ds]}: student trained on {n} inverted samples (soft labels) scores "
                     f"{', '.join(_pct(a) for a in inv)} on real test images; uniform noise "
                     f"{_pct(noise)}, {n} real training images {_pct(real)}"
                     + _ablation_students(src, ds))
    return combine(per_ds), "; ".join(parts), min(seeds)


def _ablation_students(src, ds) -> str:
    """Which ablation setting teaches the best student (``ablation.student_probe``), when recorded."""
    base = f"ablation.json#/datasets/{ds}/student"
    src._load("ablation.json")
    if not src.has(base):
        return ""
    rows = src.get(f"{base}/settings")
    best = max(rows, key=lambda r: r["accuracy_mean"])
    return (" (by ablation setting, mean ± std over seeds: "
            + ", ".join(f"{r['setting']} {_pct(r['accuracy_mean'])} ± {_pct(r['accuracy_std'])}"
                        for r in rows) + f"; best: {best['setting']})")


def c_pca_spread(src):
    parts, per_ds, seeds = [], [], []
    datasets = src.get("fig2_inversion.json#/datasets")
    for ds in sorted(datasets):
        if "skipped" in datasets[ds]:
            continue
        gens = src.get(f"fig2_inversion.json#/datasets/{ds}/generators")
        inv = [src.get(f"fig2_inversion.json#/datasets/{ds}/generators/{i}/feature_cosine_inverted")
               for i in range(len(gens))]
        real = src.get(f"fig2_inversion.json#/datasets/{ds}/generators/0/feature_cosine_real")
        per_ds.append("supported" if max(inv) < real else "refuted" if min(inv) >= real else "partly")
        seeds.append(len(inv))
        parts.append(f"{NAMES.get(ds, ds)}: within-class feature cosine inverted "
                     f"{', '.join(f'{c:.3f}' for c in inv)} vs real test {real:.3f}")
    return combine(per_ds), "; ".join(parts) + " (lower = more spread)", min(seeds)


def _absent(src, pointer: str, parts: list, ds: str) -> bool:
    """True (and a note in ``parts``) when dataset ``ds`` has no block at ``pointer``; the claim
    then uses the datasets that have it and is ``not run`` only when none has."""
    src._load(pointer.partition("#")[0])
    if src.has(pointer):
        return False
    parts.append(f"{NAMES.get(ds, ds)}: not recorded yet")
    return True


def _none_recorded(per_ds, what, pointer):
    if not per_ds:
        name = pointer.partition("#")[0]
        raise NotRecorded(f"{what} is not recorded in {name} for any dataset; regenerate it with "
                          f"`{_notebook_for(name)}`")


def _per_generator(src, ds, key):
    """Values of ``key`` over the Figure 3 per-generator records (seeds 0..n-1)."""
    rows = src.get(f"fig3_interpretability.json#/datasets/{ds}/per_generator")
    return [src.get(f"fig3_interpretability.json#/datasets/{ds}/per_generator/{i}/{key}")
            for i in range(len(rows))]


def c_decision_boundaries(src):
    parts, per_ds, seeds = [], [], []
    for ds in DIVERSITY_DATASETS:
        if _absent(src, f"fig3_interpretability.json#/datasets/{ds}/per_generator", parts, ds):
            continue
        f = _per_generator(src, ds, "boundary_faithfulness")
        var = _per_generator(src, ds, "pca_explained_variance")
        m = sum(f) / len(f)
        per_ds.append("supported" if m >= 0.9 else "partly" if m >= 0.5 else "refuted")
        seeds.append(len(f))
        parts.append(f"{NAMES[ds]}: the PCA-mesh label equals the head's label for "
                     f"{', '.join(_pct(x) for x in f)} of inverted samples (chance 10%, rule >= 90%); "
                     f"PC1+PC2 hold {', '.join(_pct(sum(v)) for v in var)} of the variance")
    _none_recorded(per_ds, "Figure 3 numbers per generator", "fig3_interpretability.json#/")
    return combine(per_ds), "; ".join(parts), min(seeds)


def c_two_clusters(src):
    parts, per_ds, seeds = [], [], []
    for ds in DIVERSITY_DATASETS:
        if _absent(src, f"fig3_interpretability.json#/datasets/{ds}/clusters_fair", parts, ds):
            continue
        base = f"fig3_interpretability.json#/datasets/{ds}/clusters_fair"
        src.require(base, "the fair cluster test (clusters_fair)")
        v = src.get(f"{base}/verdict")
        pb = f"{base}/pooled_generators"
        n_gen = src.get(f"{pb}/n_generators")
        single = src.get(f"{base}/single_generator/classes_above_null")
        pooled = src.get(f"{pb}/classes_above_null")
        tsne = [k for k in src.get(pb) if k.startswith("tsne_ari_perplexity_")]
        per_ds.append({"supported": "supported", "supported as generator clusters": "partly",
                       "refuted": "refuted"}[v])
        seeds.append(n_gen)
        parts.append(
            f"{NAMES[ds]}: {v}. One generator: {single}/10 classes beat the Gaussian null; "
            f"{n_gen} generators pooled: {pooled}/10 beat it (best k {src.get(f'{pb}/best_k_median'):g}, "
            f"silhouette {src.get(f'{pb}/silhouette_mean'):.3f} vs null 95th pct "
            f"{src.get(f'{pb}/null_silhouette_p95_mean'):.3f}), ARI vs generator id "
            f"{src.get(f'{pb}/ari_mean'):.2f} (k = {n_gen}: {src.get(f'{pb}/ari_k_groups_mean'):.2f}"
            + "".join(f"; t-SNE perplexity {k.rsplit('_', 1)[1]}: {src.get(f'{pb}/{k}'):.2f}" for k in tsne)
            + f"); real + inverted k-means clusters mixing both: "
            f"{_pct(src.get(f'{base}/real_vs_inverted/mixed_cluster_share'))}")
    _none_recorded(per_ds, "the fair cluster test (clusters_fair)", "fig3_interpretability.json#/")
    return combine(per_ds), "; ".join(parts), min(seeds)


def c_gamma_clusters(src):
    """Section 5.1: a higher cosine weight gives more clusters per class. Decided on the gamma
    sweep (features after the activation, every profile seed): classes whose best-k silhouette
    beats the Gaussian null, mean over seeds; "more" = some gamma above another has more classes
    above the null, and at least 8 of 10. The pre-activation generators (seed 0) are reported."""
    parts, per_ds, seeds = [], [], []
    for ds in DIVERSITY_DATASETS:
        if _absent(src, f"fig3_interpretability.json#/datasets/{ds}/clusters_fair", parts, ds):
            continue
        rows = src.get(f"fig3_interpretability.json#/datasets/{ds}/gamma_sweep")
        ks = {r["gamma"]: r["clusters_per_class_mean"] for r in rows}
        base = f"fig3_interpretability.json#/datasets/{ds}/clusters_fair"
        src.require(base, "the fair cluster test (clusters_fair)")
        lg = src.get(f"{base}/layer_gamma")
        pre = {r["gamma"]: r["classes_above_null"] for r in lg if r["layer"].endswith(".0")}
        if all("classes_above_null" in r for r in rows):   # calibrated sweep over seeds
            above = {r["gamma"]: r["classes_above_null"] for r in rows}
            n = min(r.get("n_seeds", 1) for r in rows)
            what = (f"classes beating the Gaussian null (mean over {n} seeds) "
                    + ", ".join(f"gamma {g:g}: {a:.1f}/10" for g, a in above.items()))
        else:   # an older record: seed 0 only, both layers in layer_gamma
            above = {r["gamma"]: r["classes_above_null"] for r in lg if not r["layer"].endswith(".0")}
            n = 1
            what = ("classes beating the Gaussian null (seed 0) "
                    + ", ".join(f"gamma {g:g}: {a}/10" for g, a in above.items()))
        more = any(above[g] > above[g0] and above[g] >= 8 for g in above for g0 in above if g > g0)
        per_ds.append("supported" if more else "refuted")
        seeds.append(n)
        parts.append(f"{NAMES[ds]}: clusters per class by gamma (fixed 0.25 rule) "
                     + ", ".join(f"{g:g}: {k:.1f}" for g, k in ks.items()) + "; " + what
                     + "; before the activation (seed 0) "
                     + ", ".join(f"gamma {g:g}: {a}/10" for g, a in pre.items()))
    _none_recorded(per_ds, "the fair cluster test (clusters_fair)", "fig3_interpretability.json#/")
    return combine(per_ds), "; ".join(parts), min(seeds)


def c_sae_differ(src):
    parts, per_ds, seeds = [], [], []
    for ds in DIVERSITY_DATASETS:
        if _absent(src, f"fig3_interpretability.json#/datasets/{ds}/per_generator", parts, ds):
            continue
        inv = _per_generator(src, ds, "sae_topk_jaccard_mean")
        ctl = _per_generator(src, ds, "sae_topk_jaccard_real_split")
        gap = sum(c - i for c, i in zip(ctl, inv)) / len(inv)
        per_ds.append("supported" if gap >= 0.2 else "partly" if gap > 0.05 else "refuted")
        seeds.append(len(inv))
        parts.append(f"{NAMES[ds]}: top-20 SAE unit Jaccard real vs inverted "
                     f"{', '.join(f'{x:.2f}' for x in inv)}, real vs real (control) "
                     f"{', '.join(f'{x:.2f}' for x in ctl)}")
    _none_recorded(per_ds, "Figure 3 numbers per generator", "fig3_interpretability.json#/")
    return combine(per_ds), "; ".join(parts), min(seeds)


def c_sae_anomaly(src):
    parts, per_ds, seeds = [], [], []
    for ds in DIVERSITY_DATASETS:
        if _absent(src, f"fig3_interpretability.json#/datasets/{ds}/per_generator", parts, ds):
            continue
        a = _per_generator(src, ds, "sae_anomaly_auroc")
        m = sum(a) / len(a)
        per_ds.append("supported" if m >= 0.9 else "partly" if m >= 0.7 else "refuted")
        seeds.append(len(a))
        parts.append(f"{NAMES[ds]}: AUROC (inverted vs real test, score = SAE recon. error) "
                     f"{', '.join(f'{x:.2f}' for x in a)} (chance 0.5)")
    _none_recorded(per_ds, "Figure 3 numbers per generator", "fig3_interpretability.json#/")
    return combine(per_ds), "; ".join(parts), min(seeds)


def _attempts_note(src, name) -> str:
    if src.has(f"{name}#/attempts"):
        att = src.get(f"{name}#/attempts")
        return f" ({len(att)} further attempts recorded in {name} `attempts`)" if att else ""
    return ""


def ood_cell(train: str, test: str):
    def claim(src):
        paper = PAPER_OOD[train][test]
        runs = src.get("fig4_ood.json#/runs")
        if train not in runs or (test not in runs[train].get("ood_sets", [])):
            reason = None
            if train in runs and src.has(f"fig4_ood.json#/runs/{train}/skipped/{test}"):
                reason = src.get(f"fig4_ood.json#/runs/{train}/skipped/{test}")
            elif train not in runs and src.has("fig4_ood.json#/skipped") and \
                    train in src.get("fig4_ood.json#/skipped"):
                reason = src.get(f"fig4_ood.json#/skipped/{train}")
            reason = reason or f"no {NAMES[train]} -> {NAMES[test]} run in fig4_ood.json"
            return "not run", f"{reason.split(' (')[0]} (paper: {paper}%)", 0
        base = f"fig4_ood.json#/runs/{train}/summary/ood/{test}"
        rate = 100 * src.get(f"{base}/garbage_rate/mean")
        sd = 100 * (src.get(f"{base}/garbage_rate/std") or 0.0)
        seeds = len(src.get(f"fig4_ood.json#/runs/{train}/seeds"))
        auroc = src.get(f"{base}/methods/garbage/auroc/mean")
        best = max((m for m in src.get(f"{base}/methods") if m != "garbage"),
                   key=lambda m: src.get(f"{base}/methods/{m}/auroc/mean"))
        best_auc = src.get(f"{base}/methods/{best}/auroc/mean")
        verdict = ("supported" if rate >= paper - OOD_MARGIN else "partly" if rate > 50 else "refuted")
        ev = (f"{rate:.1f} ± {sd:.1f}% of {NAMES[test]} sent to garbage vs paper {paper}%; garbage "
              f"AUROC {auroc:.3f} vs best baseline ({best}) {best_auc:.3f}"
              + _attempts_note(src, "fig4_ood.json"))
        return verdict, ev, seeds
    claim.__name__ = f"ood_{train}_to_{test}"
    return claim


def c_ood_id_accuracy(src):
    parts, ok, seeds = [], [], []
    for train in sorted(src.get("fig4_ood.json#/runs")):
        base = f"fig4_ood.json#/runs/{train}/summary"
        acc = src.get(f"{base}/in_distribution_accuracy/mean")
        ref = src.get(f"{base}/baseline_accuracy/mean")
        n = src.get(f"{base}/n_seeds")
        if n >= MIN_SEEDS:  # runs with fewer seeds are shown, not counted
            ok.append(acc >= ref - 0.005)
            seeds.append(n)
        parts.append(f"{NAMES[train]}: {_pct(acc)} with the garbage class vs {_pct(ref)} without "
                     f"({src.get(f'{base}/n_seeds')} seeds; paper {PAPER_OOD[train][train]}%)")
    verdict = "supported" if all(ok) else "partly" if any(ok) else "refuted"
    return verdict, "; ".join(parts), min(seeds) if seeds else 0


def c_clear_threshold(src):
    parts, held, seeds = [], [], []
    for train in sorted(src.get("fig4_ood.json#/runs")):
        n = src.get(f"fig4_ood.json#/runs/{train}/summary/n_seeds")
        least = src.get(f"fig4_ood.json#/runs/{train}/summary/least_confident_in_distribution/mean")
        for test in src.get(f"fig4_ood.json#/runs/{train}/ood_sets"):
            base = f"fig4_ood.json#/runs/{train}/summary/ood/{test}"
            k = src.get(f"{base}/clear_threshold_seeds")
            most = src.get(f"{base}/most_confident_misclassified_ood/mean")
            held.append(k == n)
            if n >= MIN_SEEDS:
                seeds.append(n)
            parts.append(f"{NAMES[train]}->{NAMES[test]} {k}/{n} seeds (least confident ID "
                         f"{least:.2f}, most confident escaped OOD {_f(most, 3)})")
    verdict = "supported" if all(held) else "refuted"
    return verdict, "holds in: " + "; ".join(parts) + _attempts_note(src, "fig4_ood.json"), \
        min(seeds) if seeds else 0


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
    like = [f"{a['name']} ({a['dataset']}-{a['train_size']})" for a in att if a.get("training_like")]
    return (f"; training-like among the {len(att)} recorded attempts: "
            f"{', '.join(like) if like else 'none'}")


def c_recon_training_like(src):
    parts, per_ds, seeds = [], [], []
    for ds in src.get("fig5_reconstruction.json#/datasets"):
        order, rows = _recon_rows(src, ds)
        i = order[0]
        base = f"fig5_reconstruction.json#/datasets/{ds}/{i}"
        n = src.get(f"{base}/train_size")
        share, sd, p = _closer(src, base)
        k = len(src.get(f"{base}/reconstruction"))
        seeds.append(k)
        if p is not None:   # calibrated: verifier_accuracy >= 0.5 and a lean with p < 0.05
            va = src.get(f"{base}/verifier_accuracy")
            judged, lean = va >= 0.5, share > 0.5 and p < 0.05
            per_ds.append("supported" if judged and lean else "partly" if judged or lean
                          else "refuted")
            real = src.get(f"{base}/baselines/real_test/verifier_accuracy")
            parts.append(f"{NAMES[ds]}-{n}: verifier accuracy {_pct(va)} (real held-out "
                         f"{_pct(real)}), train-closer share {share:.2f} (p = {p:.3f}; 0.5 = no "
                         f"preference), NCC to nearest train / held-out "
                         f"{src.get(f'{base}/ncc_train'):.3f} / {src.get(f'{base}/ncc_test'):.3f}")
            continue
        matched = src.get(f"{base}/summary/distinct_train_ssim_gt_0.4/mean")
        ssim = src.get(f"{base}/summary/ssim_train_mean/mean")
        lean = share - sd > 0.5
        per_ds.append("supported" if lean and matched > 0 else "partly" if lean else "refuted")
        parts.append(f"{NAMES[ds]}-{n}: train-closer share {share:.2f} ± {sd:.2f} (0.5 = no "
                     f"preference), SSIM to nearest train {ssim:.3f}, training images matched "
                     f"with SSIM > 0.4: {matched:.1f}")
    return combine(per_ds), "; ".join(parts) + _training_like_attempts(src), min(seeds)


def c_recon_degrades(src):
    parts, per_ds, seeds = [], [], []
    for ds in src.get("fig5_reconstruction.json#/datasets"):
        order, rows = _recon_rows(src, ds)
        if len(order) < 2:
            continue
        vals = []
        for i in order:
            base = f"fig5_reconstruction.json#/datasets/{ds}/{i}"
            share, sd, _ = _closer(src, base)
            quality = (src.get(f"{base}/ncc_train") if src.has(f"{base}/ncc_train")
                       else src.get(f"{base}/summary/ssim_train_mean/mean"))
            vals.append((src.get(f"{base}/train_size"), share, sd, quality))
            seeds.append(len(src.get(f"{base}/reconstruction")))
        (_, s0, d0, q0), (_, s1, d1, q1) = vals[0], vals[-1]
        lean_fades, ssim_falls = s0 - s1 > max(d0, d1), q1 < q0
        per_ds.append("supported" if lean_fades and ssim_falls else
                      "partly" if lean_fades or ssim_falls else "refuted")
        parts.append(f"{NAMES[ds]}: train-closer share " + " / ".join(
            f"{n}: {s:.2f}" for n, s, _, _ in vals) + "; similarity to nearest train " + " / ".join(
            f"{s:.3f}" for _, _, _, s in vals))
    if not per_ds:
        raise NotRecorded("fig5_reconstruction.json holds one training-set size per dataset; "
                          "the trend needs two")
    return combine(per_ds), "; ".join(parts), min(seeds)


# id, section, claim (the paper's terms), function
CLAIMS = [
    ("label_conditioning", "3.2.1", "Label conditioning lacks the diversity expected of inversion",
     c_label_conditioning),
    ("vector_conditioning", "3.2.2", "Vector conditioning gives more diversity than label conditioning",
     c_vector_vs_label),
    ("vector_matrix_conditioning", "3.2.3-4",
     "Vector-matrix conditioning explores the input space better (than label, vector or matrix alone)",
     c_vector_matrix),
    ("heavy_dropout", "1, 3.2", "Heavy dropout during generation increases diversity", c_dropout),
    ("cosine_term", "3.3.3", "The cosine-similarity term increases the diversity of the samples",
     c_cosine_term),
    ("orthogonality_term", "3.3.4", "Feature orthogonality further increases diversity", c_ortho_term),
    ("cosine_inter_intra", "4", "A high cosine weight increases both inter- and intra-class diversity "
     "of a single generator (measured in pixels)", c_cosine_pixels),
    ("inversion_accuracy", "4, 5.1", "The generator inverts the classifier (inversion accuracy over 95%)",
     c_inversion_accuracy),
    ("confidently_classified", "4", "Inverted samples are confidently classified", c_confident),
    ("unlike_training_data", "4", "Inverted samples are unlike anything the model was trained on",
     c_unlike_training),
    ("learns_input_distribution", "abstract, 3.3.2",
     "The generator learns the data distribution in the classifier's input space", c_learns_distribution),
    ("pca_spread", "5.1", "PCA shows the spread of each class's features (diverse inputs per class)",
     c_pca_spread),
    ("decision_boundaries", "5.1",
     "Decision boundaries from a mesh on the PCA plane reveal the classifier's decision structure",
     c_decision_boundaries),
    ("two_clusters", "5.1", "t-SNE shows two separate clusters (distributions) for each class",
     c_two_clusters),
    ("cosine_more_clusters", "5.1", "A larger cosine weight leads to multiple clusters within each class",
     c_gamma_clusters),
    ("sae_features_differ", "5.1",
     "SAE features activated by training data differ from those of inverted samples of the same class",
     c_sae_differ),
    ("sae_anomaly_detection", "5.1", "SAE features could be used for anomaly detection", c_sae_anomaly),
]
for _train in ("mnist", "fashionmnist", "svhn", "cifar10"):
    for _test in ("mnist", "fashionmnist", "svhn", "cifar10"):
        if _train != _test:
            CLAIMS.append((f"ood_{_train}_to_{_test}", "5.2",
                           f"Trained on {NAMES[_train]}, most {NAMES[_test]} test images go to the "
                           f"garbage class (paper: {PAPER_OOD[_train][_test]}%)", ood_cell(_train, _test)))
CLAIMS += [
    ("ood_accuracy_kept", "5.2", "The garbage class keeps in-distribution accuracy", c_ood_id_accuracy),
    ("ood_clear_threshold", "5.2", "The least confident in-distribution sample is more confident than "
     "the most confident escaped OOD sample (a clear threshold)", c_clear_threshold),
    ("reconstruction_training_like", "5.3",
     "Reconstructions from the weights are training-like (closer to training than to unseen data)",
     c_recon_training_like),
    ("reconstruction_degrades", "5.3",
     "Reconstruction quality degrades with the training-set size", c_recon_degrades),
]


def build(figures_dir: str | Path = REPO / "figures") -> dict:
    """Evaluate every claim on the JSON files in ``figures_dir``; returns the ledger."""
    figures = Path(figures_dir)
    cache: dict = {}
    rows = []
    for cid, section, text, fn in CLAIMS:
        src = Source(figures, cache, cid)
        try:
            verdict, evidence, seeds = fn(src)
        except NotRecorded as e:
            verdict, evidence, seeds = "not run", str(e), 0
        if verdict not in VERDICTS:
            raise AssertionError(f"claim {cid}: verdict {verdict!r} not in {VERDICTS}")
        if verdict != "not run" and seeds < MIN_SEEDS:
            evidence = f"only {seeds} seed(s), fewer than {MIN_SEEDS} (rule: inconclusive); {evidence}"
            verdict = "inconclusive"
        files = sorted({p.partition("#")[0] for p in src.read})
        rows.append({"id": cid, "section": section, "claim": text, "verdict": verdict,
                     "evidence": evidence, "seeds": seeds, "source": src.read,
                     "command": "; ".join(_notebook_for(f) for f in files)})
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    return {"generated_by": "python -m netinv_core.claims",
            "rules": "see the docstring of netinv_core/claims.py",
            "min_seeds": MIN_SEEDS, "counts": counts, "claims": rows}


def render_table(ledger: dict) -> str:
    """The README table (markdown) of a ledger."""
    def cell(s):
        return str(s).replace("|", "\\|").replace("\n", " ")
    c = ledger["counts"]
    lines = [f"{len(ledger['claims'])} claims: " + ", ".join(f"{n} {v}" for v, n in c.items() if n)
             + ". Generated by `python -m netinv_core.claims` from `figures/*.json` "
             "(rules in its docstring; sources and commands in `figures/claims.json`).", "",
             "| id | § | claim | verdict | evidence (with control) | seeds |", "|---|---|---|---|---|---|"]
    for r in ledger["claims"]:
        lines.append("| " + " | ".join(cell(x) for x in (
            f"`{r['id']}`", r["section"], r["claim"], f"**{r['verdict']}**", r["evidence"],
            r["seeds"])) + " |")
    return "\n".join(lines)


def update_readme(text: str, table: str) -> str:
    """Replace what lies between the claims markers of ``text`` by ``table``."""
    pat = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pat.search(text):
        raise ClaimSourceError(f"README has no {BEGIN} ... {END} markers; add them where the "
                               f"Claims table belongs (top of the results section)")
    return pat.sub(lambda _: f"{BEGIN}\n{table}\n{END}", text, count=1)


def dumps(ledger: dict) -> str:
    return json.dumps(ledger, indent=1, sort_keys=False) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m netinv_core.claims", description=__doc__.split("\n")[0])
    ap.add_argument("--figures-dir", default=str(REPO / "figures"))
    ap.add_argument("--readme", default=str(REPO / "README.md"),
                    help="README to update between the claims markers ('' to skip)")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if claims.json or the README table is out of date")
    args = ap.parse_args(argv)
    from .cache import atomic_write

    ledger = build(args.figures_dir)
    out = Path(args.figures_dir) / "claims.json"
    text = dumps(ledger)
    readme = Path(args.readme) if args.readme else None
    new_readme = update_readme(readme.read_text(), render_table(ledger)) if readme else None
    if args.check:
        stale = [str(p) for p, new in ((out, text), (readme, new_readme))
                 if p is not None and (not p.exists() or p.read_text() != new)]
        for p in stale:
            print(f"out of date: {p}; run `python -m netinv_core.claims`", file=sys.stderr)
        return 1 if stale else 0
    atomic_write(out, lambda tmp: Path(tmp).write_text(text))
    if readme:
        atomic_write(readme, lambda tmp: Path(tmp).write_text(new_readme))
    print(f"[claims] {len(ledger['claims'])} claims -> {out}"
          + (f" and {readme}" if readme else "") + ": "
          + ", ".join(f"{n} {v}" for v, n in ledger["counts"].items() if n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
