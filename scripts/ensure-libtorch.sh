#!/usr/bin/env bash
# Makes sure PyTorch 2.11.0 (whose libtorch tch 0.24.0 binds) is installed in a versioned venv in
# the cache folder outside the checkout, so fresh clones reuse it; prints the LIBTORCH path
# (<site-packages>/torch) on stdout. Idempotent: a second call only prints the path.
# The wheel's libtorch_cpu needs the CUDA runtime libraries pip installs beside it; on a machine
# without a GPU they are loaded but unused.
set -euo pipefail
cache="${PROXYROBUST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/proxyrobust}"
venv="$cache/torch-2.11.0"
python="$venv/bin/python"
if ! "$python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.11.0')" 2>/dev/null; then
  command -v python3 >/dev/null || { echo "error: python3 is needed to install libtorch (pip install torch==2.11.0)" >&2; exit 2; }
  echo "installing PyTorch 2.11.0 into $venv (once; about 4.5 GB)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch==2.11.0 >&2
fi
"$python" -c "import os, torch; print(os.path.dirname(torch.__file__))" 2>/dev/null
