#!/usr/bin/env bash
# Make sure nginx (Debian's package) and systemd-analyze are installed, for the reverse-proxy test that runs the
# recipe docker/nginx/eoffice.conf in front of two `eoffice serve` processes (tests/web/test_nginx_proxy.py) and
# the check of the systemd units in docker/systemd/ (tests/web/test_systemd_units.py). Like ensure-office.sh: quick
# when present, installs with apt-get when root, otherwise says how and carries on (the tests skip, or fail under
# CI=true). The tests run nginx unprivileged on free loopback ports; the package's own service is never started
# here (RUNLEVEL=1: invoke-rc.d treats the install as single-user and leaves it stopped).
set -uo pipefail

PKGS="nginx systemd"

have_all() {
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || return 1
    command -v systemd-analyze >/dev/null 2>&1 || return 1
    return 0
}

if have_all; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-nginx: nginx and systemd-analyze are needed by the reverse-proxy and systemd unit tests:" >&2
    echo "ensure-nginx: run 'sudo apt-get install -y --no-install-recommends $PKGS';" >&2
    echo "ensure-nginx: until then those tests skip (or fail with CI)." >&2
    exit 0
fi
echo "ensure-nginx: installing nginx and systemd (for systemd-analyze) with apt-get..."
export DEBIAN_FRONTEND=noninteractive RUNLEVEL=1
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $PKGS || { apt-get update && apt-get install -y --no-install-recommends $PKGS; } \
    || echo "ensure-nginx: apt-get could not install them; the tests will report it." >&2
exit 0
