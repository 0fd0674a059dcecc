#!/usr/bin/env bash
# The main job on the embedded default: the Theorem 1 sweep on Gaussian class conditionals.
#   scripts/run.sh [extra arguments for `proxyrobust sweep`]
# Needs a Rust toolchain and Python 3; installs PyTorch 2.11.0 (libtorch) into the cache folder
# once and builds the release binary with the trainer when missing or stale. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from https://rustup.rs" >&2; exit 2; }
LIBTORCH="$(scripts/ensure-libtorch.sh)"
export LIBTORCH
cargo build --release --locked --quiet --features torch
exec ./target/release/proxyrobust sweep experiments/theorem1_gaussian.toml "$@"
