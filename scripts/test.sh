#!/usr/bin/env bash
# README command 2: set up a fresh machine and run the whole test suite.
# Extra arguments go to pytest, e.g. bash scripts/test.sh -m "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
.venv/bin/python -m pytest "$@"
