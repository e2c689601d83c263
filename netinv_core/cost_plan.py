"""The counts of the cost model (``netinv_core.cost``): which units every notebook of
``run_all.sh`` runs, and how many, for a profile on a cold cache.

Counts come from the code's own settings (datasets, epochs, steps, seeds, generators, sample
counts, as ``config``, ``Profile.ood``, ``Profile.recon``, ``figure5.TRAIN_SIZES`` and the
notebooks' defaults, read from the functions' signatures where the notebook keeps them), with the
notebooks in ``run_all.sh``'s order (a model made by an earlier notebook is reused later, as the
cache does). Datasets without local files are counted as skipped, as the notebooks skip them.
"""
from __future__ import annotations

import math

from .config import get_profile
from .cost_units import fig3_sizes
from .errors import DataUnavailableError
# the datasets of the Figure 2 notebook's pixel-diversity probe (its probe_datasets default)
PROBE_DATASETS = ("mnist", "fashionmnist", "digits")

N_TRAIN = {"mnist": 60000, "fashionmnist": 60000, "cifar10": 50000, "svhn": 73257, "digits": 1257}
N_TEST = {"mnist": 10000, "fashionmnist": 10000, "cifar10": 10000, "svhn": 26032, "digits": 540}
# Share of the step budget a generator trains when its profile stops early (``generator_speed``
# with ``stop_at_accuracy``), per (dataset, group): "default" = the default loss weights,
# conditioning and dropout (Figures 2, 3 and 5's generators), "ablation" = the ablation's other
# settings. Measured on the cache of a quick-profile run (bf16, lr 2e-3, stop at 0.97) with
# ``python scripts/stop_steps.py``; 1.0 (the whole budget) where nothing was measured.
STOP_SHARE = {("mnist", "default"): 0.53, ("mnist", "ablation"): 0.46,          # 11 / 27 generators
              ("fashionmnist", "default"): 0.65, ("fashionmnist", "ablation"): 0.46,  # 11 / 27
              ("cifar10", "default"): 0.56}                                           # 3

def _shape(ds):
    from .data import IMAGE_SHAPES
    return IMAGE_SHAPES[ds]


def available(ds: str) -> bool:
    from .data import load_dataset
    try:
        load_dataset(ds, "test", download=False)
        return True
    except DataUnavailableError:
        return False


# ---------------------------------------------------------------------------------------------
# counts per notebook

def probe_stages(ds: str, prof, key: str) -> list:
    """Figure 2's probes of one dataset (``figure2.figure2_probes`` with its defaults): an
    independent SmallNet on the training set; per generator ``student_samples`` samples, the
    teacher's soft labels and a student, plus the noise floor's and the real ceiling's students;
    ``per_class`` x classes samples of every generator and of every gamma x seed generator for the
    pixel distances; the nearest training image of ``n_nearest`` samples per generator and of
    as many real test images."""
    import inspect

    from .figure2 import STUDENT_SAMPLES, figure2_probes

    d = {k: v.default for k, v in inspect.signature(figure2_probes).parameters.items()}
    n_gen, n_s = prof.n_generators, STUDENT_SAMPLES.get(prof.name, 20000)
    n_pix = d["per_class"] * 10 * n_gen * (1 + len(d["gammas"]))
    return [(f"fig2 probe {ds}: independent SmallNet, {d['independent_epochs']} epochs",
             f"smallnet_step/{key}", d["independent_epochs"] * math.ceil(N_TRAIN[ds] / 128)),
            (f"fig2 probe {ds}: {n_gen + 2} students (generators, noise, real), "
             f"{d['student_epochs']} epochs x {n_s}", f"smallnet_step/{key}",
             (n_gen + 2) * d["student_epochs"] * math.ceil(n_s / 128)),
            (f"fig2 probe {ds}: samples ({n_s} per generator, pixel distances)",
             f"generate_1000/{key}", (n_gen * n_s + n_pix) / 1000),
            (f"fig2 probe {ds}: teacher soft labels, confidence on the test set",
             f"forward_1000/{key}", ((n_gen + 2) * n_s + N_TEST[ds]) / 1000),
            (f"fig2 probe {ds}: nearest training image", "nearest_500", n_gen + 1)]

def plan(profile) -> dict:
    """``{notebook: [(stage, unit, count), ...]}`` for a cold cache, in run_all.sh's order."""
    from .config import classifier_config
    from .ood_experiment import ood_config
    from .figure5 import TRAIN_SIZES
    from .ood import OOD_DATASETS
    from .ood_experiment import MAHALANOBIS_FIT
    from .recon_attempts import SAMPLING_MODES
    from .recon_metrics import BASELINES, VerifierConfig

    prof = get_profile(profile)
    smoke = prof.name == "smoke"
    key = lambda ds: "x".join(map(str, _shape(ds)))  # noqa: E731
    have = {ds: available(ds) for ds in (set(prof.datasets) | set(prof.ood.train_sets)
                                         | set(prof.recon.datasets) | set(prof.ablation_datasets)
                                         | (set(OOD_DATASETS) if prof.ood.train_sets != ("digits",)
                                            else set()))}
    out: dict[str, list] = {}
    made_classifiers: set = set()

    def classifier(ds, seed=0, epochs=None, n=None):
        cc = classifier_config(ds, prof, seed=seed)
        ep = epochs or cc.epochs
        tag = (ds, seed, ep, n)
        if tag in made_classifiers:
            return []
        made_classifiers.add(tag)
        n = n or N_TRAIN[ds]
        return [(f"classifier {ds} seed {seed} ({ep} epochs x {n})", f"classifier_step/{key(ds)}",
                 ep * math.ceil(n / cc.batch_size)),
                (f"classifier {ds} test", f"forward_1000/{key(ds)}", N_TEST[ds] / 1000)]

    stops = prof.generator_config().stop_at_accuracy is not None

    def generators(ds, n_gen, steps, what, group="default"):
        if stops:       # the expected steps before the early stop, not the budget
            steps = round(steps * STOP_SHARE.get((ds, group), 1.0))
        return [(f"{what} {ds}: {n_gen} generators x {steps} steps", f"inversion_step/{key(ds)}",
                 n_gen * steps),
                (f"{what} {ds}: evaluation ({prof.eval_samples} samples each)",
                 f"generate_1000/{key(ds)}", n_gen * prof.eval_samples / 1000),
                (f"{what} {ds}: evaluation forward", f"forward_1000/{key(ds)}",
                 n_gen * (prof.eval_samples + 2000) / 1000)]

    # fig2: every dataset of the profile, n_generators each
    stages, skipped = [], []
    fig2_sets = [d for d in prof.datasets if have.get(d, True)]
    skipped = [d for d in prof.datasets if not have.get(d, True)]
    probe_sets = [d for d in PROBE_DATASETS if d in fig2_sets]
    for ds in fig2_sets:
        stages += classifier(ds) + generators(ds, prof.n_generators, prof.generator_steps, "fig2")
        if ds in probe_sets:   # the pixel-diversity probe: gamma 0 and 30, every seed
            stages += generators(ds, 2 * prof.n_generators, prof.generator_steps,
                                 "fig2 probe gamma 0/30")
            stages += probe_stages(ds, prof, key(ds))
    out["fig2_inversion"] = (stages, skipped)

    # fig3: the profile's datasets; gamma sweep 0/10/30 x every seed (the probe's generators where
    # Figure 2 made them), and the fair test's generators before the activation (gamma 10 and
    # 30, seed 0; after it they are the sweep's)
    stages = []
    n_gen = prof.n_generators
    for ds in fig2_sets:
        sz = fig3_sizes(prof, ds)
        n_gam = len(sz["sweep_gammas"])
        n_samples = sz["samples"]
        if ds not in probe_sets:
            stages += generators(ds, 2 * prof.n_generators, prof.generator_steps, "fig3 gamma sweep")
        stages += generators(ds, len(sz["gammas"]), prof.generator_steps, "fig3 fair test")
        # samples: seed 0's, every seed's (fair test), every gamma x seed (sweep); the layer
        # comparison's 2 layers x fair gammas generators give per_generator samples each
        n_img = ((1 + n_gen + n_gam * n_gen) * n_samples
                 + 2 * len(sz["gammas"]) * sz["per_generator"])
        stages += [(f"fig3 {ds}: features of the training set", f"forward_1000/{key(ds)}",
                    N_TRAIN[ds] / 1000),
                   (f"fig3 {ds}: t-SNE", "tsne", 1), (f"fig3 {ds}: UMAP", "umap", 1),
                   (f"fig3 {ds}: clusters ({n_gam * n_gen + 1} generators)", "clusters",
                    n_gam * n_gen + 1),
                   (f"fig3 {ds}: SAE 20 epochs", "sae_1_epoch", 20),
                   (f"fig3 {ds}: samples", f"generate_1000/{key(ds)}", n_img / 1000),
                   (f"fig3 {ds}: features of the samples", f"forward_1000/{key(ds)}",
                    n_img / 1000),
                   # the calibrated rule on per_generator points: the sweep's gamma x seed
                   # generators, seed 0, the layer comparison's, and the real test features and
                   # the merged-pair control (each up to 2 x per_generator points: counted twice)
                   (f"fig3 {ds}: calibrated clusters ({n_gam * n_gen + 1 + 2 * len(sz['gammas'])}"
                    f" generators, real, control)", "calibrated",
                    n_gam * n_gen + 1 + 2 * len(sz["gammas"]) + 4),
                   (f"fig3 {ds}: calibrated clusters of {n_gen} pooled generators "
                    f"({sz['pooled']} points)", "calibrated_pooled", 1),
                   (f"fig3 {ds}: real + inverted k-means ({sz['both']} points)", "mixed_share", 1)]
        stages += [(f"fig3 {ds}: t-SNE of the pooled generators ({sz['pooled']} points, "
                    f"perplexity {p:g})", f"tsne_pooled/{p:g}", 1)
                   for p in sz["perplexities"] if sz["pooled"] > 3 * p]
        if sz["perplexities"] and sz["both"] > 3 * sz["perplexities"][0]:
            stages.append((f"fig3 {ds}: t-SNE of real + inverted ({sz['both']} points)",
                           "tsne_both", 1))
    if fig2_sets:   # numba compiles UMAP's kernels once per notebook kernel
        stages.append(("fig3: UMAP's numba compilation (once)", "umap_compile", 1))
    out["fig3_interpretability"] = (stages, skipped)

    # fig4: garbage-class classifiers
    stages, sk = [], []
    st = prof.ood
    for ds in prof.ood.train_sets:
        if not have.get(ds, True):
            sk.append(ds)
            continue
        if ds == "digits":    # ood_sets_for: crops of scikit-learn's two photographs
            ood_sets, n_ood = ["sklearn_photos"], st.ood_samples or 500
        else:
            ood_sets = [o for o in OOD_DATASETS if o != ds and have.get(o, True)]
            n_ood = sum(N_TEST[o] if st.ood_samples is None else min(st.ood_samples, N_TEST[o])
                        for o in ood_sets)
        for seed in st.seeds(ds, (0, 1, 2)):
            oc = ood_config(ds, prof, seed)     # the default (diverse_garbage): the set grows
            epochs = oc.classifier.epochs
            rounds = epochs if oc.invert_after_last_epoch else epochs - 1
            n = N_TRAIN[ds]
            cap = None if oc.keep_all else (oc.garbage_cap or 2 * n // 10)
            garbage = [n // 10 + e * oc.inverted_per_epoch for e in range(epochs)]
            batches = sum(math.ceil((n + (g if cap is None else min(g, cap))) / 128)
                          for g in garbage)
            stages += [(f"sec52 {ds} seed {seed}: garbage classifier {epochs} epochs",
                        f"classifier_step/{key(ds)}", batches),
                       (f"sec52 {ds} seed {seed}: inversion {rounds} x {oc.generator.steps}"
                        f" steps (fp32, {'hot' if oc.hot_conditioning else 'soft'} conditioning)",
                        f"ood_inversion_step/{key(ds)}", rounds * oc.generator.steps),
                       (f"sec52 {ds} seed {seed}: garbage samples", f"generate_1000/{key(ds)}",
                        rounds * oc.inverted_per_epoch * oc.candidates / 1000),
                       # the round statistics' forward of the new samples; the evaluation: both
                       # models on the test set and every available OOD set, the baseline on the
                       # Mahalanobis fit's training images
                       (f"sec52 {ds} seed {seed}: round statistics forward",
                        f"forward_1000/{key(ds)}", rounds * oc.inverted_per_epoch * oc.candidates
                        / 1000),
                       (f"sec52 {ds} seed {seed}: OOD evaluation forward (2 models, test set and "
                        f"{len(ood_sets)} OOD sets)", f"forward_1000/{key(ds)}",
                        (2 * (N_TEST[ds] + n_ood) + min(MAHALANOBIS_FIT, n)) / 1000),
                       (f"sec52 {ds} seed {seed}: Mahalanobis", "mahalanobis", 1)]
            stages += classifier(ds, seed)  # the baseline (seed 0 comes from fig2's cache)
    out["sec52_ood"] = (stages, sk)

    # fig5: reconstruction per training-set size
    stages, sk = [], []
    rs = prof.recon
    vc = VerifierConfig(dataset="", attacked_train_size=None)
    n_rec = rs.n_per_class * 10
    for ds in prof.recon.datasets:
        if not have.get(ds, True):
            sk.append(ds)
            continue
        for size in TRAIN_SIZES[ds]:
            cc = classifier_config(ds, prof)
            if size < N_TRAIN[ds]:
                ep = max(cc.epochs, math.ceil(rs.classifier_min_steps / math.ceil(size / 128)))
                stages += classifier(ds, 0, ep, size)
                stages += generators(ds, 1, prof.generator_steps, f"fig5 n={size} control")
            # the verifier (MLP judge) trains on the training split minus the attacked subset, or
            # on half the test split when the attacked classifier saw the whole training split
            n_ver = N_TRAIN[ds] - size if size < N_TRAIN[ds] else N_TEST[ds] // 2
            stages += [(f"fig5 {ds} n={size}: {rs.n_generators} reconstructors x "
                        f"{rs.steps} steps", f"reconstruction_step/{key(ds)}",
                        rs.n_generators * rs.steps),
                       (f"fig5 {ds} n={size}: verifier {vc.epochs} epochs x {n_ver}",
                        f"verifier_step/{key(ds)}", vc.epochs * math.ceil(n_ver / vc.batch_size)),
                       # per reconstructor n_rec samples, n_rec in every sampling mode and 20
                       # BatchNorm batches of 256; the modes' label check; the control's samples
                       (f"fig5 {ds} n={size}: samples", f"generate_1000/{key(ds)}",
                        (rs.n_generators * ((1 + len(SAMPLING_MODES)) * n_rec + 20 * 256)
                         + n_rec) / 1000),
                       (f"fig5 {ds} n={size}: sampling modes' forward", f"forward_1000/{key(ds)}",
                        rs.n_generators * len(SAMPLING_MODES) * n_rec / 1000),
                       # the judge's metrics (matching, SSIM, permutation test) on n_rec images:
                       # every reconstructor, their pool (n_generators x as many), the control
                       # and every baseline
                       (f"fig5 {ds} n={size}: metrics ({2 * rs.n_generators + 1 + len(BASELINES)}"
                        f" x {n_rec} images)", f"judge_metrics/{size}",
                        2 * rs.n_generators + 1 + len(BASELINES))]
    out["fig5_reconstruction"] = (stages, sk)

    # ablation: 11 settings x seeds 0, 1, 2; the default's come from fig2 for the seeds fig2 has,
    # and so do those of loss_off=gamma where fig2's pixel probe trained gamma = 0 (the same
    # config, the same key)
    stages = []
    k = len({0, 1, 2} & set(range(prof.n_generators)))
    for ds in prof.ablation_datasets:
        n_new = 33 - k - (k if ds in probe_sets else 0)
        stages += generators(ds, n_new, prof.generator_steps, "ablation", "ablation")
        # every setting's generators (cached ones too) are sampled again and classified
        stages += [(f"ablation {ds}: clusters", "clusters", 33),
                   (f"ablation {ds}: samples (33 x {prof.eval_samples})",
                    f"generate_1000/{key(ds)}", 33 * prof.eval_samples / 1000),
                   (f"ablation {ds}: their forward", f"forward_1000/{key(ds)}",
                    33 * prof.eval_samples / 1000)]
    out["ablation"] = (stages, [])
    # explore: one generator on MNIST (digits in smoke) at the profile's steps (the notebook's
    # steps = 0), with the profile's early stop; never cached
    ds0 = "digits" if smoke else "mnist"
    out["explore_inversion"] = (generators(ds0, 1, prof.generator_steps, "explore"), [])

    return out
