package landlock

import (
	"path/filepath"
	"slices"
)

// DefaultSystemPaths returns the system paths a site's worker and the
// PHP it runs need on Debian (and on distributions laid out like it),
// each with the least access that works. Add the site's own paths to it:
//
//	rs := landlock.DefaultSystemPaths()
//	rs.ReadOnly = append(rs.ReadOnly, site.Root)
//	rs.ReadWrite = append(rs.ReadWrite, site.Tmp, site.Sessions, site.Uploads)
//	st, err := rs.Restrict()
//
// Paths absent here are skipped by Restrict. The PHP configuration paths
// are globbed when DefaultSystemPaths runs, one per installed PHP
// version.
//
// Left out, on purpose: /tmp, /var/tmp and /dev/shm (shared by every
// user: a channel between tenants and a place for symlink attacks; each
// site has its own temporary directory), /var/lib/php/sessions (Debian's
// session directory, shared by every site), /proc and /sys (see the
// package documentation), /run (connecting to a named socket there, such
// as MySQL's, needs no rule below ABI 9), /home, /srv and /var/www (where
// the sites are), /etc as a whole, and /etc/php/*/fpm/pool.d (where a
// distribution's PHP-FPM keeps one file per site, often world-readable,
// with that site's secrets in env[] lines).
func DefaultSystemPaths() Ruleset {
	return Ruleset{
		ReadExec: []string{
			// Programs (php-cgi, php-fpm, /bin/sh for PHP's exec() and
			// mail(), sendmail), their libraries, PHP's extensions, and
			// the data they read: time zones (/usr/share/zoneinfo), the
			// CA certificates /etc/ssl/certs links to
			// (/usr/share/ca-certificates), libmagic's database, MIME
			// types (/usr/share/mime).
			"/usr",
			// The same on a system without merged /usr; on one with it
			// (Debian 12) they are links into /usr, and the rule lands
			// on /usr/bin, /usr/lib, ... again.
			"/bin", "/sbin", "/lib", "/lib64",
		},
		ReadOnly: slices.Concat([]string{
			// The dynamic loader's index of libraries, read by every
			// dynamically linked program at start, and the libraries the
			// administrator preloads into every program (when present).
			"/etc/ld.so.cache",
			"/etc/ld.so.preload",
			// OpenSSL's configuration (openssl.cnf) and the CA
			// certificates that PHP (curl, openssl, stream wrappers) and
			// Go's crypto/x509 verify servers with.
			"/etc/ssl",
			// The system time zone (Go's time package, glibc, PHP when
			// date.timezone is unset). A link into /usr/share/zoneinfo
			// on Debian; the rule follows it.
			"/etc/localtime",
			"/etc/timezone",
			// Name resolution, for Go's resolver and glibc's: resolver
			// configuration, static hosts, which sources to ask (and in
			// which order), glibc's resolver options and address
			// sorting.
			"/etc/resolv.conf",
			"/etc/hosts",
			"/etc/nsswitch.conf",
			"/etc/host.conf",
			"/etc/gai.conf",
			// Service and protocol names: getservbyname() and
			// getprotobyname() (PHP functions of the same names),
			// getaddrinfo() given a service name.
			"/etc/services",
			"/etc/protocols",
			// Users and groups by id and name: PHP's posix_getpwuid(),
			// get_current_user(), tools PHP runs (git, ssh refuse to run
			// for a uid without an entry), Go's os/user. World-readable
			// anyway; they name the other tenants' users but hold no
			// secret (those are in /etc/shadow, not here).
			"/etc/passwd",
			"/etc/group",
			// File types by extension: Go's mime package (the
			// Content-Type net/http gives a static file) loads it on
			// first use, which may be after Restrict.
			"/etc/mime.types",
			// libmagic's local additions, read before its database by
			// PHP's finfo and mime_content_type().
			"/etc/magic",
			"/etc/magic.mime",
			// Randomness for programs that do not use getrandom(2), and
			// zeroes for those that read or map /dev/zero. Reading a
			// device needs no ioctl, which stays denied (ABI 5).
			"/dev/urandom",
			"/dev/random",
			"/dev/zero",
		}, phpConfig()),
		ReadWrite: []string{
			// Where output is discarded and empty input comes from:
			// shells ("> /dev/null"), os/exec for a nil Stdin or
			// Stdout, PHP's exec() redirections.
			"/dev/null",
		},
	}
}

// phpConfig returns the PHP configuration of each installed version that
// PHP needs: php.ini and conf.d of the CGI, CLI and FPM SAPIs (conf.d
// entries link into mods-available). FPM's php-fpm.conf and pool.d are
// left out: mpmd writes FPM's configuration itself, and pool.d holds
// other sites' pools.
func phpConfig() []string {
	var paths []string
	for _, pattern := range []string{
		"/etc/php/*/cgi",
		"/etc/php/*/cli",
		"/etc/php/*/fpm/php.ini",
		"/etc/php/*/fpm/conf.d",
		"/etc/php/*/mods-available",
	} {
		m, _ := filepath.Glob(pattern) // the patterns are well-formed
		paths = append(paths, m...)
	}
	return paths
}
