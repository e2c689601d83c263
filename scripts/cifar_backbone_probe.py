"""Probe (issue 12): can the paper's classifier reach >= 85% on CIFAR-10 with another optimiser?

The library's recipe (Adam 1e-3, cosine, flips + crops, 30 epochs; ``bench classifier``) reaches
83.0%. This probe trains the same network (``netinv_core.classifier.Classifier``) with SGD +
Nesterov momentum 0.9, weight decay 5e-4, a one-cycle LR schedule peaking at ``--lr``, label
smoothing 0.1 and the same flips and crops, and prints the test accuracy after every epoch as JSON
lines. Nothing is cached: it only tells whether the recipe is worth adding to ``ClassifierConfig``.

    NETINV_DATA=../shared/data python scripts/cifar_backbone_probe.py --epochs 30 --seed 0 \
        [--dropout 0.3] [--lr 0.1] --threads 1
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

from netinv_core.classifier import Classifier, augment_batch, channel_stats, evaluate
from netinv_core.data import load_dataset

ap = argparse.ArgumentParser()
ap.add_argument("--epochs", type=int, default=30)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--dropout", type=float, default=0.3)
ap.add_argument("--lr", type=float, default=0.1)
ap.add_argument("--threads", type=int, default=1)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
train, test = load_dataset("cifar10", "train"), load_dataset("cifar10", "test")
mean, std = channel_stats(train)
model = Classifier(train.image_shape, 10, a.dropout, mean, std)
opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
steps = a.epochs * ((len(train) + 127) // 128)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps)
t_all = time.perf_counter()
for epoch in range(a.epochs):
    t0 = time.perf_counter()
    model.train()
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(a.seed * 1000 + epoch))
    aug = torch.Generator().manual_seed(a.seed * 1000 + epoch + 10 ** 6)
    for i in range(0, len(train), 128):
        idx = order[i:i + 128]
        loss = F.cross_entropy(model(augment_batch(train.images(idx), "flip_crop", aug)),
                               train.y[idx], label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    print(json.dumps({"epoch": epoch + 1, "test_accuracy": evaluate(model, test),
                      "seconds": round(time.perf_counter() - t0, 1),
                      "total_seconds": round(time.perf_counter() - t_all, 1)}), flush=True)
