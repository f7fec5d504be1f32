#!/usr/bin/env bash
# Creates eval/.venv with the Python side of the peer benchmark:
#   - aiohttp, for the loopback echo server (`bench.py serve`) that the
#     `http` expert of `synod-eval bench` calls, so the server is the very
#     process LangGraph was measured against;
#   - with --langgraph, also the pinned LangGraph packages of
#     ../shared/bench/README.md, to re-run the LangGraph side back to back.
# Usage: eval/scripts/bench-venv.sh [--langgraph]   (from anywhere)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$here/.venv"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then
            python="$candidate"
            break
        fi
    done
fi
if [[ -z "$python" ]]; then
    echo "error: no python3 found; install Python 3.11 or set PYTHON=/path/to/python" >&2
    exit 1
fi

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
packages=(aiohttp==3.14.5)
if [[ "${1:-}" == "--langgraph" ]]; then
    packages+=(langgraph==1.2.22 langgraph-checkpoint==4.3.2 langgraph-checkpoint-sqlite==3.1.2)
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}"
"$venv/bin/python" -c 'import aiohttp; print("aiohttp", aiohttp.__version__)'
echo "ready: $venv/bin/python (synod-eval bench finds it there)"
