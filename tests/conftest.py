"""Shared fixtures: a per-session checkpoint cache and a small classifier trained on the embedded
scikit-learn digits (real handwritten digits; no network, no ../shared)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Notebook cells collected by nbval (run_tests.sh) count as notebook smoke tests, so that
    ``-m "not notebooks"`` leaves them out too."""
    for item in items:
        if str(getattr(item, "path", "")).endswith(".ipynb"):
            item.add_marker(pytest.mark.notebooks)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("NETINV_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def digits():
    from netinv_core.data import load_dataset
    return load_dataset("digits", "train"), load_dataset("digits", "test")


@pytest.fixture(scope="session")
def digits_classifier(digits):
    """The paper's classifier trained 3 epochs on the digits (about 95% test accuracy)."""
    from netinv_core.classifier import train_classifier
    from netinv_core.config import ClassifierConfig
    train, _ = digits
    model, _ = train_classifier(ClassifierConfig(dataset="digits", epochs=3, batch_size=64),
                                train, progress=False)
    return model.eval()


def params_of(model: torch.nn.Module):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def interrupt_then_resume(train, key: str | None = None, at=None):
    """``train(callback=stop)`` stopped by an exception from the callback at the first record with
    ``record[key] == at`` (at the first record when ``key`` is None), as a killed run would stop;
    then ``train()`` again, which resumes from the checkpoint. Returns what the second call
    returns."""
    class Stop(Exception):
        pass

    def stop(rec):
        if key is None or rec[key] == at:
            raise Stop

    with pytest.raises(Stop):
        train(callback=stop)
    return train()


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module, atol: float = 1e-5):
    """The two models' parameters and buffers agree to ``atol`` (a resumed run vs a whole one)."""
    pa, pb = params_of(a), params_of(b)
    assert all(torch.allclose(pa[k].float(), pb[k].float(), atol=atol) for k in pa)
