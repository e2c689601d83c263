"""Figures: inversion grids, and atomic saving of figures and recorded numbers.

Plotting functions take tensors and return a matplotlib Figure; they never train or save.
``save_figure`` writes PNG and PDF, ``save_json`` the numbers, each atomically.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib  # noqa: F401  (backend chosen by the caller or MPLBACKEND)

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .cache import atomic_write  # noqa: E402


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


def sample_grid(images: torch.Tensor, labels: torch.Tensor, class_names, per_class: int = 8,
                title: str = ""):
    """Rows are classes, ``per_class`` samples of each class side by side."""
    cols = []
    for j in range(per_class):
        col = []
        for c in range(len(class_names)):
            idx = torch.nonzero(labels == c).flatten()
            col.append(images[idx[j % max(len(idx), 1)]] if len(idx) else torch.zeros_like(images[0]))
        cols.append(torch.stack(col))
    return inversion_grid(cols, class_names, title=title)


def save_figure(fig, stem: str | Path, formats=("png", "pdf"), dpi: int = 150) -> list[str]:
    """Save ``fig`` as ``stem.png`` and ``stem.pdf`` (atomically); returns the paths."""
    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        atomic_write(path, lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt, dpi=dpi,
                                                             bbox_inches="tight"))
        paths.append(str(path))
    return paths


def _clean(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def save_json(obj, path: str | Path) -> str:
    """Write ``obj`` as indented JSON atomically (non-finite floats become null)."""
    text = json.dumps(_clean(obj), indent=2, sort_keys=True)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n"))
    return str(path)
