"""Section 5.3 metrics and the fair attempt: calibrated metrics on real digits (copies of training
images lean to the training pool, held-out images do not, trivial images fail the judges), the
permutation p-value, sampling modes, bad inputs before any training, and a search that resumes."""
import json

import pytest
import torch

from netinv_core.errors import ConfigError
from netinv_core.reconstruct import (ReconConfig, _training_dict, recon_generator)


@pytest.fixture(scope="module")
def judge(digits_classifier):
    from netinv_core.recon_metrics import make_judge
    # digits_classifier saw the whole digits training split: the verifier then trains on half
    # of the test split and the other half is the held-out pool
    return make_judge(digits_classifier, "digits", None, n_permutations=300)


def test_metrics_tell_training_copies_from_held_out_images(judge):
    d = judge.data
    idx = torch.cat([judge.pools.match[c][0][:8] for c in range(10)])   # in the training pool
    m = judge.metrics(d.train_x[idx], d.train_y[idx])
    assert m["ncc_train"] == pytest.approx(1.0, abs=1e-5) and m["ncc_test"] < 0.99
    assert m["train_closer"]["share"] == 1.0 and m["train_closer"]["p_value"] < 0.01
    assert m["verifier_accuracy"] > 0.7 and m["nn_accuracy"] > 0.7
    b = judge.baselines(8)
    assert set(b) == {"all_black", "class_mean", "wrong_class", "noise", "real_test"}
    real, black, noise, wrong = b["real_test"], b["all_black"], b["noise"], b["wrong_class"]
    assert real["train_closer"]["p_value"] > 0.01          # held-out images do not lean
    assert real["verifier_accuracy"] > 0.6
    assert black["ncc_train"] == 0 and black["verifier_accuracy"] <= 0.2
    assert noise["verifier_accuracy"] < 0.4 and noise["ncc_train"] < 0.2
    assert wrong["verifier_accuracy"] < 0.3 and wrong["label_accuracy"] < 0.3
    keys = set(m) - {"n_images"}
    assert all(keys <= set(v) for v in b.values())


def test_permutation_p_value_is_uniformish_under_the_null():
    from netinv_core.recon_metrics import _permutation_p
    g = torch.Generator().manual_seed(0)
    sims = {0: (torch.rand(40, 20, generator=g), torch.rand(40, 20, generator=g))}
    share = (sims[0][0].max(1).values > sims[0][1].max(1).values).float().mean().item()
    p = _permutation_p(sims, share, 40, 500, 0)
    assert 0.02 < p <= 1.0
    boosted = {0: (sims[0][0] + 0.5, sims[0][1])}
    assert _permutation_p(boosted, 1.0, 40, 500, 0) < 0.01


def test_sampling_modes_and_bn_reestimation_leave_the_generator_alone():
    from netinv_core.recon_attempts import sample, SAMPLING_MODES
    gen = recon_generator(10, (1, 28, 28), ReconConfig(width=16, batch_size=8, grad_samples=2))
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    for mode in SAMPLING_MODES:
        x, y, oor = sample(gen, 3, mode=mode, bn_batches=2)
        assert x.shape == (30, 1, 28, 28) and 0 <= x.min() and x.max() <= 1 and 0 <= oor <= 1
    assert all(torch.equal(before[k], v) for k, v in gen.state_dict().items())
    with pytest.raises(ConfigError, match="sampling mode"):
        sample(gen, 1, mode="eval")


def test_new_recon_options_keep_old_checkpoint_keys_and_check_their_values():
    assert "perturbation" not in _training_dict(ReconConfig())
    assert _training_dict(ReconConfig(perturbation="sign"))["perturbation"] == "sign"
    with pytest.raises(ConfigError, match="perturbation"):
        ReconConfig(perturbation="adversarial")
    with pytest.raises(ConfigError, match="dropout_last"):
        ReconConfig(dropout_last=1.0)
    gen = recon_generator(10, (1, 28, 28), ReconConfig(width=16, dropout_last=0.0))
    assert gen.up[-3].p == 0.0 and gen.up[3].p == 0.5


def test_default_and_legacy_attempts_keep_the_keys_they_were_cached_under():
    """The default lost the last block's dropout (2026-11-30); its key is the old
    ``no_last_dropout`` key, and ``last_dropout`` and the variants measured on it keep the old
    default's key (``dropout_last`` absent), so every recorded attempt reloads from the cache."""
    from netinv_core.recon_attempts import LEGACY_BASE, attempt_specs, check_names, recon_cfg
    assert ReconConfig().dropout_last == 0.0
    assert _training_dict(ReconConfig())["dropout_last"] == 0.0
    old_default = {k: v for k, v in _training_dict(ReconConfig()).items() if k != "dropout_last"}

    def key(spec):
        return _training_dict(recon_cfg("quick", 0, spec["overrides"], spec["base_overrides"]))
    assert key(attempt_specs("default")[0]) == _training_dict(recon_cfg("quick", 0, {}))
    assert "dropout_last" not in key(attempt_specs("last_dropout")[0])
    lab = key(attempt_specs("lab_sign_noise")[0])
    assert "dropout_last" not in lab and lab["perturbation"] == "sign"
    assert {k: v for k, v in key(attempt_specs("diversity_off")[0]).items() if k != "weights"} \
        == {k: v for k, v in _training_dict(recon_cfg("quick", 0, {}, LEGACY_BASE)).items()
            if k != "weights"}
    assert set(old_default) - {"weights"} <= set(key(attempt_specs("last_dropout")[0]))
    with pytest.raises(ConfigError, match="became"):
        check_names(["no_last_dropout"])


def _no_training(*a, **k):
    raise AssertionError("training started before the inputs were checked")


def test_bad_attempt_and_search_inputs_fail_before_training(monkeypatch, tmp_path):
    from netinv_core import recon_attempts as ra
    from netinv_core import recon_search
    monkeypatch.setattr(ra, "attacked_classifier", _no_training)
    monkeypatch.setattr(recon_search, "attacked_classifier", _no_training)
    with pytest.raises(ConfigError, match="unknown attempt variant"):
        ra.run_attempts(["default", "bigger_gan"], tmp_path / "a.json")
    for eps in (0, 1.0, -0.2, True):
        with pytest.raises(ConfigError, match="epsilon"):
            ra.run_attempts(["lab_sign_noise"], tmp_path / "a.json", epsilon=eps)
    with pytest.raises(ConfigError, match="at least one trial"):
        ra.run_search(str(tmp_path / "s.log"), 0)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot write"):
        ra.run_search(str(blocker / "sub" / "s.log"), 3)
    with pytest.raises(ConfigError, match="cannot write"):
        ra.run_attempts(["default"], blocker / "a.json")
    assert ra.main(["attempts", "--names", "nope", "--out", str(tmp_path / "a.json")]) == 2
    assert ra.main(["record", "--json", str(tmp_path / "none.json"),
                    "--attempts", str(tmp_path / "a.json")]) == 2


def test_search_resumes_without_repeating_finished_trials(tmp_path):
    pytest.importorskip("optuna")
    from netinv_core import recon_attempts as ra
    storage = str(tmp_path / "study.log")
    kw = dict(dataset="digits", train_size=300, profile="smoke", steps=2, grad_samples=2,
              n_per_class=3)
    rec = ra.run_search(storage, 2, **kw)
    assert rec["trials"] == 2 and rec["best_weights"] is not None
    rec = ra.run_search(storage, 3, **kw)          # a "restarted" run: one more trial only
    assert rec["trials"] == 3
    assert sorted(t["number"] for t in rec["all"]) == [0, 1, 2]
    again = ra.load_search(storage)
    assert again["trials"] == 3 and again["best_value"] == rec["best_value"]
    json.dumps(again)
    best = ra.run_best(storage, tmp_path / "att.json", "digits", 300, "smoke", seeds=(0,))
    assert best["name"] == "search_best" and best["overrides"]["weights"] == {
        k: v for k, v in rec["best_weights"].items() if k != "perturbation"}
    assert json.loads((tmp_path / "att.json").read_text())[0]["name"] == "search_best"
    again = ra.run_best(storage, tmp_path / "att.json", "digits", 300, "smoke", seeds=(0,))
    assert again == best and len(json.loads((tmp_path / "att.json").read_text())) == 1
    other = ra.run_best(storage, tmp_path / "att.json", "digits", 200, "smoke", seeds=(0,))
    assert other["train_size"] == 200         # another training-set size is another attempt
    assert len(json.loads((tmp_path / "att.json").read_text())) == 2
    # record: a dataset without a Figure 5 row gets its own baselines; one grid per dataset
    (tmp_path / "fig5.json").write_text(json.dumps({"datasets": {}}))
    from netinv_core.recon_search import record_attempts
    rec = record_attempts(tmp_path / "fig5.json", tmp_path / "att.json", profile="smoke",
                          log=lambda *a: None)
    assert set(rec["attempt_baselines"]) == {"digits-300", "digits-200"}
    assert set(rec["attempt_baselines"]["digits-300"]) == {
        "all_black", "class_mean", "wrong_class", "noise", "real_test"}
    assert (tmp_path / "fig5_attempts_digits.png").exists()


def test_tv_sweep_values_can_be_named_alone():
    from netinv_core.recon_attempts import TV_NAMES, attempt_specs
    assert [s["name"] for s in attempt_specs("tv_sweep")] == list(TV_NAMES)
    assert attempt_specs("tv_sweep_eta1_0.2")[0]["overrides"] == {"weights": {"eta1": 0.2}}
    with pytest.raises(ConfigError, match="unknown attempt variant"):
        attempt_specs("tv_sweep_eta1_5")


def test_a_three_seed_rerun_replaces_the_one_seed_record(monkeypatch, tmp_path):
    from netinv_core import recon_attempts as ra
    calls = []

    def fake(spec, dataset, train_size, profile, *, seeds, **k):
        calls.append((spec["name"], tuple(seeds)))
        return {"name": spec["name"], "dataset": dataset, "train_size": train_size,
                "seeds": list(seeds)}
    monkeypatch.setattr(ra, "run_attempt", fake)
    out = tmp_path / "att.json"
    ra.run_attempts(["default", "diversity_off"], out, seeds=(0,))
    ra.run_attempts(["default"], out, seeds=(0, 1, 2))
    ra.run_attempts(["default"], out, seeds=(1,))           # covered by the 3-seed record
    recs = json.loads(out.read_text())
    assert [(r["name"], r["seeds"]) for r in recs] == [("diversity_off", [0]),
                                                       ("default", [0, 1, 2])]
    assert calls == [("default", (0,)), ("diversity_off", (0,)), ("default", (0, 1, 2))]
