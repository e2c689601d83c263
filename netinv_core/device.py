"""Which torch device to run on, checked before anything trains.

``resolve_device(None)`` is ``cuda`` when torch sees a GPU, else ``cpu``. A device name torch does
not know, or a GPU that is not there, is a ``ConfigError`` that says what to use instead (rather
than a shape error or a driver message deep inside the first forward pass).
"""
from __future__ import annotations

import torch

from .errors import ConfigError


def resolve_device(device=None) -> torch.device:
    """``device`` (a name such as ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device``) as a
    ``torch.device``, after checking that it exists here; ``None`` picks cuda if available."""
    if device is None or device == "":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N' (or leave it "
                          f"unset: cuda when a GPU is visible, else cpu)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for, but torch sees no GPU here "
                              f"(torch.cuda.is_available() is False); use device='cpu' or leave "
                              f"it unset")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: there are only {torch.cuda.device_count()} "
                              f"GPU(s) (cuda:0 .. cuda:{torch.cuda.device_count() - 1})")
        # GPU settings that do not change the method (issue 14): TF32 tensor-core matmuls and
        # convolutions (10-bit mantissa inputs, fp32 accumulation), cuDNN autotuning for the
        # fixed batch shapes.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError(f"device {device!r} is not available here; use device='cpu'")
    elif dev.type != "cpu":
        raise ConfigError(f"device {device!r} is not supported by netinv; use 'cpu' or 'cuda'")
    return dev


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether tensors on ``a`` can meet tensors on ``b`` (``cuda`` means the current GPU)."""
    if a.type != b.type:
        return False
    if a.type != "cuda" or a.index == b.index:
        return True
    current = torch.cuda.current_device()
    return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)
