# Sourced by the benchmark scripts: sets $ref (shared/reference) and $venv, a Python venv with
# numpy, scipy and POT in a versioned cache folder outside the checkout, created when missing.
ref="${PROXYROBUST_REFERENCE:-../shared/reference}"
cache="${PROXYROBUST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/proxyrobust}"
venv="$cache/reference-venv-v1"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import numpy, scipy, ot" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet numpy scipy pot
fi
