"""Network inversion (Section 3.3): train one conditioned generator against a frozen classifier.

Any ``torch.nn.Module`` that maps images in [0, 1] to logits can be inverted; the cosine and
orthogonality terms need its features, read by a forward hook on the module named by
``feature_layer`` (for netinv's own ``Classifier``: ``"penultimate"``).
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from .cache import GLOBAL_RNG, restore_state, save_state
from .config import GeneratorConfig, to_dict
from .errors import ConfigError, ShapeError
from .generator import Generator, sample_conditioning
from .losses import inversion_loss


class FeatureTap(nn.Module):
    """Wrap a classifier so that calling it returns ``(logits, features)``.

    ``features`` is the (flattened) output of the submodule named ``feature_layer``.
    """

    def __init__(self, model: nn.Module, feature_layer: str | None = None):
        super().__init__()
        feature_layer = feature_layer or getattr(model, "feature_layer", None)
        modules = dict(model.named_modules())
        if not feature_layer or feature_layer not in modules or feature_layer == "":
            names = [n for n in modules if n]
            raise ConfigError(
                f"feature layer {feature_layer!r} not found in {type(model).__name__}; pass "
                f"feature_layer= one of its submodule names: {names[:40]}"
                f"{' ...' if len(names) > 40 else ''}")
        self.model, self.feature_layer = model, feature_layer
        self._out = None
        self._handle = modules[feature_layer].register_forward_hook(self._hook)

    def remove(self) -> None:
        """Detach the hook from the wrapped model."""
        self._handle.remove()

    def _hook(self, module, inputs, output):
        self._out = output

    def forward(self, x: torch.Tensor):
        self._out = None
        logits = self.model(x)
        if self._out is None:
            raise ConfigError(f"feature layer {self.feature_layer!r} was not called in the "
                              f"forward pass; choose a layer the forward pass uses")
        return logits, self._out.flatten(1)


def check_classifier_input(model: nn.Module, image_shape, device="cpu") -> int:
    """Run one dummy batch; return the number of classes or raise ``ShapeError``."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.rand(2, *image_shape, device=device))
    except ShapeError:
        raise
    except Exception as e:
        raise ShapeError(f"the classifier cannot take images of shape {tuple(image_shape)} "
                         f"({type(e).__name__}: {e}); generate images of the shape it was "
                         f"trained on") from None
    finally:
        model.train(was)
    if out.dim() != 2:
        raise ShapeError(f"the classifier must return logits of shape (B, N); got {tuple(out.shape)}")
    return out.shape[1]


@contextmanager
def frozen(model: nn.Module):
    """Evaluation mode and no parameter gradients for the duration; restored afterwards."""
    flags = [p.requires_grad for p in model.parameters()]
    was = model.training
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(was)


def inversion_step(gen: Generator, opt: torch.optim.Optimizer, tap: FeatureTap,
                   cfg: GeneratorConfig, rng: torch.Generator, device="cpu") -> dict:
    """One Adam step on L_Inv for a batch of ``cfg.batch_size`` fresh latents and conditionings.

    Returns the step's loss, its unweighted terms (kl, ce, cosine, ortho) and batch accuracy.
    """
    cond = sample_conditioning(cfg.conditioning, cfg.batch_size, gen.num_classes, generator=rng)
    z = torch.randn(cfg.batch_size, cfg.latent_dim, generator=rng)
    cond = cond.to(device)
    x = gen(z.to(device), cond)                     # (B, C, H, W) in [0, 1]
    logits, feats = tap(x)                          # (B, N), (B, D)
    loss, terms = inversion_loss(logits, feats, cond.p, cond.labels, cfg.weights)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.item(), **{k: v.item() for k, v in terms.items()},
            "batch_accuracy": (logits.argmax(1) == cond.labels).float().mean().item()}


def fit_generator(gen: nn.Module, opt: torch.optim.Optimizer, rng: torch.Generator,
                  step_fn: Callable[[], dict], steps: int, *, classifier: nn.Module, keys,
                  kind: str, meta: dict, checkpoint: str | Path | None = None,
                  checkpoint_every: int = 100, progress: bool = True,
                  callback: Callable[[dict], None] | None = None, desc: str = "generator") -> dict:
    """The resumable loop shared by inversion and reconstruction: ``steps`` calls of ``step_fn``
    (one optimiser step, returning its record) with ``classifier`` frozen; returns the history
    (``step`` plus ``keys`` per step, and ``seconds`` of training).

    With ``checkpoint`` set, the generator, optimiser, both random states and the history are
    written atomically (as ``kind`` for ``meta``) every ``checkpoint_every`` steps and at the end;
    a rerun with the same ``meta`` resumes there and, on the same device, ends as an uninterrupted
    run would. ``callback(record)`` runs after every step (it may raise to stop training).
    """
    history: dict[str, list] = {k: [] for k in ("step", *keys)}
    start, seconds = 0, 0.0
    state = {"model": gen, "optimizer": opt, "rng": GLOBAL_RNG, "sample_rng": rng}
    rest = restore_state(checkpoint, kind=kind, config=meta, objects=state)
    if rest is not None:
        history, start, seconds = rest["history"], rest["step"], rest["seconds"]
    gen.train()
    with frozen(classifier):
        bar = tqdm(range(start, steps), desc=desc, disable=not progress, leave=False,
                   initial=start, total=steps)
        t0 = time.perf_counter()
        for step in bar:
            rec = {"step": step + 1, **step_fn()}
            for k, v in rec.items():
                history[k].append(v)
            if progress:
                bar.set_postfix(loss=f"{rec['loss']:.3f}", acc=f"{rec['batch_accuracy']:.2f}")
            done = step + 1
            if checkpoint is not None and (done % checkpoint_every == 0 or done == steps):
                save_state(checkpoint, kind=kind, config=meta, objects=state, history=history,
                           step=done, seconds=seconds + time.perf_counter() - t0)
            if callback is not None:
                callback(rec)
        seconds += time.perf_counter() - t0
    history["seconds"] = seconds
    return history


def train_generator(classifier: nn.Module, cfg: GeneratorConfig, image_shape, *,
                    feature_layer: str | None = None, device="cpu",
                    checkpoint: str | Path | None = None, checkpoint_every: int = 100,
                    progress: bool = True, callback: Callable[[dict], None] | None = None):
    """Train a generator to invert ``classifier``; returns ``(generator, history)``.

    Each step draws B latents z ~ N(0, I) and B conditionings (``cfg.conditioning``), generates
    images, passes them through the frozen classifier (eval mode, no parameter updates) and
    minimises L_Inv (``losses.inversion_loss``) with Adam. ``history`` holds per-step loss terms
    and the batch inversion accuracy. With ``checkpoint`` set, the state is written atomically
    every ``checkpoint_every`` steps; a rerun with the same config resumes from it and, on the
    same device, gives the same result as an uninterrupted run. ``callback(record)`` is called
    after every step (it may raise to stop training).
    """
    image_shape = tuple(image_shape)
    num_classes = check_classifier_input(classifier, image_shape, device)
    tap = FeatureTap(classifier, feature_layer)
    torch.manual_seed(cfg.seed)
    gen = Generator(num_classes, image_shape, cfg).to(device)
    opt = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    rng = torch.Generator().manual_seed(cfg.seed)
    meta = {"generator": to_dict(cfg), "image_shape": list(image_shape), "num_classes": num_classes}
    history = fit_generator(
        gen, opt, rng, lambda: inversion_step(gen, opt, tap, cfg, rng, device), cfg.steps,
        classifier=classifier, keys=("loss", "kl", "ce", "cosine", "ortho", "batch_accuracy"),
        kind="generator-partial", meta=meta, checkpoint=checkpoint,
        checkpoint_every=checkpoint_every, progress=progress, callback=callback,
        desc=f"generator ({cfg.conditioning}, seed {cfg.seed})")
    tap.remove()
    return gen, history
