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
