"""A fair attempt at Section 5.3: named variants, sampling modes, and a search of the loss weights.

Each *attempt* is one setting (attacked classifier + reconstruction config) scored with the
calibrated metrics of ``recon_metrics`` over one or more generator seeds. Variants
(``VARIANTS``; REPRODUCTION_GAPS.md section 2, R3-R6):

- ``default``: the quick profile's reconstruction setting on the paper's CNN (dropout 0.5 on every
  hidden block of the generator but the last, ``ReconConfig.dropout_last = 0``).
- ``last_dropout``: dropout 0.5 on every hidden block, the last included (the Section 3
  generator's "heavy dropout"; Section 5.3 says nothing of generator dropout; the default until
  2026-11-30). The variants below were measured on this base (``LEGACY_BASE``, recorded as
  ``base_overrides``), so that their records reproduce from the cache; each changes one thing
  from it.
- ``mlp_positive_control``: an MLP 784-512-256-N trained to zero loss on 100 images (the
  memorisation regime where reconstruction from weights is known to work; if this fails, the
  pipeline is at fault, not the paper).
- ``no_dropout_generator``: generator dropout 0 (train and sampling modes then agree trivially).
- ``lab_sign_noise``: the lab code's perturbation u = eps * sign(N(0, I)), eps = 0.37 on [0, 1]
  (``epsilon`` may be given; it must lie in (0, 1)).
- ``tv_sweep``: eta1 (total variation) in {0, 0.002, 0.2} (default 0.02); one attempt per value.
- ``diversity_off``: gamma = delta = 0 (cosine and orthogonality push same-class features apart).
- ``weight_decay_classifier``: the attacked CNN trained with weight decay 5e-4.
- ``avgpool_classifier``: the attacked CNN with average instead of max pooling.

Sampling modes (``sample``): ``dropout`` (dropout on, BatchNorm running statistics: the mode the
generator trained in, up to BN's batch vs running statistics), ``train`` (exactly the training
mode: dropout on and BatchNorm normalising with the statistics of the sampled batch, which holds
every class equally often; the generator's running statistics are left untouched), ``no_dropout`` (dropout off: the
dropout/BatchNorm variance shift), ``bn_reestimate`` (dropout off, BatchNorm statistics
re-estimated without dropout on ``bn_batches`` batches of 256).

Search (``run_search`` in ``recon_search``): Optuna TPE over the L_Recon weights and the
perturbation, at reduced steps, objective = verifier_accuracy + (train_closer share - 0.5): "looks
like the class to an independent judge" together with "leans towards the training images", never
SSIM. The study lives in a journal file (``*.log``/``*.journal``) or SQLite (``*.db``/``*.sqlite``)
or any Optuna storage URL, so a killed search resumes without repeating finished trials and several
workers can join it.

CLI (resumable; results are written atomically after every attempt):

    python -m netinv_core.recon_attempts attempts --names mlp_positive_control default \
        --out figures/fig5_attempts.json
    python -m netinv_core.recon_attempts search --trials 40 --storage runs/recon_search.journal
    python -m netinv_core.recon_attempts best --storage runs/recon_search.journal \
        --out figures/fig5_attempts.json --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .config import DEFAULT_PROFILE
from .cache import atomic_write
from .errors import ConfigError, NetinvError
from .recon_classifiers import attacked_classifier
from .recon_metrics import METRIC_KEYS, Judge, make_judge, training_like

VARIANTS = {
    "default": "the quick profile's reconstruction setting (paper CNN; generator dropout 0.5, "
               "none on its last hidden block)",
    "last_dropout": "generator dropout 0.5 on every hidden block, the last included (as Section 3)",
    "mlp_positive_control": "MLP 784-512-256-N trained to zero loss on 100 images",
    "no_dropout_generator": "generator dropout 0",
    "lab_sign_noise": "perturbation eps * sign(N(0, I)), eps 0.37 on [0, 1] (lab code)",
    "tv_sweep": "eta1 in {0.2, 0.002, 0} (default 0.02)",
    "diversity_off": "gamma = delta = 0",
    "weight_decay_classifier": "attacked CNN with weight decay 5e-4",
    "avgpool_classifier": "attacked CNN with average pooling",
}
SAMPLING_MODES = ("dropout", "train", "no_dropout", "bn_reestimate")
TV_VALUES = (0.2, 0.002, 0.0)
LAB_EPSILON = 0.37
TV_NAMES = tuple(f"tv_sweep_eta1_{v:g}" for v in TV_VALUES)   # one tv_sweep value alone
# the base of every variant but ``default`` and ``last_dropout``: the Section 3 generator
# (dropout on its last hidden block too), on which the fair attempt was measured
LEGACY_BASE = {"dropout_last": None}
RENAMED = {"no_last_dropout": "default"}   # old name -> the variant it became


def check_names(names, epsilon: float | None = None) -> list[str]:
    """Raise ``ConfigError`` for unknown variant names or a bad epsilon, before any training."""
    names = list(names)
    moved = [n for n in names if n in RENAMED]
    if moved:
        raise ConfigError(f"attempt variant(s) {moved} became {[RENAMED[n] for n in moved]} "
                          f"(the default since 2026-11-30); ask for that name instead")
    bad = [n for n in names if n not in VARIANTS and n not in TV_NAMES]
    if bad:
        raise ConfigError(f"unknown attempt variant(s) {bad}; choose from {list(VARIANTS)}")
    if not names:
        raise ConfigError(f"no attempt variants given; choose from {list(VARIANTS)}")
    if epsilon is not None and (isinstance(epsilon, bool) or not isinstance(epsilon, (int, float))
                                or not 0 < epsilon < 1):
        raise ConfigError(f"epsilon={epsilon!r} must lie in (0, 1): an L-infinity radius on the "
                          f"[0, 1] pixel scale (the lab value is {LAB_EPSILON})")
    return names


# ---------------------------------------------------------------------------------------------
# sampling

@torch.no_grad()
def sample(gen, n_per_class: int, *, mode: str = "dropout", seed: int = 0, bn_batches: int = 20):
    """``n_per_class`` reconstructions of every class in sampling ``mode`` (see the module
    docstring), clamped to [0, 1]: ``(images, labels, share of raw pixels outside [0, 1])``."""
    import copy

    from .reconstruct import hot_conditioning, reconstruct

    if mode not in SAMPLING_MODES:
        raise ConfigError(f"unknown sampling mode {mode!r}; choose one of {list(SAMPLING_MODES)}")
    device = next(gen.parameters()).device
    if mode == "bn_reestimate":
        gen = copy.deepcopy(gen)
        g = torch.Generator().manual_seed(seed + 1)
        gen.train()
        for m in gen.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None                  # cumulative average over the batches
        for _ in range(bn_batches):
            lab = torch.randint(0, gen.num_classes, (256,), generator=g)
            z = torch.randn(256, gen.latent_dim, generator=g)
            gen(z.to(device), hot_conditioning(lab, gen.num_classes).to(device))
    if mode == "train":
        # BatchNorm without running statistics normalises with the batch's own (as in training)
        gen = copy.deepcopy(gen)
        for m in gen.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean = m.running_var = m.num_batches_tracked = None
                m.track_running_stats = False
    # generator.generate underneath: seeded, and the caller's random state is left alone
    return reconstruct(gen, n_per_class, seed=seed, keep_dropout=(mode in ("dropout", "train")))


def sampling_modes_report(gen, model, n_per_class: int, seed: int = 0, device="cpu") -> dict:
    """Label accuracy and mean per-image pixel std of the samples in every sampling mode."""
    out = {}
    for mode in SAMPLING_MODES:
        x, y, _ = sample(gen, n_per_class, mode=mode, seed=seed)
        with torch.no_grad():
            p = model(x.to(device)).softmax(1).cpu()
        out[mode] = {"label_accuracy": (p.argmax(1) == y).float().mean().item(),
                     "label_confidence": p[torch.arange(len(y)), y].mean().item(),
                     "pixel_std": x.flatten(1).std(1).mean().item()}
    return out


# ---------------------------------------------------------------------------------------------
# attempts

def attempt_specs(name: str, epsilon: float | None = None) -> list[dict]:
    """The attempt(s) a variant name stands for: ``{name, classifier, overrides, base_overrides,
    train_size}``; every variant but ``default`` and ``last_dropout`` sits on ``LEGACY_BASE``."""
    check_names([name], epsilon)
    if name == "default":
        return [{"classifier": "cnn", "overrides": {}, "base_overrides": {}, "train_size": None,
                 "name": name}]
    base = {"classifier": "cnn", "overrides": {}, "base_overrides": dict(LEGACY_BASE),
            "train_size": None}
    if name == "last_dropout":
        return [{**base, "name": name, "overrides": dict(LEGACY_BASE), "base_overrides": {}}]
    if name == "mlp_positive_control":
        return [{**base, "name": name, "classifier": "mlp", "train_size": 100}]
    if name == "no_dropout_generator":
        return [{**base, "name": name, "overrides": {"dropout": 0.0}}]
    if name == "lab_sign_noise":
        return [{**base, "name": name, "overrides": {"perturbation": "sign",
                                                     "epsilon": epsilon or LAB_EPSILON}}]
    if name in TV_NAMES:
        return [s for s in attempt_specs("tv_sweep") if s["name"] == name]
    if name == "tv_sweep":
        return [{**base, "name": f"tv_sweep_eta1_{v:g}", "overrides": {"weights": {"eta1": v}}}
                for v in TV_VALUES]
    if name == "diversity_off":
        return [{**base, "name": name, "overrides": {"weights": {"gamma": 0.0, "delta": 0.0}}}]
    if name == "weight_decay_classifier":
        return [{**base, "name": name, "classifier": "cnn_wd"}]
    return [{**base, "name": name, "classifier": "cnn_avg"}]


def recon_cfg(profile, seed, overrides: dict, base: dict | None = None):
    from .figure5 import recon_config

    ov = {**(base or {}), **overrides}
    w = {**(base or {}).get("weights", {}), **overrides.get("weights", {})}
    ov.pop("weights", None)
    cfg = recon_config(profile, seed, **ov)
    return replace(cfg, weights=replace(cfg.weights, **w)) if w else cfg


def _summary(per_seed: list[dict]) -> dict:
    def ms(vals):
        vals = [v for v in vals if v is not None]
        return {"mean": float(np.mean(vals)), "std": float(np.std(vals, ddof=1)) if len(vals) > 1
                else 0.0}
    out = {k: ms([r[k] for r in per_seed]) for k in METRIC_KEYS if k != "train_closer"}
    out["train_closer_share"] = ms([r["train_closer"]["share"] for r in per_seed])
    out["train_closer_p"] = [r["train_closer"]["p_value"] for r in per_seed]
    out["training_like_seeds"] = sum(training_like(r) for r in per_seed)
    return out


def run_attempt(spec: dict, dataset: str = "mnist", train_size: int = 1000, profile=None, *,
                seeds=(0,), n_per_class: int | None = None, sampling: str | None = None,
                base_overrides: dict | None = None, device="cpu", judge: Judge | None = None,
                log=print) -> dict:
    """Train (or load) one generator per seed for ``spec`` and score it."""
    from .config import get_profile
    from .reconstruct import get_reconstructor

    from .reconstruct import DEFAULT_SAMPLING
    sampling = sampling or DEFAULT_SAMPLING
    ts = spec.get("train_size") or train_size
    clf, key = attacked_classifier(spec["classifier"], dataset, ts, profile, device)
    judge = judge if judge is not None and spec["classifier"] == "cnn" and ts == train_size \
        else make_judge(clf.model, dataset, ts, device=device)
    n_per_class = n_per_class or get_profile(profile).recon.n_per_class
    per_seed, samples = [], []
    t0 = time.perf_counter()
    for seed in seeds:
        cfg = recon_cfg(profile, seed, spec["overrides"], base_overrides)
        rec = get_reconstructor(clf, cfg, device=device, progress=False, classifier_key=key)
        gen, hist = rec.model, rec.history
        x, y, oor = sample(gen, n_per_class, mode=sampling, seed=1000 + seed)
        samples.append((x, y))
        m = judge.metrics(x, y)
        m.update(seed=seed, generator_seconds=hist["seconds"], raw_out_of_range_share=oor,
                 sampling_modes=sampling_modes_report(gen, clf.model, n_per_class, 1000 + seed,
                                                      device),
                 final_batch_accuracy=float(np.mean(hist["batch_accuracy"][-20:])))
        per_seed.append(m)
        log(f"[attempt {spec['name']} seed {seed}] label {m['label_accuracy']:.3f} verifier "
            f"{m['verifier_accuracy']:.3f} 1-NN {m['nn_accuracy']:.3f} closer "
            f"{m['train_closer']['share']:.3f} p {m['train_closer']['p_value']:.3f} "
            f"({hist['seconds']:.0f} s)")
    return {"name": spec["name"], "dataset": dataset, "train_size": ts,
            "classifier": spec["classifier"], "classifier_test_accuracy":
            clf.metrics.get("test_accuracy"), "overrides": spec["overrides"],
            "base_overrides": base_overrides or {}, "sampling": sampling, "seeds": list(seeds),
            "summary": _summary(per_seed), "per_seed": per_seed,
            "pooled": pooled_record(judge, samples),
            "training_like": _summary(per_seed)["training_like_seeds"] == len(per_seed),
            "seconds": time.perf_counter() - t0}


def pooled_record(judge: Judge, samples) -> dict:
    """The metrics of every seed's reconstructions pooled (one permutation test over all
    generators' images, as Figure 5 pools its generators) and the verdict rule on them."""
    m = judge.metrics(torch.cat([x for x, _ in samples]), torch.cat([y for _, y in samples]))
    return {**{k: m[k] for k in METRIC_KEYS}, "n_images": m["n_images"],
            "training_like": training_like(m)}


def check_writable(path) -> None:
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".write-test-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise ConfigError(f"cannot write {p} ({e.strerror or e}); choose a writable path") from None


def write_json(path, obj):
    from .results import jsonable
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(jsonable(obj), indent=1)))


def run_attempts(names, out: str | Path, dataset="mnist", train_size=1000, profile=None, *,
                 seeds=(0,), epsilon=None, device="cpu", log=print) -> list[dict]:
    """Run every attempt of ``names`` (in order), skipping those already in ``out``; ``out`` is
    rewritten atomically after each attempt."""
    names = check_names(names, epsilon)
    check_writable(out)
    specs = [s for n in names for s in attempt_specs(n, epsilon)]
    done = superseded_removed(json.loads(Path(out).read_text()) if Path(out).exists() else [])
    for spec in specs:
        key = (spec["name"], dataset, spec.get("train_size") or train_size)
        if any((d["name"], d["dataset"], d["train_size"]) == key and set(seeds) <= set(d["seeds"])
               for d in done):
            log(f"[attempt {spec['name']}] already in {out}")
            continue
        done.append(run_attempt(spec, dataset, train_size, profile, seeds=seeds, device=device,
                                base_overrides=spec.get("base_overrides"), log=log))
        done = superseded_removed(done)
        write_json(out, done)
    return done


def superseded_removed(records: list[dict]) -> list[dict]:
    """``records`` without those whose seeds are a proper subset of another record's for the same
    attempt (name, dataset, training-set size): a 3-seed rerun replaces the 1-seed record (its
    seed-0 generator is the cached one, so seed 0 scores the same). Order is kept."""
    def key(r):
        return r["name"], r["dataset"], r["train_size"]
    return [r for r in records if not any(key(o) == key(r) and set(r["seeds"]) < set(o["seeds"])
                                          for o in records)]


def attempt_samples(rec: dict, profile=None, n_per_class: int = 1, seed_index: int = 0,
                    device="cpu"):
    """Reconstructions of a recorded attempt from its cached generator (nothing is trained)."""
    spec = {"name": rec["name"], "classifier": rec["classifier"], "overrides": rec["overrides"]}
    from .reconstruct import get_reconstructor

    clf, key = attacked_classifier(spec["classifier"], rec["dataset"], rec["train_size"], profile,
                                   device)
    seed = rec["seeds"][seed_index]
    cfg = recon_cfg(profile, seed, spec["overrides"], rec.get("base_overrides"))
    gen = get_reconstructor(clf, cfg, device=device, progress=False, classifier_key=key,
                            train_missing=False).model
    x, y, _ = sample(gen, n_per_class, mode=rec["sampling"], seed=1000 + seed)
    return x, y


def format_attempts_table(records: list[dict]) -> str:
    """One row per attempt: mean over seeds of the calibrated metrics, and the verdict."""
    head = (f"{'attempt':>28s} {'n':>5s} {'seeds':>5s} {'label':>6s} {'verif':>6s} {'1-NN':>6s} "
            f"{'NCCtr':>6s} {'NCCte':>6s} {'closer':>6s} {'p (per seed)':>14s} training-like "
            f"{'pooled: verif':>13s} {'closer':>6s} {'p':>6s} training-like")
    lines = [head]
    for r in records:
        s = r["summary"]
        ps = ",".join(f"{p:.3f}" for p in s["train_closer_p"])
        lines.append(f"{r['name']:>28s} {r['train_size']:5d} {len(r['seeds']):5d} "
                     f"{s['label_accuracy']['mean']:6.3f} {s['verifier_accuracy']['mean']:6.3f} "
                     f"{s['nn_accuracy']['mean']:6.3f} {s['ncc_train']['mean']:6.3f} "
                     f"{s['ncc_test']['mean']:6.3f} {s['train_closer_share']['mean']:6.3f} "
                     f"{ps:>14s} {s['training_like_seeds']}/{len(r['seeds'])}"
                     + (f" {pl['verifier_accuracy']:13.3f} {pl['train_closer']['share']:6.3f} "
                        f"{pl['train_closer']['p_value']:6.3f} {'yes' if pl['training_like'] else 'no'}"
                        if (pl := r.get("pooled")) else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    from . import recon_search  # the search and best subcommands (recon_search imports this module)

    ap = argparse.ArgumentParser(prog="python -m netinv_core.recon_attempts", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("attempts")
    a.add_argument("--names", nargs="+", default=list(VARIANTS))
    a.add_argument("--out", required=True)
    a.add_argument("--dataset", default="mnist")
    a.add_argument("--train-size", type=int, default=1000)
    a.add_argument("--profile", default=DEFAULT_PROFILE)
    a.add_argument("--seeds", type=int, nargs="+", default=[0])
    a.add_argument("--epsilon", type=float, default=None)
    recon_search.add_subcommands(sub)
    args = ap.parse_args(argv)
    log = lambda m: print(m, flush=True)  # noqa: E731
    try:
        if args.cmd == "attempts":
            run_attempts(args.names, args.out, args.dataset, args.train_size, args.profile,
                         seeds=tuple(args.seeds), epsilon=args.epsilon, log=log)
        else:
            recon_search.run_subcommand(args, log)
    except NetinvError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


# the search's names, importable from here as before the search moved to recon_search
_SEARCH_NAMES = ("SEARCH_SPACE", "open_storage", "trial_weights", "objective_value", "run_search",
                 "search_record", "best_overrides", "run_best", "load_search")


def __getattr__(name):
    if name in _SEARCH_NAMES:
        from . import recon_search
        return getattr(recon_search, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    sys.exit(main())
