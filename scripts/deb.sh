#!/bin/sh
# Build a Debian package of mpmd from a staged tree with dpkg-deb alone:
#   scripts/deb.sh [OUTDIR]     (default: bin)
# VERSION (default: 0.0~git<date>.<commit>) is the package's version and
# what mpmd -version reports.
set -eu
cd "$(dirname "$0")/.."
out=${1:-bin}
mkdir -p "$out"
if [ -z "${VERSION:-}" ]; then
	VERSION="0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date +%Y%m%d).$(git rev-parse --short HEAD 2>/dev/null || echo local)"
fi
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"

CGO_ENABLED=0 ${GO:-go} build -trimpath -ldflags "-X main.version=$VERSION" -o "$stage/usr/sbin/mpmd" ./examples/mpmd
install -D -m 0644 examples/mpmd/systemd/mpmd.service "$stage/lib/systemd/system/mpmd.service"
install -D -m 0644 examples/mpmd/systemd/mpmd.socket "$stage/lib/systemd/system/mpmd.socket"
install -D -m 0644 examples/mpmd/mpmd.example.toml "$stage/etc/mpmd/mpmd.toml"
install -d -m 0755 "$stage/etc/mpmd/sites.d"
conffiles=/etc/mpmd/mpmd.toml
if [ -f examples/mpmd/mpmd.logrotate ]; then
	install -D -m 0644 examples/mpmd/mpmd.logrotate "$stage/etc/logrotate.d/mpmd"
	conffiles="$conffiles
/etc/logrotate.d/mpmd"
fi
install -d -m 0755 "$stage/usr/share/man/man8" "$stage/usr/share/doc/mpmd"
gzip -9n <examples/mpmd/mpmd.8 >"$stage/usr/share/man/man8/mpmd.8.gz"
install -m 0644 examples/mpmd/README.md "$stage/usr/share/doc/mpmd/README.md"
install -m 0644 SECURITY.md "$stage/usr/share/doc/mpmd/SECURITY.md"
printf 'mpmd, from https://github.com/gompm/mpm\nSee the repository for its license.\n' >"$stage/usr/share/doc/mpmd/copyright"

install -d -m 0755 "$stage/DEBIAN"
printf '%s\n' "$conffiles" >"$stage/DEBIAN/conffiles"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: mpmd
Version: $VERSION
Architecture: $arch
Maintainer: mpm developers <mpm@localhost>
Section: httpd
Priority: optional
Recommends: php-cgi
Suggests: php-fpm
Installed-Size: $(du -sk "$stage" | cut -f1)
Description: web server for many sites, each site's code as its own Unix user
 An mpm-itk / mpm-peruser equivalent: a root master, unprivileged chrooted
 multiplexers that route connections by Host and SNI, and per-site worker
 processes that serve static files and PHP as the site's own user.
 The service is not enabled on install: edit /etc/mpmd/mpmd.toml, then
 systemctl enable --now mpmd.
CONTROL
# systemd reads the new units; nothing is enabled or started.
for s in postinst postrm; do
	cat >"$stage/DEBIAN/$s" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
fi
SCRIPT
	chmod 0755 "$stage/DEBIAN/$s"
done
deb="$out/mpmd_${VERSION}_$arch.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
