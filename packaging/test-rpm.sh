#!/usr/bin/env bash
# packaging/test-rpm.sh [PACKAGE.rpm] — inspection test for the .rpm (CI runs
# it after test-deb; no root needed, nothing is installed):
#
#   the package builds with cargo-generate-rpm from the same metadata as
#   `make rpm`; `rpm -qlp` lists every file the .deb ships; each file has its
#   mode, owner and group (the binary 0755, the config 0640 root:postern);
#   config files are %config(noreplace); the scriptlets create the postern
#   user before unpacking, never enable or start the unit, and pass `sh -n`;
#   Recommends names rspamd and clamd.
#
# A Debian CI machine cannot install an .rpm properly (no rpm database of its
# dependencies), so installing is left to an RPM distribution; what can go
# wrong in packaging (a path, a mode, an owner, a scriptlet) is checked here.
#
# Without an argument it packages the *debug* binary that `make test` built,
# as test-deb does (a release build would add 12-24 minutes on CI's two
# cores). `make rpm` builds the release package; test that one with
# `bash packaging/test-rpm.sh target/generate-rpm/postern-*.rpm`.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=$(mktemp -d /tmp/postern-test-rpm.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
FAILS=0
CHECKS=0
pass() { CHECKS=$((CHECKS + 1)); printf 'PASS  %s\n' "$*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); printf 'FAIL  %s\n' "$*"; }
check() {
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}
die() {
	printf 'FAIL  %s\n' "$*"
	exit 1
}

if ! command -v rpm >/dev/null; then
	[ "$(id -u)" = 0 ] || die "rpm is missing; install it (apt-get install rpm) or run as root"
	echo "test-rpm: installing rpm"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends rpm >/dev/null ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends rpm >/dev/null; }
fi

# ---------------------------------------------------------------- the package
if [ $# -ge 1 ]; then
	RPM=$1
else
	command -v cargo-generate-rpm >/dev/null || die "cargo-generate-rpm is missing (make test-rpm installs it)"
	target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
	if [ ! -x "$target_dir/debug/postern" ]; then
		echo "test-rpm: no debug binary yet; building it"
		cargo build --locked -p postern --bin postern
	fi
	echo "test-rpm: packaging $target_dir/debug/postern (built $(date -r "$target_dir/debug/postern" '+%F %T'))"
	# The metadata takes the binary from target/release/; point
	# --target-dir at a scratch dir whose release/postern is the debug
	# binary, stripped (its debug info would otherwise fill the payload).
	mkdir -p "$WORK/target/release"
	strip -o "$WORK/target/release/postern" "$target_dir/debug/postern"
	cargo generate-rpm -p app --target-dir "$WORK/target" -o "$WORK/"
	RPM=$(find "$WORK" -maxdepth 1 -name '*.rpm' | head -n1)
	[ -n "$RPM" ] || die "cargo generate-rpm produced no package"
fi
echo "test-rpm: testing $RPM"
rpm -qip "$RPM" 2>/dev/null | sed -n 's/^\(Name\|Version\|Architecture\) *:/  &/p'

# ---------------------------------------------------------------- files
rpm -qlp "$RPM" >"$WORK/files" 2>/dev/null || die "rpm -qlp cannot read the package"
for f in /usr/bin/postern /etc/postern/config.yaml /etc/postern/postern.env \
	/usr/lib/systemd/system/postern.service /usr/lib/sysusers.d/postern.conf \
	/usr/share/postern/rules/policy.toml /usr/share/postern/rules/protected_domains.txt \
	/usr/share/postern/rules/logwatch.toml /usr/share/doc/postern/README.md; do
	check "rpm -qlp lists $f" grep -qx "$f" "$WORK/files"
done
has_yara() { grep -q '^/usr/share/postern/rules/yara/.*\.yar$' "$WORK/files"; }
check "rpm -qlp lists the YARA rules" has_yara

# Mode, owner and group of each file, as rpm will create them.
rpm -qp --queryformat '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$RPM" >"$WORK/modes" 2>/dev/null
mode_is() { # PATH WANT ("-rwxr-xr-x root:root")
	local got
	got=$(awk -v p="$1" '$3 == p { print $1 " " $2 }' "$WORK/modes")
	if [ "$got" = "$2" ]; then pass "$1 is $2"; else fail "$1 is ${got:-missing}, want $2"; fi
}
mode_is /usr/bin/postern "-rwxr-xr-x root:root"
mode_is /etc/postern/config.yaml "-rw-r----- root:postern"
mode_is /etc/postern/postern.env "-rw-r----- root:postern"
mode_is /usr/lib/systemd/system/postern.service "-rw-r--r-- root:root"
mode_is /usr/lib/sysusers.d/postern.conf "-rw-r--r-- root:root"
mode_is /usr/share/postern/rules/policy.toml "-rw-r--r-- root:root"
no_writable() { ! awk '{ print $1 }' "$WORK/modes" | grep -q '^.\{7\}.w'; }
check "no file is world-writable" no_writable

# %config(noreplace): rpm keeps an edited postern.env on upgrade.
rpm -qp --queryformat '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$RPM" >"$WORK/flags" 2>/dev/null
is_noreplace() { awk -v p="$1" '$2 == p { print $1 }' "$WORK/flags" | grep -q 'c.*n\|n.*c'; }
check "/etc/postern/config.yaml is %config(noreplace)" is_noreplace /etc/postern/config.yaml
check "/etc/postern/postern.env is %config(noreplace)" is_noreplace /etc/postern/postern.env
only_config() { rpm -qcp "$RPM" 2>/dev/null | sort | tr '\n' ' ' | grep -qx '/etc/postern/config.yaml /etc/postern/postern.env '; }
check "rpm -qcp lists exactly the two files under /etc/postern" only_config

# ---------------------------------------------------------------- scriptlets
rpm -qp --scripts "$RPM" >"$WORK/scripts" 2>/dev/null
has_script() { grep -q "^$1 scriptlet" "$WORK/scripts"; }
for s in preinstall postinstall preuninstall postuninstall; do
	check "$s scriptlet is present" has_script "$s"
done
# Each scriptlet, cut out of `rpm --scripts`, must at least parse.
awk '/^[a-z]+ scriptlet/ { n++; next } { print > ("'"$WORK"'/script." n) }' "$WORK/scripts"
parses() { for f in "$WORK"/script.*; do sh -n "$f" || return 1; done; }
check "every scriptlet passes sh -n" parses
pre_makes_user() { awk '/^preinstall scriptlet/,/^postinstall scriptlet/' "$WORK/scripts" | grep -q 'useradd --system'; }
check "%pre creates the postern user before /etc/postern is unpacked" pre_makes_user
# The operator's instructions (a heredoc the scriptlet prints) may name
# `systemctl enable`; only the commands the scriptlets run count.
never_enables() { ! sed "/<<'MSG'/,/^MSG\$/d" "$WORK/scripts" | grep -Eq 'systemctl (--[a-z-]+ )*(enable|start|restart)( |$)'; }
check "no scriptlet enables or starts the unit" never_enables
check "%post tells the operator how to enable the service" grep -q 'installed, not enabled' "$WORK/scripts"

# ---------------------------------------------------------------- dependencies
rpm -qp --recommends "$RPM" >"$WORK/recommends" 2>/dev/null
check "Recommends rspamd" grep -q '^rspamd' "$WORK/recommends"
check "Recommends clamd" grep -q '^clamd' "$WORK/recommends"

echo "test-rpm: $CHECKS checks, $FAILS failed"
[ "$FAILS" = 0 ]
