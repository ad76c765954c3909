#!/usr/bin/env bash
# Make sure Debian packages the tests drive are installed: PACKAGE:BINARY pairs, e.g.
#   scripts/ensure_apt.sh chromium:/usr/bin/chromium nginx:/usr/sbin/nginx
# Idempotent. Installs with apt-get only when running as root on a machine that has apt-get
# (CI: a clean Debian image). Never fails the caller: a test whose program is missing skips.
set -u
missing=()
for pair in "$@"; do
    package="${pair%%:*}"
    binary="${pair#*:}"
    if [ -x "$binary" ]; then
        echo "ensure_apt: $binary present."
    else
        missing+=("$package")
    fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_apt: ${missing[*]} missing, and not root with apt-get: not installing (their tests skip)."
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
log=/tmp/ensure_apt.log
install() {
    apt-get install -y --no-install-recommends "${missing[@]}" >"$log" 2>&1
}
echo "ensure_apt: installing ${missing[*]} with apt-get..."
if ! install; then
    echo "ensure_apt: first attempt failed; running apt-get update and retrying..."
    if ! apt-get update >>"$log" 2>&1 || ! install; then
        tail -n 5 "$log"
        echo "ensure_apt: could not install ${missing[*]} (log: $log); their tests skip."
        exit 0
    fi
fi
echo "ensure_apt: installed ${missing[*]}."
exit 0
