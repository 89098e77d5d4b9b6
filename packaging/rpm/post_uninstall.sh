# postern %postun ($1: 0 on erase, 1 on upgrade). An erase keeps
# /var/lib/postern and a modified /etc/postern/*.rpmsave; the postern user stays.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
	if [ "$1" -ge 1 ]; then
		systemctl try-restart postern.service >/dev/null 2>&1 || :
	fi
fi
exit 0
