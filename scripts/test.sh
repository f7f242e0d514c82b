#!/usr/bin/env bash
# README command 2: set up a fresh machine (Python env, Docker engine, sandbox image) and run the whole test suite.
# Extra arguments go to pytest, e.g. bash scripts/test.sh -m "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
bash scripts/setup_sandbox.sh  # apt packages, dockerd and the sandbox image: the sandbox tests use them for real
.venv/bin/python -m pytest "$@"
