"""Figures: inversion grids, embeddings, histograms and the experiments' summary plots.

Plotting functions take tensors and return a matplotlib Figure; they never train or save
(``netinv_core.results`` saves figures and numbers).
"""
from __future__ import annotations

import textwrap

import matplotlib  # noqa: F401  (backend chosen by the caller or MPLBACKEND)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from .results import save_figure, save_json  # noqa: E402,F401  (re-exported for older callers)


def _to_hwc(img: torch.Tensor):
    img = img.detach().cpu().clamp(0, 1)
    return img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()


def inversion_grid(columns: list[torch.Tensor], class_names, *, title: str = "",
                   column_titles=None, cell: float = 0.8):
    """Rows are classes, columns are generators: ``columns[j][c]`` is one image (C, H, W) of
    class c from generator j."""
    n_rows, n_cols = len(class_names), len(columns)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * n_cols + 1.4, cell * n_rows + 0.6),
                             squeeze=False)
    for j, col in enumerate(columns):
        for c in range(n_rows):
            ax = axes[c, j]
            ax.imshow(_to_hwc(col[c]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(class_names[c], rotation=0, ha="right", va="center", fontsize=8)
            if c == 0 and column_titles is not None:
                ax.set_title(column_titles[j], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _class_colors(n: int):
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def scatter_by_class(ax, xy, labels, class_names, *, title="", xlabel="", ylabel="", s=6,
                     legend=True):
    colors = _class_colors(len(class_names))
    for c, name in enumerate(class_names):
        m = labels == c
        ax.scatter(xy[m, 0], xy[m, 1], s=s, color=colors[c], label=name, alpha=0.7, linewidths=0)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend:
        ax.legend(fontsize=7, markerscale=2.5, loc="best", frameon=True, title="class",
                  title_fontsize=7)


def figure3_panels(res: dict, *, title: str = ""):
    """PCA, decision boundaries over the PCA plane, t-SNE and UMAP of the inverted samples' features."""
    from matplotlib.colors import ListedColormap

    plane, labels, names = res["plane"], res["labels"], res["classes"]
    ev = plane.explained_variance
    fig, axes = plt.subplots(1, 4, figsize=(22, 5.2))
    pc = dict(xlabel=f"PC1 ({ev[0]:.0%} of variance)", ylabel=f"PC2 ({ev[1]:.0%} of variance)")
    scatter_by_class(axes[0], plane.points, labels, names, title="PCA of penultimate features", **pc)
    cmap = ListedColormap(_class_colors(len(names)))
    axes[1].pcolormesh(plane.xx, plane.yy, plane.mesh_labels, cmap=cmap, vmin=-0.5,
                       vmax=len(names) - 0.5, alpha=0.35, shading="auto")
    scatter_by_class(axes[1], plane.points, labels, names, legend=False, title=(
        f"decision regions of the head on the PCA plane\n(2-D label = full label for "
        f"{plane.faithfulness:.0%} of samples)"), **pc)
    emb_labels = res["embed_labels"]
    scatter_by_class(axes[2], res["tsne"], emb_labels, names, title="t-SNE", legend=False,
                     xlabel="t-SNE 1", ylabel="t-SNE 2")
    scatter_by_class(axes[3], res["umap"], emb_labels, names, title="UMAP", legend=False,
                     xlabel="UMAP 1", ylabel="UMAP 2")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def clusters_fair_panels(fair: dict, class_names, *, title: str = ""):
    """The fair cluster test (``figure3.figure3_fair``): t-SNE of the pooled generators' features
    coloured by class and by generator, and t-SNE of real and inverted features together."""
    rec = fair["clusters_fair"]
    perps = sorted(fair["tsne"])
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.4))
    if perps:
        xy = fair["tsne"][perps[0]]
        scatter_by_class(axes[0], xy, fair["pooled_labels"], class_names, legend=False,
                         title=f"pooled generators, t-SNE (perplexity {perps[0]:g}), by class",
                         xlabel="t-SNE 1", ylabel="t-SNE 2")
        gens = fair["pooled_generators"]
        cmap = plt.get_cmap("Set1")
        for j in np.unique(gens):
            m = gens == j
            axes[1].scatter(xy[m, 0], xy[m, 1], s=5, color=cmap(int(j) % 9), alpha=0.7,
                            linewidths=0, label=f"G{int(j) + 1}")
        pg = rec["pooled_generators"]
        axes[1].set_title(f"same map, by generator (ARI vs generator: k-means {pg['ari_k_groups_mean']:.2f}, "
                          f"t-SNE {pg.get(f'tsne_ari_perplexity_{perps[0]:g}', float('nan')):.2f})",
                          fontsize=10)
        axes[1].legend(fontsize=7, markerscale=2.5, title="generator", title_fontsize=7)
    if fair.get("both_xy") is not None:
        xy, src = fair["both_xy"], fair["both_source"]
        for v, name, color in ((0, "real test", "black"), (1, "inverted", "tab:orange")):
            m = src == v
            axes[2].scatter(xy[m, 0], xy[m, 1], s=5, color=color, alpha=0.6, linewidths=0, label=name)
        rv = rec["real_vs_inverted"]
        axes[2].set_title(f"real and inverted together: {rv['mixed_cluster_share']:.0%} of "
                          f"{rv['k']} k-means clusters mix both", fontsize=10)
        axes[2].legend(fontsize=7, markerscale=2.5)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    counts = [f"{name} {rec[key]['classes_above_null']}/{rec[key]['n_classes']}"
              for key, name in (("single_generator", "one generator"), ("pooled_generators", "pooled"),
                                ("real", "real test images"),
                                ("positive_control", "control: real classes merged in pairs"))
              if key in rec]
    head = title or f"two clusters per class? verdict: {rec['verdict']}"
    fig.suptitle(head + "\nclasses whose clusters beat the Gaussian null: " + ", ".join(counts))
    fig.tight_layout()
    return fig


def sae_heatmap(real, inverted, class_names, units, *, title=""):
    """Mean SAE unit activation per class: real test images (left) and inverted samples (right)."""
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(16, 0.45 * len(class_names) + 1.8), sharey=True)
    vmax = float(max(real.max(), inverted.max()))
    for ax, data, name in ((axes[0], real, "real test images"), (axes[1], inverted, "inverted samples")):
        sns.heatmap(data, ax=ax, vmin=0, vmax=vmax, cmap="viridis", xticklabels=[str(u) for u in units],
                    yticklabels=list(class_names), cbar_kws={"label": "mean activation"})
        ax.set_title(f"SAE units, {name}", fontsize=10)
        ax.set_xlabel("SAE unit (48 most active on real data)")
        ax.tick_params(axis="x", labelsize=5)
    axes[0].set_ylabel("class")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def gamma_sweep_plot(sweep: list, *, title=""):
    """Clusters per class (fixed rule; and classes beating the Gaussian null, when recorded),
    feature cosine and inversion accuracy against the cosine weight gamma; mean ± std over seeds
    when the rows hold ``*_std``."""
    g = [r["gamma"] for r in sweep]
    panels = [("clusters_per_class_mean", "clusters per class (fixed 0.25 rule)"),
              ("feature_cosine_inverted", "within-class feature cosine"),
              ("inversion_accuracy", "inversion accuracy")]
    if all("classes_above_null" in r for r in sweep):
        panels.insert(1, ("classes_above_null", "classes beating the Gaussian null"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.6))
    for ax, (key, name) in zip(axes, panels):
        ax.errorbar(g, [r[key] for r in sweep], yerr=[r.get(key + "_std") or 0.0 for r in sweep],
                    fmt="o-", capsize=3)
        ax.set_ylabel(name)
        ax.set_xlabel("gamma (cosine weight)")
        ax.grid(alpha=0.3)
    n = min((r.get("n_seeds", 1) for r in sweep), default=1)
    if title or n > 1:
        fig.suptitle(f"{title} (mean ± std over {n} seeds)" if n > 1 else title)
    fig.tight_layout()
    return fig


def ablation_plot(summary: list[dict], *, title=""):
    """Inversion accuracy, within-class feature cosine and clusters per class for each setting
    (mean ± std over seeds); the dashed line in the middle panel is the real test images' cosine."""
    labels = [r["setting"] for r in summary]
    x = range(len(labels))
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.4))
    panels = (("inversion_accuracy", "inversion accuracy"),
              ("feature_cosine_inverted", "within-class feature cosine (lower = more diverse)"),
              ("clusters_per_class_mean", "clusters per class"))
    for ax, (key, name) in zip(axes, panels):
        means = [r[key + "_mean"] if r[key + "_mean"] is not None else float("nan") for r in summary]
        stds = [r[key + "_std"] or 0.0 for r in summary]
        ax.bar(x, means, yerr=stds, capsize=3, color="tab:blue", alpha=0.8)
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel(name, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[1].axhline(summary[0]["feature_cosine_real"], ls="--", color="k", lw=1,
                    label="real test images")
    axes[1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def ood_histograms(conf, numbers: dict, names, *, title=""):
    """Confidence max_{c<N} p_c of the garbage-class classifier (``conf``: an
    ``ood_experiment.OODConfidences``): in-distribution test images the classifier keeps vs the OOD
    samples it does not send to garbage, one panel per OOD set; ``numbers`` is the same seed's
    ``evaluate_ood`` record (garbage rates; the dashed line is its least confident kept
    in-distribution sample, the paper's threshold)."""
    import numpy as np

    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 3.6), squeeze=False)
    least = numbers["least_confident_in_distribution"]
    bins = np.linspace(0, 1, 41)
    for ax, name in zip(axes[0], names):
        o = numbers["ood"][name]
        ax.hist(conf.in_kept, bins=bins, alpha=0.55, label="in-distribution test, kept",
                color="tab:blue", log=True)
        ax.hist(conf.out_garbage[name], bins=bins, alpha=0.45, color="tab:gray", log=True,
                label=f"{name} sent to garbage ({o['garbage_rate']:.1%})")
        ax.hist(conf.out_kept[name], bins=bins, alpha=0.7, color="tab:red", log=True,
                label=f"{name} kept (misclassified OOD)")
        if least is not None:
            ax.axvline(least, ls="--", color="k", lw=1, label=f"least confident ID kept {least:.3f}")
        ax.set_xlabel("confidence max_{c<N} p_c (garbage model)")
        ax.set_ylabel("images (log scale)")
        ax.set_title(f"vs {name}: most confident OOD not in garbage "
                     f"{o['most_confident_misclassified_ood'] or float('nan'):.3f}", fontsize=9)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def ncc_distributions(results: list[dict], *, title=""):
    """Per training-set size: NCC of each reconstruction to its nearest training image and to its
    nearest held-out image (same class, size-matched pools), and the same for plain inversion;
    dotted lines: the real held-out images' (ceiling) and the wrong-class images' mean NCC."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(2.6 * len(results) + 2, 3.8))
    data, labels, colors = [], [], []
    for r in results:
        t = r["tensors"]
        for src, kind, key, color in ((t.ncc, "recon train", "ncc_train", "tab:blue"),
                                      (t.ncc, "recon test", "ncc_test", "tab:orange"),
                                      (t.inv_ncc, "inv. train", "ncc_train", "tab:cyan"),
                                      (t.inv_ncc, "inv. test", "ncc_test", "tab:red")):
            if src is None:
                continue
            data.append(np.asarray(src[key]))
            labels.append(f"{r['train_size']}\n{kind}")
            colors.append(color)
    parts = ax.boxplot(data, patch_artist=True, showfliers=False)
    for patch, color in zip(parts["boxes"], colors):
        patch.set_facecolor(color)
        patch.set_alpha(0.6)
    b = results[0].get("baselines", {})
    for name, ls in (("real_test", "--"), ("wrong_class", ":")):
        if name in b:
            ax.axhline(b[name]["ncc_train"], ls=ls, color="k", lw=1,
                       label=f"{name} (n={results[0]['train_size']}): {b[name]['ncc_train']:.2f}")
    ax.set_xticks(range(1, len(labels) + 1))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("NCC to nearest image of the class")
    ax.set_xlabel("training-set size / generator / pool")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))   # outside: no box hidden
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def stretch(images: torch.Tensor) -> torch.Tensor:
    """Per-image min-max contrast stretch to [0, 1] (how the lab code displayed its images)."""
    flat = images.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    shape = (-1,) + (1,) * (images.dim() - 1)
    return (images - lo.view(shape)) / (hi - lo).clamp(min=1e-8).view(shape)


def figure5_grid(results: list[dict], class_names, *, title="", stretched: bool = False):
    """Figure 5: rows are classes; for each training-set size, one reconstruction from each of its
    generators, then a column of real training images (from the smallest training set). Shown at
    the fixed [0, 1] range, or with ``stretched`` per-image min-max contrast-stretched."""
    columns, titles = [], []
    f = stretch if stretched else (lambda t: t)
    for r in results:
        for j, (x, y) in enumerate(r["tensors"].images):
            columns.append(f(torch.stack([x[torch.nonzero(y == c).flatten()[0]]
                                          for c in range(len(class_names))])))
            titles.append(f"n={r['train_size']}\ng{j}")
    columns.append(f(torch.stack(results[0]["tensors"].train_images_per_class)))
    titles.append("train\nimage")
    return inversion_grid(columns, class_names, title=title, column_titles=titles)


def attempts_grid(columns: list[torch.Tensor], names: list[str], class_names, *, title="",
                  stretched: bool = False):
    """One column per attempt (one image per class each), fixed [0, 1] or contrast-stretched."""
    f = stretch if stretched else (lambda t: t)
    return inversion_grid([f(c) for c in columns], class_names, title=title,
                          column_titles=[textwrap.fill(n.replace("_", " "), 13) for n in names])


def nearest_grid(result: dict, class_names, per_class: int = 2, *, title=""):
    """Reconstructions (generator 0) next to their nearest training image and nearest held-out
    test image (NCC)."""
    t = result["tensors"]
    x, y = t.images[0]
    return nearest_columns(x, y, t.train_x, t.test_x, t.matches, class_names, per_class,
                           title=title)


def nearest_columns(x, y, train_x, test_x, m: dict, class_names, per_class: int = 2, *, title=""):
    """Images ``x`` (labels ``y``) next to the training / held-out images that ``m``
    (``train_index``, ``test_index``) names as their nearest, ``per_class`` triples per row."""
    cols = [[] for _ in range(3 * per_class)]
    for c in range(len(class_names)):
        idx = torch.nonzero(y == c).flatten()[:per_class]
        for j, i in enumerate(idx.tolist()):
            cols[3 * j].append(x[i])
            cols[3 * j + 1].append(train_x[m["train_index"][i]])
            cols[3 * j + 2].append(test_x[m["test_index"][i]])
    titles = []
    for j in range(per_class):
        titles += ["recon", "nearest\ntrain", "nearest\ntest"]
    return inversion_grid([torch.stack(c) for c in cols], class_names, title=title,
                          column_titles=titles)
