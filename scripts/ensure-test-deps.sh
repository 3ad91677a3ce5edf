#!/usr/bin/env bash
# Installs the system programs the tests drive for real (tmux for the end-to-end run in a
# real terminal), when they are missing and we are root. Otherwise says what is missing:
# those tests then skip on a laptop, and fail under CI=true.
set -u
missing=()
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null
    exit $?
fi
echo "not installed: ${missing[*]} (apt-get install ${missing[*]}); the tests that need them will skip" >&2
if [ "${CI:-}" = "true" ]; then
    exit 1
fi
exit 0
