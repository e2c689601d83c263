"""A cost model of ``run_all.sh``: predicted seconds per notebook for a profile on this device.

    python -m netinv_core.bench cost --profile paper [--device cuda] [--quick-units]

Two parts:

1. **Unit costs, measured here** (``netinv_core.cost_units``): a few optimiser steps of every kind
   of training the notebooks run (classifier step at batch 128, inversion step, reconstruction
   step, each at the profile's batch and width, for 1x28x28 and 3x32x32 images; an (N+1)-class
   garbage classifier step costs the same as an N-class step), the classifier forward per image
   (evaluation, generation), and the analysis steps at the profile's sizes (t-SNE and UMAP, k-means
   clusters, the SAE, nearest-image matching against the full training pool, the OOD evaluation).
   Training steps use random weights: their time does not depend on the values. Each unit is the
   median of a few repetitions after one warm-up; its FLOPs are counted with ``FlopCounterMode``.
2. **Counts, from the code's own settings** (``netinv_core.cost_plan``): how many of each unit every notebook runs for the
   profile (datasets, epochs, steps, seeds, generators, sample counts, as ``config``,
   ``Profile.ood``, ``Profile.recon``, ``figure5.TRAIN_SIZES`` and the notebooks' defaults set
   them), assuming a cold cache and the notebooks run in ``run_all.sh``'s order (a model made by
   an earlier notebook is reused later, as the cache does). Datasets without local files are
   counted as skipped, as the notebooks skip them.

    predicted seconds = sum over stages of count x unit seconds

The prediction ignores early stopping, data loading and plotting (seconds), and assumes the
machine's load while measuring persists. For a GPU it also gives an extrapolation from the
counted FLOPs: seconds = max(GFLOP / (rate x utilisation), launch floor) per step, with the rate,
utilisation and floor stated in the output.
"""
from __future__ import annotations

import math
import os
import sys
import time

import torch

from .config import get_profile
from .cost_plan import N_TEST, N_TRAIN, STOP_SHARE, available, plan  # noqa: F401 (re-exported)
from .cost_units import CPU_SECONDS, analysis_units, training_units

# GPU extrapolation: H200 bf16 dense peak (NVIDIA datasheet, SXM), the share of it that small
# convnets at these batch sizes reach, and a floor per optimiser step (kernel launches).
GPU_PEAK_TFLOPS = 989.0
GPU_UTILISATION = 0.05
GPU_STEP_FLOOR_S = 0.004


def predict(profile, device="cpu", units: dict | None = None) -> dict:
    """Measure the units (unless given) and return predicted seconds per notebook and in total,
    with the stage list, plus the GPU extrapolation of the training stages."""
    t0 = time.perf_counter()
    from .device import resolve_device
    device = str(resolve_device(device))
    threads = torch.get_num_threads()
    units = dict(units or {})
    if not units:
        units.update(training_units(profile, device))
        units.update(analysis_units(profile, device))
    sizes = units.pop("sizes", None)
    measure_s = time.perf_counter() - t0
    rate = GPU_PEAK_TFLOPS * GPU_UTILISATION * 1e3  # GFLOP/s
    notebooks, total, gpu_total, idle_total = {}, 0.0, 0.0, 0.0
    for nb, (stages, skipped) in plan(profile).items():
        rows, secs, gsecs, isecs = [], 0.0, 0.0, 0.0
        for name, unit, count in stages:
            s, gf = units[unit]
            rows.append({"stage": name, "unit": unit, "count": count, "seconds": count * s})
            secs += count * s
            isecs += count * CPU_SECONDS.get(unit, s)
            if unit == "sae_1_epoch":   # torch: one floor per batch of 256 on the GPU
                per = math.ceil(sizes["pool"] / 256) * GPU_STEP_FLOOR_S
            elif gf is None:            # scikit-learn / umap / matching: this CPU's time
                per = s
            else:
                per = max(gf / rate, GPU_STEP_FLOOR_S)
            gsecs += count * per
        notebooks[nb] = {"seconds": secs, "idle_estimate_seconds": isecs,
                         "gpu_extrapolated_seconds": gsecs,
                         "skipped_datasets": skipped, "stages": rows}
        total += secs
        gpu_total += gsecs
        idle_total += isecs
    return {"benchmark": "cost", "profile": get_profile(profile).name, "device": str(device),
            "torch_threads": threads, "analysis_sizes": sizes,
            "predicted_seconds": {nb: round(v["seconds"]) for nb, v in notebooks.items()},
            "predicted_total_seconds": round(total), "predicted_total_hours": round(total / 3600, 2),
            # the same counts x process CPU seconds / threads: the machine without other jobs
            "idle_estimate_seconds": {nb: round(v["idle_estimate_seconds"])
                                      for nb, v in notebooks.items()},
            "idle_estimate_total_seconds": round(idle_total),
            "idle_estimate_total_hours": round(idle_total / 3600, 2),
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "gpu_extrapolation": {
                "assumed": f"one H200: {GPU_PEAK_TFLOPS:.0f} TFLOP/s bf16 dense peak x "
                           f"{GPU_UTILISATION} utilisation, at least {GPU_STEP_FLOOR_S * 1e3:.0f} "
                           f"ms per optimiser step or batch; t-SNE, UMAP, k-means, matching and "
                           f"Mahalanobis at this machine's speed",
                "seconds": {nb: round(v["gpu_extrapolated_seconds"]) for nb, v in notebooks.items()},
                "total_seconds": round(gpu_total), "total_hours": round(gpu_total / 3600, 2)},
            "units": {k: {"seconds": round(s, 4), "idle_estimate_seconds":
                          None if k not in CPU_SECONDS else round(CPU_SECONDS[k], 4),
                          "gflop": None if g is None else round(g, 3)}
                      for k, (s, g) in units.items()},
            "measure_seconds": round(measure_s, 1),
            "notebooks": notebooks}


# Analysis steps' idle-machine seconds (process CPU seconds / threads) measured by
# ``analysis_units`` on this project's 2-core CPU, 2 threads, used by ``cheap_predict``.
REFERENCE_ANALYSIS_SECONDS: dict[str, dict] = {}


def cheap_predict(profile, device="cpu") -> dict:
    """``predict`` with one repetition per training unit and the analysis units taken from
    ``REFERENCE_ANALYSIS_SECONDS`` (idle seconds) times the load factor seen while timing the
    training units here (their wall / CPU seconds): a minute or two instead of several, for
    ``run_all.sh``'s up-front estimate."""
    from .device import resolve_device

    device = str(resolve_device(device))
    name = get_profile(profile).name
    units = training_units(name, device, repeats=1)
    wall = sum(units[k][0] for k in CPU_SECONDS if k in units)
    cpu = sum(CPU_SECONDS[k] for k in CPU_SECONDS if k in units)
    load = max(1.0, wall / cpu) if cpu > 0 and not str(device).startswith("cuda") else 1.0
    ref = REFERENCE_ANALYSIS_SECONDS.get(name)
    if ref is None:   # no reference for this profile: measure the analysis steps here
        units.update(analysis_units(name, device))
        return predict(name, device, units)
    units.update({k: (v * load, None) for k, v in ref.items() if k != "sizes"})
    CPU_SECONDS.update({k: v for k, v in ref.items() if k != "sizes"})
    units["sizes"] = ref["sizes"]
    return predict(name, device, units)


def main(argv=None) -> int:
    """``python -m netinv_core.cost --profile quick [--cheap] [--tsv]``: the prediction as JSON,
    or (``--tsv``) one ``notebook<TAB>seconds`` line per notebook, for run_all.sh."""
    import argparse
    import json

    from .errors import NetinvError

    ap = argparse.ArgumentParser(prog="python -m netinv_core.cost", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--device", default=None)
    ap.add_argument("--cheap", action="store_true",
                    help="one repetition per training unit, reference analysis times")
    ap.add_argument("--tsv", action="store_true")
    args = ap.parse_args(argv)
    try:
        out = (cheap_predict if args.cheap else predict)(args.profile, args.device)
    except NetinvError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.tsv:
        for nb, s in out["predicted_seconds"].items():
            print(f"{nb}\t{s}\t{out['idle_estimate_seconds'][nb]}")
    else:
        out["notebooks"] = {k: {kk: vv for kk, vv in v.items() if kk != "stages"}
                            for k, v in out["notebooks"].items()}
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
