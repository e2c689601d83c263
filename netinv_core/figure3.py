"""Figure 3 (paper, Section 5.1): PCA, decision boundaries, t-SNE, UMAP and a sparse autoencoder
on the penultimate features of inverted samples, plus the numbers the paper does not give
(definitions in ``netinv_core.interpret``) and a sweep of the cosine weight gamma.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .data import CLASS_NAMES, load_dataset
from .config import LossWeights, get_profile
from .generator import generate
from .interpret import (calibrated_clusters, clusters_fair_verdict, clusters_per_class,
                        merged_pairs_control,
                        decision_plane, embed_tsne, embed_umap, embedding_ari, features_of,
                        mixed_cluster_share, sae_report, summarize_clusters, topk_jaccard_split,
                        train_sae)
from .metrics import pixel_spread, within_class_cosine
from .results import mean_std
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


def figure3_dataset(dataset: str, profile=None, *, n_samples: int = 2000, embed_samples: int = 1500,
                    gammas=(0.0, 10.0, 30.0), gamma_seeds=None, sae_epochs: int = 20,
                    perplexity: float = 30.0,
                    train_missing: bool = False, device="cpu", progress=True, seed: int = 0,
                    fair: bool = True, fair_gammas=(10.0, 30.0), fair_per_generator: int = 1000,
                    fair_perplexities=(30.0, 50.0), n_null: int = 10) -> dict:
    """Everything Figure 3 draws and records for one dataset (generator seed 0 of the profile);
    with ``fair``, also ``clusters_fair`` and ``per_generator`` (``figure3_fair``).

    ``gamma_sweep``: for each cosine weight in ``gammas``, one generator per seed of
    ``gamma_seeds`` (default: the profile's generator seeds; the same generators as Figure 2's
    pixel-diversity probe, so the cache is shared), each analysed on ``n_samples`` samples: the
    fixed-rule clusters per class, and the Gaussian-null calibrated rule (``calibrated_clusters``,
    ``fair_per_generator`` samples) with ``classes_above_null``; the row holds the mean over seeds
    (``*_std`` beside it) and ``per_seed``."""
    prof = get_profile(profile)
    # the data first: a dataset without files (SVHN offline) is a DataUnavailableError the
    # notebook skips, not a CheckpointError for the classifier Figure 2 could not train
    test, train = load_dataset(dataset, "test"), load_dataset(dataset, "train")
    clf, (gen,) = profile_generators(dataset, prof, seeds=[0], device=device, progress=progress,
                                     train_missing=train_missing)
    model = clf.model
    images, labels, pred, feats = _inverted(clf, gen, n_samples, seed, device)
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

    base_w = gen.config.weights
    seeds = list(gamma_seeds) if gamma_seeds is not None else list(range(prof.n_generators))
    sweep = [gamma_sweep_row(clf, dataset, prof, replace(base_w, gamma=float(g)), seeds,
                             n_samples=n_samples, n_calibrated=fair_per_generator, n_null=n_null,
                             device=device, progress=progress, seed=seed) for g in gammas]

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
    out = {"record": record, "classes": CLASS_NAMES[dataset], "labels": labels, "pred": pred,
           "plane": plane, "tsne": tsne, "umap": umap_xy, "embed_labels": labels[sub],
           "sae": sae, "feats": feats, "real_feats": real_feats,
           "real_labels": real_y.numpy()}
    if fair:
        extra = figure3_fair(dataset, prof, clf, sae, real_feats, real_y.numpy(), gammas=fair_gammas,
                             per_generator=fair_per_generator, perplexities=fair_perplexities,
                             n_null=n_null, n_samples=n_samples, train_missing=train_missing,
                             device=device, progress=progress, seed=seed)
        record["clusters_fair"] = extra["clusters_fair"]
        record["per_generator"] = extra["per_generator"]
        out["fair"] = extra
    return out


SWEEP_KEYS = ("inversion_accuracy", "feature_cosine_inverted", "pixel_spread_inverted",
              "clusters_per_class_mean", "silhouette_mean", "classes_above_null",
              "calibrated_silhouette_mean", "null_silhouette_p95_mean")


def gamma_sweep_row(clf, dataset: str, prof, weights, seeds, *, n_samples: int = 2000,
                    n_calibrated: int = 1000, n_null: int = 10, device="cpu", progress=True,
                    seed: int = 0) -> dict:
    """One cosine weight (``weights.gamma``) of the sweep: per generator seed the inversion
    accuracy, within-class feature cosine, pixel spread, fixed-rule clusters and the calibrated
    rule's ``classes_above_null``; mean and std over the seeds."""
    _, gens = profile_generators(dataset, prof, seeds=seeds, device=device, progress=progress,
                                 weights=weights)
    per_seed = []
    for gg in gens:
        im, lb, pr, ft = _inverted(clf, gg, n_samples, seed, device)
        cl = summarize_clusters(clusters_per_class(ft, lb, seed=seed))
        k = min(n_calibrated, len(ft))
        cc = calibrated_clusters(ft[:k], lb[:k], n_null=n_null, seed=seed)
        per_seed.append({"seed": gg.config.seed, "inversion_accuracy": float((pr == lb).mean()),
                         "feature_cosine_inverted": within_class_cosine(torch.as_tensor(ft),
                                                                        torch.as_tensor(lb)),
                         "pixel_spread_inverted": pixel_spread(im, torch.as_tensor(lb)), **cl,
                         "classes_above_null": cc["classes_above_null"],
                         "calibrated_silhouette_mean": cc["silhouette_mean"],
                         "null_silhouette_p95_mean": cc["null_silhouette_p95_mean"],
                         "calibrated_best_k_median": cc["best_k_median"]})
    row = {"gamma": float(weights.gamma), "n_seeds": len(per_seed), "per_seed": per_seed}
    for key in SWEEP_KEYS:
        ms = mean_std([r[key] for r in per_seed])
        row[key], row[key + "_std"] = ms["mean"], ms["std"]
    return row


def figure3_fair(dataset: str, prof, clf, sae, real_feats, real_labels, *, gammas=(10.0, 30.0),
                 per_generator: int = 1000, perplexities=(30.0, 50.0), n_null: int = 10,
                 n_samples: int = 2000, train_missing: bool = False, device="cpu", progress=True,
                 seed: int = 0) -> dict:
    """The fair test of "two clusters per class" (definitions in ``interpret``) and the Figure 3
    numbers for every generator of the profile.

    - ``single_generator``: the seed-0 generator's ``per_generator`` samples, calibrated clusters.
    - ``pooled_generators``: ``per_generator`` samples from each of the profile's generators
      (seeds 0..n-1) pooled; per class best k, silhouette vs the Gaussian null, ARI of the clusters
      against generator identity (``ari`` for best k, ``ari_k_groups`` for k = n generators), and
      the same ARI on 2-D t-SNE coordinates at each of ``perplexities``.
    - ``real_vs_inverted``: real test images and the pooled inverted samples (as many of each) in
      one k-means with k = 2 x classes (share of clusters mixing the two) and one t-SNE.
    - ``real``: the same calibrated rule on the real test features (what real classes give);
      ``positive_control``: on real classes merged pairwise (``merged_pairs_control``, two clusters
      by construction); the verdict is ``inconclusive`` when the rule misses these.
    - ``layer_gamma``: generators (seed 0) whose cosine/orthogonality terms use the features after
      the activation (``penultimate``) or before it (``penultimate.0``), for each gamma; analysed on
      the same layer.
    - ``per_generator``: per seed, inversion accuracy, PCA variance, boundary faithfulness, SAE
      Jaccard (and the real-vs-real control) and SAE anomaly AUROC on ``n_samples`` samples.
    """
    model = clf.model
    _, gens = profile_generators(dataset, prof, device=device, progress=progress,
                                 train_missing=train_missing)
    per_gen, pooled_f, pooled_y, pooled_g = [], [], [], []
    for j, g in enumerate(gens):
        im, lb, pr, ft = _inverted(clf, g, n_samples, seed + 101 * j, device)
        plane = decision_plane(ft, model.head)
        sae_num = sae_report(sae, real_feats, real_labels, ft, lb)
        per_gen.append({"seed": g.config.seed, "inversion_accuracy": float((pr == lb).mean()),
                        "pca_explained_variance": plane.explained_variance,
                        "boundary_faithfulness": plane.faithfulness,
                        "sae_topk_jaccard_mean": sae_num["sae_topk_jaccard_mean"],
                        "sae_topk_jaccard_real_split": topk_jaccard_split(sae, real_feats, real_labels,
                                                                         top_k=sae_num["sae_top_k"],
                                                                         seed=seed + j),
                        "sae_anomaly_auroc": sae_num["sae_anomaly_auroc"]})
        k = min(per_generator, len(ft))
        pooled_f.append(ft[:k]); pooled_y.append(lb[:k]); pooled_g.append(np.full(k, j))
    pf, py, pg = np.concatenate(pooled_f), np.concatenate(pooled_y), np.concatenate(pooled_g)
    single = calibrated_clusters(pooled_f[0], pooled_y[0], n_null=n_null, seed=seed)
    pooled = calibrated_clusters(pf, py, pg, n_null=n_null, seed=seed)
    pooled["n_generators"] = len(gens)
    pooled["samples_per_generator"] = int(len(pooled_f[0]))
    tsne = {}
    for perp in perplexities:
        if len(pf) > 3 * perp:
            xy = embed_tsne(pf, perplexity=perp, seed=seed)
            tsne[perp] = xy
            pooled[f"tsne_ari_perplexity_{perp:g}"] = embedding_ari(xy, py, pg, seed=seed)
    # real and inverted together
    n_cls = len(np.unique(real_labels))
    n_real = min(len(real_feats), len(pf))
    rng = np.random.default_rng(seed)
    ri = rng.choice(len(real_feats), n_real, replace=False)
    ii = rng.choice(len(pf), n_real, replace=False)
    both = np.concatenate([real_feats[ri], pf[ii]])
    source = np.r_[np.zeros(n_real), np.ones(n_real)]
    both_y = np.r_[real_labels[ri], py[ii]]
    mix = mixed_cluster_share(both, source, k=2 * n_cls, seed=seed)
    perp0 = perplexities[0] if perplexities else 30.0
    both_xy = embed_tsne(both, perplexity=perp0, seed=seed) if len(both) > 3 * perp0 else None
    if both_xy is not None:
        mix["tsne_ari_vs_source"] = embedding_ari(both_xy, np.zeros(len(both), int),
                                                  source.astype(int), seed=seed)
    layer_gamma = []
    base_w = gens[0].config.weights
    for layer in ("penultimate", "penultimate.0"):
        for gamma in gammas:
            _, (gg,) = profile_generators(dataset, prof, seeds=[0], device=device, progress=progress,
                                          weights=LossWeights(**{**vars(base_w), "gamma": float(gamma)}),
                                          feature_layer=None if layer == model.feature_layer else layer)
            im, lb = generate(gg.model, per_generator, seed=seed,
                              keep_dropout=gg.config.dropout_at_generation)
            pr, ft = features_of(model, im, feature_layer=layer, device=device)
            cc = calibrated_clusters(ft, lb.numpy(), n_null=n_null, seed=seed)
            cc.pop("per_class")
            layer_gamma.append({"layer": layer, "gamma": float(gamma),
                                "inversion_accuracy": float((pr == lb.numpy()).mean()),
                                "feature_cosine_inverted": within_class_cosine(torch.as_tensor(ft), lb),
                                **cc})
    # the same rule on real test features (what real classes give) and on merged real class pairs
    # (two clusters by construction: the positive control the verdict needs)
    real = calibrated_clusters(real_feats, real_labels, n_null=n_null, seed=seed,
                               max_points=per_generator)
    control = merged_pairs_control(real_feats, real_labels, n_null=n_null, seed=seed,
                                   max_points=per_generator)
    for r in (real, control):
        r.pop("per_class")
    verdict = clusters_fair_verdict(single, pooled, control)
    record = {"verdict": verdict, "single_generator": single, "pooled_generators": pooled,
              "real": real, "positive_control": control,
              "real_vs_inverted": {**mix, "n_real": int(n_real), "n_inverted": int(n_real)},
              "layer_gamma": layer_gamma, "null": {"kind": "Gaussian, class mean and covariance",
                                                   "n_null": n_null,
                                                   "silhouette_p95_mean": pooled["null_silhouette_p95_mean"]}}
    return {"clusters_fair": record, "per_generator": per_gen, "pooled_feats": pf,
            "pooled_labels": py, "pooled_generators": pg, "tsne": tsne, "both_xy": both_xy,
            "both_source": source, "both_labels": both_y}


def sae_class_profiles(sae, real_feats, real_labels, inv_feats, inv_labels, n_units: int = 48):
    """Mean SAE activation per class for real and inverted samples, over the ``n_units`` units most
    active on real data overall: returns ``(real (C, n_units), inverted (C, n_units), unit ids)``."""
    real_act, inv_act = sae.activations(real_feats), sae.activations(inv_feats)
    units = np.argsort(-real_act.mean(0))[:n_units]
    classes = np.unique(real_labels)
    r = np.stack([real_act[real_labels == c][:, units].mean(0) for c in classes])
    i = np.stack([inv_act[inv_labels == c][:, units].mean(0) for c in classes])
    return r, i, units

