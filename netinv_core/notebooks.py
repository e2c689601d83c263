"""Run the figure notebooks with papermill, checking their parameters first.

    python -m netinv_core.notebooks run notebooks/fig2_inversion.ipynb -p profile smoke \
        [-p figures_dir /tmp/figs] [--output executed.ipynb]

papermill itself only warns about a parameter the notebook does not have; here a wrong name, a
value of the wrong type or a value out of range (``-p dataset nonsense``, ``-p steps -5``,
``-p alpha 1e999``) is an error before any cell runs, naming what to pass instead. An error that a
cell raises while running is printed as one line (the executed copy keeps the traceback).
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from .errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
# run_all.sh order: every paper figure, then the exploration notebook
NOTEBOOKS = ("fig2_inversion.ipynb", "fig3_interpretability.ipynb", "sec52_ood.ipynb",
             "fig5_reconstruction.ipynb", "ablation.ipynb", "explore_inversion.ipynb")


# The smoke tests' parameters per notebook (profile smoke, small budgets): run_tests.sh executes
# copies parameterised with these through nbval, and tests/test_notebooks.py checks what they wrote.
SMOKE_PARAMS = {
    "fig2_inversion.ipynb": {"profile": "smoke"},
    "fig3_interpretability.ipynb": {"profile": "smoke", "n_samples": 1000, "embed_samples": 200,
                                    "gammas": [0.0, 10.0], "sae_epochs": 2, "train_missing": True,
                                    "n_null": 3},
    "sec52_ood.ipynb": {"profile": "smoke", "seeds": [0, 1]},
    "fig5_reconstruction.ipynb": {"profile": "smoke", "train_sizes": {"digits": [300]}},
    "ablation.ipynb": {"profile": "smoke", "seeds": [0, 1],
                       "factors": {"conditioning": ["label", "vector_matrix"],
                                   "loss_off": ["gamma"]}},
    "explore_inversion.ipynb": {"profile": "smoke", "gamma": 3},
}


def smoke_copies(folder) -> list[Path]:
    """Write every notebook, parameterised with ``SMOKE_PARAMS`` (figures into
    ``folder/out/NAME/``), to ``folder`` without running it; returns the copies' paths."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    folder = Path(folder).resolve()
    out = []
    for name in NOTEBOOKS:
        params = dict(SMOKE_PARAMS[name])
        if "figures_dir" in notebook_parameters(NOTEBOOK_DIR / name):
            params["figures_dir"] = str(folder / "out" / Path(name).stem)
        check_parameters(NOTEBOOK_DIR / name, params)
        nb = parameterize_notebook(load_notebook_node(str(NOTEBOOK_DIR / name)), params)
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / name)
        out.append(folder / name)
    return out


def notebook_parameters(path) -> dict:
    """``{name: default}`` of the notebook's cell tagged ``parameters`` (defaults are literals)."""
    import papermill

    if not Path(path).is_file():
        raise ConfigError(f"no notebook at {path}; the notebooks are: "
                          + ", ".join(str(NOTEBOOK_DIR / n) for n in NOTEBOOKS))
    params = papermill.inspect_notebook(str(path))
    if not params:
        raise ConfigError(f"{path} has no cell tagged 'parameters'")
    return {name: ast.literal_eval(p["default"]) for name, p in params.items()}


def _type_ok(value, default) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def _seeds(name, v):
    from .checks import check_int
    if not isinstance(v, (list, tuple)) or not v:
        raise ConfigError(f"{name}={v!r} must be a non-empty list of seeds, e.g. [0, 1, 2]")
    for s in v:
        check_int(f"a seed in {name}", s, 0)


def _per_dataset(name, v, check_item):
    from .checks import check_dataset
    for k, items in v.items():
        check_dataset(k)
        if not isinstance(items, (list, tuple)) or not items:
            raise ConfigError(f"{name}[{k!r}]={items!r} must be a non-empty list")
        for item in items:
            check_item(item)


def _value_checks():
    """``{parameter name: check(name, value)}`` for every notebook parameter (run_all.sh and the
    tests pass any of them); each check raises ``ConfigError`` with what to pass instead."""
    from .ablation import parse_spec
    from .checks import check_conditioning, check_dataset, check_int, check_rate, check_weight
    from .config import get_profile

    def datasets(name, v):
        for d in v:
            check_dataset(d)

    def attempts(name, v):
        if v:
            from .recon_attempts import check_names
            check_names(v)

    def positive(name, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf"):
            raise ConfigError(f"{name}={v!r} must be a finite number > 0")

    return {
        "profile": lambda n, v: get_profile(v),
        "dataset": lambda n, v: v == "" or check_dataset(v),  # "": the profile's first
        "datasets": datasets, "train_sets": datasets,
        **{w: check_weight for w in ("alpha", "beta", "gamma", "delta")},
        "gammas": lambda n, v: [check_weight("gamma", g) for g in v],
        "conditioning": lambda n, v: check_conditioning(v),
        "dropout": lambda n, v: check_rate(n, v),
        # 0 = the profile's value
        **{k: lambda n, v: check_int(n, v, 0, " (0 = the profile's value)")
           for k in ("steps", "batch_size", "width", "n_generators")},
        "seed": lambda n, v: check_int(n, v, 0),
        "samples_per_generator": lambda n, v: check_int(n, v, 1),
        "n_samples": lambda n, v: check_int(n, v, 1000, " (the accuracy needs at least 1000)"),
        "embed_samples": lambda n, v: check_int(n, v, 10),
        "sae_epochs": lambda n, v: check_int(n, v, 1),
        "perplexity": positive,
        "n_null": lambda n, v: check_int(n, v, 2, " (the null's 95th percentile needs draws)"),
        "fair": lambda n, v: None,          # a bool; the type check is enough
        "probe_datasets": lambda n, v: [check_dataset(d) for d in v],
        "probe_gammas": lambda n, v: [check_weight("gamma", g) for g in v],
        "seeds": _seeds,
        "seeds_per_set": lambda n, v: _per_dataset(n, v, lambda s: check_int("seed", s, 0)),
        "train_sizes": lambda n, v: _per_dataset(n, v, lambda s: check_int("train size", s, 1)),
        "factors": lambda n, v: parse_spec(v or None),
        "attempts": attempts,
        # free-form paths and switches: their type is checked above
        **{k: lambda n, v: None for k in ("train_missing", "figures_dir", "attempts_file",
                                          "search_storage", "search_note", "plain_inversion")},
    }


def check_parameters(path, params: dict) -> None:
    """Raise ``ConfigError`` for a parameter the notebook lacks, a value of the wrong type or a
    value out of range (checked by the same functions the package uses)."""
    known = notebook_parameters(path)
    checks = _value_checks()
    for name, value in params.items():
        if name not in known:
            raise ConfigError(f"{Path(path).name} has no parameter {name!r}; its parameters are "
                              f"{sorted(known)}")
        if not _type_ok(value, known[name]):
            raise ConfigError(f"{Path(path).name}: parameter {name}={value!r} is a "
                              f"{type(value).__name__}, expected {type(known[name]).__name__} "
                              f"like its default {known[name]!r}")
        try:
            checks[name](name, value)
        except ConfigError as e:
            raise ConfigError(f"{Path(path).name}: parameter {name}: {e}") from None


def kernel_env(environ=None) -> dict:
    """The environment the notebook's kernel gets: ``environ`` (default ``os.environ``) with
    relative ``NETINV_DATA`` / ``NETINV_CACHE`` made absolute (from the caller's working
    directory), since the kernel runs in the notebook's folder. The caller's own environment is
    not changed."""
    import os

    env = dict(os.environ if environ is None else environ)
    for var in ("NETINV_DATA", "NETINV_CACHE"):
        if env.get(var):
            env[var] = str(Path(env[var]).expanduser().resolve())
    return env


def _kernel_manager_class(env: dict):
    """A jupyter kernel manager that starts its kernel with ``env``."""
    from jupyter_client import AsyncKernelManager

    class KernelManager(AsyncKernelManager):
        netinv_env = env

        async def start_kernel(self, **kw):
            return await super().start_kernel(**{**kw, "env": dict(self.netinv_env)})

    return KernelManager


def run_notebook(path, params: dict | None = None, output=None, progress: bool = True):
    """Check ``params``, then execute ``path`` with papermill (cwd = the notebook's folder).

    The executed copy goes to ``output`` (default ``notebooks/executed/NAME``); returns its path.
    The kernel gets ``kernel_env()``: relative data and cache paths made absolute.
    """
    import papermill

    path = Path(path).resolve()
    params = dict(params or {})
    check_parameters(path, params)
    output = Path(output) if output else path.parent / "executed" / path.name
    output.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(path), str(output), parameters=params, cwd=str(path.parent),
                               progress_bar=progress, kernel_name="python3",
                               kernel_manager_class=_kernel_manager_class(kernel_env()))
    return output


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netinv_core.notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="execute one notebook")
    run.add_argument("notebook")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"), help="a Python literal, or a plain string")
    run.add_argument("--output", default=None)
    run.add_argument("--figures-dir", default=None,
                     help="sets the notebook's figures_dir parameter, if it has one")
    sub.add_parser("list", help="the notebooks run_all.sh runs, in order")
    sc = sub.add_parser("smoke-copies", help="write smoke-parameterised copies (for nbval)")
    sc.add_argument("folder")
    args = parser.parse_args(argv)
    if args.cmd == "list":
        print("\n".join(str(NOTEBOOK_DIR / n) for n in NOTEBOOKS))
        return 0
    if args.cmd == "smoke-copies":
        print("\n".join(map(str, smoke_copies(args.folder))))
        return 0
    params = {k: _literal(v) for k, v in args.parameter}
    from papermill.exceptions import PapermillExecutionError

    from .errors import NetinvError
    try:
        if args.figures_dir and "figures_dir" in notebook_parameters(args.notebook):
            params.setdefault("figures_dir", str(Path(args.figures_dir).resolve()))
        out = run_notebook(args.notebook, params, args.output)
    except NetinvError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except PapermillExecutionError as e:
        # one line: the netinv message (or the exception) and where the full traceback is
        where = args.output or Path(args.notebook).resolve().parent / "executed" / Path(args.notebook).name
        print(f"error: {Path(args.notebook).name}, cell {e.exec_count}: {e.ename}: "
              f"{' '.join(str(e.evalue).split())} (traceback in {where})", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
