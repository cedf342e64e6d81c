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
	[logrotate]=logrotate # examples/mpmd/mpmd.logrotate is tested with it
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

# promtool checks mpmd's /metrics. It comes in Debian's prometheus
# package, whose installation would also add a user and start a
# Prometheus server: instead the package is downloaded and promtool alone
# extracted into the repository's .cache/bin (which the tests look in).
promtool_dir="$(cd "$(dirname "$0")/.." && pwd)/.cache/bin"
get_promtool() {
	command -v promtool >/dev/null 2>&1 && return 0
	[ -x "$promtool_dir/promtool" ] && return 0
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		echo "deps: promtool missing (as root, make deps extracts it from Debian's prometheus package into $promtool_dir)" >&2
		[ "${MPM_REQUIRE_ROOT:-}" != 1 ]
		return
	fi
	echo "deps: extracting promtool from Debian's prometheus package into $promtool_dir"
	local tmp
	tmp=$(mktemp -d)
	# apt-get download runs as _apt where it can write; the temporary
	# directory is root's, so it warns and downloads as root: fine here.
	(cd "$tmp" && apt-get download -qq prometheus 2>/dev/null) ||
		{ apt-get update -qq && (cd "$tmp" && apt-get download -qq prometheus 2>/dev/null); }
	dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
	mkdir -p "$promtool_dir"
	install -m 0755 "$tmp/x/usr/bin/promtool" "$promtool_dir/promtool"
	rm -rf "$tmp"
}
get_promtool

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
