"""Section 5.2: image conversion, scores, metrics, class weights, bounded garbage set, resumable
garbage-class training (embedded digits; no network)."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from netinv_core.config import ClassifierConfig, GeneratorConfig
from netinv_core.errors import ConfigError, ShapeError
from netinv_core.ood import (Mahalanobis, OODConfig, _add_to_garbage, class_weights, energy_score,
                             garbage_score, msp_score, ood_metrics, train_garbage_classifier)
from netinv_core.ood_experiment import convert_images, ood_sets_for

from conftest import assert_same_weights, interrupt_then_resume


def test_convert_gray_to_rgb_and_back():
    x = torch.rand(2, 1, 28, 28)
    rgb = convert_images(x, (3, 28, 28))
    assert rgb.shape == (2, 3, 28, 28) and torch.equal(rgb[:, 0], rgb[:, 2])
    px = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1).expand(1, 3, 4, 4).clone()
    gray = convert_images(px, (1, 4, 4))
    assert gray.shape == (1, 1, 4, 4)
    assert torch.allclose(gray, torch.full_like(gray, 0.299 + 0.587 * 0.5))
    assert convert_images(torch.rand(3, 3, 32, 32), (1, 28, 28)).shape == (3, 1, 28, 28)


def test_convert_refuses_odd_channels_and_shapes():
    with pytest.raises(ShapeError, match="1-channel"):
        convert_images(torch.rand(2, 2, 28, 28), (1, 28, 28))
    with pytest.raises(ShapeError, match=r"\(B, C, H, W\)"):
        convert_images(torch.rand(28, 28), (1, 28, 28))


def test_scores_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 5.0]])  # last class = garbage
    p = torch.softmax(logits, 1)
    assert torch.allclose(garbage_score(logits), 1 - p[:, :2].max(1).values)
    assert garbage_score(logits)[1] > garbage_score(logits)[0]
    assert torch.allclose(msp_score(logits), 1 - p.max(1).values)
    assert torch.allclose(energy_score(logits), -torch.log(torch.exp(logits).sum(1)))


def test_mahalanobis_is_zero_at_a_class_mean():
    g = torch.Generator().manual_seed(0)
    feats = torch.cat([torch.randn(200, 4, generator=g), torch.randn(200, 4, generator=g) + 5])
    labels = torch.cat([torch.zeros(200), torch.ones(200)]).long()
    m = Mahalanobis(feats, labels)
    s = m(torch.stack([m.means[0].float(), m.means[1].float(), torch.full((4,), 50.0)]))
    assert s[0].abs() < 1e-6 and s[1].abs() < 1e-6 and s[2] > 100


def test_ood_metrics_separated_and_identical():
    perfect = ood_metrics([0.1, 0.2, 0.3], [0.8, 0.9])
    assert perfect["auroc"] == 1 and perfect["fpr95"] == 0
    assert perfect["aupr_in"] == 1 and perfect["aupr_out"] == 1
    rng = np.random.default_rng(0)
    same = ood_metrics(rng.random(5000), rng.random(5000))
    assert abs(same["auroc"] - 0.5) < 0.03 and abs(same["fpr95"] - 0.95) < 0.03
    flipped = ood_metrics([0.8, 0.9], [0.1, 0.2])
    assert flipped["auroc"] == 0 and flipped["fpr95"] == 1


def test_class_weights_by_hand():
    w = class_weights(torch.tensor([10, 30, 0]))
    assert torch.allclose(w, torch.tensor([40 / 30, 40 / 90, 0.0]))


def test_garbage_set_is_bounded():
    g = torch.Generator().manual_seed(0)
    garbage = torch.zeros(6, 1, 2, 2, dtype=torch.uint8)
    new = torch.full((25, 1, 2, 2), 7, dtype=torch.uint8)
    out = _add_to_garbage(garbage, new, cap=10, g=g)
    assert len(out) == 10 and (out == 7).all()  # 4 appended, then 6 old ones replaced
    out = _add_to_garbage(torch.zeros(10, 1, 2, 2, dtype=torch.uint8), new[:3], cap=10, g=g)
    assert len(out) == 10 and (out == 7).flatten(1).all(1).sum() == 3


def test_bad_ood_config():
    with pytest.raises(ConfigError, match="garbage_cap"):
        OODConfig(ClassifierConfig(dataset="digits"), GeneratorConfig(), garbage_cap=-1)
    with pytest.raises(ConfigError, match="inverted_per_epoch"):
        OODConfig(ClassifierConfig(dataset="digits"), GeneratorConfig(), inverted_per_epoch=1.5)


def test_smoke_ood_set_is_real_photos_in_the_training_shape():
    sets, skipped = ood_sets_for("digits", (1, 28, 28), n=20)
    x = sets["sklearn_photos"]
    assert x.shape == (20, 1, 28, 28) and not skipped and 0 <= x.min() and x.max() <= 1
    assert x.flatten(1).std(1).mean() > 0.02  # textured crops, not blank


def _tiny_cfg():
    return OODConfig(classifier=ClassifierConfig(dataset="digits", epochs=2, batch_size=128),
                     generator=GeneratorConfig(width=16, steps=2, batch_size=16),
                     inverted_per_epoch=50, garbage_cap=200)


def test_garbage_training_adds_inverted_samples_and_resumes(digits, tmp_path):
    train, test = digits
    cfg = _tiny_cfg()
    full, hist, ex = train_garbage_classifier(cfg, train, progress=False)
    assert full.num_classes == 11 and hist["garbage_size"] == [175, 200]  # 125 noise + 50, capped
    assert sorted(ex) == [0, 1, 2] and ex[1].dtype == torch.uint8
    ckpt = tmp_path / "ood.partial.pt"
    resumed, hist2, _ = interrupt_then_resume(      # stopped after the first epoch
        lambda **kw: train_garbage_classifier(cfg, train, progress=False, checkpoint=ckpt, **kw))
    assert hist2["epoch"] == [1, 2]
    assert_same_weights(full, resumed)


def test_resuming_with_another_config_is_refused(digits, tmp_path):
    from netinv_core.errors import CheckpointError
    train, _ = digits
    cfg = replace(_tiny_cfg(), classifier=ClassifierConfig(dataset="digits", epochs=1, batch_size=128))
    ckpt = tmp_path / "ood.partial.pt"
    train_garbage_classifier(cfg, train, progress=False, checkpoint=ckpt)
    with pytest.raises(CheckpointError, match="another config"):
        train_garbage_classifier(replace(cfg, inverted_per_epoch=10), train, progress=False,
                                 checkpoint=ckpt)


def test_uncertainty_by_hand():
    from netinv_core.ood import uncertainty
    p = torch.tensor([[1.0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0, 0]])
    # K = 4: denominator 3/4; [.5,.5,0,0]: sum (p - 1/4)^2 = 2 * 1/16 + 2 * 1/16 = 1/4 -> 1 - 1/3
    assert torch.allclose(uncertainty(p), torch.tensor([0.0, 1.0, 2 / 3]))


def test_select_uncertain_keeps_the_most_uncertain_per_label():
    from netinv_core.ood import select_uncertain

    class Fixed(torch.nn.Module):  # logits = the first 3 pixels: image i is as uncertain as we say
        def forward(self, x):
            return x.flatten(1)[:, :3]

    x = torch.zeros(6, 1, 2, 2)
    x[:, 0, 0, 0] = torch.tensor([9.0, 0.0, 9.0, 1.0, 0.0, 9.0])  # label 0: 0, 2, 4; label 1: 1, 3, 5
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    kept, kept_labels = select_uncertain(Fixed(), x, labels, 2)
    assert kept_labels.tolist() == [0, 1]
    assert kept[0, 0, 0, 0] == 0.0 and kept[1, 0, 0, 0] == 0.0   # the uniform-logit images


def test_uncertain_selection_trains_and_keeps_old_checkpoint_keys(digits):
    from netinv_core.ood import _key_dict
    train, _ = digits
    cfg = _tiny_cfg()
    assert "selection" not in _key_dict(cfg)               # caches from before the option stay valid
    unc = replace(cfg, selection="uncertain", candidates=3)
    assert _key_dict(unc)["selection"] == "uncertain"
    _, hist, ex = train_garbage_classifier(replace(unc, classifier=replace(cfg.classifier, epochs=1)),
                                           train, progress=False)
    assert hist["garbage_size"] == [175] and len(ex[1]) == 11
    with pytest.raises(ConfigError, match="selection"):
        replace(cfg, selection="most")
    with pytest.raises(ConfigError, match="candidates"):
        replace(cfg, candidates=3)


def _seed_result(seed: int, rate: float) -> dict:
    return {"seed": seed, "in_distribution_accuracy": 0.9, "baseline_accuracy": 0.9,
            "in_distribution_garbage_rate": 0.0, "least_confident_in_distribution": 0.3,
            "ood": {"mnist": {"garbage_rate": rate, "most_confident_misclassified_ood": 0.5,
                              "clear_threshold": False,
                              "methods": {"garbage": {"auroc": rate, "fpr95": 1 - rate}}}}}


def _run(seeds, rates, variant="diverse_garbage") -> dict:
    from netinv_core.ood_experiment import summarize_ood

    per_seed = [_seed_result(s, r) for s, r in zip(seeds, rates)]
    return {"train": "cifar10", "profile": "quick", "variant": variant, "seeds": list(seeds),
            "per_seed": per_seed,
            "histories": [{"epoch": [1], "seed_tag": s} for s in seeds],
            "summary": summarize_ood(per_seed), "seconds": 1.0}


def test_merge_previous_runs_adds_seeds_and_keeps_other_sets(tmp_path):
    """A CIFAR-10 run over seeds 1, 2 keeps seed 0 of the previous file (same profile) and the
    summary is recomputed over all three; an untouched training set is kept whole; a different
    profile keeps nothing; the new run's numbers win for a seed present in both."""
    import json

    from netinv_core.ood_experiment import merge_previous_runs

    path = tmp_path / "fig4_ood.json"
    path.write_text(json.dumps({"profile": "quick", "runs": {
        "cifar10": _run([0, 1], [0.1, 0.9]), "mnist": _run([0, 1, 2], [0.5, 0.5, 0.5])}}))
    merged, kept = merge_previous_runs({"cifar10": _run([1, 2], [0.4, 0.7])}, path, "quick")
    c = merged["cifar10"]
    assert c["seeds"] == [0, 1, 2] and c["seeds_from_previous"] == [0]
    assert [r["ood"]["mnist"]["garbage_rate"] for r in c["per_seed"]] == [0.1, 0.4, 0.7]
    assert [h["seed_tag"] for h in c["histories"]] == [0, 1, 2]
    assert c["summary"]["n_seeds"] == 3
    assert abs(c["summary"]["ood"]["mnist"]["garbage_rate"]["mean"] - 0.4) < 1e-12
    assert merged["mnist"]["seeds"] == [0, 1, 2] and kept == {"mnist": "all", "cifar10": [0]}
    other, kept_other = merge_previous_runs({"cifar10": _run([1], [0.4])}, path, "smoke")
    assert set(other) == {"cifar10"} and other["cifar10"]["seeds"] == [1] and kept_other == {}


def test_merge_previous_runs_never_mixes_another_configuration_into_the_table(tmp_path):
    """A previous record made with another configuration than the default (``capped``, or no
    ``variant`` at all: the records before the default changed) is neither kept whole nor
    merged seed by seed; ``kept`` says why its training set is missing."""
    import json

    from netinv_core.ood_experiment import DEFAULT_VARIANT, merge_previous_runs

    legacy = _run([0], [0.9])
    del legacy["variant"]
    path = tmp_path / "fig4_ood.json"
    path.write_text(json.dumps({"profile": "quick", "runs": {
        "cifar10": legacy, "fashionmnist": _run([0, 1], [0.1, 0.2], variant="capped"),
        "mnist": _run([0], [0.5])}}))
    merged, kept = merge_previous_runs({"fashionmnist": _run([2], [0.3])}, path, "quick")
    assert merged["fashionmnist"]["seeds"] == [2] and "seeds_from_previous" not in merged["fashionmnist"]
    assert "cifar10" not in merged and kept["cifar10"].startswith("none: ")
    assert "'capped'" in kept["cifar10"] and repr(DEFAULT_VARIANT) in kept["cifar10"]
    assert "fashionmnist" not in kept and kept["mnist"] == "all"
    assert merged["mnist"]["variant"] == DEFAULT_VARIANT
    # nor does a record of another configuration take the default's previous seeds
    merged, kept = merge_previous_runs({"mnist": _run([1], [0.2], variant="adjusted")}, path, "quick")
    assert merged["mnist"]["seeds"] == [1] and "mnist" not in kept
