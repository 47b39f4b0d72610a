#!/usr/bin/env bash
# The Quire image, built here without a Docker engine: podman/buildah (Debian) with chroot isolation.
#
# Usage: scripts/image.sh {base|build|run CONTAINER-ARGS...|from NAME|rm NAME|podman ARGS...|buildah ARGS...}
#
#   base     the image docker/Dockerfile starts FROM (python:3.11-slim), made once from Debian's packages:
#            debootstrap of bookworm (Debian 12, python:3.11-slim-bookworm's release, whose python3 is
#            3.11) with python3, pip and ca-certificates, imported and tagged docker.io/library/python:3.11-slim.
#            Kept in the state dir's image store; a second call returns at once.
#   build    `podman build --isolation=chroot -f docker/Dockerfile .` (the Dockerfile unchanged) tagged
#            $QUIRE_IMAGE. pip inside the build gets this machine's CA bundle and index settings, and a
#            wheelhouse (pip download, cached in the state dir), as read-only build-time mounts at
#            /etc/pip.conf, /etc/ssl/certs/ca-certificates.crt and /opt/quire-wheels: nothing of them
#            stays in the image.
#   from     `buildah from --name NAME $QUIRE_IMAGE` (a working container to `buildah run` in; replaced if present)
#   run      `buildah run --isolation=chroot --net=host ARGS...` (podman run cannot set process limits here)
#   rm       remove the working container NAME
#
# Environment: QUIRE_STATE_DIR (default ~/.cache/quire; the image store is its image/ directory),
# QUIRE_IMAGE (default localhost/quire:test), QUIRE_IMAGE_STORAGE_DRIVER (overlay, or vfs).
set -euo pipefail
cd "$(dirname "$0")/.."
readonly ROOT=$PWD
readonly STATE="${QUIRE_STATE_DIR:-$HOME/.cache/quire}/image"
readonly IMAGE="${QUIRE_IMAGE:-localhost/quire:test}"
readonly BASE_IMAGE=docker.io/library/python:3.11-slim
readonly SUITE=bookworm
readonly MIRROR="${QUIRE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

log() { printf 'image.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# One image store of our own (not the machine's /var/lib/containers), so that other jobs' images and
# ours never mix and deleting the state dir resets everything.
mkdir -p "$STATE"
export CONTAINERS_STORAGE_CONF="$STATE/storage.conf"
# Several of these scripts run at once (services.sh migrates and starts the services in parallel):
# the file is replaced by a rename, never truncated in place, so no reader sees it half written.
storage_conf_tmp=$(mktemp "$STATE/storage.conf.XXXXXX")
cat >"$storage_conf_tmp" <<EOF
[storage]
driver = "${QUIRE_IMAGE_STORAGE_DRIVER:-overlay}"
graphroot = "$STATE/storage"
runroot = "$STATE/run"
EOF
if cmp -s "$storage_conf_tmp" "$CONTAINERS_STORAGE_CONF"; then
    rm -f "$storage_conf_tmp"
else
    mv -f "$storage_conf_tmp" "$CONTAINERS_STORAGE_CONF"
fi

install_tools() {
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v buildah >/dev/null || missing+=(buildah)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    ((${#missing[@]} == 0)) && return
    log "installing ${missing[*]} from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >"$STATE/apt.log" 2>&1 \
        || { apt-get update -q >>"$STATE/apt.log" 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"$STATE/apt.log" 2>&1; } \
        || { tail -n 20 "$STATE/apt.log" >&2; die "could not install ${missing[*]}"; }
}

cmd_base() {
    install_tools
    if podman image exists "$BASE_IMAGE"; then
        log "base $BASE_IMAGE present (built from Debian $SUITE)"
        return
    fi
    local started=$SECONDS rootfs="$STATE/rootfs.tmp" tarball="$STATE/python-3.11-slim-$SUITE.tar"
    if [[ ! -s $tarball ]]; then
        log "building the base: debootstrap $SUITE (python3 3.11, pip, ca-certificates), packages cached in $STATE/debs"
        rm -rf "$rootfs"
        mkdir -p "$STATE/debs"
        debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates \
            --cache-dir="$STATE/debs" "$SUITE" "$rootfs" "$MIRROR" >"$STATE/debootstrap.log" 2>&1 \
            || { tail -n 20 "$STATE/debootstrap.log" >&2; die "debootstrap failed (log: $STATE/debootstrap.log)"; }
        # What python:3.11-slim offers: `python` and `pip` on PATH, pip allowed to install into the
        # system (no Debian EXTERNALLY-MANAGED marker), no package caches.
        ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
        ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip"
        rm -f "$rootfs"/usr/lib/python3.*/EXTERNALLY-MANAGED
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
            "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
        tar -C "$rootfs" --numeric-owner -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
        rm -rf "$rootfs"
    fi
    podman import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        "$tarball" "$BASE_IMAGE" >/dev/null
    log "base $BASE_IMAGE ready in $((SECONDS - started))s ($(du -h "$tarball" | cut -f1) rootfs)"
}

# The machine's pip settings (`pip config list` and PIP_* variables), for the build's /etc/pip.conf,
# with the wheelhouse as the only source when it holds every pinned requirement.
pip_conf() {
    local wheels_complete=$1
    python3 - "$wheels_complete" <<'PYTHON'
import os, subprocess, sys

settings = {}
try:
    listed = subprocess.run(["pip", "config", "list"], capture_output=True, text=True, check=False).stdout
except OSError:
    listed = ""
for line in listed.splitlines():
    key, _, value = line.partition("=")
    if key and "." in key:
        settings[key.split(".", 1)[1]] = value.strip().strip("'\"")
for name, value in os.environ.items():
    if name.startswith("PIP_") and name not in ("PIP_NO_CACHE_DIR", "PIP_CONFIG_FILE"):
        settings[name[4:].lower().replace("_", "-")] = value
settings.pop("find-links", None)
if sys.argv[1] == "1":
    settings["no-index"] = "true"
    settings["find-links"] = "/opt/quire-wheels"
print("[global]")
for key, value in sorted(settings.items()):
    print(f"{key} = {value}")
PYTHON
}

cmd_build() {
    install_tools
    cmd_base
    local started=$SECONDS wheels="$STATE/wheels" complete=0 cert=/etc/ssl/certs/ca-certificates.crt
    mkdir -p "$wheels"
    # The wheelhouse: pip's downloads, kept across builds (the Dockerfile disables pip's own cache),
    # fetched again only when requirements/base.txt changes. This machine's Python is the image's
    # (3.11 on Debian bookworm), so its wheels fit.
    local stamp
    stamp=$(sha256sum requirements/base.txt | cut -d' ' -f1)
    if [[ "$(cat "$wheels/.complete" 2>/dev/null)" == "$stamp" ]]; then
        complete=1
    elif "$ROOT/${VENV:-.venv}/bin/python" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
        --python-version 3.11 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_34_x86_64 --platform linux_x86_64 \
        --implementation cp --platform any -d "$wheels" -r requirements/base.txt >"$STATE/wheels.log" 2>&1; then
        complete=1
        echo "$stamp" >"$wheels/.complete"
    else
        log "the wheelhouse is incomplete (log: $STATE/wheels.log): pip in the build uses the index too"
    fi
    pip_conf "$complete" >"$STATE/pip.conf"
    local mounts=(--volume "$STATE/pip.conf:/etc/pip.conf:ro" --volume "$wheels:/opt/quire-wheels:ro")
    [[ -f $cert ]] && mounts+=(--volume "$cert:$cert:ro")
    log "building $IMAGE from docker/Dockerfile (podman build --isolation=chroot)"
    podman build --isolation=chroot --layers -f docker/Dockerfile \
        --ignorefile docker/Dockerfile.dockerignore "${mounts[@]}" -t "$IMAGE" . >"$STATE/build.log" 2>&1 \
        || { tail -n 40 "$STATE/build.log" >&2; die "podman build failed (log: $STATE/build.log)"; }
    log "built $IMAGE in $((SECONDS - started))s ($(grep -c -- '--> Using cache' "$STATE/build.log" || true) cached steps; log: $STATE/build.log)"
}

cmd_from() {
    local name=${1:?usage: image.sh from NAME}
    buildah rm "$name" >/dev/null 2>&1 || true
    buildah from --pull-never --name "$name" "$IMAGE" >/dev/null
    echo "$name"
}

case "${1:-}" in
    base) cmd_base ;;
    build) cmd_build ;;
    from) shift && cmd_from "$@" ;;
    run) shift && exec buildah run --isolation=chroot --net=host "$@" ;;
    rm) shift && exec buildah rm "$@" ;;
    podman) shift && exec podman "$@" ;;
    buildah) shift && exec buildah "$@" ;;
    *) printf 'usage: %s {base|build|from NAME|run ARGS...|rm NAME|podman ARGS...|buildah ARGS...}\n' "$0" >&2; exit 2 ;;
esac
