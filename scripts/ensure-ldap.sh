#!/usr/bin/env bash
# Make sure OpenLDAP's server (slapd) and its command-line tools (ldap-utils) are installed for the directory tests
# (tests/eoffice/test_ldap_directory.py start their own slapd on a free loopback port with a temporary config).
# Like ensure-office.sh: quick when present, installs with apt-get when root, otherwise says how and carries on
# (the tests then skip, or fail under CI=true). The package's own configuration is skipped (no system database,
# no service started): the tests and operators bring their own.
set -uo pipefail

PKGS="slapd ldap-utils"

have_all() {
    { command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ]; } || return 1
    command -v ldapadd >/dev/null 2>&1 || return 1
    return 0
}

if have_all; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-ldap: OpenLDAP (slapd) is needed for the directory (LDAP) tests:" >&2
    echo "ensure-ldap: run 'sudo apt-get install -y --no-install-recommends $PKGS';" >&2
    echo "ensure-ldap: until then those tests skip (or fail with CI)." >&2
    exit 0
fi
echo "ensure-ldap: installing OpenLDAP (slapd, ldap-utils) with apt-get, without a system database..."
export DEBIAN_FRONTEND=noninteractive
if command -v debconf-set-selections >/dev/null 2>&1; then
    echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
fi
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $PKGS || { apt-get update && apt-get install -y --no-install-recommends $PKGS; } \
    || echo "ensure-ldap: apt-get could not install them; the tests will report it." >&2
exit 0
