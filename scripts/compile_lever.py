"""torch.compile lever (issue 14): step seconds of the quick-profile MNIST inversion step with the
generator eager or compiled (inductor), in fp32 or bf16, 2 threads; the first step (which compiles)
is timed apart. One arm per process, so compile workers do not disturb the other arms:

    python scripts/compile_lever.py fp32 eager      # or: bf16 eager | fp32 compiled | bf16 compiled

Prints one JSON line. The quick MNIST classifier comes from the cache (trained if missing).
"""
import json
import statistics
import sys
import time
from dataclasses import replace

import torch

from netinv_core.config import classifier_config, get_profile
from netinv_core.generator import Generator
from netinv_core.inversion import FeatureTap, inversion_step
from netinv_core.pipeline import get_classifier


def main(precision: str, mode: str, threads: int = 2, warmup: int = 3, steps: int = 40) -> dict:
    if precision not in ("fp32", "bf16") or mode not in ("eager", "compiled"):
        raise SystemExit("usage: compile_lever.py fp32|bf16 eager|compiled")
    torch.set_num_threads(threads)
    prof = get_profile("quick")
    clf = get_classifier(classifier_config("mnist", prof), device="cpu", progress=False)
    cfg = replace(prof.generator_config(seed=0), precision=precision, lr=2e-3)
    torch.manual_seed(0)
    gen = Generator(10, (1, 28, 28), cfg).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    rng = torch.Generator().manual_seed(0)
    tap = FeatureTap(clf.model, None)
    run = torch.compile(gen) if mode == "compiled" else gen
    gen.train()
    clf.model.eval()

    def step() -> float:
        t = time.perf_counter()
        inversion_step(run, opt, tap, cfg, rng, "cpu", sync=True)
        return time.perf_counter() - t

    first = step()                      # compiles in the compiled arm
    for _ in range(warmup):
        step()
    times = [step() for _ in range(steps)]
    tap.remove()
    return {"precision": precision, "mode": mode, "threads": threads,
            "first_step_seconds": first, "step_seconds_median": statistics.median(times)}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:3])))
