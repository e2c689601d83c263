"""Metrics on known inputs; the cached pipeline on the smoke profile; the benchmark's JSON."""
import json

import pytest
import torch

from netinv_core.cache import load_checkpoint
from netinv_core.errors import CheckpointError
from netinv_core.metrics import mean_pairwise_cosine, pixel_spread, within_class_cosine
from netinv_core.pipeline import classifier_config, get_classifier, profile_generators


def test_cosine_metrics():
    assert mean_pairwise_cosine(torch.eye(3)) == pytest.approx(0.0)
    f = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    assert within_class_cosine(f, torch.tensor([0, 0, 1, 1])) == pytest.approx(1.0)
    assert within_class_cosine(f, torch.tensor([0, 1, 0, 1])) == pytest.approx(0.0)


def test_pixel_spread():
    x = torch.tensor([[[[0.0]]], [[[1.0]]], [[[0.5]]], [[[0.5]]]])
    assert pixel_spread(x, torch.tensor([0, 0, 1, 1])) == pytest.approx((0.5 ** 0.5 + 0.0) / 2)


def test_pipeline_caches_and_refuses_corrupt_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("NETINV_CACHE", str(tmp_path))  # this test corrupts its cache
    cfg = classifier_config("digits", "smoke")
    first = get_classifier(cfg, progress=False)
    again = get_classifier(cfg, progress=False)  # from the cache: same numbers, same weights
    assert again.metrics == first.metrics and again.path == first.path
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(),
                                                  again.model.state_dict().values()))
    stored = load_checkpoint(first.path, kind="classifier")
    assert stored["config"]["dataset"] == "digits" and "torch" in stored["versions"]
    with open(first.path, "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00" * 200)
    with pytest.raises(CheckpointError, match="Delete the file"):
        get_classifier(cfg, progress=False)


def test_profile_generators_records_numbers():
    clf, gens = profile_generators("digits", "smoke", n_generators=1, progress=False)
    m = gens[0].metrics
    assert m["n_samples"] >= 1000 and m["generator_seconds"] > 0
    assert len(m["inversion_accuracy_per_class"]) == 10


def test_bench_prints_one_json_object(capsys):
    from netinv_core.bench import main
    assert main(["inversion", "--dataset", "digits", "--profile", "smoke"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("classifier_test_accuracy", "inversion_accuracy", "feature_cosine_inverted",
                "feature_cosine_real", "generator_seconds", "device", "torch_threads",
                "seconds_to_95", "steps_to_95", "step_seconds", "step_gflop", "matmul_gflops",
                "flop_utilisation"):
        assert key in out
    assert out["device"] == "cpu"
    assert out["step_gflop"] > 0 and out["matmul_gflops"] > 0 and 0 < out["flop_utilisation"] < 2


def test_bench_unknown_dataset_exits_with_a_message(capsys):
    from netinv_core.bench import main
    with pytest.raises(SystemExit):
        main(["inversion", "--dataset", "imagenet"])
    assert "invalid choice" in capsys.readouterr().err
