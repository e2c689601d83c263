#!/usr/bin/env bash
# Run the unit tests and the notebook smoke tests (smoke profile, CPU, no network).
# Sets up ./.venv first when no suitable environment is active. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/env.sh
echo "[netinv] python: $NETINV_PY; NETINV_DATA=${NETINV_DATA:-<unset>}" >&2
exec "$NETINV_PY" -m pytest -q "$@"
