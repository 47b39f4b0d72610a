#!/usr/bin/env bash
# The `dot` binary that draws the service map (python manage.py describe_modules --format svg,
# /api/map/svg/): Debian's graphviz package, installed when missing. The Python package `graphviz`
# (requirements/base.txt) only writes DOT and calls this binary.
#   ensure   install graphviz from Debian's packages if `dot` is missing (one-time, needs root)
#   status   exit 0 when `dot` is on PATH, print its version
set -euo pipefail

log() { printf 'graphviz: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

case "${1:-ensure}" in
    ensure)
        if command -v dot >/dev/null 2>&1; then exit 0; fi
        [[ $EUID -eq 0 ]] || die "the graphviz binary 'dot' is missing and we are not root; run: sudo apt-get install -y graphviz"
        log "installing graphviz from Debian packages (one-time)"
        rc=0
        { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends graphviz; } >&2 || rc=$?
        [[ $rc -eq 0 ]] || die "apt-get install graphviz failed (rc=$rc)"
        command -v dot >/dev/null 2>&1 || die "graphviz is installed but 'dot' is still not on PATH"
        ;;
    status)
        command -v dot >/dev/null 2>&1 || { log "dot is not installed (scripts/dev/graphviz.sh ensure)"; exit 1; }
        dot -V
        ;;
    *) die "usage: $0 ensure|status" ;;
esac
