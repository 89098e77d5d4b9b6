#!/usr/bin/env bash
# bench.sh — end-to-end throughput of the IMAP engine against the local
# Dovecot: N messages delivered while Postern watches, timed from the first
# delivery to the last recorded decision. Results: bench/results/engine.json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(dirname "$here")
N=${BENCH_MESSAGES:-500}
DIR=$(mktemp -d /tmp/postern-bench.XXXXXX)
chmod 755 "$DIR"   # the vmail user must reach the Maildirs under it
export DOVECOT_IMAP_PORT=${BENCH_IMAP_PORT:-13143} DOVECOT_IMAPS_PORT=${BENCH_IMAPS_PORT:-13993} DOVECOT_USERS="bench:bench-password-1"
bash "$here/peers-setup.sh" "$DIR/stack" dovecot >"$DIR/stack.log" 2>&1
. "$DIR/stack/peers.env"
trap 'kill $pid 2>/dev/null || true; bash "$here/peers-teardown.sh" "$DIR/stack" --purge >/dev/null 2>&1 || true' EXIT
printf 'accounts:\n  - {name: bench, host: 127.0.0.1, port: %s, tls: plain, user: bench, pass: bench-password-1}\npolicy: {block_senders: ["@evil.test"]}\n' "$DOVECOT_IMAP_PORT" > "$DIR/config.yaml"
bin="$root/target/debug/postern"; [ -x "$root/target/release/postern" ] && bin="$root/target/release/postern"
set -a; eval "$("$bin" gen-secrets | grep -v '^#')"; set +a
POSTERN_CONFIG="$DIR/config.yaml" POSTERN_DATA_DIR="$DIR/data" POSTERN_LOG=postern=info "$bin" run >"$DIR/postern.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do grep -q watching "$DIR/postern.log" && break; sleep 0.05; done
start=$(date +%s.%N)
for i in $(seq 1 "$N"); do
  from=$([ $((i % 5)) = 0 ] && echo "x@evil.test" || echo "y@good.test")
  printf 'From: %s\r\nSubject: bench %s\r\nMessage-ID: <b%s@bench>\r\n\r\nbody %s\r\n' "$from" "$i" "$i" "$i" | "$DOVECOT_DELIVER" bench INBOX
done
delivered=$(date +%s.%N)
until [ "$(grep -c ' decided' "$DIR/postern.log")" -ge "$N" ]; do sleep 0.05; done
done_at=$(date +%s.%N)
rss=$(awk '/VmHWM/{print $2}' /proc/$pid/status)
mkdir -p "$root/bench/results"
awk -v n="$N" -v s="$start" -v d="$delivered" -v e="$done_at" -v r="$rss" -v c="$(nproc)" 'BEGIN{
  printf "{\"bench\":\"engine_e2e\",\"messages\":%d,\"deliver_s\":%.2f,\"total_s\":%.2f,\"msg_per_s\":%.1f,\"peak_rss_kib\":%d,\"cores\":%d}\n", n, d-s, e-s, n/(e-s), r, c
}' | tee "$root/bench/results/engine.json"
