#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser tests (tests/e2e).
#
# Playwright cannot download its own browsers here, so the tests drive the system chromium through
# `executable_path`. When it is missing and we are root, install it with apt-get (with fonts-noto-core for
# Vietnamese text in screenshots). When we are not root, say how to install it and carry on: the browser tests
# then skip on a developer machine, or fail under CI=true, with their own message.
set -uo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-chromium: 'chromium' is not installed and this is not root, so it cannot be installed here." >&2
    echo "ensure-chromium: run 'sudo apt-get update && sudo apt-get install -y chromium fonts-noto-core';" >&2
    echo "ensure-chromium: until then the browser tests skip (or fail when CI is set)." >&2
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: 'chromium' is missing and apt-get is not available; install Chromium by hand." >&2
    exit 0
fi

echo "ensure-chromium: installing Debian's chromium (apt-get) for the browser tests..."
export DEBIAN_FRONTEND=noninteractive
if apt-get update && apt-get install -y chromium fonts-noto-core; then
    echo "ensure-chromium: $(chromium --version 2>/dev/null || echo 'chromium installed')"
else
    echo "ensure-chromium: apt-get could not install chromium; the browser tests will report it." >&2
fi
exit 0
