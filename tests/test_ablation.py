"""The ablation sweep's specification, convergence measure and summaries."""
import pytest

from netinv_core.ablation import parse_spec, setting_config, steps_to_accuracy, summarize
from netinv_core.config import GeneratorConfig
from netinv_core.errors import ConfigError


def test_full_spec_has_each_setting_once():
    settings = parse_spec(None)
    assert settings.count(("default", None)) == 1
    assert len(settings) == 1 + 3 + 3 + 4  # the default is shared by the three factors
    assert ("conditioning", "label") in settings and ("loss_off", "delta") in settings


@pytest.mark.parametrize("spec, match", [({"dropuot": [0.1]}, "unknown ablation factor 'dropuot'"),
                                         ({"dropout": [0.7]}, "unknown value 0.7 for factor 'dropout'"),
                                         ({"loss_off": ["kl"]}, "choose from.*'alpha'")])
def test_bad_spec_fails_before_training(spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_spec(spec)


def test_setting_config_changes_one_factor():
    base = GeneratorConfig()
    assert setting_config(base, "conditioning", "label").conditioning == "label"
    assert setting_config(base, "dropout", 0.1).dropout == 0.1
    off = setting_config(base, "loss_off", "gamma")
    assert off.weights.gamma == 0.0 and off.weights.beta == base.weights.beta


def test_steps_to_accuracy():
    acc = [0.5] * 30 + [1.0] * 30
    # the 20-step mean first reaches 0.95 once 18 of the last 20 steps are at 1.0
    assert steps_to_accuracy(acc, 0.95, 20) == 48
    assert steps_to_accuracy([0.5] * 100) is None


def test_summarize_mean_std_and_never():
    rows = [{"setting": "a", "feature_cosine_real": 0.7, "inversion_accuracy": v, "steps_to_95": s,
             "seconds_to_95": None if s is None else s * 0.1, "feature_cosine_inverted": 0.5,
             "pixel_spread_inverted": 0.1, "clusters_per_class_mean": 2.0}
            for v, s in ((0.9, 100), (1.0, None), (0.95, 300))]
    (r,) = summarize(rows)
    assert r["inversion_accuracy_mean"] == pytest.approx(0.95)
    assert r["inversion_accuracy_std"] == pytest.approx(0.05)
    assert r["steps_to_95_mean"] == pytest.approx(200) and r["reached_95"] == 2


def test_student_cli_rejects_unknown_setting_before_training(tmp_path, capsys):
    from netinv_core.ablation import main

    assert main(["student", "--dataset", "digits", "--profile", "smoke", "--settings",
                 "conditioning=foo", "--json", str(tmp_path / "a.json")]) == 2
    err = capsys.readouterr().err
    assert "unknown ablation setting 'conditioning=foo'" in err and "Traceback" not in err
    assert not (tmp_path / "a.json").exists()


def test_student_probe_records_floor_and_ceiling(tmp_path, monkeypatch):
    """Smoke-size student probe: per setting one accuracy per seed, with the noise floor and the
    real-image ceiling beside them, written into the ablation JSON under datasets/<ds>/student."""
    import json

    from netinv_core.ablation import main

    monkeypatch.setenv("NETINV_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "ablation.json"
    out.write_text(json.dumps({"profile": "smoke", "datasets": {"digits": {"summary": []}}}))
    assert main(["student", "--dataset", "digits", "--profile", "smoke", "--settings", "default",
                 "conditioning=label", "--seeds", "0", "--n-samples", "300", "--json", str(out)]) == 0
    rec = json.loads(out.read_text())["datasets"]["digits"]
    assert rec["summary"] == []                      # the rest of the record is kept
    st = rec["student"]
    assert [r["setting"] for r in st["settings"]] == ["default", "conditioning=label"]
    assert all(len(r["accuracy"]) == 1 and 0.0 <= r["accuracy_mean"] <= 1.0 for r in st["settings"])
    assert 0.0 <= st["noise_accuracy"] <= 1.0 and 0.0 <= st["real_accuracy"] <= 1.0
    assert st["n_samples"] == 300
