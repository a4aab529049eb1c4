#!/usr/bin/env bash
# Make Debian's headless Chromium and its driver present for the browser tests
# (the dashboard's), then print the environment that says so (for `eval`).
# Idempotent and instant when both are installed; CI (scripts/test.sh) and
# developers use the same script:
#
#   eval "$(scripts/browser-env.sh)"
#
# Installs `chromium` and `chromium-driver` with apt-get when they are missing and
# we are root. When they cannot be had it prints FOGVERSE_BROWSER_UNAVAILABLE=<why>
# and still exits 0: the browser tests then skip with that reason.
#
# Settings: FOGVERSE_BROWSER=off (install nothing; the browser tests skip).
set -euo pipefail

PACKAGES=(chromium chromium-driver)

say() { echo "browser-env: $*" >&2; }

unavailable() {
  say "no headless Chromium: $1"
  printf "export FOGVERSE_BROWSER_UNAVAILABLE=%q\n" "$1"
  exit 0
}

present() { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }

main() {
  if [ "${FOGVERSE_BROWSER:-}" = off ]; then
    unavailable "FOGVERSE_BROWSER=off"
  fi
  if ! present; then
    [ "$(id -u)" = 0 ] || unavailable "chromium or chromedriver missing and not root to install them (apt-get install ${PACKAGES[*]})"
    command -v apt-get >/dev/null || unavailable "chromium or chromedriver missing and no apt-get to install them"
    say "installing ${PACKAGES[*]} (Debian packages)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${PACKAGES[@]}" >&2; then
      apt-get update -q >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${PACKAGES[@]}" >&2 || unavailable "apt-get could not install ${PACKAGES[*]}"
    fi
    present || unavailable "apt-get installed ${PACKAGES[*]} but chromium or chromedriver is not on PATH"
  fi
  printf "unset FOGVERSE_BROWSER_UNAVAILABLE\n"
}

main "$@"
