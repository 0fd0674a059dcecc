#!/usr/bin/env bash
# Training throughput (images/s and model TFLOP/s), natural and PGD-10 (and TRADES-10 on our side
# with TRADES=1), side by side in one run with shared/reference/pgd_train_reference.py (PyTorch
# on the same libtorch 2.11.0) in two modes: the seed repository's recipe (eager fp32, contiguous)
# and the tuned anchor (bf16 autocast, channels-last, cuDNN benchmark), plus torch.compile on top
# of the tuned one with COMPILE=1. Same model, batch, input shape and threads on every side.
#   scripts/bench-train.sh [THREADS=2] [DEVICE=cpu] [ROUNDS=3]
# The sides alternate, ROUNDS times (the order reversed every other round), so machine noise
# falls on all of them; the table gives medians and the median per-round ratio with its range.
# Env: PRECISION (ours: bf16, the default, or fp32), BENCH_SPECS ("MODEL C,H,W BATCH STEPS"
# entries separated by ';'), PEAK_TFLOPS (the device's peak for ours' precision, for model-FLOP
# utilisation), TRADES=1, COMPILE=1, OUT (default runs/bench-train), PROXYROBUST_REFERENCE
# (folder of pgd_train_reference.py). On a machine with PyTorch but no Rust
# (scripts/device-check.sh): PROXYROBUST_BENCH (a built examples/bench binary, then nothing is
# built or installed) and PROXYROBUST_PYTHON (the reference's interpreter).
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"; device="${2:-cpu}"; rounds="${3:-3}"
ref="${PROXYROBUST_REFERENCE:-../shared/reference}"
specs="${BENCH_SPECS:-cnn4 1,28,28 128 20;resnet18 3,32,32 32 5}"
precision="${PRECISION:-bf16}"
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
ours_flags=(--precision "$precision")
[ "${TRADES:-0}" = 1 ] && ours_flags+=(--trades)
[ -n "${PEAK_TFLOPS:-}" ] && ours_flags+=(--peak-tflops "$PEAK_TFLOPS")
ours() { "$bin" train --model "$1" --shape "$2" --batch "$3" --steps "$4" --pgd-steps 10 --threads "$threads" --device "$device" "${ours_flags[@]}" 2>/dev/null; }
reference() { local mode="$1"; shift; local flags=()
  case "$mode" in
    tuned) flags=(--precision bf16 --channels-last --cudnn-benchmark) ;;
    compiled) flags=(--precision bf16 --channels-last --cudnn-benchmark --compile) ;;
  esac
  "$python" "$ref/pgd_train_reference.py" --model "$1" --shape "$2" --batch "$3" --steps "$4" --pgd-steps 10 --threads "$threads" --device "$device" "${flags[@]}" --json 2>/dev/null || echo null; }
modes=(seed tuned); [ "${COMPILE:-0}" = 1 ] && modes+=(compiled)
IFS=';' read -ra spec_list <<< "$specs"
for round in $(seq 1 "$rounds"); do
  for spec in "${spec_list[@]}"; do
    set -- $spec
    declare -A r=()
    if [ $((round % 2)) -eq 1 ]; then r[ours]=$(ours "$@"); for m in "${modes[@]}"; do r[$m]=$(reference "$m" "$@"); done
    else for m in "${modes[@]}"; do r[$m]=$(reference "$m" "$@"); done; r[ours]=$(ours "$@"); fi
    line="{\"round\": $round, \"ours\": ${r[ours]}"
    for m in "${modes[@]}"; do line+=", \"$m\": ${r[$m]}"; done
    echo "$line}" >> "$out/results.jsonl"
    unset r
  done
done
"$python" - "$out/results.jsonl" <<'PY' | tee "$out/comparison.md"
import json, sys, statistics
runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs.setdefault((r["ours"]["model"], r["ours"]["batch"]), []).append(r)
modes = [m for m in ("seed", "tuned", "compiled") if any(m in r for rs in runs.values() for r in rs)]
head = "| model | batch | device | ours | rounds | training | ours img/s | model TFLOP/s | MFU |" + "".join(f" {m} img/s | ours/{m} |" for m in modes)
rows = [head, "|" + "---|" * (head.count("|") - 1)]
def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
for (model, batch), rs in runs.items():
    o = rs[0]["ours"]
    for name, ours_key, ref_key, flops_key, mfu_key in [
            ("natural", "natural_img_per_s", "natural_img_per_s", "natural_tflops", "natural_mfu"),
            ("PGD-10", "pgd_img_per_s", "pgd10_img_per_s", "pgd_tflops", "pgd_mfu"),
            ("TRADES-10", "trades_img_per_s", None, "trades_tflops", "trades_mfu")]:
        if o.get(ours_key) is None:
            continue
        mfu = med(r["ours"].get(mfu_key) for r in rs)
        row = (f"| {model} | {batch} | {o['device']} | {o['precision']} | {len(rs)} | {name} | "
               f"{med(r['ours'][ours_key] for r in rs):.1f} | {med(r['ours'][flops_key] for r in rs):.3f} | "
               f"{'' if mfu is None else f'{100 * mfu:.1f}%'} |")
        for m in modes:
            pairs = [(r["ours"][ours_key], r[m][ref_key]) for r in rs if ref_key and r.get(m)]
            if not pairs:
                row += " — | — |"
                continue
            ratios = [a / b for a, b in pairs]
            row += f" {statistics.median(b for _, b in pairs):.1f} | {statistics.median(ratios):.2f}x ({min(ratios):.2f}–{max(ratios):.2f}) |"
        rows.append(row)
print("\n".join(rows))
# Table 1's PORT runs: 200 epochs of 391 steps of PGD-10 on 128 real + 128 synthetic images.
for (model, batch), rs in runs.items():
    rate = med(r["ours"]["pgd_img_per_s"] for r in rs)
    if batch == 256 and rate:
        hours = 200 * 391 * 256 / rate / 3600
        print(f"\nProjected PGD-10 PORT run of Table 1 for {model} (200 × 391 steps of 256 images) at ours' median rate: {hours:.1f} h")
PY
