# Sourced by run_all.sh, run_tests.sh and .ci/run: pick or build a Python environment for netinv.
# - If the active python already has netinv (installed) and its requirements, use it (e.g. the
#   conda environment of environment.yml).
# - Otherwise create ./.venv with pip and install what is needed (torch pinned to the release this
#   project is tested with), then netinv itself in editable mode with its test and notebook extras.
# Sets NETINV_PY. Also points NETINV_DATA at ../shared/data when it exists and NETINV_DATA is unset.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NETINV_TORCH_PINS=${NETINV_TORCH_PINS:-"torch==2.14.1 torchvision==0.29.1"}

_netinv_ready() {
  "$1" - <<'PY' >/dev/null 2>&1
import importlib.metadata as m
for pkg in ("netinv", "torch", "torchvision", "papermill", "nbval", "pytest", "ipywidgets", "ipykernel", "umap-learn", "seaborn"):
    m.version(pkg)
import torch, torchvision, netinv_core
PY
}

if [ -z "${NETINV_FORCE_VENV:-}" ] && command -v python >/dev/null 2>&1 && _netinv_ready python \
   && [ "$(python -c 'import sys; print(sys.prefix)')" != "$REPO_ROOT/.venv" ]; then
  NETINV_PY=python
else
  stamp="$REPO_ROOT/.venv/.netinv-installed"
  want="$(cat "$REPO_ROOT/pyproject.toml" 2>/dev/null | sha256sum | cut -c1-16) $NETINV_TORCH_PINS"
  if [ ! -x "$REPO_ROOT/.venv/bin/python" ]; then
    echo "[netinv] creating $REPO_ROOT/.venv" >&2
    python3 -m venv "$REPO_ROOT/.venv"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! _netinv_ready "$REPO_ROOT/.venv/bin/python"; then
    echo "[netinv] installing requirements into .venv (torch takes a minute or two)" >&2
    "$REPO_ROOT/.venv/bin/python" -m pip install -q --upgrade pip >&2
    # shellcheck disable=SC2086
    "$REPO_ROOT/.venv/bin/python" -m pip install -q $NETINV_TORCH_PINS >&2
    "$REPO_ROOT/.venv/bin/python" -m pip install -q -e "$REPO_ROOT[dev,notebooks]" >&2
    echo "$want" > "$stamp"
  fi
  NETINV_PY="$REPO_ROOT/.venv/bin/python"
fi
export NETINV_PY
if [ -z "${NETINV_DATA:-}" ] && [ -d "$REPO_ROOT/../shared/data" ]; then
  NETINV_DATA="$(cd "$REPO_ROOT/../shared/data" && pwd)"
  export NETINV_DATA
fi
export MPLBACKEND=${MPLBACKEND:-Agg}
