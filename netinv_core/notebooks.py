"""Run the figure notebooks with papermill, checking their parameters first.

    python -m netinv_core.notebooks run notebooks/fig2_inversion.ipynb -p profile smoke \
        [-p figures_dir /tmp/figs] [--output executed.ipynb]

papermill itself only warns about a parameter the notebook does not have; here a wrong name or a
value of the wrong type is an error before any cell runs, naming the notebook's parameters.
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
                                    "gammas": [0.0, 10.0], "sae_epochs": 2, "train_missing": True},
    "sec52_ood.ipynb": {"profile": "smoke", "seeds": [0, 1]},
    "fig5_reconstruction.ipynb": {"profile": "smoke", "train_sizes": {"digits": [300]}},
    "ablation.ipynb": {"profile": "smoke", "seeds": [0, 1],
                       "factors": {"conditioning": ["label", "vector_matrix"],
                                   "loss_off": ["gamma"]}},
    "explore_inversion.ipynb": {"profile": "smoke", "dataset": "digits", "steps": 5, "gamma": 3},
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


def check_parameters(path, params: dict) -> None:
    """Raise ``ConfigError`` for a parameter the notebook lacks or a value of the wrong type."""
    known = notebook_parameters(path)
    for name, value in params.items():
        if name not in known:
            raise ConfigError(f"{Path(path).name} has no parameter {name!r}; its parameters are "
                              f"{sorted(known)}")
        if not _type_ok(value, known[name]):
            raise ConfigError(f"{Path(path).name}: parameter {name}={value!r} is a "
                              f"{type(value).__name__}, expected {type(known[name]).__name__} "
                              f"like its default {known[name]!r}")


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
    try:
        if args.figures_dir and "figures_dir" in notebook_parameters(args.notebook):
            params.setdefault("figures_dir", str(Path(args.figures_dir).resolve()))
        out = run_notebook(args.notebook, params, args.output)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
