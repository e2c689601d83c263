"""Interpretability analyses (Section 5.1) on inputs with known answers."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from netinv_core.errors import CheckpointError, ConfigError
from netinv_core.interpret import clusters_per_class, decision_plane, embed_tsne
from netinv_core.sae import SparseAutoencoder, sae_report, train_sae
from netinv_core.pipeline import classifier_config, get_classifier


def _blobs(k_per_class, n=120, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    feats, labels = [], []
    for c, k in enumerate(k_per_class):
        centers = rng.normal(size=(k, dim)) * 5
        for j in range(n):
            feats.append(centers[j % k] + rng.normal(size=dim) * 0.1)
            labels.append(c)
    return np.array(feats), np.array(labels)


def test_clusters_per_class_finds_the_planted_counts():
    feats, labels = _blobs([1, 2, 3])
    found = clusters_per_class(feats, labels)
    assert [found[c]["k"] for c in range(3)] == [1, 2, 3]
    assert found[1]["silhouette"] > 0.5 and found[2]["silhouette"] > 0.5


def test_decision_plane_is_exact_when_features_are_two_dimensional():
    feats, _ = _blobs([1, 1, 1], dim=2)
    head = nn.Linear(2, 3)
    plane = decision_plane(feats, head, resolution=30)
    assert plane.faithfulness == 1.0 and sum(plane.explained_variance) == pytest.approx(1.0)
    assert plane.mesh_labels.shape == (30, 30)


def test_tsne_needs_enough_samples():
    with pytest.raises(ConfigError, match="perplexity 30.*more than 90"):
        embed_tsne(np.zeros((50, 4)), perplexity=30)


def test_tsne_at_paper_sizes_uses_fft_and_separates_classes(monkeypatch):
    """From TSNE_FFT_FROM points on, t-SNE runs openTSNE's FFT version: deterministic for a seed
    and it keeps well-separated classes apart; without openTSNE it warns and uses scikit-learn."""
    import sys
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    import netinv_core.interpret as I
    pytest.importorskip("openTSNE")
    feats, labels = _blobs([1, 1, 1])
    monkeypatch.setattr(I, "TSNE_FFT_FROM", 100)
    a, b = embed_tsne(feats, seed=3), embed_tsne(feats, seed=3)
    assert a.shape == (360, 2) and np.array_equal(a, b)
    pred = KMeans(3, n_init=4, random_state=0).fit_predict(a)
    assert adjusted_rand_score(labels, pred) == 1.0
    monkeypatch.setitem(sys.modules, "openTSNE", None)   # as if not installed
    with pytest.warns(UserWarning, match="pip install openTSNE"):
        c = embed_tsne(feats, seed=3)
    assert c.shape == (360, 2)


def test_sae_learns_and_separates_shifted_features():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(2000, 16)).astype(np.float32)
    sae = train_sae(train, hidden=64, epochs=8, seed=0)
    assert sae.history[-1] < sae.history[0]
    real = rng.normal(size=(300, 16)).astype(np.float32)
    odd = (rng.normal(size=(300, 16)) * 4 + 3).astype(np.float32)
    rep = sae_report(sae, real, np.arange(300) % 3, odd, np.arange(300) % 3, top_k=5)
    assert rep["sae_anomaly_auroc"] > 0.9
    assert 0 <= rep["sae_topk_jaccard_mean"] <= 1


def test_sae_seeds_without_touching_the_callers_random_state():
    feats = np.random.default_rng(1).normal(size=(300, 8)).astype(np.float32)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = train_sae(feats, hidden=16, epochs=2, batch_size=64, seed=0)
    assert torch.equal(torch.get_rng_state(), state)         # the caller's stream goes on as before
    torch.manual_seed(7)                                     # another caller state: same SAE
    b = train_sae(feats, hidden=16, epochs=2, batch_size=64, seed=0)
    assert a.history == b.history
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())
    # the initial weights are those of torch.manual_seed(seed), as before the fork
    init = train_sae(feats, hidden=16, epochs=0, seed=3).model.state_dict()
    torch.manual_seed(3)
    ref = SparseAutoencoder(8, 16).state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in init.items())


def test_missing_checkpoint_names_the_notebook_that_makes_it():
    with pytest.raises(CheckpointError, match="fig2_inversion.ipynb"):
        get_classifier(classifier_config("digits", "smoke", seed=123), train_missing=False)


def test_figure3_skips_a_dataset_without_files_before_asking_for_its_classifier(monkeypatch):
    """SVHN offline: Figure 2 skips it, so Figure 3 must raise the DataUnavailableError its
    notebook skips, not a CheckpointError for the classifier Figure 2 could not train."""
    import netinv_core.figure3 as f3
    from netinv_core.errors import CheckpointError, DataUnavailableError

    def no_files(name, split="train", **kw):
        raise DataUnavailableError(f"{name} is not under the data root")

    def no_classifier(*a, **kw):
        raise CheckpointError("no cached svhn classifier")
    monkeypatch.setattr(f3, "load_dataset", no_files)
    monkeypatch.setattr(f3, "profile_generators", no_classifier)
    with pytest.raises(DataUnavailableError):
        f3.figure3_dataset("svhn", "quick")
