#!/usr/bin/env bash
# Every check and every test, starting what they need (PostgreSQL, Kafka) by itself.
# Exits non-zero on the first failing stage; each pytest stage prints its counts.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"

echo "== ruff"
ruff check .
echo "== lint-imports"
lint-imports

echo "== unit and integration tests (one process, SQLite)"
pytest -p no:cacheprovider -m "not postgres and not kafka and not e2e" -q
