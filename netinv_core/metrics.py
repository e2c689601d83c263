"""Numbers for an inverted generator: inversion accuracy and diversity.

- Inversion accuracy (paper, Section 5.1; docs/choices.md): the share of generated samples whose predicted
  class equals the conditioning label (argmax of the conditioning vector), on ``n`` fresh samples
  (at least 1000), with balanced labels.
- Feature cosine within a class: for the samples of class c, the mean over pairs i != j of
  cos(f_i, f_j) of the classifier's penultimate features; averaged over classes. Computed for
  inverted samples and, as the reference, for real test images of the same classes. Lower = more
  diverse.
- Pixel spread within a class: the per-pixel standard deviation over the samples of class c,
  averaged over pixels and then over classes (images in [0, 1]). Higher = more diverse.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import ImageData
from .checks import check_int
from .errors import ShapeError
from .generator import Generator, generate
from .inversion import FeatureTap, check_classifier_input, inversion_ready

MIN_SAMPLES = 1000


def mean_pairwise_cosine(features: torch.Tensor) -> float:
    """Mean of cos(f_i, f_j) over ordered pairs i != j (nan for fewer than 2 rows)."""
    b = features.shape[0]
    if b < 2:
        return float("nan")
    f = F.normalize(features.flatten(1).double(), dim=1)
    s = f @ f.T
    return ((s.sum() - s.diagonal().sum()) / (b * (b - 1))).item()


def within_class_cosine(features: torch.Tensor, labels: torch.Tensor) -> float:
    vals = [mean_pairwise_cosine(features[labels == c]) for c in torch.unique(labels)]
    vals = [v for v in vals if v == v]
    return float(sum(vals) / len(vals)) if vals else float("nan")


def pixel_spread(images: torch.Tensor, labels: torch.Tensor) -> float:
    vals = [images[labels == c].flatten(1).std(dim=0).mean().item()
            for c in torch.unique(labels) if (labels == c).sum() > 1]
    return float(sum(vals) / len(vals)) if vals else float("nan")


@torch.no_grad()
def tap_batches(tap: FeatureTap, images: torch.Tensor, device="cpu", batch_size: int = 1000):
    """Logits and features of ``images`` in batches; returned on the CPU."""
    logits, feats = [], []
    for i in range(0, len(images), batch_size):
        lg, ft = tap(images[i:i + batch_size].to(device))
        logits.append(lg.cpu())
        feats.append(ft.cpu())
    return torch.cat(logits), torch.cat(feats)


def inversion_report(classifier, generator: Generator, test: ImageData, *, n: int = 1000,
                     seed: int = 12345, keep_dropout: bool = True, feature_layer=None,
                     device="cpu", real_per_class: int = 200) -> dict:
    """Inversion accuracy and diversity of ``generator`` on ``n`` fresh samples.

    Real-image reference numbers use up to ``real_per_class`` test images per class. ``n`` must be
    at least ``MIN_SAMPLES`` (1000; fewer give accuracies too coarse to compare), and the
    classifier, the generator and ``test`` must agree on the number of classes and the image
    shape; otherwise a ``ConfigError`` / ``ShapeError`` says what to pass instead.
    """
    check_int("n", n, MIN_SAMPLES, f" (at least {MIN_SAMPLES} fresh samples, so that an "
              f"accuracy is known to about 1.5 points; the smoke profile uses 1000)")
    if tuple(test.image_shape) != tuple(generator.image_shape):
        raise ShapeError(f"the test images are {tuple(test.image_shape)} but the generator makes "
                         f"{tuple(generator.image_shape)}; pass the test split of the dataset the "
                         f"classifier was trained on")
    n_out = check_classifier_input(classifier, generator.image_shape, device)
    n_test = max(test.num_classes, int(test.y.max()) + 1 if len(test.y) else 0)
    if not n_out == generator.num_classes == n_test:
        raise ShapeError(f"class counts disagree: the classifier returns {n_out} logits, the "
                         f"generator has {generator.num_classes} classes and the test data "
                         f"{n_test}; invert and evaluate with the classifier of that test data")
    images, labels = generate(generator, n, seed=seed, keep_dropout=keep_dropout)
    g = torch.Generator().manual_seed(seed)
    real_idx = torch.cat([torch.nonzero(test.y == c).flatten()[
        torch.randperm(int((test.y == c).sum()), generator=g)[:real_per_class]]
        for c in torch.unique(test.y)])
    real_x, real_y = test.images(real_idx), test.y[real_idx]
    tap = FeatureTap(classifier, feature_layer)   # before the fold: a hooked layer is not folded
    try:
        with inversion_ready(classifier):
            logits, feats = tap_batches(tap, images, device)
            _, real_feats = tap_batches(tap, real_x, device)
    finally:
        tap.remove()
    pred = logits.argmax(1)
    per_class = [(pred[labels == c] == c).float().mean().item() for c in range(generator.num_classes)]
    return {
        "inversion_accuracy": (pred == labels).float().mean().item(),
        "inversion_accuracy_per_class": per_class,
        "mean_confidence": torch.softmax(logits, 1).max(1).values.mean().item(),
        "feature_cosine_inverted": within_class_cosine(feats, labels),
        "feature_cosine_real": within_class_cosine(real_feats, real_y),
        "pixel_spread_inverted": pixel_spread(images, labels),
        "pixel_spread_real": pixel_spread(real_x, real_y),
        "n_samples": n,
        "keep_dropout": keep_dropout,
    }
