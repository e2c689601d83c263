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

``inversion``: trains (or loads from the cache) the profile's classifier, trains one generator
afresh (``--cached`` reuses a cached one) and prints its classifier test accuracy, inversion
accuracy, diversity numbers, ``generator_seconds`` (wall time of generator training alone),
device and torch thread count. Data come from ``$NETINV_DATA``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import torch

from .config import CONDITIONINGS, DATASETS, PROFILES, get_profile
from .errors import NetinvError


def bench_inversion(dataset: str, profile: str, seed: int = 0, cached: bool = False,
                    conditioning: str | None = None, device=None) -> dict:
    from .pipeline import classifier_config, default_device, get_classifier, get_generator

    device = device or default_device()
    prof = get_profile(profile)
    t0 = time.perf_counter()
    clf = get_classifier(classifier_config(dataset, prof), device=device, progress=False)
    cfg = prof.generator_config(seed=seed)
    if conditioning:
        cfg = replace(cfg, conditioning=conditioning)
    gen = get_generator(clf, cfg, device=device, progress=False, retrain=not cached,
                        checkpoint_every=prof.checkpoint_every, eval_samples=prof.eval_samples)
    m = gen.metrics
    return {
        "benchmark": "inversion", "dataset": dataset, "profile": profile, "seed": seed,
        "conditioning": cfg.conditioning, "weights": vars(cfg.weights),
        "classifier_test_accuracy": clf.metrics["test_accuracy"],
        "inversion_accuracy": m["inversion_accuracy"],
        "feature_cosine_inverted": m["feature_cosine_inverted"],
        "feature_cosine_real": m["feature_cosine_real"],
        "pixel_spread_inverted": m["pixel_spread_inverted"],
        "pixel_spread_real": m["pixel_spread_real"],
        "generator_seconds": m["generator_seconds"], "generator_steps": cfg.steps,
        "generator_batch": cfg.batch_size, "eval_samples": m["n_samples"],
        "device": torch.cuda.get_device_name(0) if str(device).startswith("cuda") else "cpu",
        "torch_threads": torch.get_num_threads(),
        "total_seconds": time.perf_counter() - t0,
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
    inv.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    inv.add_argument("--seed", type=int, default=0)
    inv.add_argument("--conditioning", choices=CONDITIONINGS, default=None)
    inv.add_argument("--cached", action="store_true", help="reuse a cached generator")
    inv.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    itp = sub.add_parser("interpret", help="Figure 3 numbers: clusters, boundary faithfulness, SAE, "
                                          "gamma sweep")
    itp.add_argument("--dataset", required=True, choices=DATASETS)
    itp.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    itp.add_argument("--device", default=None)
    abl = sub.add_parser("ablation", help="conditioning / dropout / loss-term ablation over seeds")
    abl.add_argument("--dataset", required=True, choices=DATASETS)
    abl.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    abl.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    abl.add_argument("--device", default=None)
    ood = sub.add_parser("ood", help="garbage-class OOD detection vs MSP / energy / Mahalanobis")
    ood.add_argument("--train", required=True, choices=DATASETS)
    ood.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    ood.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ood.add_argument("--device", default=None)
    rec = sub.add_parser("reconstruction", help="training-like data reconstruction vs a held-out "
                                                "control, and the step-time ratio")
    rec.add_argument("--dataset", required=True, choices=DATASETS)
    rec.add_argument("--train-size", type=int, required=True)
    rec.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    rec.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    try:
        from .device import resolve_device
        args.device = str(resolve_device(args.device))  # a wrong --device fails before training
        if args.benchmark == "ood":
            out = bench_ood(args.train, args.profile, args.seeds, args.device)
        elif args.benchmark == "reconstruction":
            out = bench_reconstruction(args.dataset, args.train_size, args.profile, args.device)
        elif args.benchmark == "ablation":
            out = bench_ablation(args.dataset, args.profile, args.seeds, args.device)
        elif args.benchmark == "interpret":
            out = bench_interpret(args.dataset, args.profile, device=args.device)
        else:
            out = bench_inversion(args.dataset, args.profile, args.seed, args.cached,
                                  args.conditioning, args.device)
    except NetinvError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from .results import jsonable
    print(json.dumps(jsonable(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
