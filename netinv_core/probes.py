"""What inverted samples carry, measured outside the inverted classifier's own features.

- Pixel diversity (between / within class): for samples x of classes c, with the RMS pixel
  distance d(x, y) = ||x - y||_2 / sqrt(D), ``within`` = mean d over pairs of the same class,
  ``between`` = mean d over pairs of different classes, ``ratio`` = between / within. Real images
  of distinct classes give a ratio above 1 (classes look different); a ratio near 1 means the
  classes of a generator are no more different from each other than samples of one class are.
- Independent classifier: a LeNet-5-style CNN (``SmallNet``: conv5-ReLU-pool, conv5-ReLU-pool,
  120-84-N, no BatchNorm, no dropout; another architecture than netinv's classifier) trained on
  the same training data. ``agreement`` = share of inverted samples to which it gives the
  conditioning label (chance = 1/N; its own test accuracy is the ceiling).
- Nearest training image: mean over samples of min over the training set of d(x, y); inverted
  samples against real test images (the reference).
- Student probe (data-free distillation): a fresh ``SmallNet`` trained only on ``n`` images
  labelled with the inverted classifier's soft outputs (loss = cross-entropy to the teacher's
  softmax), then scored on the real test set. The same student on ``n`` uniform-noise images is
  the floor, on ``n`` real training images the ceiling (same budget).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .cache import checkpoint_path, load_checkpoint, save_checkpoint
from .data import ImageData
from .frozen import inversion_ready

SMALLNET = "lenet5 (conv5-relu-pool, conv5-relu-pool, fc120-fc84, no BN, no dropout)"


class SmallNet(nn.Module):
    """LeNet-5-style CNN for (C, H, W) images in [0, 1] (H, W >= 16)."""

    def __init__(self, in_shape=(1, 28, 28), num_classes: int = 10):
        super().__init__()
        c, h, w = in_shape
        self.body = nn.Sequential(
            nn.Conv2d(c, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        flat = 16 * ((h // 2 - 4) // 2) * ((w // 2 - 4) // 2)
        self.head = nn.Sequential(nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                  nn.Linear(84, num_classes))

    def forward(self, x):
        return self.head(self.body(x * 2 - 1))


def _train(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, epochs: int, seed: int,
           batch_size: int = 128, lr: float = 1e-3, device="cpu") -> nn.Module:
    """Adam on cross-entropy to ``target`` (class indices, or a (n, N) distribution)."""
    g = torch.Generator().manual_seed(seed)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            logits = model(x[idx].to(device))
            t = target[idx].to(device)
            loss = (F.cross_entropy(logits, t) if t.dim() == 1
                    else -(t * F.log_softmax(logits, 1)).sum(1).mean())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, device="cpu", batch_size: int = 1000) -> torch.Tensor:
    """Softmax outputs of ``model`` on ``x`` (on the CPU; the model ``inversion_ready``, then left
    in evaluation mode)."""
    with inversion_ready(model):
        out = torch.cat([torch.softmax(model(x[i:i + batch_size].to(device)), 1).cpu()
                         for i in range(0, len(x), batch_size)])
    model.eval()
    return out


def accuracy(model: nn.Module, data: ImageData, device="cpu") -> float:
    return float((predict(model, data.images(), device).argmax(1) == data.y).float().mean())


def independent_classifier(dataset: str, train: ImageData, test: ImageData, *, epochs: int = 2,
                           seed: int = 0, device="cpu"):
    """``(SmallNet, test accuracy)`` trained on ``train`` (hard labels), cached by config."""
    conf = {"dataset": dataset, "arch": SMALLNET, "epochs": epochs, "seed": seed, "lr": 1e-3,
            "batch_size": 128, "train_size": len(train)}
    path = checkpoint_path("independent", conf, dataset)
    model = SmallNet(train.image_shape, train.num_classes)
    if path.exists():
        state = load_checkpoint(path, kind="independent", config=conf)
        model.load_state_dict(state["model"])
        return model.to(device).eval(), state["metrics"]["test_accuracy"]
    torch.manual_seed(seed)
    model = SmallNet(train.image_shape, train.num_classes)
    _train(model, train.images(), train.y, epochs=epochs, seed=seed, device=device)
    acc = accuracy(model, test, device)
    save_checkpoint(path, kind="independent", config=conf, metrics={"test_accuracy": acc},
                    tensors={"model": model.state_dict()})
    return model, acc


def rms_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(len(a), len(b)) RMS pixel distances ||x - y|| / sqrt(D)."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    return torch.cdist(a, b) / a.shape[1] ** 0.5


def pixel_class_distances(images: torch.Tensor, labels: torch.Tensor) -> dict:
    """``{"within", "between", "ratio"}`` as in the module docstring."""
    d = rms_distances(images, images)
    same = labels[:, None] == labels[None, :]
    off = ~torch.eye(len(labels), dtype=torch.bool)
    within = d[same & off].mean().item()
    between = d[~same].mean().item()
    return {"within": within, "between": between, "ratio": between / within}


def nearest_distance(x: torch.Tensor, pool: torch.Tensor, chunk: int = 5000) -> float:
    """Mean over rows of x of the RMS distance to the nearest row of ``pool``."""
    best = torch.full((len(x),), float("inf"), dtype=torch.float64)
    for i in range(0, len(pool), chunk):
        best = torch.minimum(best, rms_distances(x, pool[i:i + chunk]).min(1).values)
    return best.mean().item()


def student_accuracy(teacher: nn.Module, images: torch.Tensor, test: ImageData, *, epochs: int = 3,
                     seed: int = 0, device="cpu") -> float:
    """Test accuracy of a fresh ``SmallNet`` trained on ``images`` with the teacher's soft labels."""
    soft = predict(teacher, images, device)
    with torch.random.fork_rng(devices=[]):   # the student's initialisation; the caller's RNG is kept
        torch.manual_seed(seed)
        student = SmallNet(test.image_shape, test.num_classes)
    _train(student, images, soft, epochs=epochs, seed=seed, device=device)
    return accuracy(student, test, device)


def student_floor_ceiling(teacher: nn.Module, train: ImageData, test: ImageData, n: int, *,
                          generator: torch.Generator, epochs: int = 3, seed: int = 0,
                          device="cpu") -> dict:
    """The student probe's floor and ceiling: the same student trained on ``n`` uniform-noise
    images and on ``n`` real training images (both drawn with ``generator``), teacher's soft labels."""
    noise = torch.rand((n, *test.image_shape), generator=generator)
    idx = torch.randperm(len(train), generator=generator)[:n]
    return {"noise_accuracy": student_accuracy(teacher, noise, test, epochs=epochs, seed=seed,
                                               device=device),
            "real_accuracy": student_accuracy(teacher, train.images(idx), test, epochs=epochs,
                                              seed=seed, device=device),
            "real_n": len(idx)}   # fewer than n only when the training split is smaller
