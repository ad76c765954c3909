.PHONY: demo test lint setup

setup:
	@scripts/bootstrap.sh

demo: setup
	@.venv/bin/agentrec demo

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

test: lint
	@scripts/ensure_apt.sh chromium:/usr/bin/chromium nginx:/usr/sbin/nginx
	.venv/bin/pytest
