#!/usr/bin/env bash
# The CUDA checks, run on a lent GPU machine that has PyTorch 2.11.0 (e.g. /opt/torch/.venv) but no
# Rust toolchain: the binaries are built here (cargo build --release --features torch --examples)
# and carried (target/release/proxyrobust, target/release/examples/{bench,layout_probe}). Writes everything under OUT (default runs/device-check).
#   scripts/device-check.sh [ROUNDS=2] [PARTS=train,bench,layout]
# Env: TORCH_VENV (default /opt/torch/.venv), PROXYROBUST_REFERENCE (folder holding
# pgd_train_reference.py; default ../shared/reference), OUT.
# 1. trains CNN-4 naturally and with PGD on MNIST-10k on the GPU (device = "auto") and evaluates
#    the robust one with AutoAttack "fast";
# 2. training throughput on CUDA by scripts/bench-train.sh (both sides alternating, ROUNDS rounds);
# 3. the memory-layout probe on CUDA (contiguous vs channels-last).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-2}"; parts="${2:-train,bench,layout}"
part() { [[ ",$parts," == *",$1,"* ]]; }
venv="${TORCH_VENV:-/opt/torch/.venv}"
ref="${PROXYROBUST_REFERENCE:-../shared/reference}"
out="${OUT:-runs/device-check}"
mkdir -p "$out"
python="$venv/bin/python"
export LD_LIBRARY_PATH="$("$python" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=./target/release/proxyrobust
probe=./target/release/examples/layout_probe
nvidia-smi -L | tee "$out/device.txt"
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' | tee -a "$out/device.txt"

if part train; then
echo "== training on CUDA"
for config in mnist_cnn4 mnist_cnn4_pgd; do
  start=$(date +%s%N)
  "$bin" train "experiments/$config.toml" --quiet --out "runs/$config"
  echo "$config: $(( ($(date +%s%N) - start) / 1000000 )) ms wall" | tee -a "$out/train.txt"
  tail -n 1 "runs/$config/metrics.csv" | tee -a "$out/train.txt"
  grep -o '"device"[^,]*' "runs/$config/manifest.json" | tee -a "$out/train.txt"
done
"$bin" eval experiments/mnist_cnn4_pgd.toml --eps 0.1 --pgd-steps 20 --autoattack fast --limit 500 --quiet | tee -a "$out/train.txt"
fi

if part bench; then
echo "== training throughput on CUDA"
OUT="$out" PROXYROBUST_BENCH=./target/release/examples/bench PROXYROBUST_PYTHON="$python" PROXYROBUST_REFERENCE="$ref" \
  BENCH_SPECS="cnn4 1,28,28 128 100;resnet18 3,32,32 32 40;resnet18 3,32,32 128 20;resnet18 3,32,32 512 10" \
  scripts/bench-train.sh 4 cuda "$rounds"
fi

if part layout; then
echo "== memory layout on CUDA"
"$probe" resnet18 3,32,32 128 10 cuda | tee "$out/layout-resnet18.txt"
"$probe" cnn4 1,28,28 128 20 cuda | tee "$out/layout-cnn4.txt"
fi
