#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need, then runs pytest.
# Extra arguments go to pytest (e.g. `bash tests/run.sh -k outbox`).
set -euo pipefail
cd "$(dirname "$0")/.."
# The IMAP tests run against a real, throw-away Dovecot (tests/email/dovecot.py); the browser tests
# drive Debian's Chromium through Playwright (no browser download: `playwright install` is never run).
missing=()
command -v dovecot >/dev/null || missing+=(dovecot-imapd)
[ -x /usr/lib/chromium/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "tests/run.sh: the tests need: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
exec python3 -m pytest "$@"
