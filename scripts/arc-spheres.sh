#!/usr/bin/env bash
# Theorem 2's concentric ℓ2 spheres through the network route: for each dimension and radius
# pair, `arc-sphere --write-sets` draws the two vector sets, and `arc` trains MLP discriminators
# over 21 radii from 0 to |r − r̃| (three seeds), once independently at every ε (20 epochs each)
# and once as a warm-started ladder (20 epochs at ε = 0, then 6 per ε). The table compares both
# network ARCs with the closed form |r − r̃|/4 and gives the ladder's share of the training time.
#   scripts/arc-spheres.sh [OUT=runs/arc-spheres]
# Env: DIMS (default "2 5"), MODES ("independent ladder"), PAIRS ("1.0 1.4,1.0 1.2,0.5 1.0"),
# SAMPLES per sphere for training and held-out each (1000), HELD_OUT per side (500), EPOCHS at
# the first ε (20), LADDER_EPOCHS per later ε (6), MAX_GRAD_NORM (gradient clipping; none).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/arc-spheres}"
LIBTORCH="$(scripts/ensure-libtorch.sh)"
export LIBTORCH
cargo build --release --locked --quiet --features torch
bin=target/release/proxyrobust
mkdir -p "$out"
: > "$out/results.jsonl"
for dim in ${DIMS:-2 5}; do
  IFS=, read -ra pairs <<< "${PAIRS:-1.0 1.4,1.0 1.2,0.5 1.0}"
  for pair in "${pairs[@]}"; do
    set -- $pair
    case="$out/d$dim-r$1-rt$2"
    mkdir -p "$case"
    "$bin" arc-sphere --r "$1" --r-tilde "$2" --dim "$dim" --samples "${SAMPLES:-1000}" --write-sets "$case" --json > "$case/closed_form.json"
    eps=$(python3 -c "g=abs($2-$1); print(', '.join(repr(round(g*k/20, 10)) for k in range(21)))")
    for mode in ${MODES:-independent ladder}; do
      ladder=""; [ "$mode" = ladder ] && ladder="ladder_epochs = ${LADDER_EPOCHS:-6}"
      clip=""; [ -n "${MAX_GRAD_NORM:-}" ] && clip="[optimizer]\nmax_grad_norm = $MAX_GRAD_NORM\n"
      printf "name = \"%s\"\nmodel = \"mlp\"\nnorm = \"l2\"\nseeds = [0, 1, 2]\nheld_out = %s\nepochs = %s\n%s\nlr = 0.05\ntrain_steps = 5\neval_steps = 10\nthreads = 1\nepsilons = [%s]\n$clip" \
        "$mode" "${HELD_OUT:-500}" "${EPOCHS:-20}" "$ladder" "$eps" > "$case/$mode.toml"
      "$bin" arc "$case/real.npz" "$case/proxy.npz" --config "$case/$mode.toml" --out "$case/$mode" --json --quiet > "$case/$mode.json"
      python3 -c "import json,sys; s=json.load(open('$case/$mode.json')); c=json.load(open('$case/closed_form.json')); print(json.dumps({'dim': $dim, 'r': $1, 'r_tilde': $2, 'mode': '$mode', 'closed_form': c['arc_closed_form'], 'arc_mean': s['arc_mean'], 'arc_std': s['arc_std'], 'seconds': s['seconds']}))" >> "$out/results.jsonl"
    done
  done
done
python3 - "$out/results.jsonl" <<'PY' | tee "$out/comparison.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| d | r | r̃ | |r − r̃|/4 | mode | ARC (mean ± sd, 3 seeds) | ratio | seconds |")
print("|---|---|---|---|---|---|---|---|")
for a in rows:
    c = a["closed_form"]
    print(f"| {a['dim']} | {a['r']} | {a['r_tilde']} | {c:.4f} | {a['mode']} | {a['arc_mean']:.4f} ± {a['arc_std']:.4f} | {a['arc_mean']/c:.3f} | {a['seconds']:.0f} |")
PY
