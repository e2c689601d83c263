"""Bad inputs a new user tries end in one netinv error that says what to do instead (or in a
documented correct result); none in a raw traceback or a silent wrong number. Tiny models only."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
import torch
import torch.nn as nn

from netinv_core import GeneratorConfig
from netinv_core.cache import (checkpoint_path, clean_stale_tmp, load_checkpoint,
                               save_checkpoint)
from netinv_core.config import ClassifierConfig, to_dict
from netinv_core.data import ImageData
from netinv_core.device import resolve_device
from netinv_core.errors import (CheckpointError, ConfigError, NetinvError, ShapeError,
                                TrainingDivergedError)
from netinv_core.inversion import train_generator
from netinv_core.metrics import generate, inversion_report

TINY = dict(steps=2, batch_size=8, width=8)


def mlp(out=10, shape=(1, 28, 28)):
    n = shape[0] * shape[1] * shape[2]
    return nn.Sequential(nn.Flatten(), nn.Linear(n, 16), nn.LeakyReLU(0.2), nn.Linear(16, out))


def invert(model, shape=(1, 28, 28), layer="2", **kw):
    cfg = GeneratorConfig(**{**TINY, **kw.pop("cfg", {})})
    return train_generator(model, cfg, shape, feature_layer=layer, progress=False, **kw)


def fake_data(n_classes=10, shape=(1, 28, 28), n=50):
    g = torch.Generator().manual_seed(0)
    return ImageData("fake", "test", torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8),
                     torch.arange(n) % n_classes, tuple(str(i) for i in range(n_classes)))


@pytest.fixture(scope="module")
def tiny_gen():
    torch.manual_seed(0)
    model = mlp()
    gen, _ = invert(model)
    return model, gen


class NaNAfter(nn.Module):
    """Finite logits for the first ``k`` calls, NaN afterwards (weights that blew up mid-run)."""

    def __init__(self, k):
        super().__init__()
        self.body, self.k, self.calls = mlp(), k, 0

    def forward(self, x):
        self.calls += 1
        out = self.body(x)
        return out * float("nan") if self.calls > self.k else out


class ReturnsTuple(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = mlp()

    def forward(self, x):
        return self.body(x), x


class LSTMFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(28, 8, batch_first=True)
        self.head = nn.Linear(8 * 28, 10)

    def forward(self, x):
        out, _ = self.rnn(x[:, 0])
        return self.head(out.flatten(1))


# --- silent wrong results --------------------------------------------------------------------

def test_nan_logits_are_refused_before_training():
    model = NaNAfter(0)
    with pytest.raises(ConfigError, match="non-finite logits"):
        invert(model, layer="body.2")


def test_inversion_stops_on_a_non_finite_loss_and_saves_no_nan(tmp_path):
    model = NaNAfter(4)  # the input checks pass, the second training step sees NaN
    ckpt = tmp_path / "gen.pt"
    with pytest.raises(TrainingDivergedError, match="non-finite .*lower lr|Lower lr"):
        invert(model, layer="body.2", checkpoint=ckpt, checkpoint_every=1, cfg=dict(steps=20))
    state = load_checkpoint(ckpt)
    assert state["step"] >= 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert isinstance(TrainingDivergedError("x"), FloatingPointError)


def test_one_output_classifier_is_refused():
    with pytest.raises(ShapeError, match="1 logit.*>= 2 classes"):
        invert(mlp(1))


def test_class_counts_must_agree_in_the_report(tiny_gen):
    model, gen = tiny_gen
    with pytest.raises(ShapeError, match="class counts disagree"):
        inversion_report(model, gen, fake_data(n_classes=3), feature_layer="2")
    torch.manual_seed(0)
    five = mlp(5)
    gen5, _ = invert(five)
    with pytest.raises(ShapeError, match="classifier returns 10 logits, the generator has 5"):
        inversion_report(model, gen5, fake_data(), feature_layer="2")


def test_report_needs_at_least_1000_samples(tiny_gen):
    model, gen = tiny_gen
    with pytest.raises(ConfigError, match="n=5 must be >= 1000"):
        inversion_report(model, gen, fake_data(), n=5, feature_layer="2")
    m = inversion_report(model, gen, fake_data(), n=1000, feature_layer="2")
    assert m["n_samples"] == 1000 and 0 <= m["inversion_accuracy"] <= 1


# --- misleading --------------------------------------------------------------------------------

@pytest.mark.parametrize("ckpt", ["", "   "])
def test_empty_checkpoint_path(ckpt):
    with pytest.raises(ConfigError, match="not a file path") as e:
        invert(mlp(), checkpoint=ckpt)
    assert "Delete" not in str(e.value)


def test_folder_as_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="is a folder; pass a file inside it") as e:
        invert(mlp(), checkpoint=tmp_path)
    assert "Delete" not in str(e.value)
    with pytest.raises(ConfigError, match="is a folder"):
        load_checkpoint(tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu():
    with pytest.raises(ConfigError, match="sees no GPU.*device='cpu'"):
        invert(mlp(), device="cuda")


@pytest.mark.parametrize("device", ["nonsense", "cuda:x", 3.5])
def test_unknown_device(device):
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device(device)


def test_float64_model():
    with pytest.raises(ConfigError, match=r"float64.*model\.float\(\)"):
        invert(mlp().double())


def test_model_not_on_the_device():
    with pytest.raises(ConfigError, match=r"is on \['meta'\].*model\.to\('cpu'\)"):
        invert(mlp().to("meta"))


# --- cryptic -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, match", [
    (dict(weights={"alpah": 1.0}), r"unknown loss weight\(s\) \['alpah'\].*alpha \(KL\)"),
    (dict(steps="500"), "steps='500' is a str; give a whole number"),
    (dict(steps=2.5), "steps=2.5 is a float"),
    (dict(lr=float("nan")), "lr=nan must be a finite number > 0"),
    (dict(lr=-1.0), "lr=-1.0 must be a finite number > 0"),
    (dict(width=2), "width=2 must be >= 4"),
    (dict(batch_size=1), "batch_size=1 must be >= 2"),
    (dict(dropout=1.0), r"dropout=1.0 must be a number in \[0, 1\)"),
    (dict(seed=-1), "seed=-1 must be >= 0"),
])
def test_bad_generator_settings(kw, match):
    with pytest.raises(ConfigError, match=match):
        GeneratorConfig(**kw)


@pytest.mark.parametrize("kw, match", [
    (dict(epochs="3"), "epochs='3' is a str"), (dict(lr=0), "lr=0 must be"),
    (dict(batch_size=0), "batch_size=0 must be >= 1")])
def test_bad_classifier_settings(kw, match):
    with pytest.raises(ConfigError, match=match):
        ClassifierConfig(dataset="digits", **kw)


@pytest.mark.parametrize("shape", [(28, 28), (1, 28, 28, 1), (1, 28.0, 28), "1x28x28"])
def test_image_shape_must_be_c_h_w(shape):
    with pytest.raises(ShapeError, match=r"\(channels, height, width\)"):
        invert(mlp(), shape=shape)


def test_model_returning_a_tuple():
    with pytest.raises(ShapeError, match=r"returns a tuple.*model\(x\)\[0\]"):
        invert(ReturnsTuple(), layer="body.2")


def test_feature_layer_returning_a_tuple():
    model = LSTMFeatures()
    with pytest.raises(ConfigError, match=r"feature layer 'rnn' \(LSTM\) returns a tuple"):
        invert(model, layer="rnn")
    assert not model.rnn._forward_hooks  # the hook was removed again


@pytest.mark.parametrize("n, labels, match", [
    (-3, None, "n=-3 must be >= 0"), (2.5, None, "n=2.5 is a float"), ("5", None, "n='5' is a str"),
    (3, [0, 1, 12], r"class indices in \[0, 9\].*12"), (3, [0, -1, 2], r"in \[0, 9\]"),
    (3, [0, 1], "2 labels for 3 samples"), (2, [0.5, 1.0], "integer class indices")])
def test_bad_generate_requests(tiny_gen, n, labels, match):
    with pytest.raises(ConfigError, match=match):
        generate(tiny_gen[1], n, labels=labels)


def test_generate_zero_is_an_empty_batch(tiny_gen):
    images, labels = generate(tiny_gen[1], 0)  # documented: used by the OOD noise-only control
    assert images.shape == (0, 1, 28, 28) and labels.shape == (0,)


def test_report_with_images_of_another_shape(tiny_gen):
    model, gen = tiny_gen
    with pytest.raises(ShapeError, match=r"test images are \(3, 32, 32\).*makes \(1, 28, 28\)"):
        inversion_report(model, gen, fake_data(shape=(3, 32, 32)), feature_layer="2")


def test_checkpoint_without_its_model_entry(monkeypatch, tmp_path):
    from netinv_core.pipeline import get_classifier
    monkeypatch.setenv("NETINV_CACHE", str(tmp_path))
    cfg = ClassifierConfig(dataset="digits", epochs=1)
    path = checkpoint_path("classifier", to_dict(cfg), "digits")
    save_checkpoint(path, kind="classifier", config=to_dict(cfg), tensors={"num_classes": 10})
    with pytest.raises(CheckpointError, match=r"has no 'model' entry.*Delete it and rerun"):
        get_classifier(cfg, device="cpu")


def test_cache_that_is_a_file_fails_before_training(monkeypatch, tmp_path):
    import netinv_core.pipeline as pipeline
    f = tmp_path / "cache"
    f.write_text("not a folder")
    monkeypatch.setenv("NETINV_CACHE", str(f))
    monkeypatch.setattr(pipeline, "train_classifier",
                        lambda *a, **k: pytest.fail("trained before checking the cache"))
    with pytest.raises(ConfigError, match="is a file, not a folder; point NETINV_CACHE"):
        pipeline.get_classifier(ClassifierConfig(dataset="digits", epochs=1), device="cpu")
    monkeypatch.setenv("NETINV_CACHE", str(f / "sub"))
    with pytest.raises(ConfigError, match="cannot be created"):
        pipeline.get_classifier(ClassifierConfig(dataset="digits", epochs=1), device="cpu")


def _run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.parametrize("device, match", [
    ("nonsense", "unknown device 'nonsense'"),
    pytest.param("cuda", "sees no GPU", marks=pytest.mark.skipif(
        torch.cuda.is_available(), reason="needs a machine without a GPU"))])
def test_bench_device_is_checked_first(device, match):
    r = _run_cli("netinv_core.bench", "inversion", "--dataset", "digits", "--profile", "smoke",
                 "--device", device)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and match in r.stderr and "Traceback" not in r.stderr


# --- notebooks --------------------------------------------------------------------------------

@pytest.mark.parametrize("params, match", [
    ({"dataset": "nonsense"}, "parameter dataset: unknown dataset 'nonsense'; choose one of"),
    ({"steps": -5}, "parameter steps: steps=-5 must be >= 0"),
    ({"alpha": 1e999}, "parameter alpha: loss weight alpha=inf must be finite"),
    ({"profile": "fast"}, "unknown profile 'fast'"),
    ({"conditioning": "hot"}, "unknown conditioning 'hot'"),
    ({"dropout": 1.5}, r"dropout=1.5 must be a number in \[0, 1\)"),
])
def test_notebook_values_are_checked_before_running(params, match):
    from netinv_core.notebooks import NOTEBOOK_DIR, check_parameters
    with pytest.raises(ConfigError, match=match):
        check_parameters(NOTEBOOK_DIR / "explore_inversion.ipynb", params)


@pytest.mark.parametrize("name, params, match", [
    ("fig2_inversion.ipynb", {"datasets": ["mnist", "mnits"]}, "unknown dataset 'mnits'"),
    ("fig3_interpretability.ipynb", {"n_samples": 10}, "n_samples=10 must be >= 1000"),
    ("fig3_interpretability.ipynb", {"gammas": [1.0, -1.0]}, "gamma=-1.0 must be finite and >= 0"),
    ("sec52_ood.ipynb", {"seeds": []}, "non-empty list of seeds"),
    ("sec52_ood.ipynb", {"seeds_per_set": {"cifar": [0]}}, "unknown dataset 'cifar'"),
    ("fig5_reconstruction.ipynb", {"train_sizes": {"mnist": [0]}}, "train size=0 must be >= 1"),
    ("ablation.ipynb", {"factors": {"dropuot": [0.0]}}, "unknown ablation factor 'dropuot'"),
    ("fig5_reconstruction.ipynb", {"attempts": ["nope"]}, r"unknown attempt variant\(s\) \['nope'\]"),
])
def test_figure_notebook_values_are_checked(name, params, match):
    from netinv_core.notebooks import NOTEBOOK_DIR, check_parameters
    with pytest.raises(ConfigError, match=match):
        check_parameters(NOTEBOOK_DIR / name, params)


def test_every_notebook_parameter_has_a_value_check():
    from netinv_core.notebooks import (NOTEBOOK_DIR, NOTEBOOKS, _value_checks, check_parameters,
                                       notebook_parameters)
    checks = _value_checks()
    for name in NOTEBOOKS:
        defaults = notebook_parameters(NOTEBOOK_DIR / name)
        assert set(defaults) <= set(checks), (name, set(defaults) - set(checks))
        check_parameters(NOTEBOOK_DIR / name, defaults)  # the defaults themselves pass


@pytest.mark.parametrize("args, match", [
    (["notebooks/nope.ipynb"], "no notebook at .*nope.ipynb; the notebooks are: .*fig2"),
    (["notebooks/explore_inversion.ipynb", "-p", "steps", "-5"], "steps=-5 must be >= 0"),
    (["notebooks/explore_inversion.ipynb", "-p", "dataset", "nonsense"], "unknown dataset"),
    (["notebooks/explore_inversion.ipynb", "-p", "alpha", "1e999"], "alpha=inf must be finite"),
])
def test_notebook_cli_prints_one_line(args, match, capsys, monkeypatch):
    from netinv_core.notebooks import REPO, main
    monkeypatch.chdir(REPO)
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(match, err), err


@pytest.mark.notebooks
def test_an_error_inside_the_kernel_is_one_line(tmp_path):
    """A value that passes the checks but fails in the kernel (data missing offline): one line
    with the netinv message and the executed copy that holds the traceback."""
    from netinv_core.notebooks import NOTEBOOK_DIR
    out = tmp_path / "executed.ipynb"
    r = subprocess.run([sys.executable, "-m", "netinv_core.notebooks", "run",
                        str(NOTEBOOK_DIR / "explore_inversion.ipynb"), "-p", "profile", "smoke",
                        "-p", "dataset", "fashionmnist", "--output", str(out)],
                       capture_output=True, text=True, timeout=300, env={
                           **os.environ, "NETINV_DATA": str(tmp_path / "empty"),
                           "NETINV_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: explore_inversion.ipynb, cell ")
    assert "DataUnavailableError: fashionmnist is not under the data root" in last
    assert str(out) in last and "Traceback" not in r.stderr


# --- stale temporary files ---------------------------------------------------------------------

def test_stale_tmp_files_of_killed_writes_are_removed(tmp_path):
    from netinv_core.cache import _host
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = tmp_path / f".gen.pt.{_host()}-{dead.pid}.abc123.tmp"     # writer gone
    old = tmp_path / ".gen.pt.q8z2.tmp"                                 # old naming, a day old
    live = tmp_path / f".other.pt.{_host()}-{os.getpid()}.xyz.tmp"      # a write in progress
    other_host = tmp_path / ".gen.pt.elsewhere-1.abc.tmp"               # another machine, fresh
    for f in (killed, old, live, other_host):
        f.write_bytes(b"partial")
    os.utime(old, (time.time() - 86400, time.time() - 86400))
    keep = tmp_path / "data.tmp"  # not a netinv temporary file (no leading dot)
    keep.write_text("x")
    save_checkpoint(tmp_path / "gen.pt", kind="k", config={}, tensors={"v": 1})
    assert not killed.exists() and not old.exists()
    assert live.exists() and other_host.exists() and keep.exists()
    assert load_checkpoint(tmp_path / "gen.pt")["v"] == 1
    assert sorted(p.name for p in tmp_path.glob(".*.tmp")) == sorted([live.name, other_host.name])
    assert clean_stale_tmp(tmp_path, max_age=-1)  # everything older than "now" goes


def test_every_error_is_a_netinv_error_with_a_hint():
    for cls in (CheckpointError, ConfigError, ShapeError, TrainingDivergedError):
        assert issubclass(cls, NetinvError)
