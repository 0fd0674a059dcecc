#!/usr/bin/env bash
# Tables 6 and 10 on MNIST-10k end to end: which proximity metric ranks the six proxies (oracle,
# DDPM, GAN, interpolation, Gaussian, PCA mixture) as the robustness they transfer does.
#  1. the ground truth and the transfer: experiments/mnist_proxy_only.toml (PGD-10 adversarial
#     training on each proxy alone, AutoAttack on real test digits) and
#     experiments/mnist_proxy_only_natural.toml (natural training, clean accuracy), three seeds;
#  2. sample quality of each proxy set (`quality`: FID, nearest-real distance, Inception score)
#     judged by CNN-4 trained on all 8,000 training digits (experiments/mnist_cnn4.toml);
#  3. ARC of each set against real digits 4,500–7,999 (experiments/mnist_arc.toml; the oracle's
#     set for ARC is digits 1,000–4,499, disjoint from them);
#  4. the proximity sandwich: `bounds` (ℓ∞, the ARC's norm) of each proxy's seed-0 classifier
#     from step 1 on 1,000 fresh draws of its proxy (held_out/: new seeds for the generators and
#     fitted proxies, real training digits 1–999 for the oracle, which that classifier trained on
#     with weight 0) against the real test digits;
#  5. `rank experiments/mnist_ranking.toml` → runs/mnist_ranking/ranking.{csv,json,md}, sandwich.csv.
# Needs the DDPM and GAN sample sets (see experiments/mnist_port_generative.toml). Every step
# resumes or skips what is done (`arc` skips the seeds it finished under the same settings and
# sets), so the script can be stopped and called again.
#   scripts/proxy-ranking.sh [JOBS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${1:-2}"
LIBTORCH="$(scripts/ensure-libtorch.sh)"
export LIBTORCH
cargo build --release --locked --quiet --features torch
export LD_LIBRARY_PATH="$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=target/release/proxyrobust
out=runs/mnist_ranking
for f in runs/mnist_ddpm/samples.npz runs/mnist_gan/samples.npz; do
  [ -f "$f" ] || { echo "error: $f is missing: sample the generators first (experiments/mnist_port_generative.toml)" >&2; exit 2; }
done

for grid in mnist_proxy_only mnist_proxy_only_natural; do
  "$bin" experiment "experiments/$grid.toml" --jobs "$jobs"
done

[ -f runs/mnist_cnn4/weights.safetensors ] || "$bin" train experiments/mnist_cnn4.toml
mkdir -p "$out/sets"
[ -f "$out/sets/real.npz" ] || "$bin" proxy oracle --train-subset 4500 --count 3500 --out "$out/sets/real.npz"
[ -f "$out/sets/oracle.npz" ] || "$bin" proxy oracle --train-subset 1000 --count 3500 --out "$out/sets/oracle.npz"

sets=runs/mnist_proxy_only/proxies
for p in oracle:$sets/oracle.npz ddpm:runs/mnist_ddpm/samples.npz gan:runs/mnist_gan/samples.npz \
         interpolation:$sets/interpolation.npz gaussian:$sets/gaussian.npz pca-mixture:$sets/pca-mixture.npz; do
  name="${p%%:*}"; file="${p#*:}"
  [ -f "$out/quality/$name/quality.json" ] || "$bin" quality "$file" --config experiments/mnist_cnn4.toml \
    --weights runs/mnist_cnn4/weights.safetensors --real-subset 1000 --out "$out/quality/$name"
  arc_set="$file"; [ "$name" = oracle ] && arc_set="$out/sets/oracle.npz"
  "$bin" arc "$out/sets/real.npz" "$arc_set" \
    --config experiments/mnist_arc.toml --out "$out/arc/$name"
done

held="$out/held_out"
mkdir -p "$held"
[ -f "$held/oracle.npz" ] || "$bin" proxy oracle --train-subset 1 --count 999 --out "$held/oracle.npz"
for kind in interpolation gaussian pca-mixture; do
  [ -f "$held/$kind.npz" ] || "$bin" proxy "$kind" --train-subset 1000 --count 1000 --seed 12345 --out "$held/$kind.npz"
done
for model in ddpm gan; do
  [ -f "$held/$model.npz" ] || "$bin" generator sample "experiments/mnist_$model.toml" \
    --weights "runs/mnist_$model/weights.safetensors" --count 1000 --seed 12345 --out "$held/$model.npz"
done
for name in oracle ddpm gan interpolation gaussian pca-mixture; do
  [ -f "$out/bounds/$name/bounds.json" ] || "$bin" bounds experiments/mnist_cnn4.toml "$held/$name.npz" \
    --weights "runs/mnist_proxy_only/models/port-$name-g0-n10000-s0/weights.safetensors" \
    --norm linf --max-radius 0.6 --out "$out/bounds/$name"
done

"$bin" rank experiments/mnist_ranking.toml --out "$out"
