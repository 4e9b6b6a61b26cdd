#!/usr/bin/env bash
# Make sure Debian's Glewlwyd (an OpenID Provider) is installed for the OpenID Connect login tests
# (tests/oidc_provider.py starts one per test module, unprivileged, on a loopback port with its own SQLite file).
# Like ensure-office.sh: quick when present, installs with apt-get when root, otherwise says how and carries on
# (the tests then skip, or fail under CI=true).
#
# The package's post-install step would configure a system-wide database (and, finding PostgreSQL on this
# machine, try to load its schema into a database "glewlwyd" that does not exist, failing the install): the
# debconf answer "No configuration" skips that. The tests use only the binary, its modules, its web
# application and its SQLite schema.
set -uo pipefail

have() {
    command -v glewlwyd >/dev/null 2>&1 && [ -f /usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz ] \
        && [ -d /usr/share/glewlwyd/webapp ]
}

if have; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-oidc-provider: Glewlwyd (OpenID Provider) is needed by the SSO login tests:" >&2
    echo "ensure-oidc-provider: run 'echo \"glewlwyd glewlwyd/config_type select No configuration\" | sudo debconf-set-selections; sudo apt-get install -y --no-install-recommends glewlwyd';" >&2
    echo "ensure-oidc-provider: until then those tests skip (or fail with CI)." >&2
    exit 0
fi
echo "ensure-oidc-provider: installing Glewlwyd with apt-get..."
export DEBIAN_FRONTEND=noninteractive
echo "glewlwyd glewlwyd/config_type select No configuration" | debconf-set-selections
apt-get install -y --no-install-recommends glewlwyd || { apt-get update && apt-get install -y --no-install-recommends glewlwyd; } \
    || echo "ensure-oidc-provider: apt-get could not install glewlwyd; the tests will report it." >&2
# a half-configured package from an earlier attempt (its post-install step failed): finish it with the answer above
dpkg --configure -a >/dev/null 2>&1 || true
have || echo "ensure-oidc-provider: glewlwyd is still missing; the tests will report it." >&2
exit 0
