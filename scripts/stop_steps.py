"""How many steps the cached generators with an early stop trained, per dataset (the cost model's
``cost.STOP_SHARE``).

    python scripts/stop_steps.py [--stop-at 0.97] [--precision bf16]

Reads every ``generator-*.pt`` in the checkpoint cache (``load_checkpoint``: no pickled code),
keeps those whose config has ``stop_at_accuracy`` = ``--stop-at`` and ``precision`` =
``--precision``, and prints JSON per dataset and group: ``default`` (the default loss weights,
conditioning and dropout at any cosine weight: Figures 2, 3 and 5's generators) and ``ablation``
(any other setting), with the number of generators, the mean steps trained, the budget and their
ratio.
"""
import argparse
import json
import statistics
from collections import defaultdict

from netinv_core.cache import cache_dir, load_checkpoint
from netinv_core.config import GeneratorConfig, LossWeights

ap = argparse.ArgumentParser()
ap.add_argument("--stop-at", type=float, default=0.97)
ap.add_argument("--precision", default="bf16")
args = ap.parse_args()
base, w0 = GeneratorConfig(), LossWeights()
groups = defaultdict(list)
for path in sorted(cache_dir().glob("generator-*.pt")):
    if path.name.endswith(".partial.pt"):
        continue
    st = load_checkpoint(path, kind="generator")
    g = st["config"]["generator"]
    if g.get("stop_at_accuracy") != args.stop_at or g.get("precision") != args.precision:
        continue
    w = g["weights"]
    default = (g["conditioning"] == base.conditioning and g["dropout"] == base.dropout
               and all(w[k] == getattr(w0, k) for k in ("alpha", "beta", "delta")))
    steps = len(st["history"]["step"])
    groups[(st["config"]["classifier"]["dataset"], "default" if default else "ablation")].append(
        (steps, g["steps"]))
out = {f"{ds}/{grp}": {"generators": len(v), "mean_steps": round(statistics.mean(s for s, _ in v), 1),
                       "budget": v[0][1],
                       "share": round(statistics.mean(s / b for s, b in v), 3)}
       for (ds, grp), v in sorted(groups.items())}
print(json.dumps(out, indent=1))
