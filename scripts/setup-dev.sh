#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust with rustup first" >&2; exit 1; }
echo "rust toolchain: $(cargo --version)"

# The Python expert example (experts/python) and its interop test.
scripts/setup-python-expert.sh

# Headless Chromium for the dashboard browser test.
scripts/setup-browser.sh

# The `synod` binary, for tests that run it as a separate process
# (eval/tests/faults.rs starts `synod serve` from the same cargo profile).
cargo build --locked -p synod-server --bin synod
