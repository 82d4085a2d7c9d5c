#!/bin/bash
# deps.sh - install what the build, the tests and `make demo` need on
# Debian 12, as root.  Fast when everything is there: one dpkg-query and
# no apt at all.  Safe to run again.
#
# Postfix is preseeded to "No configuration" so the install never asks a
# question, and the system Dovecot and Postfix are stopped afterwards:
# the tests run private instances on ports 24000-24999 and need nothing
# from the system ones.
set -euo pipefail

PKGS=(
	build-essential pkg-config
	libetpan-dev libgmime-3.0-dev libsqlite3-dev libconfig-dev
	libpcre2-dev libglib2.0-dev libgnutls28-dev libxml2-dev libytnef0-dev
	libsystemd-dev libsasl2-modules
	dovecot-imapd dovecot-lmtpd postfix swaks libnet-ssleay-perl
	openssl sqlite3 ca-certificates perl valgrind
	iproute2 procps systemd man-db python3 e2fsprogs util-linux coreutils
)

# One dpkg-query for all; packages it does not know are simply absent
# from its output.
installed=" $(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' \
	"${PKGS[@]}" 2>/dev/null | awk '$1 == "ii" { printf "%s ", $2 }' || true) "
missing=()
for p in "${PKGS[@]}"; do
	case "$installed" in
	*" $p "*) ;;
	*) missing+=("$p") ;;
	esac
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: run as root to install them" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" |
	debconf-set-selections
echo "postfix postfix/mailname string localhost" | debconf-set-selections

apt_opts=(-o DPkg::Lock::Timeout=900 -o Dpkg::Options::=--force-confdef
	-o Dpkg::Options::=--force-confold)
apt-get "${apt_opts[@]}" update -qq
apt-get "${apt_opts[@]}" install -y -q --no-install-recommends \
	"${missing[@]}"

# The packages may have started system instances (no policy-rc.d here).
# They would not clash with the test ports, but nothing should run that
# the suite did not start.
if command -v service >/dev/null 2>&1; then
	service dovecot stop >/dev/null 2>&1 || true
	service postfix stop >/dev/null 2>&1 || true
fi
exit 0
