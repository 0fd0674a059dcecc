#!/usr/bin/env bash
# The main job on the embedded default: the Theorem 1 sweep on Gaussian class conditionals.
#   scripts/run.sh [extra arguments for `proxyrobust sweep`]
# Needs only a Rust toolchain; builds the release binary when missing or stale (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from https://rustup.rs" >&2; exit 2; }
cargo build --release --locked --quiet
exec ./target/release/proxyrobust sweep experiments/theorem1_gaussian.toml "$@"
