"""Step-time ratios of the issue-14 kernel levers of this session, interleaved in one process.

    python scripts/core_levers.py [--threads 2] [--rounds 7] [--steps 3] [--precision fp32]

Arms (each a generator + optimiser of its own, the same random-weight quick MNIST classifier):
- ``previous``: the default before these levers (stem as a oneDNN transposed convolution,
  dropout masks from fp32 uniforms, classifier weights in their own layout);
- ``+ classifier channels-last``: ``frozen.channels_last_weights`` around the step;
- ``+ BatchNorm folded``: ``frozen.folded_batchnorm`` (eval-mode BatchNorm folded into the
  convolution before it);
- ``+ stem matmul``: ``generator.LatentConvTranspose2d`` computing the 1x1 transposed convolution
  as a matrix product;
- ``+ bit masks``: Bernoulli(1/2) dropout masks from random bits (``generator.half_masks``);
- ``all but bit masks``, ``all``: three / all four together; ``all`` is what ``fit_generator``
  now runs (``frozen.inversion_ready`` + the generator's stem and masks).
Prints JSON: median step seconds per arm, speed-up vs ``previous``, the counted GFLOP per step and
the fp32 matmul rate measured in the same process, and the load average.
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import types

import torch
import torch.nn as nn

import netinv_core.generator as G
from netinv_core.bench import matmul_gflops
from netinv_core.classifier import Classifier
from netinv_core.config import GeneratorConfig
from netinv_core.frozen import channels_last_weights, folded_batchnorm, frozen
from netinv_core.inversion import FeatureTap, inversion_step

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from speed_levers import time_interleaved  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--rounds", type=int, default=7)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--precision", default="fp32")
args = ap.parse_args()
torch.set_num_threads(args.threads)
clf = Classifier((1, 28, 28), 10).eval()
fast_masks = G.half_masks


def uniform_masks(x):
    return torch.rand_like(x, dtype=torch.float32) >= 0.5


ARMS = {"previous": (), "+ classifier channels-last": ("cl",), "+ BatchNorm folded": ("fold",),
        "+ stem matmul": ("stem",), "+ bit masks": ("bits",),
        "all but bit masks": ("cl", "fold", "stem"), "all": ("cl", "fold", "stem", "bits")}
runs = {}
for name, levers in ARMS.items():
    cfg = GeneratorConfig(batch_size=128, width=64, precision=args.precision)
    torch.manual_seed(0)
    gen = G.Generator(10, (1, 28, 28), cfg).to(memory_format=torch.channels_last)
    if "stem" not in levers:   # the plain transposed convolution
        gen.stem[0].forward = types.MethodType(nn.ConvTranspose2d.forward, gen.stem[0])
    opt = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999))
    rng = torch.Generator().manual_seed(0)
    tap = FeatureTap(clf)

    def step(gen=gen, opt=opt, tap=tap, cfg=cfg, rng=rng, levers=levers):
        G.half_masks = fast_masks if "bits" in levers else uniform_masks
        layout = channels_last_weights(clf) if "cl" in levers else contextlib.nullcontext()
        fold = folded_batchnorm(clf) if "fold" in levers else contextlib.nullcontext()
        with fold, layout:
            return inversion_step(gen, opt, tap, cfg, rng, "cpu")
    runs[name] = (step, [])

with frozen(clf):
    gflop = time_interleaved(runs, "previous", args.rounds, args.steps, warm=2)
G.half_masks = fast_masks
mm = matmul_gflops()
base = statistics.median(runs["previous"][1])
out = {"threads": args.threads, "precision": args.precision, "step_gflop": round(gflop, 3),
       "matmul_gflops_fp32": round(mm, 1), "load_average": os.getloadavg()[0], "arms": {}}
for name, (_, ts) in runs.items():
    m = statistics.median(ts)
    out["arms"][name] = {"step_seconds": round(m, 4), "speedup_vs_previous": round(base / m, 3),
                         "flop_utilisation": round(gflop / m / mm, 3)}
print(json.dumps(out, indent=1))
