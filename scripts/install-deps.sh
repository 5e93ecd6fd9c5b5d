#!/usr/bin/env bash
# Installs the system programs perfkit's tests use, when they are missing.
# Sourced by scripts/test.sh and .ci/run; runs `apt-get` only on Debian-like machines.

need_apt=()
want() { command -v "$1" >/dev/null 2>&1 || need_apt+=("$2"); }

install_test_deps() {
  need_apt=()
  want redis-server redis-server   # Redis tier and distributed budget tests
  want chromium chromium           # bundle HTML report and dashboard browser tests
  if [ ${#need_apt[@]} -eq 0 ]; then
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: missing ${need_apt[*]} and no apt-get: install them by hand" >&2
    return 1
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "install-deps: installing ${need_apt[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
}
