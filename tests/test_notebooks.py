"""Notebook smoke tests: every notebook executes in the smoke profile, and the recorded numbers are
real and within range. Also: bad papermill parameters are refused.

``./run_tests.sh`` executes smoke-parameterised copies of the notebooks through nbval first
(``pytest --nbval-lax``, ``netinv_core.notebooks.SMOKE_PARAMS``) with their figures under
``$NETINV_SMOKE_OUT``; the checks here then read those outputs. Run on their own, they execute
the notebooks with papermill themselves.
"""
import json
import os
from pathlib import Path

import pytest

from netinv_core.errors import ConfigError
from netinv_core.notebooks import (NOTEBOOK_DIR, NOTEBOOKS, SMOKE_PARAMS, check_parameters,
                                   notebook_parameters, run_notebook)

pytestmark = pytest.mark.notebooks


def smoke_outputs(name: str, tmp_path) -> Path:
    """The figures folder of ``name``'s smoke run: the nbval run's when run_tests.sh made one,
    else a papermill run here with the same parameters."""
    done = Path(os.environ.get("NETINV_SMOKE_OUT", "/nonexistent")) / Path(name).stem
    if any(done.glob("*.json")):
        return done
    figs = tmp_path / "figs"
    run_notebook(NOTEBOOK_DIR / name, {**SMOKE_PARAMS[name], "figures_dir": str(figs)},
                 output=tmp_path / name, progress=False)
    return figs


def test_every_notebook_is_listed_and_clean():
    on_disk = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))
    assert sorted(NOTEBOOKS) == on_disk
    for name in NOTEBOOKS:
        nb = json.loads((NOTEBOOK_DIR / name).read_text())
        assert not any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), name
        cell = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
        assert len(cell) == 1, name
        # papermill must parse every assignment of the parameters cell
        src = "".join(cell[0]["source"])
        assigned = [ln.split("=")[0].strip() for ln in src.splitlines() if "=" in ln]
        assert sorted(assigned) == sorted(notebook_parameters(NOTEBOOK_DIR / name)), name


def test_fig2_smoke(tmp_path):
    figs = smoke_outputs("fig2_inversion.ipynb", tmp_path)
    rec = json.loads((figs / "fig2_inversion.json").read_text())
    digits = rec["datasets"]["digits"]
    assert digits["classifier"]["test_accuracy"] > 0.5  # two epochs on 1257 real digits
    assert len(digits["generators"]) == 2
    for g in digits["generators"]:
        assert 0 <= g["inversion_accuracy"] <= 1 and g["n_samples"] >= 1000
        assert -1 <= g["feature_cosine_inverted"] <= 1 and 0 < g["feature_cosine_real"] <= 1
    for ext in ("png", "pdf"):
        assert (figs / f"fig2_digits.{ext}").stat().st_size > 1000
    # probes (figure2.figure2_probes): pixel diversity, independent classifier, student
    pix, ind, st = digits["pixel_diversity"], digits["independent"], digits["student"]
    assert pix["real"]["ratio"] > 1  # real digits of different classes differ more than within a class
    assert [g["gamma"] for g in pix["gamma"]] == [0.0, 10.0, 30.0]
    assert all(g["n_seeds"] == 2 and g["within_mean"] > 0 for g in pix["gamma"])
    assert ind["test_accuracy"] > 0.3 and len(ind["agreement_inverted"]) == 2
    assert all(0 <= a <= 1 for a in ind["agreement_inverted"] + st["inverted_accuracy"])
    assert st["real_accuracy"] > st["noise_accuracy"]


def test_fig3_smoke(tmp_path):
    figs = smoke_outputs("fig3_interpretability.ipynb", tmp_path)
    rec = json.loads((figs / "fig3_interpretability.json").read_text())["datasets"]["digits"]
    assert [s["gamma"] for s in rec["gamma_sweep"]] == [0.0, 10.0]
    assert 0 <= rec["boundary_faithfulness"] <= 1 and 0 < sum(rec["pca_explained_variance"]) <= 1
    assert len(rec["clusters_per_class"]) == 10 and all(k >= 1 for k in rec["clusters_per_class"])
    assert 0 <= rec["sae_anomaly_auroc"] <= 1
    fair = rec["clusters_fair"]
    assert fair["verdict"] in ("supported", "supported as generator clusters", "refuted")
    pooled = fair["pooled_generators"]
    assert pooled["n_generators"] == 2 and -1 <= pooled["ari_mean"] <= 1 and pooled["best_k_median"] >= 2
    assert 0 <= fair["single_generator"]["classes_above_null"] <= 10
    assert 0 <= fair["real_vs_inverted"]["mixed_cluster_share"] <= 1
    assert [(r["layer"], r["gamma"]) for r in fair["layer_gamma"]] == [
        ("penultimate", 10.0), ("penultimate", 30.0), ("penultimate.0", 10.0), ("penultimate.0", 30.0)]
    assert [g["seed"] for g in rec["per_generator"]] == [0, 1]
    for stem in ("fig3_digits", "fig3_digits_sae", "fig3_digits_gamma_sweep", "fig3_digits_clusters_fair"):
        assert (figs / f"{stem}.png").stat().st_size > 1000 and (figs / f"{stem}.pdf").exists()


def test_sec52_ood_smoke(tmp_path):
    figs = smoke_outputs("sec52_ood.ipynb", tmp_path)
    rec = json.loads((figs / "fig4_ood.json").read_text())
    run = rec["runs"]["digits"]
    s = run["summary"]
    assert s["n_seeds"] == 2 and s["in_distribution_accuracy"]["mean"] > 0.5
    photos = s["ood"]["sklearn_photos"]
    assert 0 <= photos["garbage_rate"]["mean"] <= 1
    assert set(photos["methods"]) == {"garbage", "msp", "energy", "mahalanobis"}
    for m in photos["methods"].values():
        assert 0 <= m["auroc"]["mean"] <= 1 and 0 <= m["fpr95"]["mean"] <= 1
    from netinv_core.ood_experiment import ood_config
    epochs = ood_config("digits", "smoke").classifier.epochs   # the default: rounds + 1 epochs
    assert epochs == 3 and all(len(h["epoch"]) == epochs for h in run["histories"])
    assert run["variant"] == "diverse_garbage"
    for stem in ("fig4_ood_digits_confidence", "fig4_ood_digits_garbage"):
        assert (figs / f"{stem}.png").stat().st_size > 1000 and (figs / f"{stem}.pdf").exists()


def test_fig5_reconstruction_smoke(tmp_path):
    figs = smoke_outputs("fig5_reconstruction.ipynb", tmp_path)
    rec = json.loads((figs / "fig5_reconstruction.json").read_text())["datasets"]["digits"]
    assert [r["train_size"] for r in rec] == [300]
    r = rec[0]
    assert len(r["reconstruction"]) == 2 and r["reconstruction"][0]["n_images"] == 100
    keys = ("label_accuracy", "verifier_accuracy", "nn_accuracy", "ncc_train", "ncc_test",
            "ssim_train", "ssim_test", "train_closer")
    for m in (r, r["reconstruction"][0], r["plain_inversion"], *r["baselines"].values()):
        assert all(k in m for k in keys)
        assert all(0 <= m[k] <= 1 for k in keys[:3]) and -1 <= m["ncc_train"] <= 1
        assert 0 < m["train_closer"]["p_value"] <= 1
    assert set(r["baselines"]) == {"all_black", "class_mean", "wrong_class", "noise", "real_test"}
    assert set(r["reconstruction"][0]["sampling_modes"]) == {"dropout", "train", "no_dropout",
                                                             "bn_reestimate"}
    for stem in ("fig5_digits", "fig5_digits_stretched", "fig5_digits_nearest", "fig5_digits_ncc"):
        assert (figs / f"{stem}.png").stat().st_size > 1000 and (figs / f"{stem}.pdf").exists()


def test_ablation_smoke(tmp_path):
    figs = smoke_outputs("ablation.ipynb", tmp_path)
    rec = json.loads((figs / "ablation.json").read_text())["datasets"]["digits"]
    assert [r["setting"] for r in rec["summary"]] == ["conditioning=label", "default", "loss_off=gamma"]
    assert len(rec["rows"]) == 6 and all(r["seeds"] == 2 for r in rec["summary"])
    for stem in ("ablation_digits", "ablation_digits_grid"):
        assert (figs / f"{stem}.png").stat().st_size > 1000


def test_explore_smoke(tmp_path):
    """Steps, batch and width follow the smoke profile (no overrides needed); the first run's
    numbers are in the output, and no output is a tqdm widget (they break after a reload)."""
    out = run_notebook(NOTEBOOK_DIR / "explore_inversion.ipynb",
                       SMOKE_PARAMS["explore_inversion.ipynb"],
                       output=tmp_path / "explore.ipynb", progress=False)
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    text = json.dumps(outputs)
    assert "'inversion_accuracy'" in text
    assert "training it once now" in text or "loaded from the cache" in text
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widgets) == 1  # the explorer itself; progress bars are text


def test_wrong_parameter_name_or_type_is_refused():
    nb = NOTEBOOK_DIR / "explore_inversion.ipynb"
    with pytest.raises(ConfigError, match="no parameter 'gama'.*'gamma'"):
        check_parameters(nb, {"gama": 1.0})
    with pytest.raises(ConfigError, match="steps=.*expected int"):
        check_parameters(nb, {"steps": "many"})
    check_parameters(nb, {"gamma": 3, "dataset": "digits"})  # int for a float is fine


def test_relative_data_and_cache_paths_survive_the_notebook_cwd(tmp_path, monkeypatch):
    import os

    import papermill
    seen = {}

    def execute(*args, **kwargs):  # the environment the kernel would be started with
        seen.update(kwargs["kernel_manager_class"].netinv_env)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NETINV_DATA", "data")
    monkeypatch.setenv("NETINV_CACHE", "cache")
    monkeypatch.setattr(papermill, "execute_notebook", execute)
    run_notebook(NOTEBOOK_DIR / "explore_inversion.ipynb", {}, output=tmp_path / "out.ipynb")
    assert (seen["NETINV_DATA"], seen["NETINV_CACHE"]) == (str((tmp_path / "data").resolve()),
                                                           str((tmp_path / "cache").resolve()))
    # the caller's own environment is left alone
    assert (os.environ["NETINV_DATA"], os.environ["NETINV_CACHE"]) == ("data", "cache")


def test_figures_dir_reaches_every_notebook_that_writes_figures(tmp_path, monkeypatch):
    import netinv_core.notebooks as nbmod
    got = {}
    monkeypatch.setattr(nbmod, "run_notebook",
                        lambda path, params, output: got.__setitem__(path, params) or output)
    for name in NOTEBOOKS:
        assert nbmod.main(["run", str(NOTEBOOK_DIR / name), "-p", "profile", "smoke",
                           "--figures-dir", str(tmp_path)]) == 0
    writes = {n for n in NOTEBOOKS if "figures_dir" in notebook_parameters(NOTEBOOK_DIR / n)}
    assert {"ablation.ipynb", "sec52_ood.ipynb"} <= writes
    for name in NOTEBOOKS:
        params = got[str(NOTEBOOK_DIR / name)]
        assert params.get("figures_dir") == (str(tmp_path.resolve()) if name in writes else None)
