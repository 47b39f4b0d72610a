#!/usr/bin/env bash
# Ensures an nginx binary from Debian's packages is present for Quire's local gateway.
# It only installs; it never starts, stops or configures the system nginx service (the gateway
# runs its own nginx process with its own config, written elsewhere).
#
# Usage: scripts/dev/nginx.sh {install|check}
#
#   install  install nginx-light (or nginx where nginx-light does not exist) if no nginx binary
#            is present, then print the binary's path. Idempotent.
#   check    print the binary's path and exit 0 if installed; exit 1 otherwise. Installs nothing.
set -euo pipefail

log() { printf 'nginx.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Debian installs nginx to /usr/sbin, which is not on every user's PATH.
find_nginx() {
    local p
    for p in "$(command -v nginx 2>/dev/null || true)" /usr/sbin/nginx; do
        if [[ -n "$p" && -x "$p" ]]; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    return 1
}

# apt-cache only knows packages after `apt-get update`; a package "exists" if it has a candidate.
has_candidate() {
    local cand
    cand=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
    [[ -n "$cand" && "$cand" != "(none)" ]]
}

cmd_install() {
    local bin
    if bin=$(find_nginx); then
        printf '%s\n' "$bin"
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "nginx is not installed and we are not root; run: sudo apt-get install -y nginx-light"
    apt-get update -q >&2 || die "apt-get update failed"
    # nginx-light (Debian 12 and older) is the small build; newer Debian folded it into nginx.
    local pkg=nginx
    if has_candidate nginx-light; then pkg=nginx-light; fi
    # The package's postinst would start the system service (listening on 0.0.0.0:80).
    # A policy-rc.d that answers 101 tells invoke-rc.d not to start services during the
    # install; we add one only if none exists, and remove only the one we added.
    local created_policy=0 rc=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\n# temporary, from scripts/dev/nginx.sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    log "installing $pkg from Debian packages"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >&2 || rc=$?
    if [[ $created_policy -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
    [[ $rc -eq 0 ]] || die "apt-get install $pkg failed (rc=$rc)"
    bin=$(find_nginx) || die "$pkg installed but no nginx binary found"
    printf '%s\n' "$bin"
}

cmd_check() {
    local bin
    if bin=$(find_nginx); then
        printf '%s\n' "$bin"
        "$bin" -v 2>&1 | sed 's/^/nginx.sh: /' >&2
        return 0
    fi
    log "nginx is not installed (run: scripts/dev/nginx.sh install)"
    return 1
}

case "${1:-}" in
    install) cmd_install ;;
    check) cmd_check ;;
    *) printf 'usage: %s {install|check}\n' "$0" >&2; exit 2 ;;
esac
