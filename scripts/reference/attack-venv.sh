#!/usr/bin/env bash
# A venv with torchattacks 3.5.1 (and safetensors, statsmodels for the certification cross-check)
# over the PyTorch 2.11 of scripts/ensure-libtorch.sh (linked by a
# .pth file, so torch is not downloaded twice); prints its path. A test instrument only.
set -euo pipefail
cd "$(dirname "$0")/../.."
LIBTORCH=$(scripts/ensure-libtorch.sh)
VENV=${PROXYROBUST_ATTACK_VENV:-$HOME/.cache/proxyrobust-dev/attack-venv}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import torchattacks, safetensors, statsmodels" 2>/dev/null; then
  python3 -m venv "$VENV" >&2
  SITE=$(ls -d "$VENV"/lib/python3*/site-packages)
  dirname "$LIBTORCH" > "$SITE/torch-venv.pth"
  "$VENV/bin/pip" install -q --no-deps torchattacks==3.5.1 >&2
  "$VENV/bin/pip" install -q scipy requests tqdm safetensors statsmodels >&2
fi
echo "$VENV"
