#!/usr/bin/env bash
# Every test of the workspace: unit, integration (CLI end to end, bad inputs), proptest
# properties and doc tests. PROPTEST_CASES raises the number of property cases (default 256).
# Needs only a Rust toolchain; cargo fetches and builds what is missing (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from https://rustup.rs" >&2; exit 2; }
cargo test --workspace --locked "$@"
