#!/usr/bin/env bash
# README command 1: set up a fresh machine and run the main job on its embedded default: `rlvr train` with the
# quickstart config (SmolLM2-135M-Instruct learns arithmetic on CPU; held-out greedy accuracy before -> after).
# Extra arguments go to `rlvr train`, e.g. bash scripts/quickstart.sh run.seed=1
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh models
.venv/bin/rlvr train "$@"
