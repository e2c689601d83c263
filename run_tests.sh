#!/usr/bin/env bash
# Run the unit tests and the notebook smoke tests (smoke profile, CPU, no network).
# Sets up ./.venv first when no suitable environment is active. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/env.sh
echo "[netinv] python: $NETINV_PY; NETINV_DATA=${NETINV_DATA:-<unset>}" >&2
for arg in "$@"; do  # test files or node ids given: run just those (no nbval)
  if [ -e "${arg%%::*}" ] && [ "${arg#-}" = "$arg" ]; then exec "$NETINV_PY" -m pytest -q "$@"; fi
done
# The notebook smoke tests go through nbval: copies of every notebook, parameterised for the smoke
# profile (netinv_core.notebooks.SMOKE_PARAMS), run cell by cell (--nbval-lax: stored outputs are
# not compared; the notebooks are committed without them). tests/test_notebooks.py then checks
# the numbers and figures these runs wrote under NETINV_SMOKE_OUT instead of running them again.
smoke="$(mktemp -d)"
trap 'rm -rf "$smoke"' EXIT
"$NETINV_PY" -m netinv_core.notebooks smoke-copies "$smoke/notebooks" >/dev/null
export NETINV_SMOKE_OUT="$smoke/notebooks/out"
export NETINV_CACHE="${NETINV_CACHE:-$smoke/cache}"   # the notebooks' kernels train into this
"$NETINV_PY" -m pytest -q --nbval-lax --nbval-current-env "$smoke/notebooks" tests "$@"
