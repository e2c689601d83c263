"""Figure 2 (paper, Section 4): inversion grids, rows = classes, columns = generators.

For one dataset: the profile's classifier and ``n_generators`` independently seeded generators
(vector-matrix conditioning, as in the paper's Figure 2), ``samples_per_generator`` samples of each
class from each generator, and the numbers of every generator (``metrics.inversion_report``).
"""
from __future__ import annotations

from pathlib import Path

import torch

from .config import get_profile
from .data import CLASS_NAMES
from .generator import generate
from .pipeline import profile_generators


def figure2_dataset(dataset: str, profile=None, *, n_generators=None, conditioning=None,
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
        "dataset": dataset, "profile": get_profile(profile).name,
        "classifier": {"test_accuracy": clf.metrics["test_accuracy"],
                       "train_seconds": clf.metrics.get("train_seconds"),
                       "epochs": clf.config.epochs, "checkpoint": Path(clf.path).name},
        "generators": [{"seed": g.config.seed, "conditioning": g.config.conditioning,
                        "weights": vars(g.config.weights), "batch_size": g.config.batch_size,
                        "dropout": g.config.dropout, "precision": g.config.precision,
                        "lr": g.config.lr, "stop_at_accuracy": g.config.stop_at_accuracy,
                        **g.metrics, "steps_budget": g.config.steps,
                        # the steps trained (fewer than the budget after an early stop)
                        "steps": len((g.history or {}).get("step", [])) or g.config.steps}
                       for g in gens],
    }
    return {"columns": columns, "column_titles": titles, "classes": CLASS_NAMES[dataset],
            "record": record}


# Student-probe budget per profile (the first probe: 20000 samples, 3 epochs on MNIST).
STUDENT_SAMPLES = {"smoke": 2000, "quick": 20000, "paper": 60000}


def figure2_probes(dataset: str, profile=None, *, gammas=(0.0, 10.0, 30.0), gamma_seeds=None,
                   per_class: int = 100, n_nearest: int = 500, student_samples: int | None = None,
                   student_epochs: int = 3, independent_epochs: int = 2, n_generators=None, device=None,
                   progress=True, train_missing=True, seed: int = 11) -> dict:
    """Diversity in pixels and what the samples carry (``netinv_core.probes``), for the profile's
    generators of ``dataset``. Returns ``{"pixel_diversity", "independent", "student"}``:

    - ``pixel_diversity``: ``real`` (test images) and, per generator, within / between / ratio on
      ``per_class`` samples per class; ``gamma``: for each cosine weight in ``gammas`` the mean over
      ``gamma_seeds`` generators (default: the profile's seeds) of the same numbers.
    - ``independent``: a SmallNet trained on the same data; its test accuracy, its agreement with
      the conditioning labels per generator, the inverted classifier's mean confidence on real test
      images, and the nearest-training-image distance of inverted and real test samples.
    - ``student``: test accuracy of a SmallNet trained on ``student_samples`` inverted samples
      (per generator), on as many uniform-noise images (floor) and real training images (ceiling),
      all with the inverted classifier's soft labels, ``student_epochs`` epochs.
    """
    from .config import LossWeights, get_profile
    from .data import load_dataset
    from .probes import (SMALLNET, independent_classifier, nearest_distance, pixel_class_distances,
                         predict, student_accuracy, student_floor_ceiling)

    prof = get_profile(profile)
    student_samples = student_samples or STUDENT_SAMPLES.get(prof.name, 20000)
    clf, gens = profile_generators(dataset, prof, device=device, progress=progress,
                                   train_missing=train_missing, n_generators=n_generators)
    device = device or "cpu"
    train, test = load_dataset(dataset, "train"), load_dataset(dataset, "test")
    n_cls = clf.model.num_classes
    g = torch.Generator().manual_seed(seed)

    def real_per_class(data, k):
        idx = torch.cat([torch.nonzero(data.y == c).flatten()[
            torch.randperm(int((data.y == c).sum()), generator=g)[:k]] for c in range(n_cls)])
        return data.images(idx), data.y[idx]

    def sample(gen, n, s):
        return generate(gen.model, n, seed=s, keep_dropout=gen.config.dropout_at_generation)

    real_x, real_y = real_per_class(test, per_class)
    pix = {"real": pixel_class_distances(real_x, real_y), "per_class": per_class, "generators": []}
    for gen in gens:
        x, y = sample(gen, per_class * n_cls, seed)
        pix["generators"].append({"seed": gen.config.seed, "gamma": gen.config.weights.gamma,
                                  **pixel_class_distances(x, y)})
    pix["gamma"] = []
    seeds = list(gamma_seeds) if gamma_seeds is not None else [gn.config.seed for gn in gens]
    base_w = gens[0].config.weights
    for gamma in gammas:
        _, gg = profile_generators(dataset, prof, seeds=seeds, device=device, progress=progress,
                                   weights=LossWeights(**{**vars(base_w), "gamma": float(gamma)}),
                                   train_missing=True)
        rows = [pixel_class_distances(*sample(gn, per_class * n_cls, seed)) for gn in gg]
        pix["gamma"].append({"gamma": float(gamma), "n_seeds": len(rows), "per_seed": rows,
                             **{f"{k}_mean": sum(r[k] for r in rows) / len(rows)
                                for k in ("within", "between", "ratio")}})

    ind, ind_acc = independent_classifier(dataset, train, test, epochs=independent_epochs,
                                          device=device)
    real_conf = predict(clf.model, test.images(), device).max(1).values.mean().item()
    pool = train.images()
    near_x, _ = real_per_class(test, max(n_nearest // n_cls, 1))
    independent = {"architecture": SMALLNET, "epochs": independent_epochs,
                   "test_accuracy": ind_acc, "real_mean_confidence": real_conf,
                   "agreement_inverted": [], "independent_confidence_inverted": [],
                   "nearest_train_distance_inverted": [],
                   "nearest_train_distance_real": nearest_distance(near_x, pool)}
    student = {"n_samples": student_samples, "epochs": student_epochs, "architecture": SMALLNET,
               "inverted_accuracy": []}
    for gen in gens:
        x, y = sample(gen, student_samples, seed + 1)
        p = predict(ind, x[:per_class * n_cls * 2], device)
        yy = y[:per_class * n_cls * 2]
        independent["agreement_inverted"].append(float((p.argmax(1) == yy).float().mean()))
        independent["independent_confidence_inverted"].append(float(p.max(1).values.mean()))
        independent["nearest_train_distance_inverted"].append(nearest_distance(x[:n_nearest], pool))
        student["inverted_accuracy"].append(student_accuracy(clf.model, x, test, epochs=student_epochs,
                                                             seed=seed, device=device))
    student.update(student_floor_ceiling(clf.model, train, test, student_samples, generator=g,
                                         epochs=student_epochs, seed=seed, device=device))
    return {"pixel_diversity": pix, "independent": independent, "student": student}
