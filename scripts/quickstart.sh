#!/usr/bin/env bash
# README command 1: set up a fresh machine and run the main job on its embedded default.
# Until the trainer lands, the main job is the verifier demo on the embedded example completions.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/rlvr demo
