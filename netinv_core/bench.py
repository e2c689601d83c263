"""Benchmarks that print one JSON object each.

    python -m netinv_core.bench inversion --dataset mnist --profile quick [--seed 0] [--cached]

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
    args = parser.parse_args(argv)
    try:
        out = bench_inversion(args.dataset, args.profile, args.seed, args.cached,
                              args.conditioning, args.device)
    except NetinvError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
