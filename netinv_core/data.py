"""Datasets: MNIST, FashionMNIST, SVHN, CIFAR-10 and scikit-learn's embedded digits.

Images are kept as uint8 tensors (N, C, H, W) in memory and converted to float in [0, 1] per batch;
every classifier normalises its own input (docs/choices.md pitfall 5), so [0, 1] is the one image scale
used by the data, the generator and the classifier alike.

Where files are looked for (the *data root*): ``$NETINV_DATA`` if set, else ``~/.cache/netinv/data``.
- MNIST / FashionMNIST: torchvision layout, ``ROOT/MNIST/raw/*-ubyte`` (``../shared/data`` has it).
- CIFAR-10: ``ROOT/cifar10.npz`` (keys x_train, y_train, x_test, y_test; HWC uint8), else
  torchvision's pickles ``ROOT/cifar-10-batches-py``.
- SVHN: ``ROOT/svhn.npz`` (same keys as cifar10.npz), else ``ROOT/{train,test}_32x32.mat`` in the
  original format (X: 32x32x3xN uint8, y: Nx1 with digit 0 stored as 10).
When the files are missing, torchvision downloads them into the root if the network is there;
otherwise a ``DataUnavailableError`` says how to point ``NETINV_DATA`` at a copy, or to use the
``smoke`` profile, whose ``digits`` dataset ships inside scikit-learn and needs neither.

``digits``: the 1797 real 8x8 handwritten digits of scikit-learn, scaled to [0, 1] and resized
bilinearly to 1x28x28 so that they exercise the MNIST-shaped models; a fixed stratified split gives
1257 training and 540 test images.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checks import check_dataset
from .errors import ConfigError, DataUnavailableError

IMAGE_SHAPES = {
    "mnist": (1, 28, 28), "fashionmnist": (1, 28, 28), "digits": (1, 28, 28),
    "svhn": (3, 32, 32), "cifar10": (3, 32, 32),
}
CLASS_NAMES = {
    "mnist": tuple(str(i) for i in range(10)),
    "digits": tuple(str(i) for i in range(10)),
    "svhn": tuple(str(i) for i in range(10)),
    "fashionmnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                     "Sneaker", "Bag", "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                "truck"),
}
SPLITS = ("train", "test")


@dataclass(frozen=True)
class ImageData:
    """A dataset split held in memory: ``x`` uint8 (N, C, H, W), ``y`` int64 (N,)."""

    name: str
    split: str
    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.y)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def images(self, idx=None) -> torch.Tensor:
        """Float images in [0, 1] (all, or those at ``idx``)."""
        x = self.x if idx is None else self.x[idx]
        return x.float().div_(255.0)

    def subset(self, idx) -> "ImageData":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return ImageData(self.name, self.split, self.x[idx], self.y[idx], self.classes)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder datasets are read from: ``root``, else ``$NETINV_DATA``, else a user cache."""
    if root is None:
        root = os.environ.get("NETINV_DATA") or Path.home() / ".cache" / "netinv" / "data"
    return Path(root).expanduser()


def _missing(name: str, root: Path, why: str) -> DataUnavailableError:
    return DataUnavailableError(
        f"{name} is not under the data root {root} and could not be downloaded ({why}). "
        f"Set NETINV_DATA to a folder that holds it (e.g. NETINV_DATA=../shared/data), run once "
        f"with internet so torchvision can download it there, or use the 'smoke' profile, whose "
        f"'digits' dataset ships inside scikit-learn and needs no files.")


def _from_hwc(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x, dtype=np.uint8).transpose(0, 3, 1, 2)))


def _load_digits(split: str):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    idx_train, idx_test = train_test_split(np.arange(len(d.target)), test_size=0.3,
                                           stratify=d.target, random_state=0)
    idx = idx_train if split == "train" else idx_test
    x = torch.from_numpy(d.images[idx].astype(np.float32) / 16.0).unsqueeze(1)   # (N, 1, 8, 8)
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)     # (N, 1, 28, 28)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return x, torch.from_numpy(d.target[idx].astype(np.int64))


def _load_torchvision_idx(name: str, split: str, root: Path, download: bool):
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "fashionmnist": torchvision.datasets.FashionMNIST}[name]
    train = split == "train"
    try:
        ds = cls(root=str(root), train=train, download=False)
    except RuntimeError:
        if not download:
            raise _missing(name, root, "download=False") from None
        try:
            ds = cls(root=str(root), train=train, download=True)
        except Exception as e:  # no network, read-only root, ...
            raise _missing(name, root, f"{type(e).__name__}: {e}") from None
    return ds.data.unsqueeze(1).contiguous(), torch.as_tensor(ds.targets, dtype=torch.long)


def _load_npz(path: Path, split: str):
    with np.load(path, allow_pickle=False) as d:
        return _from_hwc(d[f"x_{split}"]), torch.as_tensor(d[f"y_{split}"], dtype=torch.long)


def load_svhn_mat(path: Path):
    """Read an SVHN ``*_32x32.mat`` file (X: 32x32x3xN uint8, y: Nx1, digit 0 stored as 10)."""
    from scipy.io import loadmat

    m = loadmat(str(path))
    x = torch.from_numpy(np.ascontiguousarray(m["X"].transpose(3, 2, 0, 1)).astype(np.uint8))
    y = torch.as_tensor(m["y"].reshape(-1).astype(np.int64) % 10)
    return x, y


def _load_cifar10(split: str, root: Path, download: bool):
    if (root / "cifar10.npz").exists():
        return _load_npz(root / "cifar10.npz", split)
    import torchvision

    try:
        ds = torchvision.datasets.CIFAR10(root=str(root), train=split == "train", download=download)
    except Exception as e:
        raise _missing("cifar10", root, f"{type(e).__name__}: {e}") from None
    return _from_hwc(ds.data), torch.as_tensor(ds.targets, dtype=torch.long)


def _load_svhn(split: str, root: Path, download: bool):
    if (root / "svhn.npz").exists():
        return _load_npz(root / "svhn.npz", split)
    mat = root / f"{split}_32x32.mat"
    if mat.exists():
        return load_svhn_mat(mat)
    if not download:
        raise _missing("svhn", root, "download=False")
    import torchvision

    try:
        torchvision.datasets.SVHN(root=str(root), split=split, download=True)
    except Exception as e:
        raise _missing("svhn", root, f"{type(e).__name__}: {e}") from None
    return load_svhn_mat(mat)


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, split: str, root: str, download: bool) -> ImageData:
    rootp = Path(root)
    if name == "digits":
        x, y = _load_digits(split)
    elif name in ("mnist", "fashionmnist"):
        x, y = _load_torchvision_idx(name, split, rootp, download)
    elif name == "cifar10":
        x, y = _load_cifar10(split, rootp, download)
    else:
        x, y = _load_svhn(split, rootp, download)
    if tuple(x.shape[1:]) != IMAGE_SHAPES[name]:
        raise DataUnavailableError(f"{name} files under {root} hold images of shape "
                                   f"{tuple(x.shape[1:])}, expected {IMAGE_SHAPES[name]}")
    return ImageData(name, split, x, y, CLASS_NAMES[name])


def load_dataset(name: str, split: str = "train", root=None, download: bool = True) -> ImageData:
    """Load one split of a dataset into memory (cached per process)."""
    check_dataset(name)
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
    return _load_cached(name, split, str(data_root(root)), download)


def balanced_subset(y: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``n`` samples with (as near as possible) equal counts per class, chosen by ``seed``.

    The remainder ``n % C`` goes to the lowest class indices. Raises when ``n`` exceeds the data or
    a class has too few samples.
    """
    classes = torch.unique(y)
    if not isinstance(n, int) or n <= 0:
        raise ConfigError(f"subset size {n!r} must be a positive int")
    if n > len(y):
        raise ConfigError(f"subset size {n} is larger than the dataset ({len(y)} samples); "
                          f"choose n <= {len(y)}")
    g = torch.Generator().manual_seed(seed)
    per, extra = divmod(n, len(classes))
    picked = []
    for i, c in enumerate(classes.tolist()):
        members = torch.nonzero(y == c).flatten()
        k = per + (1 if i < extra else 0)
        if k > len(members):
            raise ConfigError(f"class {c} has only {len(members)} samples; a balanced subset of "
                              f"{n} needs {k}")
        picked.append(members[torch.randperm(len(members), generator=g)[:k]])
    idx = torch.cat(picked)
    return idx[torch.randperm(len(idx), generator=g)]
