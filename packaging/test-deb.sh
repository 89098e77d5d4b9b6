#!/usr/bin/env bash
# packaging/test-deb.sh [PACKAGE.deb] — acceptance test for the .deb, as root
# on a throwaway Debian machine (CI runs it after `make test`):
#
#   install with dpkg -i; file modes and owners, the postern user, conffiles,
#   Recommends; the unit is installed but neither enabled nor started, keeps
#   its hardening and scores <= 2.0 in `systemd-analyze security`;
#   `postern check-config` refuses the shipped placeholder key and accepts the
#   shipped config once a generated key is in place; the binary, started the
#   way the unit starts it (its User/Group, Environment= and EnvironmentFile=,
#   UMask, empty capability set, no-new-privs, StateDirectory/CacheDirectory),
#   serves /healthz and stops cleanly on SIGTERM; a reinstall keeps the
#   operator's postern.env; `dpkg -r` leaves /etc/postern and /var/lib/postern
#   behind and `dpkg --purge` removes them.
#
# Without an argument it packages the *debug* binary that `make test` has
# just built (building it if missing) with `cargo deb --no-build`: a release
# build would add 12-24 minutes on CI's two cores, and the packaging under
# test (paths, modes, maintainer scripts, unit) is the same. `make deb`
# builds the release package; test that one with
# `bash packaging/test-deb.sh target/debian/postern_*.deb`.
#
# It refuses to run where postern is already installed or /etc/postern exists,
# since it purges the package at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

UNIT=/lib/systemd/system/postern.service
WORK=$(mktemp -d /tmp/postern-test-deb.XXXXXX)
FAILS=0
CHECKS=0
DAEMON_PID=
INSTALLED_BY_US=
USER_CREATED_BY_US=

pass() { CHECKS=$((CHECKS + 1)); printf 'PASS  %s\n' "$*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); printf 'FAIL  %s\n' "$*"; }
# check DESCRIPTION COMMAND...: PASS when the command succeeds.
check() {
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}
die() {
	printf 'FAIL  %s\n' "$*"
	exit 1
}

cleanup() {
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -KILL "$DAEMON_PID" 2>/dev/null || true
	fi
	# Leave the machine as we found it, even after a failure.
	if [ -n "$INSTALLED_BY_US" ] && dpkg-query -W -f='${db:Status-Status}' postern 2>/dev/null | grep -qv '^not-installed$'; then
		dpkg --purge postern >/dev/null 2>&1 || true
	fi
	if [ -n "$USER_CREATED_BY_US" ] && getent passwd postern >/dev/null; then
		userdel postern >/dev/null 2>&1 || true
		if getent group postern >/dev/null; then groupdel postern >/dev/null 2>&1 || true; fi
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- preflight
[ "$(id -u)" = 0 ] || die "run as root: this installs and purges the postern package"
if dpkg-query -W -f='${db:Status-Status}' postern 2>/dev/null | grep -qv '^not-installed$'; then
	die "postern is already installed here; this test purges it. Purge it first, or use a throwaway machine."
fi
for d in /etc/postern /var/lib/postern /var/cache/postern; do
	[ ! -e "$d" ] || die "$d exists; this test would delete it on purge. Move it away first."
done
getent passwd postern >/dev/null || USER_CREATED_BY_US=1

missing=()
command -v curl >/dev/null || missing+=(curl)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v setpriv >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
	echo "test-deb: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# ---------------------------------------------------------------- the package
if [ $# -ge 1 ]; then
	DEB=$1
else
	command -v cargo-deb >/dev/null || die "cargo-deb is missing (make test-deb installs it)"
	target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
	if [ ! -x "$target_dir/debug/postern" ]; then
		echo "test-deb: no debug binary yet; building it"
		cargo build --locked -p postern --bin postern
	fi
	echo "test-deb: packaging $target_dir/debug/postern (built $(date -r "$target_dir/debug/postern" '+%F %T'))"
	# cargo-deb takes the binary from <target dir>/release/; point it at a
	# scratch target dir whose release/postern is the debug binary (its
	# --profile dev is deprecated, and the real target/release stays
	# untouched). --strip and --fast: the debug binary carries hundreds of MB
	# of debug info that would otherwise be xz-compressed into the package.
	mkdir -p "$WORK/target/release"
	ln -s "$target_dir/debug/postern" "$WORK/target/release/postern"
	CARGO_TARGET_DIR="$WORK/target" cargo deb -p postern --no-build --strip --fast -o "$WORK/"
	DEB=$(find "$WORK" -maxdepth 1 -name '*.deb' | head -n1)
	[ -n "$DEB" ] || die "cargo deb produced no package"
fi
echo "test-deb: testing $DEB"
dpkg-deb --info "$DEB" | sed -n 's/^ \(Package\|Version\|Depends\|Recommends\):/  &/p'

# ---------------------------------------------------------------- install
INSTALLED_BY_US=1
if dpkg -i "$DEB" >"$WORK/install.log" 2>&1; then
	pass "dpkg -i installs the package"
elif apt-get install -f -y -qq >>"$WORK/install.log" 2>&1 &&
	[ "$(dpkg-query -W -f='${db:Status-Status}' postern)" = installed ]; then
	pass "dpkg -i + apt-get install -f installs the package and its dependencies"
else
	cat "$WORK/install.log"
	die "the package does not install"
fi
check "postinst tells the operator how to enable the service" grep -q 'installed, not enabled' "$WORK/install.log"

stat_is() { # PATH WANT ("MODE USER:GROUP")
	local got
	got=$(stat -L -c '%a %U:%G' "$1" 2>/dev/null || echo missing)
	if [ "$got" = "$2" ]; then pass "$1 is $2"; else fail "$1 is $got, want $2"; fi
}
stat_is /usr/bin/postern "755 root:root"
stat_is /etc/postern "750 root:postern"
stat_is /etc/postern/config.yaml "640 root:postern"
stat_is /etc/postern/postern.env "640 root:postern"
stat_is "$UNIT" "644 root:root"
stat_is /usr/lib/sysusers.d/postern.conf "644 root:root"
stat_is /usr/share/postern/rules/policy.toml "644 root:root"
stat_is /usr/share/doc/postern/README.md "644 root:root"
has_yara_rules() { compgen -G '/usr/share/postern/rules/yara/*.yar' >/dev/null; }
check "YARA rules are in /usr/share/postern/rules/yara" has_yara_rules

conffiles=$(dpkg-query -W -f='${Conffiles}\n' postern)
for f in /etc/postern/config.yaml /etc/postern/postern.env; do
	check "$f is a conffile" grep -q "^ $f " <<<"$conffiles"
done
check "Recommends: rspamd, clamav-daemon" test "$(dpkg-query -W -f='${Recommends}' postern)" = "rspamd, clamav-daemon"
check "Depends computed (libc6)" grep -q libc6 <<<"$(dpkg-query -W -f='${Depends}' postern)"

IFS=: read -r _ _ PUID PGID _ PHOME PSHELL <<<"$(getent passwd postern || echo 'x:x:::::')"
check "system user postern exists (uid $PUID, home $PHOME, shell $PSHELL)" \
	test -n "$PUID" -a "${PUID:-1000}" -lt 1000 -a "$PSHELL" = /usr/sbin/nologin
check "group postern exists and is the user's primary group" test "$(getent group postern | cut -d: -f3)" = "$PGID"

# Enabling leaves a symlink under /etc/systemd/system; the package must not.
check "the unit is not enabled" test -z "$(find /etc/systemd/system -name postern.service 2>/dev/null)"
# (/proc rather than pgrep: procps is not in a minimal Debian.)
nothing_runs_as_postern() { [ -z "$(find /proc -maxdepth 1 -name '[0-9]*' -user postern 2>/dev/null)" ]; }
check "nothing runs as postern" nothing_runs_as_postern

# ---------------------------------------------------------------- the unit
for d in Type=notify NotifyAccess=main NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes \
	PrivateTmp=yes CapabilityBoundingSet= SystemCallFilter=@system-service StateDirectory=postern \
	CacheDirectory=postern Restart=on-failure; do
	check "unit keeps $d" grep -qx "$d" "$UNIT"
done
check "unit leaves MemoryDenyWriteExecute off (YARA-X JIT)" test -z "$(grep -x 'MemoryDenyWriteExecute=yes' "$UNIT")"
if systemd-analyze verify "$UNIT" >"$WORK/verify.log" 2>&1 && [ ! -s "$WORK/verify.log" ]; then
	pass "systemd-analyze verify finds nothing"
else
	fail "systemd-analyze verify: $(tr '\n' ' ' <"$WORK/verify.log")"
fi
systemd-analyze security --offline=true --no-pager "$UNIT" >"$WORK/security.log" 2>&1 || true
score=$(sed -n 's/.*Overall exposure level for postern.service: \([0-9.]*\).*/\1/p' "$WORK/security.log")
if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then
	pass "systemd-analyze security: exposure $score <= 2.0"
else
	tail -n 5 "$WORK/security.log"
	fail "systemd-analyze security: exposure '${score:-unparsed}', want <= 2.0"
fi

# ---------------------------------------------------------------- run it as the unit does
# Every value of KEY= in the unit, in order.
unit_values() { sed -n "s/^$1=//p" "$UNIT"; }
# One unit value, or a default.
unit_value() { local v; v=$(unit_values "$1" | tail -n1); echo "${v:-$2}"; }
unquote() {
	local v=$1
	case $v in
	\"*\") v=${v#\"} v=${v%\"} ;;
	\'*\') v=${v#\'} v=${v%\'} ;;
	esac
	printf '%s' "$v"
}

SVC_USER=$(unit_value User root)
SVC_GROUP=$(unit_value Group "$SVC_USER")
SVC_UMASK=$(unit_value UMask 0022)

# The service environment: what systemd sets for User=, then Environment=
# lines, then EnvironmentFile= files (which override Environment=). Values in
# the unit are split on whitespace and unquoted; env files are KEY=VALUE lines
# with optional quotes. That covers what Postern's unit and postern.env use.
service_env() {
	local line w key val f
	SVC_ENV=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		HOME="$PHOME" USER="$SVC_USER" LOGNAME="$SVC_USER" SHELL="$PSHELL")
	while IFS= read -r line; do
		read -ra words <<<"$line"
		for w in "${words[@]}"; do SVC_ENV+=("$(unquote "$w")"); done
	done < <(unit_values Environment)
	while IFS= read -r f; do
		case $f in -*) f=${f#-}; [ -r "$f" ] || continue ;; esac
		while IFS= read -r line || [ -n "$line" ]; do
			line=${line#"${line%%[![:space:]]*}"}
			case $line in '' | '#'* | ';'*) continue ;; esac
			key=${line%%=*}
			val=${line#*=}
			[[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
			SVC_ENV+=("$key=$(unquote "$val")")
		done <"$f"
	done < <(unit_values EnvironmentFile)
}
# An Exec*= line as an argv, without systemd's prefixes (-, @, :, +, !).
exec_argv() {
	local line
	line=$(unit_values "$1" | head -n1)
	line=${line##[-@:+!]}
	read -ra EXEC <<<"$line"
}
# Run EXEC the way systemd runs the service: its user, group and
# supplementary groups, umask, no capabilities, no-new-privs, its
# environment only, working directory /. It execs: call it in a subshell,
# `(as_service)` or `as_service &` (then $! is the service's own pid).
as_service() {
	cd /
	umask "$SVC_UMASK"
	exec setpriv --reuid="$SVC_USER" --regid="$SVC_GROUP" --init-groups \
		--bounding-set=-all --inh-caps=-all --no-new-privs \
		env -i "${SVC_ENV[@]}" "${EXEC[@]}"
}

exec_argv ExecStartPre
service_env
if (as_service) >"$WORK/check1.log" 2>&1; then
	fail "check-config accepted the shipped placeholder key"
else
	check "check-config refuses the shipped placeholder key" grep -q POSTERN_DB_ENCRYPTION_KEY "$WORK/check1.log"
fi

# The operator's first step: a generated key into postern.env (written in
# place, so its mode and owner stay what the package set).
keyline=$(/usr/bin/postern gen-secrets | grep '^POSTERN_DB_ENCRYPTION_KEY=')
env_new=$(sed "s|^POSTERN_DB_ENCRYPTION_KEY=.*|$keyline|" /etc/postern/postern.env)
printf '%s\n' "$env_new" >/etc/postern/postern.env
service_env
if (as_service) >"$WORK/check2.log" 2>&1; then
	pass "ExecStartPre ($(unit_value ExecStartPre)) accepts the shipped config.yaml with a generated key: $(head -n1 "$WORK/check2.log")"
else
	cat "$WORK/check2.log"
	fail "check-config refuses the shipped config.yaml with a generated key"
fi

# StateDirectory=/CacheDirectory= as systemd creates them before starting.
for kind in State:/var/lib Cache:/var/cache; do
	name=$(unit_value "${kind%%:*}Directory" "")
	[ -n "$name" ] || continue
	mode=$(unit_value "${kind%%:*}DirectoryMode" 0755)
	install -d -o "$SVC_USER" -g "$SVC_GROUP" -m "$mode" "${kind#*:}/$name"
done

# The dashboard address from the service environment; another one if taken.
listen=127.0.0.1:8025
for kv in "${SVC_ENV[@]}"; do case $kv in POSTERN_LISTEN=*) listen=${kv#*=} ;; esac; done
port_busy() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
if port_busy "$listen"; then
	for p in $(seq 18025 18125); do port_busy "127.0.0.1:$p" || break; done
	echo "test-deb: $listen is taken; POSTERN_LISTEN=127.0.0.1:$p in postern.env"
	env_new=$(sed "s|^POSTERN_LISTEN=.*|POSTERN_LISTEN=127.0.0.1:$p|" /etc/postern/postern.env)
	printf '%s\n' "$env_new" >/etc/postern/postern.env
	listen=127.0.0.1:$p
	service_env
fi

exec_argv ExecStart
as_service >"$WORK/run.log" 2>&1 &
DAEMON_PID=$!
up=
for _ in $(seq 1 240); do
	kill -0 "$DAEMON_PID" 2>/dev/null || break
	if body=$(curl -fsS --max-time 2 "http://$listen/healthz" 2>/dev/null); then
		up=1
		break
	fi
	sleep 0.5
done
if [ -n "$up" ] && [ "$body" = ok ]; then
	pass "'$(unit_value ExecStart)' as $SVC_USER serves http://$listen/healthz"
else
	tail -n 30 "$WORK/run.log"
	fail "'$(unit_value ExecStart)' as $SVC_USER does not serve http://$listen/healthz"
fi
if kill -0 "$DAEMON_PID" 2>/dev/null; then
	status=$(cat "/proc/$DAEMON_PID/status")
	check "the daemon runs as $SVC_USER" grep -Eq "^Uid:\s+$PUID\s+$PUID\s+$PUID\s+$PUID$" <<<"$status"
	unprivileged() { grep -q '^CapEff:\s*0000000000000000$' <<<"$status" && grep -q '^NoNewPrivs:\s*1$' <<<"$status"; }
	check "the daemon has no capabilities and no-new-privs" unprivileged
	stat_is /var/lib/postern "700 postern:postern"
	stat_is /var/cache/postern "700 postern:postern"
	stat_is /var/lib/postern/postern.db "600 postern:postern"
	kill -TERM "$DAEMON_PID"
	rc=0
	for _ in $(seq 1 60); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.5; done
	if kill -0 "$DAEMON_PID" 2>/dev/null; then
		fail "the daemon did not exit within 30 s of SIGTERM"
	else
		wait "$DAEMON_PID" || rc=$?
		check "the daemon exits cleanly on SIGTERM (status $rc)" test "$rc" = 0
	fi
	DAEMON_PID=
fi

# ---------------------------------------------------------------- reinstall, remove, purge
key_now=$(grep '^POSTERN_DB_ENCRYPTION_KEY=' /etc/postern/postern.env)
if dpkg -i --force-confold "$DEB" >"$WORK/reinstall.log" 2>&1; then
	pass "dpkg -i over the installed package (upgrade path) succeeds"
else
	cat "$WORK/reinstall.log"
	fail "dpkg -i over the installed package fails"
fi
check "a reinstall keeps the operator's postern.env" grep -qx "$key_now" /etc/postern/postern.env
stat_is /etc/postern/postern.env "640 root:postern"

dpkg -r postern >"$WORK/remove.log" 2>&1 || { cat "$WORK/remove.log"; fail "dpkg -r postern fails"; }
check "dpkg -r removes /usr/bin/postern" test ! -e /usr/bin/postern
check "dpkg -r removes the unit" test ! -e "$UNIT"
check "dpkg -r leaves /etc/postern/config.yaml" test -f /etc/postern/config.yaml
check "dpkg -r leaves /etc/postern/postern.env with its key" grep -qx "$key_now" /etc/postern/postern.env
check "dpkg -r leaves /var/lib/postern (the database)" test -f /var/lib/postern/postern.db

dpkg --purge postern >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log"; fail "dpkg --purge postern fails"; }
check "dpkg --purge removes /etc/postern" test ! -e /etc/postern
check "dpkg --purge removes /var/lib/postern" test ! -e /var/lib/postern
check "dpkg --purge removes /var/cache/postern" test ! -e /var/cache/postern
check "dpkg --purge leaves no systemd state (mask, wants links)" test -z "$(find /etc/systemd/system -name postern.service 2>/dev/null)"
check "dpkg knows nothing of postern any more" test "$(dpkg-query -W -f='${db:Status-Status}' postern 2>/dev/null || echo not-installed)" = not-installed
user_exists() { getent passwd postern >/dev/null; }
check "the postern user is kept after purge (by design)" user_exists

echo
if [ "$FAILS" -eq 0 ]; then
	echo "test-deb: PASS ($CHECKS checks)"
else
	echo "test-deb: FAIL ($FAILS of $CHECKS checks failed)"
	exit 1
fi
