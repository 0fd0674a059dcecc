#!/usr/bin/env bash
# Training throughput (images/s), natural and PGD-10, side by side with
# shared/reference/pgd_train_reference.py (PyTorch eager, the same libtorch 2.11.0) in one run,
# same model, batch, input shape and threads: cnn4 on 1x28x28 (batch 128) and ResNet-18 on
# 3x32x32 (batch 32).   scripts/bench-train.sh [THREADS] [DEVICE]
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"; device="${2:-cpu}"
ref="${PROXYROBUST_REFERENCE:-../shared/reference}"
LIBTORCH="$(scripts/ensure-libtorch.sh)"
export LIBTORCH
python="$(dirname "$(dirname "$(dirname "$(dirname "$LIBTORCH")")")")/bin/python"
cargo build --release --locked --quiet --features torch
out=runs/bench-train
mkdir -p "$out"
: > "$out/results.jsonl"
for spec in "cnn4 1,28,28 128 20" "resnet18 3,32,32 32 5"; do
  set -- $spec
  ours=$(./target/release/proxyrobust bench train --model "$1" --shape "$2" --batch "$3" --steps "$4" --pgd-steps 10 --threads "$threads" --device "$device")
  theirs=$("$python" "$ref/pgd_train_reference.py" --model "$1" --shape "$2" --batch "$3" --steps "$4" --pgd-steps 10 --threads "$threads" --device "$device" --json)
  echo "{\"ours\": $ours, \"reference\": $theirs}" >> "$out/results.jsonl"
done
"$python" - "$out/results.jsonl" <<'PY'
import json, sys
rows = ["| model | batch | threads | device | natural ours | natural PyTorch | ratio | PGD-10 ours | PGD-10 PyTorch | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|"]
for line in open(sys.argv[1]):
    r = json.loads(line); o, t = r["ours"], r["reference"]
    rows.append(f"| {o['model']} | {o['batch']} | {o['threads']} | {o['device']} | {o['natural_img_per_s']:.1f} | {t['natural_img_per_s']:.1f} | "
                f"{o['natural_img_per_s'] / t['natural_img_per_s']:.2f}x | {o['pgd_img_per_s']:.1f} | {t['pgd10_img_per_s']:.1f} | {o['pgd_img_per_s'] / t['pgd10_img_per_s']:.2f}x |")
print("\n".join(rows))
PY
