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
# 3. the memory-layout probe on CUDA (contiguous vs channels-last);
# 4. throughput at the paper's scale (part `scale`): natural, PGD-10 and TRADES-10 training of
#    ResNet-18 and WRN-34-10 at CIFAR shape, batch 256 (128 real + 128 synthetic), ours in bf16
#    against the seed recipe, the tuned anchor and torch.compile, with model-FLOP utilisation
#    against PEAK_TFLOPS (default 989: the dense bf16 tensor-core peak of the H100 SXM and the
#    H200); AutoAttack (standard, 1,000 digits) and CERTIFY (n = 100,000) of the PGD-trained
#    CNN-4 of part 1, fp32 against bf16. All in one call: scripts/device-check.sh 2 train,scale
# 5. the data-parallel path on NCCL (part `ddp`): one epoch of PGD-10 ResNet-18 training on MNIST-10k
#    (batch 256), the single-process path against the same run through an NCCL group of one
#    (PROXYROBUST_PROCESS_GROUP=always: gradients all-reduced every step), alternating ROUNDS times.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-2}"; parts="${2:-train,bench,layout,scale,ddp}"
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
# PORT in bf16 on the GPU: synthetic batches gathered off the training thread, pinned, copied
# asynchronously; the epoch's metrics are the only host reads.
"$bin" proxy oracle --count 5000 --train-subset 1000 --out "$out/oracle.npz"
printf 'name = "port_bf16"\nmodel = "cnn4"\ntrain_subset = 1000\nepochs = 5\nbatch_size = 64\ndevice = "cuda"\nprecision = "bf16"\nepsilon_warmup_epochs = 2\n[objective]\nkind = "pgd"\nnorm = "linf"\nepsilon = 0.3\nstep_size = 0.05\nsteps = 10\n[synthetic]\nnpz = "%s"\ngamma = 0.4\n[lr]\nbase = 0.05\n' "$out/oracle.npz" > "$out/port_bf16.toml"
start=$(date +%s%N)
"$bin" train "$out/port_bf16.toml" --quiet --overwrite --out "runs/port_bf16"
echo "port_bf16: $(( ($(date +%s%N) - start) / 1000000 )) ms wall" | tee -a "$out/train.txt"
tail -n 1 runs/port_bf16/metrics.csv | tee -a "$out/train.txt"
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

if part scale; then
echo "== throughput at the paper's scale on CUDA"
OUT="$out/scale" PRECISION=bf16 TRADES=1 COMPILE=1 PEAK_TFLOPS="${PEAK_TFLOPS:-989}" \
  PROXYROBUST_BENCH=./target/release/examples/bench PROXYROBUST_PYTHON="$python" PROXYROBUST_REFERENCE="$ref" \
  BENCH_SPECS="resnet18 3,32,32 256 20;wrn-34-10 3,32,32 256 5" \
  scripts/bench-train.sh 8 cuda "$rounds"
weights=runs/mnist_cnn4_pgd/weights.safetensors
if [ -f "$weights" ]; then
  sed 's/^name = .*/&\nprecision = "bf16"/' experiments/mnist_cnn4_pgd.toml > "$out/mnist_cnn4_pgd_bf16.toml"
  for config in experiments/mnist_cnn4_pgd.toml "$out/mnist_cnn4_pgd_bf16.toml"; do
    start=$(date +%s%N)
    "$bin" eval "$config" --weights "$weights" --eps 0.3 --autoattack standard --limit 1000 --quiet --json \
      --out "$out/scale/eval-$(basename "$config" .toml)" > "$out/scale/eval-$(basename "$config" .toml).json"
    echo "AutoAttack standard, 1000 digits, $(basename "$config"): $(( ($(date +%s%N) - start) / 1000000 )) ms" | tee -a "$out/scale/attack.txt"
  done
  start=$(date +%s%N)
  "$bin" certify experiments/mnist_cnn4_pgd.toml --weights "$weights" --sigma 0.25 --n 100000 --batch 10000 --limit 20 \
    --quiet --json --out "$out/scale/certify" > "$out/scale/certify.json"
  echo "CERTIFY n=100000, 20 digits: $(( ($(date +%s%N) - start) / 1000000 )) ms" | tee -a "$out/scale/attack.txt"
fi
fi

if part ddp; then
echo "== NCCL group of one against the single-process path"
printf 'name = "ddp_bench"\nmodel = "resnet18"\nepochs = 1\nbatch_size = 256\ndevice = "cuda"\nlog_every_steps = 1000\n[objective]\nkind = "pgd"\nnorm = "linf"\nepsilon = 0.3\nstep_size = 0.01\nsteps = 10\n[lr]\nbase = 0.05\n' > "$out/ddp.toml"
for round in $(seq 1 "$rounds"); do
  start=$(date +%s%N)
  "$bin" train "$out/ddp.toml" --out runs/ddp_single --overwrite --quiet > /dev/null
  single=$(( ($(date +%s%N) - start) / 1000000 ))
  start=$(date +%s%N)
  RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$((29600 + round)) PROXYROBUST_PROCESS_GROUP=always \
    "$bin" train "$out/ddp.toml" --out runs/ddp_group --overwrite --quiet > /dev/null
  group=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "round $round: single ${single} ms, NCCL group of one ${group} ms" | tee -a "$out/ddp.txt"
done
fi
