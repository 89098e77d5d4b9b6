# peers-imap-others.sh -- sourced by peers-setup.sh for the `cyrus`,
# `courier` and `mailutils` components: Cyrus IMAP 3.6, Courier-IMAP 5.0 and
# GNU Mailutils imap4d 3.15 from Debian's packages, on loopback beside Dovecot.
# imap4d is the odd one out on purpose: no MOVE, no UIDPLUS, no keywords in
# PERMANENTFLAGS, and an IDLE that does not report new mail.
#
# Their server packages (cyrus-imapd, courier-imap, mailutils-imap4d)
# conflict with dovecot-imapd (all provide imap-server), and cyrus-common and
# courier-imap pull in an MTA. So the server packages are only downloaded
# (`apt-get download`) and unpacked with `dpkg-deb -x` into a private root,
# $PEERS_OPT (default BASE/opt), and run from there with configs under BASE.
# Only plain libraries they link against are apt-installed, plus Courier's
# authentication daemon (courier-authlib*), which does not conflict but whose
# socket (/run/courier/authdaemon/socket), config (/etc/courier/authdaemonrc)
# and user database (/etc/courier/userdb) paths are compiled in.
#
# Knobs: CYRUS_IMAP_PORT=11143 CYRUS_USERS="alice:alicepass bob:bobpass"
#        COURIER_IMAP_PORT=13143 COURIER_USERS="alice:alicepass bob:bobpass"
#        MAILUTILS_IMAP_PORT=14143 MAILUTILS_USERS="alice:alicepass bob:bobpass"
#          (imap4d logins are USER@postern.test: its virtdomain module keys on the domain)
#        PEERS_DEB_CACHE=/var/cache/postern-peers (downloaded .debs, kept between runs)
# Helpers written for tests: BASE/bin/cyrus-adduser USER PASS,
# BASE/bin/courier-adduser USER PASS and BASE/bin/mailutils-adduser USER@postern.test PASS (idempotent; the user can log in when they return).
# One Courier stack per machine: its auth daemon's socket is a fixed path.

CYRUS_IMAP_PORT=${CYRUS_IMAP_PORT:-11143}
COURIER_IMAP_PORT=${COURIER_IMAP_PORT:-13143}
CYRUS_USERS=${CYRUS_USERS:-"alice:alicepass bob:bobpass"}
COURIER_USERS=${COURIER_USERS:-"alice:alicepass bob:bobpass"}
MAILUTILS_IMAP_PORT=${MAILUTILS_IMAP_PORT:-14143}
MAILUTILS_USERS=${MAILUTILS_USERS:-"alice:alicepass bob:bobpass"}
MAILUTILS_DOMAIN=postern.test
PEERS_DEB_CACHE=${PEERS_DEB_CACHE:-/var/cache/postern-peers}
PEERS_OPT=$BASE/opt
# Courier's auth daemon paths are compiled into courier-authlib.
COURIER_AUTHRC=/etc/courier/authdaemonrc
COURIER_USERDB=/etc/courier/userdb
COURIER_AUTHSOCK=/run/courier/authdaemon/socket
STACK_MARK="# written by postern's scripts/peers-imap-others.sh"

others_debs() {
  local d=()
  has cyrus && d+=(cyrus-common cyrus-imapd sasl2-bin)
  has courier && d+=(courier-base courier-imap)
  has mailutils && d+=(mailutils-imap4d libmailutils9 mailutils-common)
  echo "${d[@]}"
}

# Downloads the server .debs (cached), installs the libraries they link
# against, and unpacks them into $PEERS_OPT. About 10 s on a fresh machine.
install_others() {
  local debs pkgs=() p f libs=() missing=() t
  debs=$(others_debs)
  [ -n "$debs" ] || return 0
  t=$(date +%s.%N)
  mkdir -p "$PEERS_DEB_CACHE"
  # apt's sandbox user must be able to write the download directory.
  chown _apt "$PEERS_DEB_CACHE" 2>/dev/null || true
  for p in $debs; do
    ls "$PEERS_DEB_CACHE/${p}_"*.deb >/dev/null 2>&1 || pkgs+=("$p")
  done
  if [ ${#pkgs[@]} -gt 0 ]; then
    [ "${PEERS_SKIP_INSTALL:-0}" != 1 ] || { echo "peers-setup: PEERS_SKIP_INSTALL=1 but $PEERS_DEB_CACHE lacks: ${pkgs[*]}" >&2; exit 1; }
    log "downloading ${pkgs[*]} into $PEERS_DEB_CACHE"
    if ! (cd "$PEERS_DEB_CACHE" && apt-get download -q "${pkgs[@]}") >> "$BASE/apt-install.log" 2>&1; then
      (cd "$PEERS_DEB_CACHE" && { apt-get update -qq && apt-get download -q "${pkgs[@]}"; }) >> "$BASE/apt-install.log" 2>&1 ||
        { tail -20 "$BASE/apt-install.log" >&2; echo "peers-setup: apt-get download failed (log: $BASE/apt-install.log)" >&2; exit 1; }
    fi
  fi
  # Only the first alternative of each lib* dependency: plain shared libraries,
  # which never conflict with Dovecot.
  for p in $debs; do
    f=$(ls "$PEERS_DEB_CACHE/${p}_"*.deb | tail -1)
    libs+=($(dpkg-deb -f "$f" Depends | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/:any//; s/[[:space:]]//g' | grep '^lib' || true))
  done
  has courier && libs+=(courier-authlib courier-authdaemon courier-authlib-userdb)
  for p in $(printf '%s\n' "${libs[@]}" | sort -u); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    [ "${PEERS_SKIP_INSTALL:-0}" != 1 ] || { echo "peers-setup: PEERS_SKIP_INSTALL=1 but missing: ${missing[*]}" >&2; exit 1; }
    log "installing: ${missing[*]}"
    local tmp_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; tmp_policy=1
    fi
    # Stale package lists give 404s: update once and retry.
    if ! { apt_install "${missing[@]}" || { apt-get update -qq && apt_install "${missing[@]}"; }; } >> "$BASE/apt-install.log" 2>&1; then
      [ $tmp_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
      tail -20 "$BASE/apt-install.log" >&2; echo "peers-setup: apt-get install failed (log: $BASE/apt-install.log)" >&2; exit 1
    fi
    [ $tmp_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  fi
  # Extract each .deb once, adding to what is there: another component's
  # server may be running from $PEERS_OPT (`up BASE mailutils` after
  # `up BASE cyrus courier`). A new version of a package is extracted over
  # the old one.
  mkdir -p "$PEERS_OPT"; touch "$PEERS_OPT/.debs"
  local want=()
  for p in $debs; do
    f=$(cd "$PEERS_DEB_CACHE" && ls "${p}_"*.deb 2>/dev/null | tail -1)
    [ -n "$f" ] || { echo "peers-setup: $p is not in $PEERS_DEB_CACHE after the download" >&2; exit 1; }
    want+=("$f")
  done
  for f in "${want[@]}"; do
    grep -qxF "$f" "$PEERS_OPT/.debs" && continue
    dpkg-deb -x "$PEERS_DEB_CACHE/$f" "$PEERS_OPT"
    echo "$f" >> "$PEERS_OPT/.debs"
  done
  chmod 755 "$PEERS_OPT"
  log "cyrus/courier/mailutils packages ready in $(elapsed "$t") s"
}

apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 "$@"; }
banner_ok() { local o; o=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; head -c 4 <&3") || return 1; [ "$o" = "* OK" ]; }

# ================================================================ CYRUS
start_cyrus() {
  local t C=$BASE/cyrus B=$PEERS_OPT/usr/lib/cyrus/bin u
  t=$(date +%s.%N)
  # Debian's packages run Cyrus as user cyrus, group mail; master insists on it.
  id cyrus >/dev/null 2>&1 ||
    useradd --system --gid mail --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin cyrus
  mkdir -p "$C"/{conf/{db,socket,proc,log,msg,user,quota,sieve,lock},spool,run,log}
  chmod 755 "$C"
  chown -R cyrus:mail "$C/conf" "$C/spool" "$C/run" "$C/log"
  check_access cyrus "$C/spool"
  # Debian's default namespace: INBOX. with "." as separator (altnamespace
  # and unixhierarchysep off), as in /etc/imapd.conf of cyrus-common.
  cat > "$C/imapd.conf" <<EOF
# Test-only Cyrus IMAP instance; everything lives under $C
configdirectory: $C/conf
partition-default: $C/spool
servername: localhost
altnamespace: no
unixhierarchysep: no
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: $C/sasldb2
sasl_mech_list: PLAIN LOGIN
# users get their INBOX on first login
autocreate_quota: 0
# Name-based spool paths. With the default UUID layout, INBOXes that two
# users create in the same second on one preforked imapd can get the same
# uniqueid and so share one spool directory (seen on 3.6 under the tests)
mailbox_legacy_dirs: yes
# IDLE learns of changes from idled; this is only its fallback poll
imapidlepoll: 1
idlesocket: $C/conf/socket/idle
syslog_prefix: cyrus-postern
EOF
  cat > "$C/cyrus.conf" <<EOF
START {
  recover cmd="$B/ctl_cyrusdb -C $C/imapd.conf -r"
}
SERVICES {
  imap cmd="$B/imapd -C $C/imapd.conf" listen="127.0.0.1:$CYRUS_IMAP_PORT" prefork=1
}
EVENTS {
  checkpoint cmd="$B/ctl_cyrusdb -C $C/imapd.conf -c" period=30
}
DAEMON {
  idled cmd="$B/idled -C $C/imapd.conf"
}
EOF
  mkdir -p "$BASE/bin"
  cat > "$BASE/bin/cyrus-adduser" <<EOF
#!/bin/sh
# cyrus-adduser USER PASS -- a Cyrus login (sasldb); the INBOX is created at first login
set -e
exec 9>"$C/run/sasldb.lock"; flock 9
printf '%s' "\$2" | LD_LIBRARY_PATH="$PEERS_OPT/usr/lib/x86_64-linux-gnu" "$PEERS_OPT/usr/sbin/saslpasswd2" -f "$C/sasldb2" -u localhost -p -c "\$1"
chown cyrus:mail "$C/sasldb2"; chmod 640 "$C/sasldb2"
EOF
  chmod 755 "$BASE/bin/cyrus-adduser"
  for u in $CYRUS_USERS; do "$BASE/bin/cyrus-adduser" "${u%%:*}" "${u#*:}"; done

  if pid_alive "$C/run/master.pid" "$C/cyrus.conf"; then
    log "cyrus already running (pid $(cat "$C/run/master.pid"))"
  else
    check_port_free "$CYRUS_IMAP_PORT" cyrus
    rm -f "$C/run/master.pid"
    setsid env LD_LIBRARY_PATH="$PEERS_OPT/usr/lib/x86_64-linux-gnu" \
      "$B/master" -C "$C/imapd.conf" -M "$C/cyrus.conf" -p "$C/run/master.pid" -D \
      < /dev/null >> "$C/log/master.log" 2>&1 &
    wait_for "cyrus imap banner" banner_ok "$CYRUS_IMAP_PORT"
    [ -s "$C/run/master.pid" ] || echo $! > "$C/run/master.pid"
    log "cyrus started in $(elapsed "$t") s (pid $(cat "$C/run/master.pid"))"
  fi
}

# ================================================================ COURIER
start_courier() {
  local t K=$BASE/courier u
  t=$(date +%s.%N)
  id "$MAIL_USER" >/dev/null 2>&1 ||
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$MAIL_USER"
  mkdir -p "$K"/{run,log,mail}
  chmod 755 "$K" "$K/mail"
  chown "$MAIL_USER:$MAIL_USER" "$K/mail"
  check_access "$MAIL_USER" "$K/mail"
  # authdaemond reads only the compiled-in /etc/courier/authdaemonrc; keep a
  # copy of a file we did not write.
  if ! grep -qF "$STACK_MARK" "$COURIER_AUTHRC" 2>/dev/null; then
    [ -e "$COURIER_AUTHRC" ] && [ ! -e "$COURIER_AUTHRC.postern-orig" ] && cp -p "$COURIER_AUTHRC" "$COURIER_AUTHRC.postern-orig"
    mkdir -p "$(dirname "$COURIER_AUTHRC")"
    printf '%s\nauthmodulelist="authuserdb"\ndaemons=5\nauthdaemonvar=/run/courier/authdaemon\nDEBUG_LOGIN=0\nDEFAULTOPTIONS=""\nLOGGEROPTS=""\n' \
      "$STACK_MARK" > "$COURIER_AUTHRC"
    chmod 640 "$COURIER_AUTHRC"
  fi
  touch "$COURIER_USERDB"; chmod 600 "$COURIER_USERDB"
  local uid gid; uid=$(id -u "$MAIL_USER"); gid=$(id -g "$MAIL_USER")
  mkdir -p "$BASE/bin"
  cat > "$BASE/bin/courier-adduser" <<EOF
#!/bin/sh
# courier-adduser USER PASS -- a Courier login (userdb) with an empty Maildir
set -e
home="$K/mail/\$1"
for d in cur new tmp; do mkdir -p "\$home/Maildir/\$d"; done
chown -R $uid:$gid "\$home"
hash=\$(openssl passwd -6 "\$2")
exec 9>"$K/run/userdb.lock"; flock 9
userdb "\$1" set uid=$uid gid=$gid home="\$home" mail="\$home/Maildir" systempw="\$hash"
makeuserdb
EOF
  chmod 755 "$BASE/bin/courier-adduser"
  for u in $COURIER_USERS; do "$BASE/bin/courier-adduser" "${u%%:*}" "${u#*:}"; done

  if pid_alive "$K/run/authdaemond.pid" authdaemond; then
    log "courier authdaemond already running (pid $(cat "$K/run/authdaemond.pid"))"
  else
    # Its socket path is compiled in: another authdaemond (a system Courier)
    # would own it, and would not know our users.
    local d other=
    for d in /proc/[0-9]*; do   # (no procps on a minimal machine)
      if [ "$(cat "$d/comm" 2>/dev/null)" = authdaemond ]; then other=${d#/proc/}; fi
    done
    if [ -n "$other" ]; then
      echo "peers-setup: an authdaemond not started by this stack (pid $other) holds $COURIER_AUTHSOCK; stop it (or use a machine without a system Courier)" >&2
      exit 1
    fi
    mkdir -p /run/courier/authdaemon
    chown courier:courier /run/courier/authdaemon 2>/dev/null || true
    rm -f "$COURIER_AUTHSOCK"
    # In the foreground (it no longer daemonizes itself), detached with setsid;
    # its log under BASE lets peers-teardown.sh tell that it is ours.
    setsid /usr/lib/courier/courier-authlib/authdaemond < /dev/null >> "$K/log/authdaemond.log" 2>&1 &
    echo $! > "$K/run/authdaemond.pid"
    wait_for "courier authdaemond socket" test -S "$COURIER_AUTHSOCK"
  fi
  if pid_alive "$K/run/imapd.pid" couriertcpd; then
    log "courier already running (pid $(cat "$K/run/imapd.pid"))"
  else
    check_port_free "$COURIER_IMAP_PORT" courier
    rm -f "$K/run/imapd.pid"
    # Debian's /etc/courier/imapd, with our port, loopback, and more logins per IP
    # (every test comes from 127.0.0.1). Plain LOGIN is allowed without TLS.
    (
      set -a
      . "$PEERS_OPT/etc/courier/imapd"
      IMAP_IDLE_TIMEOUT=1
      IMAPACCESSFILE=
      set +a
      exec setsid env LD_LIBRARY_PATH="$PEERS_OPT/usr/lib/x86_64-linux-gnu:$PEERS_OPT/usr/lib" \
        "$PEERS_OPT/usr/sbin/couriertcpd" -address=127.0.0.1 -maxprocs=400 -maxperip=400 -nodnslookup -noidentlookup \
        -pid="$K/run/imapd.pid" "$COURIER_IMAP_PORT" \
        "$PEERS_OPT/usr/lib/courier/courier/imaplogin" "$PEERS_OPT/usr/bin/imapd" Maildir
    ) < /dev/null >> "$K/log/imapd.log" 2>&1 &
    wait_for "courier imap banner" banner_ok "$COURIER_IMAP_PORT"
    [ -s "$K/run/imapd.pid" ] || echo $! > "$K/run/imapd.pid"
    log "courier started in $(elapsed "$t") s (pid $(cat "$K/run/imapd.pid"))"
  fi
}

# ================================================================ MAILUTILS
# GNU imap4d runs as root and takes each user's uid at login. Users live in
# a passwd(5)-format file per domain (its `virtdomain` module), all owned by
# $MAIL_USER, with Maildir folders under BASE/mailutils/mail/USER.
start_mailutils() {
  local t M=$BASE/mailutils u uid gid
  t=$(date +%s.%N)
  id "$MAIL_USER" >/dev/null 2>&1 ||
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$MAIL_USER"
  uid=$(id -u "$MAIL_USER"); gid=$(id -g "$MAIL_USER")
  mkdir -p "$M"/{run,log,mail,domains}
  chmod 755 "$M" "$M/mail"
  chmod 700 "$M/domains"
  touch "$M/domains/$MAILUTILS_DOMAIN"; chmod 600 "$M/domains/$MAILUTILS_DOMAIN"
  cat > "$M/imap4d.conf" <<EOF
# Test-only GNU imap4d; everything lives under $M
logging { syslog false; };
auth { authentication generic; authorization virtdomain; };
virtdomain { passwd-dir $M/domains; };
mailbox { mailbox-type maildir; };
pidfile $M/run/imap4d.pid;
server 127.0.0.1:$MAILUTILS_IMAP_PORT { };
EOF
  mkdir -p "$BASE/bin"
  cat > "$BASE/bin/mailutils-adduser" <<EOF
#!/bin/sh
# mailutils-adduser USER[@$MAILUTILS_DOMAIN] PASS -- an imap4d login (USER@$MAILUTILS_DOMAIN) with an empty Maildir INBOX
set -e
user=\${1%@*}
home="$M/mail/\$user"
for d in cur new tmp; do mkdir -p "\$home/INBOX/\$d"; done
chown -R $uid:$gid "\$home"
hash=\$(openssl passwd -6 "\$2")
exec 9>"$M/run/passwd.lock"; flock 9
f="$M/domains/$MAILUTILS_DOMAIN"
awk -F: -v u="\$user" '\$1 != u' "\$f" > "\$f.new"
echo "\$user:\$hash:$uid:$gid::\$home:/usr/sbin/nologin" >> "\$f.new"
chmod 600 "\$f.new"; mv -f "\$f.new" "\$f"
EOF
  chmod 755 "$BASE/bin/mailutils-adduser"
  for u in $MAILUTILS_USERS; do "$BASE/bin/mailutils-adduser" "${u%%:*}" "${u#*:}"; done

  if pid_alive "$M/run/imap4d.pid" imap4d; then
    log "mailutils imap4d already running (pid $(cat "$M/run/imap4d.pid"))"
  else
    check_port_free "$MAILUTILS_IMAP_PORT" mailutils
    rm -f "$M/run/imap4d.pid"
    setsid env LD_LIBRARY_PATH="$PEERS_OPT/usr/lib/x86_64-linux-gnu" \
      "$PEERS_OPT/usr/sbin/imap4d" --config-file="$M/imap4d.conf" --daemon=400 --foreground \
      < /dev/null >> "$M/log/imap4d.log" 2>&1 &
    wait_for "mailutils imap banner" banner_ok "$MAILUTILS_IMAP_PORT"
    [ -s "$M/run/imap4d.pid" ] || echo $! > "$M/run/imap4d.pid"
    log "mailutils imap4d started in $(elapsed "$t") s (pid $(cat "$M/run/imap4d.pid"))"
  fi
}
