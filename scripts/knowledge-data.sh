#!/usr/bin/env bash
# Unpacks the ATT&CK, CAPEC and CWE data the knowledge expert serves from the
# shared datasets beside the checkout (../shared/datasets) into a directory
# (default: data/knowledge, ignored by git), and prints the environment that
# makes `synod up` / `synod expert serve knowledge` serve it:
#
#   eval "$(scripts/knowledge-data.sh)"   # then: cargo run --release -- up
#
# Needs zstd and tar (Debian: zstd, tar).
set -euo pipefail
cd "$(dirname "$0")/.."
datasets="${SYNOD_DATASETS:-../shared/datasets}"
out="${1:-data/knowledge}"
for file in attack-stix/enterprise-attack.json.zst attack-stix/stix-capec.json.zst cwe/cwe-4.19.1-json.tar.zst; do
    [[ -f "$datasets/$file" ]] || { echo "error: $datasets/$file not found; set SYNOD_DATASETS to the shared datasets directory" >&2; exit 1; }
done
command -v zstd >/dev/null || { echo "error: zstd not found; install it (apt-get install zstd)" >&2; exit 1; }
mkdir -p "$out"
[[ -s "$out/enterprise-attack.json" ]] || zstd -q -dc "$datasets/attack-stix/enterprise-attack.json.zst" > "$out/enterprise-attack.json"
[[ -s "$out/stix-capec.json" ]] || zstd -q -dc "$datasets/attack-stix/stix-capec.json.zst" > "$out/stix-capec.json"
[[ -d "$out/json_repo" ]] || zstd -q -dc "$datasets/cwe/cwe-4.19.1-json.tar.zst" | tar -x -C "$out"
abs="$(cd "$out" && pwd)"
echo "export SYNOD_KNOWLEDGE_ATTACK=$abs/enterprise-attack.json"
echo "export SYNOD_KNOWLEDGE_CAPEC=$abs/stix-capec.json"
echo "export SYNOD_KNOWLEDGE_CWE=$abs/json_repo"
