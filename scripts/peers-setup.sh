#!/usr/bin/env bash
# peers-setup.sh BASE_DIR [dovecot] [rspamd] [clamav] [cyrus] [courier] [mailutils] [postfix]
#
# Postern's own copy of the verified test-peer recipe (a fresh clone must not
# need ../shared). Used by scripts/test-stack.sh, the integration tests and
# `make demo`.
#
# Installs (Debian 12 packages, no internet needed beyond the apt mirror) and
# starts test instances of Dovecot IMAP, Rspamd and ClamAV (clamd) on loopback,
# with every config/state/log file under BASE_DIR. Idempotent: re-running keeps
# running instances, re-creates missing ones. Must run as root.
#
# Default ports (override with env vars of the same name):
#   DOVECOT_IMAP_PORT=10143 (plain + STARTTLS)   DOVECOT_IMAPS_PORT=10993 (implicit TLS)
#   DOVECOT_LMTP_PORT=10024 (LMTP, user@example.test -> user)
#   RSPAMD_NORMAL_PORT=11333 (/checkv2)          RSPAMD_CONTROLLER_PORT=11334 (/learnspam ...)
#   CLAMD_PORT=3310
#   CYRUS_IMAP_PORT=11143  COURIER_IMAP_PORT=13143  MAILUTILS_IMAP_PORT=14143 (see peers-imap-others.sh)
#   POSTFIX_SMTP_PORT=10025 POSTFIX_MILTER=inet:127.0.0.1:10026  (see peers-postfix.sh)
# Other knobs:
#   DOVECOT_USERS="alice:alicepass bob:bobpass"   test users (user:plainpassword ...)
#   DOVECOT_OAUTH_USER=oauthuser  mailbox that logs in only with XOAUTH2/OAUTHBEARER tokens,
#                             checked by token introspection at DOVECOT_OAUTH_INTROSPECT_URL
#                             (default http://127.0.0.1:10981/introspect, a mock the tests run)
#   RSPAMD_PASSWORD=testpass RSPAMD_ENABLE_PASSWORD=testenable
#   RSPAMD_HS_CACHE_DIR=DIR   hyperscan cache; point it at a persistent dir to make
#                             rspamd start in ~1 s instead of ~16 s (default BASE/rspamd/hs)
#   RSPAMD_ANTIVIRUS=1        let rspamd's antivirus module scan via our clamd (EICAR -> reject)
#   DOVECOT_INOTIFY_INSTANCES=1024  raise fs.inotify.max_user_instances (many IDLE sessions)
#   DOVECOT_IMAP_PROCESS_LIMIT=1024  service imap process_limit: one per IMAP session (P7 bench)
#   PEERS_SKIP_INSTALL=1      do not call apt-get at all
#   PEERS_START_TIMEOUT=90    seconds to wait for each daemon
#   DOVECOT_IMAP_CAPABILITY="IMAP4rev1 ..."  override Dovecot's post-login CAPABILITY list
# Writes BASE_DIR/peers.env (sourceable: ports, pids, paths) and prints pids.
set -euo pipefail

usage() { echo "usage: $0 BASE_DIR [dovecot] [rspamd] [clamav] [cyrus] [courier] [mailutils] [postfix]" >&2; exit 2; }
[ $# -ge 1 ] || usage
[ "$(id -u)" = 0 ] || { echo "peers-setup: must run as root" >&2; exit 1; }

mkdir -p "$1"
BASE=$(cd "$1" && pwd -P)
shift
COMPONENTS=${*:-dovecot rspamd clamav}
has() { case " $COMPONENTS " in *" $1 "*) return 0;; *) return 1;; esac; }

DOVECOT_IMAP_PORT=${DOVECOT_IMAP_PORT:-10143}
DOVECOT_IMAPS_PORT=${DOVECOT_IMAPS_PORT:-10993}
DOVECOT_LMTP_PORT=${DOVECOT_LMTP_PORT:-10024}
RSPAMD_NORMAL_PORT=${RSPAMD_NORMAL_PORT:-11333}
RSPAMD_CONTROLLER_PORT=${RSPAMD_CONTROLLER_PORT:-11334}
CLAMD_PORT=${CLAMD_PORT:-3310}
DOVECOT_USERS=${DOVECOT_USERS:-"alice:alicepass bob:bobpass"}
DOVECOT_OAUTH_USER=${DOVECOT_OAUTH_USER:-oauthuser}
DOVECOT_OAUTH_INTROSPECT_URL=${DOVECOT_OAUTH_INTROSPECT_URL:-http://127.0.0.1:10981/introspect}
RSPAMD_PASSWORD=${RSPAMD_PASSWORD:-testpass}
RSPAMD_ENABLE_PASSWORD=${RSPAMD_ENABLE_PASSWORD:-testenable}
RSPAMD_HS_CACHE_DIR=${RSPAMD_HS_CACHE_DIR:-$BASE/rspamd/hs}
PEERS_START_TIMEOUT=${PEERS_START_TIMEOUT:-90}
MAIL_USER=vmail   # unprivileged owner of the Maildirs (created if missing)

if [ ${#BASE} -gt 60 ]; then
  echo "peers-setup: BASE_DIR path too long (${#BASE} chars); unix sockets are limited to 108 bytes" >&2
  exit 1
fi

log() { printf '[peers-setup %s] %s\n' "$(date +%T)" "$*"; }
T0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# ---------------------------------------------------------------- install
PKGS=(openssl curl ca-certificates)
has dovecot && PKGS+=(dovecot-core dovecot-imapd dovecot-lmtpd)
has rspamd  && PKGS+=(rspamd)
has clamav  && PKGS+=(clamav clamav-daemon clamdscan clamav-testfiles)
has postfix && PKGS+=(postfix miltertest)   # miltertest: a second milter client for the tests

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && [ "${PEERS_SKIP_INSTALL:-0}" != 1 ]; then
  t=$(date +%s.%N)
  log "installing: ${missing[*]}"
  # Keep the packages' own system services (dovecot on 143/993, rspamd on
  # 11333/11334, clamav-freshclam which would try to download) from starting.
  tmp_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; tmp_policy=1
  fi
  trap '[ $tmp_policy = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  # Postfix without a system instance: the test one has its own config dir.
  has postfix && echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
  if ! { apt-get update -qq && apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}"; } \
       > "$BASE/apt-install.log" 2>&1; then
    tail -40 "$BASE/apt-install.log" >&2; echo "peers-setup: apt-get failed (log: $BASE/apt-install.log)" >&2; exit 1
  fi
  [ $tmp_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  trap - EXIT
  log "install done in $(elapsed "$t") s"
elif [ ${#missing[@]} -gt 0 ]; then
  echo "peers-setup: missing packages and PEERS_SKIP_INSTALL=1: ${missing[*]}" >&2; exit 1
fi

# ---------------------------------------------------------------- helpers
mkdir -p "$BASE"
. "$(dirname "${BASH_SOURCE[0]}")/peers-imap-others.sh"
. "$(dirname "${BASH_SOURCE[0]}")/peers-postfix.sh"
chmod 755 "$BASE"

# replace_if_changed NEW DEST: moves NEW over DEST (mode 644) when they
# differ and returns 1; otherwise drops NEW and returns 0. An unchanged file
# keeps its mtime, so Dovecot does not re-read it for nothing.
replace_if_changed() {
  if [ -f "$2" ] && cmp -s "$1" "$2"; then rm -f "$1"; return 0; fi
  chmod 644 "$1"; mv "$1" "$2"; return 1
}

pid_alive() { # pidfile expected-comm-substring
  [ -s "$1" ] || return 1
  local p; p=$(tr -dc 0-9 < "$1")
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && tr '\0' ' ' < /proc/"$p"/cmdline 2>/dev/null | grep -q -- "$2"
}
port_busy() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
check_port_free() {
  if port_busy "$1"; then
    echo "peers-setup: 127.0.0.1:$1 is already in use by another process (not our $2 instance)" >&2
    ss -ltnp "sport = :$1" >&2 || true
    exit 1
  fi
}
wait_for() { # description command...
  local what=$1; shift
  local deadline=$(( $(date +%s) + PEERS_START_TIMEOUT ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then echo "peers-setup: timeout waiting for $what" >&2; return 1; fi
    sleep 0.1
  done
}
check_access() { # user dir  -- the daemon user must be able to write dir
  if ! runuser -u "$1" -- test -w "$2" -a -x "$2"; then
    echo "peers-setup: user $1 cannot write $2 (a parent directory of BASE_DIR is probably not world-executable, e.g. /root); use a BASE_DIR under /tmp or /var/tmp" >&2
    exit 1
  fi
}
# readiness probes (capture output first: no pipes under pipefail)
imap_banner() { local o; o=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$DOVECOT_IMAP_PORT; head -c 4 <&3") || return 1; [ "$o" = "* OK" ]; }
imaps_ok() { local o; o=$(timeout 5 openssl s_client -connect 127.0.0.1:"$DOVECOT_IMAPS_PORT" -brief </dev/null 2>&1) || true; [[ $o == *"CONNECTION ESTABLISHED"* ]]; }
rspamd_ping() { local a b; a=$(curl -fsS --max-time 2 "http://127.0.0.1:$RSPAMD_NORMAL_PORT/ping") || return 1
                b=$(curl -fsS --max-time 2 "http://127.0.0.1:$RSPAMD_CONTROLLER_PORT/ping") || return 1
                [[ $a == pong* && $b == pong* ]]; }
clamd_ping() { local o; o=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$CLAMD_PORT; printf 'zPING\0' >&3; tr -d '\0' <&3") || return 1; [ "$o" = PONG ]; }

# Optional: >128 concurrent IDLE sessions of one uid exhaust inotify instances; dovecot then
# falls back to polling every mailbox_idle_check_interval (1 s) and logs a warning.
if [ -n "${DOVECOT_INOTIFY_INSTANCES:-}" ] &&
   [ "$(cat /proc/sys/fs/inotify/max_user_instances)" -lt "$DOVECOT_INOTIFY_INSTANCES" ]; then
  echo "$DOVECOT_INOTIFY_INSTANCES" > /proc/sys/fs/inotify/max_user_instances || true
fi

# ---------------------------------------------------------------- samples
S=$BASE/samples
mkdir -p "$S"
# EICAR test file, assembled from two halves so this script is not itself "infected".
printf '%s%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-' 'TEST-FILE!$H+H*' > "$S/eicar.com"
GTUBE='XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
printf 'From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\nSubject: Lunch tomorrow\r\nDate: %s\r\nMessage-ID: <ham-1@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHi Bob,\r\n\r\nshall we meet for lunch tomorrow at noon near the office? Let me know.\r\n\r\nAlice\r\n' "$(date -R)" > "$S/ham.eml"
printf 'From: Spammer <spam@example.test>\r\nTo: Bob <bob@example.test>\r\nSubject: GTUBE test\r\nDate: %s\r\nMessage-ID: <gtube-1@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThis is the GTUBE, the Generic Test for Unsolicited Bulk Email\r\n\r\n%s\r\n\r\n' "$(date -R)" "$GTUBE" > "$S/gtube.eml"
{
  printf 'From: Evil <evil@example.test>\r\nTo: Alice <alice@example.test>\r\nSubject: invoice\r\nDate: %s\r\nMessage-ID: <eicar-1@example.test>\r\nMIME-Version: 1.0\r\n' "$(date -R)"
  printf 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--b1\r\n'
  printf 'Content-Type: application/octet-stream; name="eicar.com"\r\nContent-Disposition: attachment; filename="eicar.com"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
  base64 -w 76 "$S/eicar.com" | sed 's/$/\r/'
  printf -- '--b1--\r\n'
} > "$S/eicar-attachment.eml"

# ================================================================ DOVECOT
start_dovecot() {
  local t D=$BASE/dovecot
  t=$(date +%s.%N)
  id "$MAIL_USER" >/dev/null 2>&1 ||
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$MAIL_USER"
  mkdir -p "$D"/{run,state,log,tls,mail}
  chmod 755 "$D" "$D/mail"
  chown "$MAIL_USER:$MAIL_USER" "$D/mail"
  check_access "$MAIL_USER" "$D/mail"
  if [ ! -s "$D/tls/cert.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=localhost \
      -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
      -keyout "$D/tls/key.pem" -out "$D/tls/cert.pem" 2>/dev/null
    chmod 600 "$D/tls/key.pem"
  fi
  # The configured users, plus every user someone else added since (tests and
  # benches append their own while others run): running `up` again must not
  # take a user away from a test that is logged in as it.
  : > "$D/users.new"
  for u in $DOVECOT_USERS; do printf '%s:{PLAIN}%s::::::\n' "${u%%:*}" "${u#*:}" >> "$D/users.new"; done
  if [ -f "$D/users" ]; then
    awk -F: 'NR == FNR { mine[$1] = 1; next } !($1 in mine)' "$D/users.new" "$D/users" >> "$D/users.new"
  fi
  replace_if_changed "$D/users.new" "$D/users" || true
  # OAuth2 (issue 15): a user with no password, known to the userdb only;
  # its tokens are checked by the test's introspection mock.
  printf '%s::::::\n' "$DOVECOT_OAUTH_USER" > "$D/oauth-users.new"
  replace_if_changed "$D/oauth-users.new" "$D/oauth-users" || true
  cat > "$D/oauth2.conf.ext.new" <<EOF
introspection_mode = post
introspection_url = $DOVECOT_OAUTH_INTROSPECT_URL
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
EOF
  replace_if_changed "$D/oauth2.conf.ext.new" "$D/oauth2.conf.ext" || true

  cat > "$D/dovecot.conf.new" <<EOF
# Test-only Dovecot $(dovecot --version | cut -d' ' -f1) instance; everything lives under $D
instance_name = dovecot-peers
base_dir = $D/run
state_dir = $D/state
log_path = $D/log/dovecot.log
info_log_path = $D/log/dovecot.log
debug_log_path = $D/log/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
# allow system uids (vmail) for mail access
first_valid_uid = 1
first_valid_gid = 1
# tests log in with plain passwords, also without TLS
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
auth_verbose = yes
mail_max_userip_connections = 500
ssl = yes
ssl_cert = <$D/tls/cert.pem
ssl_key = <$D/tls/key.pem
ssl_dh = </usr/share/dovecot/dh.pem
ssl_min_protocol = TLSv1.2
mail_location = maildir:~/Maildir
mail_fsync = never
# IDLE: inotify gives ~0.5 s notifications; this is only the polling fallback
mailbox_idle_check_interval = 1 secs
imap_idle_notify_interval = 2 mins
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $D/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $D/users
  default_fields = uid=$MAIL_USER gid=$MAIL_USER home=$D/mail/%u
}
# OAuth2: bearer tokens only, validated by introspection (no cache: a revoked
# token fails at once). Plain logins never reach this passdb.
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $D/oauth2.conf.ext
}
userdb {
  driver = passwd-file
  args = username_format=%u $D/oauth-users
  default_fields = uid=$MAIL_USER gid=$MAIL_USER home=$D/mail/%u
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    auto = subscribe
    special_use = \\Drafts
  }
  mailbox Sent {
    auto = subscribe
    special_use = \\Sent
  }
  mailbox Trash {
    auto = subscribe
    special_use = \\Trash
  }
  mailbox Junk {
    auto = subscribe
    special_use = \\Junk
  }
  mailbox Quarantine {
    auto = create
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DOVECOT_IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $DOVECOT_IMAPS_PORT
    ssl = yes
  }
}
service imap {
  process_limit = ${DOVECOT_IMAP_PROCESS_LIMIT:-1024}
}
# LMTP for the test Postfix (peers-postfix.sh): alice@example.test is user alice.
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $DOVECOT_LMTP_PORT
  }
}
protocol lmtp {
  auth_username_format = %Ln
}
${DOVECOT_IMAP_CAPABILITY:+protocol imap {
  # test knob: replace the advertised post-login capabilities (e.g. without MOVE/IDLE)
  imap_capability = $DOVECOT_IMAP_CAPABILITY
\}}
EOF
  doveconf -c "$D/dovecot.conf.new" -n >/dev/null
  local changed=0
  replace_if_changed "$D/dovecot.conf.new" "$D/dovecot.conf" || changed=1

  if pid_alive "$D/run/master.pid" dovecot.conf; then
    # A changed config (e.g. the OAuth2 passdb) applies without a restart. A
    # reload ends every IMAP session, so an unchanged one is left alone: tests
    # that run `up` for another peer must not cut the others' connections.
    if [ "$changed" = 1 ]; then
      doveadm -c "$D/dovecot.conf" reload
      log "dovecot already running (pid $(cat "$D/run/master.pid")); config changed and reloaded"
    else
      log "dovecot already running (pid $(cat "$D/run/master.pid")); config unchanged"
    fi
  else
    check_port_free "$DOVECOT_IMAP_PORT" dovecot
    check_port_free "$DOVECOT_IMAPS_PORT" dovecot
    # dovecot's master keeps fd 2 open: detach stdio, or "peers-setup.sh | tee" / $(...) never ends
    dovecot -c "$D/dovecot.conf" < /dev/null >> "$D/log/dovecot.stderr" 2>&1
    wait_for "dovecot imap banner" imap_banner
    wait_for "dovecot imaps" imaps_ok
    log "dovecot started in $(elapsed "$t") s (pid $(cat "$D/run/master.pid"))"
  fi
  mkdir -p "$BASE/bin"
  cat > "$BASE/bin/deliver" <<EOF
#!/bin/sh
# deliver USER [MAILBOX] < message.eml   -- store a message as if delivered (IDLE clients see EXISTS)
exec doveadm -c "$D/dovecot.conf" save -u "\$1" -m "\${2:-INBOX}"
EOF
  chmod 755 "$BASE/bin/deliver"
}

# ================================================================ RSPAMD
start_rspamd() {
  local t R=$BASE/rspamd m
  t=$(date +%s.%N)
  mkdir -p "$R"/{etc/local.d,etc/override.d,db,run,log} "$RSPAMD_HS_CACHE_DIR"
  chmod 755 "$R"
  cat > "$R/rspamd.conf" <<EOF
# Test-only top-level rspamd $(rspamd --version 2>/dev/null | awk '{print $NF}') config. Stock rules from \$CONFDIR=/etc/rspamd,
# local overrides from \$LOCAL_CONFDIR=$R/etc (passed with --var). No proxy, no fuzzy worker.
.include "\$CONFDIR/common.conf"
options {
  pidfile = "\$RUNDIR/rspamd.pid";
  .include "\$CONFDIR/options.inc"
  .include(try=true; priority=1,duplicate=merge) "\$LOCAL_CONFDIR/local.d/options.inc"
}
logging {
  type = "file";
  filename = "\$LOGDIR/rspamd.log";
  level = "info";
}
worker "normal" {
  bind_socket = "127.0.0.1:$RSPAMD_NORMAL_PORT";
  mime = true;
  count = 1;
}
worker "controller" {
  bind_socket = "127.0.0.1:$RSPAMD_CONTROLLER_PORT";
  count = 1;
  static_dir = "\${WWWDIR}";
  # Loopback is NOT trusted (the stock config trusts 127.0.0.1/::1 and then skips
  # password checks), so the passwords below are really enforced.
  secure_ip = "192.0.2.1";
  password = "$RSPAMD_PASSWORD";
  enable_password = "$RSPAMD_ENABLE_PASSWORD";
}
EOF
  cat > "$R/etc/local.d/options.inc" <<'EOF'
# No network: DNS goes to a dead loopback port and fails fast (nothing leaves 127.0.0.1)
dns {
  nameserver = ["127.0.0.1:1"];
  timeout = 0.2s;
  retransmits = 1;
}
hs_cache_dir = "${HSCACHEDIR}/";
tempdir = "${DBDIR}";
EOF
  # Modules that fetch https maps (maps.rspamd.com, openphish, updates.rspamd.com),
  # talk to fuzzy servers, or only make sense with DNS.
  for m in rbl surbl emails asn spf dkim dmarc arc fuzzy_check phishing multimap whitelist \
           mime_types mid rspamd_update hfilter mx_check dcc external_services bimi; do
    echo 'enabled = false;' > "$R/etc/local.d/$m.conf"
  done
  cat > "$R/etc/override.d/classifier-bayes.conf" <<'EOF'
# Redis is the default backend in 3.x; the built-in sqlite3 backend needs no redis.
backend = "sqlite3";
min_learns = 1;
statfile {
  symbol = "BAYES_HAM";
  spam = false;
  path = "${DBDIR}/bayes.ham.sqlite";
}
statfile {
  symbol = "BAYES_SPAM";
  spam = true;
  path = "${DBDIR}/bayes.spam.sqlite";
}
EOF
  if [ "${RSPAMD_ANTIVIRUS:-0}" = 1 ]; then
    # optional: rspamd's antivirus module asks our clamd; EICAR -> symbol EICAR_TEST, action reject
    cat > "$R/etc/local.d/antivirus.conf" <<EOF
clamav {
  type = "clamav";
  servers = "127.0.0.1:$CLAMD_PORT";
  symbol = "CLAM_VIRUS";
  action = "reject";
  scan_mime_parts = true;
  scan_text_mime = true;
  patterns {
    EICAR_TEST = '^Test\\.EICAR';
  }
}
EOF
  else
    rm -f "$R/etc/local.d/antivirus.conf"
  fi
  chown -R _rspamd:_rspamd "$R/db" "$R/run" "$R/log" "$RSPAMD_HS_CACHE_DIR"
  check_access _rspamd "$R/db"
  RSPAMD_VARS=(--var="LOCAL_CONFDIR=$R/etc" --var="DBDIR=$R/db" --var="RUNDIR=$R/run"
               --var="LOGDIR=$R/log" --var="HSCACHEDIR=$RSPAMD_HS_CACHE_DIR")
  local ct; ct=$(rspamadm "${RSPAMD_VARS[@]}" configtest -c "$R/rspamd.conf" 2>&1) || true
  [[ $ct == *"syntax OK"* ]] || { echo "peers-setup: rspamd configtest failed:" >&2; echo "$ct" >&2; exit 1; }

  if pid_alive "$R/run/rspamd.pid" rspamd; then
    log "rspamd already running (pid $(cat "$R/run/rspamd.pid"))"
  else
    check_port_free "$RSPAMD_NORMAL_PORT" rspamd
    check_port_free "$RSPAMD_CONTROLLER_PORT" rspamd
    rspamd -c "$R/rspamd.conf" "${RSPAMD_VARS[@]}" -u _rspamd -g _rspamd -p "$R/run/rspamd.pid" \
      < /dev/null >> "$R/log/rspamd.stderr" 2>&1
    wait_for "rspamd /ping" rspamd_ping
    log "rspamd started in $(elapsed "$t") s (pid $(cat "$R/run/rspamd.pid"))"
  fi
}

# ================================================================ CLAMAV
start_clamav() {
  local t C=$BASE/clamav
  t=$(date +%s.%N)
  mkdir -p "$C"/{db,tmp,log,run}
  chmod 755 "$C"
  # Custom signatures only (freshclam cannot download main/daily.cvd here):
  #  .hdb = MD5:size:name, .ndb = name:target:offset:hexbody. Detected names get ".UNOFFICIAL".
  {
    echo "$(md5sum < "$BASE/samples/eicar.com" | cut -d' ' -f1):68:Test.EICAR.HDB"
    if [ -f /usr/share/clamav-testfiles/clam.exe ]; then
      # matches clam.exe and every packed/archived variant in clamav-testfiles (44/44 files)
      echo "$(md5sum < /usr/share/clamav-testfiles/clam.exe | cut -d' ' -f1):$(stat -c %s /usr/share/clamav-testfiles/clam.exe):Test.ClamAV-Test-File"
    fi
  } > "$C/db/test.hdb"
  echo "Test.EICAR.NDB:0:*:$(printf '%s' 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE' | od -An -tx1 | tr -d ' \n')" > "$C/db/test.ndb"
  cat > "$C/clamd.conf" <<EOF
# Test-only clamd $(clamd --version | cut -d' ' -f2 | cut -d/ -f1), everything under $C
TCPSocket $CLAMD_PORT
TCPAddr 127.0.0.1
LocalSocket $C/run/clamd.sock
LocalSocketMode 666
FixStaleSocket true
User clamav
DatabaseDirectory $C/db
OfficialDatabaseOnly false
PidFile $C/run/clamd.pid
LogFile $C/log/clamd.log
LogTime true
TemporaryDirectory $C/tmp
Foreground true
SelfCheck 60
MaxThreads 4
StreamMaxLength 25M
MaxFileSize 25M
MaxScanSize 100M
ScanMail true
ScanArchive true
ExtendedDetectionInfo true
Bytecode false
EOF
  printf 'TCPSocket %s\nTCPAddr 127.0.0.1\n' "$CLAMD_PORT" > "$C/clamdscan-tcp.conf"
  chown -R clamav:clamav "$C/db" "$C/tmp" "$C/log" "$C/run"
  check_access clamav "$C/tmp"
  if pid_alive "$C/run/clamd.pid" clamd; then
    log "clamd already running (pid $(cat "$C/run/clamd.pid"))"
  else
    check_port_free "$CLAMD_PORT" clamd
    # Do NOT let clamd daemonize itself: its parent waits for a SIGINT from the
    # child, and with a tiny database the child can signal before the parent is
    # ready -> "clamd -c ..." hangs forever (seen here). Run it in the foreground,
    # detached with setsid, and use its PidFile.
    rm -f "$C/run/clamd.pid"
    setsid clamd -c "$C/clamd.conf" --foreground >> "$C/log/clamd.stderr" 2>&1 < /dev/null &
    wait_for "clamd PING" clamd_ping
    [ -s "$C/run/clamd.pid" ] || echo $! > "$C/run/clamd.pid"
    log "clamd started in $(elapsed "$t") s (pid $(cat "$C/run/clamd.pid"))"
  fi
}

has dovecot && start_dovecot
has rspamd && start_rspamd
has clamav && start_clamav
if has cyrus || has courier || has mailutils; then install_others; fi
has cyrus && start_cyrus
has courier && start_courier
has mailutils && start_mailutils
has postfix && start_postfix

# ---------------------------------------------------------------- env file
pidof_file() { [ -s "$1" ] && tr -dc 0-9 < "$1" || true; }
# Written whole and renamed: tests may read it while another run rewrites it.
cat > "$BASE/peers.env.$$" <<EOF
# generated by peers-setup.sh $(date -R)
PEERS_BASE=$BASE
PEERS_SAMPLES=$BASE/samples
DOVECOT_CONF=$BASE/dovecot/dovecot.conf
DOVECOT_HOST=127.0.0.1
DOVECOT_IMAP_PORT=$DOVECOT_IMAP_PORT
DOVECOT_IMAPS_PORT=$DOVECOT_IMAPS_PORT
DOVECOT_LMTP_PORT=$DOVECOT_LMTP_PORT
DOVECOT_CA_CERT=$BASE/dovecot/tls/cert.pem
DOVECOT_USERS="$DOVECOT_USERS"
DOVECOT_OAUTH_USER=$DOVECOT_OAUTH_USER
DOVECOT_OAUTH_INTROSPECT_URL=$DOVECOT_OAUTH_INTROSPECT_URL
DOVECOT_DELIVER=$BASE/bin/deliver
DOVECOT_LOG=$BASE/dovecot/log/dovecot.log
DOVECOT_PID=$(pidof_file "$BASE/dovecot/run/master.pid")
RSPAMD_URL=http://127.0.0.1:$RSPAMD_NORMAL_PORT
RSPAMD_CONTROLLER_URL=http://127.0.0.1:$RSPAMD_CONTROLLER_PORT
RSPAMD_PASSWORD=$RSPAMD_PASSWORD
RSPAMD_ENABLE_PASSWORD=$RSPAMD_ENABLE_PASSWORD
RSPAMD_LOG=$BASE/rspamd/log/rspamd.log
RSPAMD_PID=$(pidof_file "$BASE/rspamd/run/rspamd.pid")
CLAMD_HOST=127.0.0.1
CLAMD_PORT=$CLAMD_PORT
CLAMD_SOCKET=$BASE/clamav/run/clamd.sock
CLAMD_CONF=$BASE/clamav/clamd.conf
CLAMDSCAN_TCP_CONF=$BASE/clamav/clamdscan-tcp.conf
CLAMD_LOG=$BASE/clamav/log/clamd.log
CLAMD_PID=$(pidof_file "$BASE/clamav/run/clamd.pid")
CYRUS_IMAP_PORT=$CYRUS_IMAP_PORT
CYRUS_USERS="$CYRUS_USERS"
CYRUS_ADDUSER=$BASE/bin/cyrus-adduser
CYRUS_PID=$(pidof_file "$BASE/cyrus/run/master.pid")
COURIER_IMAP_PORT=$COURIER_IMAP_PORT
COURIER_USERS="$COURIER_USERS"
COURIER_ADDUSER=$BASE/bin/courier-adduser
COURIER_PID=$(pidof_file "$BASE/courier/run/imapd.pid")
MAILUTILS_IMAP_PORT=$MAILUTILS_IMAP_PORT
MAILUTILS_USERS="$MAILUTILS_USERS"
MAILUTILS_ADDUSER=$BASE/bin/mailutils-adduser
MAILUTILS_PID=$(pidof_file "$BASE/mailutils/run/imap4d.pid")
POSTFIX_SMTP_PORT=$POSTFIX_SMTP_PORT
POSTFIX_MILTER=$POSTFIX_MILTER
POSTFIX_POSTQUEUE=$BASE/bin/postqueue
POSTFIX_CONF_DIR=$BASE/postfix/etc
POSTFIX_LOG=$BASE/postfix/log/postfix.log
POSTFIX_PID=$(pidof_file "$BASE/postfix/spool/pid/master.pid")
EOF
mv -f "$BASE/peers.env.$$" "$BASE/peers.env"
. "$BASE/peers.env"
log "all done in $(elapsed "$T0") s; env file: $BASE/peers.env"
has dovecot && echo "DOVECOT_PID=$DOVECOT_PID imap=127.0.0.1:$DOVECOT_IMAP_PORT imaps=127.0.0.1:$DOVECOT_IMAPS_PORT"
has rspamd  && echo "RSPAMD_PID=$RSPAMD_PID normal=127.0.0.1:$RSPAMD_NORMAL_PORT controller=127.0.0.1:$RSPAMD_CONTROLLER_PORT"
has clamav  && echo "CLAMD_PID=$CLAMD_PID tcp=127.0.0.1:$CLAMD_PORT"
has cyrus   && echo "CYRUS_PID=$CYRUS_PID imap=127.0.0.1:$CYRUS_IMAP_PORT"
has courier && echo "COURIER_PID=$COURIER_PID imap=127.0.0.1:$COURIER_IMAP_PORT"
has mailutils && echo "MAILUTILS_PID=$MAILUTILS_PID imap=127.0.0.1:$MAILUTILS_IMAP_PORT"
has postfix && echo "POSTFIX_PID=$POSTFIX_PID smtp=127.0.0.1:$POSTFIX_SMTP_PORT milter=$POSTFIX_MILTER"
exit 0
