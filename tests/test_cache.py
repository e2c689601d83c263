"""Checkpoints: round trips, atomic writes, corrupt and mismatched files, no code on load."""
import os
import pickle

import pytest
import torch

from netinv_core.cache import atomic_write, checkpoint_path, config_key, load_checkpoint, save_checkpoint
from netinv_core.config import ClassifierConfig, to_dict
from netinv_core.errors import CheckpointError


def test_round_trip(tmp_path):
    path = tmp_path / "c.pt"
    sd = {"w": torch.arange(6.0).reshape(2, 3)}
    save_checkpoint(path, kind="classifier", config={"a": 1}, metrics={"acc": 0.5},
                    tensors={"model": sd, "history": {"loss": [1.0, 0.5]}})
    out = load_checkpoint(path, kind="classifier", config={"a": 1})
    assert torch.equal(out["model"]["w"], sd["w"])
    assert out["metrics"] == {"acc": 0.5} and out["history"] == {"loss": [1.0, 0.5]}
    assert set(out["versions"]) >= {"torch", "torchvision", "netinv"}
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary files left


def test_config_and_kind_mismatch_are_refused(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, kind="classifier", config={"a": 1, "b": 2}, tensors={})
    with pytest.raises(CheckpointError, match=r"another config.*\['b'\]"):
        load_checkpoint(path, config={"a": 1, "b": 3})
    with pytest.raises(CheckpointError, match="expected 'generator'"):
        load_checkpoint(path, kind="generator")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_corrupt_files_give_a_clear_error(tmp_path, content):
    path = tmp_path / "c.pt"
    if content is None:  # a truncated real checkpoint
        save_checkpoint(path, kind="classifier", config={}, tensors={"w": torch.randn(1000)})
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match="Delete the file and rerun"):
        load_checkpoint(path)


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_pickled_code_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format": "netinv-checkpoint-v1", "payload": _Boom()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()


def test_failed_write_leaves_nothing_behind(tmp_path):
    path = tmp_path / "fig.png"
    path.write_bytes(b"old")

    def broken(tmp):
        with open(tmp, "wb") as fh:
            fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def test_cache_key_depends_on_every_config_value():
    a = to_dict(ClassifierConfig(dataset="mnist"))
    b = to_dict(ClassifierConfig(dataset="mnist", seed=1))
    assert config_key("classifier", a) == config_key("classifier", dict(a))
    assert config_key("classifier", a) != config_key("classifier", b)
    assert checkpoint_path("classifier", a, "mnist") != checkpoint_path("classifier", b, "mnist")


def test_a_fresh_model_samples_like_its_cached_copy(tmp_path, monkeypatch):
    """Training keeps the generator's weights channels-last; a cached copy loads contiguous, and
    convolutions round differently by memory format. The model a run trains must give the very
    samples the same model gives when a later run loads it from the cache (warm = cold)."""
    from netinv_core.generator import generate
    from netinv_core.pipeline import profile_generators

    monkeypatch.setenv("NETINV_CACHE", str(tmp_path / "cache"))
    _, (fresh,) = profile_generators("digits", "smoke", seeds=[0], progress=False, device="cpu")
    _, (cached,) = profile_generators("digits", "smoke", seeds=[0], progress=False, device="cpu",
                                      train_missing=False)
    for gen in (fresh, cached):
        assert all(p.is_contiguous() for p in gen.model.parameters())
    a, _ = generate(fresh.model, 100, seed=3, keep_dropout=fresh.config.dropout_at_generation)
    b, _ = generate(cached.model, 100, seed=3, keep_dropout=cached.config.dropout_at_generation)
    assert torch.equal(a, b)


def test_a_generator_cached_before_the_early_stop_minimum_is_trained_again(tmp_path, monkeypatch,
                                                                          capsys):
    """An early stop waits ``stop_min_steps``; a cached generator that stopped sooner (made by the
    older rule, same key) is retrained, and one that stopped later still loads."""
    import netinv_core.pipeline as pipeline

    monkeypatch.setenv("NETINV_CACHE", str(tmp_path / "cache"))

    def run():
        _, (gen,) = pipeline.profile_generators("digits", "smoke", seeds=[0], progress=False,
                                                device="cpu", stop_at_accuracy=0.01)
        return gen

    first = run()
    assert first.metrics["steps"] == 20            # the smoke budget is 30: the minimum is 20
    run()
    assert "older rule" not in capsys.readouterr().out
    monkeypatch.setattr(pipeline, "stop_min_steps", lambda steps: 25)
    again = run()
    assert "older rule" in capsys.readouterr().out
    assert again.metrics["steps"] == 20            # trained by the real rule again
