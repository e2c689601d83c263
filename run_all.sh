#!/usr/bin/env bash
# Regenerate every figure: runs each notebook through papermill, in order, with one profile.
#   ./run_all.sh                 # paper profile on a GPU box, quick profile when no GPU is visible
#   PROFILE=quick ./run_all.sh   # a laptop CPU, real data, minutes per notebook
#   PROFILE=smoke ./run_all.sh   # seconds, scikit-learn's digits (figures go to FIGURES_DIR)
# Figures and the recorded numbers land in FIGURES_DIR (default figures/); executed copies of the
# notebooks in notebooks/executed/. Sets up ./.venv first when no suitable environment is active.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/env.sh
if [ -z "${PROFILE:-}" ]; then
  if "$NETINV_PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    PROFILE=paper
  else
    PROFILE=quick
    echo "[run_all] no GPU visible: using PROFILE=quick (set PROFILE=paper to force it)" >&2
  fi
fi
FIGURES_DIR="$(mkdir -p "${FIGURES_DIR:-figures}" && cd "${FIGURES_DIR:-figures}" && pwd)"
echo "[run_all] profile=$PROFILE figures=$FIGURES_DIR NETINV_DATA=${NETINV_DATA:-<unset>}"
mapfile -t notebooks < <("$NETINV_PY" -m netinv_core.notebooks list)
i=0
for nb in "${notebooks[@]}"; do
  i=$((i + 1))
  name="$(basename "$nb" .ipynb)"
  executed="notebooks/executed/${name}.${PROFILE}.ipynb"
  params=(-p profile "$PROFILE" --figures-dir "$FIGURES_DIR")  # to each notebook that writes figures
  echo "[run_all] ($i/${#notebooks[@]}) $name ..."
  start=$(date +%s)
  if ! "$NETINV_PY" -m netinv_core.notebooks run "$nb" "${params[@]}" --output "$executed"; then
    echo "[run_all] FAILED: $nb (profile $PROFILE); executed copy with the error: $executed" >&2
    exit 1
  fi
  echo "[run_all] ($i/${#notebooks[@]}) $name done in $(( $(date +%s) - start )) s"
done
# The claims ledger: figures/claims.json and the README's Claims table, from the JSON just written
# (the smoke profile's digits-only JSON has none of the datasets the claims are about).
if [ "$PROFILE" != smoke ]; then
  readme=README.md
  [ "$FIGURES_DIR" = "$(pwd)/figures" ] || readme=""   # only the committed figures update the README
  "$NETINV_PY" -m netinv_core.claims --figures-dir "$FIGURES_DIR" --readme "$readme"
fi
echo "[run_all] all ${#notebooks[@]} notebooks done; figures in $FIGURES_DIR"
