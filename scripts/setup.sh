#!/usr/bin/env bash
# Sets up benchgen on a fresh Debian machine: system packages, then a project venv (.venv) with
# the locked Python dependencies. Idempotent and quick when everything is already there.
#   scripts/setup.sh            runtime (MuJoCo CPU rendering via OSMesa, OCCT's GL libs)
#   scripts/setup.sh --test     + Chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(libosmesa6 libgl1 libx11-6)
[ "${1:-}" = "--test" ] && pkgs+=(chromium)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY="${BENCHGEN_PYTHON:-python3}"
"$PY" -m uv --version >/dev/null 2>&1 || "$PY" -m pip install -q uv
[ -x .venv/bin/python ] || "$PY" -m uv venv -q .venv --python "$PY"
# Bytecode compiled at install: processes (and Dagster run workers) then start without
# recompiling every import, even where PYTHONDONTWRITEBYTECODE is set.
"$PY" -m uv pip install -q --compile-bytecode --python .venv/bin/python -r requirements.lock
"$PY" -m uv pip install -q --python .venv/bin/python --no-deps -e .
# uv compiles only what it installs: an existing venv whose bytecode was dropped is compiled once.
SITE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ -d "$SITE/dagster/__pycache__" ] || .venv/bin/python -m compileall -q -j 0 "$SITE" >/dev/null
echo "[setup] ready: $(.venv/bin/python --version), dagster $(.venv/bin/python -c 'import dagster; print(dagster.__version__)')"
