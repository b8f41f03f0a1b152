#!/usr/bin/env bash
# Install the Debian packages ferry's tests need, only those missing, only as root with apt.
# Without root or apt it lists what is missing and leaves the decision to the tests that need it.
set -euo pipefail
want=()
command -v dockerd >/dev/null || want+=(docker.io)
command -v xz >/dev/null || want+=(xz-utils)
command -v zstd >/dev/null || want+=(zstd)
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || want+=(debootstrap)
command -v bzip2 >/dev/null || want+=(bzip2)
command -v redis-server >/dev/null || want+=(redis-server)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || want+=(postgresql)
command -v chromium >/dev/null || want+=(chromium)
# Compose for the stack test (tests/deploy/test_stack.py): the v2 plugin where the CLI has it, else Debian's v1.
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || want+=(docker-compose)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || want+=(nginx)
command -v node >/dev/null || want+=(nodejs npm)
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${want[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
else
  echo "missing system packages (install them, or tests that need them fail): ${want[*]}" >&2
fi
