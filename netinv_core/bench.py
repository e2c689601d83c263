"""Benchmarks that print one JSON object each.

    python -m netinv_core.bench inversion --dataset mnist --profile quick [--seed 0] [--cached]

``interpret``: the Figure 3 numbers (``netinv_core.figure3``) for the profile's seed-0 generator:
clusters per class, PCA boundary faithfulness, sparse-autoencoder numbers and the gamma sweep.

    python -m netinv_core.bench interpret --dataset mnist --profile quick

``ablation``: every conditioning scheme, dropout value and loss term switched off, for each seed
(``netinv_core.ablation``): per-seed rows and mean ± std per setting.

    python -m netinv_core.bench ablation --dataset mnist --profile quick --seeds 0 1 2

``ood``: the garbage-class classifier for ``--train`` (Section 5.2) over seeds, evaluated on every
other available dataset: in-distribution accuracy, garbage rate per OOD set, AUROC / FPR95 of the
garbage score and the MSP / energy / Mahalanobis baselines (mean ± std), and the wall time.

    python -m netinv_core.bench ood --train mnist --profile quick --seeds 0 1 2

``reconstruction``: Section 5.3 for one training-set size (``netinv_core.recon_metrics``):
label_accuracy (attacked classifier), verifier_accuracy (an independent MLP judge) and nn_accuracy
(1-NN by NCC), ncc_train / ncc_test and SSIM to the nearest training / held-out image, train_closer
with its permutation p-value, all pooled over the generators and per generator, the same for plain
inversion and for the baselines all_black / class_mean / wrong_class / noise / real_test, and
step_time_ratio (a reconstruction step with the per-sample gradient-norm term over an inversion
step at the same batch size, on the same classifier).

    python -m netinv_core.bench reconstruction --dataset mnist --train-size 1000 --profile quick

``cost``: predicted seconds per notebook of ``run_all.sh`` for a profile on this device, from a
few measured steps of every stage and the analysis steps at the profile's sizes
(``netinv_core.cost``), and a GPU extrapolation from the counted FLOPs.

    python -m netinv_core.bench cost --profile paper

``inversion``: trains (or loads from the cache) the profile's classifier, trains one generator
afresh (``--cached`` reuses a cached one) and prints its classifier test accuracy, inversion
accuracy, diversity numbers, ``generator_seconds`` (wall time of generator training alone),
device and torch thread count. Data come from ``$NETINV_DATA``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace

import torch

from .config import (AUGMENTATIONS, CONDITIONINGS, DATASETS, DEFAULT_PROFILE, OPTIMIZERS,
                     PRECISIONS, PROFILES, get_profile)
from .device import resolve_device
from .errors import NetinvError


def matmul_gflops(device="cpu", n: int = 2048, repeats: int = 5, dtype=torch.float32) -> float:
    """The machine's own dense matmul rate: 2 n^3 / (median seconds of an n x n @ n x n
    product), in GFLOP/s, on ``device`` with the current torch threads."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for i in range(repeats + 1):
        _sync(device)
        t = time.perf_counter()
        a @ b
        _sync(device)
        if i:
            times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def _sync(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def step_gflop(classifier, gen, cfg, device="cpu") -> float:
    """GFLOP of one inversion step (forward, backward, Adam) counted by
    ``torch.utils.flop_counter.FlopCounterMode`` on a copy of ``gen`` (``gen`` is untouched)."""
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    from .inversion import FeatureTap, frozen, inversion_step

    g = copy.deepcopy(gen).train()
    opt = torch.optim.Adam(g.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    tap = FeatureTap(classifier)
    with frozen(classifier), FlopCounterMode(display=False) as fc:
        inversion_step(g, opt, tap, cfg, torch.Generator().manual_seed(0), device)
    tap.remove()
    return fc.get_total_flops() / 1e9


def bench_inversion(dataset: str, profile: str, seed: int = 0, cached: bool = False,
                    conditioning: str | None = None, device=None, precision: str | None = None,
                    stop_at: float | None = None, lr: float | None = None,
                    warmup: int | None = None) -> dict:
    """Train one generator and report accuracy, diversity and speed.

    ``seconds_to_95``: wall seconds of generator training until the 20-step mean batch accuracy
    first reaches 0.95 (``inversion.seconds_to_accuracy``); ``inversion_accuracy`` on fresh
    samples confirms it (with ``stop_at=0.95`` training stops there, so the fresh samples judge
    the generator at that point). ``step_seconds``: median wall seconds per step;
    ``step_gflop``: counted FLOPs of one step; ``flop_utilisation`` = step_gflop / step_seconds /
    ``matmul_gflops`` (fp32 2048^3 matmul rate, same device and threads, measured here).
    """
    from .inversion import seconds_to_accuracy, steps_to_accuracy
    from .pipeline import classifier_config, get_classifier, get_generator

    device = str(resolve_device(device))
    prof = get_profile(profile)
    t0 = time.perf_counter()
    clf = get_classifier(classifier_config(dataset, prof), device=device, progress=False)
    cfg = prof.generator_config(seed=seed)
    over = {k: v for k, v in dict(conditioning=conditioning, precision=precision,
                                   stop_at_accuracy=stop_at, lr=lr,
                                   lr_warmup_steps=warmup).items() if v is not None}
    if stop_at == 0:          # the whole budget, whatever the profile's early stop
        over["stop_at_accuracy"] = None
    cfg = replace(cfg, **over)
    gen = get_generator(clf, cfg, device=device, progress=False, retrain=not cached,
                        checkpoint_every=prof.checkpoint_every, eval_samples=prof.eval_samples)
    m, hist = gen.metrics, gen.history
    wall = hist.get("wall") or []
    steps_done = len(hist["batch_accuracy"])
    step_s = (statistics.median(b - a for a, b in zip([0.0] + wall[:-1], wall))
              if wall else m["generator_seconds"] / max(steps_done, 1))
    gflop = step_gflop(clf.model, gen.model, cfg, device)
    mm = matmul_gflops(device)
    mm_bf16 = matmul_gflops(device, dtype=torch.bfloat16) if cfg.precision == "bf16" else None
    return {
        "benchmark": "inversion", "dataset": dataset, "profile": profile, "seed": seed,
        "conditioning": cfg.conditioning, "weights": vars(cfg.weights),
        "precision": cfg.precision, "lr": cfg.lr, "stop_at_accuracy": cfg.stop_at_accuracy,
        "lr_warmup_steps": cfg.lr_warmup_steps,
        "classifier_test_accuracy": clf.metrics["test_accuracy"],
        "inversion_accuracy": m["inversion_accuracy"],
        "feature_cosine_inverted": m["feature_cosine_inverted"],
        "feature_cosine_real": m["feature_cosine_real"],
        "pixel_spread_inverted": m["pixel_spread_inverted"],
        "pixel_spread_real": m["pixel_spread_real"],
        "steps_to_95": steps_to_accuracy(hist["batch_accuracy"]),
        "seconds_to_95": seconds_to_accuracy(hist),
        "step_seconds": step_s, "step_gflop": gflop, "matmul_gflops": mm,
        "matmul_gflops_bf16": mm_bf16,
        "flop_utilisation": gflop / step_s / mm,
        "generator_seconds": m["generator_seconds"], "generator_steps": steps_done,
        "generator_steps_budget": cfg.steps,
        "generator_batch": cfg.batch_size, "eval_samples": m["n_samples"],
        "device": _device_name(device), "torch_threads": torch.get_num_threads(),
        "cached": cached, "total_seconds": time.perf_counter() - t0,
    }


def bench_interpret(dataset: str, profile: str, train_missing: bool = True, device=None) -> dict:
    from .figure3 import figure3_dataset
    from .pipeline import default_device

    device = device or default_device()
    t0 = time.perf_counter()
    prof = get_profile(profile)
    kw = dict(n_samples=1000, embed_samples=200, gammas=(0.0, 10.0), sae_epochs=2) if profile == "smoke" else {}
    rec = figure3_dataset(dataset, prof, train_missing=train_missing, device=device,
                          progress=False, **kw)["record"]
    return {"benchmark": "interpret", **rec, "seconds": time.perf_counter() - t0,
            "device": torch.cuda.get_device_name(0) if str(device).startswith("cuda") else "cpu",
            "torch_threads": torch.get_num_threads()}


def bench_ablation(dataset: str, profile: str, seeds=(0, 1, 2), device=None) -> dict:
    from .ablation import run_ablation, summarize
    from .pipeline import default_device

    device = device or default_device()
    t0 = time.perf_counter()
    res = run_ablation(dataset, profile, seeds=tuple(seeds), device=device, progress=False)
    return {"benchmark": "ablation", "dataset": dataset, "profile": profile, "seeds": list(seeds),
            "classifier_test_accuracy": res["classifier_test_accuracy"],
            "summary": summarize(res["rows"]), "rows": res["rows"],
            "seconds": time.perf_counter() - t0,
            "device": torch.cuda.get_device_name(0) if str(device).startswith("cuda") else "cpu",
            "torch_threads": torch.get_num_threads()}


def _device_name(device) -> str:
    return torch.cuda.get_device_name(0) if str(device).startswith("cuda") else "cpu"


CLASSIFIER_OVERRIDES = ("epochs", "augment", "optimizer", "lr", "weight_decay", "dropout",
                        "label_smoothing")


def bench_classifier(dataset: str, profile: str, seed: int = 0, device=None, **override) -> dict:
    """The profile's classifier for ``dataset`` with the ``ClassifierConfig`` fields in
    ``override`` replaced where not None (e.g. the CIFAR-10 backbone of issue 12): trained
    (resumable) or loaded from the cache; its test accuracy and training cost."""
    from .config import classifier_config, to_dict
    from .pipeline import default_device, get_classifier

    device = device or default_device()
    over = {k: v for k, v in override.items() if v is not None}
    cfg = classifier_config(dataset, profile, seed=seed, **over)
    t0 = time.perf_counter()
    clf = get_classifier(cfg, device=device, progress=False)
    return {"benchmark": "classifier", "dataset": dataset, "profile": profile,
            "config": to_dict(cfg), "test_accuracy": clf.metrics.get("test_accuracy"),
            "train_seconds": clf.metrics.get("train_seconds"),
            "train_accuracy_per_epoch": (clf.history or {}).get("train_accuracy"),
            "seconds": time.perf_counter() - t0, "device": _device_name(device),
            "torch_threads": torch.get_num_threads()}


def bench_ood(train: str, profile: str, seeds=(0, 1, 2), device=None) -> dict:
    from .ood_experiment import run_ood
    from .pipeline import default_device

    device = device or default_device()
    t0 = time.perf_counter()
    res = run_ood(train, profile, seeds=tuple(seeds), device=device, progress=False)
    s = res["summary"]
    return {"benchmark": "ood", "train": train, "profile": profile, "seeds": list(seeds),
            "in_distribution_accuracy": s["in_distribution_accuracy"],
            "baseline_accuracy": s["baseline_accuracy"],
            "least_confident_in_distribution": s["least_confident_in_distribution"],
            "garbage_rate": {k: v["garbage_rate"] for k, v in s["ood"].items()},
            "most_confident_misclassified_ood": {k: v["most_confident_misclassified_ood"]
                                                 for k, v in s["ood"].items()},
            "clear_threshold_seeds": {k: v["clear_threshold_seeds"] for k, v in s["ood"].items()},
            "auroc": {k: {m: v["methods"][m]["auroc"] for m in v["methods"]}
                      for k, v in s["ood"].items()},
            "fpr95": {k: {m: v["methods"][m]["fpr95"] for m in v["methods"]}
                      for k, v in s["ood"].items()},
            "skipped": {k: v.splitlines()[0] for k, v in res["skipped"].items()},
            "seconds": time.perf_counter() - t0, "device": _device_name(device),
            "torch_threads": torch.get_num_threads()}


def bench_reconstruction(dataset: str, train_size: int, profile: str, device=None) -> dict:
    from .pipeline import default_device
    from .figure5 import reconstruction_experiment, step_time_ratio, strip_record

    device = device or default_device()
    t0 = time.perf_counter()
    rec = strip_record(reconstruction_experiment(dataset, train_size, profile, device=device,
                                                 progress=False))
    ratio = step_time_ratio(dataset, profile, device=device, train_size=train_size)
    return {"benchmark": "reconstruction", **rec, "step_time": ratio,
            "step_time_ratio": ratio["ratio_reconstruction_to_inversion"],
            "seconds": time.perf_counter() - t0, "device": _device_name(device),
            "torch_threads": torch.get_num_threads()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netinv_core.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    inv = sub.add_parser("inversion", help="classifier + one generator: accuracy, diversity, time")
    inv.add_argument("--dataset", required=True, choices=DATASETS)
    inv.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    inv.add_argument("--seed", type=int, default=0)
    inv.add_argument("--conditioning", choices=CONDITIONINGS, default=None)
    inv.add_argument("--cached", action="store_true", help="reuse a cached generator")
    inv.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda "
                     "if available)")
    inv.add_argument("--precision", choices=PRECISIONS, default=None,
                     help="bf16: forward passes under bf16 autocast (default: the profile's)")
    inv.add_argument("--stop-at", type=float, default=None,
                     help="stop training once the 20-step mean batch accuracy reaches this "
                     "(default: the profile's; 0: train the whole budget)")
    inv.add_argument("--lr", type=float, default=None,
                     help="generator learning rate (default: the profile's)")
    inv.add_argument("--warmup", type=int, default=None,
                     help="linear learning-rate warm-up over this many steps (opt-in; default none)")
    inv.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    itp = sub.add_parser("interpret", help="Figure 3 numbers: clusters, boundary faithfulness, SAE, "
                                          "gamma sweep")
    itp.add_argument("--dataset", required=True, choices=DATASETS)
    itp.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    itp.add_argument("--device", default=None)
    abl = sub.add_parser("ablation", help="conditioning / dropout / loss-term ablation over seeds")
    abl.add_argument("--dataset", required=True, choices=DATASETS)
    abl.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    abl.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    abl.add_argument("--device", default=None)
    clf = sub.add_parser("classifier", help="one classifier (cached): test accuracy and cost, "
                                            "with optional training overrides")
    clf.add_argument("--dataset", required=True, choices=DATASETS)
    clf.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    clf.add_argument("--seed", type=int, default=0)
    clf.add_argument("--epochs", type=int, default=None, help="default: the profile's")
    clf.add_argument("--augment", choices=AUGMENTATIONS, default=None,
                     help="training-time augmentation (default: the profile's, none)")
    clf.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                     help="adam (default; cosine LR per epoch) or sgd (Nesterov, one-cycle LR)")
    for name in ("lr", "weight_decay", "dropout", "label_smoothing"):
        clf.add_argument("--" + name.replace("_", "-"), type=float, default=None,
                         help="default: the profile's")
    clf.add_argument("--device", default=None)
    clf.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ood = sub.add_parser("ood", help="garbage-class OOD detection vs MSP / energy / Mahalanobis")
    ood.add_argument("--train", required=True, choices=DATASETS)
    ood.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    ood.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ood.add_argument("--device", default=None)
    rec = sub.add_parser("reconstruction", help="training-like data reconstruction vs a held-out "
                                                "control, and the step-time ratio")
    rec.add_argument("--dataset", required=True, choices=DATASETS)
    rec.add_argument("--train-size", type=int, required=True)
    rec.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES))
    rec.add_argument("--device", default=None)
    cst = sub.add_parser("cost", help="predicted seconds per notebook of run_all.sh for a profile "
                                      "on this device (netinv_core.cost)")
    cst.add_argument("--profile", default="paper", choices=sorted(PROFILES))
    cst.add_argument("--device", default=None)
    cst.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    cst.add_argument("--stages", action="store_true", help="also print every stage's count")
    args = parser.parse_args(argv)
    try:
        from .device import resolve_device
        args.device = str(resolve_device(args.device))  # a wrong --device fails before training
        if args.benchmark == "cost":
            from .cost import predict
            if args.threads:
                torch.set_num_threads(args.threads)
            out = predict(args.profile, args.device)
            if not args.stages:
                out["notebooks"] = {k: {kk: vv for kk, vv in v.items() if kk != "stages"}
                                    for k, v in out["notebooks"].items()}
        elif args.benchmark == "classifier":
            if args.threads:
                torch.set_num_threads(args.threads)
            out = bench_classifier(args.dataset, args.profile, args.seed, args.device,
                                   **{k: getattr(args, k) for k in CLASSIFIER_OVERRIDES})
        elif args.benchmark == "ood":
            out = bench_ood(args.train, args.profile, args.seeds, args.device)
        elif args.benchmark == "reconstruction":
            out = bench_reconstruction(args.dataset, args.train_size, args.profile, args.device)
        elif args.benchmark == "ablation":
            out = bench_ablation(args.dataset, args.profile, args.seeds, args.device)
        elif args.benchmark == "interpret":
            out = bench_interpret(args.dataset, args.profile, device=args.device)
        else:
            if args.threads:
                torch.set_num_threads(args.threads)
            out = bench_inversion(args.dataset, args.profile, args.seed, args.cached,
                                  args.conditioning, args.device, args.precision, args.stop_at,
                                  args.lr, args.warmup)
    except NetinvError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from .results import jsonable
    print(json.dumps(jsonable(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
