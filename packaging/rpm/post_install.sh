# postern %post ($1: 1 on install, 2 on upgrade). The unit is never enabled
# or started here: the operator writes postern.env and config.yaml first.
chown root:postern /etc/postern && chmod 0750 /etc/postern
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" = 1 ]; then
	cat <<'MSG'
postern: installed, not enabled. To start it:
  postern gen-secrets      # paste its POSTERN_DB_ENCRYPTION_KEY line into /etc/postern/postern.env
  postern hash-password    # dashboard login, POSTERN_ADMIN_PASSWORD_HASH in the same file
  $EDITOR /etc/postern/config.yaml   # IMAP accounts (or add them in the dashboard)
  systemctl enable --now postern      # ExecStartPre runs `postern check-config`;
                                      # `journalctl -u postern` says what it refused
MSG
fi
exit 0
