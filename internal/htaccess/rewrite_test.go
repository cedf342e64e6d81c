package htaccess

import (
	"io/fs"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
)

func TestRewriteQueryString(t *testing.T) {
	tree := site(t, map[string]string{
		".htaccess": `RewriteEngine On
RewriteRule ^replace$ /target.php?a=1 [L]
RewriteRule ^append$ /target.php?a=1 [QSA,L]
RewriteRule ^keep$ /target.php [L]
RewriteRule ^discard$ /target.php? [L]
RewriteRule ^qsd$ /target.php [QSD,L]
RewriteRule ^qsdnew$ /target.php?n=1 [QSD,QSA,L]
RewriteRule ^appendempty$ /target.php? [QSA,L]
RewriteRule ^last$ /target.php?x=?y=1 [QSL,L]
RewriteRule ^dollar$ /target.php?v=\$5&w=100\% [L]
RewriteRule ^space/(.*)$ /target.php?q=$1 [L]
RewriteRule ^b/(.*)$ /target.php?q=$1 [B,L]
RewriteRule ^bnp/(.*)$ /target.php?q=$1 [B,BNP,L]
RewriteRule ^bne/(.*)$ /target.php?q=$1 [B,BNE=/,L]
RewriteRule ^bneonly/(.*)$ /target.php?q=$1 [BNE=/,L]
RewriteRule ^bctls/(.*)$ /target.php?q=$1 [BCTLS,L]
RewriteCond %{QUERY_STRING} ^(.*)$
RewriteRule ^bcond$ /target.php?q=%1 [B,L]
`,
		"target.php": "<?php",
	})
	checkResolve(t, tree, []rq{
		{path: "/replace", query: "b=2", want: "/target.php", wantQ: "a=1"},
		{path: "/append", query: "b=2", want: "/target.php", wantQ: "a=1&b=2"},
		{path: "/append", want: "/target.php", wantQ: "a=1"},
		{path: "/keep", query: "b=2", want: "/target.php", wantQ: "b=2"},
		{path: "/discard", query: "b=2", want: "/target.php", wantQ: ""},
		{path: "/qsd", query: "b=2", want: "/target.php", wantQ: ""},
		{path: "/qsdnew", query: "b=2", want: "/target.php", wantQ: "n=1"},
		{path: "/appendempty", query: "b=2", want: "/target.php", wantQ: "b=2"},
		{path: "/last", want: "/target.php?x=", wantQ: "y=1"},
		{path: "/dollar", want: "/target.php", wantQ: "v=$5&w=100%"},
		{name: "spaces from a back-reference are escaped", path: "/space/a b\tc", want: "/target.php", wantQ: "q=a%20b%09c"},
		{name: "B escapes the back-reference", path: "/b/a&b c/d", want: "/target.php", wantQ: "q=a%26b+c%2Fd"},
		{name: "BNP escapes space as %20", path: "/bnp/a b", want: "/target.php", wantQ: "q=a%20b"},
		{name: "BNE leaves its characters", path: "/bne/a b/c&d", want: "/target.php", wantQ: "q=a+b/c%26d"},
		{name: "BNE without B escapes nothing", path: "/bneonly/a&b", want: "/target.php", wantQ: "q=a&b"},
		{name: "BCTLS escapes controls and space only", path: "/bctls/a b&c\x01", want: "/target.php", wantQ: "q=a+b&c%01"},
		{name: "B escapes condition back-references too", path: "/bcond", query: "x&y", want: "/target.php", wantQ: "q=x%26y"},
		{name: "the original query string is passed unchanged", path: "/keep", query: "a=%20&b=x y", want: "/target.php", wantQ: "a=%20&b=x%20y"},
	})
}

func TestRewriteBackReferences(t *testing.T) {
	tree := site(t, map[string]string{
		".htaccess": `RewriteEngine On
RewriteCond %{HTTP_HOST} ^(www\.)?(.+)$
RewriteRule ^user/([0-9]+)/(\w+)$ /profile.php?id=$1&tab=$2&host=%2&all=$0 [L]
RewriteCond %{QUERY_STRING} (^|&)page=(\d+)
RewriteRule ^list$ /list.php?p=%2 [L]
RewriteCond %{HTTP_USER_AGENT} googlebot [NC,OR]
RewriteCond %{HTTP_USER_AGENT} bingbot [NC]
RewriteRule ^bots$ /bot.html [L]
RewriteCond %{REQUEST_FILENAME} !-f
RewriteRule !^(index\.php|assets/) /index.php?unmatched=$1 [L]
`,
		"index.php": "<?php", "profile.php": "", "list.php": "", "bot.html": "",
		"assets/a.css": "css",
	})
	ua := func(s string) http.Header { return http.Header{"User-Agent": {s}} }
	checkResolve(t, tree, []rq{
		{path: "/user/42/posts", want: "/profile.php", wantQ: "id=42&tab=posts&host=example.com&all=user/42/posts"},
		{path: "/list", query: "sort=a&page=3", want: "/list.php", wantQ: "p=3"},
		{name: "OR, first", path: "/bots", header: ua("Mozilla/5.0 (compatible; Googlebot/2.1)"), want: "/bot.html"},
		{name: "OR, last", path: "/bots", header: ua("BingBot"), want: "/bot.html"},
		{name: "OR, neither: the negated rule catches it", path: "/bots", header: ua("curl/8"), want: "/index.php", wantQ: "unmatched="},
		{name: "negated pattern does not match", path: "/assets/a.css", want: "/assets/a.css"},
	})
}

func TestRewriteStatusAndRedirect(t *testing.T) {
	tree := site(t, map[string]string{
		".htaccess": `RewriteEngine On
RewriteRule ^secret - [F]
RewriteRule ^old-page$ - [G]
RewriteRule ^nope$ - [R=404]
RewriteRule ^unavailable$ /x [R=503,L]
RewriteRule ^moved/(.*)$ /new/$1 [R=301,L]
RewriteRule ^temp$ /t
RewriteRule ^t$ /u [R]
RewriteRule u$ /v [R]
RewriteRule ^ext$ https://other.example/x?y=1 [L]
RewriteRule ^pct/(.*)$ /p/$1 [R=302,L]
RewriteRule ^ne/(.*)$ /n/$1 [R=302,NE,L]
RewriteRule ^rel/(.*)$ new/$1 [R=308,L]
RewriteRule ^q/(.*)$ /q?v=$1 [R,L]
RewriteCond %{HTTPS} off
RewriteRule ^secure$ https://%{HTTP_HOST}%{REQUEST_URI} [R=301,L]
RewriteCond %{THE_REQUEST} \s/+index\.php[?\s]
RewriteRule ^index\.php$ / [R=301,L]
`,
		"index.php": "<?php",
	})
	checkResolve(t, tree, []rq{
		{path: "/secret/x", status: 403, reason: ".htaccess:2: RewriteRule ^secret - [F]"},
		{path: "/old-page", status: 410},
		{path: "/nope", status: 404},
		{path: "/unavailable", status: 503},
		{path: "/moved/a/b", query: "k=v", status: 301, location: "/new/a/b?k=v"},
		{name: "R without L goes on with the next rules", path: "/t", status: 302, location: "/v"},
		{name: "an absolute URL is a redirect", path: "/ext", status: 302, location: "https://other.example/x?y=1"},
		{name: "the redirect target is escaped", path: "/pct/100% a", status: 302, location: "/p/100%25%20a"},
		{name: "NE leaves it", path: "/ne/100%25", status: 302, location: "/n/100%25"},
		{name: "a relative target is relative to the directory", path: "/rel/x", status: 308, location: "/new/x"},
		{name: "a new query string is escaped", path: "/q/a b", status: 302, location: "/q?v=a%20b"},
		{path: "/secure", status: 301, location: "https://example.com/secure"},
		{path: "/secure", https: true, want: "/secure"},
		{name: "THE_REQUEST", path: "/index.php", query: "x=1", status: 301, location: "/?x=1"},
	})
}

func TestRewriteChainSkipNext(t *testing.T) {
	tree := site(t, map[string]string{
		".htaccess": `RewriteEngine On
RewriteRule ^a/ - [C]
RewriteRule ^a/(.*)$ /chained.php?x=$1 [L]
RewriteCond %{QUERY_STRING} go
RewriteRule ^c$ - [C]
RewriteRule ^c$ /chained2.php [L]
RewriteRule ^b$ - [S=1]
RewriteRule ^b$ /skipped.php [L]
RewriteRule ^b$ /afterskip.php [L]
RewriteRule ^n/(.*)x(.*)$ n/$1y$2 [N,DPI]
RewriteRule ^pi/(.*)x(.*)$ pi/$1y$2 [N]
RewriteRule ^forever$ forever [N]
RewriteRule ^five$ five [N=5]
`,
		"chained.php": "", "chained2.php": "", "afterskip.php": "",
	})
	checkResolve(t, tree, []rq{
		{path: "/a/z", want: "/chained.php", wantQ: "x=z"},
		{path: "/c", query: "go", want: "/chained2.php", wantQ: "go"},
		{name: "a failed link skips the rest of the chain", path: "/c", want: "/c"},
		{path: "/b", want: "/afterskip.php"},
		{name: "N until nothing matches", path: "/n/axbxcx", want: "/n/aybycy"},
		// Without DPI, each rule sees the path info of the pass
		// appended again (/pi is missing, so /axbxcx is path info):
		// Apache's documented per-directory behaviour, which never
		// converges here.
		{name: "N with the path info appended again", path: "/pi/axbxcx", status: 500},
		{name: "an endless N loop ends in 500", path: "/forever", status: 500},
		{path: "/five", status: 500, reason: "limit of 5 rounds"},
	})
}

func TestRewriteEnv(t *testing.T) {
	tree := site(t, map[string]string{
		".htaccess": `RewriteEngine On
RewriteRule ^ - [E=FOO:bar,E=GONE:1]
RewriteRule ^ - [E=!GONE]
RewriteRule ^(n)ame$ - [E=DYN_$1:a:b,E=EMPTY]
RewriteCond %{ENV:FOO} =bar
RewriteCond %{ENV:REDIRECT_STATUS} =""
RewriteRule ^env$ /env.php?foo=%{ENV:FOO} [L]
`,
		"env.php": "",
	})
	checkResolve(t, tree, []rq{
		{path: "/env", want: "/env.php", wantQ: "foo=bar", env: map[string]string{
			"FOO": "bar", "REDIRECT_FOO": "bar", "REDIRECT_STATUS": "200", "REDIRECT_URL": "/env",
			"GONE": "<unset>", "REDIRECT_GONE": "<unset>", "REDIRECT_QUERY_STRING": "<unset>",
		}},
		{path: "/other", want: "/other", env: map[string]string{"FOO": "bar", "REDIRECT_STATUS": "<unset>"}},
		{name: "the name is expanded too; the value is after the first colon", path: "/name", want: "/name",
			env: map[string]string{"DYN_n": "a:b", "EMPTY": ""}},
	})
}

// A rewrite to another URL runs the rules again on it, as Apache's
// internal redirect does; what stops it is a rule that leaves the URL
// alone (WordPress's ^index\.php$ - [L]), a relative rewrite to itself,
// END, or the redirect limit.
func TestRewriteLoops(t *testing.T) {
	files := map[string]string{
		"abs/.htaccess":   "RewriteEngine On\nRewriteRule ^(.*)$ /abs/index.php?p=$1 [L]\n",
		"rel/.htaccess":   "RewriteEngine On\nRewriteRule ^(.*)$ index.php?p=$1 [L]\n",
		"end/.htaccess":   "RewriteEngine On\nRewriteRule ^(.*)$ /end/index.php?p=$1 [END]\n",
		"guard/.htaccess": "RewriteEngine On\nRewriteRule ^index\\.php$ - [L]\nRewriteRule ^(.*)$ /guard/index.php?p=$1 [L]\n",
		"abs/index.php":   "", "rel/index.php": "", "end/index.php": "", "guard/index.php": "",
	}
	tree := site(t, files)
	checkResolve(t, tree, []rq{
		{name: "absolute rewrite to itself loops until the limit", path: "/abs/x", status: 500, reason: "more than 10 internal redirects"},
		{name: "relative rewrite to itself is served", path: "/rel/x", want: "/rel/index.php", wantQ: "p=index.php"},
		{name: "END stops the second pass", path: "/end/x", want: "/end/index.php", wantQ: "p=x"},
		{name: "a guard rule stops the second pass", path: "/guard/x", want: "/guard/index.php", wantQ: "p=x"},
	})
	tree.MaxRedirects = 1
	checkResolve(t, tree, []rq{
		{path: "/guard/x", want: "/guard/index.php", wantQ: "p=x"},
		{path: "/abs/x", status: 500, reason: "more than 1 internal redirects"},
	})
}

// No rewrite leaves the document root, and no '?' smuggled in through
// %3F splits a path.
func TestRewriteContainment(t *testing.T) {
	tree := site(t, map[string]string{
		"d/.htaccess": `RewriteEngine On
RewriteRule ^up/(.*)$ ../../$1 [L]
RewriteRule ^abs$ /../../etc/passwd [L]
RewriteRule ^inside$ sub/../target.php [L]
RewriteRule ^q/(.*)$ /q.php/$1 [L]
RewriteRule ^unsafe/(.*)$ /q.php/$1 [L,UnsafeAllow3F]
RewriteRule ^var$ /v.php%{QUERY_STRING} [L]
`,
		"d/target.php": "",
	})
	checkResolve(t, tree, []rq{
		{path: "/d/up/etc/passwd", status: 400, reason: "outside the document root"},
		{path: "/d/abs", status: 400},
		{path: "/d/inside", want: "/d/target.php"},
		{name: "decoded %3F from a back-reference", path: "/d/q/a?b", status: 403, reason: "UnsafeAllow3F"},
		{path: "/d/unsafe/a?b", want: "/q.php/a", wantQ: "b"},
		{name: "a '?' from a variable", path: "/d/var", query: "?x", status: 403},
		{name: "NUL", path: "/d/x\x00y", status: 400},
	})
}

// Rules that mpmd cannot evaluate are skipped, unless they deny: then
// they deny as if they matched.
func TestRewriteUnevaluable(t *testing.T) {
	tree := site(t, map[string]string{
		".htaccess": `RewriteEngine On
RewriteRule ^t$ /t.php [T=text/plain,L]
RewriteRule ^tf$ - [F,CO=a:b:example.com]
RewriteCond %{TIME_HOUR} ^0
RewriteRule ^night$ /night.php [L]
RewriteCond %{TIME_HOUR} ^0
RewriteRule ^closed$ - [F]
RewriteCond %{HTTP_HOST} ^x [OR]
RewriteCond %{LA-U:REMOTE_USER} x
RewriteRule ^lau$ /lau.php [L]
RewriteRule (?R)x /y.php [L]
RewriteRule ^map$ /${m:x} [L]
`,
		"deny/.htaccess": "RewriteEngine On\nRewriteRule (?R)z - [F]\n",
		"deny/x":         "",
	})
	checkResolve(t, tree, []rq{
		{path: "/t", want: "/t"},
		{path: "/tf", status: 403},
		{path: "/night", want: "/night"},
		{path: "/closed", status: 403},
		{path: "/lau", want: "/lau"},
		{path: "/map", want: "/map"},
		{name: "a deny whose pattern cannot be compiled denies everything", path: "/deny/x", status: 403},
	})
	f, err := Parse("x", []byte(`RewriteRule ^t$ /t.php [T=text/plain,L]
RewriteRule ^tf$ - [F,CO=a:b:example.com]
RewriteCond %{TIME_HOUR} ^0
RewriteRule ^closed$ - [F]
`))
	if err != nil {
		t.Fatal(err)
	}
	wants := []string{"flag T=text/plain is not supported: the rule is skipped", "flag CO=a:b:example.com is not applied; the rule still denies",
		"%{TIME_HOUR} is not available in mpmd: the rule denies as if it matched"}
	if len(f.NotApplied) != len(wants) {
		t.Fatalf("reports %v", f.NotApplied)
	}
	for i, w := range wants {
		if !strings.Contains(f.NotApplied[i].Why, w) {
			t.Errorf("report %v, want %q", f.NotApplied[i], w)
		}
	}
}

// Which directory's rules apply: the deepest file with mod_rewrite
// directives, relative to its own directory; RewriteEngine and
// RewriteBase are inherited.
func TestRewriteInheritance(t *testing.T) {
	tree := site(t, map[string]string{
		".htaccess":          "RewriteEngine On\nRewriteRule ^(.*)\\.html$ /render.php?page=$1 [L]\n",
		"plain/.htaccess":    "Options -Indexes\n",
		"own/.htaccess":      "RewriteRule ^(.*)\\.html$ own.php?p=$1 [L]\n",
		"off/.htaccess":      "RewriteEngine Off\n",
		"base/.htaccess":     "RewriteBase /mapped/\nRewriteRule ^(.*)\\.html$ page.php?p=$1 [L]\n",
		"base/sub/.htaccess": "RewriteRule ^(.*)\\.html$ sub.php?p=$1 [L]\n",
		"norules/.htaccess":  "RewriteEngine On\n",
		"render.php":         "", "own/own.php": "", "mapped/page.php": "",
	})
	checkResolve(t, tree, []rq{
		{path: "/a.html", want: "/render.php", wantQ: "page=a"},
		{name: "a file without rewrite directives leaves the parent's rules", path: "/plain/a.html", want: "/render.php", wantQ: "page=plain/a"},
		{name: "rules replace the parent's, the engine is inherited", path: "/own/a.html", want: "/own/own.php", wantQ: "p=a"},
		{path: "/own/own.php", want: "/own/own.php"},
		{path: "/off/a.html", want: "/off/a.html"},
		{name: "RewriteBase", path: "/base/a.html", want: "/mapped/page.php", wantQ: "p=a"},
		{name: "RewriteBase is not inherited", path: "/base/sub/a.html", want: "/base/sub/sub.php", wantQ: "p=a"},
		{name: "an empty rule set replaces the parent's", path: "/norules/a.html", want: "/norules/a.html"},
	})
}

func TestRewriteDirectoryWithoutSlash(t *testing.T) {
	tree := site(t, map[string]string{
		"app/.htaccess": "RewriteEngine On\nRewriteRule ^$ front.php [L]\n",
		"app/front.php": "",
	})
	checkResolve(t, tree, []rq{
		{name: "left to the directory redirect", path: "/app", want: "/app"},
		{path: "/app/", want: "/app/front.php"},
	})
}

// In a directory's rules, the path matched includes the path info after
// a file; after a substitution it is still appended, unless DPI.
func TestRewritePathInfo(t *testing.T) {
	rules := "RewriteEngine On\nRewriteRule ^p\\.php/ q.php%s\nRewriteRule ^q\\.php/extra$ /with-info.php [L]\n"
	tree := site(t, map[string]string{
		"keep/.htaccess": strings.ReplaceAll(rules, "%s", ""),
		"dpi/.htaccess":  strings.ReplaceAll(rules, "%s", " [DPI]"),
		"keep/p.php":     "", "dpi/p.php": "", "keep/q.php": "", "dpi/q.php": "",
	})
	checkResolve(t, tree, []rq{
		{path: "/keep/p.php/extra", want: "/with-info.php"},
		{path: "/dpi/p.php/extra", want: "/dpi/q.php"},
	})
}

func TestRewriteConditions(t *testing.T) {
	fsys := fstest.MapFS{
		".htaccess": {Data: []byte(`RewriteEngine On
RewriteCond %{QUERY_STRING} =debug
RewriteRule ^lex$ /debug.php [L]
RewriteCond %{QUERY_STRING} <b
RewriteRule ^lt$ /lt.php [L]
RewriteCond %{HTTP:Content-Length} -gt1000
RewriteRule ^upload$ /too-big.php [L]
RewriteCond %{REQUEST_FILENAME} -s
RewriteRule ^(.*)\.txt$ /nonempty.php?f=$1 [L]
RewriteCond %{REQUEST_FILENAME} -l
RewriteRule ^ /link.php [L]
RewriteCond %{DOCUMENT_ROOT}/cache%{REQUEST_URI}.html -f
RewriteRule ^ /cache%{REQUEST_URI}.html [L]
RewriteCond %{REQUEST_FILENAME} -x
RewriteRule ^ /exec.php [L]
RewriteCond %{http_host} ^$
RewriteRule ^lower$ /lower.php [L]
RewriteCond %{REMOTE_ADDR}:%{REMOTE_PORT}:%{SERVER_PORT}:%{SERVER_NAME}:%{REQUEST_SCHEME}:%{REQUEST_METHOD} ^(.*)$
RewriteRule ^vars$ /vars.php?v=%1 [L]
`)},
		"full.txt":              {Data: []byte("x")},
		"empty.txt":             {Data: nil},
		"link":                  {Data: []byte("full.txt"), Mode: fs.ModeSymlink},
		"cache/pages/home.html": {Data: []byte("<html>")},
		"run":                   {Data: []byte("#!"), Mode: 0o755},
	}
	var files Cache
	files.FS = fsys
	tree := &Tree{FS: fsys, Htaccess: files.Get, DocumentRoot: "/srv/www/"}
	checkResolve(t, tree, []rq{
		{path: "/lex", query: "debug", want: "/debug.php", wantQ: "debug"},
		{path: "/lex", query: "debugx", want: "/lex", wantQ: "debugx"},
		{path: "/lt", query: "a", want: "/lt.php", wantQ: "a"},
		{path: "/lt", query: "c", want: "/lt", wantQ: "c"},
		{path: "/upload", header: http.Header{"Content-Length": {"5000"}}, want: "/too-big.php"},
		{path: "/upload", header: http.Header{"Content-Length": {"50"}}, want: "/upload"},
		{path: "/full.txt", want: "/nonempty.php", wantQ: "f=full"},
		{path: "/empty.txt", want: "/empty.txt"},
		{path: "/link", want: "/link.php"},
		{path: "/pages/home", want: "/cache/pages/home.html"},
		{path: "/run", want: "/exec.php"},
		{name: "variable names are case-sensitive, as in Apache", path: "/lower", want: "/lower.php"},
		{path: "/vars", remote: "192.0.2.1:5555", https: true, want: "/vars.php", wantQ: "v=192.0.2.1:5555:443:example.com:https:GET"},
	})
}

func TestRedirectDirectives(t *testing.T) {
	tree := site(t, map[string]string{
		".htaccess": `Redirect 301 /old /new
Redirect /dir/ http://example.org/elsewhere/
Redirect gone /dead
RedirectPermanent /perm /p
RedirectMatch 301 ^/blog/(\d+)/(.*)$ /posts/$2?year=$1
RedirectMatch 403 \.bak$
RedirectMatch seeother ^/amp$ /x?&
`,
		"sub/.htaccess": "Redirect 302 /sub/a /first\n",
		"older":         "",
	})
	checkResolve(t, tree, []rq{
		{path: "/old", status: 301, location: "/new"},
		{path: "/old/x/y", query: "a=1", status: 301, location: "/new/x/y?a=1"},
		{path: "/old//x", status: 301, location: "/new/x"},
		{name: "a prefix ends at a segment", path: "/older", want: "/older"},
		{path: "/dir/a b", status: 302, location: "http://example.org/elsewhere/a%20b"},
		{path: "/dead", status: 410},
		{path: "/perm", status: 301, location: "/p"},
		{path: "/blog/2020/hello", query: "utm=1", status: 301, location: "/posts/hello?year=2020"},
		{path: "/x.bak", status: 403},
		{name: "& is the whole match", path: "/amp", status: 303, location: "/x?/amp"},
		{name: "the deepest file's first", path: "/sub/a", status: 302, location: "/first"},
	})
}

func TestTemplate(t *testing.T) {
	tmpl, why := parseTemplate(`a\$1$1%2%{HTTP_HOST}%{ENV:x}%{HTTP:X-Y}%{unknown}${map:k}%{open`)
	if why == "" {
		t.Error("${map:k} is not reported")
	}
	var kinds []tmplKind
	for _, p := range tmpl {
		kinds = append(kinds, p.kind)
	}
	want := []tmplKind{tmplLit, tmplRuleRef, tmplCondRef, tmplVar, tmplVar, tmplVar, tmplVar, tmplLit}
	if len(kinds) != len(want) {
		t.Fatalf("parts %+v", tmpl)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("parts %+v", tmpl)
		}
	}
	if tmpl[0].lit != "a$1" || tmpl[4].name != "ENV:x" || tmpl[5].name != "HTTP:X-Y" || tmpl[6].name != "unknown" || tmpl[7].lit != "%{open" {
		t.Errorf("parts %+v", tmpl)
	}
}

// A pattern that backtracks catastrophically gives up on its match: a
// rule that denies then denies, another does not match; and a request
// whose rules spend the whole budget fails with 500.
func TestRewriteBudget(t *testing.T) {
	slow := `^(a+)+\1$`
	tree := site(t, map[string]string{
		"deny/.htaccess":  "RewriteEngine On\nRewriteRule " + slow + " - [F]\n",
		"route/.htaccess": "RewriteEngine On\nRewriteRule " + slow + " /matched.php [L]\n",
		"much/.htaccess":  "RewriteEngine On\n" + strings.Repeat("RewriteRule "+slow+" /matched.php [L]\n", 45),
		"loop/.htaccess":  "RewriteEngine On\n" + strings.Repeat("RewriteRule ^x - \n", 500) + "RewriteRule ^x x [N=100000]\n",
	})
	in := "/" + strings.Repeat("a", 40) + "b"
	checkResolve(t, tree, []rq{
		{path: "/deny" + in, status: 403},
		{path: "/route" + in, want: "/route" + in},
		{path: "/much" + in, status: 500, reason: "too much work"},
		{path: "/loop/x", status: 500, reason: "too much work"},
	})
}

func TestSafeLocation(t *testing.T) {
	tree := site(t, map[string]string{
		".htaccess": "RewriteEngine On\nRewriteRule ^ne/([^/]*)$ /n/$1 [R,NE,L]\nRedirect 302 /r \"/x\ty\"\n",
	})
	checkResolve(t, tree, []rq{
		{path: "/ne/a\r\nSet-Cookie: x", status: 302, location: "/n/a%0D%0ASet-Cookie:%20x"},
		{path: "/r", status: 302, location: "/x%09y"},
	})
}
