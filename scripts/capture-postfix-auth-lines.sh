#!/usr/bin/env bash
# capture-postfix-auth-lines.sh BASE [PORT] -- one-off capture of the log lines a
# real Postfix writes for SMTP AUTH failures, successes, drops after AUTH and
# NOQUEUE rejects (issue 20's parser fixtures, app/tests/fixtures/logwatch/).
#
# Starts a private Postfix (its own config, queue and log under
# BASE/postfix-sasl, smtpd on 127.0.0.1:PORT, default 10125) whose SASL is the
# running test stack's Dovecot auth (BASE/dovecot/run/auth-client, reached
# through a small relay socket the postfix user may open, since Dovecot's is
# 0600), drives it with Python's smtplib, prints the log, and stops it. The
# stack's own Postfix and Dovecot are not touched. Needs root and
# `scripts/test-stack.sh up BASE dovecot`.
set -euo pipefail
BASE=${1:?usage: $0 BASE [PORT]}
PORT=${2:-10125}
P=$BASE/postfix-sasl
AUTH=$BASE/dovecot/run/auth-client
[ -S "$AUTH" ] || { echo "no Dovecot auth socket at $AUTH" >&2; exit 1; }
user=$(head -1 "$BASE/dovecot/users" | cut -d: -f1)
pass=$(head -1 "$BASE/dovecot/users" | cut -d: -f2 | sed 's/^{PLAIN}//')
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
myhostname = mx.postern.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# Loopback is NOT trusted here, so relaying needs AUTH and other mail is refused.
mynetworks = 192.0.2.0/24
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
smtputf8_enable = no
disable_dns_lookups = yes
default_transport = discard:captured
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $P/auth
smtpd_recipient_restrictions = permit_sasl_authenticated, reject_unauth_destination
CF
cat > "$P/etc/master.cf" <<CF
127.0.0.1:$PORT inet n - n - - smtpd
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
# Relay: $P/auth (the postfix user may connect) -> Dovecot's auth-client.
cat > "$P/relay.py" <<'PY'
import os, pwd, socket, sys, threading
listen, target = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX)
srv.bind(listen)
srv.listen(16)
os.chown(listen, pwd.getpwnam("postfix").pw_uid, -1)
os.chmod(listen, 0o600)
def pipe(a, b):
    try:
        while d := a.recv(65536):
            b.sendall(d)
    except OSError:
        pass
    for x in (a, b):
        try:
            x.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    c, _ = srv.accept()
    u = socket.socket(socket.AF_UNIX)
    u.connect(target)
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
PY
python3 "$P/relay.py" "$P/auth" "$AUTH" &
relay=$!
trap 'postfix -c "$P/etc" stop >/dev/null 2>&1 || true; kill $relay 2>/dev/null || true' EXIT
postfix -c "$P/etc" check
postfix -c "$P/etc" start
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
cat > "$P/drive.py" <<'PY'
import base64, smtplib, socket, sys
port, user, good = int(sys.argv[1]), sys.argv[2], sys.argv[3]
b64 = lambda s: base64.b64encode(s.encode()).decode()
def fail(mech, u, p):
    s = smtplib.SMTP("127.0.0.1", port)
    s.ehlo("spray.example")
    if mech == "PLAIN":
        print(s.docmd("AUTH", "PLAIN " + b64(f"\0{u}\0{p}")))
    else:
        s.docmd("AUTH", "LOGIN"); s.docmd(b64(u)); print(s.docmd(b64(p)))
    s.quit()
fail("PLAIN", user, "wrong-password")
fail("PLAIN", "nosuchuser@example.test", "guess")
fail("LOGIN", user, "wrong-password")
# AUTH started, then the client hangs up: "lost connection after AUTH".
s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
f.readline(); s.sendall(b"EHLO probe.example\r\n")
while not f.readline().startswith(b"250 "):
    pass
s.sendall(b"AUTH LOGIN\r\n"); f.readline(); s.close()
# Unauthenticated relay attempt: "NOQUEUE: reject: RCPT ... Relay access denied".
s = smtplib.SMTP("127.0.0.1", port); s.ehlo("win-abc")
s.mail("spam@bad.example"); print(s.rcpt("victim@elsewhere.example")); s.quit()
# A good login that sends: "client=..., sasl_method=PLAIN, sasl_username=...".
s = smtplib.SMTP("127.0.0.1", port); s.ehlo("laptop.example"); s.login(user, good)
s.sendmail(f"{user}@example.test", ["friend@elsewhere.example"], b"Subject: hi\r\n\r\nhello\r\n"); s.quit()
PY
python3 "$P/drive.py" "$PORT" "$user" "$pass"
sleep 2
cat "$P/log/postfix.log"
