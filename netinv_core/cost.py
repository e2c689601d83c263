"""A cost model of ``run_all.sh``: predicted seconds per notebook for a profile on this device.

    python -m netinv_core.bench cost --profile paper [--device cuda] [--quick-units]

Two parts:

1. **Unit costs, measured here** (``netinv_core.cost_units``): a few optimiser steps of every kind
   of training the notebooks run (classifier step at batch 128, inversion step, reconstruction
   step, each at the profile's batch and width, for 1x28x28 and 3x32x32 images; an (N+1)-class
   garbage classifier step costs the same as an N-class step), the classifier forward per image
   (evaluation, generation), and the analysis steps at the profile's sizes (t-SNE and UMAP, k-means
   clusters, the SAE, nearest-image matching against the full training pool, the OOD evaluation).
   Training steps use random weights: their time does not depend on the values. Each unit is the
   median of a few repetitions after one warm-up; its FLOPs are counted with ``FlopCounterMode``.
2. **Counts, from the code's own settings**: how many of each unit every notebook runs for the
   profile (datasets, epochs, steps, seeds, generators, sample counts, as ``config``,
   ``Profile.ood``, ``Profile.recon``, ``figure5.TRAIN_SIZES`` and the notebooks' defaults set
   them), assuming a cold cache and the notebooks run in ``run_all.sh``'s order (a model made by
   an earlier notebook is reused later, as the cache does). Datasets without local files are
   counted as skipped, as the notebooks skip them.

    predicted seconds = sum over stages of count x unit seconds

The prediction ignores early stopping, data loading and plotting (seconds), and assumes the
machine's load while measuring persists. For a GPU it also gives an extrapolation from the
counted FLOPs: seconds = max(GFLOP / (rate x utilisation), launch floor) per step, with the rate,
utilisation and floor stated in the output.
"""
from __future__ import annotations

import math
import os
import sys
import time

import torch

from .config import get_profile
from .cost_units import CPU_SECONDS, analysis_units, fig3_sizes, training_units
from .errors import DataUnavailableError

# the datasets of the Figure 2 notebook's pixel-diversity probe (its probe_datasets default) and
# the cosine weights it compares (probe_gammas; Figure 3's sweep uses the same)
PROBE_DATASETS = ("mnist", "fashionmnist", "digits")
PROBE_GAMMAS = (0.0, 10.0, 30.0)

N_TRAIN = {"mnist": 60000, "fashionmnist": 60000, "cifar10": 50000, "svhn": 73257, "digits": 1257}
N_TEST = {"mnist": 10000, "fashionmnist": 10000, "cifar10": 10000, "svhn": 26032, "digits": 540}
# GPU extrapolation: H200 bf16 dense peak (NVIDIA datasheet, SXM), the share of it that small
# convnets at these batch sizes reach, and a floor per optimiser step (kernel launches).
GPU_PEAK_TFLOPS = 989.0
GPU_UTILISATION = 0.05
GPU_STEP_FLOOR_S = 0.004
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
    n_pix = d["per_class"] * 10 * n_gen * (1 + len(PROBE_GAMMAS))
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

    prof = get_profile(profile)
    smoke = prof.name == "smoke"
    key = lambda ds: "x".join(map(str, _shape(ds)))  # noqa: E731
    have = {ds: available(ds) for ds in (set(prof.datasets) | set(prof.ood.train_sets)
                                         | set(prof.recon.datasets) | set(prof.ablation_datasets))}
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
    # Figure 2 made them), and the fair test's generators (gamma 30 after the activation, gamma
    # 10 and 30 before it; seed 0)
    stages = []
    sz = fig3_sizes(prof)
    n_samples, n_gen, n_gam = sz["samples"], prof.n_generators, len(PROBE_GAMMAS)
    for ds in fig2_sets:
        if ds not in probe_sets:
            stages += generators(ds, 2 * prof.n_generators, prof.generator_steps, "fig3 gamma sweep")
        stages += generators(ds, 3 if ds not in probe_sets else 2, prof.generator_steps,
                             "fig3 fair test")
        # samples: seed 0's, every seed's (fair test), every gamma x seed (sweep); the layer
        # comparison's 2 layers x fair gammas generators give per_generator samples each
        n_img = ((1 + n_gen + n_gam * n_gen) * n_samples
                 + 2 * len(sz["gammas"]) * sz["per_generator"])
        stages += [(f"fig3 {ds}: features of the training set", f"forward_1000/{key(ds)}",
                    N_TRAIN[ds] / 1000),
                   (f"fig3 {ds}: t-SNE", "tsne", 1), (f"fig3 {ds}: UMAP", "umap", 1),
                   (f"fig3 {ds}: clusters ({3 * prof.n_generators + 5} generators)", "clusters",
                    3 * prof.n_generators + 5),
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
                        f" steps", f"inversion_step/{key(ds)}", rounds * oc.generator.steps),
                       (f"sec52 {ds} seed {seed}: garbage samples", f"generate_1000/{key(ds)}",
                        rounds * oc.inverted_per_epoch / 1000),
                       (f"sec52 {ds} seed {seed}: OOD evaluation forward (2 models, 3 test sets)",
                        f"forward_1000/{key(ds)}", 2 * 3 * 10000 / 1000 + 2 * n / 1000),
                       (f"sec52 {ds} seed {seed}: Mahalanobis", "mahalanobis", 1)]
            stages += classifier(ds, seed)  # the baseline (seed 0 comes from fig2's cache)
    out["sec52_ood"] = (stages, sk)

    # fig5: reconstruction per training-set size
    stages = []
    rs = prof.recon
    for ds in prof.recon.datasets:
        for size in TRAIN_SIZES[ds]:
            cc = classifier_config(ds, prof)
            if size < N_TRAIN[ds]:
                ep = max(cc.epochs, math.ceil(rs.classifier_min_steps / math.ceil(size / 128)))
                stages += classifier(ds, 0, ep, size)
                stages += generators(ds, 1, prof.generator_steps, f"fig5 n={size} control")
            stages += [(f"fig5 {ds} n={size}: {rs.n_generators} reconstructors x "
                        f"{rs.steps} steps", f"reconstruction_step/{key(ds)}",
                        rs.n_generators * rs.steps),
                       (f"fig5 {ds} n={size}: nearest-image matching", "match",
                        rs.n_generators + 1)]
    out["fig5_reconstruction"] = (stages, [])

    # ablation: 11 settings x 3 seeds; the default's 3 seeds come from fig2, and so do those of
    # loss_off=gamma where fig2's pixel probe trained gamma = 0 (the same config, the same key)
    stages = []
    for ds in prof.ablation_datasets:
        n_new = 30 - (prof.n_generators if ds in probe_sets else 0)
        stages += generators(ds, n_new, prof.generator_steps, "ablation", "ablation")
        stages += [(f"ablation {ds}: clusters", "clusters", 33)]
    out["ablation"] = (stages, [])
    # explore: one 200-step look at MNIST (digits in smoke)
    ds0 = "digits" if smoke else "mnist"
    out["explore_inversion"] = ([(f"explore {ds0}: 1 generator x 200 steps",
                                  f"inversion_step/{key(ds0)}", 5 if smoke else 200)], [])

    return out


def predict(profile, device="cpu", units: dict | None = None) -> dict:
    """Measure the units (unless given) and return predicted seconds per notebook and in total,
    with the stage list, plus the GPU extrapolation of the training stages."""
    t0 = time.perf_counter()
    from .device import resolve_device
    device = str(resolve_device(device))
    threads = torch.get_num_threads()
    units = dict(units or {})
    if not units:
        units.update(training_units(profile, device))
        units.update(analysis_units(profile, device))
    sizes = units.pop("sizes", None)
    measure_s = time.perf_counter() - t0
    rate = GPU_PEAK_TFLOPS * GPU_UTILISATION * 1e3  # GFLOP/s
    notebooks, total, gpu_total, idle_total = {}, 0.0, 0.0, 0.0
    for nb, (stages, skipped) in plan(profile).items():
        rows, secs, gsecs, isecs = [], 0.0, 0.0, 0.0
        for name, unit, count in stages:
            s, gf = units[unit]
            rows.append({"stage": name, "unit": unit, "count": count, "seconds": count * s})
            secs += count * s
            isecs += count * CPU_SECONDS.get(unit, s)
            if unit == "sae_1_epoch":   # torch: one floor per batch of 256 on the GPU
                per = math.ceil(sizes["pool"] / 256) * GPU_STEP_FLOOR_S
            elif gf is None:            # scikit-learn / umap / matching: this CPU's time
                per = s
            else:
                per = max(gf / rate, GPU_STEP_FLOOR_S)
            gsecs += count * per
        notebooks[nb] = {"seconds": secs, "idle_estimate_seconds": isecs,
                         "gpu_extrapolated_seconds": gsecs,
                         "skipped_datasets": skipped, "stages": rows}
        total += secs
        gpu_total += gsecs
        idle_total += isecs
    return {"benchmark": "cost", "profile": get_profile(profile).name, "device": str(device),
            "torch_threads": threads, "analysis_sizes": sizes,
            "predicted_seconds": {nb: round(v["seconds"]) for nb, v in notebooks.items()},
            "predicted_total_seconds": round(total), "predicted_total_hours": round(total / 3600, 2),
            # the same counts x process CPU seconds / threads: the machine without other jobs
            "idle_estimate_seconds": {nb: round(v["idle_estimate_seconds"])
                                      for nb, v in notebooks.items()},
            "idle_estimate_total_seconds": round(idle_total),
            "idle_estimate_total_hours": round(idle_total / 3600, 2),
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "gpu_extrapolation": {
                "assumed": f"one H200: {GPU_PEAK_TFLOPS:.0f} TFLOP/s bf16 dense peak x "
                           f"{GPU_UTILISATION} utilisation, at least {GPU_STEP_FLOOR_S * 1e3:.0f} "
                           f"ms per optimiser step or batch; t-SNE, UMAP, k-means, matching and "
                           f"Mahalanobis at this machine's speed",
                "seconds": {nb: round(v["gpu_extrapolated_seconds"]) for nb, v in notebooks.items()},
                "total_seconds": round(gpu_total), "total_hours": round(gpu_total / 3600, 2)},
            "units": {k: {"seconds": round(s, 4), "idle_estimate_seconds":
                          None if k not in CPU_SECONDS else round(CPU_SECONDS[k], 4),
                          "gflop": None if g is None else round(g, 3)}
                      for k, (s, g) in units.items()},
            "measure_seconds": round(measure_s, 1),
            "notebooks": notebooks}


# Analysis steps' idle-machine seconds (process CPU seconds / threads) measured by
# ``analysis_units`` on this project's 2-core CPU, 2 threads, used by ``cheap_predict``.
REFERENCE_ANALYSIS_SECONDS: dict[str, dict] = {}


def cheap_predict(profile, device="cpu") -> dict:
    """``predict`` with one repetition per training unit and the analysis units taken from
    ``REFERENCE_ANALYSIS_SECONDS`` (idle seconds) times the load factor seen while timing the
    training units here (their wall / CPU seconds): a minute or two instead of several, for
    ``run_all.sh``'s up-front estimate."""
    from .device import resolve_device

    device = str(resolve_device(device))
    name = get_profile(profile).name
    units = training_units(name, device, repeats=1)
    wall = sum(units[k][0] for k in CPU_SECONDS if k in units)
    cpu = sum(CPU_SECONDS[k] for k in CPU_SECONDS if k in units)
    load = max(1.0, wall / cpu) if cpu > 0 and not str(device).startswith("cuda") else 1.0
    ref = REFERENCE_ANALYSIS_SECONDS.get(name)
    if ref is None:   # no reference for this profile: measure the analysis steps here
        units.update(analysis_units(name, device))
        return predict(name, device, units)
    units.update({k: (v * load, None) for k, v in ref.items() if k != "sizes"})
    CPU_SECONDS.update({k: v for k, v in ref.items() if k != "sizes"})
    units["sizes"] = ref["sizes"]
    return predict(name, device, units)


def main(argv=None) -> int:
    """``python -m netinv_core.cost --profile quick [--cheap] [--tsv]``: the prediction as JSON,
    or (``--tsv``) one ``notebook<TAB>seconds`` line per notebook, for run_all.sh."""
    import argparse
    import json

    from .errors import NetinvError

    ap = argparse.ArgumentParser(prog="python -m netinv_core.cost", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--device", default=None)
    ap.add_argument("--cheap", action="store_true",
                    help="one repetition per training unit, reference analysis times")
    ap.add_argument("--tsv", action="store_true")
    args = ap.parse_args(argv)
    try:
        out = (cheap_predict if args.cheap else predict)(args.profile, args.device)
    except NetinvError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.tsv:
        for nb, s in out["predicted_seconds"].items():
            print(f"{nb}\t{s}\t{out['idle_estimate_seconds'][nb]}")
    else:
        out["notebooks"] = {k: {kk: vv for kk, vv in v.items() if kk != "stages"}
                            for k, v in out["notebooks"].items()}
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
