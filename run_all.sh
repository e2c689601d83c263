#!/usr/bin/env bash
# Regenerate every figure: runs each notebook through papermill, in order, with one profile.
#   ./run_all.sh                 # paper profile on a GPU box, quick profile when no GPU is visible
#   PROFILE=quick ./run_all.sh   # a CPU, real data: hours on a 2-core machine (see the README)
#   PROFILE=smoke ./run_all.sh   # minutes, scikit-learn's digits (figures go to FIGURES_DIR)
# Before starting it prints the predicted duration of the profile on this device (a cheap run of
# the cost model, netinv_core.cost; NETINV_PREDICT=0 skips it), and while it runs one progress line
# with an ETA every PROGRESS_EVERY seconds (default 300) and after each notebook.
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
declare -A predicted=()
predicted_total=0
if [ "${NETINV_PREDICT:-1}" != 0 ]; then
  echo "[run_all] predicting the duration (a few training steps of every stage and the analysis steps once: minutes; NETINV_PREDICT=0 skips it) ..."
  if prediction="$("$NETINV_PY" -m netinv_core.cost --profile "$PROFILE" --cheap --tsv)"; then
    idle_total=0
    while IFS=$'\t' read -r nbname secs idle; do
      predicted[$nbname]=$secs
      predicted_total=$((predicted_total + secs))
      idle_total=$((idle_total + idle))
      echo "[run_all]   predicted $nbname: $((secs / 60)) min at the current load ($((idle / 60)) min on an idle machine)"
    done <<< "$prediction"
    echo "[run_all] predicted total for PROFILE=$PROFILE on this device, cold cache: $((predicted_total / 3600)) h $((predicted_total % 3600 / 60)) min at the current load (load average $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo ?)); $((idle_total / 3600)) h $((idle_total % 3600 / 60)) min on an idle machine; cached models make it shorter"
  else
    echo "[run_all] (no prediction: the cost model failed; continuing)" >&2
  fi
fi
run_start=$(date +%s)
done_predicted=0
progress() {  # one overall progress line: elapsed, share of the predicted work done, ETA
  local now elapsed cur="$1" cur_start="$2" in_cur work remaining
  now=$(date +%s); elapsed=$((now - run_start))
  if [ "$predicted_total" -gt 0 ]; then
    in_cur=$((now - cur_start)); [ "$in_cur" -gt "${predicted[$cur]:-0}" ] && in_cur=${predicted[$cur]:-0}
    work=$((done_predicted + in_cur))                    # predicted seconds of work done so far
    remaining=$((predicted_total - work))
    # scale the remaining prediction by the pace so far (elapsed / predicted work done)
    if [ "$work" -gt 60 ] && [ "$elapsed" -gt 60 ]; then remaining=$((remaining * elapsed / work)); fi
    echo "[run_all] progress: $((elapsed / 60)) min elapsed, ~$((work * 100 / predicted_total))% of the predicted work done (now $cur); ETA $(date -d "@$((now + remaining))" +%H:%M) (about $((remaining / 60)) min left)"
  else
    echo "[run_all] progress: $((elapsed / 60)) min elapsed (now $cur)"
  fi
}
ticker=""
trap '[ -n "$ticker" ] && kill "$ticker" 2>/dev/null || true' EXIT
i=0
for nb in "${notebooks[@]}"; do
  i=$((i + 1))
  name="$(basename "$nb" .ipynb)"
  executed="notebooks/executed/${name}.${PROFILE}.ipynb"
  params=(-p profile "$PROFILE" --figures-dir "$FIGURES_DIR")  # to each notebook that writes figures
  echo "[run_all] ($i/${#notebooks[@]}) $name ..."
  start=$(date +%s)
  ( while sleep "${PROGRESS_EVERY:-300}"; do progress "$name" "$start"; done ) &
  ticker=$!
  if ! "$NETINV_PY" -m netinv_core.notebooks run "$nb" "${params[@]}" --output "$executed"; then
    echo "[run_all] FAILED: $nb (profile $PROFILE); executed copy with the error: $executed" >&2
    exit 1
  fi
  kill "$ticker" 2>/dev/null || true; ticker=""
  echo "[run_all] ($i/${#notebooks[@]}) $name done in $(( $(date +%s) - start )) s (predicted ${predicted[$name]:-?} s)"
  done_predicted=$((done_predicted + ${predicted[$name]:-0}))
  progress "$name" "$(date +%s)"
done
# The claims ledger: figures/claims.json and the README's Claims table, from the JSON just written
# (the smoke profile's digits-only JSON has none of the datasets the claims are about).
if [ "$PROFILE" != smoke ]; then
  readme=README.md
  [ "$FIGURES_DIR" = "$(pwd)/figures" ] || readme=""   # only the committed figures update the README
  "$NETINV_PY" -m netinv_core.claims --figures-dir "$FIGURES_DIR" --readme "$readme"
fi
echo "[run_all] all ${#notebooks[@]} notebooks done; figures in $FIGURES_DIR"
