#!/usr/bin/env bash
# The split shop on this machine: services on PostgreSQL and Kafka behind one nginx gateway, one
# process per group of modules (QUIRE_SERVICES; by default the four single-module services).
#
# Usage: scripts/services.sh {start|stop [--all]|status|restart|manage MODULE ARGS...}
#
#   start    PostgreSQL and Kafka (scripts/dev/*), Kafka topics, each service's migrations, static
#            files, the services (`manage.py run_service`, one per word of QUIRE_SERVICES, in the background),
#            then the nginx gateway on 127.0.0.1:$PORT. Idempotent: what already runs is left alone.
#   stop     the gateway and the services this script started; with --all also PostgreSQL and Kafka.
#   status   what runs, and whether the gateway and each service answer; exit 1 if anything is down.
#   manage   run `manage.py ARGS...` as the service that serves MODULE (its databases, Kafka settings), e.g.
#            scripts/services.sh manage accounts createsuperuser   (staff: once, in accounts; every admin accepts them)
#            scripts/services.sh manage catalog import_catalog books.csv
#
# Environment (all optional):
#   QUIRE_SERVICES           the processes: each word one service, `+` joins modules into one process, e.g.
#                            "accounts+catalog+orders recommendations" (default "accounts catalog orders
#                            recommendations"). Every module exactly once. A grouped service is
#                            SERVICE=accounts,catalog,orders; its port is its first module's, its
#                            `default` database (staff, sessions) its first module's database, its
#                            state files <name>.pid/.log with the `+` name. The gateway routes each
#                            module's prefixes to the service that serves it.
#   PORT                     gateway port on 127.0.0.1 (default 8000)
#   QUIRE_<MODULE>_PORT      a service's gunicorn port (default 8101 accounts, 8102 catalog, 8103 orders,
#                            8104 recommendations; a grouped service takes its first module's);
#                            services bind 127.0.0.1 only
#   QUIRE_SERVICES_DIR       state: pid files, logs, rendered nginx config (default var/services)
#   QUIRE_SERVICE_WORKERS    gunicorn workers per service (default 1; each has WEB_THREADS threads, 4)
#   QUIRE_<MODULE>_WORKERS   one service's gunicorn workers (default QUIRE_SERVICE_WORKERS); a grouped
#                            service reads its first module's
#   DEBUG                    unset: the services run with production settings (DEBUG=false, JSON logs,
#                            this checkout's var/ secret and key pair); DEBUG=true for development mode
#   <MODULE>_DATABASE_URL    a service's database (default: from scripts/dev/postgres.sh env)
#   KAFKA_BOOTSTRAP_SERVERS  the broker (default: from scripts/dev/kafka.sh env)
#   KAFKA_TOPIC_PREFIX       topic and consumer-group prefix (default quire); two shops on one broker
#                            need two prefixes
#   STATIC_ROOT              collectstatic target that nginx serves at /static/ (default staticfiles)
#   QUIRE_SEED_DEMO          =0 skips demo data (default 1: seed when the shop is empty, if supported)
#   QUIRE_START_TIMEOUT      seconds each step may take to become ready (default 90)
#
# From the image (the test suite's container stage): with QUIRE_IMAGE_CONTAINER=<a buildah working
# container of the Quire image> (scripts/image.sh from NAME), every Quire process (ensure_topics,
# migrate, seed_demo, run_service, manage) runs from the image through `scripts/image.sh run`
# (buildah run --isolation=chroot --net=host) instead of this checkout's venv, and static files are
# copied out of the image as compose's `static` step does. Each process gets the variables of
# $QUIRE_CONTAINER_ENV_DIR/<module>.env (topics.env for ensure_topics; NAME=value lines, e.g. a
# compose file's environment for that container) plus the ones this script sets (SERVICE, database,
# Kafka). The host's network stands in for the container's own, so services bind 127.0.0.1.
#   QUIRE_CONTAINER_VOLUMES  space-separated HOST:CONTAINER[:ro] mounts for those processes (e.g. the keys)
set -euo pipefail
cd "$(dirname "$0")/.."
readonly ROOT=$PWD
readonly PY="$ROOT/${VENV:-.venv}/bin/python"
readonly MODULES=(accounts catalog orders recommendations)
readonly STATE="${QUIRE_SERVICES_DIR:-$ROOT/var/services}"
readonly GATEWAY_PORT="${PORT:-8000}"
readonly WORKERS="${QUIRE_SERVICE_WORKERS:-1}"
readonly TIMEOUT="${QUIRE_START_TIMEOUT:-90}"
readonly CONTAINER="${QUIRE_IMAGE_CONTAINER:-}"
export STATIC_ROOT="${STATIC_ROOT:-$ROOT/staticfiles}"
export KAFKA_TOPIC_PREFIX="${KAFKA_TOPIC_PREFIX:-quire}"

log() { printf 'services.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

upper() { printf '%s' "$1" | tr '[:lower:]' '[:upper:]'; }

# The processes of QUIRE_SERVICES, each as its `+` name (accounts+catalog+orders), into SERVICES;
# every module exactly once, or the start fails saying what to set.
parse_services() {
    local word module seen=" " modules words
    SERVICES=()
    read -r -a words <<<"${QUIRE_SERVICES:-${MODULES[*]}}"  # split on blanks, no glob expansion
    for word in "${words[@]}"; do
        [[ $word != *,* ]] \
            || die "QUIRE_SERVICES joins modules with +, not a comma ('$word'): set it like \"accounts+catalog+orders recommendations\""
        [[ $word != +* && $word != *+ && $word != *++* ]] \
            || die "QUIRE_SERVICES has an empty module in '$word': join modules with one + between two names, like \"accounts+catalog+orders recommendations\""
        IFS=+ read -r -a modules <<<"$word"
        for module in "${modules[@]}"; do
            [[ " ${MODULES[*]} " == *" $module "* ]] \
                || die "QUIRE_SERVICES names '$module', not a module: set it to words of ${MODULES[*]} joined by +"
            [[ $seen != *" $module "* ]] || die "QUIRE_SERVICES names $module twice: set each module in exactly one service"
            seen+="$module "
        done
        SERVICES+=("$word")
    done
    for module in "${MODULES[@]}"; do
        [[ $seen == *" $module "* ]] || die "QUIRE_SERVICES leaves out $module: set each module in exactly one service"
    done
}

first_module() { printf '%s' "${1%%+*}"; }
service_var() { printf '%s' "${1//+/,}"; }  # accounts+catalog -> SERVICE=accounts,catalog

service_of() {  # the service (its + name) that serves a module
    local service
    for service in "${SERVICES[@]}"; do
        [[ "+$service+" == *"+$1+"* ]] && { printf '%s' "$service"; return; }
    done
    die "no service of QUIRE_SERVICES serves $1"
}

# A process's `+` name as Django names it (SERVICE for all four modules is "all"): its cookie and log names.
service_port() { port_of "$(first_module "$1")"; }

port_of() {
    local module=$1 var default
    var="QUIRE_$(upper "$module")_PORT"
    case $module in
        accounts) default=8101 ;; catalog) default=8102 ;; orders) default=8103 ;; recommendations) default=8104 ;;
    esac
    printf '%s' "${!var:-$default}"
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(<"$1")" 2>/dev/null; }

# `eval` a dev script's `export NAME=value` lines, keeping any NAME the caller already set.
import_env_defaults() {
    local line name
    while IFS= read -r line; do
        [[ $line =~ ^export\ ([A-Za-z_][A-Za-z0-9_]*)= ]] || continue
        name=${BASH_REMATCH[1]}
        if [[ -z "${!name:-}" ]]; then eval "$line"; fi
    done <<<"$1"
}

http_ok() { curl -fsS -o /dev/null --max-time 3 "$1" 2>/dev/null; }

# "ready", or "NOT ready: <each failing check and why>" from a /health/ready/ URL, then the relay's and
# consumer's last progress where the service runs them ("relay 0s ago"); exit 1 unless ready.
ready_state() {
    local body
    body=$(curl -sS --max-time 10 "$1" 2>&1) || { printf 'NOT answering (%s)' "$body"; return 1; }
    printf '%s' "$body" | "$PY" -c '
import json, sys
try:
    report = json.load(sys.stdin)
except ValueError:
    print("NOT ready: no readiness report"); sys.exit(1)
checks = report.get("checks", {})
failing = ["%s: %s" % (name, check.get("error", "failing")) for name, check in checks.items() if check.get("status") != "ok"]
ages = ["%s %.0fs ago" % (n, c["age_seconds"]) for n, c in checks.items() if c.get("status") == "ok" and "age_seconds" in c]
state = "ready" if report.get("status") == "ok" else "NOT ready: " + "; ".join(failing or ["unknown"])
print(state + (" (last progress: %s)" % ", ".join(ages) if ages else ""))
sys.exit(0 if report.get("status") == "ok" else 1)'
}

wait_http() {  # url, what, pid file whose process must stay alive, log to show on failure
    local url=$1 what=$2 pidfile=$3 logfile=$4 deadline=$((SECONDS + TIMEOUT))
    until http_ok "$url"; do
        if ! pid_alive "$pidfile"; then
            tail -n 40 "$logfile" >&2 || true
            die "$what exited during start (log: $logfile)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 40 "$logfile" >&2 || true
            die "$what did not answer $url within ${TIMEOUT}s (log: $logfile)"
        fi
        sleep 0.3
    done
}

# `buildah run` arguments for a Quire process from the image, into CONTAINER_ARGS: the variables of
# <name>.env, then this script's own, the mounts, then the working container.
container_args() {
    local name=$1 file="${QUIRE_CONTAINER_ENV_DIR:-}/$1.env" line variable volume
    CONTAINER_ARGS=(--volume "$STATE:$STATE")
    if [[ -n ${QUIRE_CONTAINER_ENV_DIR:-} && -f $file ]]; then
        while IFS= read -r line; do [[ -n $line ]] && CONTAINER_ARGS+=(--env "$line"); done <"$file"
    fi
    # Every module's URL: a grouped service takes those of the modules it serves.
    for variable in SERVICE EVENT_TRANSPORT DATABASE_URL ACCOUNTS_DATABASE_URL CATALOG_DATABASE_URL \
        ORDERS_DATABASE_URL RECOMMENDATIONS_DATABASE_URL KAFKA_BOOTSTRAP_SERVERS \
        KAFKA_TOPIC_PREFIX DJANGO_SUPERUSER_USERNAME DJANGO_SUPERUSER_PASSWORD DJANGO_SUPERUSER_EMAIL; do
        if [[ -n ${!variable:-} ]]; then CONTAINER_ARGS+=(--env "$variable=${!variable}"); fi
    done
    for volume in ${QUIRE_CONTAINER_VOLUMES:-}; do CONTAINER_ARGS+=(--volume "$volume"); done
    CONTAINER_ARGS+=("$CONTAINER" --)
}

# manage.py ARGS as the process <name> (a module, or topics): from the venv, or from the image.
manage_as() {
    local name=$1
    shift
    if [[ -n $CONTAINER ]]; then
        container_args "$name"
        "$ROOT/scripts/image.sh" run "${CONTAINER_ARGS[@]}" python manage.py "$@"
    else
        "$PY" "$ROOT/manage.py" "$@"
    fi
}

# Run manage.py as one service (its `+` name): its first module's database is also its `default`
# (contrib apps); every module's URL variable is exported, and the process takes those it serves.
as_service() {
    local service=$1 url_var
    shift
    url_var="$(upper "$(first_module "$service")")_DATABASE_URL"
    (
        export SERVICE="$(service_var "$service")" EVENT_TRANSPORT=kafka DATABASE_URL="${!url_var}"
        manage_as "$(first_module "$service")" "$@"
    )
}

nginx_bin() { command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; }; }

start_infra() {
    if [[ -z "$(nginx_bin)" ]]; then
        [[ -x scripts/dev/nginx.sh ]] || die "nginx is not installed and scripts/dev/nginx.sh is missing"
        scripts/dev/nginx.sh install >&2
    fi
    scripts/dev/postgres.sh start
    import_env_defaults "$(scripts/dev/postgres.sh env)"
    scripts/dev/kafka.sh start
    import_env_defaults "$(scripts/dev/kafka.sh env)"
    local module url_var
    for module in "${MODULES[@]}"; do
        url_var="$(upper "$module")_DATABASE_URL"
        [[ -n "${!url_var:-}" ]] || die "$url_var is not set and scripts/dev/postgres.sh env did not set it"
        export "${url_var?}"
    done
    [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]] || die "KAFKA_BOOTSTRAP_SERVERS is not set"
    export KAFKA_BOOTSTRAP_SERVERS
}

prepare() {
    log "creating Kafka topics (prefix $KAFKA_TOPIC_PREFIX)"
    (export SERVICE=all EVENT_TRANSPORT=kafka && manage_as topics ensure_topics >&2)
    if [[ -n $CONTAINER ]]; then
        # compose's `static` step: the image's collected files, copied out for the gateway.
        log "copying the image's static files into $STATIC_ROOT (from $CONTAINER)"
        mkdir -p "$STATIC_ROOT"
        "$ROOT/scripts/image.sh" run --user 0:0 --volume "$STATIC_ROOT:/static" "$CONTAINER" -- \
            sh -c 'cp -R /app/staticfiles/. /static/' >&2
        log "running every Quire process from the image (buildah run --net=host: the host's network" \
            "stands in for each container's own, so services bind 127.0.0.1 instead of 0.0.0.0)"
    else
        # The first settings load creates the development JWT key pair (DEBUG); doing it once, before
        # the services start together, gives all four the same pair.
        log "collecting static files into $STATIC_ROOT"
        "$PY" manage.py collectstatic --noinput --verbosity 0
    fi
    log "migrating the databases of ${SERVICES[*]}"
    local service pids=() failed=0
    for service in "${SERVICES[@]}"; do
        as_service "$service" migrate --noinput --verbosity 0 >"$STATE/migrate-$service.log" 2>&1 &
        pids+=($!)
    done
    for i in "${!SERVICES[@]}"; do
        if ! wait "${pids[i]}"; then
            tail -n 30 "$STATE/migrate-${SERVICES[i]}.log" >&2
            log "migrate failed for ${SERVICES[i]} (log: $STATE/migrate-${SERVICES[i]}.log)"
            failed=1
        fi
    done
    ((failed == 0)) || die "migrations failed"
}

workers_of() {
    local var
    var="QUIRE_$(upper "$1")_WORKERS"
    printf '%s' "${!var:-$WORKERS}"
}

start_service() {
    local module=$1 port pidfile logfile workers
    port=$(service_port "$module")
    workers=$(workers_of "$(first_module "$module")")
    pidfile="$STATE/$module.pid"
    logfile="$STATE/$module.log"
    if pid_alive "$pidfile"; then
        log "$module already runs (pid $(<"$pidfile"))"
        return
    fi
    # setsid: the service has its own session, so a Ctrl-C in this terminal does not reach it;
    # `stop` sends SIGTERM to run_service, which stops its gunicorn, relay and consumer.
    if [[ -n $CONTAINER ]]; then
        # buildah run kills its child on SIGTERM: run_service writes its own pid (chroot isolation
        # shares the host's pid namespace) to <module>.pid.inner, and `stop` signals that one.
        rm -f "$pidfile.inner"
        chmod a+rwx "$STATE"
        container_args "$module"
        setsid bash -c 'exec "$@"' _ "$ROOT/scripts/image.sh" run "${CONTAINER_ARGS[@]}" \
            sh -c 'echo $$ >"$0" && exec "$@"' "$pidfile.inner" \
            python manage.py run_service --port "$port" --workers "$workers" \
            >>"$logfile" 2>&1 </dev/null &
    else
        setsid bash -c 'exec "$@"' _ env SERVICE="$(service_var "$module")" \
            "$PY" "$ROOT/manage.py" run_service --port "$port" --workers "$workers" \
            >>"$logfile" 2>&1 </dev/null &
    fi
    echo $! >"$pidfile"
}

# env for as_service-style processes that run in the background (setsid loses shell functions)
export_service_env() {
    local service=$1 url_var
    url_var="$(upper "$(first_module "$service")")_DATABASE_URL"
    export SERVICE="$(service_var "$service")" EVENT_TRANSPORT=kafka DATABASE_URL="${!url_var}"
}

render_gateway() {
    local conf_dir="$STATE/nginx" user
    mkdir -p "$conf_dir/temp" "$conf_dir/logs"
    env QUIRE_GATEWAY_LISTEN="127.0.0.1:$GATEWAY_PORT" \
        QUIRE_ACCOUNTS_UPSTREAM="127.0.0.1:$(service_port "$(service_of accounts)")" \
        QUIRE_CATALOG_UPSTREAM="127.0.0.1:$(service_port "$(service_of catalog)")" \
        QUIRE_ORDERS_UPSTREAM="127.0.0.1:$(service_port "$(service_of orders)")" \
        QUIRE_RECOMMENDATIONS_UPSTREAM="127.0.0.1:$(service_port "$(service_of recommendations)")" \
        QUIRE_STATIC_ROOT="${STATIC_ROOT%/}" \
        QUIRE_REQUEST_BODY_MAX_BYTES="${REQUEST_BODY_MAX_BYTES:-1048576}" \
        QUIRE_ACCESS_LOG="$conf_dir/logs/access.log" \
        "$PY" - deploy/nginx/quire.conf.template "$conf_dir/quire.conf" <<'PYTHON'
import os, re, sys

source, target = sys.argv[1], sys.argv[2]
text = open(source).read()
missing = sorted({name for name in re.findall(r"\$\{(QUIRE_[A-Z0-9_]+)\}", text) if name not in os.environ})
if missing:
    sys.exit(f"services.sh: the gateway template needs {', '.join(missing)}")
open(target, "w").write(re.sub(r"\$\{(QUIRE_[A-Z0-9_]+)\}", lambda m: os.environ[m.group(1)], text))
PYTHON
    # As root, nginx's workers switch user: make it the checkout's owner, who can read STATIC_ROOT.
    user=""
    if [[ $EUID -eq 0 ]]; then user="user $(stat -c %U "$ROOT") $(stat -c %G "$ROOT");"; fi
    cat >"$conf_dir/nginx.conf" <<EOF
# Generated by scripts/services.sh; the routes are in quire.conf (from deploy/nginx/quire.conf.template).
$user
worker_processes 1;
daemon on;
pid $conf_dir/nginx.pid;
error_log $conf_dir/logs/error.log warn;
events { worker_connections 512; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    client_body_temp_path $conf_dir/temp/client_body;
    proxy_temp_path $conf_dir/temp/proxy;
    fastcgi_temp_path $conf_dir/temp/fastcgi;
    uwsgi_temp_path $conf_dir/temp/uwsgi;
    scgi_temp_path $conf_dir/temp/scgi;
    include $conf_dir/quire.conf;
}
EOF
}

wait_gone() {  # pids, seconds: 1 if one of them is still running then
    local pids=$1 deadline=$((SECONDS + $2)) pid alive
    while :; do
        alive=0
        for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || return 0
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

start_gateway() {
    local conf_dir="$STATE/nginx" nginx
    nginx=$(nginx_bin) || die "nginx is not installed: run scripts/dev/nginx.sh install"
    render_gateway
    "$nginx" -t -q -p "$conf_dir" -c "$conf_dir/nginx.conf" -e "$conf_dir/logs/error.log" \
        || die "the rendered gateway config is invalid ($conf_dir/nginx.conf)"
    if pid_alive "$conf_dir/nginx.pid"; then
        local old_workers
        old_workers=$(ps -o pid= --ppid "$(<"$conf_dir/nginx.pid")")
        "$nginx" -p "$conf_dir" -c "$conf_dir/nginx.conf" -e "$conf_dir/logs/error.log" -s reload
        # -s reload only signals the master: the workers it had go on proxying to the old upstreams
        # until they exit, so a process only the old configuration named may stop after that.
        if wait_gone "$old_workers" 60; then
            log "gateway reloaded (its old workers have exited: processes it no longer routes to may stop)"
        else
            log "gateway reloaded, but an old worker still serves a connection after 60 s: keep what it routed to running"
        fi
    else
        "$nginx" -p "$conf_dir" -c "$conf_dir/nginx.conf" -e "$conf_dir/logs/error.log" \
            </dev/null >/dev/null 2>>"$conf_dir/logs/error.log"
    fi
    wait_http "http://127.0.0.1:$GATEWAY_PORT/api/" "the gateway" "$conf_dir/nginx.pid" "$conf_dir/logs/error.log"
}

seed_demo() {
    [[ "${QUIRE_SEED_DEMO:-1}" == 1 ]] || return 0
    # Each service seeds its own part (catalog: books and stock; accounts: customers); orders
    # and recommendations learn of the books through Kafka. --if-empty: a restart adds nothing.
    local module
    for module in catalog accounts; do
        as_service "$(service_of "$module")" seed_demo --if-empty >&2
    done
}

# A start that fails half-way stops what it started, rather than leave a half shop running.
on_start_exit() {
    local code=$?
    if ((code != 0)); then
        log "start failed: stopping the services and gateway it started"
        cmd_stop || true
    fi
}

cmd_start() {
    mkdir -p "$STATE"
    trap on_start_exit EXIT
    start_infra
    prepare
    local service
    for service in "${SERVICES[@]}"; do
        (export_service_env "$service" && start_service "$service")
    done
    for service in "${SERVICES[@]}"; do
        wait_http "http://127.0.0.1:$(service_port "$service")/api/" "service $service" \
            "$STATE/$service.pid" "$STATE/$service.log"
    done
    start_gateway
    seed_demo
    trap - EXIT
    local base="http://127.0.0.1:$GATEWAY_PORT"
    cat <<EOF

Quire (services) runs behind the gateway on $base/
  API root        $base/api/        (Swagger UI per module: /api/<module>/docs/)
  services        ${SERVICES[*]}
  accounts        $base/api/accounts/    admin $base/admin/accounts/    ($(service_of accounts) on 127.0.0.1:$(service_port "$(service_of accounts)"))
  catalog         $base/api/catalog/     admin $base/admin/catalog/     ($(service_of catalog) on 127.0.0.1:$(service_port "$(service_of catalog)"))
  orders          $base/api/orders/      admin $base/admin/orders/      ($(service_of orders) on 127.0.0.1:$(service_port "$(service_of orders)"))
  recommendations $base/api/recommendations/  admin $base/admin/recommendations/  ($(service_of recommendations) on 127.0.0.1:$(service_port "$(service_of recommendations)"))
  logs            $STATE/<service>.log, $STATE/nginx/logs/
  staff user      scripts/services.sh manage accounts createsuperuser   (once: every admin accepts accounts' staff)
  stop            make services-stop   (scripts/services.sh stop [--all])
EOF
}

stop_pid() {  # pid file, name, seconds
    local pidfile=$1 name=$2 grace=$3 pid deadline
    pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
    pid=$(<"$pidfile")
    # From the image, the process to ask is run_service inside (see start_service), not buildah.
    if [[ -f "$pidfile.inner" ]]; then
        kill -TERM "$(<"$pidfile.inner")" 2>/dev/null || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "$name (pid $pid) still runs after ${grace}s: killing its process group"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$pidfile" "$pidfile.inner"
    log "stopped $name"
}

cmd_stop() {
    local all=0 module
    [[ "${1:-}" == --all ]] && all=1
    stop_pid "$STATE/nginx/nginx.pid" gateway 10
    # Every service a pid file names, whatever grouping started it (QUIRE_SERVICES may have changed since).
    local pidfile
    for pidfile in "$STATE"/*.pid; do
        [[ -e $pidfile ]] || continue
        module=$(basename "$pidfile" .pid)
        stop_pid "$pidfile" "$module" 35 &
    done
    wait
    if ((all)); then
        scripts/dev/kafka.sh stop
        scripts/dev/postgres.sh stop
    fi
}

cmd_status() {
    local down=0 service pidfile state
    for service in "${SERVICES[@]}"; do
        pidfile="$STATE/$service.pid"
        if pid_alive "$pidfile"; then
            state="running (pid $(<"$pidfile"))"
            readiness=$(ready_state "http://127.0.0.1:$GATEWAY_PORT/health/$(first_module "$service")/ready/") || down=1
            state+=", $readiness"
        else
            state="stopped"
            down=1
        fi
        printf '%-16s 127.0.0.1:%-6s %s\n' "$service" "$(service_port "$service")" "$state"
    done
    if pid_alive "$STATE/nginx/nginx.pid" && http_ok "http://127.0.0.1:$GATEWAY_PORT/api/"; then
        printf '%-16s 127.0.0.1:%-6s %s\n' gateway "$GATEWAY_PORT" "running (pid $(<"$STATE/nginx/nginx.pid")), answers"
    else
        printf '%-16s 127.0.0.1:%-6s %s\n' gateway "$GATEWAY_PORT" "down"
        down=1
    fi
    return $down
}

cmd_manage() {
    local module=${1:-}
    [[ " ${MODULES[*]} " == *" $module "* ]] || die "usage: $0 manage MODULE ARGS... (MODULE: ${MODULES[*]})"
    shift
    import_env_defaults "$(scripts/dev/postgres.sh env)"
    import_env_defaults "$(scripts/dev/kafka.sh env)"
    export KAFKA_BOOTSTRAP_SERVERS
    as_service "$(service_of "$module")" "$@"
}

parse_services
case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop "${2:-}" ;;
    restart) cmd_stop && cmd_start ;;
    status) cmd_status ;;
    manage) shift && cmd_manage "$@" ;;
    *) printf 'usage: %s {start|stop [--all]|status|restart|manage MODULE ARGS...}\n' "$0" >&2; exit 2 ;;
esac
