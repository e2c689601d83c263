"""Checkpoints: atomic writes, safe loads, and a cache keyed by a hash of the config.

A checkpoint is a ``torch.save`` file of plain data: tensors, numbers, strings, lists and dicts.
It holds ``kind`` (what it is), ``config`` (the config that made it, as JSON), ``metrics`` (JSON)
and ``versions`` (torch, torchvision, numpy, netinv), so a checkpoint rebuilds its own model.

- Writes are atomic: the file is written beside its target, flushed to disk and renamed over it,
  so an interrupted write never leaves a half-written checkpoint at the target path.
- Loads use ``torch.load(..., weights_only=True)``: no pickled code is ever executed.
- A file that cannot be read, is not a netinv checkpoint, is of another kind, was written for
  another config or lacks an entry the caller reads raises ``CheckpointError`` naming the file and
  what to do; it is never reused. A checkpoint path that is empty or a folder is a ``ConfigError``.
- A write killed half-way (SIGKILL, power loss) leaves its temporary file
  ``.NAME.HOST-PID.XXXX.tmp`` beside the target; the next write into that folder removes every such
  file whose writer is no longer running on this machine, or that has not changed for an hour.

The cache folder is ``$NETINV_CACHE`` if set, else ``~/.cache/netinv/checkpoints``; one that is a
file, or cannot be created or written, is a ``ConfigError`` before anything trains.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .errors import CheckpointError, ConfigError

FORMAT = "netinv-checkpoint-v1"
# Bump when a change to the code makes old checkpoints of the same config invalid.
SCHEMA = 1
_RESERVED = ("format", "kind", "config", "metrics", "versions")


def cache_dir() -> Path:
    """The checkpoint cache folder; ``ConfigError`` if it is a file or cannot be made or written."""
    env = os.environ.get("NETINV_CACHE")
    d = Path(env or Path.home() / ".cache" / "netinv" / "checkpoints").expanduser()
    what = f"NETINV_CACHE={env}" if env else f"the checkpoint cache {d}"
    hint = "point NETINV_CACHE at a folder you can write (it is created if missing)"
    if d.exists():
        if not d.is_dir():
            raise ConfigError(f"{what} is a file, not a folder; {hint}")
        if not os.access(d, os.W_OK | os.X_OK):
            raise ConfigError(f"{what} is not writable; {hint}")
        return d
    parent = d.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} cannot be created ({parent} is "
                          f"{'not a folder' if not parent.is_dir() else 'not writable'}); {hint}")
    return d


def check_checkpoint_path(path) -> Path:
    """``path`` as a ``Path`` if it can name a checkpoint file, else ``ConfigError``."""
    if path is None or (isinstance(path, str) and not path.strip()):
        raise ConfigError(f"checkpoint={path!r} is not a file path; pass a file name such as "
                          f"checkpoint='runs/generator.pt', or checkpoint=None for no checkpoint")
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"checkpoint={str(path)!r} is a folder; pass a file inside it, e.g. "
                          f"checkpoint={str(path / 'generator.pt')!r}")
    return path


_TMP_RE = re.compile(r"^\..+\.(?P<host>[^.]*)-(?P<pid>\d+)\.[^.]+\.tmp$")
STALE_TMP_SECONDS = 3600


def _host() -> str:
    return socket.gethostname().replace(".", "_").replace("-", "_")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale_tmp(folder, max_age: float = STALE_TMP_SECONDS) -> list[Path]:
    """Remove temporary files of interrupted atomic writes in ``folder``; returns those removed.

    A file ``.NAME.HOST-PID.XXXX.tmp`` is stale when HOST is this machine and process PID is gone,
    or (whatever its name) when it has not been modified for ``max_age`` seconds; a write in
    progress keeps its file fresh, so another process's live write is never touched.
    """
    removed = []
    host, now = _host(), time.time()
    try:
        entries = list(Path(folder).glob(".*.tmp"))
    except OSError:
        return removed
    for f in entries:
        m = _TMP_RE.match(f.name)
        try:
            dead = m is not None and m["host"] == host and not _alive(int(m["pid"]))
            if dead or now - f.stat().st_mtime > max_age:
                f.unlink()
                removed.append(f)
        except OSError:  # gone already, or not ours to remove
            pass
    return removed


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
    clean_stale_tmp(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_host()}-{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
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


class Checkpoint(dict):
    """The entries of a loaded checkpoint; a missing entry is a ``CheckpointError``, not a
    ``KeyError`` (a checkpoint written by another version, or by hand)."""

    path: Path | None = None

    def __missing__(self, key):
        raise CheckpointError(
            f"checkpoint {self.path} ({self.get('kind')!r}) has no {key!r} entry: it was written "
            f"by another version of netinv or by other code. Delete it and rerun to rebuild it.")


def load_checkpoint(path: str | Path, *, kind: str | None = None,
                    config: Mapping[str, Any] | None = None, map_location="cpu") -> dict:
    """Load a checkpoint without executing code; check its kind and config.

    Returns the saved entries, with ``config`` and ``metrics`` decoded from JSON.
    """
    path = check_checkpoint_path(path)
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
    out = Checkpoint(payload)
    out.path = path
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
    if path is None:
        return None
    path = check_checkpoint_path(path)
    if not path.exists():
        return None
    state = load_checkpoint(path, kind=kind, config=config)
    for k, obj in objects.items():
        _set_state(obj, state[k])
    return {k: v for k, v in state.items() if k not in objects}


# ---------------------------------------------------------------------------------------------
# the one load-or-train path

def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``: the device every ``device=None`` means."""
    from .device import resolve_device
    return str(resolve_device(None))


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
                  extras: tuple[str, ...] = (),
                  stale: Callable[[dict], bool] | None = None) -> Trained:
    """The model of ``kind`` for checkpoint key ``key``: from the cache, or trained and cached.

    A cached checkpoint (``checkpoint_path(kind, key, name)``) is loaded into ``build(state)``;
    otherwise ``train(partial_path)`` (which resumes from ``partial_path`` when it exists) returns
    ``(model, history, metrics, saved_extras)``, the final checkpoint is written atomically and
    the partial one removed. With ``train_missing=False`` a missing checkpoint raises
    ``CheckpointError`` naming ``what`` is missing and, from ``hint``, how to make it. The model is on ``device``
    (``default_device()`` when None) in eval mode; ``extras`` names the checkpoint entries
    returned in ``Trained.extras``. A cached checkpoint for which ``stale(state)`` is true was made
    by an older rule for the same key; it is trained again (and replaced).
    """
    from .device import resolve_device
    device = str(resolve_device(device))  # a wrong device fails here, before any training
    path = checkpoint_path(kind, key, name)
    state = load_checkpoint(path, kind=kind, config=key) if path.exists() and not retrain else None
    if state is not None and stale is not None and stale(state):
        print(f"retraining the cached {what}: made by an older rule ({path.name})")
        state = None
    if state is not None:
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
