"""Network inversion (Section 3.3): train one conditioned generator against a frozen classifier.

Any ``torch.nn.Module`` that maps images in [0, 1] to logits can be inverted; the cosine and
orthogonality terms need its features, read by a forward hook on the module named by
``feature_layer`` (for netinv's own ``Classifier``: ``"penultimate"``).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
from tqdm.std import tqdm  # text bars: widget bars show "model not found" after a reload

from .cache import GLOBAL_RNG, check_checkpoint_path, restore_state, save_state
from .config import GeneratorConfig, to_dict
from .device import resolve_device, same_device
from .errors import ConfigError, ShapeError, TrainingDivergedError
from .frozen import frozen, inversion_ready  # noqa: F401  (frozen: its historical import path)
from .generator import Conditioning, Generator, sample_conditioning
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
        if not isinstance(self._out, torch.Tensor):
            layer = type(dict(self.model.named_modules())[self.feature_layer]).__name__
            raise ConfigError(
                f"feature layer {self.feature_layer!r} ({layer}) returns a "
                f"{type(self._out).__name__}, not one tensor; choose a layer whose output is a "
                f"tensor (e.g. the Linear or activation after it), or wrap it in a module that "
                f"returns the part you mean")
        return logits, self._out.flatten(1)


def check_image_shape(image_shape) -> tuple[int, int, int]:
    """``image_shape`` as ``(C, H, W)`` of positive ints, else ``ShapeError``."""
    shape = tuple(image_shape) if isinstance(image_shape, (tuple, list, torch.Size)) else None
    if shape is None or len(shape) != 3 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape):
        raise ShapeError(f"image_shape must be (channels, height, width) of one image, e.g. "
                         f"(1, 28, 28) or (3, 32, 32); got {image_shape!r}")
    return shape


def check_classifier_input(model: nn.Module, image_shape, device="cpu") -> int:
    """Check ``model`` against ``image_shape`` and ``device`` with one dummy batch; return its
    number of classes N, or raise a ``ConfigError`` / ``ShapeError`` saying what to change.

    The model must: be a module on ``device`` with float32 parameters, take a (B, C, H, W) batch
    in [0, 1], and return one finite logits tensor of shape (B, N) with N >= 2.
    """
    image_shape = check_image_shape(image_shape)
    device = resolve_device(device)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"the classifier must be a torch.nn.Module, got {type(model).__name__}")
    params = list(model.parameters()) + list(model.buffers())
    floats = {p.dtype for p in params if p.is_floating_point()}
    if floats - {torch.float32}:
        raise ConfigError(f"the classifier's parameters are {sorted(map(str, floats))}; netinv "
                          f"generates float32 images: call model.float() first")
    on = {p.device for p in params}
    if any(not same_device(d, device) for d in on):
        raise ConfigError(f"the classifier is on {sorted(map(str, on))} but device={str(device)!r}; "
                          f"move it there first: model.to({str(device)!r})")
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.rand(2, *image_shape, device=device))
    except (ShapeError, ConfigError):
        raise
    except Exception as e:
        raise ShapeError(f"the classifier cannot take images of shape {tuple(image_shape)} "
                         f"({type(e).__name__}: {e}); generate images of the shape it was "
                         f"trained on") from None
    finally:
        model.train(was)
    if not isinstance(out, torch.Tensor):
        raise ShapeError(f"the classifier returns a {type(out).__name__}; inversion needs a module "
                         f"that returns only the logits tensor (B, N): wrap it, e.g. "
                         f"forward(x) = model(x)[0]")
    if out.dim() != 2:
        raise ShapeError(f"the classifier must return logits of shape (B, N); got {tuple(out.shape)}")
    if out.shape[1] < 2:
        raise ShapeError(f"the classifier returns {out.shape[1]} logit per image; inversion needs "
                         f">= 2 classes (a softmax over one logit is always 1). For a binary "
                         f"classifier with one logit z, wrap it to return torch.cat([0 * z, z], 1)")
    if not torch.isfinite(out).all():
        raise ConfigError("the classifier returns non-finite logits (NaN or inf) for random "
                          "images in [0, 1]; check its weights and forward pass before inverting it")
    return out.shape[1]


def autocast(device, precision: str = "fp32"):
    """``torch.autocast`` for ``precision`` ("bf16") on ``device``'s type; a no-op for "fp32"."""
    dev = torch.device(device).type
    return torch.autocast(dev, dtype=torch.bfloat16, enabled=precision == "bf16")


def to_device(t: torch.Tensor, device) -> torch.Tensor:
    """Move a CPU tensor to ``device``; to a GPU through pinned memory without blocking."""
    if torch.device(device).type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def warm_lr(opt: torch.optim.Optimizer, lr: float, warmup: int) -> None:
    """Linear learning-rate warm-up (issue 14 lever, opt-in): Adam step k (1-based) uses
    lr * min(1, k / warmup). The step count is Adam's own (``opt.state[p]["step"]``), so a run
    resumed from a checkpoint continues the schedule where it stopped."""
    p = opt.param_groups[0]["params"][0]
    k = int(opt.state[p]["step"]) + 1 if opt.state.get(p) else 1
    for group in opt.param_groups:
        group["lr"] = lr * min(1.0, k / warmup)


def inversion_step(gen: Generator, opt: torch.optim.Optimizer, tap: FeatureTap,
                   cfg: GeneratorConfig, rng: torch.Generator, device="cpu",
                   sync: bool = True) -> dict:
    """One Adam step on L_Inv for a batch of ``cfg.batch_size`` fresh latents and conditionings.

    Returns the step's loss, its unweighted terms (kl, ce, cosine, ortho) and batch accuracy:
    Python floats, or 0-d tensors on ``device`` with ``sync=False`` (no host synchronisation).
    Latents and conditionings are drawn on the CPU from ``rng`` (so CPU and GPU runs see the
    same draws) and moved to ``device``; images go to the classifier in channels-last layout;
    with ``cfg.precision == "bf16"`` the forward passes run under bf16 autocast and the loss in
    fp32.
    """
    cond = sample_conditioning(cfg.conditioning, cfg.batch_size, gen.num_classes, generator=rng)
    z = torch.randn(cfg.batch_size, cfg.latent_dim, generator=rng)
    cond = Conditioning(*(None if t is None else to_device(t, device)
                          for t in (cond.labels, cond.p, cond.matrix)))
    with autocast(device, cfg.precision):
        x = gen(to_device(z, device), cond)             # (B, C, H, W) in [0, 1]
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        logits, feats = tap(x)                          # (B, N), (B, D)
    logits, feats = logits.float(), feats.float()
    loss, terms = inversion_loss(logits, feats, cond.p, cond.labels, cfg.weights)
    if not torch.isfinite(loss):
        bad = [k for k, v in terms.items() if not torch.isfinite(v)]
        raise TrainingDivergedError(
            f"inversion diverged: non-finite {bad or 'loss'} (classifier logits "
            f"{'finite' if torch.isfinite(logits).all() else 'non-finite'} on generated images); "
            f"nothing was saved for this step. Lower lr (now {cfg.lr}) or the weights of those "
            f"terms, or check that the classifier gives finite logits for images in [0, 1]")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.lr_warmup_steps:
        warm_lr(opt, cfg.lr, cfg.lr_warmup_steps)
    opt.step()
    rec = {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()},
           "batch_accuracy": (logits.detach().argmax(1) == cond.labels).float().mean()}
    return {k: v.item() for k, v in rec.items()} if sync else rec


def steps_to_accuracy(batch_accuracy, target: float = 0.95, window: int = 20):
    """The first step s (1-based) at which the mean batch accuracy of steps s-window+1..s reaches
    ``target``; None if it never does (or fewer than ``window`` steps)."""
    acc = np.asarray(batch_accuracy, dtype=float)
    if len(acc) < window:
        return None
    ma = np.convolve(acc, np.ones(window) / window, mode="valid")
    hit = np.nonzero(ma >= target)[0]
    return int(hit[0] + window) if len(hit) else None


def seconds_to_accuracy(history: dict, target: float = 0.95, window: int = 20):
    """Wall seconds of training until ``steps_to_accuracy`` (from ``history["wall"]``, the
    cumulative seconds recorded at each step's host synchronisation); None if never reached."""
    s = steps_to_accuracy(history.get("batch_accuracy", []), target, window)
    wall = history.get("wall")
    return None if s is None or not wall or len(wall) < s else float(wall[s - 1])


def fit_generator(gen: nn.Module, opt: torch.optim.Optimizer, rng: torch.Generator,
                  step_fn: Callable[[], dict], steps: int, *, classifier: nn.Module, keys,
                  kind: str, meta: dict, checkpoint: str | Path | None = None,
                  checkpoint_every: int = 100, progress: bool = True,
                  callback: Callable[[dict], None] | None = None, desc: str = "generator",
                  sync_every: int = 1, stop_at: float | None = None, window: int = 20,
                  min_steps: int = 0, fold_batchnorm: bool = True) -> dict:
    """The resumable loop shared by inversion and reconstruction: ``steps`` calls of ``step_fn``
    (one optimiser step, returning its record of floats or 0-d tensors) with ``classifier``
    frozen; returns the history (``step`` plus ``keys`` per step, ``wall`` = cumulative training
    seconds at each step, and ``seconds`` of training).

    Tensor records are buffered and read back to the host every ``sync_every`` steps (one
    synchronisation per chunk instead of one per step; on a GPU this keeps the device busy);
    a step's ``wall`` is the time of the synchronisation that read it, so it over-counts by at
    most ``sync_every - 1`` steps. ``callback(record)`` runs for each step at that point (it may
    raise to stop training). With ``stop_at``, training stops at the first synchronisation where
    the mean batch accuracy of the last ``window`` steps is >= ``stop_at``, and not before
    ``min_steps`` steps (``stop_min_steps``). The classifier runs
    ``frozen.inversion_ready`` (BatchNorm folded unless ``fold_batchnorm`` is False: a step that
    uses the classifier's parameters, like L_Grad, must not fold).

    With ``checkpoint`` set, the generator, optimiser, both random states and the history are
    written atomically (as ``kind`` for ``meta``) every ``checkpoint_every`` steps and at the end;
    a rerun with the same ``meta`` resumes there and, on the same device, ends as an uninterrupted
    run would.
    """
    history: dict[str, list] = {k: [] for k in ("step", *keys, "wall")}
    start, seconds = 0, 0.0
    if checkpoint is not None:
        checkpoint = check_checkpoint_path(checkpoint)
    state = {"model": gen, "optimizer": opt, "rng": GLOBAL_RNG, "sample_rng": rng}
    rest = restore_state(checkpoint, kind=kind, config=meta, objects=state)
    if rest is not None:
        history, start, seconds = rest["history"], rest["step"], rest["seconds"]

    def reached() -> bool:
        acc = history.get("batch_accuracy", [])
        return (stop_at is not None and len(acc) >= max(window, min_steps)
                and sum(acc[-window:]) / window >= stop_at)

    gen.train()
    with inversion_ready(classifier, fold=fold_batchnorm):
        bar = tqdm(range(start, steps), desc=desc, disable=not progress, leave=False,
                   initial=start, total=steps)
        t0 = time.perf_counter()
        pending: list[dict] = []
        for step in bar:
            if reached():
                break
            pending.append({"step": step + 1, **step_fn()})
            done = step + 1
            save = checkpoint is not None and (done % checkpoint_every == 0 or done == steps)
            if len(pending) < sync_every and not save and done != steps:
                continue
            recs = _read_back(pending)
            pending = []
            wall = seconds + time.perf_counter() - t0
            for rec in recs:
                for k, v in rec.items():
                    history[k].append(v)
                history["wall"].append(wall)
            if progress:
                bar.set_postfix(loss=f"{recs[-1]['loss']:.3f}",
                                acc=f"{recs[-1]['batch_accuracy']:.2f}")
            stop = reached()
            if checkpoint is not None and (save or stop):
                save_state(checkpoint, kind=kind, config=meta, objects=state, history=history,
                           step=done, seconds=wall)
            if callback is not None:
                for rec in recs:
                    callback(rec)
            if stop:
                break
        seconds += time.perf_counter() - t0
    history["seconds"] = seconds
    return history


def _read_back(records: list[dict]) -> list[dict]:
    """Records with Python floats: 0-d tensors are stacked and read in one transfer."""
    if not records:
        return []
    keys = [k for k, v in records[0].items() if isinstance(v, torch.Tensor)]
    if not keys:
        return records
    vals = torch.stack([torch.stack([r[k].float() for k in keys]) for r in records]).tolist()
    return [{**r, **dict(zip(keys, row))} for r, row in zip(records, vals)]


def stop_min_steps(steps: int) -> int:
    """The fewest steps an early stop (``stop_at_accuracy``) allows: a tenth of the budget, at
    least the 20-step window. Without it, label-conditioned FashionMNIST generators (bf16, lr 2e-3,
    stop 0.97) stopped after 25 steps on a batch accuracy their fresh samples did not hold: 99.9%,
    96.7% and 86.9% for seeds 0-2 (the batch accuracy uses the generator's batch statistics, the
    fresh samples its BatchNorm running averages, 25 updates old there: a likely cause, not
    measured)."""
    return max(20, steps // 10)


def train_generator(classifier: nn.Module, cfg: GeneratorConfig, image_shape, *,
                    feature_layer: str | None = None, device="cpu",
                    checkpoint: str | Path | None = None, checkpoint_every: int = 100,
                    progress: bool = True, callback: Callable[[dict], None] | None = None,
                    on_start: Callable[[Generator], None] | None = None,
                    sync_every: int | None = None):
    """Train a generator to invert ``classifier``; returns ``(generator, history)``.

    Each step draws B latents z ~ N(0, I) and B conditionings (``cfg.conditioning``), generates
    images, passes them through the frozen classifier (eval mode, no parameter updates) and
    minimises L_Inv (``losses.inversion_loss``) with Adam. ``history`` holds per-step loss terms
    and the batch inversion accuracy. With ``checkpoint`` set, the state is written atomically
    every ``checkpoint_every`` steps; a rerun with the same config resumes from it and, on the
    same device, gives the same result as an uninterrupted run. ``callback(record)`` is called
    after every step (it may raise to stop training); ``on_start(generator)`` once before the
    first step (e.g. to draw previews from it in ``callback``). On a GPU the records are read
    back every ``sync_every`` steps (default: 1 on the CPU, where reading is free, 25 on a GPU).
    ``cfg.stop_at_accuracy`` stops training early once the 20-step mean batch accuracy reaches it,
    after at least ``stop_min_steps(cfg.steps)`` steps.

    Speed (issue 14): the generator's weights and its images are kept channels-last (faster
    convolutions and BatchNorm with oneDNN / cuDNN; the same numbers up to float rounding),
    ``cfg.precision="bf16"`` runs the forward passes under bf16 autocast.
    """
    image_shape = check_image_shape(image_shape)
    device = resolve_device(device)
    num_classes = check_classifier_input(classifier, image_shape, device)
    tap = FeatureTap(classifier, feature_layer)
    try:
        with torch.no_grad(), frozen(classifier):
            tap(torch.rand(2, *image_shape, device=device))  # a bad feature layer fails here
    except Exception:
        tap.remove()
        raise
    torch.manual_seed(cfg.seed)
    gen = Generator(num_classes, image_shape, cfg).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    rng = torch.Generator().manual_seed(cfg.seed)
    meta = {"generator": to_dict(cfg), "image_shape": list(image_shape), "num_classes": num_classes}
    if on_start is not None:
        on_start(gen)
    try:
        history = fit_generator(
            gen, opt, rng, lambda: inversion_step(gen, opt, tap, cfg, rng, device, sync=False),
            cfg.steps, classifier=classifier,
            keys=("loss", "kl", "ce", "cosine", "ortho", "batch_accuracy"),
            kind="generator-partial", meta=meta, checkpoint=checkpoint,
            checkpoint_every=checkpoint_every, progress=progress, callback=callback,
            desc=f"generator ({cfg.conditioning}, seed {cfg.seed})",
            sync_every=sync_every or (25 if torch.device(device).type == "cuda" else 1),
            stop_at=cfg.stop_at_accuracy, min_steps=stop_min_steps(cfg.steps))
    finally:
        tap.remove()
    # hand the generator out as a cached copy loads it: training keeps the weights channels-last
    # (a speed lever), and convolutions round differently by memory format, so the same weights
    # would otherwise sample (and score) slightly differently cold and warm
    return gen.to(memory_format=torch.contiguous_format), history
