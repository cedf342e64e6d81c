package htaccess

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		lines []int // the lines of the *SyntaxErrors, in order
		msg   string
	}{
		{"unclosed IfModule", "RewriteEngine On\n<IfModule mod_rewrite.c>\nRewriteRule ^ index.php\n", []int{2}, "<IfModule> is not closed"},
		{"two unclosed", "<Files a>\n<IfModule x>\n", []int{1, 2}, "not closed"},
		{"stray close", "Require all denied\n</Files>\n", []int{2}, "without an opening"},
		{"mismatched close", "<Files a>\n<IfModule x>\n</Files>\n", []int{3}, "(opened at line 2) was expected"},
		{"no closing bracket", "<IfModule mod_rewrite.c\n</IfModule>\n", []int{1}, "lacks its closing '>'"},
		{"Directory is server-only", "<Directory /var/www>\n</Directory>\n", []int{1}, "not allowed in .htaccess"},
		{"unknown section", "<Frobnicate>\n</Frobnicate>\n", []int{1}, "unknown section"},
		{"Require without provider", "Require\n", []int{1}, "needs a provider"},
		{"Require all maybe", "Require all maybe\n", []int{1}, "granted or denied"},
		{"Require ip host name", "Require ip example.com\n", []int{1}, "not an IP address"},
		{"unknown provider", "Require frobnicated\n", []int{1}, "unknown authorization provider"},
		{"negated Require at top level", "Require not ip 10.0.0.1\n", []int{1}, "no effect"},
		{"RequireNone at the top", "<RequireNone>\nRequire ip 10.0.0.1\n</RequireNone>\n", []int{1}, "outside <RequireAll>"},
		{"negated Require in RequireAny", "<RequireAny>\nRequire not ip 10.0.0.1\n</RequireAny>\n", []int{2}, "outside <RequireAll>"},
		{"Order typo", "Order allow,dney\n", []int{1}, "Order takes"},
		{"Deny without from", "Deny all\n", []int{1}, "followed by 'from'"},
		{"Satisfy typo", "Satisfy some\n", []int{1}, "Satisfy takes"},
		{"RewriteEngine maybe", "RewriteEngine maybe\n", []int{1}, "on or off"},
		{"relative RewriteBase", "RewriteBase blog/\n", []int{1}, "starts with '/'"},
		{"RewriteRule with one argument", "RewriteRule ^x\n", []int{1}, "takes a pattern"},
		{"bad flag delimiters", "RewriteRule ^ x L\n", []int{1}, "brackets"},
		{"unknown flag", "RewriteRule ^ x [L,Frob]\n", []int{1}, "unknown flag"},
		{"bad R status", "RewriteRule ^ x [R=200]\n", []int{1}, "invalid status"},
		{"bad condition flag", "RewriteCond %{HTTPS} on [XYZ]\nRewriteRule ^ x\n", []int{1}, "unknown flag"},
		{"RewriteMap", "RewriteMap m txt:/x\n", []int{1}, "not allowed"},
		{"Redirect without target", "Redirect 301 /old\n", []int{1}, "takes a path and a target"},
		{"Redirect gone with target", "Redirect gone /old /new\n", []int{1}, "takes a path and no URL"},
		{"Redirect relative target", "Redirect /old new.html\n", []int{1}, "neither a URL"},
		{"NUL byte", "Require all denied\x00\n", []int{1}, "NUL"},
		{"Limit in Limit", "<Limit GET>\n<Limit POST>\n</Limit>\n</Limit>\n", []int{2}, "inside <Limit>"},
		{"IfVersion garbage", "<IfVersion >= two>\n</IfVersion>\n", []int{1}, "bad version"},
		{"errors after errors", "<Files>\n</Files>\nOrder nope\n<IfModule a>\n", []int{1, 3, 4}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("x/.htaccess", []byte(tt.input))
			if err == nil {
				t.Fatalf("no error; NotApplied %v", f.NotApplied)
			}
			if f != nil {
				t.Errorf("a *File with an error")
			}
			var lines []int
			for _, e := range flatten(err) {
				var se *SyntaxError
				if !errors.As(e, &se) {
					t.Fatalf("%v is not a *SyntaxError", e)
				}
				if se.File != "x/.htaccess" {
					t.Errorf("File %q", se.File)
				}
				lines = append(lines, se.Line)
			}
			if !slices.Equal(lines, tt.lines) {
				t.Errorf("error lines %v, want %v: %v", lines, tt.lines, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			if want := "x/.htaccess:" + strconv.Itoa(tt.lines[0]) + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
		})
	}
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestParseTooLarge(t *testing.T) {
	big := []byte("# " + strings.Repeat("x", MaxFileSize) + "\n")
	f, err := Parse("big", big)
	if f != nil || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Parse of %d bytes: %v, %v", len(big), f, err)
	}
	ok := []byte(strings.Repeat("#\n", MaxFileSize/2))
	if _, err := Parse("ok", ok); err != nil {
		t.Fatalf("Parse of %d bytes: %v", len(ok), err)
	}
}

// Everything a file does that mpmd does not is reported with its line
// and text, and why.
func TestNotApplied(t *testing.T) {
	input := `# A typical shared-hosting file.
Options -Indexes +FollowSymLinks
php_value upload_max_filesize 64M
php_flag display_errors Off
AddHandler application/x-httpd-php81 .php
SetEnv APP_ENV production
ErrorDocument 404 /404.html
DirectoryIndex index.php index.html
Header set X-Frame-Options "SAMEORIGIN"
<IfModule mod_expires.c>
  ExpiresActive On
  ExpiresByType image/png "access plus 1 month"
</IfModule>
<IfModule mod_headers.c>
  Header always set X-Content-Type-Options nosniff
</IfModule>
<FilesMatch "\.(js|css)$">
  Header set Cache-Control "max-age=3600"
</FilesMatch>
Frobnicate yes
RewriteOptions inherit
RewriteCond %{HTTPS} off
<IfModule "mod_rewrite.c">
RewriteEngine On
</IfModule>
`
	f, err := Parse("site/.htaccess", []byte(input))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		line int
		text string
		why  string
	}{
		{2, "Options -Indexes +FollowSymLinks", "never lists directories"},
		{3, "php_value upload_max_filesize 64M", ".user.ini"},
		{4, "php_flag display_errors Off", ".user.ini"},
		{5, "AddHandler application/x-httpd-php81 .php", "runs files ending in .php"},
		{6, "SetEnv APP_ENV production", "environment"},
		{7, "ErrorDocument 404 /404.html", "error"},
		{8, "DirectoryIndex index.php index.html", "index files"},
		{9, `Header set X-Frame-Options "SAMEORIGIN"`, "headers"},
		{10, "<IfModule mod_expires.c>", "the 2 directives inside are skipped"},
		{14, "<IfModule mod_headers.c>", "the directive inside is skipped"},
		{18, `Header set Cache-Control "max-age=3600"`, "headers"},
		{20, "Frobnicate yes", "unknown directive"},
		{21, "RewriteOptions inherit", "RewriteOptions"},
		{22, "RewriteCond %{HTTPS} off", "without a RewriteRule"},
	}
	if !f.rewrite.engine {
		t.Error(`<IfModule "mod_rewrite.c"> (quoted) was not applied`)
	}
	if len(f.NotApplied) != len(want) {
		t.Errorf("%d reports, want %d:", len(f.NotApplied), len(want))
		for _, d := range f.NotApplied {
			t.Log(d)
		}
	}
	for i, w := range want {
		if i >= len(f.NotApplied) {
			break
		}
		d := f.NotApplied[i]
		if d.Line != w.line || d.Text != w.text || !strings.Contains(d.Why, w.why) {
			t.Errorf("report %d = %v, want line %d %q (%q)", i, d, w.line, w.text, w.why)
		}
	}
}

// Reports come in line order, even those made at the end of the file.
func TestNotAppliedOrder(t *testing.T) {
	f, err := Parse("x", []byte("RewriteCond %{HTTPS} on\nRewriteRule ^ - [F,T=x]\nRewriteCond %{HTTPS} off\nOptions None\n"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, d := range f.NotApplied {
		lines = append(lines, d.Line)
	}
	if !slices.Equal(lines, []int{2, 3, 4}) {
		t.Errorf("lines %v, want [2 3 4]: %v", lines, f.NotApplied)
	}
}

func TestContinuationLines(t *testing.T) {
	f, err := Parse("x", []byte("# a comment \\\n\nRequire \\\n  all \\\n  denied\nFrob\\\\\nOther\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.dir.authz) != 1 || f.dir.authz[0].d.Line != 3 || f.dir.authz[0].grant {
		t.Fatalf("the continued Require: %+v", f.dir.authz)
	}
	// "Frob\\" ends in a doubled backslash, which does not continue.
	var lines []int
	for _, d := range f.NotApplied {
		lines = append(lines, d.Line)
	}
	if !slices.Equal(lines, []int{6, 7}) {
		t.Errorf("reported lines %v, want [6 7]: %v", lines, f.NotApplied)
	}
}

func TestWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`a b  c`, []string{"a", "b", "c"}},
		{`"a b" 'c d'`, []string{"a b", "c d"}},
		{`"a \"q\" b"`, []string{`a "q" b`}},
		{`"a\\b"`, []string{`a\b`}},
		{`a\\b c\d`, []string{`a\b`, `c\d`}},
		{`"unterminated here`, []string{"unterminated here"}},
		{`"x"y`, []string{"x", "y"}},
		{"\t a\t", []string{"a"}},
		{``, nil},
	}
	for _, tt := range tests {
		if got := words(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("words(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRewriteArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`^(.*)$ index.php?q=$1 [L,QSA]`, []string{"^(.*)$", "index.php?q=$1", "[L,QSA]"}},
		{`"^a b$" "x y" [L]`, []string{"^a b$", "x y", "[L]"}},
		{`^a\ b$ x\ y`, []string{`^a\ b$`, `x\ y`}},
		{`^ index.php [L] # trailing text is ignored`, []string{"^", "index.php", "[L]"}},
		{`'^\.ht' - [F]`, []string{`^\.ht`, "-", "[F]"}},
		{`%{HTTP:Authorization} .`, []string{"%{HTTP:Authorization}", "."}},
		{`^`, []string{"^"}},
	}
	for _, tt := range tests {
		if got := rewriteArgs(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("rewriteArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIfVersion(t *testing.T) {
	tests := []struct {
		arg  string
		want bool
	}{
		{">= 2.4", true}, {"< 2.4", false}, {"2.4", true}, {"= 2.2", false}, {"!< 2.4", true},
		{"> 2.4.10", true}, {"<= 2.3.99", false}, {"~ ^2\\.4", true}, {"/^2\\.2/", false}, {">= 3", false},
	}
	for _, tt := range tests {
		got, err := versionMatches(tt.arg)
		if err != nil || got != tt.want {
			t.Errorf("versionMatches(%q) = %v, %v; want %v", tt.arg, got, err, tt.want)
		}
	}
}

func TestModulePresent(t *testing.T) {
	for name, want := range map[string]bool{
		"mod_rewrite.c": true, "rewrite_module": true, "mod_authz_core.c": true, "mod_access_compat.c": true,
		"mod_alias.c": true, "alias_module": true, "mod_auth_basic.c": true, "authn_file_module": true,
		"mod_authz_groupfile.c": true, "mod_dir.c": true,
		"mod_headers.c": false, "mod_expires.c": false, "mod_php7.c": false, "php_module": false,
		"mod_negotiation.c": false, "mod_deflate.c": false, "mod_ssl.c": false, "mod_security2.c": false,
	} {
		if got := modulePresent(name); got != want {
			t.Errorf("modulePresent(%q) = %v, want %v", name, got, want)
		}
	}
}
