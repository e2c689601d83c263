"""Section 5.3's search of the L_Recon weights (``recon_attempts`` holds the attempts it reruns).

Optuna TPE over the weights and the perturbation, at reduced steps; objective = verifier_accuracy
+ (train_closer share - 0.5): "looks like the class to an independent judge" together with "leans
towards the training images", never SSIM. The study lives in a journal file (``*.log`` /
``*.journal``), SQLite (``*.db`` / ``*.sqlite``) or any Optuna storage URL, so a killed search
resumes without repeating finished trials and several workers can join it. ``run_best`` reruns
the best weights at the profile's full steps as the attempt ``search_best``. Trials and their
rerun sit on ``recon_attempts.LEGACY_BASE`` (dropout on the generator's last block too), the base
the study was run on, so that a resumed study stays one study. CLI:
``python -m netinv_core.recon_attempts search|best`` (``add_subcommands``).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

from .config import DEFAULT_PROFILE
from .errors import ConfigError
from .recon_attempts import (LEGACY_BASE, check_writable, recon_cfg, run_attempt, sample,
                             write_json)
from .recon_classifiers import attacked_classifier
from .recon_metrics import make_judge

SEARCH_SPACE = {  # name: (low, high), log-uniform; "perturbation" is categorical
    "alpha": (0.5, 20.0), "alpha_pert": (0.5, 20.0), "beta": (0.5, 20.0), "beta_pert": (0.5, 20.0),
    "gamma": (0.01, 20.0), "delta": (0.01, 20.0), "eta1": (1e-4, 0.5), "eta2": (0.1, 10.0),
    "eta3": (0.01, 10.0)}


def open_storage(storage: str):
    """An Optuna storage for ``storage``: a ``*.db``/``*.sqlite`` path (SQLite), an URL with
    ``://`` (as is), anything else a journal file (``JournalFileBackend``). Checked for
    writability before any training."""
    try:
        import optuna  # noqa: F401
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
    except ImportError:
        raise ConfigError("the search needs optuna: pip install optuna (or pip install -e .[dev])"
                          ) from None
    if "://" in storage:
        return storage
    check_writable(storage)
    if storage.endswith((".db", ".sqlite", ".sqlite3")):
        return f"sqlite:///{Path(storage).resolve()}"
    return JournalStorage(JournalFileBackend(str(storage)))


def trial_weights(trial) -> dict:
    w = {k: trial.suggest_float(k, lo, hi, log=True) for k, (lo, hi) in SEARCH_SPACE.items()}
    pert = trial.suggest_categorical("perturbation", ["uniform_0.05", "sign_0.37"])
    return {"weights": w, "perturbation": pert.split("_")[0], "epsilon": float(pert.split("_")[1])}


def objective_value(m: dict) -> float:
    """verifier_accuracy + (train_closer share - 0.5)."""
    return m["verifier_accuracy"] + m["train_closer"]["share"] - 0.5


def run_search(storage: str, n_trials: int, dataset="mnist", train_size=1000, profile=None, *,
               study_name="recon_weights", steps: int = 60, grad_samples: int = 8,
               batch_size: int | None = None, n_per_class: int = 20, device="cpu",
               log=print) -> dict:
    """Run TPE trials until the study holds ``n_trials`` finished trials (resumes a study);
    returns the ``search`` record."""
    import optuna

    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials <= 0:
        raise ConfigError(f"n_trials={n_trials!r}: a search needs at least one trial")
    st = open_storage(storage)
    clf, _ = attacked_classifier("cnn", dataset, train_size, profile, device)
    judge = make_judge(clf.model, dataset, train_size, device=device, n_permutations=200)
    study = optuna.create_study(study_name=study_name, storage=st, direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=10),
                                load_if_exists=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        ov = trial_weights(trial)
        extra = {"batch_size": batch_size} if batch_size else {}
        cfg = recon_cfg(profile, 0, {**ov, "steps": steps, "grad_samples": grad_samples, **extra},
                        LEGACY_BASE)
        rec = get_reconstructor_for_search(clf, cfg, device)
        gen, hist = rec.model, rec.history
        x, y, _ = sample(gen, n_per_class, mode=_default_sampling(), seed=1000)
        m = judge.metrics(x, y)
        for k in ("label_accuracy", "verifier_accuracy", "nn_accuracy", "ncc_train", "ncc_test"):
            trial.set_user_attr(k, m[k])
        trial.set_user_attr("train_closer_share", m["train_closer"]["share"])
        trial.set_user_attr("seconds", hist["seconds"])
        trial.set_user_attr("steps", steps)
        trial.set_user_attr("batch_size", cfg.batch_size)
        v = objective_value(m)
        log(f"[search trial {trial.number}] value {v:.3f} verifier {m['verifier_accuracy']:.3f} "
            f"closer {m['train_closer']['share']:.3f} label {m['label_accuracy']:.3f} "
            f"({hist['seconds']:.0f} s)")
        return v

    def finished():
        return sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)

    while finished() < n_trials:
        study.optimize(objective, n_trials=1)
    return search_record(study, storage, steps)


def get_reconstructor_for_search(clf, cfg, device):
    from .reconstruct import get_reconstructor
    return get_reconstructor(clf, cfg, device=device, progress=False)


def _default_sampling():
    from .reconstruct import DEFAULT_SAMPLING
    return DEFAULT_SAMPLING


def search_record(study, storage: str, steps: int) -> dict:
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial if done else None
    return {"trials": len(done), "steps_per_trial": steps, "storage": str(storage),
            "study_name": study.study_name, "sampler": "TPE (seed 0, 10 random start-up trials)",
            "objective": "verifier_accuracy + (train_closer share - 0.5)",
            "best_value": best.value if best else None,
            "best_weights": ({k: v for k, v in best.params.items()} if best else None),
            "best_metrics": best.user_attrs if best else None,
            "all": [{"number": t.number, "value": t.value, **t.params, **t.user_attrs}
                    for t in done]}


def best_overrides(params: dict) -> dict:
    """Reconstruction overrides from a trial's ``params``."""
    p = dict(params)
    pert = p.pop("perturbation")
    return {"weights": p, "perturbation": pert.split("_")[0], "epsilon": float(pert.split("_")[1])}


def run_best(storage: str, out, dataset="mnist", train_size=1000, profile=None, *,
             seeds=(0, 1, 2), study_name="recon_weights", device="cpu", log=print) -> dict:
    """Rerun the search's best weights at the profile's full steps for ``seeds``; the attempt
    ``search_best`` is appended to ``out`` (skipped when already there)."""
    check_writable(out)
    rec = load_search(storage, study_name)
    if not rec["trials"]:
        raise ConfigError(f"the study in {storage} has no finished trial to rerun")
    spec = {"name": "search_best", "classifier": "cnn", "train_size": None,
            "overrides": best_overrides(rec["best_weights"])}
    done = json.loads(Path(out).read_text()) if Path(out).exists() else []
    # the same key as run_attempts: (name, dataset, training-set size), seeds included
    same = [d for d in done if (d["name"], d["dataset"], d["train_size"]) == ("search_best", dataset,
                                                                          train_size)
            and set(seeds) <= set(d["seeds"])]
    if same:
        log(f"[attempt search_best {dataset}-{train_size}] already in {out}")
        return same[0]
    res = run_attempt(spec, dataset, train_size, profile, seeds=seeds, device=device,
                      base_overrides=LEGACY_BASE, log=log)
    done.append(res)
    write_json(out, done)
    return res


def load_search(storage: str, study_name: str = "recon_weights") -> dict:
    """The ``search`` record of an existing study (no trials are run)."""
    import optuna

    if "://" not in storage and not Path(storage).exists():
        raise ConfigError(f"no search storage at {storage}; run `python -m "
                          f"netinv_core.recon_attempts search --storage {storage}` first")
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
    steps = {t.user_attrs.get("steps") for t in study.trials} - {None}
    return search_record(study, storage, steps.pop() if len(steps) == 1 else None)


def add_subcommands(sub) -> None:
    """The ``search``, ``best`` and ``record`` subcommands of ``python -m netinv_core.recon_attempts``."""
    s = sub.add_parser("search")
    s.add_argument("--storage", required=True)
    s.add_argument("--trials", type=int, default=40)
    s.add_argument("--dataset", default="mnist")
    s.add_argument("--train-size", type=int, default=1000)
    s.add_argument("--profile", default=DEFAULT_PROFILE)
    s.add_argument("--steps", type=int, default=60)
    s.add_argument("--batch-size", type=int, default=None)
    s.add_argument("--grad-samples", type=int, default=8)
    s.add_argument("--out", default=None, help="write the search record here (JSON)")
    b = sub.add_parser("best", help="rerun the search's best weights at full steps")
    b.add_argument("--storage", required=True)
    b.add_argument("--out", required=True, help="the attempts file to append search_best to")
    b.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    b.add_argument("--dataset", default="mnist",
                   help="rerun the (MNIST-searched) best weights on this dataset")
    b.add_argument("--train-size", type=int, default=1000)
    b.add_argument("--profile", default=DEFAULT_PROFILE)
    r = sub.add_parser("record", help="fold the attempts (and a search) into the Figure 5 JSON "
                                      "and redraw the attempts grid (nothing is trained)")
    r.add_argument("--json", default="figures/fig5_reconstruction.json")
    r.add_argument("--attempts", default="figures/fig5_attempts.json")
    r.add_argument("--storage", default=None, help="an Optuna storage whose search to record")
    r.add_argument("--note", default=None, help="why the search stopped where it did")
    r.add_argument("--profile", default=DEFAULT_PROFILE)


def record_attempts(json_path, attempts_path, storage: str | None = None, note: str | None = None,
                    profile=None, log=print) -> dict:
    """Fold the attempts file (1-seed records superseded by a rerun with more seeds dropped) and,
    with ``storage``, the search into the Figure 5 record ``json_path``, and redraw
    ``fig5_attempts{,_stretched}`` beside it from the cached generators: what the notebook's
    attempts cell does, without rerunning the reconstructions of every dataset."""
    from .recon_attempts import format_attempts_table, superseded_removed
    from .results import save_json

    json_path, attempts_path = Path(json_path), Path(attempts_path)
    for p in (json_path, attempts_path):
        if not p.exists():
            raise ConfigError(f"{p} does not exist; run the Figure 5 notebook or "
                              f"`python -m netinv_core.recon_attempts attempts --out {p}` first")
    check_writable(json_path)
    _attempt_judge.cache_clear()       # judges live for one record call, not the process
    rec = json.loads(json_path.read_text())
    rec["attempts"] = superseded_removed(json.loads(attempts_path.read_text()))
    for att in rec["attempts"]:
        if "pooled" not in att:        # recorded before pooling: rescore from cached generators
            att["pooled"] = pooled_from_cache(att, profile, log)
    rec["attempt_baselines"] = attempt_baselines(rec, profile, log)
    if storage:
        old = rec.get("search") or {}
        rec["search"] = load_search(storage)
        if note or (old.get("note") and old.get("trials") == rec["search"]["trials"]):
            rec["search"]["note"] = note or old["note"]
    save_json(rec, json_path)
    log(format_attempts_table(rec["attempts"]))
    attempts_figures(rec["attempts"], json_path.parent, profile)
    return rec


@functools.lru_cache(maxsize=4)
def _attempt_judge(classifier: str, dataset: str, train_size: int, profile=None):
    """The judge of a recorded attempt's attacked classifier (cached: ``record`` asks for the same
    one for its pooled metrics, baselines and nearest-image figure)."""
    clf, _ = attacked_classifier(classifier, dataset, train_size, profile, "cpu")
    return make_judge(clf.model, dataset, train_size)


def attempt_baselines(rec: dict, profile=None, log=print) -> dict:
    """``{"<dataset>-<train size>": baselines}`` for every attempt's dataset and training-set size
    that has no Figure 5 row (whose ``baselines`` would calibrate it), e.g. CIFAR-10-1000: the
    same judge's metrics on all-black, class-mean, wrong-class, noise and real held-out images.
    Kept from ``rec`` when already there; computed with the cached attacked classifier."""
    from .config import get_profile

    have = {(ds, r["train_size"]) for ds, rows in rec.get("datasets", {}).items() for r in rows}
    old = rec.get("attempt_baselines") or {}
    out = {}
    for a in rec["attempts"]:
        key = f"{a['dataset']}-{a['train_size']}"
        if (a["dataset"], a["train_size"]) in have or key in out:
            continue
        if key in old:
            out[key] = old[key]
            continue
        judge = _attempt_judge(a["classifier"], a["dataset"], a["train_size"], profile)
        out[key] = judge.baselines(get_profile(profile).recon.n_per_class)
        log(f"[record] baselines for {key}: " + ", ".join(
            f"{k} verifier {m['verifier_accuracy']:.3f} NCC {m['ncc_train']:.3f}"
            for k, m in out[key].items()))
    return out


def attempts_figures(records: list[dict], out_dir, profile=None, save=None) -> None:
    """Figures of the recorded attempts in ``out_dir``, from the cached generators (nothing is
    trained): per dataset, ``fig5_attempts{,_stretched}`` (MNIST) or
    ``fig5_attempts_<dataset>{,_stretched}``, seed 0 of every attempt, one column each (control,
    default and the lab-faithful variant first; titled with the training-set size unless it is
    1000), at the fixed [0, 1] range and contrast-stretched; and
    ``fig5_attempts_<dataset>_<name>[_<size>]_nearest`` (size unless 1000) for every attempt whose
    pooled reconstructions are training-like (positive controls excepted). Written by ``save(fig, stem)`` (default
    ``results.save_figure``; the notebook passes ``show_and_save``). Used by the notebook and by
    ``record``."""
    from .data import CLASS_NAMES
    from .plotting import attempts_grid
    from .recon_attempts import attempt_samples
    from .results import save_figure

    first = ("mlp_positive_control", "default", "last_dropout", "lab_sign_noise")
    for ds in sorted({r["dataset"] for r in records}, key=lambda d: (d != "mnist", d)):
        shown = sorted((r for r in records if r["dataset"] == ds),
                       key=lambda r: first.index(r["name"]) if r["name"] in first else len(first))
        cols = [attempt_samples(r, profile)[0] for r in shown]
        stem = "fig5_attempts" if ds == "mnist" else f"fig5_attempts_{ds}"
        for stretched, suffix, how in ((False, "", "fixed [0, 1] range"),
                                       (True, "_stretched", "contrast-stretched per image")):
            fig = attempts_grid(cols, [_label(r) for r in shown], CLASS_NAMES[ds],
                                stretched=stretched, title=f"{ds} attempts (seed 0), {how}")
            (save or save_figure)(fig, Path(out_dir) / f"{stem}{suffix}")
    for r in records:       # look at what "training-like" means: the nearest real images
        pooled = r.get("pooled") or {}
        if pooled.get("training_like") and r.get("classifier") != "mlp":
            size = "" if r["train_size"] == 1000 else f"_{r['train_size']}"
            (save or save_figure)(attempt_nearest_figure(r, profile), Path(out_dir) /
                                  f"fig5_attempts_{r['dataset']}_{r['name']}{size}_nearest")


def _label(rec: dict) -> str:
    """An attempt's column title: its name, and its training-set size unless it is 1000."""
    return rec["name"] + ("" if rec["train_size"] == 1000 else f" (n={rec['train_size']})")


def attempt_nearest_figure(rec: dict, profile=None, per_class: int = 2):
    """Seed 0's reconstructions of a recorded attempt next to their nearest (NCC) image of the
    attacked classifier's training set and of the size-matched held-out pool, as the judge
    matches them (nothing is trained)."""
    from .data import CLASS_NAMES
    from .plotting import nearest_columns
    from .recon_attempts import attempt_samples

    judge = _attempt_judge(rec["classifier"], rec["dataset"], rec["train_size"], profile)
    x, y = attempt_samples(rec, profile, n_per_class=per_class)
    m = judge.metrics(x, y, with_matches=True)
    return nearest_columns(x, y, judge.data.train_x, judge.data.heldout_x, m["_matches"],
                           CLASS_NAMES[rec["dataset"]], per_class,
                           title=f"{rec['dataset']}-{rec['train_size']} {rec['name']} (seed "
                                 f"{rec['seeds'][0]}): reconstruction, nearest training image, "
                                 f"nearest held-out image (NCC); train-closer share "
                                 f"{m['train_closer']['share']:.2f} on these {len(x)}")


def pooled_from_cache(rec: dict, profile=None, log=print) -> dict | None:
    """``pooled_record`` of a recorded attempt, resampled from its cached generators (the same
    images as its per-seed metrics: sampling mode and seeds of the record); None, with a line
    saying why, when a generator is not in the cache."""
    from .config import get_profile
    from .errors import NetinvError
    from .recon_attempts import attempt_samples, pooled_record

    n = get_profile(profile).recon.n_per_class
    try:
        judge = _attempt_judge(rec["classifier"], rec["dataset"], rec["train_size"], profile)
        samples = [attempt_samples(rec, profile, n, i) for i in range(len(rec["seeds"]))]
    except NetinvError as e:
        log(f"[record] {rec['name']} seeds {rec['seeds']}: not pooled ({e})")
        return None
    return pooled_record(judge, samples)


def run_subcommand(args, log) -> None:
    """Run the parsed ``search``, ``best`` or ``record`` subcommand."""
    if args.cmd == "record":
        record_attempts(args.json, args.attempts, args.storage, args.note, args.profile, log)
        return
    if args.cmd == "best":
        run_best(args.storage, args.out, args.dataset, args.train_size, args.profile,
                 seeds=tuple(args.seeds), log=log)
        return
    if args.out:
        check_writable(args.out)
    rec = run_search(args.storage, args.trials, args.dataset, args.train_size, args.profile,
                     steps=args.steps, grad_samples=args.grad_samples,
                     batch_size=args.batch_size, log=log)
    if args.out:
        write_json(args.out, rec)
    log(json.dumps({k: v for k, v in rec.items() if k != "all"}))
