#!/usr/bin/env bash
# Installs the system programs the tests drive for real, when they are missing and we are
# root: tmux (the end-to-end run in a real terminal), Prometheus and HAProxy (the sandbox
# of examples/sandbox), PostgreSQL and Node.js (a real Unleash server for the flag
# integration tests), Chromium (the HTML report rendered in a real browser), and the
# pinned unleash-server itself from npm into .cache/unleash (gitignored). Otherwise says
# what is missing: those tests then skip on a laptop, and fail under CI=true.
set -u
cd "$(dirname "$0")/.."
status=0
missing=()
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
# Prometheus and HAProxy: the sandbox the integration tests release against (haproxy
# lives in /usr/sbin, which is not on every PATH).
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# initdb and postgres live in /usr/lib/postgresql/<version>/bin on Debian, not on PATH.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    missing+=(postgresql)
fi
if ! command -v node >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi
# Chromium: tests/test_report.py renders the HTML report in a real headless browser.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing ${missing[*]} from Debian's packages"
        export DEBIAN_FRONTEND=noninteractive
        if ! { apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
            status=1
        fi
    else
        echo "not installed: ${missing[*]} (apt-get install ${missing[*]}); the tests that need them will skip" >&2
        [ "${CI:-}" = "true" ] && status=1
    fi
fi

# unleash-server, exactly as pinned by scripts/unleash/package-lock.json. Install scripts
# are skipped: the server needs none, and one of them phones home.
cache=.cache/unleash
if [ -f "$cache/node_modules/unleash-server/package.json" ] \
        && cmp -s scripts/unleash/package-lock.json "$cache/package-lock.json"; then
    :
elif command -v npm >/dev/null 2>&1; then
    echo "installing unleash-server from npm into $cache"
    mkdir -p "$cache"
    cp scripts/unleash/package.json scripts/unleash/package-lock.json "$cache/"
    if ! (cd "$cache" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null); then
        echo "npm could not install unleash-server; the Unleash tests will skip" >&2
        rm -f "$cache/package-lock.json"
        [ "${CI:-}" = "true" ] && status=1
    fi
else
    echo "npm not installed: the Unleash tests will skip" >&2
    [ "${CI:-}" = "true" ] && status=1
fi
exit $status
