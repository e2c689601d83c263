"""Errors raised by netinv. Each message says what was wrong and what to do instead."""


class NetinvError(Exception):
    """Base class of every error netinv raises on purpose."""


class ConfigError(NetinvError, ValueError):
    """A name, weight or setting that netinv cannot use (unknown dataset, negative weight, ...)."""


class DataUnavailableError(NetinvError, FileNotFoundError):
    """The dataset's files are not under the data root and could not be downloaded."""


class CheckpointError(NetinvError, RuntimeError):
    """A checkpoint file is corrupt, or was written for a different config."""


class ShapeError(NetinvError, ValueError):
    """An image or feature shape that the classifier or generator cannot take."""


class ClaimSourceError(NetinvError, LookupError):
    """A claim of the ledger (``netinv_core.claims``) reads a figure JSON or a path in it that is
    not there; the message names the claim, the file and the command that regenerates it."""


class TrainingDivergedError(NetinvError, FloatingPointError):
    """A training loss turned non-finite (NaN or inf); training stopped before caching NaN weights."""
