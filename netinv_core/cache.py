"""Checkpoints: atomic writes, safe loads, and a cache keyed by a hash of the config.

A checkpoint is a ``torch.save`` file of plain data: tensors, numbers, strings, lists and dicts.
It holds ``kind`` (what it is), ``config`` (the config that made it, as JSON), ``metrics`` (JSON)
and ``versions`` (torch, torchvision, numpy, netinv), so a checkpoint rebuilds its own model.

- Writes are atomic: the file is written beside its target, flushed to disk and renamed over it,
  so an interrupted write never leaves a half-written checkpoint at the target path.
- Loads use ``torch.load(..., weights_only=True)``: no pickled code is ever executed.
- A file that cannot be read, is not a netinv checkpoint, is of another kind, or was written for
  another config raises ``CheckpointError`` naming the file and what to do; it is never reused.

The cache folder is ``$NETINV_CACHE`` if set, else ``~/.cache/netinv/checkpoints``.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .errors import CheckpointError

FORMAT = "netinv-checkpoint-v1"
# Bump when a change to the code makes old checkpoints of the same config invalid.
SCHEMA = 1
_RESERVED = ("format", "kind", "config", "metrics", "versions")


def cache_dir() -> Path:
    d = Path(os.environ.get("NETINV_CACHE") or Path.home() / ".cache" / "netinv" / "checkpoints")
    return d.expanduser()


def config_key(kind: str, config: Mapping[str, Any]) -> str:
    """A short stable hash of ``kind`` and the JSON of ``config`` (16 hex digits)."""
    blob = json.dumps({"kind": kind, "schema": SCHEMA, "config": config}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def versions() -> dict[str, str]:
    import numpy
    import torchvision

    from . import __version__
    # str(): torch.__version__ is a TorchVersion object, which weights_only loading refuses
    return {"torch": str(torch.__version__), "torchvision": str(torchvision.__version__),
            "numpy": str(numpy.__version__), "netinv": str(__version__)}


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(tmp_path)`` and move the result over ``path`` only once it is complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path: str | Path, *, kind: str, config: Mapping[str, Any],
                    tensors: Mapping[str, Any], metrics: Mapping[str, Any] | None = None) -> None:
    """Write a checkpoint atomically. ``tensors`` holds state dicts and plain values."""
    clash = set(tensors) & set(_RESERVED)
    if clash:
        raise ValueError(f"checkpoint entries {sorted(clash)} are reserved")
    payload = {"format": FORMAT, "kind": kind, "config": json.dumps(config, sort_keys=True),
               "metrics": json.dumps(metrics or {}, sort_keys=True), "versions": versions(),
               **tensors}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path, *, kind: str | None = None,
                    config: Mapping[str, Any] | None = None, map_location="cpu") -> dict:
    """Load a checkpoint without executing code; check its kind and config.

    Returns the saved entries, with ``config`` and ``metrics`` decoded from JSON.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not loadable without executing code "
            f"({type(e).__name__}: {str(e)[:200]}). Delete the file and rerun to rebuild it.") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a netinv checkpoint ({FORMAT}); delete it and rerun.")
    if kind is not None and payload.get("kind") != kind:
        raise CheckpointError(f"{path} holds a {payload.get('kind')!r} checkpoint, expected "
                              f"{kind!r}; delete it and rerun.")
    out = dict(payload)
    out["config"] = json.loads(payload["config"])
    out["metrics"] = json.loads(payload["metrics"])
    if config is not None:
        want = json.loads(json.dumps(config, sort_keys=True))
        if out["config"] != want:
            diff = sorted(k for k in set(want) | set(out["config"])
                          if want.get(k) != out["config"].get(k))
            raise CheckpointError(
                f"checkpoint {path} was written for another config (differs in {diff}). "
                f"Delete it, or load it with the config it was made with.")
    return out


def checkpoint_path(kind: str, config: Mapping[str, Any], name: str = "") -> Path:
    """Where the cache keeps the checkpoint of ``kind`` for ``config``."""
    stem = f"{kind}-{name}-{config_key(kind, config)}" if name else f"{kind}-{config_key(kind, config)}"
    return cache_dir() / f"{stem}.pt"


# ---------------------------------------------------------------------------------------------
# resumable training state

GLOBAL_RNG = "torch-global-rng"   # stands for torch's global generator in ``save_state``/``restore_state``


def _state_of(obj):
    if obj is GLOBAL_RNG:
        return torch.get_rng_state()
    if isinstance(obj, torch.Generator):
        return obj.get_state()
    return obj.state_dict()


def _set_state(obj, value) -> None:
    if obj is GLOBAL_RNG:
        torch.set_rng_state(value)
    elif isinstance(obj, torch.Generator):
        obj.set_state(value)
    else:
        obj.load_state_dict(value)


def save_state(path: str | Path, *, kind: str, config: Mapping[str, Any],
               objects: Mapping[str, Any], **plain) -> None:
    """Write a resumable training state atomically: ``objects`` maps entry names to modules,
    optimisers, schedulers (saved by ``state_dict``), ``torch.Generator`` objects or ``GLOBAL_RNG``
    (saved by their random state); ``plain`` entries (history, step, ...) are saved as they are."""
    save_checkpoint(path, kind=kind, config=config,
                    tensors={**{k: _state_of(v) for k, v in objects.items()}, **plain})


def restore_state(path: str | Path | None, *, kind: str, config: Mapping[str, Any],
                  objects: Mapping[str, Any]) -> dict | None:
    """The inverse of ``save_state``: when ``path`` exists, put its states back into ``objects``
    (in place) and return the other entries; ``None`` when there is nothing to resume."""
    if path is None or not Path(path).exists():
        return None
    state = load_checkpoint(path, kind=kind, config=config)
    for k, obj in objects.items():
        _set_state(obj, state[k])
    return {k: v for k, v in state.items() if k not in objects}


# ---------------------------------------------------------------------------------------------
# the one load-or-train path

def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``: the device every ``device=None`` means."""
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class Trained:
    """A trained model with the config that made it, its metrics, its checkpoint path, its
    training history and any other saved entries (``extras``, e.g. the garbage examples)."""

    model: torch.nn.Module
    config: object
    metrics: dict
    path: str
    history: dict | None = None
    extras: dict = field(default_factory=dict)


def load_or_train(kind: str, key: Mapping[str, Any], name: str, config, *,
                  build: Callable[[dict], torch.nn.Module],
                  train: Callable[[Path], tuple[torch.nn.Module, dict, dict, dict]],
                  what: str, hint: str, device=None, retrain: bool = False, train_missing: bool = True,
                  extras: tuple[str, ...] = ()) -> Trained:
    """The model of ``kind`` for checkpoint key ``key``: from the cache, or trained and cached.

    A cached checkpoint (``checkpoint_path(kind, key, name)``) is loaded into ``build(state)``;
    otherwise ``train(partial_path)`` (which resumes from ``partial_path`` when it exists) returns
    ``(model, history, metrics, saved_extras)``, the final checkpoint is written atomically and
    the partial one removed. With ``train_missing=False`` a missing checkpoint raises
    ``CheckpointError`` naming ``what`` is missing and, from ``hint``, how to make it. The model is on ``device``
    (``default_device()`` when None) in eval mode; ``extras`` names the checkpoint entries
    returned in ``Trained.extras``.
    """
    device = device or default_device()
    path = checkpoint_path(kind, key, name)
    if path.exists() and not retrain:
        state = load_checkpoint(path, kind=kind, config=key)
        model = build(state)
        model.load_state_dict(state["model"])
        return Trained(model.to(device).eval(), config, state["metrics"], str(path),
                       state.get("history"), {k: state[k] for k in extras})
    if not train_missing:
        raise CheckpointError(f"no cached {what} in {path.parent}; {hint}")
    partial = path.with_suffix(".partial.pt")
    model, history, metrics, saved = train(partial)
    save_checkpoint(path, kind=kind, config=key, metrics=metrics,
                    tensors={"model": model.state_dict(), "history": history, **saved})
    partial.unlink(missing_ok=True)
    return Trained(model.to(device).eval(), config, metrics, str(path), history,
                   {k: saved[k] for k in extras})
