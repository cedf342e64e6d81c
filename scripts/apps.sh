#!/usr/bin/env bash
# shellcheck disable=SC2016 # PHP code in single quotes, on purpose
# Real applications under mpmd (not run by `make test`: it installs large
# packages). As root on Debian 12:
#
#   make apps            (or: scripts/apps.sh, after `make build`)
#
# It installs Debian's wordpress, dokuwiki and mariadb-server (when
# missing), starts a private MariaDB (unix socket only, in a temporary
# directory), copies WordPress and DokuWiki into two document roots owned
# by two uids that have no account, and serves them with bin/mpmd, once
# with php_mode = "cgi" and once with "fpm", each time from a fresh copy
# of both sites. Every check prints "PASS name" or "FAIL name: why"; the
# last line is "N passed, M failed", and the exit status is non-zero when
# a check failed.
#
# Nothing of the system's own is changed besides the packages: no
# account is created, /etc/wordpress, /etc/dokuwiki and the system's
# databases are left alone, and every process and file the script makes
# is removed at the end, also on failure or ^C. APPS_KEEP=1 keeps the
# temporary directory (logs, sites, configuration) for a look afterwards.
#
# Environment: APPS_WP_UID (2901), APPS_WIKI_UID (2902), APPS_MUX_UID
# (2903): numeric ids that must be neither a user nor a group here.
set -u
cd "$(dirname "$0")/.." || exit 1
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C

WP_UID=${APPS_WP_UID:-2901}
WIKI_UID=${APPS_WIKI_UID:-2902}
MUX_UID=${APPS_MUX_UID:-2903}
PACKAGES=(wordpress wordpress-theme-twentytwentythree mariadb-server mariadb-client
	dokuwiki php-cgi php-fpm php-mysql php-cli curl)
# The WordPress administrator and the DokuWiki editor the checks log in as.
WP_ADMIN=admin WP_PASS='mpmd-apps-Secret-1'
WIKI_USER=editor WIKI_PASS='mpmd-apps-Secret-2'

WORK='' # the temporary directory; everything the script makes is under it
DB_SOCK='' DB_PID='' MPMD_PID='' PORT='' POLICY_RC_D=''
PASSED=0 FAILED=0

say() { echo "apps: $*" >&2; }
die() {
	say "$*"
	exit 1
}

pass() {
	echo "PASS $1"
	PASSED=$((PASSED + 1))
}
fail() {
	echo "FAIL $1: $2"
	FAILED=$((FAILED + 1))
}

# snippet FILE: the start of a response body's text (HTML tags left
# out), on one line, for a FAIL.
snippet() { head -c 20000 "$1" 2>/dev/null | tr -s '\r\n\t' '   ' | sed 's/<[^>]*>/ /g; s/  */ /g' | head -c 300; }

# stop_pid PID NAME: SIGTERM, up to 20 s to exit, then SIGKILL.
stop_pid() {
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "$2 (pid $pid) did not stop in 20 s: killing it"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	return 0
}

cleanup() {
	local rc=$?
	stop_mpmd
	if [ -n "$DB_PID" ]; then
		mariadb-admin --no-defaults -S "$DB_SOCK" shutdown >/dev/null 2>&1
		stop_pid "$DB_PID" mariadbd
		DB_PID=
	fi
	if [ -n "$POLICY_RC_D" ]; then
		rm -f "$POLICY_RC_D"
	fi
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "${APPS_KEEP:-}" = 1 ]; then
			say "kept $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}

# ---------------------------------------------------------------- setup

# install_packages: apt-get install what is missing of PACKAGES. The
# packages' scripts would start apache2 and the system's MariaDB; a
# policy-rc.d that denies every start (Debian's mechanism for that) is in
# place while they run, when the machine has none of its own.
install_packages() {
	local p missing=()
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing ${missing[*]}"
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		POLICY_RC_D=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\n# apps.sh: no service starts while it installs packages\nexit 101\n' >"$POLICY_RC_D"
		chmod 0755 "$POLICY_RC_D"
	fi
	export DEBIAN_FRONTEND=noninteractive
	local apt=(apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
	# A fresh machine may have no package lists yet: update once, then retry.
	if ! "${apt[@]}" "${missing[@]}" >"$WORK/apt.log" 2>&1; then
		apt-get update -qq >>"$WORK/apt.log" 2>&1
		"${apt[@]}" "${missing[@]}" >>"$WORK/apt.log" 2>&1 || {
			tail -20 "$WORK/apt.log" >&2
			die "apt-get install ${missing[*]} failed"
		}
	fi
	if [ -n "$POLICY_RC_D" ]; then
		rm -f "$POLICY_RC_D"
		POLICY_RC_D=
	fi
}

# check_free_id ID: ID must be neither a user nor a group, so that files
# and processes of that uid are the script's alone.
check_free_id() {
	if getent passwd "$1" >/dev/null || getent group "$1" >/dev/null; then
		die "uid/gid $1 is in use here; pick free ones with APPS_WP_UID, APPS_WIKI_UID, APPS_MUX_UID"
	fi
}

# free_port: a TCP port no socket uses (listening or connected, as
# /proc/net/tcp* shows them), below the ephemeral range, where the
# kernel picks the ports of outgoing connections and of ":0" listeners.
free_port() {
	local p low hex
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range
	[ "$low" -gt 11000 ] || low=32768
	for _ in $(seq 50); do
		p=$((10000 + RANDOM % (low - 10000)))
		hex=$(printf ':%04X ' "$p")
		if ! awk '{print $2, $3}' /proc/net/tcp /proc/net/tcp6 | grep -q "$hex"; then
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}

# sql STATEMENTS: run them as the private server's root (unix_socket
# authentication: root here is root there).
sql() { mariadb --no-defaults -S "$DB_SOCK" -u root -N -B -e "$1"; }

# start_db: a private MariaDB, unix socket only, in $WORK/mysql (its
# data, socket, log), run as the mysql user. --no-defaults keeps it away
# from /etc/mysql (the system's datadir and socket).
start_db() {
	mkdir -p "$WORK/mysql/data"
	chown -R mysql:mysql "$WORK/mysql"
	# 0711: the site users connect to the socket by its path.
	chmod 0711 "$WORK/mysql"
	chmod 0700 "$WORK/mysql/data"
	mariadb-install-db --no-defaults --user=mysql --datadir="$WORK/mysql/data" \
		--auth-root-authentication-method=socket --skip-test-db >"$WORK/db-install.log" 2>&1 ||
		die "mariadb-install-db failed: $(tail -5 "$WORK/db-install.log")"
	mariadbd --no-defaults --user=mysql --datadir="$WORK/mysql/data" --socket="$DB_SOCK" \
		--skip-networking --pid-file="$WORK/mysql/mariadbd.pid" --log-error="$WORK/mysql/error.log" >>"$WORK/mysql/mariadbd.out" 2>&1 &
	DB_PID=$!
	for _ in $(seq 60); do
		mariadb-admin --no-defaults -S "$DB_SOCK" ping >/dev/null 2>&1 && return 0
		kill -0 "$DB_PID" 2>/dev/null || break
		sleep 0.5
	done
	die "MariaDB did not start: $(tail -5 "$WORK/mysql/error.log")"
}

# rand N: N random letters and digits.
rand() { tr -dc 'A-Za-z0-9' </dev/urandom | head -c "$1"; }

# own UID DIR: DIR and all under it belong to UID; DIR itself is 0700.
own() {
	chown -R "$1:$1" "$2"
	chmod 0700 "$2"
}

# setup_wordpress: a fresh copy of Debian's WordPress in $WORK/wp, with
# its own wp-config.php, an empty database, and WordPress's .htaccess.
setup_wordpress() {
	local root=$WORK/wp dbpass
	rm -rf "$root"
	# -L: real files for Debian's links (into /usr/share/javascript,
	# /usr/share/php, /etc/wordpress): the tree is the site's own.
	cp -rL /usr/share/wordpress "$root" || die "copying WordPress failed"
	mkdir -p "$root/wp-content/uploads"
	dbpass=$(rand 24)
	sql "DROP DATABASE IF EXISTS wordpress; CREATE DATABASE wordpress;
		CREATE USER IF NOT EXISTS 'wordpress'@'localhost';
		ALTER USER 'wordpress'@'localhost' IDENTIFIED BY '$dbpass';
		GRANT ALL ON wordpress.* TO 'wordpress'@'localhost';" || die "creating WordPress's database failed"
	# Debian's wp-config.php reads /etc/wordpress/config-<host>.php; this
	# site has its own, as an upstream install does.
	{
		echo "<?php"
		echo "// written by scripts/apps.sh"
		echo "define('DB_NAME', 'wordpress');"
		echo "define('DB_USER', 'wordpress');"
		echo "define('DB_PASSWORD', '$dbpass');"
		echo "define('DB_HOST', 'localhost:$DB_SOCK');"
		echo "define('DB_CHARSET', 'utf8mb4');"
		echo "define('DB_COLLATE', '');"
		for k in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do
			echo "define('$k', '$(rand 64)');"
		done
		echo "\$table_prefix = 'wp_';"
		# This machine has no network: no update checks, no HTTP
		# requests out (they would wait for their timeouts), and
		# no cron requests to the site's own URL (wp.test does
		# not resolve here).
		echo "define('WP_HTTP_BLOCK_EXTERNAL', true);"
		echo "define('AUTOMATIC_UPDATER_DISABLED', true);"
		echo "define('DISABLE_WP_CRON', true);"
		echo "define('WP_DEBUG', false);"
		# Application Passwords need HTTPS, or an environment type of
		# "local": this test speaks plain HTTP.
		echo "define('WP_ENVIRONMENT_TYPE', 'local');"
		echo "if (!defined('ABSPATH')) define('ABSPATH', __DIR__ . '/');"
		echo "require_once ABSPATH . 'wp-settings.php';"
	} >"$root/wp-config.php"
	# WordPress's own block, as it writes it for Apache with mod_rewrite
	# (the copied .htaccess was Debian's, all commented out).
	cat >"$root/.htaccess" <<'EOF'
# BEGIN WordPress
# The directives (lines) between "BEGIN WordPress" and "END WordPress" are
# dynamically generated, and should only be modified via WordPress filters.
# Any changes to the directives between these markers will be overwritten.
<IfModule mod_rewrite.c>
RewriteEngine On
RewriteRule .* - [E=HTTP_AUTHORIZATION:%{HTTP:Authorization}]
RewriteBase /
RewriteRule ^index\.php$ - [L]
RewriteCond %{REQUEST_FILENAME} !-f
RewriteCond %{REQUEST_FILENAME} !-d
RewriteRule . /index.php [L]
</IfModule>

# END WordPress
EOF
	own "$WP_UID" "$root"
	chmod 0600 "$root/wp-config.php"
}

# setup_dokuwiki: a fresh copy of Debian's DokuWiki in $WORK/wiki, laid
# out as upstream's: conf/ (from /etc/dokuwiki) and data/ (from
# /var/lib/dokuwiki) inside the tree, with their .htaccess files, and the
# rewrite rules of the top .htaccess enabled (userewrite = 1 needs them).
setup_dokuwiki() {
	local root=$WORK/wiki hash
	rm -rf "$root"
	cp -rL /usr/share/dokuwiki "$root" || die "copying DokuWiki failed"
	rm -rf "$root/conf" "$root/data"
	cp -rL /etc/dokuwiki "$root/conf" || die "copying DokuWiki's conf failed"
	cp -rL /var/lib/dokuwiki/data "$root/data" || die "copying DokuWiki's data failed"
	# Debian's preload.php points DokuWiki at /etc/dokuwiki; without it,
	# DokuWiki uses its own conf/ (DOKU_INC/conf/), as upstream.
	rm -f "$root/inc/preload.php"
	# Debian's web server snippets are not DokuWiki's configuration.
	rm -f "$root/conf/apache.conf" "$root/conf/lighttpd.conf" "$root/conf/htaccess"
	sed -i "s|^\$conf\['savedir'\].*|\$conf['savedir'] = './data';|" "$root/conf/dokuwiki.php"
	sed -e 's/^#\(Rewrite\(Engine\|Rule\|Cond\)\)/\1/' /usr/share/dokuwiki/.htaccess.dist >"$root/.htaccess"
	# Keep the xmlrpc rule commented out: this test runs without HTTPS.
	sed -i -e 's/^\(RewriteCond %{HTTPS}\)/#\1/' -e 's|^\(RewriteRule ^lib/exe/xmlrpc\)|#\1|' "$root/.htaccess"
	rm -f "$root/.htaccess.dist" "$root/.htaccess.dist.md5sum"
	# An editor who logs in (the ACL lets @user edit, @ALL only read).
	hash=$(php -r 'echo password_hash($argv[1], PASSWORD_BCRYPT);' "$WIKI_PASS")
	printf '# users.auth.php\n# <?php exit()?>\n%s:%s:Editor:editor@wiki.test:admin,user\n' \
		"$WIKI_USER" "$hash" >"$root/conf/users.auth.php"
	wiki_conf 0
	own "$WIKI_UID" "$root"
}

# wiki_conf N: DokuWiki's conf/local.php with userewrite = N.
wiki_conf() {
	local f=$WORK/wiki/conf/local.php
	cat >"$f.new" <<EOF
<?php
\$conf['title'] = 'mpmd apps';
\$conf['lang'] = 'en';
\$conf['useacl'] = 1;
\$conf['superuser'] = '@admin';
\$conf['userewrite'] = $1;
EOF
	chown "$WIKI_UID:$WIKI_UID" "$f.new"
	mv "$f.new" "$f"
}

# write_config MODE: mpmd's configuration, both vhosts in php_mode MODE.
write_config() {
	cat >"$WORK/mpmd.toml" <<EOF
# written by scripts/apps.sh
[server]
listen = ["127.0.0.1:$PORT"]
run_dir = "$WORK/run"
multiplexers = 1
multiplexer_user = "$MUX_UID"
multiplexer_group = "$MUX_UID"
min_uid = 1000

[identity.wp]
user = "$WP_UID"
group = "$WP_UID"

[identity.wiki]
user = "$WIKI_UID"
group = "$WIKI_UID"

# No fallback: WordPress's .htaccess routes to index.php.
[[vhost]]
server_name = "wp.test"
document_root = "$WORK/wp"
identity = "wp"
php = true
php_mode = "$1"
access_log = "$WORK/log/wp.access.log"

[[vhost]]
server_name = "wiki.test"
document_root = "$WORK/wiki"
identity = "wiki"
php = true
php_mode = "$1"
access_log = "$WORK/log/wiki.access.log"
# The checks rewrite conf/local.php between requests: FPM's opcache must
# see each change at once (its default looks again after 2 s).
php_value = { "opcache.revalidate_freq" = "0" }
EOF
}

# start_mpmd MODE: bin/mpmd (a copy every site user can execute: the workers
# are the same binary run again as the site's user) in the background,
# until it answers.
start_mpmd() {
	mkdir -p "$WORK/run" "$WORK/log"
	chmod 0755 "$WORK/run"
	"$WORK/mpmd" -check -config "$WORK/mpmd.toml" >"$WORK/mpmd-check.log" 2>&1 ||
		die "mpmd -check failed: $(cat "$WORK/mpmd-check.log")"
	"$WORK/mpmd" -config "$WORK/mpmd.toml" >"$WORK/mpmd-$1.log" 2>&1 &
	MPMD_PID=$!
	for _ in $(seq 100); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Host: wiki.test' \
			"http://127.0.0.1:$PORT/VERSION")" != 000 ] && return 0
		kill -0 "$MPMD_PID" 2>/dev/null || break
		sleep 0.2
	done
	die "mpmd did not start: $(tail -20 "$WORK/mpmd-$1.log")"
}

stop_mpmd() {
	stop_pid "$MPMD_PID" mpmd
	MPMD_PID=
}

# ---------------------------------------------------------------- requests

# http HOST PATH [curl options]: one request to mpmd. The body is in
# $BODY, the response head in $HEAD; prints the status code (000: no
# answer, curl's error is in $WORK/curl.err).
BODY='' HEAD=''
http() {
	local host=$1 path=$2
	shift 2
	curl -sS --max-time 60 -o "$BODY" -D "$HEAD" -w '%{http_code}' \
		--resolve "$host:$PORT:127.0.0.1" "$@" "http://$host:$PORT$path" 2>>"$WORK/curl.err"
	return 0
}

# header NAME: the value of response header NAME in $HEAD.
header() { sed -n "s/^$1: *\(.*\)\r\$/\1/Ip" "$HEAD" | tail -1; }

# json EXPR: EXPR (PHP, over $j, the decoded $BODY) printed.
json() { php -r '$j = json_decode(file_get_contents($argv[1]), true); echo '"$1"';' "$BODY" 2>/dev/null; }

# hidden NAME: the value of the form field NAME in $BODY (DokuWiki's
# hidden inputs: sectok, date, changecheck, ...).
hidden() { grep -o "<input[^>]*name=\"$1\"[^>]*>" "$BODY" | head -1 | sed -n 's/.*value="\([^"]*\)".*/\1/p'; }

# ---------------------------------------------------------------- checks

# check_wordpress MODE: install, log in, permalinks, REST, media.
check_wordpress() {
	local m=$1 s jar=$WORK/wp.cookies nonce apppass id slug url file png
	local site="http://wp.test:$PORT"
	rm -f "$jar"

	s=$(http wp.test '/wp-admin/install.php?step=2' --data-urlencode 'weblog_title=mpmd apps' \
		--data-urlencode "user_name=$WP_ADMIN" --data-urlencode "admin_password=$WP_PASS" \
		--data-urlencode "admin_password2=$WP_PASS" --data-urlencode 'pw_weak=1' \
		--data-urlencode 'admin_email=admin@wp.test' --data-urlencode 'blog_public=0')
	if [ "$s" = 200 ] && grep -q 'Success!' "$BODY"; then
		pass "$m wp-install"
	else
		fail "$m wp-install" "POST /wp-admin/install.php?step=2: $s $(snippet "$BODY")"
	fi

	# Pretty permalinks, set in the database: WordPress's permalink
	# screen writes /index.php/%postname%/ on a server it does not know
	# to have mod_rewrite (it looks for "Apache" in SERVER_SOFTWARE).
	# Deleting rewrite_rules makes WordPress build them again.
	sql "UPDATE wordpress.wp_options SET option_value = '/%postname%/' WHERE option_name = 'permalink_structure';
		DELETE FROM wordpress.wp_options WHERE option_name = 'rewrite_rules';" ||
		fail "$m wp-permalinks" "setting permalink_structure in the database failed"

	# wp-login.php wants its test cookie first.
	http wp.test /wp-login.php -c "$jar" >/dev/null
	s=$(http wp.test /wp-login.php -b "$jar" -c "$jar" --data-urlencode "log=$WP_ADMIN" \
		--data-urlencode "pwd=$WP_PASS" --data-urlencode 'wp-submit=Log In' \
		--data-urlencode "redirect_to=$site/wp-admin/" --data-urlencode 'testcookie=1')
	if [ "$s" = 302 ] && grep -q 'wordpress_logged_in_' "$jar"; then
		s=$(http wp.test /wp-admin/ -b "$jar")
		if [ "$s" = 200 ] && grep -q 'Dashboard' "$BODY"; then
			pass "$m wp-login"
		else
			fail "$m wp-login" "GET /wp-admin/ after login: $s $(snippet "$BODY")"
		fi
	else
		fail "$m wp-login" "POST /wp-login.php: $s (want 302 and a wordpress_logged_in cookie), Location: $(header Location)"
	fi

	# The REST API with the login cookie wants a nonce (X-WP-Nonce).
	s=$(http wp.test '/wp-admin/admin-ajax.php?action=rest-nonce' -b "$jar")
	nonce=$(cat "$BODY")
	if [ "$s" != 200 ] || ! [[ $nonce =~ ^[0-9a-f]{10}$ ]]; then
		fail "$m wp-rest-nonce" "GET /wp-admin/admin-ajax.php?action=rest-nonce: $s $(snippet "$BODY")"
		nonce=none
	fi

	# An Application Password (made with the cookie and nonce), for
	# HTTP Basic authentication: the Authorization header must reach PHP.
	s=$(http wp.test /wp-json/wp/v2/users/me/application-passwords -b "$jar" -H "X-WP-Nonce: $nonce" \
		-H 'Content-Type: application/json' --data "{\"name\":\"apps.sh $m\"}")
	apppass=$(json '$j["password"] ?? ""')
	if [ "$s" = 201 ] && [ -n "$apppass" ] && [ "$(http wp.test '/wp-json/wp/v2/users/me?context=edit' -u "$WP_ADMIN:$apppass")" = 200 ] &&
		[ "$(json '$j["username"] ?? ""')" = "$WP_ADMIN" ]; then
		pass "$m wp-app-password"
	else
		fail "$m wp-app-password" "POST /wp-json/wp/v2/users/me/application-passwords: $s, then GET /wp-json/wp/v2/users/me with it: $(snippet "$BODY")"
	fi

	s=$(http wp.test /wp-json/)
	if [ "$s" = 200 ] && [[ $(header Content-Type) == application/json* ]] &&
		[ "$(json 'in_array("wp/v2", $j["namespaces"] ?? []) ? "yes" : "no"')" = yes ]; then
		pass "$m wp-json"
	else
		fail "$m wp-json" "GET /wp-json/: $s $(header Content-Type) $(snippet "$BODY")"
	fi

	slug=mpmd-post-$m
	s=$(http wp.test /wp-json/wp/v2/posts -b "$jar" -H "X-WP-Nonce: $nonce" -H 'Content-Type: application/json' \
		--data "{\"title\":\"Served by mpmd in $m mode\",\"slug\":\"$slug\",\"status\":\"publish\",\"content\":\"A post written through the REST API.\"}")
	id=$(json '$j["id"] ?? ""')
	url=$(json '$j["link"] ?? ""')
	if [ "$s" = 201 ] && [ -n "$id" ] && [ "$url" = "$site/$slug/" ]; then
		pass "$m wp-post-create"
	else
		fail "$m wp-post-create" "POST /wp-json/wp/v2/posts: $s id=$id link=$url (want 201 and link $site/$slug/) $(snippet "$BODY")"
	fi

	s=$(http wp.test "/$slug/")
	if [ "$s" = 200 ] && grep -q "Served by mpmd in $m mode" "$BODY" && grep -q 'A post written through the REST API.' "$BODY"; then
		pass "$m wp-permalink"
	else
		fail "$m wp-permalink" "GET /$slug/: $s $(snippet "$BODY")"
	fi

	if [ -n "$id" ]; then
		s=$(http wp.test "/wp-json/wp/v2/posts/$id?force=true" -X DELETE -u "$WP_ADMIN:$apppass")
		if [ "$s" = 200 ] && [ "$(json '!empty($j["deleted"]) ? "yes" : "no"')" = yes ] && [ "$(http wp.test "/$slug/")" = 404 ]; then
			pass "$m wp-rest-delete"
		else
			fail "$m wp-rest-delete" "DELETE /wp-json/wp/v2/posts/$id (Application Password): $s $(snippet "$BODY") (then GET /$slug/ must be 404)"
		fi
	else
		fail "$m wp-rest-delete" "no post to delete"
	fi

	# A real PNG (1x1): WordPress checks an image's content, not its name.
	png=$WORK/mpmd-$m.png
	echo 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==' | base64 -d >"$png"
	s=$(http wp.test /wp-json/wp/v2/media -b "$jar" -H "X-WP-Nonce: $nonce" -H 'Content-Type: image/png' \
		-H "Content-Disposition: attachment; filename=mpmd-$m.png" --data-binary "@$png")
	url=$(json '$j["source_url"] ?? ""')
	file=$WORK/wp/wp-content/uploads/${url#*/wp-content/uploads/}
	[ -n "$url" ] || file=$WORK/no-upload
	if [ "$s" = 201 ] && [[ $url == "$site/wp-content/uploads/"*"/mpmd-$m.png" ]] && [ -f "$file" ] &&
		[ "$(stat -c %u:%g "$file")" = "$WP_UID:$WP_UID" ] && [ "$(http wp.test "${url#"$site"}")" = 200 ] && cmp -s "$BODY" "$png"; then
		pass "$m wp-media-upload"
	else
		fail "$m wp-media-upload" "POST /wp-json/wp/v2/media: $s source_url=$url file owner=$(stat -c %u:%g "$file" 2>&1) (want $WP_UID:$WP_UID, and the file served back) $(snippet "$BODY")"
	fi

	s=$(http wp.test /wp-config.php)
	if grep -q DB_PASSWORD "$BODY" || [ -s "$BODY" ]; then
		fail "$m wp-config-hidden" "GET /wp-config.php: $s $(snippet "$BODY")"
	else
		pass "$m wp-config-hidden"
	fi
}

# check_dokuwiki MODE: log in, edit and save a page, the rewrite modes,
# and the protected directories.
check_dokuwiki() {
	local m=$1 s jar=$WORK/wiki.cookies id text sectok page
	id=mpmd:$m
	text="Saved through mpmd in $m mode $(rand 8)"
	page=$WORK/wiki/data/pages/mpmd/$m.txt
	rm -f "$jar"

	s=$(http wiki.test '/doku.php?id=start&do=login' -c "$jar")
	sectok=$(hidden sectok)
	s=$(http wiki.test /doku.php -b "$jar" -c "$jar" --data-urlencode 'id=start' --data-urlencode 'do=login' \
		--data-urlencode "sectok=$sectok" --data-urlencode "u=$WIKI_USER" --data-urlencode "p=$WIKI_PASS")
	if [ "$s" = 302 ] && grep -q 'DW[0-9a-f]' "$jar"; then
		pass "$m wiki-login"
	else
		fail "$m wiki-login" "POST /doku.php do=login: $s (want 302 and DokuWiki's auth cookie) $(snippet "$BODY")"
	fi

	s=$(http wiki.test "/doku.php?id=$id&do=edit" -b "$jar" -c "$jar")
	sectok=$(hidden sectok)
	if [ "$s" != 200 ] || [ -z "$sectok" ] || ! grep -q 'name="wikitext"' "$BODY"; then
		fail "$m wiki-edit-form" "GET /doku.php?id=$id&do=edit: $s sectok=$sectok $(snippet "$BODY")"
	fi
	s=$(http wiki.test /doku.php -b "$jar" -c "$jar" --data-urlencode "id=$id" --data-urlencode "sectok=$sectok" \
		--data-urlencode "date=$(hidden date)" --data-urlencode "changecheck=$(hidden changecheck)" \
		--data-urlencode 'rev=0' --data-urlencode 'prefix=' --data-urlencode 'suffix=' \
		--data-urlencode "wikitext====== mpmd ======
$text" --data-urlencode 'summary=apps.sh' --data-urlencode 'do[save]=Save')
	if [ "$s" = 302 ] && [ -f "$page" ] && grep -q "$text" "$page" &&
		[ "$(stat -c %u:%g "$page")" = "$WIKI_UID:$WIKI_UID" ]; then
		pass "$m wiki-save"
	else
		fail "$m wiki-save" "POST /doku.php do[save]: $s (want 302), $page: $(stat -c %u:%g "$page" 2>&1) (want $WIKI_UID:$WIKI_UID) $(snippet "$BODY")"
	fi

	s=$(http wiki.test "/doku.php?id=$id")
	if [ "$s" = 200 ] && grep -q "$text" "$BODY"; then
		pass "$m wiki-show"
	else
		fail "$m wiki-show" "GET /doku.php?id=$id: $s $(snippet "$BODY")"
	fi

	# userewrite = 1: /id through the rewrite rules of the .htaccess
	# (and DokuWiki's own links use that form).
	wiki_conf 1
	s=$(http wiki.test "/$id")
	if [ "$s" = 200 ] && grep -q "$text" "$BODY" && grep -q "href=\"/$id?do=edit\"" "$BODY"; then
		s=$(http wiki.test "/_export/raw/$id")
		if [ "$s" = 200 ] && grep -q "$text" "$BODY"; then
			pass "$m wiki-userewrite-1"
		else
			fail "$m wiki-userewrite-1" "GET /_export/raw/$id: $s $(snippet "$BODY")"
		fi
	else
		fail "$m wiki-userewrite-1" "GET /$id: $s $(snippet "$BODY")"
	fi

	# userewrite = 2: /doku.php/id (PATH_INFO).
	wiki_conf 2
	s=$(http wiki.test "/doku.php/$id")
	if [ "$s" = 200 ] && grep -q "$text" "$BODY" && grep -q "href=\"/doku.php/$id?do=edit\"" "$BODY"; then
		pass "$m wiki-userewrite-2"
	else
		fail "$m wiki-userewrite-2" "GET /doku.php/$id: $s $(snippet "$BODY")"
	fi
	wiki_conf 0

	# Protected by DokuWiki's .htaccess files: never served, never run.
	local p
	for p in "/data/pages/mpmd/$m.txt" /data/pages/wiki/welcome.txt /conf/local.php /conf/users.auth.php \
		/bin/indexer.php /inc/init.php /VERSION; do
		s=$(http wiki.test "$p")
		case $s in
		403 | 404) pass "$m wiki-protected $p" ;;
		*) fail "$m wiki-protected $p" "GET $p: $s (want 403 or 404) $(snippet "$BODY")" ;;
		esac
	done
}

# ---------------------------------------------------------------- main

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages, and mpmd runs sites as their users)"
[ -x bin/mpmd ] || die "no bin/mpmd: run make build (or make apps)"
for id in "$WP_UID" "$WIKI_UID" "$MUX_UID"; do
	check_free_id "$id"
done

trap cleanup EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d /tmp/mpmd-apps.XXXXXX)
# 0711: the site users and mysql reach their own directories by path,
# and list nothing here.
chmod 0711 "$WORK"
BODY=$WORK/body HEAD=$WORK/head DB_SOCK=$WORK/mysql/mysql.sock

start=$(date +%s)
install_packages
cp bin/mpmd "$WORK/mpmd"
chmod 0755 "$WORK/mpmd"
start_db
PORT=$(free_port) || exit 1

for mode in cgi fpm; do
	say "php_mode = $mode: fresh sites, mpmd on 127.0.0.1:$PORT"
	setup_wordpress
	setup_dokuwiki
	write_config "$mode"
	start_mpmd "$mode"
	failed_before=$FAILED
	check_wordpress "$mode"
	check_dokuwiki "$mode"
	stop_mpmd
	if [ "$FAILED" -ne "$failed_before" ]; then
		say "mpmd's log ($mode), last lines:"
		tail -30 "$WORK/mpmd-$mode.log" >&2
	fi
done

say "took $(($(date +%s) - start)) s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
