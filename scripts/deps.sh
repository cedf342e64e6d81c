#!/usr/bin/env bash
# Installs, from the distribution's packages, the tools the tests use,
# when they are missing. As root on Debian/Ubuntu it installs them; as
# another user it lists what is missing (tests that need a missing tool
# skip and say which) and carries on. Under MPM_REQUIRE_ROOT=1 (CI) a tool
# that cannot be installed is an error: nothing may silently skip there.
set -euo pipefail

# command -> Debian package
declare -A pkgs=(
	[php-cgi]=php-cgi
	[curl]=curl
	[openssl]=openssl
	[ab]=apache2-utils
	[gcc]=gcc # cgo, which the race detector needs
	[setcap]=libcap2-bin
	[systemd-analyze]=systemd # verify the units (PID 1 need not be systemd)
	[man]=man-db              # systemd-analyze verify checks Documentation=man:
	[dpkg-deb]=dpkg           # make deb
)

if ! command -v go >/dev/null 2>&1; then
	echo "deps: no go command on PATH. Install Go 1.26 or later from https://go.dev/dl/ (Debian's golang package is too old) and put it on PATH." >&2
	exit 1
fi

# Tools in sbin (setcap) count even when sbin is not on PATH.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
missing=()
for c in "${!pkgs[@]}"; do
	command -v "$c" >/dev/null 2>&1 || missing+=("${pkgs[$c]}")
done
# php-fpm: Debian installs it under a versioned name (/usr/sbin/php-fpm8.2).
if ! command -v php-fpm >/dev/null 2>&1 && ! ls /usr/sbin/php-fpm* >/dev/null 2>&1; then
	missing+=(php-fpm)
fi
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	exit 0
fi

msg="deps: missing ${missing[*]} (install as root: apt-get install ${missing[*]}); tests that need them will skip"
if [ "${MPM_REQUIRE_ROOT:-}" = 1 ]; then
	echo "${msg/will skip/cannot run}, and MPM_REQUIRE_ROOT=1 forbids skipping" >&2
	exit 1
fi
echo "$msg" >&2
