#!/usr/bin/env bash
# Table 9 on MNIST-10k: non-robust discrimination (ε = 0 only) of each proxy set against real
# digits the proxies never saw, by several architectures — the clean accuracy saturates near 1
# for every proxy while ARC (scripts/proxy-ranking.sh) still tells them apart. Each model trains
# as experiments/mnist_arc.toml says (500 held-out digits per side; 20 epochs and three seeds
# unless EPOCHS and SEEDS say otherwise) at ε = 0 alone; the table is OUT/table9.md (mean ± sd
# of the held-out accuracy over seeds).
# Needs the proxy sets that scripts/proxy-ranking.sh uses (run its first steps, or all of it).
#   scripts/discrimination-table9.sh [OUT=runs/mnist_table9]
# env MODELS (default "cnn2 cnn4 resnet18"); EPOCHS and SEEDS (a TOML list) shorten the schedule
# for a slow model, e.g. MODELS=resnet18 EPOCHS=4 SEEDS="[0, 1]".
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/mnist_table9}"
LIBTORCH="$(scripts/ensure-libtorch.sh)"
export LIBTORCH
cargo build --release --locked --quiet --features torch
export LD_LIBRARY_PATH="$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=target/release/proxyrobust
sets=runs/mnist_proxy_only/proxies
real=runs/mnist_ranking/sets/real.npz
for f in "$real" runs/mnist_ranking/sets/oracle.npz; do
  [ -f "$f" ] || { echo "error: $f is missing: run scripts/proxy-ranking.sh first" >&2; exit 2; }
done
mkdir -p "$out"
for model in ${MODELS:-cnn2 cnn4 resnet18}; do
  config="$out/$model.toml"
  # experiments/mnist_arc.toml with this model, ε = 0 alone and no ladder.
  sed -e "s/^model = .*/model = \"$model\"/" -e "s/^name = .*/name = \"table9_$model\"/" \
      -e 's/^epsilons = .*/epsilons = [0.0]/' -e '/^ladder_epochs/d' \
      -e "s/^epochs = .*/epochs = ${EPOCHS:-20}/" -e "s/^seeds = .*/seeds = ${SEEDS:-[0, 1, 2]}/" \
      experiments/mnist_arc.toml > "$config"
  for p in oracle:runs/mnist_ranking/sets/oracle.npz ddpm:runs/mnist_ddpm/samples.npz gan:runs/mnist_gan/samples.npz \
           interpolation:$sets/interpolation.npz gaussian:$sets/gaussian.npz pca-mixture:$sets/pca-mixture.npz; do
    name="${p%%:*}"; file="${p#*:}"
    "$bin" arc "$real" "$file" --config "$config" --out "$out/$model/$name" --quiet
  done
done
python3 - "$out" ${MODELS:-cnn2 cnn4 resnet18} <<'PY' | tee "$out/table9.md"
import csv, statistics, sys
out, models = sys.argv[1], sys.argv[2:]
proxies = ["oracle", "ddpm", "gan", "interpolation", "gaussian", "pca-mixture"]
print("| proxy | " + " | ".join(f"{m} (%)" for m in models) + " |")
print("|---" * (len(models) + 1) + "|")
for p in proxies:
    cells = []
    for m in models:
        # curve.csv: seed,epsilon,robust_accuracy — one row per seed at ε = 0.
        accs = [float(r["robust_accuracy"]) for r in csv.DictReader(open(f"{out}/{m}/{p}/curve.csv"))]
        sd = f" ± {100*statistics.stdev(accs):.1f}" if len(accs) > 1 else ""
        cells.append(f"{100*statistics.mean(accs):.1f}{sd}")
    print(f"| {p} | " + " | ".join(cells) + " |")
PY
