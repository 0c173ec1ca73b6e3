#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/test_report.py opens the
# HTML report in it), if it is missing and this machine can install it: as root or
# with password-less sudo, through apt-get. Anywhere else it says why and succeeds,
# and those tests are skipped with that reason; the rest of the suite runs.
set -uo pipefail
for name in chromium chromium-browser google-chrome; do
    command -v "$name" >/dev/null 2>&1 && exit 0
done
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: no apt-get here; install Chromium yourself to run the browser tests" >&2
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    sudo=()
elif sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "install-chromium: needs root or password-less sudo; the browser tests will be skipped" >&2
    exit 0
fi
echo "install-chromium: installing Debian's chromium package (once)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { "${sudo[@]}" apt-get update -qq && \
       "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
    echo "install-chromium: apt-get failed; the browser tests will be skipped" >&2
fi
exit 0
