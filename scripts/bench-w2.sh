#!/usr/bin/env bash
# W2 benchmark, side by side with shared/reference/w2_reference.py on the same inputs, in one run.
#   scripts/bench-w2.sh [REPS] [SMALL_REPS]
# REPS repetitions at d = 3072 (the reference times numpy and POT once there), SMALL_REPS (default
# 200) at d = 128 on both sides, where a single call takes about a millisecond.
# Writes runs/bench-w2/{d128,d3072,second}/bench.json, reference-*.json and comparison.md; prints
# the comparison.
# The reference needs numpy, scipy and POT: they go into a venv under the cache folder.
set -euo pipefail
cd "$(dirname "$0")/.."
reps="${1:-5}"
small_reps="${2:-200}"
. scripts/reference-env.sh
out=runs/bench-w2
cargo build --release --locked --quiet --example bench
./target/release/examples/bench w2 --dims 128 --reps "$small_reps" --out "$out/d128" > /dev/null
./target/release/examples/bench w2 --dims 3072 --reps "$reps" --out "$out/d3072" > /dev/null
"$venv/bin/python" "$ref/w2_reference.py" --a "$out/d128/w2_d128_a.npz" --b "$out/d128/w2_d128_b.npz" --routes chol,pot,sqrtm --reps "$small_reps" --json > "$out/reference-d128.json"
"$venv/bin/python" "$ref/w2_reference.py" --a "$out/d3072/w2_d3072_a.npz" --b "$out/d3072/w2_d3072_b.npz" --routes chol,pot --reps 1 --json > "$out/reference-d3072.json"
# A second pass of ours after the reference, so drift in machine load shows up in the table.
./target/release/examples/bench w2 --dims 3072 --reps "$reps" --out "$out/second" > /dev/null
"$venv/bin/python" - "$out" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
# d128 last: its cwd timing (SMALL_REPS repetitions) is the one kept.
ours = {(t["name"], t["dim"]): t for run in ("d3072", "d128") for t in json.loads((out / run / "bench.json").read_text())["timings"]}
second = {(t["name"], t["dim"]): t for t in json.loads((out / "second" / "bench.json").read_text())["timings"]}
rows = ["| computation | ours (s, median) | ours, 2nd pass | numpy chol+eigvalsh | POT | scipy sqrtm | numpy/ours | POT/ours | values agree |",
        "|---|---|---|---|---|---|---|---|---|"]
for d in (128, 3072):
    ref = json.loads((out / f"reference-d{d}.json").read_text())
    o = ours[("w2", d)]
    s2 = second.get(("w2", d), {}).get("seconds_median", float("nan"))
    sq = ref.get("sqrtm", {}).get("seconds", float("nan"))
    agree = abs(o["value"] - ref["chol"]["w2"]) <= 1e-9 * abs(ref["chol"]["w2"])
    rows.append(f"| W2 d={d} | {o['seconds_median']:.4g} | {s2:.4g} | {ref['chol']['seconds']:.4g} | {ref['pot']['seconds']:.4g} | {sq:.4g} | "
                f"{ref['chol']['seconds'] / o['seconds_median']:.2f}x | {ref['pot']['seconds'] / o['seconds_median']:.1f}x | {agree} |")
ref128 = json.loads((out / "reference-d128.json").read_text())
c = ours[("cwd_k10", 128)]
rows.append(f"| cwd K=10 d=128 | {c['seconds_median']:.4g} | | {10 * ref128['chol']['seconds']:.4g} (10 x W2) | {10 * ref128['pot']['seconds']:.4g} (10 x W2) | | "
            f"{10 * ref128['chol']['seconds'] / c['seconds_median']:.2f}x | {10 * ref128['pot']['seconds'] / c['seconds_median']:.1f}x | |")
text = "\n".join(rows) + "\n"
(out / "comparison.md").write_text(text)
print(text)
PY
