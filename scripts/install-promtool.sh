#!/usr/bin/env bash
# Put promtool (Debian's prometheus package) into the virtual environment's bin folder, for the
# tests of the alert rules and of /metrics. Only the binary is taken from the package: nothing
# is installed system-wide and no Prometheus server is started. Usage: install-promtool.sh BIN
set -euo pipefail
bin=$(cd "${1:?usage: install-promtool.sh BIN}" && pwd)
if [ -x "$bin/promtool" ]; then
  exit 0
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
if ! apt-get download prometheus >/dev/null 2>&1; then
  # The package lists may be missing on a fresh machine (apt-get update needs root).
  apt-get update -qq
  apt-get download prometheus >/dev/null
fi
dpkg-deb -x prometheus_*.deb unpacked
install -m 0755 unpacked/usr/bin/promtool "$bin/promtool"
"$bin/promtool" --version >/dev/null
