#!/usr/bin/env bash
# Installs the Debian packages some tests need, where they are missing and this machine
# can install them (root or password-less sudo, with apt-get), in one apt-get run:
#   chromium    tests/unit/report/test_report.py opens the HTML report in headless Chromium;
#   postgresql  tests/scenarios/test_postgres.py starts its own server from these binaries, in a
#               temporary folder on 127.0.0.1 (the package's own cluster is kept down
#               by a policy-rc.d while it installs);
#   dataset-fashion-mnist  tests/unit/data/test_fashion_mnist.py reads the real files.
# Anywhere else it says why and succeeds: those tests are skipped with that reason and
# the rest of the suite runs.
set -uo pipefail
missing=()
have_chromium=0
for name in chromium chromium-browser google-chrome; do
    command -v "$name" >/dev/null 2>&1 && have_chromium=1
done
[ "$have_chromium" = 1 ] || missing+=(chromium)
have_initdb=0
for initdb in /usr/lib/postgresql/*/bin/initdb; do
    [ -x "$initdb" ] && have_initdb=1
done
[ "$have_initdb" = 1 ] || missing+=(postgresql)
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
[ ${#missing[@]} = 0 ] && exit 0

why="the tests that need ${missing[*]} will be skipped"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-packages: no apt-get here; install ${missing[*]} yourself, or $why" >&2
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    sudo=()
elif sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "install-test-packages: needs root or password-less sudo; $why" >&2
    exit 0
fi
echo "install-test-packages: installing Debian's ${missing[*]} (once)" >&2
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then  # services installed now stay down
    if printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null &&
       "${sudo[@]}" chmod 755 "$policy"; then
        made_policy=1
    fi
fi
if ! { "${sudo[@]}" apt-get update -qq && \
       "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
then
    echo "install-test-packages: apt-get failed; $why" >&2
fi
[ "$made_policy" = 1 ] && "${sudo[@]}" rm -f "$policy"
exit 0
