#!/usr/bin/env bash
# The Gaussian-pair check of the ARC bound through the network route: for each pair (real
# N(0, I), proxy N(m, s²I)) in d dimensions, `sample-gaussian` draws the two vector sets, `w2` gives
# the closed-form W2, and `arc` trains MLP discriminators by the warm-started ladder over 21 radii
# from 0 to W2 (three seeds). Theorem 2 with the Wasserstein bound: 4·ARC ≤ W2.
#   scripts/arc-gaussians.sh [OUT=runs/arc-gaussians] [POINTS=2000]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/arc-gaussians}"; points="${2:-2000}"
LIBTORCH="$(scripts/ensure-libtorch.sh)"
export LIBTORCH
cargo build --release --locked --quiet --features torch
bin=target/release/proxyrobust
python="$(dirname "$(dirname "$(dirname "$(dirname "$LIBTORCH")")")")/bin/python"
mkdir -p "$out"
: > "$out/results.jsonl"
# N(shift·e1, scale²·I) in d dimensions as npz (`mean`, `cov`, float64), with the standard library.
gaussian_npz() { "$python" - "$@" <<'PY'
import struct, sys, zipfile
d, shift, scale, path = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def npy(shape, values):
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': %s, }" % (str(tuple(shape)),)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + struct.pack("<%dd" % len(values), *values)
mean = [shift] + [0.0] * (d - 1)
cov = [scale * scale if i == j else 0.0 for i in range(d) for j in range(d)]
with zipfile.ZipFile(path, "w") as z:
    z.writestr("mean.npy", npy((d,), mean))
    z.writestr("cov.npy", npy((d, d), cov))
PY
}
# d, mean shift along the first axis, standard deviation of the proxy
for pair in "2 0.8 1.0" "2 0.0 1.5" "5 1.0 1.0" "5 0.5 1.3"; do
  set -- $pair
  case="$out/d$1-m$2-s$3"
  mkdir -p "$case"
  gaussian_npz "$1" 0 1 "$case/real_gaussian.npz"
  gaussian_npz "$1" "$2" "$3" "$case/proxy_gaussian.npz"
  "$bin" sample-gaussian "$case/real_gaussian.npz" --count $((2 * points)) --seed 1 --out "$case/real.npz" > /dev/null
  "$bin" sample-gaussian "$case/proxy_gaussian.npz" --count $((2 * points)) --seed 2 --out "$case/proxy.npz" > /dev/null
  w2=$("$bin" w2 "$case/real_gaussian.npz" "$case/proxy_gaussian.npz")
  eps=$("$python" -c "w=float('$w2'); print(', '.join(repr(round(w*k/20, 10)) for k in range(21)))")
  printf 'name = "ladder"\nmodel = "mlp"\nnorm = "l2"\nseeds = [0, 1, 2]\nheld_out = %s\nepochs = 20\nladder_epochs = 6\nlr = 0.05\ntrain_steps = 5\neval_steps = 10\nthreads = 2\nepsilons = [%s]\n' \
    $((points / 2)) "$eps" > "$case/ladder.toml"
  "$bin" arc "$case/real.npz" "$case/proxy.npz" --config "$case/ladder.toml" --out "$case/ladder" --json --quiet > "$case/ladder.json"
  "$python" -c "import json; s=json.load(open('$case/ladder.json')); w=float('$w2'); print(json.dumps({'dim': $1, 'shift': $2, 'scale': $3, 'w2': w, 'arc_mean': s['arc_mean'], 'arc_std': s['arc_std'], 'four_arc_over_w2': 4*s['arc_mean']/w, 'holds_within_spread': 4*(s['arc_mean']-s['arc_std']) <= w, 'seconds': s['seconds']}))" | tee -a "$out/results.jsonl"
done
