#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, broker+controller) for Quire tests and development,
# run as a plain JVM process on 127.0.0.1. There is no Docker engine and no Apache download
# archive here, so the broker's jars come from Maven Central (scripts/dev/kafka/pom.xml).
#
# Usage: scripts/dev/kafka.sh {start|stop|status|env|tools-jars}
#
#   start   resolve the jars once, format storage once, launch the broker in the background and
#           wait until the client port accepts TCP connections. Idempotent: succeeds at once if
#           the port already accepts connections.
#   stop    SIGTERM, wait (bounded), SIGKILL as a last resort.
#   status  exit 0 if the client port accepts connections, non-zero otherwise.
#   env     print `export KAFKA_BOOTSTRAP_SERVERS=...`; use as: eval "$(scripts/dev/kafka.sh env)"
#   tools-jars
#           resolve Kafka's own tools (kafka-tools, the broker's version; scripts/dev/kafka/tools-pom.xml)
#           once into the state dir and print that directory: `java -cp "$dir/*" <tool class>`
#           (bench/bench_kafka.py runs org.apache.kafka.tools.ProducerPerformance from it).
#
# Environment:
#   QUIRE_STATE_DIR               state/cache root, default $HOME/.cache/quire (never the repo)
#   QUIRE_KAFKA_PORT              client (PLAINTEXT) port on 127.0.0.1, default 59092
#   QUIRE_KAFKA_CONTROLLER_PORT   KRaft controller port on 127.0.0.1, default 59093
#   QUIRE_KAFKA_START_TIMEOUT     seconds to wait for the client port, default 90
#   QUIRE_KAFKA_STOP_TIMEOUT      seconds to wait after SIGTERM before SIGKILL, default 30
#   QUIRE_KAFKA_HEAP_OPTS         JVM heap flags, default "-Xms256m -Xmx1g"
#   QUIRE_M2_REPO                 optional Maven local repository (default: Maven's, ~/.m2)
#   KAFKA_BOOTSTRAP_SERVERS       if set by the user to anything other than this script's own
#                                 127.0.0.1:$QUIRE_KAFKA_PORT, Kafka is external: `start` and
#                                 `status` only check reachability, `stop` does nothing.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
readonly POM="$SCRIPT_DIR/kafka/pom.xml"
readonly TOOLS_POM="$SCRIPT_DIR/kafka/tools-pom.xml"
readonly LOG4J_CONF="$SCRIPT_DIR/kafka/log4j2.xml"

readonly STATE_ROOT="${QUIRE_STATE_DIR:-$HOME/.cache/quire}"
readonly K_STATE="$STATE_ROOT/kafka"
readonly K_JARS="$K_STATE/jars"
readonly K_JARS_MARKER="$K_JARS/.quire-kafka-version"
readonly K_TOOLS_JARS="$K_STATE/tools-jars"
readonly K_TOOLS_MARKER="$K_TOOLS_JARS/.quire-kafka-tools-version"
readonly K_DATA="$K_STATE/data"
readonly K_FORMAT_MARKER="$K_STATE/formatted"
readonly K_LOGS="$K_STATE/logs"
readonly K_OUT="$K_LOGS/kafka.out"          # JVM stdout/stderr (crashes before log4j starts)
readonly K_PROPS="$K_STATE/server.properties"
readonly K_PIDFILE="$K_STATE/kafka.pid"

readonly HOST=127.0.0.1
readonly PORT="${QUIRE_KAFKA_PORT:-59092}"
readonly CONTROLLER_PORT="${QUIRE_KAFKA_CONTROLLER_PORT:-59093}"
readonly START_TIMEOUT="${QUIRE_KAFKA_START_TIMEOUT:-90}"
readonly STOP_TIMEOUT="${QUIRE_KAFKA_STOP_TIMEOUT:-30}"
readonly OWN_BOOTSTRAP="$HOST:$PORT"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The pinned version lives in the pom only, so there is a single place to bump it.
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\([^<]*\)</kafka.version>.*:\1:p' "$POM" | head -n1)
readonly KAFKA_VERSION
[[ -n "$KAFKA_VERSION" ]] || die "cannot read <kafka.version> from $POM"

# ---- helpers ----------------------------------------------------------------------------

port_open() {  # host port
    # shellcheck disable=SC2016  # $1/$2 are expanded by the inner bash, on purpose
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# True when the user points us at a Kafka that is not the one this script manages. Our own
# address counts as managed so that `eval "$(kafka.sh env)"; kafka.sh start` still starts it.
is_external() {
    local bs="${KAFKA_BOOTSTRAP_SERVERS:-}"
    [[ -n "$bs" && "$bs" != "$OWN_BOOTSTRAP" && "$bs" != "localhost:$PORT" ]]
}

# Reachable if at least one host:port of the comma-separated list accepts TCP (a client
# needs only one bootstrap server to discover the cluster).
bootstrap_reachable() {
    local entry hostport host port
    local -a entries
    IFS=',' read -ra entries <<<"$1"
    for entry in "${entries[@]}"; do
        hostport=${entry//[[:space:]]/}
        hostport=${hostport#*://}          # tolerate PLAINTEXT://host:port
        host=${hostport%:*}
        port=${hostport##*:}
        host=${host#[}; host=${host%]}     # [::1]:9092
        [[ -n "$host" && "$port" =~ ^[0-9]+$ ]] || continue
        if port_open "$host" "$port"; then return 0; fi
    done
    return 1
}

# Our broker's pid, if the pid file names a live process that is really our kafka.Kafka
# (guards against a stale pid file whose number the kernel has reused).
our_pid() {
    local pid
    [[ -r "$K_PIDFILE" ]] || return 1
    pid=$(<"$K_PIDFILE")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    # Read into a variable rather than `| grep -q`: with pipefail, grep exiting early could
    # SIGPIPE the writer and turn a match into a failure.
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmdline" == *"kafka.Kafka $K_PROPS"* ]] || return 1
    printf '%s\n' "$pid"
}

# Does the listener on $PORT belong to pid $1? Guards against declaring success because some
# other process (e.g. a second checkout's broker on the same port) answered while ours is
# dying of "Address already in use". When ss cannot tell (not installed, or it hides other
# users' processes) we trust the open port.
port_owned_by() {
    local out
    command -v ss >/dev/null 2>&1 || return 0
    out=$(ss -Hltnp "sport = :$PORT" 2>/dev/null) || return 0
    [[ "$out" == *"pid="* ]] || return 0
    [[ "$out" == *"pid=$1,"* ]]
}

apt_install() {
    [[ $EUID -eq 0 ]] || die "missing $*; install it (e.g. sudo apt-get install -y $*)"
    log "installing $* from Debian packages (one-time)"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; } >&2 \
        || die "apt-get install $* failed"
}

# Kafka 4.x brokers need Java 17+.
ensure_tools() {
    command -v java >/dev/null 2>&1 || apt_install default-jre-headless
    local major
    major=$(java -XshowSettings:properties -version 2>&1 \
            | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p')
    [[ "${major:-0}" -ge 17 ]] || die "Kafka $KAFKA_VERSION needs Java 17+, found java ${major:-unknown}"
}

tail_logs() {
    local f
    for f in "$K_OUT" "$K_LOGS/server.log"; do
        if [[ -s "$f" ]]; then
            printf -- '--- last lines of %s ---\n' "$f" >&2
            tail -n 40 "$f" >&2
        fi
    done
}

# ---- jars ---------------------------------------------------------------------------------

# The marker records the version and the pom's hash: a version bump or a dependency change in
# the pom triggers a fresh resolution; otherwise the cached jars are reused without Maven.
jars_marker_content() {
    printf 'kafka_2.13 %s pom-sha256 %s\n' "$KAFKA_VERSION" "$(sha256sum "$POM" | cut -d' ' -f1)"
}

ensure_jars() {
    resolve_jars "$POM" "$K_JARS" "$K_JARS_MARKER" "$(jars_marker_content)" "kafka_2.13" build mvn.log
}

# Kafka's own tools (ProducerPerformance for the benchmarks), in a jar set of their own so the
# broker's stays as it is; the same marker scheme, always at the broker's version.
ensure_tools_jars() {
    local want
    want=$(printf 'kafka-tools %s pom-sha256 %s\n' "$KAFKA_VERSION" "$(sha256sum "$TOOLS_POM" | cut -d' ' -f1)")
    resolve_jars "$TOOLS_POM" "$K_TOOLS_JARS" "$K_TOOLS_MARKER" "$want" "kafka-tools" tools-build mvn-tools.log \
        -Dkafka.version="$KAFKA_VERSION"
}

# resolve_jars POM DIR MARKER WANT ARTIFACT BUILD_SUBDIR LOG_NAME [MVN_ARG...]: copy POM's runtime
# dependencies into DIR unless MARKER already holds WANT; ARTIFACT-$KAFKA_VERSION.jar must be among them.
resolve_jars() {
    local pom=$1 dir=$2 marker=$3 want=$4 artifact=$5 build=$6 mvnlog="$K_LOGS/$7"
    shift 7
    if [[ -f "$marker" && "$(<"$marker")" == "$want" ]]; then
        return 0
    fi
    # Maven is only needed here, not once the jars are cached.
    command -v mvn >/dev/null 2>&1 || apt_install maven
    log "resolving $artifact $KAFKA_VERSION jars from Maven Central into $dir (one-time)"
    local tmp="$dir.tmp"
    local -a mvn_args=(-B -q -Dstyle.color=never -f "$pom" "$@"
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp"
        -Dquire.build.dir="$K_STATE/$build")
    if [[ -n "${QUIRE_M2_REPO:-}" ]]; then
        mvn_args+=(-Dmaven.repo.local="$QUIRE_M2_REPO")
    fi
    rm -rf "$tmp"
    if ! mvn "${mvn_args[@]}" >"$mvnlog" 2>&1; then
        tail -n 30 "$mvnlog" >&2
        die "Maven could not resolve the $artifact jars (command: mvn ${mvn_args[*]}; log: $mvnlog)"
    fi
    compgen -G "$tmp/$artifact-$KAFKA_VERSION.jar" >/dev/null \
        || die "Maven ran but $tmp has no $artifact-$KAFKA_VERSION.jar"
    # Swap in the complete set only, so an interrupted download never looks "populated".
    rm -rf "$dir"
    mv "$tmp" "$dir"
    printf '%s\n' "$want" >"$marker"
}

# ---- config and storage -------------------------------------------------------------------

# Rewritten on every start so port changes apply. Static controller.quorum.voters (not the
# dynamic bootstrap-servers quorum) so the controller address is config, not baked into the
# formatted log at format time.
write_props() {
    cat >"$K_PROPS.tmp" <<EOF
# Managed by scripts/dev/kafka.sh; rewritten on each start. Single node, dev/test only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$K_DATA
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
# One broker: every internal topic must live with a replication factor / min ISR of 1.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests should not wait 3 s for the first consumer group rebalance.
group.initial.rebalance.delay.ms=0
EOF
    mv "$K_PROPS.tmp" "$K_PROPS"
}

java_base() {  # common JVM flags for the broker and the storage tool
    local -a heap
    read -ra heap <<<"${QUIRE_KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
    JAVA_CMD=(java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
        -Djava.awt.headless=true
        "-Dlog4j2.configurationFile=$LOG4J_CONF" "-Dkafka.logs.dir=$K_LOGS"
        -cp "$K_JARS/*")
}

# KRaft storage is formatted exactly once per data dir; the marker holds the cluster id.
ensure_formatted() {
    if [[ -f "$K_FORMAT_MARKER" && -f "$K_DATA/meta.properties" ]]; then
        return 0
    fi
    java_base
    local cluster_id
    cluster_id=$("${JAVA_CMD[@]}" kafka.tools.StorageTool random-uuid 2>>"$K_OUT" | tail -n1)
    [[ -n "$cluster_id" ]] || { tail_logs; die "StorageTool random-uuid failed"; }
    log "formatting KRaft storage in $K_DATA (cluster id $cluster_id)"
    mkdir -p "$K_DATA"
    # --ignore-formatted: an earlier run may have formatted but died before writing the marker.
    "${JAVA_CMD[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$K_PROPS" \
        --ignore-formatted >>"$K_OUT" 2>&1 || { tail_logs; die "StorageTool format failed"; }
    # Record the id actually on disk (differs from ours if an earlier format was kept).
    sed -n 's/^cluster\.id=//p' "$K_DATA/meta.properties" >"$K_FORMAT_MARKER"
}

# ---- lifecycle ----------------------------------------------------------------------------

launch() {
    java_base
    rm -f "$K_PIDFILE"
    printf '\n=== %s starting Kafka %s ===\n' "$(date -Is)" "$KAFKA_VERSION" >>"$K_OUT"
    # setsid: own session, so the broker outlives this shell and is not hit by signals sent
    # to the caller's process group (test runners, Ctrl-C). The inner bash writes its own pid
    # and execs java, so the pid file names the JVM whether or not setsid had to fork.
    # 9>&-: the broker must not inherit (and hold forever) the start lock.
    # shellcheck disable=SC2016  # $0/$$ are expanded by the inner bash, on purpose
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$K_PIDFILE" \
        nohup "${JAVA_CMD[@]}" kafka.Kafka "$K_PROPS" </dev/null >>"$K_OUT" 2>&1 9>&- &
    # Have the pid before waiting, so readiness can be tied to our process.
    local deadline=$((SECONDS + 10))
    until [[ -s "$K_PIDFILE" ]]; do
        (( SECONDS < deadline )) || die "the launcher did not write $K_PIDFILE"
        sleep 0.1
    done
}

kill_ours() {
    local pid deadline
    pid=$(our_pid) || return 0
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if (( SECONDS >= deadline )); then
            log "no exit ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL to $pid"
            kill -KILL "$pid" 2>/dev/null || true
            # SIGKILL cannot be ignored; a short bounded wait for the kernel to reap it.
            local kdeadline=$((SECONDS + 10))
            while kill -0 "$pid" 2>/dev/null && (( SECONDS < kdeadline )); do sleep 0.2; done
            break
        fi
        sleep 0.2
    done
    rm -f "$K_PIDFILE"
}

wait_ready() {
    local deadline=$1 pid=""
    [[ -s "$K_PIDFILE" ]] && pid=$(<"$K_PIDFILE")
    until port_open "$HOST" "$PORT" && { [[ -z "$pid" ]] || port_owned_by "$pid"; }; do
        # The pid file appears once the launcher has run; if that process is gone, the JVM
        # died: fail now instead of waiting out the deadline. (Plain kill -0, not our_pid:
        # for a moment the pid still runs the launching bash/nohup, not java.)
        [[ -z "$pid" && -s "$K_PIDFILE" ]] && pid=$(<"$K_PIDFILE")
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            tail_logs
            die "Kafka exited during startup (logs: $K_LOGS)"
        fi
        if (( SECONDS >= deadline )); then
            tail_logs
            log "stopping the broker that did not come up"
            kill_ours
            die "Kafka did not accept connections on $OWN_BOOTSTRAP within ${START_TIMEOUT}s (logs: $K_LOGS)"
        fi
        sleep 0.5
    done
}

cmd_start() {
    if is_external; then
        bootstrap_reachable "$KAFKA_BOOTSTRAP_SERVERS" \
            || die "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS is not reachable"
        log "external Kafka at $KAFKA_BOOTSTRAP_SERVERS is reachable; nothing started"
        return 0
    fi
    mkdir -p "$K_STATE" "$K_LOGS"
    # Serialise concurrent `start`s (parallel test jobs): one resolves/formats/launches.
    exec 9>"$K_STATE/.lock"
    flock 9
    if port_open "$HOST" "$PORT"; then
        log "already running on $OWN_BOOTSTRAP"
        return 0
    fi
    local t0=$SECONDS
    if our_pid >/dev/null; then
        # Launched earlier but not listening yet (or hung): wait for it rather than start twice.
        log "broker process $(our_pid) exists but $OWN_BOOTSTRAP is not open yet; waiting"
    else
        ensure_tools
        ensure_jars
        write_props
        ensure_formatted
        launch
    fi
    wait_ready $((t0 + START_TIMEOUT))
    log "Kafka $KAFKA_VERSION up on $OWN_BOOTSTRAP in $((SECONDS - t0))s (pid $(our_pid || echo '?'), logs: $K_LOGS)"
}

cmd_stop() {
    if is_external; then
        log "external Kafka ($KAFKA_BOOTSTRAP_SERVERS): nothing to stop"
        return 0
    fi
    local pid
    if pid=$(our_pid); then
        kill_ours
        log "stopped (pid $pid)"
        return 0
    fi
    rm -f "$K_PIDFILE"
    if port_open "$HOST" "$PORT"; then
        die "$OWN_BOOTSTRAP is served by a process this script did not start; not touching it"
    fi
    log "not running"
}

cmd_status() {
    if is_external; then
        if bootstrap_reachable "$KAFKA_BOOTSTRAP_SERVERS"; then
            log "external Kafka at $KAFKA_BOOTSTRAP_SERVERS is reachable"
            return 0
        fi
        log "external Kafka at $KAFKA_BOOTSTRAP_SERVERS is not reachable"
        return 1
    fi
    if port_open "$HOST" "$PORT"; then
        log "running on $OWN_BOOTSTRAP (pid $(our_pid || echo 'not ours'))"
        return 0
    fi
    if our_pid >/dev/null; then
        log "process $(our_pid) exists but $OWN_BOOTSTRAP is not accepting connections"
    else
        log "not running"
    fi
    return 1
}

cmd_env() {
    if is_external; then
        printf 'export KAFKA_BOOTSTRAP_SERVERS=%q\n' "$KAFKA_BOOTSTRAP_SERVERS"
    else
        printf 'export KAFKA_BOOTSTRAP_SERVERS=%s\n' "$OWN_BOOTSTRAP"
    fi
}

cmd_tools_jars() {
    mkdir -p "$K_STATE" "$K_LOGS"
    # A lock of its own: two benchmarks resolving at once must not swap each other's directory.
    exec 9>"$K_STATE/.tools-lock"
    flock 9
    ensure_tools
    ensure_tools_jars
    printf '%s\n' "$K_TOOLS_JARS"
}

main() {
    case "${1:-}" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        env) cmd_env ;;
        tools-jars) cmd_tools_jars ;;
        *) printf 'usage: %s {start|stop|status|env|tools-jars}\n' "$0" >&2; exit 2 ;;
    esac
}

main "$@"
