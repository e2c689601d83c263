"""Issue 12: the garbage-class variants (noise-only, growing garbage set, fresh generator, hot
conditioning, uncertainty stopping), the evaluation-only checks and the attempts list (digits)."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from netinv_core.config import ClassifierConfig, GeneratorConfig
from netinv_core.errors import ConfigError
from netinv_core.ood import OODConfig, _key_dict, train_garbage_classifier
from netinv_core.ood_rounds import uncertainty_stalled as _uncertainty_stalled
from netinv_core.ood_attempts import (own_normalised, threshold_check, ue_scores, variant_config)

from conftest import assert_same_weights, interrupt_then_resume


def _tiny(**kw):
    kw = {"classifier": ClassifierConfig(dataset="digits", epochs=2, batch_size=128),
          "generator": GeneratorConfig(width=16, steps=2, batch_size=16),
          "inverted_per_epoch": 50, **kw}
    return OODConfig(**kw)


def test_generate_zero_samples_is_empty():
    from netinv_core.generator import Generator, generate
    x, y = generate(Generator(11, (1, 28, 28), GeneratorConfig(width=16)), 0)
    assert x.shape == (0, 1, 28, 28) and len(y) == 0


def test_noise_only_control_trains_without_inversion(digits):
    train, _ = digits
    _, hist, ex = train_garbage_classifier(_tiny(inverted_per_epoch=0), train, progress=False)
    assert hist["garbage_size"] == [125, 125] and sorted(ex) == [0]     # noise only, never grows
    assert all(np.isnan(hist["inversion_accuracy_last"]))


def test_bad_variants_and_settings_are_refused_before_training():
    with pytest.raises(ConfigError, match="unknown OOD variant"):
        variant_config("bogus", "digits", "smoke")
    with pytest.raises(ConfigError, match="patience"):
        _tiny(patience=-1)
    with pytest.raises(ConfigError, match="lr_floor"):
        _tiny(lr_floor=2.0)
    with pytest.raises(ConfigError, match="keep_all"):
        _tiny(keep_all=True, garbage_cap=100)
    with pytest.raises(ConfigError, match="need inverted samples"):
        replace(_tiny(), inverted_per_epoch=0, fresh_generator=True)
    with pytest.raises(ConfigError, match="inverted_per_epoch"):
        _tiny(inverted_per_epoch=-5)
    with pytest.raises(ConfigError, match="one-hot"):
        OODConfig(ClassifierConfig(dataset="digits"), GeneratorConfig(conditioning="matrix"),
                  hot_conditioning=True)
    with pytest.raises(ConfigError, match="epochs >= 2"):
        _tiny(invert_after_last_epoch=False, classifier=ClassifierConfig(dataset="digits", epochs=1))


def test_legacy_checkpoint_keys_unchanged():
    d = _key_dict(_tiny())
    assert not {"keep_all", "lr_floor", "invert_after_last_epoch", "fresh_generator",
                "hot_conditioning", "patience"} & set(d)
    assert _key_dict(_tiny(keep_all=True))["keep_all"] is True
    assert _tiny(lr_floor=0).lr_floor == 0.0 and "lr_floor" not in _key_dict(_tiny(lr_floor=0))


def test_growing_garbage_fresh_hot_generator_resumes(digits, tmp_path):
    train, _ = digits
    cfg = _tiny(keep_all=True, fresh_generator=True, hot_conditioning=True, lr_floor=0.5,
                invert_after_last_epoch=False,
                classifier=ClassifierConfig(dataset="digits", epochs=3, batch_size=128))
    rounds = []
    full, hist, ex = train_garbage_classifier(cfg, train, progress=False,
                                              round_eval=lambda m: {"n": len(rounds)})
    assert hist["garbage_size"] == [175, 225, 225]      # grows past 2x mean class; no last round
    assert hist["garbage_bytes"] == [s * 28 * 28 for s in hist["garbage_size"]]
    assert sorted(ex) == [0, 1, 2] and hist["lr"][0] == 1e-3 and min(hist["lr"]) >= 0.5e-3
    assert all(0 <= u <= 1 for u in hist["inverted_uncertainty"][:2])
    assert -1 <= hist["inverted_feature_cosine_all"][0] <= 1
    assert [r["n"] for r in hist["round_eval"]] == [0, 0, 0]
    ckpt = tmp_path / "p.pt"
    resumed, hist2, _ = interrupt_then_resume(
        lambda **kw: train_garbage_classifier(cfg, train, progress=False, checkpoint=ckpt, **kw),
        "epoch", 2)
    assert hist2["epoch"] == [1, 2, 3]
    assert_same_weights(full, resumed)


def test_uncertainty_stopping_rule():
    assert not _uncertainty_stalled([0.5, 0.4, 0.3], 2)
    assert _uncertainty_stalled([0.5, 0.3, 0.35, 0.31], 2)
    assert not _uncertainty_stalled([0.5, 0.3, 0.35, 0.29], 2)
    assert not _uncertainty_stalled([0.5, 0.6], 0)


def test_patience_stops_and_trains_on_the_last_round(digits, monkeypatch):
    import netinv_core.ood as ood
    train, _ = digits
    monkeypatch.setattr(ood, "uncertainty_stalled", lambda ues, p: len(ues) >= 2)
    cfg = _tiny(keep_all=True, patience=1, invert_after_last_epoch=False,
                classifier=ClassifierConfig(dataset="digits", epochs=6, batch_size=128))
    _, hist, ex = train_garbage_classifier(cfg, train, progress=False)
    assert hist["epoch"] == [1, 2, 3] and sorted(ex) == [0, 1, 2]   # stop after round 2, + 1 epoch


def test_own_normalisation_by_hand():
    x = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1)
    y = own_normalised(x, [0.1], [0.3], [0.2], [0.4])
    # the network computes (y - 0.1) / 0.3, which must equal (x - 0.2) / 0.4
    assert torch.allclose((y - 0.1) / 0.3, (x - 0.2) / 0.4)


def test_ue_conventions_by_hand():
    logits = torch.log(torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.5, 0.5, 1e-9]]))
    s = ue_scores(logits)
    # K = 3: UE = 1 - sum (p - 1/3)^2 / (2/3); confident garbage looks certain under ue_all
    p = torch.tensor([0.8, 0.1, 0.1])
    assert torch.isclose(s["ue_all"][1], 1 - ((p - 1 / 3) ** 2).sum() / (2 / 3))
    assert s["ue_id"][1] == 1.0 and torch.isclose(s["ue_id"][2], torch.tensor(1.0))
    assert torch.isclose(s["ue_id"][0], torch.tensor(1 - (2 * (8 / 9 - .5) ** 2) / .5))


def test_threshold_check_by_hand():
    conf_in = torch.tensor([0.3, 0.9, 0.99, 1.0])
    kept = torch.tensor([True, True, True, False])
    correct = torch.tensor([False, True, True, True])
    conf_out = torch.tensor([0.5, 0.2, 1.0])
    t = threshold_check(conf_in, correct, kept, conf_out, torch.tensor([True, True, False]))
    assert t["n_escaped"] == 2 and t["max_escaped"] == 0.5 and t["min_id_kept"] == pytest.approx(0.3)
    assert not t["holds_extreme_kept"] and t["holds_extreme_correct"]     # 0.9 > 0.5
    assert t["share_escaped_above_min_id_kept"] == 0.5


def test_knn_and_vim_against_a_hand_computation():
    from netinv_core.ood_baselines import KNNScore, ViMScore
    g = torch.Generator().manual_seed(0)
    train = torch.randn(300, 8, generator=g)
    query = torch.randn(5, 8, generator=g)
    z, q = torch.nn.functional.normalize(train, dim=1), torch.nn.functional.normalize(query, dim=1)
    hand = torch.cdist(q, z).sort(1).values[:, 9]                      # 10th nearest
    assert torch.allclose(KNNScore(train, k=10)(query), hand, atol=1e-5)
    head = torch.nn.Linear(8, 3)
    w, b = head.weight.detach(), head.bias.detach()
    u = -(torch.linalg.pinv(w) @ b)
    c = train - u
    _, vecs = torch.linalg.eigh(c.T @ c / len(c))           # ascending; residual = smallest 8 - d
    r = vecs[:, :8 - 4]
    alpha = (train @ w.T + b).max(1).values.mean() / (c @ r).norm(dim=1).mean()
    hand = alpha * ((query - u) @ r).norm(dim=1) - torch.logsumexp(query @ w.T + b, 1)
    assert torch.allclose(ViMScore(train, head, d=4)(query), hand, atol=1e-3)


def test_attempt_runs_and_collects_on_digits(tmp_path):
    from netinv_core.ood_attempts import run_attempt
    from netinv_core.ood_report import collect
    rec = run_attempt("noise_only", "digits", 0, "smoke", device="cpu", out_dir=tmp_path / "a")
    assert rec["config"]["inverted_per_epoch"] == 0 and len(rec["history"]["round_eval"]) == 2
    o = rec["ood"]["sklearn_photos"]
    assert 0 <= o["garbage_rate"] <= 1 and "knn" in o["baselines"] and "vim" in o["baselines"]
    assert "sklearn_photos" in rec["own_normalisation"]
    run_attempt("capped", "digits", 0, "smoke", device="cpu", out_dir=tmp_path / "a")
    attempts = collect(tmp_path / "a", tmp_path / "fig4_ood.json", not_run={"long": "time"})
    names = [a["name"] for a in attempts]
    assert names[:4] == ["own_normalisation", "uncertainty_score", "robust_threshold", "knn_vim"]
    assert names[-2:] == ["capped", "noise_only"]
    saved = json.loads((tmp_path / "fig4_ood.json").read_text())
    assert saved["attempts"][0]["seeds"] == [0] and saved["attempts_not_run"] == {"long": "time"}
    # a reason beside a measured attempt is dropped; an empty reason removes an entry
    collect(tmp_path / "a", tmp_path / "fig4_ood.json", not_run={"noise_only": "time"})
    saved = json.loads((tmp_path / "fig4_ood.json").read_text())
    assert saved["attempts_not_run"] == {"long": "time"}
    collect(tmp_path / "a", tmp_path / "fig4_ood.json", not_run={"long": ""})
    assert json.loads((tmp_path / "fig4_ood.json").read_text())["attempts_not_run"] == {}
    assert (tmp_path / "fig4_ood_attempts_rounds.png").exists()


def test_garbage_model_starts_from_its_backbone(digits):
    """start_from_backbone copies every weight and gives the garbage class a zero row; trained with
    a negligible LR from a backbone, the (N+1)-way model still predicts what the backbone does."""
    from netinv_core.classifier import Classifier
    from netinv_core.ood import start_from_backbone
    from netinv_core.pipeline import get_classifier

    b, m = Classifier((1, 8, 8), 10).eval(), Classifier((1, 8, 8), 11).eval()
    start_from_backbone(m, b)
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(m(x)[:, :10], b(x)) and torch.equal(m(x)[:, 10], torch.zeros(5))
    train, test = digits
    bb = ClassifierConfig(dataset="digits", epochs=3, batch_size=128, augment="crop")
    cfg = _tiny(backbone=bb, classifier=ClassifierConfig(dataset="digits", epochs=1, lr=1e-9,
                                                          batch_size=128, augment="crop"))
    model, _, _ = train_garbage_classifier(cfg, train, progress=False)
    base = get_classifier(bb, device="cpu", progress=False).model
    x = test.images()
    with torch.no_grad():
        agree = (model.eval()(x).argmax(1) == base.eval()(x).argmax(1)).float().mean().item()
    assert agree >= 0.95
    assert "backbone" not in _key_dict(_tiny()) and _key_dict(cfg)["backbone"]["augment"] == "crop"
    with pytest.raises(ConfigError, match="same dataset"):
        _tiny(backbone=ClassifierConfig(dataset="mnist"))


def test_backbone_variant_config():
    c = variant_config("backbone", "cifar10", "quick", 2)
    assert c.backbone.epochs == 30 and c.backbone.augment == "flip_crop" and c.backbone.seed == 2
    assert c.classifier.augment == "flip_crop" and c.classifier.lr == 3e-4 and c.fresh_generator
    assert variant_config("backbone", "mnist", "quick").backbone.augment == "crop"
    s = variant_config("backbone_sgd", "cifar10", "quick", 1)
    assert (s.backbone.optimizer, s.backbone.lr, s.backbone.label_smoothing, s.backbone.dropout,
            s.backbone.epochs, s.backbone.seed) == ("sgd", 0.1, 0.1, 0.0, 30, 1)
    assert s.classifier.optimizer == "adam" and s.classifier.dropout == 0.0
    with pytest.raises(ConfigError, match="optimizer='sgd' for a backbone"):
        _tiny(classifier=ClassifierConfig(dataset="digits", epochs=2, optimizer="sgd"))


def test_backbone_model_is_the_same_whether_its_backbone_was_cached_or_trained(digits):
    """The backbone is loaded (or trained) before the garbage model is seeded, so a first run that
    trains it inline and a rerun that finds it cached give the same model."""
    train, _ = digits
    bb = ClassifierConfig(dataset="digits", epochs=2, batch_size=128, seed=7)   # not cached yet
    cfg = _tiny(backbone=bb, classifier=ClassifierConfig(dataset="digits", epochs=2,
                                                          batch_size=128, seed=7))
    first, _, _ = train_garbage_classifier(cfg, train, progress=False)    # trains the backbone
    again, _, _ = train_garbage_classifier(cfg, train, progress=False)    # loads it
    assert_same_weights(first, again)
