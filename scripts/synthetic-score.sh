#!/usr/bin/env bash
# Figure 5 and Table 11 on MNIST-10k: `score` trains a robust discriminator
# (experiments/mnist_arc.toml, first seed) at ℓ∞ ε = EPSILON between real digits the proxies never
# saw (digits 4,500–7,999) and a proxy set of 10,000 samples (PROXY_SET, by default the DDPM's
# runs/mnist_ddpm/samples.npz; experiments/mnist_port_generative.toml says how to make it), scores
# every sample, and writes the score-sorted set as ten groups and the 5,000 lowest-score samples
# beside 5,000 random ones (runs/mnist_score/); then PORT on each group
# (experiments/mnist_score_groups.toml, three seeds) and on the selected against the random half
# (experiments/mnist_score_selection.toml, three seeds). The experiments resume where they
# stopped; runs/mnist_score/ belongs to one proxy set, so move it away before scoring another.
# EPSILON has no default: it must lie where the discriminator still tells proxy samples from real
# digits, or every sample scores alike. With experiments/mnist_arc.toml's recipe a DDPM
# discriminator stepped from ε = 0 straight to ℓ∞ 0.05 sits at chance, one stepped by 0.01 reaches
# 0.60 there; `score` trains at EPSILON directly, so check the held-out robust accuracy in
# runs/mnist_score/summary.json is well above 0.5 before the PORT runs use the groups.
#   scripts/synthetic-score.sh EPSILON [JOBS=2] [PROXY_SET=runs/mnist_ddpm/samples.npz]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "error: EPSILON: the radius of the scoring discriminator, where it still tells DDPM samples from real ones (at most 0.05 on MNIST ℓ∞)" >&2; exit 2; }
epsilon="$1"; jobs="${2:-2}"; proxy_set="${3:-runs/mnist_ddpm/samples.npz}"
LIBTORCH="$(scripts/ensure-libtorch.sh)"
export LIBTORCH
cargo build --release --locked --quiet --features torch
export LD_LIBRARY_PATH="$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=target/release/proxyrobust
[ -f "$proxy_set" ] || { echo "error: PROXY_SET $proxy_set is missing: sample the DDPM first (or name another set)" >&2; exit 2; }
real=runs/mnist_ranking/sets/real.npz
[ -f "$real" ] || { mkdir -p "$(dirname "$real")"; "$bin" proxy oracle --train-subset 4500 --count 3500 --out "$real"; }
[ -f runs/mnist_score/summary.json ] || "$bin" score "$real" "$proxy_set" \
  --config experiments/mnist_arc.toml --epsilon "$epsilon" --groups 10 --select 5000 --out runs/mnist_score
for grid in mnist_score_groups mnist_score_selection; do
  "$bin" experiment "experiments/$grid.toml" --jobs "$jobs"
done
