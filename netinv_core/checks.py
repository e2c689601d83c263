"""Value checks: the vocabularies (datasets, conditionings, loss terms, precisions) and the
helpers that turn a wrong setting into a ``ConfigError`` saying what to give instead.

The config dataclasses (``netinv_core.config``) and the notebooks' parameter checks
(``netinv_core.notebooks``) validate through these; ``config`` re-exports them.
"""
from __future__ import annotations

import math
from typing import Any

from .errors import ConfigError

DATASETS = ("mnist", "fashionmnist", "svhn", "cifar10", "digits")
DIGIT_DATASETS = ("mnist", "svhn", "digits")   # a horizontal flip changes the label's meaning
# ood_attempts' name of the first Section 5.2 configuration: what a ``runs`` record of
# figures/fig4_ood.json without a ``variant`` was made with
LEGACY_OOD_VARIANT = "capped"
CONDITIONINGS = ("label", "vector", "matrix", "vector_matrix")
LOSS_TERMS = ("alpha", "beta", "gamma", "delta")
# how the loss terms are written for people (slider labels, error messages)
LOSS_TERM_LABELS = {"alpha": "KL", "beta": "CE", "gamma": "cosine", "delta": "orthogonality"}
PRECISIONS = ("fp32", "bf16")
AUGMENTATIONS = ("none", "crop", "flip_crop")
# "adam": Adam, cosine LR per epoch (the default); "sgd": SGD + Nesterov 0.9, one-cycle LR per batch
OPTIMIZERS = ("adam", "sgd")


def check_weight(name: str, value: Any) -> float:
    """One loss weight: a finite float >= 0, else ``ConfigError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(
            f"loss weight {name}={value!r} is not a number; give a finite float >= 0, e.g. {name}=1.0")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"loss weight {name}={value!r} must be finite and >= 0 (use 0 to switch the term off)")
    return value


def check_int(name: str, value: Any, minimum: int = 0, hint: str = "") -> int:
    """``value`` if it is an int >= ``minimum`` (not a bool, str or float), else ``ConfigError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}={value!r} is a {type(value).__name__}; give a whole number "
                          f">= {minimum}, e.g. {name}={max(minimum, 1)}{hint}")
    if value < minimum:
        raise ConfigError(f"{name}={value!r} must be >= {minimum}{hint}")
    return value


def check_rate(name: str, value: Any, low: float = 0.0, high: float = 1.0) -> float:
    """A float in [low, high) (a dropout probability), else ``ConfigError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value < high:
        raise ConfigError(f"{name}={value!r} must be a number in [{low:g}, {high:g})")
    return float(value)


def check_lr(value: Any) -> float:
    """A learning rate: a finite float > 0, else ``ConfigError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ConfigError(f"lr={value!r} must be a finite number > 0, e.g. lr=1e-3")
    return float(value)


def check_dataset(name: str) -> str:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {list(DATASETS)}")
    return name


def check_conditioning(name: str) -> str:
    if name not in CONDITIONINGS:
        raise ConfigError(f"unknown conditioning {name!r}; choose one of {list(CONDITIONINGS)}")
    return name
