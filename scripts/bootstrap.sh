#!/usr/bin/env bash
# Create or refresh the project's virtual environment at .venv from the pinned lock file.
# Idempotent: does nothing when .venv already matches requirements.lock and pyproject.toml.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
stamp=".venv/.agentrec-installed"
want="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "Setting up .venv with the pinned dependencies of requirements.lock (about a minute)..." >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
pip_quiet() {
    if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" >"$log" 2>&1; then
        grep -v "is ignored: it is neither" "$log" >&2
        echo "error: pip install $* failed" >&2
        exit 1
    fi
}
[ -x .venv/bin/python ] || "$python" -m venv .venv
# A fresh venv's pip (23.x) cannot resolve the langchain stack: upgrade it first.
pip_quiet --upgrade pip
pip_quiet -r requirements.lock
pip_quiet --no-deps --no-build-isolation -e .
.venv/bin/agentrec --help >/dev/null
echo "$want" > "$stamp"
echo "Ready: .venv" >&2
