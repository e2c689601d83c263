"""Datasets: the embedded digits, subsets, the SVHN .mat path, clear errors; real data in ../shared."""
import numpy as np
import pytest
import torch

from conftest import SHARED_DATA
from netinv_core.data import balanced_subset, load_dataset, load_svhn_mat
from netinv_core.errors import ConfigError, DataUnavailableError


def test_digits_are_real_and_shaped_like_mnist(digits):
    train, test = digits
    assert train.x.shape == (1257, 1, 28, 28) and test.x.shape == (540, 1, 28, 28)
    assert train.x.dtype == torch.uint8 and train.images().max() <= 1.0
    assert sorted(torch.unique(train.y).tolist()) == list(range(10))


def test_balanced_subset_counts_and_seed():
    y = torch.arange(1000) % 10
    idx = balanced_subset(y, 105, seed=3)
    counts = torch.bincount(y[idx], minlength=10)
    assert counts.tolist() == [11] * 5 + [10] * 5 and len(set(idx.tolist())) == 105
    assert torch.equal(idx, balanced_subset(y, 105, seed=3))
    assert not torch.equal(idx, balanced_subset(y, 105, seed=4))
    with pytest.raises(ConfigError, match="larger than the dataset"):
        balanced_subset(y, 1001)


def test_unknown_names():
    with pytest.raises(ConfigError, match="unknown dataset 'mnsit'.*'mnist'"):
        load_dataset("mnsit")
    with pytest.raises(ConfigError, match="unknown split"):
        load_dataset("digits", "validation")


@pytest.mark.parametrize("name", ["mnist", "cifar10", "svhn"])
def test_missing_data_offline_names_the_fix(tmp_path, name):
    with pytest.raises(DataUnavailableError, match="NETINV_DATA.*smoke"):
        load_dataset(name, "test", root=tmp_path / "empty", download=False)


def test_svhn_mat_loading_path(tmp_path):
    from scipy.io import savemat
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(32, 32, 3, 7), dtype=np.uint8)
    y = np.array([[10], [1], [2], [3], [9], [10], [5]])
    savemat(tmp_path / "test_32x32.mat", {"X": x, "y": y})
    data = load_dataset("svhn", "test", root=tmp_path, download=False)
    assert data.x.shape == (7, 3, 32, 32)
    assert data.y.tolist() == [0, 1, 2, 3, 9, 0, 5]  # 10 means digit 0
    assert torch.equal(data.x[2, :, 4, 5], torch.from_numpy(x[4, 5, :, 2]))
    assert torch.equal(load_svhn_mat(tmp_path / "test_32x32.mat")[1], data.y)


needs_shared = pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not present")


@pytest.mark.shared_data
@needs_shared
@pytest.mark.parametrize("name", ["mnist", "fashionmnist"])
def test_shared_mnist_like(name):
    tr = load_dataset(name, "train", root=SHARED_DATA, download=False)
    te = load_dataset(name, "test", root=SHARED_DATA, download=False)
    assert tr.x.shape == (60000, 1, 28, 28) and te.x.shape == (10000, 1, 28, 28)
    assert torch.bincount(te.y).tolist() == ([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
                                             if name == "mnist" else [1000] * 10)


@pytest.mark.shared_data
@needs_shared
def test_shared_cifar10_test_split():
    te = load_dataset("cifar10", "test", root=SHARED_DATA, download=False)
    assert te.x.shape == (10000, 3, 32, 32) and torch.bincount(te.y).tolist() == [1000] * 10
    assert te.classes[0] == "airplane"
