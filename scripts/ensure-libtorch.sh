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
# The CUDA headers libtorch's ProcessGroupNCCL.hpp includes beyond the wheel's (crt/ and cccl's
# nv/), so the C++ shim of torch-ext builds the NCCL backend (docs/distributed.md). Small; once.
site="$("$python" -c "import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))" 2>/dev/null)"
if [ -d "$site/nvidia/nccl" ] && { [ ! -f "$site/nvidia/cu13/include/crt/host_config.h" ] || [ ! -d "$site/nvidia/cu13/include/nv" ]; }; then
  echo "installing CUDA 13.0 headers for the NCCL backend into $venv (once)" >&2
  "$venv/bin/pip" install --quiet "nvidia-cuda-crt==13.0.*" "nvidia-cuda-cccl==13.0.*" >&2 \
    || echo "warning: CUDA headers not installed; the build will have the Gloo backend only" >&2
fi
"$python" -c "import os, torch; print(os.path.dirname(torch.__file__))" 2>/dev/null
