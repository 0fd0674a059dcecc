#!/usr/bin/env bash
# Every test of the workspace: unit, integration (CLI end to end, bad inputs), proptest
# properties (PROPTEST_CASES raises the default 256 cases), doc tests, the trainer's tests on
# libtorch (feature `torch`), and the proofs-check walk of every written proof.
# Needs a Rust toolchain and Python 3; installs PyTorch 2.11.0 (libtorch) into the cache folder
# once (scripts/ensure-libtorch.sh) and lets cargo fetch the rest. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from https://rustup.rs" >&2; exit 2; }
LIBTORCH="$(scripts/ensure-libtorch.sh)"
export LIBTORCH
# One-shot builds gain nothing from incremental caches, which would double the disk used.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo test --workspace --locked --features torch "$@"
cargo run --locked --quiet -p proofs-check -- --cases 300
