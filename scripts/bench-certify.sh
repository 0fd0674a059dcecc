#!/usr/bin/env bash
# Randomized-smoothing CERTIFY side by side with shared/reference/certify_reference.py (PyTorch,
# the same libtorch 2.11.0) on the same CNN-4 weights, test digits and threads:
#   1. agreement: SKIP-spaced test digits (LIMIT of them) certified by both at n = 10,000; prints
#      how many predictions agree and how far the radii differ, in units of the radius's sampling
#      error σ·√(p(1−p)/n)/φ(Φ⁻¹(p)) of one side (√2 of it for the difference);
#   2. speed: seconds per image at n = 100,000 (batch 1000, n0 = 100) on TIME_IMAGES digits, the
#      two sides alternating ROUNDS times; the median per-round ratio and its range.
#   scripts/bench-certify.sh WEIGHTS [SIGMA=0.25] [THREADS=2] [ROUNDS=3]
# WEIGHTS: a CNN-4 trained on MNIST-10k, e.g. runs/mnist_smoothing/models/baseline-s0/weights.safetensors
# (proxyrobust experiment experiments/mnist_smoothing.toml). Env: SKIP (20), LIMIT (50),
# TIME_IMAGES (3), OUT (runs/bench-certify).
set -euo pipefail
cd "$(dirname "$0")/.."
weights="$1"; sigma="${2:-0.25}"; threads="${3:-2}"; rounds="${4:-3}"
skip="${SKIP:-20}"; limit="${LIMIT:-50}"; time_images="${TIME_IMAGES:-3}"
out="${OUT:-runs/bench-certify}"
LIBTORCH="$(scripts/ensure-libtorch.sh)"
export LIBTORCH
venv="$(scripts/reference/attack-venv.sh)"
python="$venv/bin/python"
cargo build --release --locked --quiet --features torch
bin=target/release/proxyrobust
mkdir -p "$out"
config="$out/cnn4.toml"
printf 'name = "bench-certify"\nmodel = "cnn4"\ndataset = "mnist10k"\nepochs = 1\nthreads = %s\n[lr]\nbase = 0.1\n' "$threads" > "$config"
indices=$(seq -s, 0 "$skip" $(( (limit - 1) * skip )))
"$bin" certify "$config" --weights "$weights" --sigma "$sigma" --n 10000 --skip "$skip" --limit "$limit" \
  --quiet --out "$out/ours" > /dev/null
"$python" scripts/reference/certify_crosscheck.py --weights "$weights" --indices "$indices" --sigma "$sigma" \
  --n 10000 --threads "$threads" > "$out/reference.jsonl"
: > "$out/timing.jsonl"
ours_time() { "$bin" certify "$config" --weights "$weights" --sigma "$sigma" --n 100000 --batch 1000 \
  --limit "$time_images" --quiet --json --out "$out/timing-ours"; }
theirs_time() { "$python" ../shared/reference/certify_reference.py --model cnn4 --shape 1,28,28 --weights "$weights" \
  --images "$time_images" --n 100000 --batch 1000 --sigma "$sigma" --threads "$threads"; }
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then o=$(ours_time); t=$(theirs_time); else t=$(theirs_time); o=$(ours_time); fi
  echo "{\"round\": $round, \"ours\": $o, \"reference\": $t}" >> "$out/timing.jsonl"
done
"$python" - "$out" "$sigma" <<'PY' | tee "$out/comparison.md"
import csv, json, statistics, sys
from scipy.stats import norm
out, sigma, n = sys.argv[1], float(sys.argv[2]), 10_000
ours = {int(r["idx"]): r for r in csv.DictReader(open(f"{out}/ours/samples.csv"))}
ref = [json.loads(l) for l in open(f"{out}/reference.jsonl")]
agree, zs, rows = 0, [], []
for r in ref:
    o = ours[r["idx"]]
    po, ro = int(o["predict"]), float(o["radius"])
    agree += po == r["predict"]
    if po == r["predict"] and po >= 0:
        p = min(norm.cdf(ro / sigma), 1 - 1 / n)
        se = sigma * (p * (1 - p) / n) ** 0.5 / norm.pdf(norm.ppf(p))
        zs.append(abs(ro - r["radius"]) / (2 ** 0.5 * se))
    rows.append(f"| {r['idx']} | {r['label']} | {po} | {r['predict']} | {ro:.4f} | {r['radius']:.4f} |")
print(f"## Agreement (σ = {sigma}, n = {n}, {len(ref)} test digits)\n")
print(f"predictions agree on {agree} of {len(ref)}; where both certify the same class, |Δradius| in sampling-error units: "
      f"median {statistics.median(zs):.2f}, max {max(zs):.2f}, within 3: {sum(z <= 3 for z in zs)} of {len(zs)}\n")
print("| idx | label | ours | reference | radius ours | radius reference |\n|---|---|---|---|---|---|")
print("\n".join(rows))
timing = [json.loads(l) for l in open(f"{out}/timing.jsonl")]
ratios = [t["reference"]["seconds_per_image"] / t["ours"]["seconds_per_image"] for t in timing]
o = statistics.median(t["ours"]["seconds_per_image"] for t in timing)
t = statistics.median(t["reference"]["seconds_per_image"] for t in timing)
print(f"\n## Speed (n = 100,000, batch 1000)\n\nseconds per image: ours {o:.2f}, reference {t:.2f}; "
      f"speed ratio ours/reference (median, range over {len(ratios)} rounds): {statistics.median(ratios):.2f}× "
      f"({min(ratios):.2f}–{max(ratios):.2f})")
PY
