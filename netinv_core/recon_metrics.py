"""Calibrated metrics for training-like data reconstruction (paper Section 5.3).

A reconstruction set is images x_i in [0, 1] with conditioning labels y_i. Every number below is
reported for the reconstructions *and* for five trivial or real image sets (``baselines``), so that
it can be read against its floors and its ceiling:

- ``all_black``: zeros; ``noise``: uniform noise in [0, 1]; ``class_mean``: the mean held-out
  image of class y (held-out images outside the matching pools); ``wrong_class``: a real held-out
  image of class (y + 1 + r) mod N, still labelled y; ``real_test``: a real held-out image of class
  y that is in neither matching pool (the ceiling).

Metrics (``image_metrics``):

- ``label_accuracy`` = 1/n sum_i [argmax f(x_i) = y_i], f the *attacked* classifier (and
  ``label_confidence`` = 1/n sum_i softmax(f(x_i))_{y_i}).
- ``verifier_accuracy`` = 1/n sum_i [argmax v(x_i) = y_i], v an independent judge: an MLP (another
  architecture than the attacked CNN) trained on images the attacked classifier never saw (the
  training split minus the attacked subset; when the attacked classifier used the whole split, the
  first half of the test split, and the second half is then the held-out pool). Its calibration is
  the baselines: real held-out images (ceiling), class means, wrong-class images and noise (floors).
- ``nn_accuracy``: a second judge without training: the label of the nearest image by NCC in a
  pool of ``nn_pool_per_class`` images of *every* class from the verifier's training images.
- ``ncc_train`` = 1/n sum_i max_{t in T_{y_i}} NCC(x_i, t) and ``ncc_test`` the same over the
  held-out pool H_{y_i}; T_c are the attacked classifier's training images of class c and H_c
  held-out images of class c, subsampled to the same size per class (seeded), with
  NCC(a, b) = <a - mean a, b - mean b> / (||a - mean a|| ||b - mean b||) (0 for a constant image).
- ``ssim_train`` / ``ssim_test``: SSIM to the NCC-nearest training / held-out image, computed by
  torchmetrics (Wang et al. 2004: Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, data range
  1). Shown beside the others, never alone: on MNIST it mostly rewards an exactly-0 background.
- ``train_closer``: ``share`` = 1/n sum_i [NCC_train(x_i) > NCC_test(x_i)], its 95% bootstrap
  interval over the images, and a permutation p-value against "the training pool is no closer than
  the held-out pool": per class the two pools are merged and split again at random into two pools
  of the same sizes ``n_permutations`` times; p = (1 + #{share_perm >= share}) / (1 + n_perm).
  ``lean`` = share - 0.5 (> 0: closer to the training images).

"Training-like" (README verdict): verifier_accuracy >= 0.5 and train_closer p < 0.05.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .cache import Trained, load_or_train
from .config import to_dict
from .errors import ConfigError

BASELINES = ("all_black", "class_mean", "wrong_class", "noise", "real_test")
METRIC_KEYS = ("label_accuracy", "label_confidence", "verifier_accuracy", "nn_accuracy",
               "ncc_train", "ncc_test", "ssim_train", "ssim_test", "train_closer")
TRAINING_LIKE = {"verifier_accuracy": 0.5, "p_value": 0.05}


# ---------------------------------------------------------------------------------------------
# data: who saw what

@dataclass
class JudgingData:
    """The images the metrics need, split by who has seen them.

    ``train_x/train_y``: the attacked classifier's own training images; ``heldout_x/heldout_y``:
    images neither the attacked classifier nor the verifier saw; ``verifier_x/verifier_y``: the
    verifier's training images (never seen by the attacked classifier); ``verifier_source`` says
    where they came from.
    """

    dataset: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    heldout_x: torch.Tensor
    heldout_y: torch.Tensor
    verifier_x: torch.Tensor
    verifier_y: torch.Tensor
    verifier_source: str
    num_classes: int


def judging_data(dataset: str, train_size: int | None, seed: int = 0) -> JudgingData:
    """Split ``dataset`` for an attacked classifier trained on ``balanced_subset(train, train_size,
    seed)`` (the whole training split when ``train_size`` is None or its size)."""
    from .data import balanced_subset, load_dataset

    train, test = load_dataset(dataset, "train"), load_dataset(dataset, "test")
    if train_size is not None and train_size < len(train):
        idx = balanced_subset(train.y, train_size, seed=seed)
        mask = torch.ones(len(train), dtype=torch.bool)
        mask[idx] = False
        rest = torch.nonzero(mask).flatten()
        att = train.subset(idx)
        ver, held = train.subset(rest), test
        source = (f"{dataset} training split minus the attacked classifier's {len(idx)}-image "
                  f"subset ({len(rest)} images)")
    else:
        g = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(test), generator=g)
        half = len(test) // 2
        att, ver, held = train, test.subset(perm[:half]), test.subset(perm[half:])
        source = (f"{dataset} test split, a seeded half ({half} images); the other half is the "
                  f"held-out pool (the attacked classifier used the whole training split)")
    return JudgingData(dataset, att.images(), att.y, held.images(), held.y, ver.images(), ver.y,
                       source, train.num_classes)


# ---------------------------------------------------------------------------------------------
# the independent verifier

@dataclass(frozen=True)
class VerifierConfig:
    """An MLP judge: flatten -> Linear(D, 512) -> ReLU -> Dropout -> Linear(512, 256) -> ReLU ->
    Linear(256, N), inputs standardised by the training mean/std; Adam, ``epochs`` epochs."""

    dataset: str
    attacked_train_size: int | None
    attacked_seed: int = 0
    hidden: tuple = (512, 256)
    dropout: float = 0.2
    epochs: int = 4
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0


class MLPVerifier(nn.Module):
    def __init__(self, in_shape, num_classes: int, hidden=(512, 256), dropout=0.2,
                 mean: float = 0.5, std: float = 0.25):
        super().__init__()
        d = int(np.prod(in_shape))
        layers, prev = [], d
        for i, h in enumerate(hidden):
            layers += [nn.Linear(prev, h), nn.ReLU()] + ([nn.Dropout(dropout)] if i == 0 else [])
            prev = h
        self.net = nn.Sequential(nn.Flatten(), *layers, nn.Linear(prev, num_classes))
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def _batched(model, x, bs=2000):
    with torch.no_grad():
        return torch.cat([model(x[i:i + bs]) for i in range(0, len(x), bs)]) if len(x) else \
            torch.zeros(0)


def get_verifier(data: JudgingData, cfg: VerifierConfig, *, device="cpu") -> Trained:
    """The verifier for ``cfg`` from the checkpoint cache, or trained on ``data.verifier_x`` and
    cached (``cache.load_or_train``); its metrics hold its accuracy on the held-out images."""
    shape = tuple(data.train_x.shape[1:])

    def fit(partial):
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed)
        x, y = data.verifier_x, data.verifier_y
        model = MLPVerifier(shape, data.num_classes, cfg.hidden, cfg.dropout, x.mean().item(),
                            x.std().item()).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        g = torch.Generator().manual_seed(cfg.seed)
        model.train()
        for _ in range(cfg.epochs):
            order = torch.randperm(len(y), generator=g)
            for i in range(0, len(y), cfg.batch_size):
                idx = order[i:i + cfg.batch_size]
                loss = F.cross_entropy(model(x[idx].to(device)), y[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        model.eval()
        acc = (_batched(model, data.heldout_x.to(device)).argmax(1).cpu() == data.heldout_y)
        metrics = {"heldout_accuracy": acc.float().mean().item(), "n_train": len(y),
                   "source": data.verifier_source, "seconds": time.perf_counter() - t0}
        return model, None, metrics, {}

    return load_or_train(
        "verifier", to_dict(cfg), cfg.dataset, cfg, device=device, train=fit,
        build=lambda st: MLPVerifier(shape, data.num_classes, cfg.hidden, cfg.dropout),
        what=f"verifier for {cfg.dataset}", hint="it is trained when missing")


# ---------------------------------------------------------------------------------------------
# matching

def _unit(x: torch.Tensor) -> torch.Tensor:
    x = x.flatten(1).double()
    x = x - x.mean(1, keepdim=True)
    return x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)


def ncc_matrix(queries: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """NCC(q_i, p_j) for every pair, (n_queries, n_pool); a constant image has NCC 0 to all."""
    return (_unit(queries) @ _unit(pool).T).float()


def ssim_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-pair SSIM of images in [0, 1] (torchmetrics, Gaussian 11x11, sigma 1.5, data range 1)."""
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    if not len(a):
        return torch.zeros(0)
    return tm_ssim(a.float(), b.float(), data_range=1.0, reduction="none")


@dataclass
class Pools:
    """Per class: equally many training and held-out images for matching (indices into
    ``train_x`` / ``heldout_x``), held-out images outside the pool for baselines, and a small
    all-class pool from the verifier's images for the 1-NN judge."""

    match: dict
    spare: dict
    nn_x: torch.Tensor
    nn_y: torch.Tensor


def make_pools(data: JudgingData, seed: int = 0, nn_pool_per_class: int = 100) -> Pools:
    g = torch.Generator().manual_seed(seed)
    match, spare = {}, {}
    for c in range(data.num_classes):
        tr = torch.nonzero(data.train_y == c).flatten()
        te = torch.nonzero(data.heldout_y == c).flatten()
        te = te[torch.randperm(len(te), generator=g)]
        m = min(len(tr), len(te) // 2 if len(te) >= 2 else len(te))
        match[c] = (tr[torch.randperm(len(tr), generator=g)[:m]], te[:m])
        spare[c] = te[m:]
    nn_idx = []
    for c in range(data.num_classes):
        v = torch.nonzero(data.verifier_y == c).flatten()
        nn_idx.append(v[torch.randperm(len(v), generator=g)[:nn_pool_per_class]])
    nn_idx = torch.cat(nn_idx)
    return Pools(match, spare, data.verifier_x[nn_idx], data.verifier_y[nn_idx])


def _permutation_p(sims: dict, share: float, n: int, n_perm: int, seed: int) -> float:
    """``sims[c] = (S_train (q, m), S_test (q, m))``; p of share_perm >= share under random
    re-splits of the merged per-class pools."""
    if n == 0 or n_perm <= 0:
        return float("nan")
    g = torch.Generator().manual_seed(seed)
    wins = torch.zeros(n_perm)
    for s_tr, s_te in sims.values():
        s = torch.cat([s_tr, s_te], 1)                           # (q, 2m)
        m = s_tr.shape[1]
        for lo in range(0, n_perm, 100):
            k = min(100, n_perm - lo)
            perm = torch.argsort(torch.rand(k, 2 * m, generator=g), 1)    # (k, 2m)
            sp = s[:, perm]                                       # (q, k, 2m)
            a = sp[..., :m].max(-1).values
            b = sp[..., m:].max(-1).values
            wins[lo:lo + k] += (a > b).float().sum(0)
    perm_share = wins / n
    return float((1 + (perm_share >= share - 1e-12).sum().item()) / (1 + n_perm))


def image_metrics(images: torch.Tensor, labels: torch.Tensor, data: JudgingData, pools: Pools, *,
                  attacked: nn.Module, verifier: nn.Module, device="cpu", seed: int = 0,
                  n_permutations: int = 1000, n_bootstrap: int = 1000, with_matches=False) -> dict:
    """Every metric of the module docstring for one image set (float images in [0, 1])."""
    images = images.float().clamp(0, 1)
    n = len(images)
    out: dict = {"n_images": n}
    with torch.no_grad():
        logits = _batched(attacked, images.to(device)).cpu()
        vlog = _batched(verifier, images.to(device)).cpu()
    out["label_accuracy"] = (logits.argmax(1) == labels).float().mean().item()
    out["label_confidence"] = logits.softmax(1)[torch.arange(n), labels].mean().item()
    out["verifier_accuracy"] = (vlog.argmax(1) == labels).float().mean().item()
    out["nn_accuracy"] = (pools.nn_y[ncc_matrix(images, pools.nn_x).argmax(1)] == labels
                          ).float().mean().item()
    n_tr, n_te = torch.zeros(n), torch.zeros(n)
    i_tr, i_te = torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long)
    sims = {}
    for c, (tr, te) in pools.match.items():
        q = torch.nonzero(labels == c).flatten()
        if not len(q) or not len(tr):
            continue
        s_tr, s_te = ncc_matrix(images[q], data.train_x[tr]), ncc_matrix(images[q], data.heldout_x[te])
        sims[c] = (s_tr, s_te)
        v, j = s_tr.max(1)
        w, k = s_te.max(1)
        n_tr[q], n_te[q], i_tr[q], i_te[q] = v, w, tr[j], te[k]
    ss_tr, ss_te = ssim_pairs(images, data.train_x[i_tr]), ssim_pairs(images, data.heldout_x[i_te])
    out.update(ncc_train=n_tr.mean().item(), ncc_test=n_te.mean().item(),
               ssim_train=ss_tr.mean().item(), ssim_test=ss_te.mean().item())
    closer = (n_tr > n_te).float()
    share = closer.mean().item()
    g = torch.Generator().manual_seed(seed)
    boots = closer[torch.randint(0, n, (n_bootstrap, n), generator=g)].mean(1) if n else closer
    out["train_closer"] = {
        "share": share, "lean": share - 0.5,
        "ci95": [torch.quantile(boots, 0.025).item(), torch.quantile(boots, 0.975).item()] if n
        else [float("nan")] * 2,
        "p_value": _permutation_p(sims, share, n, n_permutations, seed),
        "ncc_gap": (n_tr - n_te).mean().item(), "n_permutations": n_permutations}
    if with_matches:
        out["_matches"] = {"train_index": i_tr, "test_index": i_te, "ncc_train": n_tr,
                           "ncc_test": n_te, "ssim_train": ss_tr, "ssim_test": ss_te}
    return out


def training_like(m: dict) -> bool:
    """The README's verdict rule: verifier_accuracy >= 0.5 and a lean towards training images
    with permutation p < 0.05."""
    tc = m["train_closer"]
    return bool(m["verifier_accuracy"] >= TRAINING_LIKE["verifier_accuracy"]
                and tc["share"] > 0.5 and tc["p_value"] < TRAINING_LIKE["p_value"])


def baseline_images(data: JudgingData, pools: Pools, n_per_class: int, seed: int = 0) -> dict:
    """``{name: (images, labels)}`` for every name in ``BASELINES`` (see the module docstring)."""
    g = torch.Generator().manual_seed(seed + 7)
    shape = tuple(data.train_x.shape[1:])
    labels = torch.arange(data.num_classes).repeat_interleave(n_per_class)
    out = {"all_black": (torch.zeros(len(labels), *shape), labels),
           "noise": (torch.rand(len(labels), *shape, generator=g), labels)}
    means, real, wrong = [], [], []
    for c in range(data.num_classes):
        sp = pools.spare[c]
        if not len(sp):
            raise ConfigError(f"class {c} has no held-out images outside the matching pool; "
                              f"the baselines need some (use a larger held-out split)")
        means.append(data.heldout_x[sp].mean(0, keepdim=True).expand(n_per_class, *shape))
        real.append(data.heldout_x[sp[torch.randint(0, len(sp), (n_per_class,), generator=g)]])
    for c in range(data.num_classes):
        other = (c + 1 + torch.randint(0, data.num_classes - 1, (n_per_class,), generator=g)) \
            % data.num_classes if data.num_classes > 1 else torch.full((n_per_class,), c)
        picks = []
        for o in other.tolist():
            sp = pools.spare[o]
            picks.append(sp[torch.randint(0, len(sp), (1,), generator=g)])
        wrong.append(data.heldout_x[torch.cat(picks)])
    out["class_mean"] = (torch.cat(means), labels)
    out["wrong_class"] = (torch.cat(wrong), labels)
    out["real_test"] = (torch.cat(real), labels)
    return {k: out[k] for k in BASELINES}


@dataclass
class Judge:
    """Everything needed to score image sets against one attacked classifier."""

    data: JudgingData
    pools: Pools
    attacked: nn.Module
    verifier: nn.Module
    verifier_info: dict
    device: str = "cpu"
    seed: int = 0
    n_permutations: int = 1000

    def metrics(self, images, labels, with_matches=False) -> dict:
        return image_metrics(images, labels, self.data, self.pools, attacked=self.attacked,
                             verifier=self.verifier, device=self.device, seed=self.seed,
                             n_permutations=self.n_permutations, with_matches=with_matches)

    def baselines(self, n_per_class: int) -> dict:
        return {k: self.metrics(x, y) for k, (x, y) in
                baseline_images(self.data, self.pools, n_per_class, self.seed).items()}

    def describe(self) -> dict:
        return {"verifier": "MLP " + "-".join(str(h) for h in (
            int(np.prod(self.data.train_x.shape[1:])), *VerifierConfig.hidden,
            self.data.num_classes)), "verifier_trained_on": self.data.verifier_source,
            "verifier_heldout_accuracy": self.verifier_info.get("heldout_accuracy"),
            "nn_judge": f"1-NN by NCC over {len(self.pools.nn_y)} verifier-pool images of every "
                        f"class", "ssim": "torchmetrics, Gaussian 11x11, sigma 1.5, data range 1",
            "match_pool_per_class": {int(c): len(v[0]) for c, v in self.pools.match.items()},
            "n_permutations": self.n_permutations}


def make_judge(attacked: nn.Module, dataset: str, train_size: int | None, *, attacked_seed=0,
               device="cpu", seed: int = 0, n_permutations: int = 1000) -> Judge:
    """A ``Judge`` for an attacked classifier trained on ``balanced_subset(train, train_size,
    attacked_seed)`` of ``dataset``; trains (and caches) the verifier when missing."""
    data = judging_data(dataset, train_size, attacked_seed)
    cfg = VerifierConfig(dataset=dataset, attacked_train_size=train_size,
                         attacked_seed=attacked_seed)
    ver = get_verifier(data, cfg, device=device)
    verifier, info = ver.model, ver.metrics
    return Judge(data, make_pools(data, seed), attacked.eval(), verifier, info, device, seed,
                 n_permutations)


def format_metrics_row(name: str, m: dict) -> str:
    tc = m["train_closer"]
    return (f"{name:>24s} {m['label_accuracy']:6.3f} {m['verifier_accuracy']:6.3f} "
            f"{m['nn_accuracy']:6.3f} {m['ncc_train']:6.3f} {m['ncc_test']:6.3f} "
            f"{m['ssim_train']:6.3f} {m['ssim_test']:6.3f} {tc['share']:6.3f} "
            f"[{tc['ci95'][0]:.2f},{tc['ci95'][1]:.2f}] {tc['p_value']:6.3f}")


METRICS_HEADER = (f"{'':>24s} {'label':>6s} {'verif':>6s} {'1-NN':>6s} {'NCCtr':>6s} "
                  f"{'NCCte':>6s} {'SSIMtr':>6s} {'SSIMte':>6s} {'closer':>6s} {'95% CI':>11s} "
                  f"{'p':>6s}")
