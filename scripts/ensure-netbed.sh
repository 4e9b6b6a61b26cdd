#!/usr/bin/env bash
# Make sure iproute2 (ip, tc) and iptables are installed for the tests that build impaired links out of network
# namespaces (tests/netbed.py, tests/e2e/test_video_links.py) and for bench/sfu_links.py. Like ensure-chromium.sh:
# installs with apt-get when root, otherwise says how and carries on (the tests skip, or fail under CI=true).
set -uo pipefail

if command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1 && command -v iptables >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-netbed: iproute2 and iptables are needed for the impaired-link tests:" >&2
    echo "ensure-netbed: run 'sudo apt-get install -y iproute2 iptables'; until then those tests skip (or fail with CI)." >&2
    exit 0
fi
echo "ensure-netbed: installing iproute2 and iptables (apt-get) for the impaired-link tests..."
export DEBIAN_FRONTEND=noninteractive
apt-get install -y iproute2 iptables || { apt-get update && apt-get install -y iproute2 iptables; } \
    || echo "ensure-netbed: apt-get could not install them; the tests will report it." >&2
exit 0
