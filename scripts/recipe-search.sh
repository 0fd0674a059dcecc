#!/usr/bin/env bash
# The step-budget search of a PORT recipe: runs an experiment config (a baseline and at least one
# PORT arm, normally the oracle) once per epoch budget, each into OUT/e<EPOCHS>/, everything else of
# the config unchanged, and tabulates every arm's robust-accuracy gain over the baseline per budget
# in OUT/gain_by_budget.csv (`epochs,arm,seed,clean,robust,robust_gain_pp`; accuracies as fractions, the gain in points). Each
# budget's grid resumes where it stopped, so the search can be spread over several calls.
#   scripts/recipe-search.sh CONFIG "EPOCHS…" [OUT=runs/<name>-budgets]
set -euo pipefail
cd "$(dirname "$0")/.."
config="$1"; budgets="$2"
name="$(sed -n 's/^name = "\(.*\)"/\1/p' "$config" | head -1)"
out="${3:-runs/$name-budgets}"
LIBTORCH="$(scripts/ensure-libtorch.sh)"
export LIBTORCH
cargo build --release --locked --quiet --features torch
export LD_LIBRARY_PATH="$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mkdir -p "$out"
for epochs in $budgets; do
  dir="$out/e$epochs"
  mkdir -p "$dir"
  # The config with `epochs` of [train] replaced (the first `epochs =` line after `[train]`).
  awk -v e="$epochs" '/^\[/{section=$0} section=="[train]" && /^epochs *=/ && !done {print "epochs = " e; done=1; next} {print}' \
    "$config" > "$dir/config.toml"
  target/release/proxyrobust experiment "$dir/config.toml" --out "$dir"
done
# runs.csv: arm,proxy,gamma,synthetic_images,seed,clean_accuracy,robust_accuracy,…
{
  echo "epochs,arm,seed,clean,robust,robust_gain_pp"
  for epochs in $budgets; do
    awk -F, -v e="$epochs" 'NR == 1 {next}
      {arm[NR] = $1; seed[NR] = $5; clean[NR] = $6; robust[NR] = $7; if ($1 == "baseline") base[$5] = $7}
      END {for (i in arm) printf "%s,%s,%s,%.4f,%.4f,%.1f\n", e, arm[i], seed[i], clean[i], robust[i], 100 * (robust[i] - base[seed[i]])}' \
      "$out/e$epochs/runs.csv" | sort -t, -k2,2 -k3,3n
  done
} > "$out/gain_by_budget.csv.tmp"
mv "$out/gain_by_budget.csv.tmp" "$out/gain_by_budget.csv"
column -s, -t "$out/gain_by_budget.csv"
