#!/usr/bin/env bash
# Sets up (system packages included) and runs the whole test suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
source scripts/env.sh
set +e
python -m pytest "$@"
rc=$?
set -e
# pytest exits 5 when it collected no tests: that is a failure, not a pass.
if [ $rc -eq 5 ]; then echo "[test] no tests were collected: failing" >&2; exit 1; fi
exit $rc
