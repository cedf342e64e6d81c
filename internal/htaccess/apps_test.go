package htaccess

import (
	"net/http"
	"testing"
)

// The .htaccess files of the applications that shared hosting runs most,
// as they ship (testdata/*.htaccess), on a document root laid out as
// theirs is: pretty URLs reach the front controller with the right
// query string, existing files are served as they are, the front
// controller is not rewritten again, and what the files protect stays
// protected.

func TestWordPress(t *testing.T) {
	tree := site(t, map[string]string{
		".htaccess":                           testdata(t, "wordpress.htaccess"),
		"index.php":                           "<?php",
		"wp-login.php":                        "<?php",
		"wp-admin/index.php":                  "<?php",
		"wp-content/themes/twenty/style.css":  "body{}",
		"wp-content/uploads/2024/01/cat.jpg":  "jpg",
		"wp-includes/js/jquery/jquery.min.js": "js",
	})
	auth := http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}
	checkResolve(t, tree, []rq{
		{name: "permalink", path: "/hello-world/", want: "/index.php",
			env: map[string]string{"REDIRECT_URL": "/hello-world/", "REDIRECT_STATUS": "200"}},
		{name: "permalink keeps its query", path: "/2024/01/hello-world/", query: "replytocom=5", want: "/index.php", wantQ: "replytocom=5",
			env: map[string]string{"REDIRECT_QUERY_STRING": "replytocom=5"}},
		{name: "feed", path: "/feed", want: "/index.php"},
		{name: "missing file", path: "/wp-content/uploads/2024/01/dog.jpg", want: "/index.php"},
		{name: "static file", path: "/wp-content/themes/twenty/style.css", want: "/wp-content/themes/twenty/style.css"},
		{name: "script", path: "/wp-login.php", query: "action=lostpassword", want: "/wp-login.php", wantQ: "action=lostpassword",
			env: map[string]string{"REDIRECT_URL": "<unset>"}},
		{name: "directory", path: "/wp-admin/", want: "/wp-admin/"},
		{name: "directory without slash", path: "/wp-admin", want: "/wp-admin"},
		{name: "home", path: "/", want: "/"},
		{name: "front controller itself", path: "/index.php", query: "p=1", want: "/index.php", wantQ: "p=1",
			env: map[string]string{"REDIRECT_STATUS": "<unset>"}},
		{name: "Authorization reaches PHP as Apache passes it", path: "/wp-json/wp/v2/posts", header: auth, want: "/index.php",
			env: map[string]string{"REDIRECT_HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz", "HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}},
		{name: "dot segments", path: "/wp-content/../wp-login.php", want: "/wp-login.php"},
		{name: "above the root", path: "/../etc/passwd", status: 400},
	})
}

// WordPress in a subdirectory writes its RewriteBase and front
// controller with the directory in them.
func TestWordPressSubdirectory(t *testing.T) {
	tree := site(t, map[string]string{
		"blog/.htaccess": `# BEGIN WordPress
<IfModule mod_rewrite.c>
RewriteEngine On
RewriteBase /blog/
RewriteRule ^index\.php$ - [L]
RewriteCond %{REQUEST_FILENAME} !-f
RewriteCond %{REQUEST_FILENAME} !-d
RewriteRule . /blog/index.php [L]
</IfModule>
# END WordPress
`,
		"blog/index.php": "<?php",
		"other.html":     "x",
	})
	checkResolve(t, tree, []rq{
		{path: "/blog/2024/hello/", want: "/blog/index.php"},
		{path: "/blog/index.php", want: "/blog/index.php"},
		{path: "/blog/", want: "/blog/"},
		{name: "outside the blog, no rules apply", path: "/missing", want: "/missing"},
	})
}

func TestLaravel(t *testing.T) {
	tree := site(t, map[string]string{
		".htaccess":   testdata(t, "laravel-public.htaccess"),
		"index.php":   "<?php",
		"favicon.ico": "ico",
		"css/app.css": "css",
		"build/":      "",
	})
	checkResolve(t, tree, []rq{
		{path: "/users/5", want: "/index.php"},
		{path: "/users/5", query: "tab=posts", want: "/index.php", wantQ: "tab=posts"},
		{name: "trailing slash redirects", path: "/users/", status: 301, location: "/users"},
		{name: "trailing slash redirect keeps the query", path: "/users/", query: "page=2", status: 301, location: "/users?page=2"},
		{name: "a directory keeps its slash", path: "/build/", want: "/build/"},
		{path: "/css/app.css", want: "/css/app.css"},
		{path: "/favicon.ico", want: "/favicon.ico"},
		{path: "/index.php", want: "/index.php"},
		{path: "/", want: "/"},
		{name: "X-XSRF-Token", path: "/api/user", header: http.Header{"X-Xsrf-Token": {"tok"}}, want: "/index.php",
			env: map[string]string{"REDIRECT_HTTP_X_XSRF_TOKEN": "tok"}},
	})
}

func TestSymfony(t *testing.T) {
	htaccess := testdata(t, "symfony-public.htaccess")
	tree := site(t, map[string]string{
		".htaccess":           htaccess,
		"index.php":           "<?php",
		"bundles/app/app.css": "css",
		// The same application installed under /shop/public.
		"shop/public/.htaccess": htaccess,
		"shop/public/index.php": "<?php",
		"shop/public/logo.png":  "png",
	})
	checkResolve(t, tree, []rq{
		{path: "/blog/first-post", want: "/index.php"},
		{path: "/blog/first-post", query: "page=2", want: "/index.php", wantQ: "page=2"},
		{path: "/bundles/app/app.css", want: "/bundles/app/app.css"},
		{name: "front controller in the URL redirects away", path: "/index.php/blog/first-post", status: 301, location: "/blog/first-post"},
		{name: "front controller alone redirects to the root", path: "/index.php", status: 301, location: "/"},
		{name: "directory index", path: "/", want: "/index.php"},
		{name: "Authorization", path: "/api", header: http.Header{"Authorization": {"Bearer x"}}, want: "/index.php",
			env: map[string]string{"REDIRECT_HTTP_AUTHORIZATION": "Bearer x"}},
		// The RewriteBase detection (a PCRE backreference, ::\2) finds
		// /shop/public, so the front controller is the installed one.
		{name: "subdirectory install", path: "/shop/public/cart", want: "/shop/public/index.php",
			env: map[string]string{"REDIRECT_BASE": "/shop/public"}},
		{name: "subdirectory file", path: "/shop/public/logo.png", want: "/shop/public/logo.png"},
		{name: "subdirectory front controller redirect", path: "/shop/public/index.php/cart", status: 301, location: "/shop/public/cart"},
	})
}

func TestDrupal(t *testing.T) {
	tree := site(t, map[string]string{
		".htaccess":                              testdata(t, "drupal.htaccess"),
		"index.php":                              "<?php",
		"autoload.php":                           "<?php",
		"composer.json":                          "{}",
		"web.config":                             "<xml/>",
		"core/install.php":                       "<?php",
		"core/misc/drupal.js":                    "js",
		"core/misc/drupal.js.gz":                 "gz",
		"core/lib/Drupal.php":                    "<?php",
		"core/modules/statistics/statistics.php": "<?php",
		"sites/default/settings.php":             "<?php",
		"sites/default/files/logo.png":           "png",
		"modules/custom/x/x.module":              "<?php",
		".well-known/acme-challenge/token":       "tok",
		".git/config":                            "[core]",
	})
	gzip := http.Header{"Accept-Encoding": {"gzip, br"}}
	checkResolve(t, tree, []rq{
		{path: "/node/1", want: "/index.php"},
		{path: "/node/1", query: "destination=/admin", want: "/index.php", wantQ: "destination=/admin"},
		{path: "/", want: "/"},
		{path: "/index.php", want: "/index.php"},
		{path: "/sites/default/files/logo.png", want: "/sites/default/files/logo.png"},
		{name: "mod_headers is absent, so the .gz rules do not apply", path: "/core/misc/drupal.js", header: gzip, want: "/core/misc/drupal.js"},
		// The FilesMatch has a lookahead, (?!well-known): the fallback
		// matcher runs it.
		{path: "/composer.json", status: 403, reason: "FilesMatch"},
		{path: "/web.config", status: 403},
		{path: "/modules/custom/x/x.module", status: 403},
		{path: "/.htaccess", status: 403},
		{name: "hidden directory", path: "/.git/config", status: 403, reason: `RewriteRule "/\.|^\.(?!well-known/)" - [F]`},
		{name: "well-known is served", path: "/.well-known/acme-challenge/token", want: "/.well-known/acme-challenge/token"},
		{name: "PHP outside core is denied", path: "/sites/default/settings.php", status: 403},
		{path: "/core/lib/Drupal.php", status: 403},
		{path: "/autoload.php", status: 403},
		{name: "allowed core front controller", path: "/core/modules/statistics/statistics.php", want: "/core/modules/statistics/statistics.php"},
		{name: "install.php rewritten to itself with a query", path: "/core/install.php", want: "/core/install.php", wantQ: "rewrite=ok"},
		{name: "old install.php location", path: "/install.php", query: "profile=x", status: 301, location: "/core/install.php?profile=x"},
		{name: "favicon is not routed", path: "/favicon.ico", want: "/favicon.ico"},
		{name: "protossl on https", path: "/node/1", https: true, want: "/index.php", env: map[string]string{"REDIRECT_protossl": "s"}},
	})
}

func TestDokuWiki(t *testing.T) {
	deny := testdata(t, "dokuwiki-data.htaccess")
	tree := site(t, map[string]string{
		".htaccess":                        testdata(t, "dokuwiki.htaccess"),
		"doku.php":                         "<?php",
		"index.php":                        "<?php",
		"README":                           "readme",
		"VERSION":                          "2024-02-06",
		"lib/exe/fetch.php":                "<?php",
		"lib/exe/detail.php":               "<?php",
		"lib/tpl/dokuwiki/images/logo.png": "png",
		"data/.htaccess":                   deny,
		"data/pages/start.txt":             "====== Start ======",
		"data/media/wiki/logo.png":         "png",
		"conf/.htaccess":                   deny,
		"conf/local.php":                   "<?php $conf['superuser']",
		"conf/users.auth.php":              "admin:hash",
		"inc/.htaccess":                    deny,
		"inc/init.php":                     "<?php",
	})
	checkResolve(t, tree, []rq{
		{name: "start page", path: "/", want: "/doku.php"},
		{name: "page", path: "/wiki:syntax", want: "/doku.php", wantQ: "id=wiki:syntax"},
		{name: "page with action", path: "/wiki:syntax", query: "do=edit", want: "/doku.php", wantQ: "id=wiki:syntax&do=edit"},
		{name: "namespaced page", path: "/projects/mpm/start", want: "/doku.php", wantQ: "id=projects/mpm/start"},
		{name: "media", path: "/_media/wiki:logo.png", query: "w=100", want: "/lib/exe/fetch.php", wantQ: "media=wiki:logo.png&w=100"},
		{name: "detail", path: "/_detail/wiki:logo.png", query: "id=start", want: "/lib/exe/detail.php", wantQ: "media=wiki:logo.png&id=start"},
		{name: "export", path: "/_export/raw/wiki:syntax", want: "/doku.php", wantQ: "do=export_raw&id=wiki:syntax"},
		{name: "existing file", path: "/lib/tpl/dokuwiki/images/logo.png", want: "/lib/tpl/dokuwiki/images/logo.png"},
		{name: "front controller", path: "/doku.php", query: "id=start", want: "/doku.php", wantQ: "id=start"},
		{name: "index.php goes to doku.php", path: "/index.php", want: "/doku.php"},
		{name: "page title with a space", path: "/my page", want: "/doku.php", wantQ: "id=my%20page"},
		// What DokuWiki protects.
		{name: "data", path: "/data/pages/start.txt", status: 403, reason: "Require all denied"},
		{name: "data directory", path: "/data/", status: 403},
		{name: "data media", path: "/data/media/wiki/logo.png", status: 403},
		{name: "conf", path: "/conf/users.auth.php", status: 403},
		{name: "conf missing file still denied", path: "/conf/nothing.php", status: 403},
		{path: "/inc/init.php", status: 403},
		{path: "/README", status: 403},
		{path: "/VERSION", status: 403},
		{name: "git", path: "/.git/HEAD", status: 404, reason: "RedirectMatch 404"},
	})
}

// The DokuWiki pattern in any directory denies it and what is under it,
// for any method and any client.
func TestDokuWikiDenyPattern(t *testing.T) {
	tree := site(t, map[string]string{
		"data/.htaccess":         testdata(t, "dokuwiki-data.htaccess"),
		"data/pages/a/b/c.txt":   "x",
		"data/cache/0/index.php": "<?php",
		"public.txt":             "ok",
	})
	for _, p := range []string{"/data", "/data/", "/data/pages/a/b/c.txt", "/data/cache/0/index.php", "/data/missing/x"} {
		for _, m := range []string{"GET", "POST", "HEAD", "OPTIONS"} {
			for _, remote := range []string{"", "127.0.0.1:5000", "[::1]:5000", "203.0.113.9:1"} {
				r := rq{method: m, path: p, remote: remote}
				if got := tree.Resolve(r.request()); got.Status != 403 {
					t.Errorf("%s %s from %q: status %d, want 403", m, p, remote, got.Status)
				}
				if got := tree.Access(r.request()); got.Status != 403 {
					t.Errorf("Access %s %s from %q: status %d, want 403", m, p, remote, got.Status)
				}
			}
		}
	}
	if got := tree.Resolve(rq{path: "/public.txt"}.request()); got.Status != 0 {
		t.Errorf("/public.txt: %+v, want it served", got)
	}
}
