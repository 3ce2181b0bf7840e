#!/usr/bin/env bash
# Sets up (system packages included) and runs the main jobs on the offline author (no key, no
# network): 10 tier-1 benchmark scenarios and the teacher over the shipped sample episodes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
python -m benchgen_assets.manager generate --tier 1 --count 10 "$@"
python -m teacher_assets.manager run --episodes datasets/oxe
