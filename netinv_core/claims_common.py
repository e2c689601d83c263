"""What the claim rules share (``netinv_core.claims``): the thresholds, the paper's OOD table,
``Source`` (reads ``figures/*.json`` through JSON pointers and records each pointer a claim read),
the verdict arithmetic (effect size, ``diversity_verdict``, ``combine``) and ``per_dataset``, the
loop most rules are: one verdict per dataset, combined.

The rules themselves are in ``claims_rules_design`` (Sections 3-4), ``claims_rules_applications``
(Sections 5.1-5.2) and ``claims_rules_recon`` (Section 5.3); the thresholds are explained in the
docstring of ``netinv_core.claims``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from .errors import ClaimSourceError

REPO = Path(__file__).resolve().parents[1]
VERDICTS = ("supported", "partly", "refuted", "inconclusive", "not run")
MIN_SEEDS = 3
EFFECT_CLEAR, EFFECT_NONE = 2.0, 1.0
INVERSION_MIN = 0.95
CONFIDENT_MIN = 0.9
AGREEMENT_UNLIKE, NN_RATIO_UNLIKE = 0.5, 1.5
OOD_MARGIN = 5.0
OOD_BACKBONE_MIN = 85.0   # issue 12: a CIFAR-10 garbage model below it says little

# The paper's OOD table (docs/choices.md, from 2505.23448 Table 1): percent of the OOD test set sent to
# the garbage class; the diagonal is in-distribution accuracy.
PAPER_OOD = {
    "mnist": {"mnist": 99.1, "fashionmnist": 89.5, "svhn": 99.1, "cifar10": 99.4},
    "fashionmnist": {"mnist": 85.2, "fashionmnist": 92.6, "svhn": 96.3, "cifar10": 95.7},
    "svhn": {"mnist": 93.6, "fashionmnist": 94.9, "svhn": 89.4, "cifar10": 87.6},
    "cifar10": {"mnist": 97.8, "fashionmnist": 95.7, "svhn": 88.2, "cifar10": 85.5},
}
NAMES = {"mnist": "MNIST", "fashionmnist": "FMNIST", "cifar10": "CIFAR-10", "svhn": "SVHN"}
DIVERSITY_DATASETS = ("mnist", "fashionmnist")


def notebook_for(json_name: str, repo: Path = REPO) -> str:
    """The command that writes ``json_name``: the notebook that saves it (``out / "name"``), else
    the first that names it, else ``./run_all.sh`` (notebooks may be renamed: found, not listed)."""
    texts = {}
    for nb in sorted((repo / "notebooks").glob("*.ipynb")):
        try:
            texts[nb.name] = nb.read_text()
        except OSError:
            continue
    for test in (lambda t: f'/ \\"{json_name}\\"' in t, lambda t: json_name in t):
        for name, text in texts.items():
            if test(text):
                return f"python -m netinv_core.notebooks run notebooks/{name} -p profile quick"
    return "./run_all.sh"


class NotRecorded(Exception):
    """An optional experiment block is absent: the row becomes ``not run`` with this reason."""


class Source:
    """Reads figure JSONs for one claim and remembers every pointer it read."""

    def __init__(self, figures: Path, cache: dict, claim_id: str):
        self.figures, self.cache, self.claim = figures, cache, claim_id
        self.read: list[str] = []

    def _load(self, name: str):
        if name not in self.cache:
            path = self.figures / name
            if not path.exists():
                raise ClaimSourceError(
                    f"claim {self.claim!r}: its source file {path} does not exist; regenerate it "
                    f"with `{notebook_for(name)}` (or ./run_all.sh), then rerun "
                    f"`python -m netinv_core.claims`")
            self.cache[name] = json.loads(path.read_text())
        return self.cache[name]

    def require(self, pointer: str, what: str) -> None:
        """Mark the row ``not run`` (``NotRecorded``) when the experiment block at ``pointer`` is
        absent from an existing file (a missing file is still a ``ClaimSourceError``)."""
        name = pointer.partition("#")[0]
        self._load(name)
        if not self.has(pointer):
            raise NotRecorded(f"{what} is not recorded in {name} ({pointer.partition('#')[2]}); "
                              f"regenerate it with `{notebook_for(name)}`")

    def has(self, pointer: str) -> bool:
        try:
            self._resolve(pointer)
            return True
        except ClaimSourceError:
            return False

    def _resolve(self, pointer: str):
        name, _, path = pointer.partition("#")
        obj = self._load(name)
        done = ""
        for key in [k for k in path.split("/") if k]:
            key = key.replace("~1", "/").replace("~0", "~")
            if isinstance(obj, list) and key.isdigit() and int(key) < len(obj):
                obj = obj[int(key)]
            elif isinstance(obj, dict) and key in obj:
                obj = obj[key]
            else:
                have = (sorted(obj)[:12] if isinstance(obj, dict)
                        else f"a list of {len(obj)}" if isinstance(obj, list) else type(obj).__name__)
                raise ClaimSourceError(
                    f"claim {self.claim!r}: {self.figures / name} has no {key!r} at "
                    f"{done or '/'} (there: {have}); the claim reads {pointer}. Regenerate the "
                    f"file with `{notebook_for(name)}`, or update the claim's rule in "
                    f"netinv_core/claims_rules_*.py if the file's layout changed")
            done += "/" + key
        return obj

    def get(self, pointer: str):
        value = self._resolve(pointer)
        if pointer not in self.read:
            self.read.append(pointer)
        return value

    def find(self, pointer: str, **match) -> str:
        """The pointer of the element of the list at ``pointer`` whose fields equal ``match``."""
        rows = self._resolve(pointer)
        for i, row in enumerate(rows if isinstance(rows, list) else []):
            if all(row.get(k) == v for k, v in match.items()):
                return f"{pointer}/{i}"
        name = pointer.partition("#")[0]
        raise ClaimSourceError(f"claim {self.claim!r}: no element with {match} in {pointer} of "
                               f"{self.figures / name}; regenerate it with `{notebook_for(name)}`")


def pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def num(x, nd=3) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


def effect_size(a_mean, a_std, b_mean, b_std) -> float:
    """d = (b_mean - a_mean) / sqrt((a_std^2 + b_std^2) / 2): how much lower A is, in seed SDs."""
    pooled = math.sqrt((a_std ** 2 + b_std ** 2) / 2)
    diff = b_mean - a_mean
    return math.copysign(math.inf, diff) if pooled == 0 and diff else (diff / pooled if pooled else 0.0)


def diversity_verdict(ds: list[float]) -> str:
    """supported if every d >= EFFECT_CLEAR, refuted if every d < EFFECT_NONE, else partly."""
    if all(d >= EFFECT_CLEAR for d in ds):
        return "supported"
    if all(d < EFFECT_NONE for d in ds):
        return "refuted"
    return "partly"


def stronger(a: str, b: str) -> bool:
    """Whether verdict ``a`` says more for the claim than ``b`` (order of ``VERDICTS``)."""
    return VERDICTS.index(a) < VERDICTS.index(b)


def combine(verdicts: list[str]) -> str:
    """One verdict from per-dataset ones: all equal -> that one; any support -> partly;
    all refuted or inconclusive -> refuted if any refuted."""
    vs = [v for v in verdicts if v != "not run"]
    if not vs:
        return "not run"
    if len(set(vs)) == 1:
        return vs[0]
    if any(v in ("supported", "partly") for v in vs):
        return "partly"
    return "refuted" if "refuted" in vs else "inconclusive"


def absent(src, pointer: str, parts: list, ds: str) -> bool:
    """True (and a note in ``parts``) when dataset ``ds`` has no block at ``pointer``; the claim
    then uses the datasets that have it and is ``not run`` only when none has."""
    src._load(pointer.partition("#")[0])
    if src.has(pointer):
        return False
    parts.append(f"{NAMES.get(ds, ds)}: not recorded yet")
    return True


def none_recorded(per_ds, what, pointer):
    if not per_ds:
        name = pointer.partition("#")[0]
        raise NotRecorded(f"{what} is not recorded in {name} for any dataset; regenerate it with "
                          f"`{notebook_for(name)}`")


def per_dataset(src, rule, datasets=DIVERSITY_DATASETS, *, needs: str | None = None,
                what: str = "", empty: str | None = None):
    """The loop most claims are: ``rule(ds)`` gives ``(verdict, seeds, evidence)`` for one
    dataset, ``(None, None, evidence)`` for evidence without a verdict, or None to leave the
    dataset out; the claim is ``(combine(verdicts), evidence joined by "; ", fewest seeds)``.

    ``needs``: a pointer with ``{ds}``; a dataset without that block is noted "not recorded yet"
    and left out, and the claim is ``not run`` when no dataset has it (``what`` names the block).
    ``empty``: the ``not run`` reason when no dataset gave a verdict."""
    parts, per_ds, seeds, seen = [], [], [], []
    for ds in datasets:
        if needs and absent(src, needs.format(ds=ds), parts, ds):
            continue
        seen.append(ds)
        row = rule(ds)
        if row is None:
            continue
        verdict, n, evidence = row
        if verdict is not None:
            per_ds.append(verdict)
            seeds.append(n)
        parts.append(evidence)
    if needs:
        none_recorded(seen, what, needs)
    if not per_ds:
        raise NotRecorded(empty or "; ".join(parts) or "no dataset gave a verdict")
    return combine(per_ds), "; ".join(parts), min(seeds)
