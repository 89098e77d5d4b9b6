# peers-postfix.sh -- sourced by peers-setup.sh for the `postfix` component:
# a real Postfix (Debian's package) on loopback whose smtpd hands every
# message to Postern's milter and delivers to the test Dovecot over LMTP
# (issue 19, in-line mode).
#
# The package is installed with debconf's "No configuration" (no
# /etc/postfix/main.cf, no system instance: policy-rc.d keeps it from
# starting); the test instance runs from its own config directory with
# `postfix -c BASE/postfix/etc`, its queue and log under BASE/postfix.
#
# Knobs: POSTFIX_SMTP_PORT=10025   smtpd on 127.0.0.1 (mynetworks: 127.0.0.0/8)
#        POSTFIX_MILTER=inet:127.0.0.1:10026   smtpd_milters (Postern in the tests)
#        DOVECOT_LMTP_PORT=10024   Dovecot's LMTP listener (peers-setup.sh)
# Mail for example.test goes to Dovecot over LMTP (alice@example.test ->
# user alice). milter_default_action = tempfail: with Postern down, mail is
# deferred (4xx), never passed unscanned.
# Helpers: BASE/bin/postqueue (postqueue -c ...: -j lists the queue, held mail included).

POSTFIX_SMTP_PORT=${POSTFIX_SMTP_PORT:-10025}
POSTFIX_MILTER=${POSTFIX_MILTER:-inet:127.0.0.1:10026}

smtp_banner() { local o; o=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$POSTFIX_SMTP_PORT; head -c 3 <&3") || return 1; [ "$o" = "220" ]; }

start_postfix() {
  local t P=$BASE/postfix
  t=$(date +%s.%N)
  mkdir -p "$P"/{etc,spool,data,log}
  chmod 755 "$P" "$P/etc"
  chown postfix "$P/data"
  cat > "$P/etc/main.cf" <<EOF
# Test-only Postfix $(postconf -d -h mail_version 2>/dev/null) instance; everything lives under $P
compatibility_level = 3.6
queue_directory = $P/spool
data_directory = $P/data
maillog_file = $P/log/postfix.log
# Postfix refuses log files outside these prefixes (default /var, /dev/stdout).
maillog_file_prefixes = $P/log
myhostname = mx.postern.test
mydomain = postern.test
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
smtputf8_enable = no
biff = no
# Everything for example.test goes to the test Dovecot over LMTP.
virtual_mailbox_domains = example.test
virtual_transport = lmtp:inet:127.0.0.1:$DOVECOT_LMTP_PORT
smtpd_recipient_restrictions = permit_mynetworks, reject
# Nothing leaves 127.0.0.1: no DNS for delivery, mail to other domains fails at once.
disable_dns_lookups = yes
smtp_host_lookup = native
default_transport = error:test instance delivers to example.test only
# Postern as the milter; with it down or timing out, mail is tempfailed.
smtpd_milters = $POSTFIX_MILTER
non_smtpd_milters =
milter_default_action = tempfail
milter_protocol = 6
EOF
  cat > "$P/etc/master.cf" <<EOF
# Test-only master.cf: no chroot, smtpd on loopback only.
127.0.0.1:$POSTFIX_SMTP_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
  local pf=(postfix -c "$P/etc")
  if "${pf[@]}" status >/dev/null 2>&1; then
    "${pf[@]}" reload >/dev/null 2>&1
    log "postfix already running; config reloaded"
  else
    check_port_free "$POSTFIX_SMTP_PORT" postfix
    # `postfix check` creates the queue directories with their owners.
    "${pf[@]}" check >> "$P/log/postfix.stderr" 2>&1 || { tail -20 "$P/log/postfix.stderr" >&2; exit 1; }
    "${pf[@]}" start < /dev/null >> "$P/log/postfix.stderr" 2>&1 || { tail -20 "$P/log/postfix.stderr" >&2; exit 1; }
    wait_for "postfix smtp banner" smtp_banner
    log "postfix started in $(elapsed "$t") s (pid $(tr -dc 0-9 < "$P/spool/pid/master.pid"))"
  fi
  mkdir -p "$BASE/bin"
  printf '#!/bin/sh\nexec postqueue -c "%s" "$@"\n' "$P/etc" > "$BASE/bin/postqueue"
  chmod 755 "$BASE/bin/postqueue"
}
