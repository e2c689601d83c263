"""Cached building blocks for a profile: a trained classifier and trained generators.

``get_classifier`` and ``get_generator`` return a model from the checkpoint cache when one exists
for the exact config (``cache.checkpoint_path``), resume a partial run when one was interrupted,
and train otherwise. Final checkpoints hold the config, the metrics and the library versions.
"""
from __future__ import annotations

from dataclasses import replace

import torch

from .cache import Trained, default_device, load_or_train  # noqa: F401  (re-exported)
from .classifier import Classifier, evaluate, train_classifier
from .config import (ClassifierConfig, GeneratorConfig, classifier_config,  # noqa: F401
                     get_profile, to_dict)
from .data import IMAGE_SHAPES, balanced_subset, load_dataset
from .device import resolve_device
from .generator import Generator
from .inversion import stop_min_steps, train_generator
from .metrics import inversion_report


MISSING_HINT = ("make it with notebooks/fig2_inversion.ipynb (./run_all.sh) or "
                "`python -m netinv_core.bench inversion --dataset {dataset} --profile PROFILE`, "
                "or allow training here (train_missing=True)")


def get_classifier(cfg: ClassifierConfig, *, device=None, progress=True, retrain=False,
                   train_missing: bool = True) -> Trained:
    """The classifier for ``cfg``: from the cache, or trained (resuming a partial run) and cached.

    With ``train_missing=False`` a missing checkpoint is an error that says how to make it.
    """
    device = str(resolve_device(device))
    shape = IMAGE_SHAPES[cfg.dataset]

    def train(partial):
        data = load_dataset(cfg.dataset, "train")
        if cfg.train_size is not None:
            data = data.subset(balanced_subset(data.y, cfg.train_size, seed=cfg.seed))
        test = load_dataset(cfg.dataset, "test")
        model, history = train_classifier(cfg, data, device=device,
                                          checkpoint=partial, progress=progress)
        metrics = {"test_accuracy": evaluate(model, test, device),
                   "train_size": len(data), "train_seconds": sum(history["seconds"])}
        return model, history, metrics, {"num_classes": data.num_classes}

    conf = to_dict(cfg)
    return load_or_train(
        "classifier", conf, cfg.dataset, cfg, device=device, retrain=retrain,
        train_missing=train_missing,
        build=lambda st: Classifier(shape, st["num_classes"], cfg.dropout), train=train,
        what=f"{cfg.dataset} classifier for {conf}", hint=MISSING_HINT.format(dataset=cfg.dataset))


def get_generator(classifier: Trained, cfg: GeneratorConfig, *, device=None, progress=True,
                  checkpoint_every: int = 100, eval_samples: int = 1000, retrain=False,
                  train_missing: bool = True, feature_layer: str | None = None) -> Trained:
    """A generator inverting ``classifier`` for ``cfg``: cached, resumed, or trained and cached.

    Its metrics are ``metrics.inversion_report`` on ``eval_samples`` fresh samples plus
    ``generator_seconds`` (wall time of generator training alone). ``feature_layer`` names the
    classifier layer of the cosine and orthogonality terms (default: the classifier's own,
    ``"penultimate"``, after the activation; ``"penultimate.0"`` is the linear layer before it);
    the metrics' feature numbers use the same layer. A non-default layer is part of the cache key.
    """
    device = str(resolve_device(device))
    ccfg: ClassifierConfig = classifier.config
    shape = IMAGE_SHAPES[ccfg.dataset]
    num_classes = classifier.model.num_classes

    def train(partial):
        gen, history = train_generator(classifier.model, cfg, shape, device=device,
                                       checkpoint=partial, checkpoint_every=checkpoint_every,
                                       progress=progress, feature_layer=feature_layer)
        test = load_dataset(ccfg.dataset, "test")
        metrics = inversion_report(classifier.model, gen, test, n=eval_samples, device=device,
                                   keep_dropout=cfg.dropout_at_generation,
                                   feature_layer=feature_layer)
        metrics["generator_seconds"] = history["seconds"]
        metrics["torch_threads"] = torch.get_num_threads()
        metrics["device"] = torch.cuda.get_device_name(0) if str(device).startswith("cuda") else "cpu"
        metrics["steps"] = len(history["step"])   # fewer than cfg.steps after an early stop
        return gen, history, metrics, {}

    conf = {"classifier": to_dict(ccfg), "generator": to_dict(cfg), "eval_samples": eval_samples}
    if feature_layer is not None and feature_layer != getattr(classifier.model, "feature_layer", None):
        conf["feature_layer"] = feature_layer
    return load_or_train(
        "generator", conf, ccfg.dataset, cfg, device=device, retrain=retrain,
        train_missing=train_missing, build=lambda st: Generator(num_classes, shape, cfg),
        train=train, what=f"{ccfg.dataset} generator (seed {cfg.seed})", stale=stopped_too_soon(cfg),
        hint=MISSING_HINT.format(dataset=ccfg.dataset))


def stopped_too_soon(cfg: GeneratorConfig):
    """``stale`` test of a cached generator: one that stopped early before ``stop_min_steps``
    (trained before that rule) is trained again; every other cached generator is what the rule
    gives, since it only delays a stop."""
    if cfg.stop_at_accuracy is None:
        return None
    least = min(cfg.steps, stop_min_steps(cfg.steps))
    return lambda state: state["metrics"].get("steps", cfg.steps) < least


def profile_generators(dataset: str, profile=None, *, conditioning=None, weights=None,
                       n_generators=None, device=None, progress=True, train_missing=True,
                       seeds=None, feature_layer=None, **gen_overrides):
    """The classifier and the profile's ``n_generators`` independently seeded generators
    (seeds 0..n-1, or ``seeds``); ``feature_layer`` as in ``get_generator``."""
    prof = get_profile(profile)
    clf = get_classifier(classifier_config(dataset, prof), device=device, progress=progress,
                         train_missing=train_missing)
    overrides = dict(gen_overrides)
    if conditioning is not None:
        overrides["conditioning"] = conditioning
    if weights is not None:
        overrides["weights"] = weights
    gens = []
    for seed in (seeds if seeds is not None else range(n_generators or prof.n_generators)):
        cfg = replace(prof.generator_config(seed=seed), **overrides)
        gens.append(get_generator(clf, cfg, device=device, progress=progress,
                                  checkpoint_every=prof.checkpoint_every,
                                  eval_samples=prof.eval_samples, train_missing=train_missing,
                                  feature_layer=feature_layer))
    return clf, gens
