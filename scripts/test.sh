#!/usr/bin/env bash
# One command for the test suite on a fresh machine: installs what is missing, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest --durations=15 "$@"  # the slowest tests, so a slow-down shows in CI
