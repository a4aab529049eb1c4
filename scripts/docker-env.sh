#!/usr/bin/env bash
# Make a Docker engine reachable and the project's base image present, then print
# the environment that points at them (for `eval`). Idempotent and quick on a rerun;
# CI (scripts/test.sh) and developers use the same script:
#
#   eval "$(scripts/docker-env.sh)"
#
# Engine: $DOCKER_HOST if it answers, else /var/run/docker.sock, else a private
# dockerd on its own socket (installed from Debian's docker.io when missing and we
# are root; Debian's docker-compose 1.29 too, when no compose is there). Its data root lives in the cache, so built images survive reruns.
# Base image: no registry may be reachable, so it is made from Debian with
# debootstrap (python3 and a headless JRE) and `docker import`, tagged with a hash
# of its recipe, and only rebuilt when the recipe changes.
#
# When no engine can be had, it prints FOGVERSE_DOCKER_UNAVAILABLE=<why> and still
# exits 0: the Docker tests then skip with that reason, or fail under CI.
#
# Settings: FOGVERSE_CACHE (default ~/.cache/fogverse), FOGVERSE_DEBIAN_MIRROR
# (default: the mirror apt uses), FOGVERSE_DOCKER=off (skip everything).
set -euo pipefail

CACHE=${FOGVERSE_CACHE:-$HOME/.cache/fogverse}
STATE=$CACHE/docker
RUN_DIR=${FOGVERSE_DOCKER_RUN:-/run/fogverse-docker}
BASE_PACKAGES=python3,openjdk-17-jre-headless,ca-certificates
BASE_SUITE=bookworm
# Bump when the way the root file system is made changes.
BASE_RECIPE_VERSION=1

say() { echo "docker-env: $*" >&2; }

unavailable() {
  say "no Docker engine: $1"
  printf "export FOGVERSE_DOCKER_UNAVAILABLE=%q\n" "$1"
  exit 0
}

answers() { DOCKER_HOST=$1 timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

has_compose() {
  command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1
}

install_engine() {
  if command -v dockerd >/dev/null && command -v debootstrap >/dev/null \
      && command -v docker >/dev/null && has_compose; then
    return 0
  fi
  [ "$(id -u)" = 0 ] || unavailable "dockerd or debootstrap missing and not root to install them"
  command -v apt-get >/dev/null || unavailable "dockerd missing and no apt-get to install it"
  say "installing docker.io, docker-compose, debootstrap (Debian packages)"
  local pkgs=(docker.io docker-compose fuse-overlayfs debootstrap iptables)
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "${pkgs[@]}" >&2; then
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "${pkgs[@]}" >&2 || unavailable "apt-get could not install ${pkgs[*]}"
  fi
}

# A process that runs; a killed one nobody reaped yet (a zombie) does not count.
alive() { ps -o stat= -p "$1" 2>/dev/null | grep -q '^[^Z]'; }

start_private_engine() {
  local sock=$RUN_DIR/docker.sock
  local host=unix://$sock
  if answers "$host"; then
    HOST=$host
    return 0
  fi
  [ "$(id -u)" = 0 ] || unavailable "no engine answers and dockerd needs root"
  install_engine
  mkdir -p "$RUN_DIR" "$STATE/data"
  if [ -f "$RUN_DIR/dockerd.pid" ] && alive "$(cat "$RUN_DIR/dockerd.pid")"; then
    say "dockerd $(cat "$RUN_DIR/dockerd.pid") runs but does not answer; waiting for it"
  else
    say "starting dockerd on $sock (data in $STATE/data, log $RUN_DIR/dockerd.log)"
    # setsid: the engine outlives this script and the test run that called it.
    setsid dockerd --data-root "$STATE/data" --exec-root "$RUN_DIR/exec" \
      -H "$host" --pidfile "$RUN_DIR/dockerd.pid" --storage-driver overlay2 \
      >"$RUN_DIR/dockerd.log" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 150); do
    if answers "$host"; then
      HOST=$host
      return 0
    fi
    sleep 0.2
  done
  unavailable "dockerd did not answer on $sock within 30 s: $(tail -n 3 "$RUN_DIR/dockerd.log" | tr '\n' ' ')"
}

# Sets HOST (globals, not stdout: `unavailable` must be able to exit the script).
find_engine() {
  if [ "${FOGVERSE_DOCKER:-}" = off ]; then
    unavailable "FOGVERSE_DOCKER=off"
  fi
  if { ! command -v docker >/dev/null || ! has_compose; } && [ "$(id -u)" = 0 ]; then
    install_engine
  fi
  command -v docker >/dev/null || unavailable "no docker CLI (apt-get install docker.io)"
  if [ -n "${DOCKER_HOST:-}" ] && answers "$DOCKER_HOST"; then
    HOST=$DOCKER_HOST
  elif answers unix:///var/run/docker.sock; then
    HOST=unix:///var/run/docker.sock
  else
    start_private_engine
  fi
}

debian_mirror() {
  if [ -n "${FOGVERSE_DEBIAN_MIRROR:-}" ]; then
    echo "$FOGVERSE_DEBIAN_MIRROR"
    return
  fi
  local found
  found=$(grep -rhoE '^(URIs:|deb) +(\[[^]]*\] +)?https?://[^ ]+/debian/?( |$)' \
    /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | grep -oE 'https?://[^ ]+' | head -n 1 || true)
  echo "${found:-http://deb.debian.org/debian}"
}

build_base() {
  local tag=$1 mirror rootfs
  command -v debootstrap >/dev/null || install_engine
  mirror=$(debian_mirror)
  rootfs=$(mktemp -d "${TMPDIR:-/tmp}/fogverse-rootfs.XXXXXX")
  say "building $tag: debootstrap $BASE_SUITE from $mirror (about a minute)"
  local started=$SECONDS
  if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" "$BASE_SUITE" "$rootfs" \
      "$mirror" >"$STATE/debootstrap.log" 2>&1; then
    rm -rf "$rootfs"
    unavailable "debootstrap failed, see $STATE/debootstrap.log: $(tail -n 2 "$STATE/debootstrap.log" | tr '\n' ' ')"
  fi
  # Docs, apt lists and caches are dead weight in an image nobody runs apt in.
  rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old
  tar -C "$rootfs" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' - "$tag" >/dev/null
  rm -rf "$rootfs"
  say "built $tag in $((SECONDS - started)) s"
}

main() {
  local base_tag recipe
  find_engine
  export DOCKER_HOST=$HOST
  mkdir -p "$STATE"
  recipe="$BASE_SUITE $BASE_PACKAGES $BASE_RECIPE_VERSION"
  base_tag="fogverse-base:$BASE_SUITE-$(printf '%s' "$recipe" | sha256sum | cut -c1-12)"
  if ! docker image inspect "$base_tag" >/dev/null 2>&1; then
    # One build at a time: two concurrent test runs share the cache.
    exec 9>"$STATE/base.lock"
    flock 9
    docker image inspect "$base_tag" >/dev/null 2>&1 || build_base "$base_tag"
    flock -u 9
  fi
  printf "export DOCKER_HOST=%q\n" "$HOST"
  printf "export FOGVERSE_DOCKER_BASE=%q\n" "$base_tag"
  printf "export TESTCONTAINERS_RYUK_DISABLED=true\n"
  printf "unset FOGVERSE_DOCKER_UNAVAILABLE\n"
}

main "$@"
