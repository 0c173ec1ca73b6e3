#!/usr/bin/env bash
# Installs Debian's PostgreSQL server for the storage tests (tests/test_postgres.py starts
# its own server from these binaries, in a temporary folder on 127.0.0.1), if it is
# missing and this machine can install it: as root or with password-less sudo, through
# apt-get. The package's own cluster is not started: a policy-rc.d keeps services down
# while it installs. Anywhere else it says why and succeeds, and those tests are skipped
# with that reason; the rest of the suite runs.
set -uo pipefail
for initdb in /usr/lib/postgresql/*/bin/initdb; do
    [ -x "$initdb" ] && exit 0
done
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-postgres: no apt-get here; install the PostgreSQL server yourself to run" \
         "the PostgreSQL storage tests" >&2
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    sudo=()
elif sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "install-postgres: needs root or password-less sudo; the PostgreSQL storage tests" \
         "will be skipped" >&2
    exit 0
fi
echo "install-postgres: installing Debian's postgresql package (once)" >&2
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    # Services installed now stay down: the tests start their own server.
    if printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null &&
       "${sudo[@]}" chmod 755 "$policy"; then
        made_policy=1
    fi
fi
if ! { "${sudo[@]}" apt-get update -qq && \
       "${sudo[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }; then
    echo "install-postgres: apt-get failed; the PostgreSQL storage tests will be skipped" >&2
fi
if [ "$made_policy" = 1 ]; then
    "${sudo[@]}" rm -f "$policy"
fi
exit 0
