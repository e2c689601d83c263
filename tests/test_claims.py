"""The claims ledger: committed figures/claims.json, the README table, its sources, its errors."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from netinv_core import claims as C
from netinv_core.errors import ClaimSourceError

FIGURES = C.REPO / "figures"


@pytest.fixture(scope="module")
def committed():
    return json.loads((FIGURES / "claims.json").read_text())


def _resolve(pointer: str):
    name, _, path = pointer.partition("#")
    obj = json.loads((FIGURES / name).read_text())
    for key in [k for k in path.split("/") if k]:
        obj = obj[int(key)] if isinstance(obj, list) else obj[key]
    return obj


def test_readme_table_matches_claims_json(committed):
    text = (C.REPO / "README.md").read_text()
    m = re.search(re.escape(C.BEGIN) + r"\n(.*)\n" + re.escape(C.END), text, re.S)
    assert m, "README has no claims markers"
    assert m.group(1) == C.render_table(committed), (
        "README Claims table differs from figures/claims.json: run `python -m netinv_core.claims`")


def test_every_source_exists_in_committed_json(committed):
    for row in committed["claims"]:
        for pointer in row["source"]:
            try:
                _resolve(pointer)
            except (KeyError, IndexError, ValueError, FileNotFoundError) as e:
                pytest.fail(f"claim {row['id']}: source {pointer} is not in the committed JSON "
                            f"({type(e).__name__}: {e}); rerun `python -m netinv_core.claims`")


def test_rows_complete(committed):
    rows = committed["claims"]
    assert len(rows) >= 15
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert set(r) >= {"id", "section", "claim", "verdict", "evidence", "seeds", "source", "command"}
        assert r["verdict"] in C.VERDICTS
        assert r["evidence"]
        if r["verdict"] not in ("not run", "inconclusive"):
            assert r["seeds"] >= C.MIN_SEEDS, r["id"]
            assert r["source"], r["id"]
            assert r["command"], r["id"]


def test_ledger_is_recomputed_from_the_json(tmp_path):
    """build() reads the numbers: changing one in a copy of the figures changes the verdict."""
    shutil.copytree(FIGURES, tmp_path / "figs", ignore=shutil.ignore_patterns("*.png", "*.pdf"))
    path = tmp_path / "figs" / "fig4_ood.json"
    d = json.loads(path.read_text())
    # without the training variants (a 3-seed one at the paper's rate decides the cell on its own)
    d["attempts"] = [a for a in d["attempts"] if "in_distribution_accuracy" not in a]
    path.write_text(json.dumps(d))
    before = {r["id"]: r for r in C.build(tmp_path / "figs")["claims"]}
    d["runs"]["mnist"]["summary"]["ood"]["fashionmnist"]["garbage_rate"]["mean"] = 0.2
    path.write_text(json.dumps(d))
    after = {r["id"]: r for r in C.build(tmp_path / "figs")["claims"]}
    assert after["ood_mnist_to_fashionmnist"]["verdict"] == "refuted"
    assert "20.0" in after["ood_mnist_to_fashionmnist"]["evidence"]
    assert before["ood_mnist_to_cifar10"] == after["ood_mnist_to_cifar10"]


def test_ood_cell_is_refuted_only_after_a_variant_with_that_training_set(tmp_path):
    """A low garbage rate with the default alone is inconclusive (no fair attempt); once a variant
    with the same training set is recorded it is refuted. Attempts of another training set do not
    count, and the evidence shows the backbone's accuracy beside the paper's."""
    figs = _figs_copy(tmp_path)
    path = figs / "fig4_ood.json"

    def low_rate(d, train):
        d["runs"]["mnist"]["summary"]["ood"]["fashionmnist"]["garbage_rate"]["mean"] = 0.2
        own = d["runs"]["mnist"].get("variant", "capped")   # the table row's own configuration
        d["attempts"] = [{"name": "noise_only", "train": train}, {"name": own, "train": "mnist"}]

    _edit(path, lambda d: low_rate(d, "cifar10"))
    row = {r["id"]: r for r in C.build(figs)["claims"]}["ood_mnist_to_fashionmnist"]
    assert row["verdict"] == "inconclusive" and "not a fair attempt" in row["evidence"]
    assert "in-distribution accuracy" in row["evidence"] and "(paper 99.1%)" in row["evidence"]
    _edit(path, lambda d: low_rate(d, "mnist"))
    row = {r["id"]: r for r in C.build(figs)["claims"]}["ood_mnist_to_fashionmnist"]
    assert row["verdict"] == "refuted" and "1 further attempts with MNIST training" in row["evidence"]
    # the record of the configuration that made the table's row is no further attempt
    _edit(path, lambda d: d.update(attempts=[{"name": d["runs"]["mnist"].get("variant", "capped"),
                                              "train": "mnist"}]))
    row = {r["id"]: r for r in C.build(figs)["claims"]}["ood_mnist_to_fashionmnist"]
    assert row["verdict"] == "inconclusive"


def test_ood_cell_takes_a_three_seed_training_variant_that_reaches_the_paper(tmp_path):
    """A training variant with >= 3 seeds at the paper's rate supports the cell; with fewer seeds,
    or an evaluation-only attempt (no in-distribution accuracy), it does not."""
    figs = _figs_copy(tmp_path)
    path = figs / "fig4_ood.json"

    def variant(d, seeds, trained=True, rate=0.89):
        d["runs"]["mnist"]["summary"]["ood"]["fashionmnist"]["garbage_rate"]["mean"] = 0.2
        att = {"name": "no_cap", "train": "mnist", "seeds": list(range(seeds)),
               "ood": {"fashionmnist": {"garbage_rate": {"mean": rate}}}}
        if trained:
            att["in_distribution_accuracy"] = {"mean": 0.994}
        d["attempts"] = [att]

    _edit(path, lambda d: variant(d, 3))
    row = {r["id"]: r for r in C.build(figs)["claims"]}["ood_mnist_to_fashionmnist"]
    assert row["verdict"] == "supported" and "no_cap (3 seeds) 89.0%" in row["evidence"]
    assert row["seeds"] == 3 and "20.0" in row["evidence"]       # the default is still shown
    _edit(path, lambda d: variant(d, 3, rate=0.6))
    row = {r["id"]: r for r in C.build(figs)["claims"]}["ood_mnist_to_fashionmnist"]
    assert row["verdict"] == "partly"
    for kw in ({"seeds": 2}, {"seeds": 3, "trained": False}):
        _edit(path, lambda d: variant(d, **kw))
        row = {r["id"]: r for r in C.build(figs)["claims"]}["ood_mnist_to_fashionmnist"]
        assert row["verdict"] == "refuted", kw


def test_recon_row_takes_a_three_seed_training_like_attempt(tmp_path):
    """A pooled training-like attempt with >= 3 seeds at the dataset's smallest training set makes
    it supported; a 2-seed one, a positive control or another training-set size does not."""
    figs = _figs_copy(tmp_path)
    path = figs / "fig5_reconstruction.json"
    d = json.loads(path.read_text())
    size = min(r["train_size"] for r in d["datasets"]["fashionmnist"])
    base = d["datasets"]["fashionmnist"][0]["baselines"]
    floor = 0.5 * (base["noise"]["ncc_train"] + base["real_test"]["ncc_train"])
    pooled = {"training_like": True, "verifier_accuracy": 0.7, "ncc_train": floor + 0.01,
              "train_closer": {"share": 0.65, "p_value": 0.001}}

    def attempt(d, **kw):
        a = {"name": "search_best", "dataset": "fashionmnist", "train_size": size,
             "classifier": "cnn", "seeds": [0, 1, 2], "pooled": pooled}
        d["attempts"] = [{**a, **kw}]

    def row():
        return {r["id"]: r for r in C.build(figs)["claims"]}["reconstruction_training_like"]

    before = row()
    _edit(path, attempt)
    after = row()
    assert "FMNIST" in after["evidence"] and "search_best (3 seeds pooled)" in after["evidence"]
    assert C.VERDICTS.index(after["verdict"]) <= C.VERDICTS.index(before["verdict"])
    assert "the verdict is that attempt's" in after["evidence"]
    pooled["ncc_train"] = floor - 0.1        # judged and leaning, but far from any real image
    _edit(path, attempt)
    assert "far from any real image" in row()["evidence"]
    for kw in ({"seeds": [0, 1]}, {"name": "mlp_positive_control", "classifier": "mlp"},
               {"train_size": size + 1}):
        _edit(path, lambda d: attempt(d, **kw))
        assert "search_best (3 seeds pooled)" not in row()["evidence"], kw


def test_recon_row_judged_and_leaning_but_far_from_real_images_is_partly(tmp_path):
    """A Figure 5 row that passes both judges but whose NCC to the nearest training image is under
    the floor (halfway from noise to real held-out images) is "partly", and the evidence says why."""
    figs = _figs_copy(tmp_path)
    path = figs / "fig5_reconstruction.json"

    def row_edit(d, ncc):
        r = d["datasets"]["fashionmnist"][0]
        b = r["baselines"]
        floor = 0.5 * (b["noise"]["ncc_train"] + b["real_test"]["ncc_train"])
        r.update(verifier_accuracy=0.7, ncc_train=floor + ncc)
        r["train_closer"].update(share=0.65, p_value=0.001)
        d["attempts"] = []

    def row():
        return {r["id"]: r for r in C.build(figs)["claims"]}["reconstruction_training_like"]
    _edit(path, lambda d: row_edit(d, -0.05))
    low = row()
    assert "training-like by the judges, yet far from any real image" in low["evidence"]
    assert low["verdict"] == "partly"
    _edit(path, lambda d: row_edit(d, +0.05))
    assert "training-like by the judges" not in row()["evidence"]


def test_degrades_is_only_partly_when_the_smallest_size_is_under_the_ncc_floor(tmp_path):
    figs = _figs_copy(tmp_path)
    path = figs / "fig5_reconstruction.json"

    def rows(d, ncc):
        r = sorted(d["datasets"]["fashionmnist"], key=lambda r: r["train_size"])
        b = r[0]["baselines"]
        floor = 0.5 * (b["noise"]["ncc_train"] + b["real_test"]["ncc_train"])
        r[0].update(verifier_accuracy=0.7, ncc_train=floor + ncc, ncc_test=floor + ncc - 0.05)
        r[0]["train_closer"].update(share=0.7, p_value=0.001)
        for later in r[1:]:
            later.update(ncc_test=later["ncc_train"] + 0.01)
            later["train_closer"].update(share=0.4)

    def evidence():
        return {r["id"]: r for r in C.build(figs)["claims"]}["reconstruction_degrades"]["evidence"]
    if len(json.loads(path.read_text())["datasets"]["fashionmnist"]) < 2:
        pytest.skip("the committed Figure 5 has one FashionMNIST size")
    _edit(path, lambda d: rows(d, -0.05))
    assert "a fading statistical lean, not fading reconstructions" in evidence()
    _edit(path, lambda d: rows(d, +0.05))
    assert "a fading statistical lean" not in evidence()


def test_missing_source_names_claim_and_file(tmp_path):
    shutil.copytree(FIGURES, tmp_path / "figs", ignore=shutil.ignore_patterns("*.png", "*.pdf"))
    path = tmp_path / "figs" / "ablation.json"
    d = json.loads(path.read_text())
    for row in d["datasets"]["mnist"]["summary"]:
        row.pop("feature_cosine_inverted_std")
    path.write_text(json.dumps(d))
    with pytest.raises(ClaimSourceError) as e:
        C.build(tmp_path / "figs")
    msg = str(e.value)
    assert "label_conditioning" in msg and "ablation.json" in msg
    assert "feature_cosine_inverted_std" in msg and "notebooks/ablation.ipynb" in msg


def test_missing_file_names_claim_and_file(tmp_path):
    shutil.copytree(FIGURES, tmp_path / "figs", ignore=shutil.ignore_patterns("*.png", "*.pdf"))
    (tmp_path / "figs" / "fig5_reconstruction.json").unlink()
    with pytest.raises(ClaimSourceError, match=r"reconstruction_training_like.*fig5_reconstruction\.json"):
        C.build(tmp_path / "figs")


def test_readme_without_markers_is_an_error():
    with pytest.raises(ClaimSourceError, match="markers"):
        C.update_readme("# no table here\n", "| a |")
    text = f"x\n{C.BEGIN}\nold\n{C.END}\ny\n"
    assert C.update_readme(text, "new") == f"x\n{C.BEGIN}\nnew\n{C.END}\ny\n"


def test_rules():
    assert C.effect_size(0.6, 0.01, 0.7, 0.01) == pytest.approx(10.0)
    assert C.diversity_verdict([5.0, 3.0]) == "supported"
    assert C.diversity_verdict([0.5, -2.0]) == "refuted"
    assert C.diversity_verdict([5.0, 0.5]) == "partly"
    assert C.combine(["supported", "supported"]) == "supported"
    assert C.combine(["supported", "refuted"]) == "partly"
    assert C.combine(["refuted", "inconclusive"]) == "refuted"
    assert C.combine(["not run", "refuted"]) == "refuted"


def test_fewer_than_three_seeds_is_inconclusive(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "CLAIMS", [("x", "1", "a claim", lambda src: ("supported", "n = 1", 1)),
                                      ("y", "1", "b claim", lambda src: ("refuted", "n = 3", 3))])
    rows = C.build(tmp_path)["claims"]
    assert rows[0]["verdict"] == "inconclusive" and "fewer than 3" in rows[0]["evidence"]
    assert rows[1]["verdict"] == "refuted"


def test_calibrated_clusters_tell_generators_from_a_gaussian():
    """Two well-separated groups per class beat the Gaussian null and give ARI 1 against the
    groups; a single Gaussian blob does not beat it (the fair test's building blocks)."""
    from netinv_core.interpret import calibrated_clusters, clusters_fair_verdict

    rng = np.random.default_rng(0)
    n, dim = 80, 16
    labels = np.repeat(np.arange(3), 2 * n)
    groups = np.tile(np.repeat([0, 1], n), 3)
    centers = rng.normal(size=(3, 2, dim)) * 3 + 10
    two = centers[labels, groups] + rng.normal(size=(len(labels), dim))
    res = calibrated_clusters(two, labels, groups, n_null=4, k_max=4)
    assert res["classes_above_null"] == 3
    assert res["ari_k_groups_mean"] > 0.95
    blob = rng.normal(size=(len(labels), dim)) + 10
    res1 = calibrated_clusters(blob, labels, n_null=4, k_max=4)
    assert res1["classes_above_null"] <= 1
    assert clusters_fair_verdict(res1, res) == "supported as generator clusters"
    assert clusters_fair_verdict(res, res) == "supported"
    assert clusters_fair_verdict(res1, {**res1, "ari_mean": 0.0, "ari_k_groups_mean": 0.0}) == "refuted"


def test_merged_pairs_control_finds_known_clusters_and_gates_the_verdict():
    """Four separated classes merged in pairs give two clusters per merged label: the control
    finds them (ARI ~1 against the true class); with one blob for all four classes it cannot, and a
    rule that fails its control makes the fair verdict inconclusive, not refuted."""
    from netinv_core.interpret import calibrated_clusters, clusters_fair_verdict, merged_pairs_control

    rng = np.random.default_rng(1)
    n, dim = 100, 16
    labels = np.repeat(np.arange(4), n)
    feats = (rng.normal(size=(4, dim)) * 3 + 10)[labels] + rng.normal(size=(len(labels), dim))
    ctl = merged_pairs_control(feats, labels, n_null=4, max_points=120)
    assert ctl["pairs"] == [[0, 1], [2, 3]] and ctl["n_classes"] == 2
    assert ctl["classes_above_null"] == 2 and ctl["ari_k_groups_mean"] > 0.95
    blob = rng.normal(size=(len(labels), dim)) + 10
    weak = merged_pairs_control(blob, labels, n_null=4, max_points=120)
    assert weak["classes_above_null"] <= 1
    one = calibrated_clusters(blob, labels, n_null=4, k_max=4)
    none = {**one, "ari_mean": 0.0, "ari_k_groups_mean": 0.0}
    assert clusters_fair_verdict(one, none, weak) == "inconclusive"
    assert clusters_fair_verdict(one, none, ctl) == "refuted"


def _figs_copy(tmp_path):
    shutil.copytree(FIGURES, tmp_path / "figs", ignore=shutil.ignore_patterns("*.png", "*.pdf"))
    return tmp_path / "figs"


def _edit(path, fn):
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))


def test_student_row_reads_the_ablation_students(tmp_path):
    figs = _figs_copy(tmp_path)
    student = {"inverted_accuracy": [0.5, 0.52, 0.48], "noise_accuracy": 0.1, "real_accuracy": 0.97,
               "n_samples": 20000}
    abl = {"settings": [{"setting": "default", "accuracy_mean": 0.5, "accuracy_std": 0.02},
                        {"setting": "conditioning=label", "accuracy_mean": 0.8, "accuracy_std": 0.01}]}

    def fig2(d):
        for ds in ("mnist", "fashionmnist"):
            d["datasets"][ds]["student"] = student

    def ablation(d):
        d["datasets"]["mnist"]["student"] = abl
    _edit(figs / "fig2_inversion.json", fig2)
    _edit(figs / "ablation.json", ablation)
    row = {r["id"]: r for r in C.build(figs)["claims"]}["learns_input_distribution"]
    assert row["verdict"] == "partly" and row["seeds"] == 3
    assert "best: conditioning=label" in row["evidence"] and "80.0%" in row["evidence"]
    assert "ablation.json#/datasets/mnist/student/settings" in row["source"]


def test_cluster_row_uses_the_calibrated_sweep_over_seeds(tmp_path):
    """With classes_above_null per gamma (mean over 3 seeds) the row has 3 seeds; 9/10 classes
    above the null at gamma 30 and 2/10 at gamma 0 is 'supported'."""
    figs = _figs_copy(tmp_path)

    def fig3(d):
        for ds in ("mnist", "fashionmnist"):
            r = d["datasets"][ds]
            r["gamma_sweep"] = [{"gamma": g, "clusters_per_class_mean": 1.0, "n_seeds": 3,
                                 "feature_cosine_inverted": 0.7, "classes_above_null": a} for g, a in ((0.0, 2.0), (30.0, 9.0))]
            r["clusters_fair"]["layer_gamma"] = [
                {"layer": "penultimate.0", "gamma": 30.0, "classes_above_null": 0}]
    _edit(figs / "fig3_interpretability.json", fig3)
    row = {r["id"]: r for r in C.build(figs)["claims"]}["cosine_more_clusters"]
    assert row["verdict"] == "supported" and row["seeds"] == 3
    assert "gamma 30: 9.0/10" in row["evidence"]


def test_degradation_needs_training_like_reconstructions_first(tmp_path):
    """The committed MNIST-1000 reconstructions are not training-like, so 'degrades with size' is
    inconclusive; a (fake) training-like MNIST-1000 that loses its lean at 10000 supports it."""
    figs = _figs_copy(tmp_path)
    _edit(figs / "fig5_reconstruction.json",   # MNIST alone: one FashionMNIST size, no trend
          lambda d: d["datasets"].update(fashionmnist=d["datasets"]["fashionmnist"][:1]))
    rows = {r["id"]: r for r in C.build(figs)["claims"]}
    assert rows["reconstruction_degrades"]["verdict"] == "inconclusive"
    assert "nothing to degrade" in rows["reconstruction_degrades"]["evidence"]

    def fig5(d):
        small = min(d["datasets"]["mnist"], key=lambda r: r["train_size"])
        small["verifier_accuracy"] = 0.9
        small["train_closer"].update(share=0.8, p_value=0.001)
        small["ncc_train"] = small["ncc_test"] + 0.2
    _edit(figs / "fig5_reconstruction.json", fig5)
    rows = {r["id"]: r for r in C.build(figs)["claims"]}
    assert rows["reconstruction_degrades"]["verdict"] == "supported"
    assert rows["reconstruction_training_like"]["verdict"] in ("supported", "partly")


def test_a_single_cosine_weight_gives_no_verdict(tmp_path):
    """A dataset swept at one gamma only is reported without a verdict (not 'refuted')."""
    figs = _figs_copy(tmp_path)

    def fig3(d):
        for ds in ("mnist", "fashionmnist"):
            d["datasets"][ds]["gamma_sweep"] = [
                {"gamma": 10.0, "clusters_per_class_mean": 1.0, "n_seeds": 3,
                 "feature_cosine_inverted": 0.7, "classes_above_null": 1.0}]
    _edit(figs / "fig3_interpretability.json", fig3)
    row = {r["id"]: r for r in C.build(figs)["claims"]}["cosine_more_clusters"]
    assert row["verdict"] == "not run" and "one cosine weight" in row["evidence"]


def test_ood_row_without_a_table_record_shows_its_attempts_without_a_verdict(tmp_path):
    """CIFAR-10 has no row under the default (no backbone >= 85% yet): its cells say why and show
    the training attempts that were measured, as inconclusive rather than refuted."""
    figs = _figs_copy(tmp_path)
    path = figs / "fig4_ood.json"

    def no_row(d):
        d["runs"].pop("cifar10", None)
        d["skipped"] = {"cifar10": "no CIFAR-10 backbone at >= 85% (quick: 79.4%)"}
        d["attempts"] = [{"name": "capped", "train": "cifar10", "seeds": [1, 2],
                          "in_distribution_accuracy": {"mean": 0.793},
                          "ood": {"mnist": {"garbage_rate": {"mean": 0.0}}}}]

    _edit(path, no_row)
    rows = {r["id"]: r for r in C.build(figs)["claims"]}
    row = rows["ood_cifar10_to_mnist"]
    assert row["verdict"] == "inconclusive" and row["seeds"] == 2
    assert "no CIFAR-10 backbone at >= 85%" in row["evidence"]
    assert "capped (2 seeds, in-distribution 79.3%) 0.0% to garbage" in row["evidence"]
    assert rows["ood_cifar10_to_fashionmnist"]["verdict"] == "not run"

    def strong(d):   # a second attempt, 3 seeds, on a backbone >= 85%: it decides the cell
        d["attempts"].append({"name": "backbone_sgd", "train": "cifar10", "seeds": [0, 1, 2],
                              "in_distribution_accuracy": {"mean": 0.861},
                              "ood": {"mnist": {"garbage_rate": {"mean": 0.004}}}})
    _edit(path, strong)
    row = {r["id"]: r for r in C.build(figs)["claims"]}["ood_cifar10_to_mnist"]
    assert row["verdict"] == "refuted" and row["seeds"] == 3
    assert "the verdict is backbone_sgd's (3 seeds, in-distribution 86.1% >= 85%)" in row["evidence"]

    def weak(d):     # the same at 84%: still inconclusive
        d["attempts"][-1]["in_distribution_accuracy"]["mean"] = 0.84
    _edit(path, weak)
    row = {r["id"]: r for r in C.build(figs)["claims"]}["ood_cifar10_to_mnist"]
    assert row["verdict"] == "inconclusive" and "until an attempt has >= 3 seeds" in row["evidence"]


def test_ood_cell_shows_knn_and_vim_only_for_the_tables_own_models(tmp_path):
    """The OOD cell quotes the KNN / ViM AUROC of the knn_vim check when it was measured on the
    models of the table's configuration, never those of another variant's models."""
    figs = _figs_copy(tmp_path)
    path = figs / "fig4_ood.json"

    def one(d):
        d["runs"]["mnist"]["variant"] = "diverse_garbage"
        d["attempts"] = [a for a in d["attempts"] if a["name"] != "knn_vim"] + [
            {"name": "knn_vim", "train": "mnist", "model": "diverse_garbage", "seeds": [0, 1, 2],
             "ood": {"fashionmnist": {"knn": {"auroc": {"mean": 0.9914}},
                                      "vim": {"auroc": {"mean": 0.9828}}}}}]
    _edit(path, one)
    ev = {r["id"]: r for r in C.build(figs)["claims"]}["ood_mnist_to_fashionmnist"]["evidence"]
    assert "KNN AUROC 0.991, ViM AUROC 0.983 (knn_vim, the table's models, seeds [0, 1, 2])" in ev

    def other(d):
        d["attempts"][-1]["model"] = "capped"
    _edit(path, other)
    ev = {r["id"]: r for r in C.build(figs)["claims"]}["ood_mnist_to_fashionmnist"]["evidence"]
    assert "KNN AUROC" not in ev


def test_pixel_diversity_rises_count_only_beyond_the_seed_spread(tmp_path):
    """cosine_inter_intra: a distance grows with gamma only when it rises by >= 2 seed SDs; a rise
    inside the spread (the 0.009 that flipped the verdict once) does not count."""
    figs = _figs_copy(tmp_path)
    path = figs / "fig2_inversion.json"

    def set_rows(d, ds, within, between):
        rows = d["datasets"][ds]["pixel_diversity"]["gamma"]
        for i, row in enumerate((rows[0], rows[-1])):      # lowest and highest gamma
            for k, vals in (("within", within[i]), ("between", between[i])):
                row[f"{k}_mean"] = sum(vals) / len(vals)
                for seed, v in zip(row["per_seed"], vals):
                    seed[k] = v

    noisy = ([0.15, 0.17, 0.19], [0.15, 0.18, 0.20])     # rises by 0.007, SD 0.02: no change
    clear = ([0.10, 0.11, 0.12], [0.15, 0.16, 0.17])     # rises by 0.05, SD 0.01: grows
    for ds in ("mnist", "fashionmnist"):
        _edit(path, lambda d, ds=ds: set_rows(d, ds, noisy, noisy))
    row = {r["id"]: r for r in C.build(figs)["claims"]}["cosine_inter_intra"]
    assert row["verdict"] == "refuted" and "d = 0.3 SD" in row["evidence"]
    _edit(path, lambda d: set_rows(d, "mnist", clear, noisy))
    assert {r["id"]: r for r in C.build(figs)["claims"]}["cosine_inter_intra"]["verdict"] == "partly"
    for ds in ("mnist", "fashionmnist"):
        _edit(path, lambda d, ds=ds: set_rows(d, ds, clear, clear))
    assert {r["id"]: r for r in C.build(figs)["claims"]}["cosine_inter_intra"]["verdict"] == "supported"
