#!/usr/bin/env bash
# Installs the Python expert example (experts/python): a venv with grpcio, and
# Python gRPC stubs generated from proto/ by grpcio-tools. Idempotent; re-run
# after changing proto/. Needs python3 (>= 3.9) with the venv module.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD/experts/python"
python="${PYTHON:-python3}"
command -v "$python" >/dev/null || { echo "error: $python not found; install Python 3 or set PYTHON=" >&2; exit 1; }

if [ ! -x "$root/.venv/bin/python" ]; then
    echo "python expert: creating $root/.venv"
    "$python" -m venv "$root/.venv"
fi
stamp="$root/.venv/.requirements.sha256"
wanted="$(sha256sum "$root/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "python expert: installing $root/requirements.txt"
    "$root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/requirements.txt"
    echo "$wanted" > "$stamp"
fi

echo "python expert: generating stubs from proto/ into $root/gen"
rm -rf "$root/gen"
mkdir -p "$root/gen"
"$root/.venv/bin/python" -m grpc_tools.protoc -I proto/proto \
    --python_out="$root/gen" --grpc_python_out="$root/gen" \
    proto/proto/synod/expert/v1/expert.proto \
    proto/proto/synod/orchestrator/v1/orchestrator.proto
echo "python expert: ready ($root/.venv/bin/python $root/intel_expert.py --help)"
