"""The classifiers Section 5.3's attempts attack (``recon_attempts``): the profile's CNN on a
training subset (``cnn``), the same with weight decay 5e-4 (``cnn_wd``) or average pooling
(``cnn_avg``), and an MLP 784-512-256-N trained to zero loss on 100 images (``mlp``: the
memorisation regime where reconstruction from weights is known to work, the positive control).
Each is cached like every other classifier.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .cache import load_or_train
from .config import ClassifierConfig, to_dict

class MLPClassifier(nn.Module):
    """flatten -> standardise -> Linear(D, 512) -> ReLU -> [penultimate: Linear(512, 256) -> ReLU]
    -> Linear(256, N). The positive control of Haim et al. 2022 / the lab's successful setting."""

    feature_layer = "penultimate"

    def __init__(self, in_shape, num_classes: int, mean: float = 0.5, std: float = 0.25):
        super().__init__()
        self.in_shape, self.num_classes = tuple(in_shape), num_classes
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(in_shape)), 512), nn.ReLU())
        self.penultimate = nn.Sequential(nn.Linear(512, 256), nn.ReLU())
        self.head = nn.Linear(256, num_classes)
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x):
        return self.head(self.penultimate(self.fc((x - self.mean) / self.std)))


def _mlp_classifier(dataset: str, train_size: int, seed: int, epochs: int, device):
    from .classifier import evaluate
    from .data import IMAGE_SHAPES, balanced_subset, load_dataset

    conf = {"arch": "mlp-512-256", "dataset": dataset, "train_size": train_size, "seed": seed,
            "epochs": epochs, "lr": 1e-3, "batch": "full"}
    ccfg = ClassifierConfig(dataset=dataset, train_size=train_size, epochs=epochs,
                            batch_size=train_size, dropout=0.0, seed=seed)
    shape = IMAGE_SHAPES[dataset]
    train = load_dataset(dataset, "train")

    def fit(partial):
        test = load_dataset(dataset, "test")
        sub = train.subset(balanced_subset(train.y, train_size, seed=seed))
        torch.manual_seed(seed)
        x, y = sub.images().to(device), sub.y.to(device)
        model = MLPClassifier(shape, train.num_classes, x.mean().item(), x.std().item()).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(epochs):                       # full batch: drive the training loss to ~0
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        metrics = {"test_accuracy": evaluate(model, test, device), "train_size": train_size,
                   "final_train_loss": loss.item(),
                   "train_accuracy": (model(x).argmax(1) == y).float().mean().item()}
        return model, None, metrics, {}

    return load_or_train("classifier", conf, dataset, ccfg, device=device,
                         build=lambda st: MLPClassifier(shape, train.num_classes), train=fit,
                         what=f"MLP classifier for {dataset} ({train_size} images)",
                         hint="it is trained when missing"), conf


def _avgpool_classifier(ccfg, device):
    from .classifier import Classifier, evaluate, train_classifier
    from .data import IMAGE_SHAPES, balanced_subset, load_dataset

    conf = {**to_dict(ccfg), "pool": "avg"}
    train = load_dataset(ccfg.dataset, "train")

    def fit(partial):
        test = load_dataset(ccfg.dataset, "test")
        sub = train.subset(balanced_subset(train.y, ccfg.train_size, seed=ccfg.seed))
        model, history = train_classifier(ccfg, sub, device=device, checkpoint=partial,
                                          progress=False, pool="avg")
        return model, history, {"test_accuracy": evaluate(model, test, device),
                                "train_size": len(sub)}, {}

    return load_or_train(
        "classifier", conf, ccfg.dataset, ccfg, device=device, train=fit,
        build=lambda st: Classifier(IMAGE_SHAPES[ccfg.dataset], train.num_classes, ccfg.dropout,
                                    pool="avg"),
        what=f"average-pooling classifier for {ccfg.dataset}", hint="it is trained when missing"), conf


def attacked_classifier(kind: str, dataset: str, train_size: int, profile=None, device="cpu"):
    """``(Trained, cache_key or None)`` for kind in cnn / cnn_wd / cnn_avg / mlp."""
    from .pipeline import get_classifier
    from .figure5 import subset_classifier_config

    if kind == "mlp":
        return _mlp_classifier(dataset, train_size, 0, 500, device)
    ccfg = subset_classifier_config(dataset, train_size, profile)
    if kind == "cnn_wd":
        ccfg = replace(ccfg, weight_decay=5e-4)
    if kind == "cnn_avg":
        return _avgpool_classifier(ccfg, device)
    return get_classifier(ccfg, device=device, progress=False), None
