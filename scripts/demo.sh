#!/usr/bin/env bash
# demo.sh [DIR] — local Dovecot on loopback, a seeded demo mailbox, and
# Postern watching it. Everything lives under DIR (default /tmp/postern-demo).
# Needs root (Dovecot's test instance runs its own users and Maildirs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
DIR=${1:-/tmp/postern-demo}
mkdir -p "$DIR"
export DOVECOT_IMAP_PORT=${DEMO_IMAP_PORT:-12143} DOVECOT_IMAPS_PORT=${DEMO_IMAPS_PORT:-12993} DOVECOT_LMTP_PORT=${DEMO_LMTP_PORT:-12024}
export DOVECOT_USERS="demo:demo-password-1"
export RSPAMD_NORMAL_PORT=${DEMO_RSPAMD_PORT:-12333} RSPAMD_CONTROLLER_PORT=${DEMO_RSPAMD_CONTROLLER_PORT:-12334} CLAMD_PORT=${DEMO_CLAMD_PORT:-12310}
echo "starting Dovecot, Rspamd and clamd on loopback (first start compiles Rspamd's databases, ~20 s)..."
bash "$here/peers-setup.sh" "$DIR/stack" dovecot rspamd clamav >"$DIR/stack.log" 2>&1 || { cat "$DIR/stack.log"; exit 1; }
. "$DIR/stack/peers.env"
bin="$root/target/debug/postern"
deliver() { "$DOVECOT_DELIVER" demo INBOX; }
msg() { # from subject id
  printf 'From: %s\r\nTo: demo@example.test\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@demo.postern>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n' \
    "$1" "$2" "$(date -R)" "$3" "This is the demo message \"$2\"."
}

# History from before Postern started: scanned observe-only (backfill_days).
msg 'Old Friend <friend@example.test>' 'Last week'"'"'s notes' "hist-1-$$" | deliver
msg 'Prize Desk <winner@phish.example>' 'You have won (old)' "hist-2-$$" | deliver

# The demo models a real install: the password in its own 0600 file, never
# in config.yaml, and config and data readable by their owner only. (Not a
# global umask: Dovecot's users must still read the stack under $DIR/stack.)
(
umask 077
mkdir -p "$DIR/data" && chmod 700 "$DIR/data"
printf '%s\n' demo-password-1 > "$DIR/imap-password"
cat > "$DIR/config.yaml" <<YAML
# Demo account on the local Dovecot (plain IMAP is allowed only on loopback).
accounts:
  - name: demo
    host: 127.0.0.1
    port: $DOVECOT_IMAP_PORT
    tls: plain
    user: demo
    pass_file: imap-password
    folders: [INBOX]
    quarantine_folder: Quarantine
    backfill_days: 7
policy:
  block_senders: ["@phish.example", "*.malware.test"]
  block_verdict: quarantine
YAML
# Files left by an older demo keep their mode through `>`.
chmod 600 "$DIR/config.yaml" "$DIR/imap-password"
)
if [ ! -s "$DIR/postern.env" ]; then "$bin" gen-secrets > "$DIR/postern.env"; chmod 600 "$DIR/postern.env"; fi
set -a; . "$DIR/postern.env"; set +a
# A demo admin password, made once per demo folder.
if [ ! -s "$DIR/admin-password" ]; then
  (umask 077; head -c 12 /dev/urandom | base64 | tr -d '/+=' | sed 's/^/demo-/' > "$DIR/admin-password")
fi
admin_pw=$(cat "$DIR/admin-password")
eval "export $("$bin" hash-password <<<"$admin_pw")"
web_port=${DEMO_WEB_PORT:-8025}
export POSTERN_CONFIG="$DIR/config.yaml" POSTERN_DATA_DIR="$DIR/data"
export POSTERN_LISTEN="127.0.0.1:$web_port" POSTERN_INSECURE_COOKIES=true
# The demo stays on this machine: no shortened-link lookups on the internet.
export POSTERN_UNSHORTEN=false
export POSTERN_RSPAMD_URL="$RSPAMD_URL" POSTERN_CLAMD_ADDR="127.0.0.1:$CLAMD_PORT" POSTERN_YARA_DIR="$root/rules/yara"
export POSTERN_RSPAMD_CONTROLLER_URL="$RSPAMD_CONTROLLER_URL" POSTERN_RSPAMD_PASSWORD="$RSPAMD_ENABLE_PASSWORD"
"$bin" check-config
"$bin" run >"$DIR/postern.log" 2>&1 &
pid=$!
echo "$pid" > "$DIR/postern.pid"
trap 'kill $pid 2>/dev/null || true' INT TERM
for _ in $(seq 1 100); do grep -q '"watching"\|watching' "$DIR/postern.log" && break; sleep 0.1; done

# New mail while Postern sits in IDLE.
msg 'Colleague <bob@example.test>' 'Lunch tomorrow?' "new-1-$$" | deliver
msg 'Bank Security <alert@phish.example>' 'Verify your account now' "new-2-$$" | deliver
msg 'Updates <noreply@cdn.malware.test>' 'Invoice attached' "new-3-$$" | deliver
# GTUBE (Rspamd rejects it) and an EICAR attachment (clamd finds it).
sed "s/gtube-1@example.test/gtube-$$@demo.postern/" "$PEERS_SAMPLES/gtube.eml" | deliver
sed "s/eicar-1@example.test/eicar-$$@demo.postern/" "$PEERS_SAMPLES/eicar-attachment.eml" | deliver
# Already read by the user before Postern saw it: still scanned, flags untouched.
msg 'Colleague <bob@example.test>' 'Already read' "new-4-$$" | deliver
doveadm -c "$DOVECOT_CONF" flags add -u demo '\Seen' mailbox INBOX HEADER Message-ID "new-4-$$" || true

for _ in $(seq 1 200); do [ "$(grep -c 'action finished' "$DIR/postern.log" || true)" -ge 4 ] && break; sleep 0.1; done
echo
echo "== What Postern did (from $DIR/postern.log) =="
grep -E 'decided|action finished|first sight|backfill' "$DIR/postern.log" | sed -E 's/\x1b\[[0-9;]*m//g' | cut -c 28- || true
echo
echo "== Folders now (doveadm) =="
for f in INBOX Junk Quarantine; do
  echo "-- $f"
  doveadm -c "$DOVECOT_CONF" fetch -u demo 'uid flags hdr.subject' mailbox "$f" | sed -n 's/^\(uid\|flags\|hdr.subject\): /  \1: /p' | paste - - - || true
done
cat <<MSG

Postern is watching demo@127.0.0.1:$DOVECOT_IMAP_PORT (pid $pid). Deliver more with:
  printf 'From: x@phish.example\r\nSubject: hi\r\n\r\nbody\r\n' | $DOVECOT_DELIVER demo INBOX
Log: $DIR/postern.log   Database: $DIR/data/postern.db

  Dashboard: http://127.0.0.1:$web_port/
  Password:  $admin_pw

Stop with Ctrl-C (or: make demo-stop).
MSG
wait $pid
