//go:build !cgo

package main

// Small PHP applications that stand for the big ones, each served as its
// own user in both PHP modes: a front-controller router (Laravel,
// Symfony), a WordPress-like tree, a DokuWiki-like tree whose protected
// directories carry .htaccess files, dotfiles, two PHP versions side by
// side, and one symbolic link rule for static files and PHP. Every
// answer's status is checked, and the uid of every PHP answer.

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/testenv"
)

// writeTree writes files (paths with '/') under root, owned by uid,
// directories 0755 and files 0644 (the document root itself is 0700).
func writeTree(t *testing.T, root string, uid uint32, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		for d := filepath.Dir(p); d != root && d != "."; d = filepath.Dir(d) {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			os.Chown(d, int(uid), int(uid))
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chown(p, int(uid), int(uid))
	}
}

// testdata reads one of the real applications' .htaccess files.
func testdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "internal", "htaccess", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// appReq is one request and what must answer it.
type appReq struct {
	method, path, body string
	header             map[string]string
	status             int
	want               string // a part of the body, if set
	php                bool   // answered by PHP: the body holds "uid=N"
}

func (d *daemon) check(t *testing.T, host string, uid uint32, reqs []appReq) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, q := range reqs {
		method := q.method
		if method == "" {
			method = "GET"
		}
		var body io.Reader
		if q.body != "" {
			body = strings.NewReader(q.body)
		}
		req, _ := http.NewRequest(method, "http://"+d.addr+q.path, body)
		req.Host = host
		for k, v := range q.header {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Errorf("%s %s%s: %v", method, host, q.path, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := string(b)
		if resp.StatusCode != q.status {
			t.Errorf("%s %s%s: %d %q, want %d", method, host, q.path, resp.StatusCode, trim(got), q.status)
			continue
		}
		if q.want != "" && !strings.Contains(got, q.want) {
			t.Errorf("%s %s%s: %q, want it to hold %q", method, host, q.path, trim(got), q.want)
		}
		if q.php && !strings.Contains(got, fmt.Sprintf("uid=%d", uid)) {
			t.Errorf("%s %s%s: %q, want PHP as uid %d", method, host, q.path, trim(got), uid)
		}
	}
}

func trim(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// startApp serves one site, files under its document root, with extra
// vhost settings, in PHP mode mode.
func startApp(t *testing.T, mode string, uid uint32, files map[string]string, extra string) (*daemon, testSite) {
	t.Helper()
	testenv.RequireRoot(t)
	requirePHP(t)
	requireFPM(t)
	testenv.FreeID(t, int(uid))
	testenv.FreeID(t, int(uid)+1)
	addr := freePort(t)
	sites := []testSite{{name: "app", uid: uid, extra: fmt.Sprintf("php_mode = %q\n%s", mode, extra)}}
	path := writeSites(t, addr, fmt.Sprintf("multiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\n", uid+1, uid+1), sites)
	writeTree(t, sites[0].root, uid, files)
	return startDaemon(t, addr, "-config", path), sites[0]
}

func bothModes(t *testing.T, f func(t *testing.T, mode string)) {
	for _, mode := range []string{"cgi", "fpm"} {
		t.Run(mode, func(t *testing.T) { f(t, mode) })
	}
}

// The router a Laravel or Symfony application is: every path that is not
// a file reaches public/index.php (fallback = "/index.php"), which routes
// on REQUEST_URI, for every method, with JSON bodies.
const routerPHP = `<?php
header("Content-Type: application/json");
$raw = file_get_contents("php://input");
printf("uid=%d ", posix_geteuid());
echo json_encode([
	"method" => $_SERVER["REQUEST_METHOD"],
	"uri" => $_SERVER["REQUEST_URI"],
	"script" => $_SERVER["SCRIPT_NAME"],
	"filename" => basename($_SERVER["SCRIPT_FILENAME"]),
	"path_info" => $_SERVER["PATH_INFO"] ?? null,
	"query" => $_SERVER["QUERY_STRING"],
	"get" => $_GET,
	"json" => json_decode($raw, true),
	"type" => $_SERVER["CONTENT_TYPE"] ?? null,
]);
`

func TestFrontControllerRouter(t *testing.T) {
	bothModes(t, func(t *testing.T, mode string) {
		uid := uint32(2501)
		d, _ := startApp(t, mode, uid, map[string]string{
			"index.php":      routerPHP,
			"css/app.css":    "body{}\n",
			"assets/x.txt":   "x\n",
			"info.php":       `<?php printf("uid=%d info %s", posix_geteuid(), $_SERVER["PATH_INFO"] ?? "-");`,
			"storage/a.json": "{}",
		}, "fallback = \"/index.php\"\n")
		jsonType := map[string]string{"Content-Type": "application/json"}
		d.check(t, "app.test", uid, []appReq{
			{path: "/users/42?sort=name&x=1", status: 200, php: true, want: `"uri":"\/users\/42?sort=name&x=1"`},
			{path: "/users/42?sort=name", status: 200, want: `"script":"\/index.php","filename":"index.php","path_info":null,"query":"sort=name","get":{"sort":"name"}`},
			{method: "POST", path: "/api/users", body: `{"name":"ann"}`, header: jsonType, status: 200, php: true, want: `"method":"POST","uri":"\/api\/users"`},
			{method: "PUT", path: "/api/users/7", body: `{"name":"bob"}`, header: jsonType, status: 200, php: true, want: `"json":{"name":"bob"},"type":"application\/json"`},
			{method: "PATCH", path: "/api/users/7", body: `{"a":1}`, header: jsonType, status: 200, php: true, want: `"method":"PATCH"`},
			{method: "DELETE", path: "/api/users/7", status: 200, php: true, want: `"method":"DELETE"`},
			{method: "OPTIONS", path: "/api/users", header: map[string]string{"Origin": "https://x.example", "Access-Control-Request-Method": "DELETE"}, status: 200, php: true, want: `"method":"OPTIONS"`},
			{path: "/", status: 200, php: true, want: `"uri":"\/"`},
			{path: "/css/app.css", status: 200, want: "body{}"},
			{method: "POST", path: "/css/app.css", status: 405},
			{path: "/info.php/a/b", status: 200, php: true, want: "info /a/b"},
			{path: "/missing.php", status: 404}, // as nginx: a .php that is not there is not the router's
			{path: "/assets/", status: 403},     // a directory without an index: no listing
			{path: "/assets", status: 301},
			{path: "/%2e%2e/etc/passwd", status: 400}, // above the document root
		})
	})
}

// WordPress: pretty permalinks and /wp-json/ through its .htaccess block,
// REST PUT and DELETE, and a media upload the site's user owns.
func TestWordPressLike(t *testing.T) {
	bothModes(t, func(t *testing.T, mode string) {
		uid := uint32(2503)
		d, site := startApp(t, mode, uid, map[string]string{
			".htaccess": testdata(t, "wordpress.htaccess"),
			"index.php": `<?php
$uri = parse_url($_SERVER["REQUEST_URI"], PHP_URL_PATH);
printf("uid=%d ", posix_geteuid());
if (preg_match('#^/wp-json/wp/v2/posts/(\d+)$#', $uri, $m)) {
	echo json_encode(["method" => $_SERVER["REQUEST_METHOD"], "id" => (int)$m[1], "body" => json_decode(file_get_contents("php://input"), true), "auth" => $_SERVER["HTTP_AUTHORIZATION"] ?? ""]);
} elseif ($uri === "/wp-json/") {
	echo json_encode(["namespaces" => ["wp/v2"]]);
} elseif (preg_match('#^/([a-z0-9-]+)/$#', $uri, $m)) {
	echo "post ", $m[1];
} elseif ($uri === "/") {
	echo "home";
} else {
	http_response_code(404);
	echo "not found";
}`,
			"wp-admin/async-upload.php": `<?php
$f = $_FILES["async-upload"];
$dir = dirname(__DIR__) . "/wp-content/uploads/2026/12";
@mkdir($dir, 0755, true);
move_uploaded_file($f["tmp_name"], "$dir/" . basename($f["name"]));
printf("uid=%d uploaded %s", posix_geteuid(), basename($f["name"]));`,
			"wp-content/themes/t/style.css": "/* theme */\n",
			"wp-config.php":                 `<?php define("DB_PASSWORD", "s3cret");`,
		}, "")
		auth := map[string]string{"Authorization": "Basic YWRtaW46cGFzcw=="}
		d.check(t, "app.test", uid, []appReq{
			{path: "/", status: 200, php: true, want: "home"},
			{path: "/hello-world/", status: 200, php: true, want: "post hello-world"},
			{path: "/wp-json/", status: 200, php: true, want: `"namespaces"`},
			{method: "PUT", path: "/wp-json/wp/v2/posts/1", body: `{"title":"t"}`, header: map[string]string{"Content-Type": "application/json", "Authorization": "Basic YWRtaW46cGFzcw=="}, status: 200, php: true, want: `"method":"PUT","id":1,"body":{"title":"t"},"auth":"Basic YWRtaW46cGFzcw=="`},
			{method: "DELETE", path: "/wp-json/wp/v2/posts/1", header: auth, status: 200, php: true, want: `"method":"DELETE","id":1`},
			{path: "/wp-content/themes/t/style.css", status: 200, want: "theme"},
			{path: "/wp-config.php", status: 200, php: false}, // runs, prints nothing: never its source
			{path: "/.htaccess", status: 403},
			{path: "/no/such/thing", status: 404, php: true, want: "not found"},
		})
		// A media upload: the file is written by the site's user.
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("async-upload", "cat.png")
		fw.Write([]byte("\x89PNG fake image"))
		mw.Close()
		d.check(t, "app.test", uid, []appReq{{method: "POST", path: "/wp-admin/async-upload.php", body: buf.String(), header: map[string]string{"Content-Type": mw.FormDataContentType()}, status: 200, php: true, want: "uploaded cat.png"}})
		fi, err := os.Stat(filepath.Join(site.root, "wp-content/uploads/2026/12/cat.png"))
		if err != nil {
			t.Fatalf("the upload: %v", err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid {
			t.Errorf("the upload is owned by uid %d, want the site's %d", st.Uid, uid)
		}
		d.check(t, "app.test", uid, []appReq{{path: "/wp-content/uploads/2026/12/cat.png", status: 200, want: "PNG fake image"}})
	})
}

// DokuWiki: its own .htaccess files protect bin/, inc/, data/ and conf/
// (they ran from the web, or were served), and its rewrite modes work:
// userewrite 1 (the .htaccess rules) and 2 (PATH_INFO).
func TestDokuWikiLike(t *testing.T) {
	bothModes(t, func(t *testing.T, mode string) {
		uid := uint32(2505)
		deny := testdata(t, "dokuwiki-data.htaccess")
		show := `<?php printf("uid=%d %s id=%s media=%s do=%s info=%s", posix_geteuid(), basename(__FILE__), $_GET["id"] ?? "", $_GET["media"] ?? "", $_GET["do"] ?? "", $_SERVER["PATH_INFO"] ?? "");`
		d, _ := startApp(t, mode, uid, map[string]string{
			".htaccess":                 testdata(t, "dokuwiki.htaccess"),
			"doku.php":                  show,
			"lib/exe/fetch.php":         show,
			"lib/exe/detail.php":        show,
			"lib/tpl/dokuwiki/main.css": "/* tpl */\n",
			"README":                    "readme\n",
			"VERSION":                   "2024-02-06b\n",
			"bin/.htaccess":             deny,
			"bin/indexer.php":           show,
			"inc/.htaccess":             deny,
			"inc/init.php":              show,
			"data/.htaccess":            deny,
			"data/pages/start.txt":      "====== Start ======\n",
			"conf/.htaccess":            deny,
			"conf/local.php":            `<?php $conf["superuser"] = "admin";`,
			"conf/users.auth.php":       "admin:$2y$hash:Admin:a@x:admin,user\n",
		}, "")
		d.check(t, "app.test", uid, []appReq{
			{path: "/", status: 200, php: true, want: "doku.php id= "},
			{path: "/doku.php?id=start", status: 200, php: true, want: "doku.php id=start"},
			{path: "/wiki:syntax", status: 200, php: true, want: "doku.php id=wiki:syntax"},                            // userewrite 1
			{path: "/doku.php/wiki:syntax", status: 200, php: true, want: "doku.php id= media= do= info=/wiki:syntax"}, // userewrite 2
			{path: "/_media/wiki:logo.png?w=100", status: 200, php: true, want: "fetch.php id= media=wiki:logo.png"},
			{path: "/_detail/wiki:logo.png", status: 200, php: true, want: "detail.php id= media=wiki:logo.png"},
			{path: "/_export/raw/start", status: 200, php: true, want: "doku.php id=start media= do=export_raw"},
			{method: "POST", path: "/doku.php?id=start", body: "do=save&wikitext=hi", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, status: 200, php: true},
			{path: "/lib/tpl/dokuwiki/main.css", status: 200, want: "tpl"},
			{path: "/bin/indexer.php", status: 403},
			{path: "/inc/init.php", status: 403},
			{path: "/data/pages/start.txt", status: 403},
			{path: "/conf/local.php", status: 403},
			{path: "/conf/users.auth.php", status: 403},
			{path: "/README", status: 403},
			{path: "/VERSION", status: 403},
		})
	})
}

// Dotfiles and dot-directories are never served, but /.well-known/ is;
// the vhost's deny list refuses more.
func TestDotfilesAndDeny(t *testing.T) {
	uid := uint32(2507)
	d, _ := startApp(t, "cgi", uid, map[string]string{
		"index.php":                        `<?php printf("uid=%d", posix_geteuid());`,
		".env":                             "DB_PASSWORD=s3cret\n",
		".git/config":                      "[core]\n",
		".htpasswd":                        "admin:$apr1$x\n",
		".user.ini":                        "memory_limit=1G\n",
		"sub/.hidden/a.txt":                "hidden\n",
		".well-known/acme-challenge/token": "challenge\n",
		"dump.sql":                         "CREATE TABLE\n",
		"vendor/lib/x.txt":                 "vendor\n",
		"composer.json":                    "{}\n",
		"private/notes.txt":                "notes\n",
		"public.txt":                       "public\n",
	}, "fallback = \"/index.php\"\ndeny = [\"*.sql\", \"/vendor/\", \"composer.json\", \"/private/*\"]\n")
	d.check(t, "app.test", uid, []appReq{
		{path: "/.env", status: 403},
		{path: "/.git/config", status: 403},
		{path: "/.git/", status: 403},
		{path: "/.htpasswd", status: 403},
		{path: "/.user.ini", status: 403},
		{path: "/sub/.hidden/a.txt", status: 403},
		{path: "/.nothing-here", status: 403}, // not the front controller's either
		{path: "/.well-known/acme-challenge/token", status: 200, want: "challenge"},
		{path: "/dump.sql", status: 403},
		{path: "/vendor/lib/x.txt", status: 403},
		{path: "/composer.json", status: 403},
		{path: "/private/notes.txt", status: 403},
		{path: "/public.txt", status: 200, want: "public"},
		{path: "/a/route", status: 200, php: true},
	})
}

// Two PHP versions on two vhosts of one server (here two wrappers of the
// installed PHP that report different versions), in both modes.
func TestTwoPHPVersions(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	requireFPM(t)
	fpmBin, _ := filepath.Glob("/usr/sbin/php-fpm*")
	dir := testenv.PublicDir(t, 0o755)
	wrap := func(name, target, version string) string {
		p := filepath.Join(dir, name)
		// A wrapper that sets what the other PHP would report.
		script := fmt.Sprintf("#!/bin/sh\nexec %s -d error_prepend_string=php-%s \"$@\"\n", target, version)
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cgiA, cgiB := wrap("php-cgi7.4", "/usr/bin/php-cgi", "7.4"), wrap("php-cgi8.3", "/usr/bin/php-cgi", "8.3")
	fpmA, fpmB := wrap("php-fpm7.4", fpmBin[len(fpmBin)-1], "7.4"), wrap("php-fpm8.3", fpmBin[len(fpmBin)-1], "8.3")
	addr := freePort(t)
	page := map[string]string{"v.php": `<?php printf("uid=%d %s", posix_geteuid(), ini_get("error_prepend_string"));`}
	sites := []testSite{
		{name: "old", uid: testenv.FreeID(t, 2511), pages: page, extra: fmt.Sprintf("php_cgi = %q\n", cgiA)},
		{name: "new", uid: testenv.FreeID(t, 2512), pages: page, extra: fmt.Sprintf("php_cgi = %q\n", cgiB)},
		{name: "oldfpm", uid: testenv.FreeID(t, 2513), pages: page, extra: fmt.Sprintf("php_mode = \"fpm\"\nphp_fpm = %q\n", fpmA)},
		{name: "newfpm", uid: testenv.FreeID(t, 2514), pages: page, extra: fmt.Sprintf("php_mode = \"fpm\"\nphp_fpm = %q\n", fpmB)},
	}
	testenv.FreeID(t, 2515)
	path := writeSites(t, addr, "multiplexer_user = \"2515\"\nmultiplexer_group = \"2515\"\n", sites)
	d := startDaemon(t, addr, "-config", path)
	for _, s := range sites {
		want := "php-7.4"
		if strings.HasPrefix(s.name, "new") {
			want = "php-8.3"
		}
		d.check(t, s.name+".test", s.uid, []appReq{{path: "/v.php", status: 200, php: true, want: want}})
	}
}

// One symbolic link rule for static files and PHP: a link that stays in
// the document root is followed for both; one that leaves it is refused
// for both (a PHP script under a linked directory ran while a static file
// beside it got 403).
func TestSymlinkRule(t *testing.T) {
	bothModes(t, func(t *testing.T, mode string) {
		uid := uint32(2517)
		d, site := startApp(t, mode, uid, map[string]string{
			"real/a.txt":  "inside\n",
			"real/a.php":  `<?php printf("uid=%d inside", posix_geteuid());`,
			"index.php":   `<?php printf("uid=%d", posix_geteuid());`,
			"placeholder": "",
		}, "")
		outside := filepath.Join(filepath.Dir(site.root), "outside-"+mode)
		writeTree(t, filepath.Dir(site.root), uid, map[string]string{
			filepath.Base(outside) + "/b.txt": "outside\n",
			filepath.Base(outside) + "/b.php": `<?php printf("uid=%d outside", posix_geteuid());`,
		})
		os.Symlink("real", filepath.Join(site.root, "in"))
		os.Symlink(outside, filepath.Join(site.root, "out"))
		d.check(t, "app.test", uid, []appReq{
			{path: "/in/a.txt", status: 200, want: "inside"},
			{path: "/in/a.php", status: 200, php: true, want: "inside"},
			{path: "/out/b.txt", status: 403},
			{path: "/out/b.php", status: 403},
			{path: "/out/b.php/x", status: 403},
		})
	})
}
