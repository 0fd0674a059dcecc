#!/usr/bin/env bash
# Exact OT benchmark, side by side with shared/reference/ot_reference.py (POT's emd2) in one run:
# 2000 vs 2000 uniform points in d = 64 (the issue's target), plus the general-weights network
# simplex at 500 vs 500.   scripts/bench-ot.sh [N] [DIM]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-2000}"; dim="${2:-64}"
. scripts/reference-env.sh
out=runs/bench-ot
mkdir -p "$out"
cargo build --release --locked --quiet --example bench
for size in "$n" 500; do
  "$venv/bin/python" "$ref/ot_reference.py" --n "$size" --dim "$dim" --seed 0 --save "$out/cloud$size" --p 1 --metric l2 --json > "$out/reference-$size.json"
done
./target/release/examples/bench ot "$out/cloud${n}_x.npy" "$out/cloud${n}_y.npy" --reps 3 > "$out/ours-$n.json"
./target/release/examples/bench ot "$out/cloud500_x.npy" "$out/cloud500_y.npy" --reps 3 --general > "$out/ours-500-general.json"
"$venv/bin/python" - "$out" "$n" <<'PY'
import json, sys, pathlib
out, n = pathlib.Path(sys.argv[1]), sys.argv[2]
rows = ["| problem | ours (s, median) | POT emd2 (s) | POT/ours | W ours | W POT |", "|---|---|---|---|---|---|"]
for label, ours, ref in [(f"{n} vs {n}, uniform (assignment, lapjv)", f"ours-{n}.json", f"reference-{n}.json"),
                         ("500 vs 500, general weights (network simplex)", "ours-500-general.json", "reference-500.json")]:
    o = json.loads((out / ours).read_text()); r = json.loads((out / ref).read_text())
    rows.append(f"| {label} | {o['seconds_median']:.4g} | {r['seconds']:.4g} | {r['seconds'] / o['seconds_median']:.1f}x | {o['value']:.12g} | {r['w']:.12g} |")
text = "\n".join(rows) + "\n"
(out / "comparison.md").write_text(text)
print(text)
PY
