#!/usr/bin/env bash
# Make sure Debian's Chromium is at /usr/bin/chromium for the browser test (tests/app/test_browser.py).
# Idempotent. Installs with apt-get only when running as root on a machine that has apt-get
# (CI: a clean Debian image). Never fails the caller: without Chromium the browser test skips.
set -u
chromium=/usr/bin/chromium

if [ -x "$chromium" ]; then
    echo "ensure_chromium: $chromium present; nothing to do."
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "ensure_chromium: $chromium missing and not root; not installing (the browser test will skip)."
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: $chromium missing and no apt-get; not installing (the browser test will skip)."
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
install() {
    apt-get install -y --no-install-recommends chromium >/tmp/ensure_chromium.log 2>&1
}
echo "ensure_chromium: installing chromium with apt-get..."
if ! install; then
    echo "ensure_chromium: first install attempt failed; running apt-get update and retrying..."
    if ! apt-get update >>/tmp/ensure_chromium.log 2>&1 || ! install; then
        tail -n 5 /tmp/ensure_chromium.log
        echo "ensure_chromium: could not install chromium (log: /tmp/ensure_chromium.log); the browser test will skip."
        exit 0
    fi
fi
if [ -x "$chromium" ]; then
    echo "ensure_chromium: installed $("$chromium" --version 2>/dev/null || echo "$chromium")."
else
    echo "ensure_chromium: apt-get finished but $chromium is still missing; the browser test will skip."
fi
exit 0
