"""Measure the speed levers of issue 14, each against the same classifier in one process.

    NETINV_DATA=../shared/data python scripts/speed_levers.py [--threads 2] [--steps 500]
        [--levers old,new,bf16,bf16_lr2e-3] [--stop-at 0.95] [--classifier PATH]

For each lever a generator (quick profile: batch 128, width 64, seed 0, vector-matrix) is trained
until the 20-step mean batch accuracy reaches ``--stop-at`` (or ``--steps``), then judged on 2000
fresh samples (``metrics.inversion_report``). Prints one JSON line per lever: median step seconds,
steps and seconds to 95%, inversion accuracy, feature cosine inverted / real. ``old`` is the code
before issue 14 (``nn.Dropout``'s bernoulli masks, contiguous layout, fp32); ``new`` is the
current default (rand-mask dropout, channels-last). ``--classifier`` may name a (partial)
classifier checkpoint to use instead of the cached quick-profile one.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace

import torch
import torch.nn as nn

from netinv_core.config import get_profile
from netinv_core.data import IMAGE_SHAPES, load_dataset
from netinv_core.generator import Generator
from netinv_core.inversion import (FeatureTap, fit_generator, inversion_step, seconds_to_accuracy,
                                   steps_to_accuracy)
from netinv_core.losses import inversion_loss
from netinv_core.metrics import inversion_report

LEVERS = {  # name: (layout, dropout, GeneratorConfig overrides, fused adam)
    "old": ("contiguous", "bernoulli", {}, False),
    "new": ("channels_last", "rand", {}, False),
    "new_fused_adam": ("channels_last", "rand", {}, True),
    "channels_last_only": ("channels_last", "bernoulli", {}, False),
    "rand_dropout_only": ("contiguous", "rand", {}, False),
    "bf16": ("channels_last", "rand", {"precision": "bf16"}, False),
    "lr2e-3": ("channels_last", "rand", {"lr": 2e-3}, False),
    "bf16_lr2e-3": ("channels_last", "rand", {"precision": "bf16", "lr": 2e-3}, False),
    "bf16_lr3e-3": ("channels_last", "rand", {"precision": "bf16", "lr": 3e-3}, False),
}


def old_step(gen, opt, tap, cfg, rng):
    """inversion_step as it was before issue 14 (fp32, contiguous, per-step .item())."""
    from netinv_core.generator import sample_conditioning
    cond = sample_conditioning(cfg.conditioning, cfg.batch_size, gen.num_classes, generator=rng)
    z = torch.randn(cfg.batch_size, cfg.latent_dim, generator=rng)
    x = gen(z, cond)
    logits, feats = tap(x)
    loss, terms = inversion_loss(logits, feats, cond.p, cond.labels, cfg.weights)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.item(), **{k: v.item() for k, v in terms.items()},
            "batch_accuracy": (logits.argmax(1) == cond.labels).float().mean().item()}


def time_interleaved(runs: dict, flop_arm: str, rounds: int, steps: int, warm: int = 1) -> float:
    """Time the arms of ``runs`` (name -> (step function, list of seconds)) in turn, ``rounds``
    times ``steps`` steps each, appending the mean step seconds of each round to the arm's list
    (so that machine load hits every arm alike); returns the GFLOP of one step of ``flop_arm``,
    counted by ``FlopCounterMode``. Call inside the classifier's frozen context."""
    from torch.utils.flop_counter import FlopCounterMode
    for fn, _ in runs.values():
        for _ in range(warm):
            fn()
    with FlopCounterMode(display=False) as fc:
        runs[flop_arm][0]()
    for _ in range(rounds):
        for fn, ts in runs.values():
            t = time.perf_counter()
            for _ in range(steps):
                fn()
            ts.append((time.perf_counter() - t) / steps)
    return fc.get_total_flops() / 1e9


def lever_generator(num_classes, image_shape, cfg, seed, bernoulli, channels_last):
    """A generator seeded with `seed`, with the old `nn.Dropout` (bernoulli_ masks) put back when
    `bernoulli`, and channels-last weights when `channels_last` (the levers both scripts compare)."""
    torch.manual_seed(seed)
    gen = Generator(num_classes, image_shape, cfg)
    if bernoulli:
        for parent in gen.modules():
            for k, m in parent.named_children():
                if isinstance(m, nn.Dropout):
                    setattr(parent, k, nn.Dropout(m.p))
    return gen.to(memory_format=torch.channels_last) if channels_last else gen


def run(name, clf, test, base_cfg, steps, stop_at):
    layout, dropout, over, fused = LEVERS[name]
    cfg = replace(base_cfg, steps=steps, **over)
    gen = lever_generator(clf.num_classes, IMAGE_SHAPES["mnist"], cfg, cfg.seed,
                          bernoulli=dropout == "bernoulli", channels_last=layout == "channels_last")
    opt = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(0.5, 0.999), fused=fused or None)
    rng = torch.Generator().manual_seed(cfg.seed)
    tap = FeatureTap(clf)
    fn = ((lambda: old_step(gen, opt, tap, cfg, rng)) if name == "old" else
          (lambda: inversion_step(gen, opt, tap, cfg, rng, "cpu", sync=False)))
    hist = fit_generator(gen, opt, rng, fn, cfg.steps, classifier=clf,
                         keys=("loss", "kl", "ce", "cosine", "ortho", "batch_accuracy"),
                         kind="x", meta={}, progress=False, stop_at=stop_at)
    tap.remove()
    wall = hist["wall"]
    step_s = statistics.median(b - a for a, b in zip([0.0] + wall[:-1], wall))
    rep = inversion_report(clf, gen, test, n=2000)
    return {"lever": name, "step_seconds": round(step_s, 4), "steps": len(wall),
            "steps_to_95": steps_to_accuracy(hist["batch_accuracy"]),
            "seconds_to_95": seconds_to_accuracy(hist),
            "inversion_accuracy": rep["inversion_accuracy"],
            "feature_cosine_inverted": round(rep["feature_cosine_inverted"], 4),
            "feature_cosine_real": round(rep["feature_cosine_real"], 4),
            "pixel_spread_inverted": round(rep["pixel_spread_inverted"], 4)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--stop-at", type=float, default=0.95)
    ap.add_argument("--levers", default="old,new,bf16,bf16_lr2e-3")
    ap.add_argument("--classifier", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    prof = get_profile("quick")
    if args.classifier:
        from netinv_core.cache import load_checkpoint
        from netinv_core.classifier import Classifier
        st = load_checkpoint(args.classifier)
        clf = Classifier(IMAGE_SHAPES["mnist"], 10)
        clf.load_state_dict(st["model"])
        clf.eval()
    else:
        from netinv_core.pipeline import classifier_config, get_classifier
        clf = get_classifier(classifier_config("mnist", prof), device="cpu", progress=False).model
    test = load_dataset("mnist", "test")
    print(json.dumps({"threads": args.threads, "started": time.strftime("%H:%M:%S")}), flush=True)
    for name in args.levers.split(","):
        print(json.dumps(run(name, clf, test, prof.generator_config(seed=0), args.steps,
                             args.stop_at)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
