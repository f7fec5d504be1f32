#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver (Debian packages `chromium` and
# `chromium-driver`) for the dashboard browser test (tests/tests/dashboard.rs).
# Idempotent: does nothing when both are already installed. Needs root or sudo
# and a Debian/Ubuntu apt.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if have chromium && have chromedriver; then
    echo "browser: $(chromium --version 2>/dev/null | head -1), $(chromedriver --version | head -1)"
    exit 0
fi
have apt-get || { echo "error: apt-get not found; install Chromium and chromedriver by hand (put \`chromium\` and \`chromedriver\` on PATH)" >&2; exit 1; }
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    have sudo || { echo "error: installing Chromium needs root; run this script as root or install sudo" >&2; exit 1; }
    sudo="sudo"
fi
echo "browser: installing chromium and chromium-driver with apt-get"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
echo "browser: $(chromium --version 2>/dev/null | head -1), $(chromedriver --version | head -1)"
