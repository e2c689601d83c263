"""Step-time ratios of the issue-14 levers, interleaved in one process (robust to a shared machine).

    python scripts/step_ratio.py [--threads 2] [--rounds 5] [--steps 5] [--batch 128] [--width 64]

Each round times ``--steps`` inversion steps of every lever in turn (random-weight classifier: the
time does not depend on the weights); prints the median step seconds per lever and its ratio to
``old`` (the code before issue 14), plus the counted GFLOP per step and the fp32/bf16 matmul rates.
Since the later kernel levers every arm but ``old`` uses the current generator (stem matmul, bit
masks) without the classifier levers; ``scripts/core_levers.py`` measures those four.
"""
import argparse
import json
import statistics

import torch

from netinv_core.bench import matmul_gflops
from netinv_core.classifier import Classifier
from netinv_core.config import GeneratorConfig
from netinv_core.inversion import FeatureTap, frozen, inversion_step

import sys
sys.path.insert(0, __file__.rsplit("/", 1)[0])
from speed_levers import lever_generator, old_step, time_interleaved  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--steps", type=int, default=5)
ap.add_argument("--batch", type=int, default=128)
ap.add_argument("--width", type=int, default=64)
args = ap.parse_args()
torch.set_num_threads(args.threads)
clf = Classifier((1, 28, 28), 10).eval()
LEVERS = {"old": ("contiguous", "bernoulli", "fp32"), "channels_last": ("cl", "bernoulli", "fp32"),
          "rand_dropout": ("contiguous", "rand", "fp32"), "new (default)": ("cl", "rand", "fp32"),
          "new + bf16": ("cl", "rand", "bf16")}
runs = {}
for name, (layout, drop, prec) in LEVERS.items():
    cfg = GeneratorConfig(batch_size=args.batch, width=args.width, precision=prec)
    gen = lever_generator(10, (1, 28, 28), cfg, 0, bernoulli=drop == "bernoulli",
                          channels_last=layout == "cl")
    opt = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999))
    rng = torch.Generator().manual_seed(0)
    tap = FeatureTap(clf)
    fn = ((lambda g=gen, o=opt, t=tap, c=cfg, r=rng: old_step(g, o, t, c, r)) if name == "old" else
          (lambda g=gen, o=opt, t=tap, c=cfg, r=rng: inversion_step(g, o, t, c, r, "cpu")))
    runs[name] = (fn, [])
with frozen(clf):
    gflop = time_interleaved(runs, "old", args.rounds, args.steps)
mm, mmb = matmul_gflops(), matmul_gflops(dtype=torch.bfloat16)
base = statistics.median(runs["old"][1])
out = {"threads": args.threads, "batch": args.batch, "width": args.width, "step_gflop": gflop,
       "matmul_gflops_fp32": mm, "matmul_gflops_bf16": mmb,
       "load_average": __import__("os").getloadavg()[0], "levers": {}}
for name, (_, ts) in runs.items():
    m = statistics.median(ts)
    out["levers"][name] = {"step_seconds": round(m, 4), "speedup_vs_old": round(base / m, 3),
                           "flop_utilisation_vs_fp32_matmul": round(gflop / m / mm, 3)}
print(json.dumps(out, indent=1))
