#!/usr/bin/env bash
# Make sure iproute2 (ip, tc) and iptables are installed for the tests that build impaired links out of network
# namespaces (tests/netbed.py, tests/e2e/test_video_links.py) and for bench/sfu_links.py, and coturn (turnserver)
# for the TURN relay tests (tests/meetings/test_turn_relay.py). Like ensure-chromium.sh: installs with apt-get when
# root, otherwise says how and carries on (the tests skip, or fail under CI=true).
set -uo pipefail

if command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1 && command -v iptables >/dev/null 2>&1 \
    && command -v turnserver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-netbed: iproute2, iptables and coturn are needed for the impaired-link and TURN tests:" >&2
    echo "ensure-netbed: run 'sudo apt-get install -y iproute2 iptables coturn'; until then those tests skip (or fail with CI)." >&2
    exit 0
fi
echo "ensure-netbed: installing iproute2, iptables and coturn (apt-get) for the impaired-link and TURN tests..."
export DEBIAN_FRONTEND=noninteractive
# coturn's package enables no service by itself (TURNSERVER_ENABLED is off in /etc/default/coturn); the tests start
# their own turnserver on a random port.
apt-get install -y iproute2 iptables coturn || { apt-get update && apt-get install -y iproute2 iptables coturn; } \
    || echo "ensure-netbed: apt-get could not install them; the tests will report it." >&2
exit 0
