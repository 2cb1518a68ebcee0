#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian 12 machine: the Debian servers plantems runs against
# (InfluxDB 1.x, Mosquitto; VictoriaMetrics as the v2-write peer, socat for a virtual RS-485 line,
# headless Chromium to render the reports in tests, the CJK font fonts-noto-cjk for the Chinese reports,
# systemd-analyze to check the units, docker-compose
# to validate deploy/compose.yaml: no Docker engine) and a virtualenv with the project. Run as root,
# or as a user with sudo. Services are NOT enabled: the demo and the tests start their own instances
# under ./var or temporary folders.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in influxd:influxdb mosquitto:mosquitto victoria-metrics:victoria-metrics socat:socat openssl:openssl chromium:chromium pgrep:procps systemd-analyze:systemd \
            docker-compose:docker-compose; do
  bin=${pair%%:*}; pkg=${pair##*:}
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need+=("$pkg")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# the Chinese reports' font (charts via matplotlib, the HTML in Chromium): Noto Sans CJK SC
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need+=(fonts-noto-cjk)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing Debian packages: ${need[*]}"
  # policy-rc.d 101: the packages' init scripts must not start system-wide servers
  $SUDO sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  $SUDO rm -f /usr/sbin/policy-rc.d
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.plantems-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[test]"
  touch "$stamp"
fi
