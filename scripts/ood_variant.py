"""One garbage-class variant for one seed, compared in the README's OOD section (quick profile).

    NETINV_DATA=../shared/data python scripts/ood_variant.py mnist 0 uncertain3

Variants: default | more (6000 inverted samples and 300 inversion steps per epoch) |
uncertain3 (selection="uncertain", candidates=3) | epochsN (N classifier epochs, e.g. epochs10).
Prints one JSON object: in-distribution accuracy, per OOD set the garbage rate, AUROC and FPR95 of
the garbage score, the training history and the wall time. Trained models go to the usual cache.
"""
import argparse
import json
import re
import time
from dataclasses import replace

from netinv_core.ood_experiment import capped_config, run_ood


def adjust(cfg, variant: str):
    """The garbage-class config of ``variant``, from the profile's ``cfg``."""
    if variant == "default":
        return cfg
    if variant == "more":
        return replace(cfg, inverted_per_epoch=6000, generator=replace(cfg.generator, steps=300))
    if variant == "uncertain3":
        return replace(cfg, selection="uncertain", candidates=3)
    if variant.startswith("epochs") and variant[6:].isdigit():
        return replace(cfg, classifier=replace(cfg.classifier, epochs=int(variant[6:])))
    raise ValueError(f"unknown variant {variant!r}; choose default, more, uncertain3 or epochsN")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("train")
    ap.add_argument("seed", type=int)
    ap.add_argument("variant")
    args = ap.parse_args()
    if not re.fullmatch(r"default|more|uncertain3|epochs\d+", args.variant):  # before any training
        ap.error(f"unknown variant {args.variant!r}; choose default, more, uncertain3 or epochsN")
    t = time.time()
    # the variants change the first table's configuration (capped), not today's default
    res = run_ood(args.train, "quick", seeds=(args.seed,), progress=False, base=capped_config,
                  adjust=lambda cfg: adjust(cfg, args.variant))
    r = res["per_seed"][0]
    print(json.dumps({
        "train": args.train, "seed": args.seed, "variant": args.variant,
        "in_distribution_accuracy": r["in_distribution_accuracy"],
        "ood": {k: {"garbage_rate": v["garbage_rate"], "auroc": v["methods"]["garbage"]["auroc"],
                    "fpr95": v["methods"]["garbage"]["fpr95"]} for k, v in r["ood"].items()},
        "history": res["histories"][0], "seconds": time.time() - t}))


if __name__ == "__main__":
    main()
