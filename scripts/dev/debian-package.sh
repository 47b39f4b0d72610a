#!/usr/bin/env bash
# A command this project needs from Debian's packages, installed when missing (one-time, needs root).
#   ensure COMMAND PACKAGE   install PACKAGE with apt-get if COMMAND is not on PATH
# e.g. scripts/dev/debian-package.sh ensure wrk wrk  (bench/bench_book_list.py's HTTP load)
set -euo pipefail

log() { printf 'debian-package: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ ${1:-} == ensure && $# -eq 3 ]] || die "usage: $0 ensure COMMAND PACKAGE"
command=$2 package=$3
if command -v "$command" >/dev/null 2>&1; then exit 0; fi
[[ $EUID -eq 0 ]] || die "'$command' is missing and we are not root; run: sudo apt-get install -y $package"
log "installing $package from Debian packages (one-time)"
rc=0
{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$package"; } >&2 || rc=$?
[[ $rc -eq 0 ]] || die "apt-get install $package failed (rc=$rc)"
command -v "$command" >/dev/null 2>&1 || die "$package is installed but '$command' is still not on PATH"
