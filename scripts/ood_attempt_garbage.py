"""The garbage samples an OOD attempt added per round (issue 12), from its cached model.

Prints, per OOD set (2000 test images), the three classes its images go to most, their mean
confidence and mean garbage probability (JSON), and writes
``figures/fig4_ood_attempts_<train>_<variant>_garbage.{png,pdf}``: rows are the
conditioning labels (the N classes and garbage), columns the rounds (round 0: the Gaussian noise),
as the Section 5.2 notebook draws the default's. Needs the attempt's model in the cache
(``python -m netinv_core.ood_attempts run ...`` first); it trains nothing.

    NETINV_DATA=../shared/data python scripts/ood_attempt_garbage.py --train cifar10 \
        --variant backbone_sgd --seed 0
"""
import argparse
import json

import torch

from netinv_core.data import CLASS_NAMES
from netinv_core.ood import get_garbage_classifier
from netinv_core.ood_attempts import variant_config
from netinv_core.ood_experiment import ood_sets_for
from netinv_core.plotting import inversion_grid
from netinv_core.results import save_figure

ap = argparse.ArgumentParser()
ap.add_argument("--train", required=True)
ap.add_argument("--variant", required=True)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--out-dir", default="figures")
a = ap.parse_args()
cfg = variant_config(a.variant, a.train, seed=a.seed)
trained = get_garbage_classifier(cfg, device="cpu", progress=False, train_missing=False)
model, ex = trained.model.eval(), trained.extras["examples"]
names = list(CLASS_NAMES[a.train]) + ["garbage"]
sets, _ = ood_sets_for(a.train, ex[0].shape[1:], 2000)
with torch.no_grad():
    for name, x in sets.items():
        p = torch.softmax(model(x), 1)
        share = torch.bincount(p.argmax(1), minlength=len(names)).float() / len(x)
        print(json.dumps({"ood_set": name, "top_classes": {names[i]: round(float(share[i]), 3)
                                                            for i in share.argsort(descending=True)[:3]},
                          "mean_confidence": round(float(p.max(1).values.mean()), 3),
                          "mean_garbage_probability": round(float(p[:, -1].mean()), 4)}))
fig = inversion_grid([ex[e].float() / 255 for e in sorted(ex)], names,  # stored as uint8
                     column_titles=["noise" if e == 0 else f"round {e}" for e in sorted(ex)],
                     title=f"{a.train}, attempt {a.variant}, seed {a.seed}: garbage-class samples "
                           f"added per round (rows: conditioning label)")
print(save_figure(fig, f"{a.out_dir}/fig4_ood_attempts_{a.train}_{a.variant}_garbage"))
