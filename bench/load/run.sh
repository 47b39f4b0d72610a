#!/usr/bin/env bash
# The mixed workload against one or more topologies, measured and plotted (bench/load/run.py):
#
#   bench/load/run.sh one-process|services|grouped... [--users 20] [--spawn-rate 5] [--time 60s]
#                     [--data goodbooks|demo] [--out DIR] [--docs]
#
# Results under var/load/<date-time>/; PostgreSQL and Kafka (services, grouped) from scripts/dev,
# chosen by QUIRE_STATE_DIR, QUIRE_PG_PORT, QUIRE_KAFKA_PORT as for the tests. --help for every option.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${VENV:-.venv}/bin/python"
if ! "$PY" -c 'import importlib.util, sys; sys.exit(any(importlib.util.find_spec(m) is None for m in ("locust", "matplotlib", "psutil")))' 2>/dev/null; then
    echo "run.sh: the load generator needs requirements/bench.txt in ${VENV:-.venv}: run make install" >&2
    exit 1
fi
exec "$PY" bench/load/run.py "$@"
