#!/bin/sh
# with-secret.sh VARIABLE FILE COMMAND [ARG...]: run COMMAND with VARIABLE set to the content of FILE.
# For programs that read a password only from their environment (the InfluxDB image's first-run
# admin, `plantems influx init`, Grafana's datasource provisioning): the secret stays a compose
# secret file, so it never appears in compose.yaml, deploy/.env or `docker inspect`.
# An unreadable or empty file stops here, loudly, before the program starts.
set -eu
if [ "$#" -lt 3 ]; then
  echo "usage: with-secret.sh VARIABLE FILE COMMAND [ARG...]" >&2
  exit 2
fi
name=$1
file=$2
shift 2
value=$(cat -- "$file") || { echo "with-secret.sh: cannot read $file for $name" >&2; exit 1; }
if [ -z "$value" ]; then
  echo "with-secret.sh: $file (for $name) is empty" >&2
  exit 1
fi
export "$name=$value"
exec "$@"
