#!/usr/bin/env bash
# Every test of the workspace: unit, integration (CLI end to end, bad inputs), proptest
# properties (PROPTEST_CASES raises the default 256 cases), doc tests, and the proofs-check walk
# of every written proof. Needs only a Rust toolchain; cargo fetches and builds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from https://rustup.rs" >&2; exit 2; }
cargo test --workspace --locked "$@"
cargo run --locked --quiet -p proofs-check -- --cases 300
