#!/usr/bin/env bash
# Attack throughput, side by side in one run on the same weights, data and threads: PGD-20 and
# AutoAttack (standard) in proxyrobust against torchattacks 3.5.1 (docs/attacks.md).
#   scripts/bench-attack.sh [N=500] [EPS=0.1]
# Needs runs/mnist_cnn4_pgd/weights.safetensors (proxyrobust train experiments/mnist_cnn4_pgd.toml)
# and the venv of scripts/reference/attack-venv.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-500}
EPS=${2:-0.1}
export LIBTORCH=$(scripts/ensure-libtorch.sh)
cargo build --release --features torch --quiet
VENV=$(scripts/reference/attack-venv.sh)
WEIGHTS=runs/mnist_cnn4_pgd/weights.safetensors
OURS=$(target/release/proxyrobust eval experiments/mnist_cnn4_pgd.toml --weights "$WEIGHTS" --eps "$EPS" --pgd-steps 20 \
  --autoattack standard --each-attack --limit "$N" --json --quiet --out "$(mktemp -d)")
THEIRS=$("$VENV/bin/python" scripts/reference/torchattacks_crosscheck.py "$WEIGHTS" "$N" "$EPS" --only pgd-20,autoattack 2>/dev/null)
mkdir -p runs/bench-attack
printf '%s\n' "$OURS" > runs/bench-attack/proxyrobust.json
printf '%s\n' "$THEIRS" > runs/bench-attack/torchattacks.json
python3 - "$N" "$OURS" "$THEIRS" <<'PY'
import json, sys
n, ours, theirs = int(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
aa = sum(s["seconds"] for s in ours["autoattack_chain"])
rows = [("pgd-20", ours["pgd_seconds"], theirs["pgd-20_seconds"], ours["pgd_robust_accuracy"], theirs["pgd-20"]),
        ("autoattack", aa, theirs["autoattack_seconds"], ours["autoattack_robust_accuracy"], theirs["autoattack"])]
for name, a, b, ra, rb in rows:
    print(f"{name}: proxyrobust {n / a:.1f} img/s, torchattacks {n / b:.1f} img/s, ratio {b / a:.2f}x; robust accuracy {ra:.4f} vs {rb:.4f}")
PY
