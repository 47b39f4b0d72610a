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
        "$(dirname "$0")/debian-package.sh" ensure dot graphviz
        ;;
    status)
        command -v dot >/dev/null 2>&1 || { log "dot is not installed (scripts/dev/graphviz.sh ensure)"; exit 1; }
        dot -V
        ;;
    *) die "usage: $0 ensure|status" ;;
esac
