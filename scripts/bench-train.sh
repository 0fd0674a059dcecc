#!/usr/bin/env bash
# Training throughput (images/s), natural and PGD-10, side by side with
# shared/reference/pgd_train_reference.py (PyTorch eager, the same libtorch 2.11.0) in one run,
# same model, batch, input shape and threads: cnn4 on 1x28x28 (batch 128) and ResNet-18 on
# 3x32x32 (batch 32).   scripts/bench-train.sh [THREADS=2] [DEVICE=cpu] [ROUNDS=5]
# The two sides alternate, ROUNDS times (the order swapped every round), so machine noise falls
# on both; the table gives the median per-round ratio and its range per model and batch.
# Env: BENCH_SPECS ("MODEL C,H,W BATCH STEPS" entries separated by ';'), OUT (default
# runs/bench-train), PROXYROBUST_REFERENCE (folder of pgd_train_reference.py). On a machine with
# PyTorch but no Rust (scripts/device-check.sh): PROXYROBUST_BENCH (a built examples/bench binary,
# then nothing is built or installed) and PROXYROBUST_PYTHON (the reference's interpreter).
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"; device="${2:-cpu}"; rounds="${3:-5}"
ref="${PROXYROBUST_REFERENCE:-../shared/reference}"
specs="${BENCH_SPECS:-cnn4 1,28,28 128 20;resnet18 3,32,32 32 5}"
bin="${PROXYROBUST_BENCH:-}"
python="${PROXYROBUST_PYTHON:-}"
if [ -z "$bin" ]; then
  LIBTORCH="$(scripts/ensure-libtorch.sh)"
  export LIBTORCH
  python="${python:-$(dirname "$(dirname "$(dirname "$(dirname "$LIBTORCH")")")")/bin/python}"
  cargo build --release --locked --quiet --features torch --example bench
  bin=./target/release/examples/bench
fi
out="${OUT:-runs/bench-train}"
mkdir -p "$out"
: > "$out/results.jsonl"
ours() { "$bin" train --model "$1" --shape "$2" --batch "$3" --steps "$4" --pgd-steps 10 --threads "$threads" --device "$device"; }
theirs() { "$python" "$ref/pgd_train_reference.py" --model "$1" --shape "$2" --batch "$3" --steps "$4" --pgd-steps 10 --threads "$threads" --device "$device" --json 2>/dev/null; }
IFS=';' read -ra spec_list <<< "$specs"
for round in $(seq 1 "$rounds"); do
  for spec in "${spec_list[@]}"; do
    set -- $spec
    if [ $((round % 2)) -eq 1 ]; then o=$(ours "$@"); t=$(theirs "$@"); else t=$(theirs "$@"); o=$(ours "$@"); fi
    echo "{\"round\": $round, \"ours\": $o, \"reference\": $t}" >> "$out/results.jsonl"
  done
done
"$python" - "$out/results.jsonl" <<'PY' | tee "$out/comparison.md"
import json, sys, statistics
runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs.setdefault((r["ours"]["model"], r["ours"]["batch"]), []).append(r)
rows = ["| model | batch | threads | device | rounds | natural ours | natural PyTorch | ratio (median, range) | PGD-10 ours | PGD-10 PyTorch | ratio (median, range) |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
def cell(rs, ours_key, ref_key):
    o = statistics.median(r["ours"][ours_key] for r in rs)
    t = statistics.median(r["reference"][ref_key] for r in rs)
    ratios = [r["ours"][ours_key] / r["reference"][ref_key] for r in rs]
    return f"{o:.1f} | {t:.1f} | {statistics.median(ratios):.2f}x ({min(ratios):.2f}–{max(ratios):.2f})"
for (model, _), rs in runs.items():
    o = rs[0]["ours"]
    rows.append(f"| {model} | {o['batch']} | {o['threads']} | {o['device']} | {len(rs)} | "
                f"{cell(rs, 'natural_img_per_s', 'natural_img_per_s')} | {cell(rs, 'pgd_img_per_s', 'pgd10_img_per_s')} |")
print("\n".join(rows))
PY
