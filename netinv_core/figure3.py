"""Figure 3 (paper, Section 5.1): PCA, decision boundaries, t-SNE, UMAP and a sparse autoencoder
on the penultimate features of inverted samples, plus the numbers the paper does not give
(definitions in ``netinv_core.interpret``) and a sweep of the cosine weight gamma.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .data import CLASS_NAMES, load_dataset
from .interpret import (clusters_per_class, decision_plane, embed_tsne, embed_umap, features_of,
                        sae_report, summarize_clusters, train_sae)
from .generator import generate
from .metrics import pixel_spread, within_class_cosine
from .config import get_profile
from .pipeline import profile_generators


def _real_sample(data, per_class: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    idx = torch.cat([torch.nonzero(data.y == c).flatten()[torch.randperm(
        int((data.y == c).sum()), generator=g)[:per_class]] for c in torch.unique(data.y)])
    return data.images(idx), data.y[idx]


def _inverted(clf, gen, n, seed, device):
    images, labels = generate(gen.model, n, seed=seed, keep_dropout=gen.config.dropout_at_generation)
    pred, feats = features_of(clf.model, images, device=device)
    return images, labels.numpy(), pred, feats


def figure3_dataset(dataset: str, profile="quick", *, n_samples: int = 2000, embed_samples: int = 1500,
                    gammas=(0.0, 5.0, 10.0, 20.0), sae_epochs: int = 20, perplexity: float = 30.0,
                    train_missing: bool = False, device="cpu", progress=True, seed: int = 0) -> dict:
    """Everything Figure 3 draws and records for one dataset (generator seed 0 of the profile)."""
    prof = get_profile(profile)
    clf, (gen,) = profile_generators(dataset, prof, seeds=[0], device=device, progress=progress,
                                     train_missing=train_missing)
    model = clf.model
    images, labels, pred, feats = _inverted(clf, gen, n_samples, seed, device)
    test, train = load_dataset(dataset, "test"), load_dataset(dataset, "train")
    real_x, real_y = _real_sample(test, max(n_samples // len(test.classes), 1), seed)
    _, real_feats = features_of(model, real_x, device=device)
    _, train_feats = features_of(model, train.images(), device=device)

    plane = decision_plane(feats, model.head)
    sub = np.arange(min(embed_samples, len(feats)))  # labels cycle through the classes: balanced
    tsne = embed_tsne(feats[sub], perplexity=perplexity, seed=seed)
    umap_xy = embed_umap(feats[sub], seed=seed)
    clusters = clusters_per_class(feats, labels, seed=seed)
    sae = train_sae(train_feats, epochs=sae_epochs, seed=seed)
    sae_num = sae_report(sae, real_feats, real_y.numpy(), feats, labels)

    sweep = []
    base_w = gen.config.weights
    for g in gammas:
        _, (gg,) = profile_generators(dataset, prof, seeds=[0], device=device, progress=progress,
                                      weights=replace(base_w, gamma=float(g)))
        im, lb, pr, ft = _inverted(clf, gg, n_samples, seed, device)
        cl = summarize_clusters(clusters_per_class(ft, lb, seed=seed))
        sweep.append({"gamma": float(g), "inversion_accuracy": float((pr == lb).mean()),
                      "feature_cosine_inverted": within_class_cosine(torch.as_tensor(ft), torch.as_tensor(lb)),
                      "pixel_spread_inverted": pixel_spread(im, torch.as_tensor(lb)), **cl})

    record = {
        "dataset": dataset, "profile": prof.name, "generator_seed": 0,
        "weights": vars(base_w), "n_samples": n_samples, "embed_samples": len(sub),
        "classifier_test_accuracy": clf.metrics["test_accuracy"],
        "inversion_accuracy": float((pred == labels).mean()),
        "meets_95_percent": bool((pred == labels).mean() >= 0.95),
        "pca_explained_variance": plane.explained_variance,
        "boundary_faithfulness": plane.faithfulness,
        **summarize_clusters(clusters),
        "silhouette_per_class": [clusters[c]["silhouette"] for c in sorted(clusters)],
        "feature_cosine_inverted": within_class_cosine(torch.as_tensor(feats), torch.as_tensor(labels)),
        "feature_cosine_real": within_class_cosine(torch.as_tensor(real_feats), real_y),
        **sae_num,
        "sae_final_train_loss": sae.history[-1],
        "gamma_sweep": sweep,
    }
    return {"record": record, "classes": CLASS_NAMES[dataset], "labels": labels, "pred": pred,
            "plane": plane, "tsne": tsne, "umap": umap_xy, "embed_labels": labels[sub],
            "sae": sae, "feats": feats, "real_feats": real_feats,
            "real_labels": real_y.numpy()}


def sae_class_profiles(sae, real_feats, real_labels, inv_feats, inv_labels, n_units: int = 48):
    """Mean SAE activation per class for real and inverted samples, over the ``n_units`` units most
    active on real data overall: returns ``(real (C, n_units), inverted (C, n_units), unit ids)``."""
    real_act, inv_act = sae.activations(real_feats), sae.activations(inv_feats)
    units = np.argsort(-real_act.mean(0))[:n_units]
    classes = np.unique(real_labels)
    r = np.stack([real_act[real_labels == c][:, units].mean(0) for c in classes])
    i = np.stack([inv_act[inv_labels == c][:, units].mean(0) for c in classes])
    return r, i, units

