"""Recorded results: the one place for saving numbers and figures and for mean ± std.

- ``save_json``: indented, key-sorted JSON written atomically; non-finite floats become null and
  this machine's data root, cache folder and home folder are written as ``$NETINV_DATA``,
  ``$NETINV_CACHE`` and ``~``, so a committed record names no machine path.
- ``save_figure``: PNG and PDF written atomically; ``show_and_save`` also shows the figure (the
  notebooks' one call per figure).
- ``merge_datasets``: a run over some datasets keeps the other datasets' entries of the record it
  replaces (same profile only), so one dataset can be regenerated without redoing the rest.
- ``mean_std`` / ``format_pm``: mean and sample standard deviation (ddof = 1) over seeds,
  s = sqrt(sum_i (x_i - mean)^2 / (n - 1)), and their "m ± s" text.
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np

from .cache import atomic_write


def jsonable(obj):
    """``obj`` with non-finite floats replaced by None (JSON has no NaN), tuples as lists."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def portable(text: str) -> str:
    """``text`` with this machine's data root, cache folder and home folder written as
    ``$NETINV_DATA``, ``$NETINV_CACHE`` and ``~``."""
    from .cache import cache_dir
    from .data import data_root

    for path, name in ((data_root(), "$NETINV_DATA"), (cache_dir(), "$NETINV_CACHE"),
                       (Path.home(), "~")):
        for p in sorted({str(path), str(path.resolve())}, key=len, reverse=True):
            if len(p) > 1:
                text = text.replace(p, name)
    return text


def save_json(obj, path: str | Path) -> str:
    """Write ``obj`` as indented JSON atomically (see the module doc); returns the path."""
    text = portable(json.dumps(jsonable(obj), indent=2, sort_keys=True))
    atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n"))
    return str(path)


def save_figure(fig, stem: str | Path, formats=("png", "pdf"), dpi: int = 150) -> list[str]:
    """Save ``fig`` as ``stem.png`` and ``stem.pdf`` (atomically); returns the paths. The PDF
    carries no creation date, so the same figure gives the same bytes (no churn in git)."""
    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        meta = {"CreationDate": None} if fmt == "pdf" else None
        atomic_write(path, lambda tmp, fmt=fmt, meta=meta: fig.savefig(
            tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata=meta))
        paths.append(str(path))
    return paths


def show_and_save(fig, stem: str | Path) -> list[str]:
    """``save_figure`` then show ``fig`` (inline in a notebook); returns the saved paths."""
    import matplotlib.pyplot as plt

    paths = save_figure(fig, stem)
    plt.show()
    return paths


def merge_datasets(record: dict, path: str | Path) -> dict:
    """``record`` plus the ``datasets`` entries of the JSON at ``path`` that ``record`` lacks, when
    that file exists and was made with the same ``profile``; otherwise ``record`` unchanged.
    Entries in ``record`` always win; the merged record lists the kept ones in ``kept_from_previous``."""
    path = Path(path)
    if not path.exists():
        return record
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return record
    if old.get("profile") != record.get("profile"):
        return record
    kept = {k: v for k, v in old.get("datasets", {}).items() if k not in record["datasets"]}
    if not kept:
        return record
    return {**record, "datasets": {**kept, **record["datasets"]},
            "kept_from_previous": sorted(kept)}


def keep_previous(record: dict, path: str | Path, entries) -> dict:
    """``record`` plus the ``entries`` (paths like ``"attempts"`` or ``"datasets/mnist/student"``)
    that it lacks and the JSON at ``path`` holds, when that file was made with the same
    ``profile``; the kept paths are added to ``record["kept_from_previous"]``. For results a
    notebook records but does not make itself (Figure 5's attempts and search, the ablation's
    student probe, both from command-line runs): rerunning the notebook must not drop them."""
    path = Path(path)
    try:
        old = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        return record
    if old.get("profile") != record.get("profile"):
        return record
    record = copy.deepcopy(record)       # the caller's record stays as it was
    kept = list(record.get("kept_from_previous", []))
    for entry in entries:
        keys = entry.split("/")
        src, dst = old, record
        for k in keys[:-1]:
            src = src.get(k) if isinstance(src, dict) else None
            dst = dst.get(k) if isinstance(dst, dict) else None
        if isinstance(src, dict) and isinstance(dst, dict) and keys[-1] in src and keys[-1] not in dst:
            dst[keys[-1]] = src[keys[-1]]
            kept.append(entry)
    return {**record, "kept_from_previous": kept} if kept else record


def mean_std(values, *, std_of_one: float | None = 0.0) -> dict:
    """``{"mean", "std"}`` of the non-None ``values`` (float64; std with ddof = 1, and
    ``std_of_one`` for a single value); both None when no value is left."""
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None}
    a = np.asarray(vals, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else std_of_one}


def format_pm(d: dict, fmt: str = "{:.4f}") -> str:
    """``"m ± s"`` of a ``mean_std`` result ("n/a" without a mean)."""
    if d.get("mean") is None:
        return "n/a"
    return fmt.format(d["mean"]) + " ± " + ("n/a" if d.get("std") is None else fmt.format(d["std"]))
