#!/usr/bin/env bash
# test-stack.sh up|down|env [BASE] [components...]
#
# Starts (or stops) throwaway Dovecot / Rspamd / clamd / Cyrus / Courier / GNU Mailutils / Postfix instances on loopback for
# Postern's tests, benchmarks and demo. Everything lives under BASE
# (default /tmp/postern-stack). `up` is idempotent and prints the env file path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-up}; shift || true
BASE=${1:-${POSTERN_STACK_BASE:-/tmp/postern-stack}}; shift || true
components=${*:-dovecot}
case $cmd in
  up)   DOVECOT_INOTIFY_INSTANCES=${DOVECOT_INOTIFY_INSTANCES:-1024} bash "$here/peers-setup.sh" "$BASE" $components >&2
        echo "$BASE/peers.env" ;;
  down) bash "$here/peers-teardown.sh" "$BASE" ${PURGE:+--purge} ;;
  env)  cat "$BASE/peers.env" ;;
  *)    echo "usage: $0 up|down|env [BASE] [dovecot rspamd clamav cyrus courier mailutils postfix]" >&2; exit 2 ;;
esac
