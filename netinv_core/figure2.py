"""Figure 2 (paper, Section 4): inversion grids, rows = classes, columns = generators.

For one dataset: the profile's classifier and ``n_generators`` independently seeded generators
(vector-matrix conditioning, as in the paper's Figure 2), ``samples_per_generator`` samples of each
class from each generator, and the numbers of every generator (``metrics.inversion_report``).
"""
from __future__ import annotations

from pathlib import Path

import torch

from .data import CLASS_NAMES
from .generator import generate
from .pipeline import profile_generators


def figure2_dataset(dataset: str, profile="quick", *, n_generators=None, conditioning=None,
                    samples_per_generator: int = 2, device=None, progress=True, seed: int = 7):
    """Returns ``{"columns", "column_titles", "classes", "record"}`` for ``plotting.inversion_grid``."""
    clf, gens = profile_generators(dataset, profile, n_generators=n_generators,
                                   conditioning=conditioning, device=device, progress=progress)
    n_cls = clf.model.num_classes
    columns, titles = [], []
    for j, g in enumerate(gens):
        labels = torch.arange(n_cls).repeat(samples_per_generator)
        imgs, _ = generate(g.model, len(labels), labels=labels, seed=seed + j,
                           keep_dropout=g.config.dropout_at_generation)
        for s in range(samples_per_generator):
            columns.append(imgs[s * n_cls:(s + 1) * n_cls])
            titles.append(f"G{j + 1}" if samples_per_generator == 1 else f"G{j + 1}.{s + 1}")
    record = {
        "dataset": dataset, "profile": profile if isinstance(profile, str) else profile.name,
        "classifier": {"test_accuracy": clf.metrics["test_accuracy"],
                       "train_seconds": clf.metrics.get("train_seconds"),
                       "epochs": clf.config.epochs, "checkpoint": Path(clf.path).name},
        "generators": [{"seed": g.config.seed, "conditioning": g.config.conditioning,
                        "weights": vars(g.config.weights), "steps": g.config.steps,
                        "batch_size": g.config.batch_size, "dropout": g.config.dropout,
                        **g.metrics} for g in gens],
    }
    return {"columns": columns, "column_titles": titles, "classes": CLASS_NAMES[dataset],
            "record": record}
