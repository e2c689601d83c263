"""Show that a refactor changed no recorded number: run every notebook with the smoke profile on
two commits (each with a fresh checkpoint cache) and compare the JSON files they write.

    python scripts/smoke_json_check.py --base 1ec69ae            # base commit vs this worktree
    python scripts/smoke_json_check.py --compare DIR_A DIR_B     # two finished runs

``--base`` checks the base commit out into a temporary git worktree, runs ``run_smoke`` there and
here (``--out`` keeps the runs; an existing run folder is reused, so a long run can be resumed
by rerunning the same command), and exits 1 when any JSON value differs. Values are compared
exactly (floats too): the runs are seeded and on one machine they are bit-identical. Keys that
hold wall-clock time or the machine are left out (``IGNORED``); everything else must match.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# wall-clock time (every key naming seconds: seconds, generator_seconds, seconds_to_95_mean, ...),
# thread counts and device names: the only fields allowed to differ
IGNORED = re.compile(r"seconds|^torch_threads$|^device$|^ratio_reconstruction_to_inversion$")
EXPLORE_PARAMS = ["-p", "dataset", "digits", "-p", "steps", "5"]


def run_smoke(repo: Path, out: Path, python: str = sys.executable) -> None:
    """Every notebook of ``repo`` (its ``netinv_core.notebooks list``) with ``profile=smoke``,
    figures and JSON into ``out/figs``, a fresh cache in ``out/cache``; skips a finished run."""
    done = out / "DONE"
    if done.exists():
        return
    env = dict(os.environ, PYTHONPATH=str(repo), NETINV_CACHE=str(out / "cache"),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    listed = subprocess.run([python, "-m", "netinv_core.notebooks", "list"], cwd=repo, env=env,
                            check=True, capture_output=True, text=True).stdout.split()
    (out / "figs").mkdir(parents=True, exist_ok=True)
    for nb in listed:
        name = Path(nb).stem
        params = ["-p", "profile", "smoke", "--figures-dir", str(out / "figs")]
        if name == "explore_inversion":
            params += EXPLORE_PARAMS
        print(f"[smoke_json_check] {repo}: {name}", file=sys.stderr, flush=True)
        subprocess.run([python, "-m", "netinv_core.notebooks", "run", nb, *params, "--output",
                        str(out / "executed" / f"{name}.ipynb")], cwd=repo, env=env, check=True)
    done.write_text("ok\n")


def diff(a, b, path="") -> list[str]:
    """Every place where ``a`` and ``b`` differ, skipping keys matched by ``IGNORED``."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if IGNORED.search(k):
                continue
            if k not in a or k not in b:
                out.append(f"{path}/{k}: only in {'after' if k in b else 'before'}")
            else:
                out += diff(a[k], b[k], f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def compare(before: Path, after: Path) -> int:
    names = sorted({p.name for p in before.glob("*.json")} | {p.name for p in after.glob("*.json")})
    if not names:
        print(f"no JSON files in {before} or {after}", file=sys.stderr)
        return 1
    bad = 0
    for name in names:
        a, b = before / name, after / name
        if not (a.exists() and b.exists()):
            print(f"{name}: only in {'after' if b.exists() else 'before'}")
            bad += 1
            continue
        d = diff(json.loads(a.read_text()), json.loads(b.read_text()))
        print(f"{name}: {'identical' if not d else f'{len(d)} differences'}")
        for line in d[:20]:
            print("   ", line)
        bad += bool(d)
    print(f"ignored keys: {IGNORED.pattern}")
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", help="commit to compare this worktree against")
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"),
                    help="compare the figs/ of two finished runs (or two folders of JSON)")
    ap.add_argument("--out", default=None, help="where the runs go (default: a temp folder)")
    args = ap.parse_args(argv)
    if args.compare:
        a, b = (Path(p) / "figs" if (Path(p) / "figs").is_dir() else Path(p) for p in args.compare)
        return compare(a, b)
    if not args.base:
        ap.error("give --base COMMIT or --compare BEFORE AFTER")
    out = Path(args.out or tempfile.mkdtemp(prefix="netinv-smoke-check-"))
    base_tree = out / "base-tree"
    if not base_tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), args.base],
                       cwd=REPO, check=True)
    run_smoke(base_tree, out / "before")
    run_smoke(REPO, out / "after")
    return compare(out / "before" / "figs", out / "after" / "figs")


if __name__ == "__main__":
    sys.exit(main())
