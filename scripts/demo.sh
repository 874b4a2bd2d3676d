#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, then serve the browser demo with the bundled model
# on http://127.0.0.1:7860 (extra arguments go to `asr demo`, e.g. --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/asr demo "$@"
