#!/usr/bin/env bash
# Attack throughput, side by side in one run on the same weights, data and threads: PGD-20 and
# AutoAttack (standard) in proxyrobust against torchattacks 3.5.1 (docs/attacks.md).
#   scripts/bench-attack.sh [N=100] [EPS=0.1] [ROUNDS=3] [PGD_N=2000]
# AutoAttack runs on the first N test digits; PGD-20, much faster, in calls of its own on the
# first PGD_N (all 2,000 by default, so its timing is not a sub-second blip). The two tools
# alternate, ROUNDS times (the order swapped every round), so machine noise falls on both; the
# summary gives the median per-round ratio and its range. Every JSON output is kept under
# runs/bench-attack/.
# Needs runs/mnist_cnn4_pgd/weights.safetensors (proxyrobust train experiments/mnist_cnn4_pgd.toml)
# and the venv of scripts/reference/attack-venv.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
EPS=${2:-0.1}
ROUNDS=${3:-3}
PGD_N=${4:-2000}
export LIBTORCH=$(scripts/ensure-libtorch.sh)
cargo build --release --features torch --quiet
VENV=$(scripts/reference/attack-venv.sh)
WEIGHTS=runs/mnist_cnn4_pgd/weights.safetensors
OUT=runs/bench-attack
mkdir -p "$OUT"
rm -f "$OUT"/round-*.json
ours() {
  target/release/proxyrobust eval experiments/mnist_cnn4_pgd.toml --weights "$WEIGHTS" --eps "$EPS" --pgd-steps 20 \
    --limit "$PGD_N" --json --quiet --out "$(mktemp -d)" > "$OUT/round-$1-proxyrobust-pgd.json"
  target/release/proxyrobust eval experiments/mnist_cnn4_pgd.toml --weights "$WEIGHTS" --eps "$EPS" \
    --autoattack standard --limit "$N" --json --quiet --out "$(mktemp -d)" > "$OUT/round-$1-proxyrobust.json"
}
theirs() {
  "$VENV/bin/python" scripts/reference/torchattacks_crosscheck.py "$WEIGHTS" "$PGD_N" "$EPS" --only pgd-20 \
    2>/dev/null > "$OUT/round-$1-torchattacks-pgd.json"
  "$VENV/bin/python" scripts/reference/torchattacks_crosscheck.py "$WEIGHTS" "$N" "$EPS" --only autoattack \
    2>/dev/null > "$OUT/round-$1-torchattacks.json"
}
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then ours "$round"; theirs "$round"; else theirs "$round"; ours "$round"; fi
done
python3 - "$N" "$ROUNDS" "$OUT" "$PGD_N" <<'PY' | tee "$OUT/comparison.md"
import json, sys, statistics, pathlib
n, rounds, out, pgd_n = int(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3]), int(sys.argv[4])
rows = ["| round | PGD-20 ours (s) | PGD-20 torchattacks (s) | ratio | AutoAttack ours (s) | AutoAttack torchattacks (s) | ratio | robust acc. ours / torchattacks (PGD-20; AutoAttack) | our chain: APGD-CE / APGD-T / FAB-T / Square (s) |",
        "|---|---|---|---|---|---|---|---|---|"]
pgd_ratios, aa_ratios = [], []
for r in range(1, rounds + 1):
    ours = json.loads((out / f"round-{r}-proxyrobust.json").read_text())
    theirs = json.loads((out / f"round-{r}-torchattacks.json").read_text())
    ours.update({k: v for k, v in json.loads((out / f"round-{r}-proxyrobust-pgd.json").read_text()).items() if k.startswith("pgd")})
    theirs.update(json.loads((out / f"round-{r}-torchattacks-pgd.json").read_text()))
    chain = [s for s in ours["autoattack_chain"] if s["attack"] != "clean"]
    aa = sum(s["seconds"] for s in chain)
    pgd_ratios.append(theirs["pgd-20_seconds"] / ours["pgd_seconds"])
    aa_ratios.append(theirs["autoattack_seconds"] / aa)
    rows.append(f"| {r} | {ours['pgd_seconds']:.2f} | {theirs['pgd-20_seconds']:.2f} | {pgd_ratios[-1]:.2f}x | {aa:.1f} | {theirs['autoattack_seconds']:.1f} | {aa_ratios[-1]:.2f}x | "
                f"{ours['pgd_robust_accuracy']:.4f} / {theirs['pgd-20']:.4f}; {ours['autoattack_robust_accuracy']:.4f} / {theirs['autoattack']:.4f} | "
                + " / ".join(f"{s['seconds']:.1f}" for s in chain) + " |")
rows.append("")
rows.append(f"PGD-20 on {pgd_n} digits, AutoAttack on {n}: PGD-20 ratio (ours faster when > 1) median {statistics.median(pgd_ratios):.2f}x, range {min(pgd_ratios):.2f}–{max(pgd_ratios):.2f}; "
            f"AutoAttack median {statistics.median(aa_ratios):.2f}x, range {min(aa_ratios):.2f}–{max(aa_ratios):.2f} over {rounds} rounds")
print("\n".join(rows))
PY
