#!/usr/bin/env bash
# The README's service, chat, Redis and start-up figures, on one commit, one after the other
# (about 40 minutes on 2 cores; run it on a quiet machine). Each benchmark writes its JSON to
# benchmarks/results/; this prints what each printed, with the time it started.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
P=.venv/bin/python
run() { echo "=== $(date -u +%H:%M:%S) $*"; "$@"; echo "=== rc $?"; }
git rev-parse --short HEAD
uptime
run $P -m benchmarks.load_matrix
run $P -m benchmarks.cpu_profile
run $P -m benchmarks.redis_memory
run env AGENTREC_FAILOVER_JSON=benchmarks/results/failover.json .venv/bin/pytest -q -s tests/app/test_failover.py -p no:cacheprovider
run .venv/bin/agentrec eval --protocol redial --data ../shared/data/redial/valid_data.jsonl --train ../shared/data/redial/train_data.jsonl --catalog ../shared/data/ml-latest-small --catalog-format movielens-csv --json benchmarks/results/redial_valid.json --plot benchmarks/results/redial_valid.png
run $P -m benchmarks.chat_latency
run $P -m benchmarks.title_linking
run $P -m benchmarks.llm_cost
run $P -m benchmarks.startup
uptime
