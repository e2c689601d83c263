"""The explorer without a browser: profile-sized settings, first run before any click, retrain in
a thread (one at a time), stop, compare, save, and a live preview that leaves training unchanged."""
from __future__ import annotations

import json
import time

import pytest
import torch

from netinv_core.errors import ConfigError
from netinv_core.explore import _preview_png, explorer, invert_once, profile_settings

pytest.importorskip("ipywidgets")
TINY = dict(steps=3, batch_size=8, width=8)


@pytest.mark.parametrize("profile, steps, batch, width", [
    ("smoke", 30, 32, 32), ("quick", 500, 128, 64), ("paper", 5000, 512, 128)])
def test_settings_follow_the_profile(profile, steps, batch, width):
    s = profile_settings(profile, steps=0, batch_size=0, width=0, gamma=3)
    assert (s["steps"], s["batch_size"], s["width"], s["gamma"]) == (steps, batch, width, 3)


@pytest.mark.parametrize("kw, match", [(dict(stesp=5), "unknown explorer setting 'stesp'"),
                                       (dict(steps=-1), "steps=-1 must be >= 0"),
                                       (dict(alpha=-1.0), "alpha=-1.0 must be finite and >= 0")])
def test_bad_settings_fail_before_any_widget(kw, match):
    with pytest.raises(ConfigError, match=match):
        explorer(torch.nn.Linear(2, 2), None, profile="smoke", display=False, run=False, **kw)


@pytest.fixture
def ex(digits_classifier, digits):
    return explorer(digits_classifier, digits[1], profile="smoke", display=False, **TINY)


def test_first_run_shows_before_any_click_and_is_reachable_from_code(ex):
    assert len(ex.runs) == 1 and ex.grid.value == ex.runs[0].png and ex.grid.value[:4] == b"\x89PNG"
    assert 0 <= ex.metrics["inversion_accuracy"] <= 1 and ex.metrics["n_samples"] >= 1000
    assert ex.figure is ex.runs[0].figure and ex.generator.num_classes == 10
    assert "inversion accuracy" in ex.table.value and "chance 10%" in ex.table.value
    assert not ex.retrain_button.disabled and ex.stop_button.disabled
    assert "done: #1" in ex.status.value
    assert [s.description for s in ex.sliders.values()] == [
        "KL (alpha)", "CE (beta)", "cosine (gamma)", "orthogonality (delta)"]
    assert all(s.tooltip for s in ex.sliders.values()) and ex.steps.max == 5000


def test_retrain_keeps_the_old_grid_until_the_new_one_is_ready(ex):
    first = ex.grid.value
    ex.sliders["gamma"].value = 0.1
    ex.on["delta"].value = False          # switch the orthogonality term off
    ex.seed.value = 3
    ex.steps.value = 40
    ex.retrain()
    assert ex.retrain_button.disabled and not ex.stop_button.disabled
    assert ex.grid.value == first         # still the old grid while training
    n = len(ex.runs)
    ex.retrain()                          # a second click while training does not queue a run
    ex.wait()
    assert len(ex.runs) == n + 1 == 2 and ex.grid.value != first
    assert ex.runs[1].settings["weights"] == {"alpha": 5.0, "beta": 10.0, "gamma": 0.1, "delta": 0.0}
    assert ex.runs[1].settings["seed"] == 3 and len(ex.runs[1].history["loss"]) == 40
    assert "netinv-history" in ex.history_html.value and not ex.retrain_button.disabled
    ex.compare.value = 1                  # side by side with the first run
    assert ex.compare_grid.value == first and ex.compare_grid.layout.display is None
    assert "<th>#1</th><th>#2</th>" in ex.table.value


def test_stop_ends_training_and_keeps_the_previous_grid(ex):
    first = ex.grid.value
    ex.steps.value = 5000
    ex.retrain()
    deadline = time.time() + 60
    while "step" not in ex.status.value and time.time() < deadline:
        time.sleep(0.05)
    ex.stop().wait(60)
    assert not ex.training and len(ex.runs) == 1 and ex.grid.value == first
    assert "stopped #2" in ex.status.value and not ex.retrain_button.disabled


def test_save_writes_png_pdf_and_numbers(ex, tmp_path):
    paths = ex.save(tmp_path / "saved")
    assert sorted(p.rsplit(".", 1)[1] for p in paths) == ["json", "pdf", "png"]
    rec = json.loads(open(paths[-1]).read())
    assert rec["metrics"]["inversion_accuracy"] == ex.metrics["inversion_accuracy"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        ex.save(tmp_path / "file")


def test_live_preview_leaves_training_unchanged(digits_classifier, digits):
    kw = dict(weights={"alpha": 5.0, "beta": 10.0, "gamma": 10.0, "delta": 2.0}, **TINY)
    plain = invert_once(digits_classifier, digits[1], **kw)
    pngs = []
    watched = invert_once(digits_classifier, digits[1], **kw,
                          callback=lambda rec, gen: pngs.append(_preview_png(gen)))
    assert len(pngs) == 3 and all(p[:4] == b"\x89PNG" for p in pngs)
    assert watched.history["loss"] == plain.history["loss"]
    assert watched.metrics["inversion_accuracy"] == plain.metrics["inversion_accuracy"]


def test_a_kernel_interrupt_during_the_first_run_ends_cleanly(digits_classifier, digits,
                                                              monkeypatch):
    """A KeyboardInterrupt (the kernel's interrupt) between steps: no traceback, the widget says
    so and stays usable."""
    from netinv_core.explore import Explorer

    def interrupt(self, rec, gen):
        raise KeyboardInterrupt

    monkeypatch.setattr(Explorer, "_on_step", interrupt)
    ex = explorer(digits_classifier, digits[1], profile="smoke", display=False, **TINY)
    assert ex.runs == [] and ex.error is None and "interrupted #1" in ex.status.value
    assert not ex.retrain_button.disabled and ex.stop_button.disabled


def test_the_explorer_trains_with_the_profile_speed_settings(digits_classifier, digits):
    from dataclasses import replace

    from netinv_core.config import get_profile
    fast = replace(get_profile("smoke"), generator_speed=(("lr", 2e-3), ("stop_at_accuracy", 0.01)))
    ex = explorer(digits_classifier, digits[1], profile=fast, display=False, steps=25,
                  batch_size=8, width=8)
    assert ex.speed == {"lr": 2e-3, "stop_at_accuracy": 0.01}
    s = ex.last.settings
    assert s["steps_trained"] == 20 and s["lr"] == 2e-3   # stopped at the 20-step minimum
    plain = explorer(digits_classifier, digits[1], profile="smoke", display=False, run=False)
    assert plain.speed == {}
