package htaccess

import (
	"strings"
	"testing"
)

// Each case is a document root (the files, .htaccess among them) and
// requests with the status they must get: 0 served, 403 denied.
func TestAccess(t *testing.T) {
	const (
		lan     = "10.1.2.3:4000"
		local   = "127.0.0.1:4000"
		local6  = "[::1]:4000"
		outside = "203.0.113.9:4000"
	)
	tests := []struct {
		name  string
		files map[string]string
		reqs  []rq
	}{
		{
			name:  "Require all denied covers the directory and below",
			files: map[string]string{"priv/.htaccess": "Require all denied\n", "priv/a/b.txt": "x", "pub.txt": "x"},
			reqs: []rq{
				{path: "/priv/a/b.txt", status: 403, reason: "priv/.htaccess:1: Require all denied"},
				{path: "/priv/", status: 403}, {path: "/priv", status: 403}, {path: "/priv/missing", status: 403},
				{path: "/pub.txt", want: "/pub.txt"},
			},
		},
		{
			name:  "Deny from all without Order",
			files: map[string]string{"priv/.htaccess": "Deny from all\n", "priv/x": "x"},
			reqs:  []rq{{path: "/priv/x", status: 403}, {path: "/priv/x", remote: local, status: 403}},
		},
		{
			name:  "Order allow,deny and Deny from all",
			files: map[string]string{"priv/.htaccess": "Order allow,deny\nDeny from all\n", "priv/x": "x"},
			reqs:  []rq{{path: "/priv/x", status: 403, reason: "Deny from all"}, {path: "/priv/x", remote: local, status: 403}},
		},
		{
			name:  "Order allow,deny alone allows no one",
			files: map[string]string{"priv/.htaccess": "Order allow,deny\n", "priv/x": "x"},
			reqs:  []rq{{path: "/priv/x", status: 403, reason: "priv/.htaccess:1: Order allow,deny"}},
		},
		{
			name:  "Order allow,deny with Allow from all",
			files: map[string]string{".htaccess": "Order allow,deny\nAllow from all\n", "x": "x"},
			reqs:  []rq{{path: "/x", want: "/x"}},
		},
		{
			name: "an allow list is not deny-all: Order deny,allow, Deny from all, Allow from 127.0.0.1",
			files: map[string]string{
				"admin/.htaccess": "Order deny,allow\nDeny from all\nAllow from 127.0.0.1 ::1 10.1\n",
				"admin/x":         "x",
			},
			reqs: []rq{
				{path: "/admin/x", remote: local, want: "/admin/x"},
				{path: "/admin/x", remote: local6, want: "/admin/x"},
				{path: "/admin/x", remote: "[::ffff:127.0.0.1]:1", want: "/admin/x"},
				{path: "/admin/x", remote: lan, want: "/admin/x"},
				{path: "/admin/x", remote: outside, status: 403},
				{name: "unknown client", path: "/admin/x", status: 403},
			},
		},
		{
			name: "Order allow,deny with an allow list and a deny list",
			files: map[string]string{
				".htaccess": "Order Allow,Deny\nAllow from 10.0.0.0/255.0.0.0\nDeny from 10.1.0.0/16\n",
				"x":         "x",
			},
			reqs: []rq{
				{path: "/x", remote: "10.9.9.9:1", want: "/x"},
				{path: "/x", remote: lan, status: 403},
				{path: "/x", remote: outside, status: 403},
			},
		},
		{
			name: "a deeper Require all granted re-opens",
			files: map[string]string{
				".htaccess":               "Require all denied\n",
				"public/.htaccess":        "Require all granted\n",
				"public/x":                "x",
				"public/deeper/y":         "y",
				"secret":                  "s",
				"public/closed/.htaccess": "Require all denied\n",
				"public/closed/z":         "z",
			},
			reqs: []rq{
				{path: "/secret", status: 403}, {path: "/", status: 403},
				{path: "/public/x", want: "/public/x"}, {path: "/public/deeper/y", want: "/public/deeper/y"},
				{path: "/public/closed/z", status: 403},
			},
		},
		{
			// Apache 2.4 keeps the two mechanisms apart: a Require
			// does not lift a Deny, an Allow does.
			name: "Require all granted does not lift a parent's Deny from all; Allow from all does",
			files: map[string]string{
				".htaccess":         "Deny from all\n",
				"require/.htaccess": "Require all granted\n",
				"require/x":         "x",
				"allow/.htaccess":   "Allow from all\n",
				"allow/x":           "x",
			},
			reqs: []rq{{path: "/require/x", status: 403}, {path: "/allow/x", want: "/allow/x"}},
		},
		{
			name: "IfModule: present modules apply, their negations do not, absent modules are skipped",
			files: map[string]string{
				"a/.htaccess": "<IfModule mod_authz_core.c>\nRequire all denied\n</IfModule>\n",
				"b/.htaccess": "<IfModule !mod_authz_core.c>\nRequire all denied\n</IfModule>\n",
				"c/.htaccess": "<IfModule !mod_access_compat.c>\nDeny from all\n</IfModule>\n",
				"d/.htaccess": "<IfModule mod_headers.c>\nRequire all denied\n</IfModule>\n",
				"e/.htaccess": "<IfModule !mod_php7.c>\nRequire all denied\n</IfModule>\n",
				"f/.htaccess": "<IfModule authz_core_module>\n<IfModule rewrite_module>\nRequire all denied\n</IfModule>\n</IfModule>\n",
				"a/x":         "", "b/x": "", "c/x": "", "d/x": "", "e/x": "", "f/x": "",
			},
			reqs: []rq{
				{path: "/a/x", status: 403}, {path: "/b/x", want: "/b/x"}, {path: "/c/x", want: "/c/x"},
				{path: "/d/x", want: "/d/x"}, {path: "/e/x", status: 403}, {path: "/f/x", status: 403},
			},
		},
		{
			name: "Files by name, in the directory and below",
			files: map[string]string{
				".htaccess":          "<Files wp-config.php>\nOrder allow,deny\nDeny from all\n</Files>\n<Files \"xmlrpc.php\">\nRequire all denied\n</Files>\n",
				"wp-config.php":      "<?php",
				"xmlrpc.php":         "<?php",
				"index.php":          "<?php",
				"sub/wp-config.php":  "<?php",
				"wp-config.php.bak/": "",
			},
			reqs: []rq{
				{path: "/wp-config.php", status: 403, reason: "(in the <Files> of line 1)"},
				{path: "/sub/wp-config.php", status: 403},
				{path: "/xmlrpc.php", status: 403},
				{path: "/index.php", want: "/index.php"},
				{name: "a missing file is matched by the name it asks for", path: "/sub/xmlrpc.php", status: 403},
				{path: "/wp-config.php.bak/", want: "/wp-config.php.bak/"},
			},
		},
		{
			name: "FilesMatch and Files ~",
			files: map[string]string{
				".htaccess": "<FilesMatch \"\\.(env|log|ini)$\">\nRequire all denied\n</FilesMatch>\n" +
					"<Files ~ \"\\.(bak|sql)$\">\nDeny from all\n</Files>\n<Files *.inc>\nRequire all denied\n</Files>\n",
				".env": "SECRET=1", "logs/error.log": "x", "php.ini": "x", "db.sql": "x", "a.bak": "x",
				"lib.inc": "x", "index.php": "x", "env.txt": "x",
			},
			reqs: []rq{
				{path: "/.env", status: 403}, {path: "/logs/error.log", status: 403}, {path: "/php.ini", status: 403},
				{path: "/db.sql", status: 403}, {path: "/a.bak", status: 403}, {path: "/lib.inc", status: 403},
				{path: "/index.php", want: "/index.php"}, {path: "/env.txt", want: "/env.txt"},
			},
		},
		{
			// WordPress hardening for wp-includes: PHP files denied but
			// one, re-opened by a later <Files>.
			name: "a later Files section re-opens",
			files: map[string]string{
				"wp-includes/.htaccess":                 "<Files *.php>\ndeny from all\n</Files>\n<Files wp-tinymce.php>\nallow from all\n</Files>\n<Files ms-files.php>\nallow from all\n</Files>\n",
				"wp-includes/version.php":               "<?php",
				"wp-includes/js/tinymce/wp-tinymce.php": "<?php",
				"wp-includes/js/tinymce/plugins/x.js":   "js",
			},
			reqs: []rq{
				{path: "/wp-includes/version.php", status: 403},
				{path: "/wp-includes/js/tinymce/wp-tinymce.php", want: "/wp-includes/js/tinymce/wp-tinymce.php"},
				{path: "/wp-includes/js/tinymce/plugins/x.js", want: "/wp-includes/js/tinymce/plugins/x.js"},
			},
		},
		{
			// RE2 and the fallback both refuse (?R): the deny cannot be
			// evaluated, so everything under the directory is denied,
			// and a deeper file cannot re-open it.
			name: "a Files pattern that cannot be compiled fails closed",
			files: map[string]string{
				"app/.htaccess":      "<FilesMatch \"(?R)\\.bak$\">\nRequire all denied\n</FilesMatch>\n",
				"app/index.php":      "<?php",
				"app/open/.htaccess": "Require all granted\n",
				"app/open/x":         "x",
				"elsewhere.txt":      "x",
			},
			reqs: []rq{
				{path: "/app/index.php", status: 403, reason: "fail closed"},
				{path: "/app/open/x", status: 403},
				{path: "/elsewhere.txt", want: "/elsewhere.txt"},
			},
		},
		{
			name: "access control inside <If> fails closed",
			files: map[string]string{
				"app/.htaccess": "<If \"%{REQUEST_URI} =~ m#/\\.git#\">\nRequire all denied\n</If>\n",
				"app/x":         "x",
			},
			reqs: []rq{{path: "/app/x", status: 403, reason: "<If"}},
		},
		{
			name: "basic authentication fails closed",
			files: map[string]string{
				"admin/.htaccess":  "AuthType Basic\nAuthName \"Restricted\"\nAuthUserFile /home/alice/.htpasswd\nRequire valid-user\n",
				"admin/index.php":  "<?php",
				"stats/.htaccess":  "<IfModule mod_auth_basic.c>\nAuthType Basic\nAuthUserFile /x\nRequire user alice\n</IfModule>\n",
				"stats/index.html": "x",
			},
			reqs: []rq{
				{path: "/admin/index.php", status: 403, reason: "needs a user name and password"},
				{path: "/admin/", remote: local, status: 403},
				{path: "/stats/index.html", status: 403},
			},
		},
		{
			name: "Satisfy Any: the address, or the password that mpmd cannot check",
			files: map[string]string{
				"admin/.htaccess": "AuthType Basic\nAuthUserFile /x\nRequire valid-user\nOrder deny,allow\nDeny from all\nAllow from 10.0.0.0/8\nSatisfy Any\n",
				"admin/x":         "x",
			},
			reqs: []rq{{path: "/admin/x", remote: lan, want: "/admin/x"}, {path: "/admin/x", remote: outside, status: 403}},
		},
		{
			name: "Require ip, local, not ip, RequireAll, RequireAny",
			files: map[string]string{
				"ip/.htaccess":    "Require ip 10.1 192.0.2.0/24 2001:db8::/32\n",
				"local/.htaccess": "Require local\n",
				"block/.htaccess": "<RequireAll>\nRequire all granted\nRequire not ip 203.0.113.0/24\n</RequireAll>\n",
				"any/.htaccess":   "<RequireAny>\nRequire ip 10.1.2.3\n<RequireAll>\nRequire method GET\nRequire ip 203.0.113.9\n</RequireAll>\n</RequireAny>\n",
				"ip/x":            "", "local/x": "", "block/x": "", "any/x": "",
			},
			reqs: []rq{
				{path: "/ip/x", remote: lan, want: "/ip/x"}, {path: "/ip/x", remote: "192.0.2.77:1", want: "/ip/x"},
				{path: "/ip/x", remote: "[2001:db8::5]:1", want: "/ip/x"}, {path: "/ip/x", remote: outside, status: 403},
				{path: "/ip/x", status: 403},
				{path: "/local/x", remote: local, want: "/local/x"}, {path: "/local/x", remote: local6, want: "/local/x"},
				{path: "/local/x", remote: lan, status: 403},
				{path: "/block/x", remote: lan, want: "/block/x"}, {path: "/block/x", remote: outside, status: 403},
				{path: "/any/x", remote: lan, want: "/any/x"}, {path: "/any/x", remote: outside, want: "/any/x"},
				{path: "/any/x", method: "POST", remote: outside, status: 403}, {path: "/any/x", remote: "198.51.100.1:1", status: 403},
			},
		},
		{
			// mod_authz_core: a file's Require lines replace its
			// parent's whatever their methods, and lines limited to
			// other methods grant (apply_authz_sections under the
			// top-level AND). mod_access_compat: same replacement, and
			// no line for the method allows.
			name: "Limit replaces the parent's configuration for every method",
			files: map[string]string{
				"r/.htaccess":    "Require all denied\n",
				"r/w/.htaccess":  "<Limit POST>\nRequire all denied\n</Limit>\n",
				"d/.htaccess":    "Deny from all\n",
				"d/w/.htaccess":  "<Limit POST>\nDeny from all\n</Limit>\n",
				"any/.htaccess":  "Require all granted\n<Limit DELETE>\nRequire all denied\n</Limit>\n",
				"none/.htaccess": "<RequireAll>\nRequire all granted\n<RequireNone>\nRequire ip 203.0.113.0/24\nRequire method TRACE\n</RequireNone>\n</RequireAll>\n",
				"r/e/.htaccess":  "<RequireAll>\n</RequireAll>\n",
				"r/w/x":          "", "d/w/x": "", "any/x": "", "none/x": "", "r/e/x": "",
			},
			reqs: []rq{
				{path: "/r/w/x", method: "GET", want: "/r/w/x"}, {path: "/r/w/x", method: "POST", status: 403},
				{path: "/d/w/x", method: "GET", want: "/d/w/x"}, {path: "/d/w/x", method: "POST", status: 403},
				{name: "a grant for all methods wins in the implicit RequireAny", path: "/any/x", method: "DELETE", want: "/any/x"},
				{path: "/none/x", remote: lan, want: "/none/x"}, {path: "/none/x", remote: outside, status: 403},
				{path: "/none/x", method: "TRACE", remote: lan, status: 403},
				{name: "an empty RequireAll is ignored, so the root's denial stands", path: "/r/e/x", status: 403},
			},
		},
		{
			name: "Require host and Allow from a host name never grant",
			files: map[string]string{
				"h/.htaccess": "Require host example.com\n",
				"d/.htaccess": "Order deny,allow\nDeny from all\nAllow from .example.com\n",
				"h/x":         "", "d/x": "",
			},
			reqs: []rq{{path: "/h/x", remote: local, status: 403}, {path: "/d/x", remote: local, status: 403}},
		},
		{
			name: "Limit and LimitExcept",
			files: map[string]string{
				"ro/.htaccess":   "<LimitExcept GET HEAD>\nRequire all denied\n</LimitExcept>\n",
				"post/.htaccess": "<Limit POST PUT>\nOrder deny,allow\nDeny from all\n</Limit>\n",
				"cpanel/.htaccess": "<Limit GET POST>\norder deny,allow\ndeny from all\nallow from all\n</Limit>\n" +
					"<Limit PUT DELETE>\norder deny,allow\ndeny from all\n</Limit>\n",
				"ro/x": "", "post/x": "", "cpanel/x": "",
			},
			reqs: []rq{
				{path: "/ro/x", method: "GET", want: "/ro/x"}, {path: "/ro/x", method: "HEAD", want: "/ro/x"},
				{path: "/ro/x", method: "POST", status: 403},
				{path: "/post/x", method: "GET", want: "/post/x"}, {path: "/post/x", method: "POST", status: 403},
				{path: "/cpanel/x", method: "GET", want: "/cpanel/x"}, {path: "/cpanel/x", method: "POST", want: "/cpanel/x"},
				{path: "/cpanel/x", method: "DELETE", status: 403},
			},
		},
		{
			name: ".ht files are never served",
			files: map[string]string{
				".htaccess": "Require all granted\n<Files .htpasswd>\nRequire all granted\n</Files>\n",
				".htpasswd": "alice:$apr1$", "sub/.htaccess.bak": "x",
			},
			reqs: []rq{
				{path: "/.htaccess", status: 403}, {path: "/.htpasswd", status: 403},
				{path: "/sub/.htaccess.bak", status: 403}, {path: "/.HTACCESS", want: "/.HTACCESS"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree := site(t, tt.files)
			checkResolve(t, tree, tt.reqs)
			// Access must agree with Resolve when no rewriting happens.
			for _, c := range tt.reqs {
				got := tree.Access(c.request())
				if (got.Status == 403) != (c.status == 403) {
					t.Errorf("Access(%s %s from %q): status %d, Resolve's case wants %d", c.method, c.path, c.remote, got.Status, c.status)
				}
			}
		})
	}
}

// Without any .htaccess, nothing is denied and nothing rewritten.
func TestNoFiles(t *testing.T) {
	tree := &Tree{}
	for _, p := range []string{"/", "/a", "/a/b/", "/index.php/x"} {
		got := tree.Resolve(&Request{Path: p, Query: "q=1"})
		if got.Status != 0 || got.Path != p || got.Query != "q=1" || got.Env != nil {
			t.Errorf("Resolve(%q) = %+v", p, got)
		}
	}
}

func TestParseIP(t *testing.T) {
	tests := []struct {
		in   string
		want string // the prefix; "" for a host name
		err  bool
	}{
		{"192.0.2.7", "192.0.2.7/32", false},
		{"10", "10.0.0.0/8", false},
		{"10.1", "10.1.0.0/16", false},
		{"10.1.", "10.1.0.0/16", false},
		{"10.1.2", "10.1.2.0/24", false},
		{"10.0.0.0/8", "10.0.0.0/8", false},
		{"10.1.2.3/8", "10.0.0.0/8", false},
		{"10.1.0.0/255.255.0.0", "10.1.0.0/16", false},
		{"2001:db8::/32", "2001:db8::/32", false},
		{"::1", "::1/128", false},
		{"::ffff:10.1.2.3", "10.1.2.3/32", false},
		{"10.0.0.0/255.0.255.0", "", true},
		{"10.0.0.0/33", "", true},
		{"fe80::1%eth0", "", true},
		{"example.com", "", false},
		{".example.com", "", false},
		{"300.1", "", false},
		{"1.2.3.4.5", "", false},
	}
	for _, tt := range tests {
		pfx, ok, err := parseIP(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("parseIP(%q): err %v, want error %v", tt.in, err, tt.err)
			continue
		}
		got := ""
		if ok {
			got = pfx.Masked().String()
		}
		if got != tt.want {
			t.Errorf("parseIP(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A denial names the file and line that decided it.
func TestAccessReason(t *testing.T) {
	tree := site(t, map[string]string{"a/.htaccess": "# comment\n\nOrder allow,deny\nDeny from all\n", "a/x": ""})
	got := tree.Resolve(&Request{Path: "/a/x"})
	if got.Status != 403 || !strings.Contains(got.Reason, "a/.htaccess:4: Deny from all") {
		t.Errorf("got %+v", got)
	}
}
