#!/usr/bin/env bash
# Data-parallel overhead on this machine: the same training (CNN-4 on MNIST-10k, PGD-10 at
# ℓ∞ ε = 0.3, EPOCHS epochs) as one process of batch 2B on T threads against two Gloo processes
# (torchrun's variables, the loopback interface) of batch B on T/2 threads each — the same total
# batch and cores. The two alternate ROUNDS times; wall times and the median ratio.
#   scripts/bench-distributed.sh [ROUNDS=3] [EPOCHS=1] [B=64] [T=2]
# Env: OUT (default runs/bench-distributed).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"; epochs="${2:-1}"; b="${3:-64}"; t="${4:-2}"
out="${OUT:-runs/bench-distributed}"
LIBTORCH="$(scripts/ensure-libtorch.sh)"; export LIBTORCH
cargo build --release --locked --quiet --features torch
bin=target/release/proxyrobust
mkdir -p "$out"
config() { printf 'name = "%s"\nmodel = "cnn4"\nepochs = %s\nbatch_size = %s\nthreads = %s\nlog_every_steps = 1000\n[objective]\nkind = "pgd"\nnorm = "linf"\nepsilon = 0.3\nstep_size = 0.01\nsteps = 10\n[lr]\nbase = 0.05\n' "$1" "$epochs" "$2" "$3" > "$out/$1.toml"; }
config single $((2 * b)) "$t"; config pair "$b" $((t / 2 > 0 ? t / 2 : 1))
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
one() { local s; s=$(date +%s%N); "$bin" train "$out/single.toml" --out "$out/single" --overwrite --quiet > /dev/null; ms "$s"; }
group() { local s; s=$(date +%s%N); RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$((29600 + RANDOM % 1000)) \
  PROXYROBUST_PROCESS_GROUP=always "$bin" train "$out/single.toml" --out "$out/group" --overwrite --quiet > /dev/null; ms "$s"; }
two() { local s port; s=$(date +%s%N); port=$((29600 + RANDOM % 1000))
  for r in 0 1; do RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    "$bin" train "$out/pair.toml" --out "$out/pair" --overwrite --quiet > /dev/null & done; wait; ms "$s"; }
: > "$out/results.txt"
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then a=$(one); g=$(group); p=$(two); else p=$(two); g=$(group); a=$(one); fi
  echo "round $round: one process ${a} ms, group of one ${g} ms (ratio $(awk "BEGIN{printf \"%.3f\", $g/$a}")), two Gloo ranks ${p} ms (ratio $(awk "BEGIN{printf \"%.3f\", $p/$a}"))" | tee -a "$out/results.txt"
done
echo "test accuracy: one $(tail -n1 "$out/single/metrics.csv" | cut -d, -f7), two $(tail -n1 "$out/pair/metrics.csv" | cut -d, -f7)" | tee -a "$out/results.txt"
