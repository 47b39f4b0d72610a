#!/usr/bin/env bash
# Every check and every test, starting what they need (PostgreSQL, Kafka) by itself.
# Exits non-zero on the first failing stage; each pytest stage prints its counts.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"

# pytest exits 5 when a stage selects no test (e.g. a marker nobody uses yet): not a failure.
run_pytest() {
    local status=0
    pytest -p no:cacheprovider -q "$@" || status=$?
    if [[ $status -eq 5 ]]; then echo "(no tests in this stage)"; return 0; fi
    return "$status"
}

echo "== ruff"
ruff check .
echo "== lint-imports"
lint-imports
echo "== event contracts against the released schemas (docs/contracts.lock.json)"
python manage.py check_contracts
# Graphviz's dot draws the service map (docs/modules.svg, /api/map/svg/); installed from Debian if missing.
scripts/dev/graphviz.sh ensure

DATABASE_VARIABLES=(DATABASE_URL ACCOUNTS_DATABASE_URL CATALOG_DATABASE_URL ORDERS_DATABASE_URL RECOMMENDATIONS_DATABASE_URL)

echo "== unit and integration tests (one process, SQLite)"
# The embedded default, whatever database URLs the caller's environment holds.
(
    unset "${DATABASE_VARIABLES[@]}"
    run_pytest -n 2 -m "not postgres and not kafka and not e2e and not deploy and not image and not fuzz"
)

# Fuzzing stage (tests/fuzz): schemathesis over each module's OpenAPI schema on the one-process shop
# (SQLite, events in-process), anonymously and with a customer's token, every applicable check, a
# fixed seed and QUIRE_FUZZ_MAX_EXAMPLES (75) examples per operation; any failure prints a curl to replay.
echo "== fuzzing (schemathesis over each module's schema, one-process shop)"
(
    unset "${DATABASE_VARIABLES[@]}"
    run_pytest -s -m fuzz tests/fuzz
)

# docker/ and deploy/ as the tools that deploy them read them: both compose files through compose-go
# (the Compose Spec loader), deploy/ rendered by kustomize and decoded strictly into the Kubernetes
# API types (deploy/validate, Go; its module and build caches under ${QUIRE_STATE_DIR:-~/.cache/quire}/go).
echo "== deployment files (compose-go; kustomize and the Kubernetes API types)"
run_pytest -s -m "deploy and not image" tests/deploy

# --- real servers ----------------------------------------------------------------------------
# Started once for the run (idempotent: a server already running, or given by the caller through
# the *DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS variables, is used as it is). What this run started,
# it stops at the end.
echo "== starting PostgreSQL and Kafka"
# PostgreSQL URLs given by the caller mean "use my server" (scripts/dev/postgres.sh then only checks it).
if [[ "${DATABASE_URL:-}" == postgres* && -z "${QUIRE_EXTERNAL_POSTGRES:-}" ]]; then
    export QUIRE_EXTERNAL_POSTGRES=1
fi
stop_after=()
scripts/dev/postgres.sh status >/dev/null 2>&1 || stop_after+=(postgres)
scripts/dev/kafka.sh status >/dev/null 2>&1 || stop_after+=(kafka)
cleanup() {
    for server in "${stop_after[@]}"; do scripts/dev/"$server".sh stop >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
scripts/dev/postgres.sh start
scripts/dev/kafka.sh start
eval "$(scripts/dev/postgres.sh env)"
eval "$(scripts/dev/kafka.sh env)"

echo "== integration tests on PostgreSQL and Kafka"
run_pytest -m "(postgres or kafka) and not e2e and not image"

# ---------------------------------------------------------------------------------------------
# End-to-end stage (tests/e2e): the same HTTP flows against (a) one `run_service` process on
# SQLite with in-process events and (b) the four services on PostgreSQL and Kafka behind the
# nginx gateway (scripts/services.sh on free ports, fresh databases, its own topic prefix).
echo "== end-to-end (one process; services on PostgreSQL + Kafka behind nginx)"
run_pytest -m e2e tests/e2e

# ---------------------------------------------------------------------------------------------
# Container stage (tests/deploy/test_image.py): docker/Dockerfile built with podman (chroot isolation;
# its python:3.11-slim base made once from Debian's packages, scripts/image.sh), then both compose
# topologies started from the image with the environment compose gives each container: the key step,
# migrations, demo data, the one-process shop, and the four services behind the gateway through a
# checkout confirmed over Kafka. The local PostgreSQL, Kafka and nginx stand in for compose's registry
# images. Base image, wheels and image store are cached in ${QUIRE_STATE_DIR:-~/.cache/quire}/image.
echo "== container stage (the image built and run: podman/buildah, chroot isolation)"
run_pytest -s -m image tests/deploy
