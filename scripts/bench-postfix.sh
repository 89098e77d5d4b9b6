#!/usr/bin/env bash
# bench-postfix.sh up|down BASE [PLAIN_PORT MILTER_PORT MILTER] -- the private
# Postfix of the P6 benchmark (issue 19, app/benches/milter.rs): one
# instance, two smtpd listeners on loopback, the same main.cf, so the only
# difference between them is the milter:
#   127.0.0.1:PLAIN_PORT   no milter (the baseline)
#   127.0.0.1:MILTER_PORT  smtpd_milters = MILTER (Postern, in the bench)
# Mail is discarded after queueing: the benchmark times the SMTP dialogue,
# not delivery. Everything lives under BASE/postfix-bench; the test stack's
# own Postfix is not touched. Needs root, like the stack.
set -euo pipefail
cmd=${1:?usage: $0 up|down BASE [PLAIN_PORT MILTER_PORT MILTER]}
BASE=${2:?BASE}
P=$BASE/postfix-bench
if [ "$cmd" = down ]; then
  postfix -c "$P/etc" stop >/dev/null 2>&1 || true
  exit 0
fi
PLAIN=${3:?PLAIN_PORT}
MPORT=${4:?MILTER_PORT}
MILTER=${5:?MILTER}
postfix -c "$P/etc" stop >/dev/null 2>&1 || true
rm -rf "$P"
mkdir -p "$P"/{etc,spool,data,log}
chown postfix "$P/data"
cat > "$P/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $P/spool
data_directory = $P/data
maillog_file = $P/log/postfix.log
maillog_file_prefixes = $P/log
myhostname = bench.postern.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
smtputf8_enable = no
disable_dns_lookups = yes
smtpd_recipient_restrictions = permit_mynetworks, reject
default_transport = discard:bench
# No inflow throttling of smtpd by the queue manager: the bench sends fast.
in_flow_delay = 0
message_size_limit = 52428800
milter_default_action = tempfail
milter_protocol = 6
CF
cat > "$P/etc/master.cf" <<CF
127.0.0.1:$PLAIN inet n - n - - smtpd -o smtpd_milters=
127.0.0.1:$MPORT inet n - n - - smtpd -o smtpd_milters=$MILTER
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
proxymap  unix  -       -       n       -       -       proxymap
postlog   unix-dgram n  -       n       -       1       postlogd
CF
postfix -c "$P/etc" check
postfix -c "$P/etc" start
for port in "$PLAIN" "$MPORT"; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
done
