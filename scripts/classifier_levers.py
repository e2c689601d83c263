"""Step-time ratios of the issue-14 levers outside generator training, interleaved in one process.

    python scripts/classifier_levers.py [--threads 2] [--rounds 7] [--steps 4]

For a random-weight quick classifier of each image shape (1x28x28 and 3x32x32), pairs of arms
(before / after, each with its own model and optimiser where it trains):
- ``train``: one Adam step of the classifier on a batch of 128 (``classifier.train_epoch``'s
  step), weights as created vs ``frozen.channels_last_`` (what ``train_classifier`` and the
  garbage-class loop now do);
- ``eval``: a no-grad forward pass of 1000 images, ``frozen`` vs ``inversion_ready`` (BatchNorm
  folded, channels-last: what ``evaluate``, ``features_of``, ``inversion_report``, ``predict``
  and the OOD scoring now run);
- ``ood_round``: one inversion step of the garbage-class rounds, classifier ``frozen`` and the
  generator contiguous (as the loop ran) vs ``inversion_ready`` and a channels-last generator
  (as ``fit_generator`` runs them, and now the loop too);
- ``recon``: one reconstruction step (L_Grad included), generator contiguous vs channels-last
  (the classifier ``inversion_ready(fold=False)`` in both, as ``train_reconstructor`` runs it);
  measured 0.99x / 1.04x, so reconstruction keeps its contiguous generator.
Prints JSON: median step seconds per arm and the speed-up of each pair, and the load average.
"""
import argparse
import json
import os
import statistics
import sys

import torch

from netinv_core.classifier import Classifier
from netinv_core.config import get_profile
from netinv_core.cost_units import classifier_step
from netinv_core.figure5 import recon_config
from netinv_core.frozen import channels_last_, frozen, inversion_ready
from netinv_core.generator import Generator
from netinv_core.inversion import FeatureTap, inversion_step
from netinv_core.reconstruct import PerSampleGradNorm, recon_generator, reconstruction_step

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from speed_levers import time_interleaved  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--rounds", type=int, default=7)
ap.add_argument("--steps", type=int, default=4)
args = ap.parse_args()
torch.set_num_threads(args.threads)
prof = get_profile("quick")
out = {"threads": args.threads, "load_average_start": os.getloadavg()[0], "shapes": {}}


def train_arm(shape, layout):
    torch.manual_seed(0)
    clf = Classifier(shape, 10)
    if layout:
        channels_last_(clf)
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
    clf.train()
    return classifier_step(clf, opt, torch.rand(128, *shape), torch.randint(0, 10, (128,)))


def eval_arm(clf, x, fast):
    def step():
        with torch.no_grad(), (inversion_ready(clf) if fast else frozen(clf)):
            clf(x).sum().item()
    return step


def with_adam(gen, fast, lr):
    """``(gen, its Adam, a seeded sampling generator)``, ``gen`` channels-last when ``fast``."""
    gen = gen.to(memory_format=torch.channels_last) if fast else gen
    return gen, torch.optim.Adam(gen.parameters(), lr=lr, betas=(0.5, 0.999)), \
        torch.Generator().manual_seed(0)


def ood_arm(clf, shape, fast):
    cfg = prof.generator_config(seed=0)
    torch.manual_seed(0)
    gen, opt, rng = with_adam(Generator(11, shape, cfg), fast, cfg.lr)
    tap = FeatureTap(clf)

    def step():
        with inversion_ready(clf) if fast else frozen(clf):
            inversion_step(gen, opt, tap, cfg, rng, "cpu")
    return step


def recon_arm(clf, shape, fast):
    rcfg = recon_config("quick", 0)
    torch.manual_seed(0)
    gen, opt, rng = with_adam(recon_generator(10, shape, rcfg), fast, rcfg.lr)
    tap = FeatureTap(clf)
    gn = PerSampleGradNorm(clf) if rcfg.weights.eta3 > 0 else None

    def step():
        with inversion_ready(clf, fold=False):
            reconstruction_step(gen, opt, tap, rcfg, gn, rng, "cpu")
    return step


for shape in ((1, 28, 28), (3, 32, 32)):
    torch.manual_seed(0)
    clf, clf11 = Classifier(shape, 10).eval(), Classifier(shape, 11).eval()
    x = torch.rand(1000, *shape)
    runs = {"train before": (train_arm(shape, False), []), "train after": (train_arm(shape, True), []),
            "eval before": (eval_arm(clf, x, False), []), "eval after": (eval_arm(clf, x, True), []),
            "ood_round before": (ood_arm(clf11, shape, False), []),
            "ood_round after": (ood_arm(clf11, shape, True), []),
            "recon before": (recon_arm(clf, shape, False), []),
            "recon after": (recon_arm(clf, shape, True), [])}
    time_interleaved(runs, "train before", args.rounds, args.steps, warm=2)
    med = {k: statistics.median(ts) for k, (_, ts) in runs.items()}
    out["shapes"]["x".join(map(str, shape))] = {
        kind: {"before_s": round(med[f"{kind} before"], 4), "after_s": round(med[f"{kind} after"], 4),
               "speedup": round(med[f"{kind} before"] / med[f"{kind} after"], 3)}
        for kind in ("train", "eval", "ood_round", "recon")}
out["load_average_end"] = os.getloadavg()[0]
print(json.dumps(out, indent=1))
