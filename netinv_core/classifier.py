"""The paper's classifier (Section 3.1, Section 4) and its training.

"A simple multi-layer convolutional neural network consisting of convolutional layers, dropout
layers, batch normalization, and leaky-relu activation followed by fully connected layers" with a
128-d penultimate feature layer (docs/choices.md: the authors' group uses three conv layers and a 128-d
fully connected penultimate layer). The same code takes 1x28x28 and 3x32x32 inputs.

The classifier normalises its own input: it takes images in [0, 1] and subtracts the per-channel
training mean / divides by the std inside ``forward`` (docs/choices.md pitfall 5), so that a generator
with a sigmoid output lives in exactly the classifier's input space.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.std import tqdm  # text bars: widget bars show "model not found" after a reload

from .cache import GLOBAL_RNG, restore_state, save_state
from .config import ClassifierConfig, to_dict
from .data import ImageData
from .device import resolve_device
from .errors import ShapeError
from .frozen import channels_last_, inversion_ready

FEATURE_LAYER = "penultimate"
FEATURE_DIM = 128


class Classifier(nn.Module):
    """conv(32)-BN-LReLU-pool, conv(64)-BN-LReLU-pool, dropout, conv(128)-BN-LReLU,
    fc(128) -> LReLU [penultimate features], dropout, fc(num_classes).

    Shapes for a (B, C, H, W) input with H, W divisible by 4:
    (B, 32, H/2, W/2) -> (B, 64, H/4, W/4) -> (B, 128, H/4, W/4) -> (B, 128*H*W/16) -> (B, 128) -> (B, N)
    """

    feature_layer = FEATURE_LAYER

    def __init__(self, in_shape=(1, 28, 28), num_classes: int = 10, dropout: float = 0.3,
                 mean=None, std=None, pool: str = "max"):
        super().__init__()
        c, h, w = in_shape
        if h % 4 or w % 4:
            raise ShapeError(f"image height and width must be divisible by 4, got {in_shape}")
        self.in_shape = tuple(in_shape)
        self.num_classes = num_classes
        mean = torch.as_tensor(0.5 if mean is None else mean, dtype=torch.float32)
        std = torch.as_tensor(0.25 if std is None else std, dtype=torch.float32)
        self.register_buffer("mean", mean.expand(c).reshape(c, 1, 1).clone())
        self.register_buffer("std", std.expand(c).reshape(c, 1, 1).clone())
        act = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        if pool not in ("max", "avg"):
            raise ShapeError(f"pool={pool!r}: choose 'max' (the paper's classifier) or 'avg'")
        pooling = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}[pool]   # no parameters either way
        self.body = nn.Sequential(
            nn.Conv2d(c, 32, 3, padding=1), nn.BatchNorm2d(32), act(), pooling(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), act(), pooling(2),
            nn.Dropout(dropout),
            nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), act(),
        )
        self.penultimate = nn.Sequential(nn.Linear(128 * (h // 4) * (w // 4), FEATURE_DIM), act())
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.in_shape:
            raise ShapeError(
                f"this classifier takes images of shape (B, {', '.join(map(str, self.in_shape))}) "
                f"in [0, 1]; got {tuple(x.shape)}. Resize or convert the images (e.g. grayscale "
                f"to RGB) to {self.in_shape} first.")

    def forward_features(self, x: torch.Tensor):
        """Return ``(logits, penultimate features)`` for images in [0, 1]."""
        self.check_input(x)
        h = self.body((x - self.mean) / self.std)
        f = self.penultimate(h.flatten(1))
        return self.head(self.dropout(f)), f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]


def channel_stats(data: ImageData):
    x = data.images()
    return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))


def augment_batch(x: torch.Tensor, mode: str, g: torch.Generator) -> torch.Tensor:
    """Training-time augmentation of a (B, C, H, W) batch (``ClassifierConfig.augment``):
    "crop": each image zero-padded by 4 pixels and cropped back at a uniform offset in [0, 8]^2;
    "flip_crop": the crop, then a horizontal flip with probability 1/2; "none": ``x`` itself.
    Random numbers come from ``g`` only (a resumed epoch draws the same crops)."""
    if mode == "none":
        return x
    b, c, h, w = x.shape
    p = F.pad(x, (4, 4, 4, 4))
    dy, dx = torch.randint(0, 9, (b,), generator=g), torch.randint(0, 9, (b,), generator=g)
    iy = (dy[:, None] + torch.arange(h))[:, None, :, None]
    ix = (dx[:, None] + torch.arange(w))[:, None, None, :]
    out = p[torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None], iy, ix]
    if mode == "flip_crop":
        flip = torch.rand(b, generator=g) < 0.5
        out[flip] = out[flip].flip(-1)
    return out


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageData, device="cpu", batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``model`` on ``data`` (``inversion_ready``: evaluation mode, BatchNorm
    folded, channels-last; the model as it was afterwards)."""
    correct = 0
    with inversion_ready(model):
        for i in range(0, len(data), batch_size):
            x = data.images(slice(i, i + batch_size)).to(device)
            correct += (model(x).argmax(1).cpu() == data.y[i:i + batch_size]).sum().item()
    return correct / max(len(data), 1)


def train_epoch(model: nn.Module, opt: torch.optim.Optimizer, images: Callable, labels: torch.Tensor,
                order: torch.Tensor, batch_size: int, *, weight: torch.Tensor | None = None,
                device="cpu", progress: bool = True, desc: str = "epoch",
                label_smoothing: float = 0.0, after_step: Callable[[], None] | None = None):
    """One pass of ``opt`` over ``order`` in batches on the (class-weighted) cross-entropy
    L = -sum_i w_{y_i} sum_k q_ik log softmax(f(x_i))_k / sum_i w_{y_i}, with the target
    q_i = (1 - eps) onehot(y_i) + eps / N (eps = ``label_smoothing``; w = 1 without ``weight``);
    ``images(idx)`` gives the float images at ``idx``; ``after_step()`` runs after every
    optimiser step (a per-batch LR schedule). Returns ``(mean loss, accuracy)``."""
    model.train()
    n = len(order)
    tot_loss, correct = 0.0, 0
    for i in tqdm(range(0, n, batch_size), desc=desc, disable=not progress, leave=False):
        idx = order[i:i + batch_size]
        x, y = images(idx).to(device), labels[idx].to(device)
        logits = model(x)
        loss = F.cross_entropy(logits, y, weight=weight, label_smoothing=label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if after_step is not None:
            after_step()
        tot_loss += loss.item() * len(idx)
        correct += (logits.argmax(1) == y).sum().item()
    return tot_loss / n, correct / n


def train_classifier(cfg: ClassifierConfig, train: ImageData, *, device="cpu",
                     checkpoint: str | Path | None = None, progress: bool = True,
                     callback: Callable[[dict], None] | None = None, pool: str = "max"):
    """Train the classifier on the cross-entropy (``label_smoothing`` eps); returns
    ``(model, history)``. ``optimizer`` "adam": Adam at ``lr``, cosine-annealed per epoch to 0;
    "sgd": SGD with Nesterov momentum 0.9 and a one-cycle schedule stepped per batch (from
    lr / 25 up to ``lr`` over 30% of the steps, then cosine down to lr / (25 * 10^4)).
    Both use ``weight_decay``.
    ``pool`` = "avg" swaps the max pooling for average pooling (a leakage variant of Section 5.3).

    With ``checkpoint`` set, the state after every epoch is written there atomically, and a run
    that finds a partial checkpoint for the same config resumes after its last finished epoch.
    ``callback(record)`` is called after each epoch with the epoch's loss and accuracy.
    """
    device = resolve_device(device)
    torch.manual_seed(cfg.seed)
    mean, std = channel_stats(train)
    model = channels_last_(Classifier(train.image_shape, train.num_classes, cfg.dropout, mean, std,
                                      pool=pool).to(device))
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                              weight_decay=cfg.weight_decay)
        steps = max(cfg.epochs, 1) * -(-len(train) // cfg.batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
        per_batch = sched.step        # stepped after every batch
    else:
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
        per_batch = None              # stepped after every epoch
    history = {"epoch": [], "loss": [], "train_accuracy": [], "seconds": []}
    state = {"model": model, "optimizer": opt, "scheduler": sched, "rng": GLOBAL_RNG}
    rest = restore_state(checkpoint, kind="classifier-partial", config=to_dict(cfg), objects=state)
    start = 0
    if rest is not None:
        history, start = rest["history"], rest["epoch"]
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        order = torch.randperm(len(train), generator=g)
        aug = torch.Generator().manual_seed(cfg.seed * 1000 + epoch + 10 ** 6)
        images = (train.images if cfg.augment == "none" else
                  lambda idx: augment_batch(train.images(idx), cfg.augment, aug))
        loss, acc = train_epoch(model, opt, images, train.y, order, cfg.batch_size,
                                device=device, progress=progress,
                                desc=f"classifier {train.name} epoch {epoch + 1}/{cfg.epochs}",
                                label_smoothing=cfg.label_smoothing, after_step=per_batch)
        if per_batch is None:
            sched.step()
        rec = {"epoch": epoch + 1, "loss": loss, "train_accuracy": acc,
               "seconds": time.perf_counter() - t0}
        for k, v in rec.items():
            history[k].append(v)
        if checkpoint is not None:
            save_state(checkpoint, kind="classifier-partial", config=to_dict(cfg), objects=state,
                       history=history, epoch=epoch + 1)
        if callback is not None:
            callback(rec)
    # hand the model out as a cached copy loads it (contiguous weights: convolutions round
    # differently by memory format, so cold and warm runs would otherwise score differently)
    return model.to(memory_format=torch.contiguous_format).eval(), history
