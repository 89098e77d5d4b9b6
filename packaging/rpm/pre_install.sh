# postern %pre: the postern user must exist before rpm unpacks
# /etc/postern/* as root:postern. The sysusers.d line is the one in
# /usr/lib/sysusers.d/postern.conf, which is not unpacked yet.
if ! getent passwd postern >/dev/null; then
	if command -v systemd-sysusers >/dev/null 2>&1; then
		echo 'u postern - "Postern mailbox security gateway" /var/lib/postern' |
			systemd-sysusers --replace=/usr/lib/sysusers.d/postern.conf - >/dev/null 2>&1 || :
	fi
	getent passwd postern >/dev/null ||
		useradd --system --user-group --home-dir /var/lib/postern --no-create-home \
			--shell /usr/sbin/nologin --comment "Postern mailbox security gateway" postern
fi
exit 0
