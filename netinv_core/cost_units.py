"""Unit costs of the cost model (``netinv_core.cost``), measured on this device.

A few optimiser steps of every kind of training the notebooks run (classifier, inversion,
reconstruction, and the probes' SmallNet; for 1x28x28 and 3x32x32 images) and the classifier
forward / generator sampling per 1000 images, each the median of a few repetitions after one
warm-up with its FLOPs counted by ``FlopCounterMode``; and the analysis steps (t-SNE, UMAP,
clusters, the Gaussian-null calibrated clusters and t-SNE maps of Figure 3's fair test, SAE,
Figure 5's judge metrics, nearest-image matching against the training pool, Mahalanobis) once each at the profile's sizes (``fig3_sizes``). ``CPU_SECONDS`` keeps each unit's process CPU
seconds / torch threads: what it would take on an idle machine.
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import torch

from .config import get_profile

CPU_SECONDS: dict = {}   # unit -> process CPU seconds per call / threads (the idle-machine estimate)


def _time(fn, repeats: int = 3, device="cpu", name=None, min_seconds: float = 1.0,
          max_calls: int = 25) -> float:
    """Median wall seconds of ``fn`` over at least ``repeats`` calls, and more (up to
    ``max_calls``) until ``min_seconds`` were timed, after one warm-up call: a 0.1 s step gets
    about ten samples, so that one slow call of a shared CPU's clock does not move the median.
    The median process CPU seconds / torch threads goes to ``CPU_SECONDS[name]`` (what the call
    would take on an idle machine, where the wall time of a shared machine is inflated by other
    jobs)."""
    fn()
    ts, cs = [], []
    while len(ts) < repeats or (sum(ts) < min_seconds and len(ts) < max_calls):
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()
        t, c = time.perf_counter(), time.process_time()
        fn()
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t)
        cs.append(time.process_time() - c)
    if name:
        CPU_SECONDS[name] = statistics.median(cs) / torch.get_num_threads()
    return statistics.median(ts)


def fig3_sizes(profile, dataset: str | None = None) -> dict:
    """Sizes of Figure 3's analysis for a profile, from ``figure3_dataset``'s defaults (the
    notebook's): ``samples`` inverted samples per generator (10000 at paper size, as issue 14
    asks the cost model to time), ``embed`` t-SNE / UMAP points, the fair test's ``per_generator``
    samples, ``pooled`` = generators x per_generator (t-SNE at each of ``perplexities`` and one
    calibrated clustering with generator groups), ``both`` = real + as many inverted samples (one
    k-means and one t-SNE at the first perplexity), ``n_null`` Gaussian-null draws."""
    import inspect

    from .figure3 import figure3_dataset

    prof = get_profile(profile)
    d = {k: v.default for k, v in inspect.signature(figure3_dataset).parameters.items()}
    n_samples = 10000 if prof.name == "paper" else d["n_samples"]
    per_gen = min(d["fair_per_generator"], n_samples)
    pooled = prof.n_generators * per_gen
    # the real test images of the comparison: n_samples / classes per class, as the test split has
    from .cost_plan import N_TEST
    n_real = n_samples if dataset is None else min(n_samples, N_TEST.get(dataset, n_samples))
    return {"samples": n_samples, "embed": 10000 if prof.name == "paper" else d["embed_samples"],
            "per_generator": per_gen, "pooled": pooled, "both": 2 * min(n_real, pooled),
            "perplexities": tuple(d["fair_perplexities"]), "gammas": tuple(d["fair_gammas"]),
            "sweep_gammas": tuple(d["gammas"]),
            "n_null": d["n_null"]}


def classifier_step(clf, opt, x, y):
    """``step()``: one optimiser step of ``clf`` on the cross-entropy of ``(x, y)`` (the step of
    ``classifier.train_epoch``), for timing."""
    import torch.nn.functional as F

    def step():
        loss = F.cross_entropy(clf(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
    return step


def _flops(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops() / 1e9


def training_units(profile, device="cpu", repeats: int = 3) -> dict:
    """Seconds and GFLOP per optimiser step of each training kind, per image shape."""
    from .classifier import Classifier
    from .figure5 import recon_config
    from .generator import Generator, generate
    from .frozen import channels_last_, inversion_ready
    from .inversion import FeatureTap, inversion_step
    from .ood_experiment import ood_config
    from .ood_rounds import hot_inversion_step
    from .probes import SmallNet
    from .recon_metrics import MLPVerifier, VerifierConfig
    from .reconstruct import PerSampleGradNorm, recon_generator, reconstruction_step

    prof = get_profile(profile)
    units = {}
    for shape in ((1, 28, 28), (3, 32, 32)):
        key = "x".join(map(str, shape))
        torch.manual_seed(0)
        clf = channels_last_(Classifier(shape, 10).to(device))   # as train_classifier lays it out
        opt = torch.optim.Adam(clf.parameters())
        x = torch.rand(128, *shape, device=device)
        y = torch.randint(0, 10, (128,), device=device)
        clf_step = classifier_step(clf, opt, x, y)
        clf.train()
        units[f"classifier_step/{key}"] = (_time(clf_step, repeats, device, f"classifier_step/{key}"),
                                           _flops(clf_step))
        # the probes' LeNet-style SmallNet (independent classifier, students): one Adam step at
        # batch 128 on the soft-label cross-entropy (``probes._train``)
        sn = SmallNet(shape, 10).to(device)
        sopt = torch.optim.Adam(sn.parameters(), lr=1e-3)
        soft = torch.softmax(torch.randn(128, 10, device=device), 1)

        def sn_step():
            loss = -(soft * torch.log_softmax(sn(x), 1)).sum(1).mean()
            sopt.zero_grad(set_to_none=True)
            loss.backward()
            sopt.step()
        units[f"smallnet_step/{key}"] = (_time(sn_step, repeats, device, f"smallnet_step/{key}"),
                                         _flops(sn_step))
        clf.eval()
        xb = torch.rand(1000, *shape, device=device)
        with torch.no_grad(), inversion_ready(clf):   # as every evaluation pass runs it
            fwd = lambda: clf(xb).sum().item()  # noqa: E731
            units[f"forward_1000/{key}"] = (_time(fwd, repeats, device, f"forward_1000/{key}"),
                                                _flops(fwd))

        cfg = prof.generator_config(seed=0)
        gen = Generator(10, shape, cfg).to(device).to(memory_format=torch.channels_last)
        gopt = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        rng = torch.Generator().manual_seed(0)
        tap = FeatureTap(clf)
        with inversion_ready(clf):
            step = lambda: inversion_step(gen, gopt, tap, cfg, rng, device)  # noqa: E731
            units[f"inversion_step/{key}"] = (_time(step, repeats, device, f"inversion_step/{key}"),
                                                  _flops(step))
            sample = lambda: generate(gen, 1000)[0].sum().item()  # noqa: E731
            units[f"generate_1000/{key}"] = (
                _time(sample, repeats, device, f"generate_1000/{key}"), _flops(sample))
            gen.train()
        tap.remove()

        # Section 5.2's rounds: fp32 at lr 1e-3 whatever the profile's generator_speed, an
        # (N+1)-class classifier and generator, hot conditioning in the default variant
        oc = ood_config(prof.ood.train_sets[0], prof, 0)
        clf11 = channels_last_(Classifier(shape, 11).to(device)).eval()
        ogen = Generator(11, shape, oc.generator).to(device).to(memory_format=torch.channels_last)
        oopt = torch.optim.Adam(ogen.parameters(), lr=oc.generator.lr, betas=(0.5, 0.999))
        ostep_fn = hot_inversion_step if oc.hot_conditioning else inversion_step
        tap = FeatureTap(clf11)
        with inversion_ready(clf11):
            ostep = lambda: ostep_fn(ogen, oopt, tap, oc.generator, rng, device)  # noqa: E731
            units[f"ood_inversion_step/{key}"] = (
                _time(ostep, repeats, device, f"ood_inversion_step/{key}"), _flops(ostep))
        tap.remove()

        # Figure 5's verifier: the MLP judge's Adam step at its batch (VerifierConfig)
        vc = VerifierConfig(dataset="", attacked_train_size=None)
        ver = MLPVerifier(shape, 10, vc.hidden, vc.dropout).to(device).train()
        vopt = torch.optim.Adam(ver.parameters(), lr=vc.lr)
        vx = torch.rand(vc.batch_size, *shape, device=device)
        vy = torch.randint(0, 10, (vc.batch_size,), device=device)
        vstep = classifier_step(ver, vopt, vx, vy)
        units[f"verifier_step/{key}"] = (_time(vstep, repeats, device, f"verifier_step/{key}"),
                                         _flops(vstep))

        rcfg = recon_config(prof.name, 0)
        rgen = recon_generator(10, shape, rcfg).to(device)
        ropt = torch.optim.Adam(rgen.parameters(), lr=rcfg.lr, betas=(0.5, 0.999))
        tap = FeatureTap(clf)
        gn = PerSampleGradNorm(clf) if rcfg.weights.eta3 > 0 else None
        with inversion_ready(clf, fold=False):
            rstep = lambda: reconstruction_step(rgen, ropt, tap, rcfg, gn, rng, device)  # noqa: E731
            units[f"reconstruction_step/{key}"] = (
                _time(rstep, max(1, repeats - 1), device, f"reconstruction_step/{key}"),
                _flops(rstep))
        tap.remove()
    return units


def analysis_units(profile, device="cpu") -> dict:
    """Seconds of the analysis steps at the sizes the profile's notebooks use (one run each)."""
    from .interpret import (calibrated_clusters, clusters_per_class, embed_tsne, embed_umap,
                            mixed_cluster_share, train_sae)
    from .ood import Mahalanobis
    from .probes import nearest_distance

    prof = get_profile(profile)
    paper, smoke = prof.name == "paper", prof.name == "smoke"
    sz = fig3_sizes(prof, prof.datasets[0])
    n_embed = sz["embed"]                    # t-SNE / UMAP points (issue 14: paper size 10000)
    n_samples = sz["samples"]                # inverted samples analysed per generator
    n_pool = 1257 if smoke else 60000        # training images: SAE features, matching pool
    rng = np.random.default_rng(0)
    # features with class structure, like the classifier's penultimate features
    centers = rng.normal(size=(10, 128)).astype(np.float32)
    labels = np.arange(max(n_samples, n_embed, sz["pooled"], sz["both"])) % 10
    feats = (centers[labels] + rng.normal(size=(len(labels), 128))).astype(np.float32)
    units = {}

    def timed(name, fn):
        t, c = time.perf_counter(), time.process_time()
        fn()
        units[name] = (time.perf_counter() - t, None)
        CPU_SECONDS[name] = (time.process_time() - c) / torch.get_num_threads()
        if time.perf_counter() - t > 60:
            print(f"[cost] warning: {name} took {time.perf_counter() - t:.0f} s (> 60 s)",
                  file=sys.stderr)

    timed("tsne", lambda: embed_tsne(feats[:n_embed]))
    # numba compiles UMAP's kernels (and pynndescent's, used from 4096 points on) in the first
    # fit of a process; not cached on disk. Idle, 10000 points: 48 s first fit, 18 s the next.
    # The one-off compilation is the first fit's excess over the second.
    timed("umap_first", lambda: embed_umap(feats[:n_embed]))
    timed("umap", lambda: embed_umap(feats[:n_embed]))
    first = units.pop("umap_first")[0]
    units["umap_compile"] = (max(first - units["umap"][0], 0.0), None)
    CPU_SECONDS["umap_compile"] = max(CPU_SECONDS.pop("umap_first") - CPU_SECONDS["umap"], 0.0)
    timed("clusters", lambda: clusters_per_class(feats[:n_samples], labels[:n_samples]))
    # Figure 3's fair test: the Gaussian-null calibrated rule on one generator's per_generator
    # samples (also the gamma sweep's, the layer comparison's, the real and the merged-pair
    # control's), on the pooled generators with their ids as groups; t-SNE maps of the pool at
    # each perplexity and of real + inverted; k-means of real + inverted (k = 2 x classes)
    k, pooled, both = sz["per_generator"], sz["pooled"], sz["both"]
    groups = np.arange(pooled) // max(k, 1)
    timed("calibrated", lambda: calibrated_clusters(feats[:k], labels[:k], n_null=sz["n_null"]))
    timed("calibrated_pooled", lambda: calibrated_clusters(feats[:pooled], labels[:pooled], groups,
                                                           n_null=sz["n_null"]))
    for perp in sz["perplexities"]:
        if pooled > 3 * perp:
            timed(f"tsne_pooled/{perp:g}", lambda: embed_tsne(feats[:pooled], perplexity=perp))
    perp0 = sz["perplexities"][0] if sz["perplexities"] else 30.0
    if both > 3 * perp0:
        timed("tsne_both", lambda: embed_tsne(feats[:both], perplexity=perp0))
    timed("mixed_share", lambda: mixed_cluster_share(feats[:both], np.arange(both) % 2, k=20))
    train_feats = np.maximum(rng.normal(size=(n_pool, 128)), 0).astype(np.float32)
    timed("sae_1_epoch", lambda: train_sae(train_feats, epochs=1))
    # Figure 5's judge (recon_metrics.image_metrics: label, verifier and 1-NN accuracy, the
    # per-class nearest training / held-out image by NCC, SSIM of the matches, the permutation
    # test) on n_per_class x classes images, for each training-set size of the first dataset
    # (its pools differ); random attacked classifier and verifier: the time does not depend on
    # their weights
    from .classifier import Classifier
    from .errors import DataUnavailableError
    from .figure5 import TRAIN_SIZES
    from .ood_experiment import MAHALANOBIS_FIT
    from .recon_metrics import MLPVerifier, image_metrics, judging_data, make_pools

    n_rec = prof.recon.n_per_class * 10
    n_test = 540 if smoke else 10000
    g = torch.Generator().manual_seed(0)
    for ds in prof.recon.datasets:
        for size in TRAIN_SIZES[ds]:
            if f"judge_metrics/{size}" in units:
                continue
            try:
                data = judging_data(ds, size)
            except DataUnavailableError:
                break      # the plan skips Figure 5's datasets without files
            pools, shape = make_pools(data), tuple(data.train_x.shape[1:])
            att = Classifier(shape, data.num_classes).eval()
            ver = MLPVerifier(shape, data.num_classes).eval()
            rec = torch.rand(n_rec, *shape, generator=g)
            rec_y = torch.arange(n_rec) % data.num_classes
            run = lambda k=n_rec: image_metrics(rec[:k], rec_y[:k], data, pools,  # noqa: E731
                                                attacked=att, verifier=ver, with_matches=True)
            run(20)    # warm-up: the first call imports torchmetrics (about 2 s)
            timed(f"judge_metrics/{size}", run)
    # Figure 2's probe: the nearest training image of 500 samples (figure2_probes' n_nearest)
    # against the whole training pool
    tr_x = torch.rand(n_pool, 1, 28, 28, generator=g)
    near = torch.rand(500, 1, 28, 28, generator=g)
    timed("nearest_500", lambda: nearest_distance(near, tr_x))
    # OOD evaluation beyond forward passes: Mahalanobis fit on the training features + scoring
    # the test set and up to three OOD test sets
    f_tr, y_tr = torch.from_numpy(train_feats), torch.arange(n_pool) % 10
    timed("mahalanobis", lambda: Mahalanobis(f_tr[:MAHALANOBIS_FIT], y_tr[:MAHALANOBIS_FIT])(
        f_tr[:4 * n_test]))
    units["sizes"] = {"embed": n_embed, "samples": n_samples, "pool": n_pool, "test": n_test,
                      "reconstructions": n_rec, "fair_pooled": pooled, "fair_both": both}
    return units
