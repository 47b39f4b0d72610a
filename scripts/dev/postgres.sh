#!/usr/bin/env bash
# Local PostgreSQL for Quire tests and development, run as a plain process on 127.0.0.1.
#
# Usage: scripts/dev/postgres.sh {start|stop|crash|status|env}
#
#   start   install PostgreSQL from Debian's packages if missing, initdb once, start the server,
#           wait until it accepts connections, create role `quire` and the Quire databases.
#           Idempotent: succeeds at once when the server is already up.
#   stop    fast shutdown (rolls back open transactions, disconnects clients).
#   crash   immediate shutdown (pg_ctl stop -m immediate: no checkpoint, crash recovery at the
#           next start), for fault drills on a server of their own (tests/faults/test_postgres_crash.py).
#   status  exit 0 if the server accepts connections, non-zero otherwise.
#   env     print `export ...DATABASE_URL=...` lines; use as: eval "$(scripts/dev/postgres.sh env)"
#
# Environment:
#   QUIRE_STATE_DIR          state/cache root, default $HOME/.cache/quire (never inside the repo)
#   QUIRE_PG_PORT            TCP port on 127.0.0.1, default 55432
#   QUIRE_PG_START_TIMEOUT   seconds to wait for readiness, default 60
#   QUIRE_EXTERNAL_POSTGRES  =1: the user runs their own server and sets the *DATABASE_URL
#                            variables; `start`/`status` only check that DATABASE_URL answers,
#                            `stop` does nothing, `env` echoes the user's variables.
#
# Security note: authentication is `trust` for the unix socket and 127.0.0.1, i.e. any local
# user can connect as any role without a password. That is acceptable for a throw-away dev/test
# server bound to loopback only; never reuse this setup for anything holding real data.
set -euo pipefail

readonly STATE_ROOT="${QUIRE_STATE_DIR:-$HOME/.cache/quire}"
readonly PG_STATE="$STATE_ROOT/postgres"
readonly PG_DATA="$PG_STATE/data"
readonly PG_RUN="$PG_STATE/run"   # unix socket dir: keeps us clear of /var/run/postgresql
readonly PG_LOGDIR="$PG_STATE/log"
readonly PG_LOG="$PG_LOGDIR/postgres.log"
readonly PG_PORT="${QUIRE_PG_PORT:-55432}"
readonly PG_HOST=127.0.0.1
readonly START_TIMEOUT="${QUIRE_PG_START_TIMEOUT:-60}"
readonly APP_USER=quire
readonly APP_PASSWORD=quire
# env var name prefix -> database name; DATABASE_URL is the default connection.
readonly DB_VARS=(DATABASE_URL ACCOUNTS_DATABASE_URL CATALOG_DATABASE_URL ORDERS_DATABASE_URL RECOMMENDATIONS_DATABASE_URL)
readonly DB_NAMES=(quire_default quire_accounts quire_catalog quire_orders quire_recommendations)

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# initdb and postgres refuse to run as root, so as root everything server-side runs as the
# `postgres` OS user; as a normal user we simply run as ourselves.
RUN_AS=()
if [[ $EUID -eq 0 ]]; then
    RUN_AS=(runuser -u postgres --)
fi
as_pg() { "${RUN_AS[@]}" "$@"; }

# Newest installed major version, unless the data dir was created by a specific one
# (a data dir only works with the major version that created it).
find_pg_bin() {
    local want="" dir
    if [[ -r "$PG_DATA/PG_VERSION" ]]; then
        want=$(<"$PG_DATA/PG_VERSION")
        dir="/usr/lib/postgresql/$want/bin"
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            printf '%s\n' "$dir"
            return 0
        fi
        return 1
    fi
    # The glob sorts lexically (10 < 9); pick the highest major numerically.
    local best
    best=$(for dir in /usr/lib/postgresql/*/bin; do
               if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
                   printf '%s\n' "$dir"
               fi
           done | sort -t/ -k5,5n | tail -n1)
    [[ -n "$best" ]] || return 1
    printf '%s\n' "$best"
}

# Install PostgreSQL from Debian without letting the package start the system-wide cluster
# (it would listen on 5432): a temporary policy-rc.d tells invoke-rc.d "do not start services".
apt_install() {
    local created_policy=0
    if [[ $EUID -ne 0 ]]; then
        die "PostgreSQL is not installed and we are not root; run: sudo apt-get install -y postgresql"
    fi
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    log "installing $* from Debian packages (one-time)"
    local rc=0
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; } >&2 || rc=$?
    if [[ $created_policy -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
    [[ $rc -eq 0 ]] || die "apt-get install $* failed (rc=$rc)"
}

ensure_installed() {
    if ! PG_BIN=$(find_pg_bin); then
        if [[ -r "$PG_DATA/PG_VERSION" ]]; then
            die "data dir $PG_DATA was created by PostgreSQL $(<"$PG_DATA/PG_VERSION"), whose binaries are missing; install that version or remove $PG_STATE"
        fi
        apt_install postgresql
        PG_BIN=$(find_pg_bin) || die "PostgreSQL binaries still missing under /usr/lib/postgresql/*/bin after install"
    fi
    if [[ $EUID -eq 0 ]] && ! id -u postgres >/dev/null 2>&1; then
        # The Debian package creates this user; this covers binaries installed some other way.
        log "creating system user postgres"
        useradd --system --user-group --no-create-home --home-dir /var/lib/postgresql \
            --shell /usr/sbin/nologin postgres
    fi
}

# The server process must be able to reach its data dir. The default state dir lives under
# /root (mode 700) when we are root, so grant the postgres user search (x) permission on the
# ancestors it cannot traverse. This exposes no listing or file contents, only path traversal.
ensure_traversable() {
    [[ $EUID -eq 0 ]] || return 0
    local dir="$PG_STATE" parents=()
    while [[ "$dir" != "/" && -n "$dir" ]]; do
        dir=$(dirname "$dir")
        parents=("$dir" "${parents[@]}")
    done
    for dir in "${parents[@]}"; do
        if ! runuser -u postgres -- test -x "$dir"; then
            log "granting search permission (o+x) on $dir so the postgres user can reach $PG_STATE"
            chmod o+x "$dir"
        fi
    done
}

prepare_dirs() {
    mkdir -p "$PG_STATE"
    ensure_traversable
    mkdir -p "$PG_RUN" "$PG_LOGDIR"
    # Pre-create the log so that it belongs to the server user: we append initdb's output to
    # it as root, and pg_ctl (running as postgres) must still be able to write it.
    touch "$PG_LOG"
    if [[ $EUID -eq 0 ]]; then
        chown postgres:postgres "$PG_STATE" "$PG_RUN" "$PG_LOGDIR" "$PG_LOG"
    fi
    chmod 700 "$PG_RUN"
}

# Settings that may change between runs (port) live in quire.conf, rewritten on every start
# and included from postgresql.conf, so initdb's defaults stay untouched.
write_conf() {
    local tmp
    tmp=$(mktemp)
    cat > "$tmp" <<EOF
# Managed by scripts/dev/postgres.sh; rewritten on each start.
listen_addresses = '$PG_HOST'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
max_connections = 200
# A commit is acknowledged only after its WAL reached the operating system, so a crash of
# PostgreSQL itself (kill -9, pg_ctl stop -m immediate) loses no acknowledged order: the
# application's promise (a 201 means the order and its outbox rows exist) holds here too.
synchronous_commit = on
# Test/dev only: no fsync to disk and no full-page images. What that gives up is a crash of
# the whole machine (power loss, kernel panic), which can lose or corrupt this disposable cluster.
fsync = off
full_page_writes = off
EOF
    chmod 644 "$tmp"
    if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$tmp"; fi
    mv "$tmp" "$PG_DATA/quire.conf"
}

init_cluster() {
    [[ -f "$PG_DATA/PG_VERSION" ]] && return 0
    log "initdb in $PG_DATA"
    # A half-created dir from an interrupted initdb would make initdb refuse; start clean.
    rm -rf "$PG_DATA"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" --username=postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >>"$PG_LOG" 2>&1 \
        || { tail -n 30 "$PG_LOG" >&2; die "initdb failed (log: $PG_LOG)"; }
    # Loopback-only trust auth (see the security note at the top).
    as_pg tee "$PG_DATA/pg_hba.conf" >/dev/null <<'EOF'
# Managed by scripts/dev/postgres.sh: dev/test only, loopback trust.
local   all   all                  trust
host    all   all   127.0.0.1/32   trust
EOF
    printf "\ninclude_if_exists = 'quire.conf'\n" | as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null
}

pg_ready() {
    local isready
    isready="${PG_BIN:-}/pg_isready"
    [[ -x "$isready" ]] || isready=pg_isready
    "$isready" -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1
}

# Poll pg_isready over TCP (what the app will use) until it answers or the deadline passes.
wait_ready() {
    local deadline=$1
    until pg_ready; do
        if (( SECONDS >= deadline )); then
            tail -n 40 "$PG_LOG" >&2 || true
            die "PostgreSQL did not accept connections on $PG_HOST:$PG_PORT within ${START_TIMEOUT}s (log: $PG_LOG)"
        fi
        sleep 0.2
    done
}

psql_admin() {
    as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U postgres -d postgres
}

ensure_role_and_dbs() {
    local names
    names=$(printf "'%s'," "${DB_NAMES[@]}")
    names=${names%,}
    psql_admin >/dev/null <<EOF
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP_USER') THEN
    CREATE ROLE $APP_USER LOGIN SUPERUSER PASSWORD '$APP_PASSWORD';
  END IF;
END
\$\$;
SELECT format('CREATE DATABASE %I OWNER %I', d, '$APP_USER')
  FROM unnest(ARRAY[$names]) AS d
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = d)
\gexec
EOF
}

# ---- external server mode -----------------------------------------------------------------

# Reachability of a postgres:// URL: pg_isready understands URIs; without client tools fall
# back to a bare TCP connect to host:port parsed from the URL.
url_reachable() {
    local url="$1" isready=""
    if command -v pg_isready >/dev/null 2>&1; then
        isready=pg_isready
    elif PG_BIN=$(find_pg_bin 2>/dev/null); then
        isready="$PG_BIN/pg_isready"
    fi
    if [[ -n "$isready" ]]; then
        "$isready" -q -t 5 -d "$url"
        return
    fi
    local re='^postgres(ql)?://([^@/]*@)?([^:/?]+)(:([0-9]+))?'
    [[ "$url" =~ $re ]] || return 1
    # shellcheck disable=SC2016  # $1/$2 are expanded by the inner bash, on purpose
    timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "${BASH_REMATCH[3]}" "${BASH_REMATCH[5]:-5432}" 2>/dev/null
}

external_check() {
    [[ -n "${DATABASE_URL:-}" ]] || die "QUIRE_EXTERNAL_POSTGRES=1 but DATABASE_URL is not set"
    url_reachable "$DATABASE_URL" || die "external PostgreSQL at DATABASE_URL is not reachable"
    log "external PostgreSQL (DATABASE_URL) is reachable"
}

# ---- commands -----------------------------------------------------------------------------

cmd_start() {
    if [[ "${QUIRE_EXTERNAL_POSTGRES:-}" == 1 ]]; then
        external_check
        return
    fi
    ensure_installed
    prepare_dirs
    # Serialise concurrent `start`s (parallel test jobs) on one lock.
    exec 9>"$PG_STATE/.lock"
    flock 9
    if pg_ready; then
        # Something answers on the port: it must be this state directory's server (its socket is
        # here), not one of another checkout or state directory that would get our databases.
        [[ -S "$PG_RUN/.s.PGSQL.$PG_PORT" ]] \
            || die "$PG_HOST:$PG_PORT answers, but not as this state directory's server ($PG_STATE): stop that server, or set QUIRE_PG_PORT to a free port"
        ensure_role_and_dbs
        log "already running on $PG_HOST:$PG_PORT"
        return 0
    fi
    init_cluster
    write_conf
    local t0=$SECONDS
    # pg_ctl -w polls the postmaster itself (and notices at once if it dies during startup);
    # -t bounds that wait. Then pg_isready confirms the TCP listener within the same deadline.
    # 9>&-: the server must not inherit the lock fd, or it would hold the lock for its lifetime.
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$START_TIMEOUT" start >/dev/null 9>&- \
        || { tail -n 40 "$PG_LOG" >&2 || true; die "pg_ctl start failed (log: $PG_LOG)"; }
    wait_ready $((t0 + START_TIMEOUT))
    ensure_role_and_dbs
    log "started on $PG_HOST:$PG_PORT in $((SECONDS - t0))s (data: $PG_DATA, log: $PG_LOG)"
}

cmd_stop() {
    if [[ "${QUIRE_EXTERNAL_POSTGRES:-}" == 1 ]]; then
        log "external PostgreSQL: nothing to stop"
        return 0
    fi
    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
        log "not initialised; nothing to stop"
        return 0
    fi
    PG_BIN=$(find_pg_bin) || die "PostgreSQL binaries not found"
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
        log "not running"
        return 0
    fi
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
    log "stopped"
}

cmd_crash() {
    [[ "${QUIRE_EXTERNAL_POSTGRES:-}" == 1 ]] && die "external PostgreSQL: not ours to crash"
    PG_BIN=$(find_pg_bin) || die "PostgreSQL binaries not found"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1 || { log "not running"; return 0; }
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 60 stop >/dev/null
    log "crashed (immediate shutdown; the next start recovers from the WAL)"
}

cmd_status() {
    if [[ "${QUIRE_EXTERNAL_POSTGRES:-}" == 1 ]]; then
        [[ -n "${DATABASE_URL:-}" ]] && url_reachable "$DATABASE_URL" && { log "external: reachable"; return 0; }
        log "external: not reachable"
        return 1
    fi
    PG_BIN=$(find_pg_bin 2>/dev/null) || PG_BIN=""
    if pg_ready; then
        log "running on $PG_HOST:$PG_PORT (data: $PG_DATA)"
        return 0
    fi
    log "not running"
    return 1
}

cmd_env() {
    local i
    if [[ "${QUIRE_EXTERNAL_POSTGRES:-}" == 1 ]]; then
        # The user owns these URLs; echo whatever they set so `eval` is a no-op for them.
        printf 'export QUIRE_EXTERNAL_POSTGRES=1\n'
        for i in "${!DB_VARS[@]}"; do
            if [[ -n "${!DB_VARS[i]:-}" ]]; then
                printf 'export %s=%q\n' "${DB_VARS[i]}" "${!DB_VARS[i]}"
            fi
        done
        return 0
    fi
    for i in "${!DB_VARS[@]}"; do
        printf 'export %s=%s\n' "${DB_VARS[i]}" \
            "postgres://$APP_USER:$APP_PASSWORD@$PG_HOST:$PG_PORT/${DB_NAMES[i]}"
    done
}

main() {
    case "${1:-}" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        crash) cmd_crash ;;
        status) cmd_status ;;
        env) cmd_env ;;
        *) printf 'usage: %s {start|stop|crash|status|env}\n' "$0" >&2; exit 2 ;;
    esac
}

main "$@"
