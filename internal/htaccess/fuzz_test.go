package htaccess

import (
	"errors"
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func addSeeds(f *testing.F, add func(string)) {
	names, _ := filepath.Glob("testdata/*.htaccess")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		add(string(b))
	}
	for _, s := range []string{
		"Require all denied\n",
		"<Files ~ \"\\.(?!x)\">\nDeny from all\n</Files>\n",
		"RewriteEngine On\nRewriteCond %{REQUEST_URI}::$0 ^(/.+)/(.*)::\\2$\nRewriteRule ^(.*)$ %1/$1?x=%2 [QSA,L]\n",
		"RewriteEngine On\nRewriteRule ^(.*)$ ../$1 [N]\n",
		"Redirect 301 /a http://x/\nRedirectMatch 404 (.*)\n",
		"<IfModule !x>\n<Limit GET>\nOrder deny,allow\nDeny from all\nAllow from 10.1\n</Limit>\n</IfModule>\n",
	} {
		add(s)
	}
}

// FuzzParse: Parse never panics, errors are *SyntaxError with a line in
// the file (or ErrTooLarge), and every report points into the file.
func FuzzParse(f *testing.F) {
	addSeeds(f, func(s string) { f.Add([]byte(s)) })
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("f", data)
		lines := strings.Count(string(data), "\n") + 1
		if err != nil {
			if file != nil {
				t.Fatal("a *File with an error")
			}
			if errors.Is(err, ErrTooLarge) {
				return
			}
			for _, e := range flatten(err) {
				var se *SyntaxError
				if !errors.As(e, &se) || se.Line < 1 || se.Line > lines {
					t.Fatalf("error %v (of %d lines)", e, lines)
				}
			}
			return
		}
		for _, d := range file.NotApplied {
			if d.Line < 1 || d.Line > lines || d.Text == "" || d.Why == "" {
				t.Fatalf("report %+v (of %d lines)", d, lines)
			}
		}
		// Deciding requests with it must not panic either.
		tree := fuzzTree(file)
		for _, p := range []string{"/", "/index.php", "/a/b/", "/sub/x.txt", "/sub/.env", "/wp-admin"} {
			checkResult(t, tree, &Request{Path: p, Query: "q=1"})
		}
	})
}

// FuzzResolve: for any file, path and query, Resolve never panics and
// never leaves the document root; what it serves is a clean path; its
// query string and Location hold no controls; it is deterministic.
func FuzzResolve(f *testing.F) {
	paths := []string{"/", "/hello-world/", "/index.php", "/sub/x.txt", "/_media/a:b.png", "/a/../b", "/dir", "/.git/x"}
	i := 0
	addSeeds(f, func(s string) {
		f.Add(s, paths[i%len(paths)], "a=1&b=%20")
		i++
	})
	f.Fuzz(func(t *testing.T, htaccess, path, query string) {
		file, err := Parse("f", []byte(htaccess))
		if err != nil {
			return
		}
		tree := fuzzTree(file)
		req := &Request{
			Path: path, Query: query, Host: "example.com", Method: "GET",
			Remote: netip.MustParseAddrPort("192.0.2.1:1234"),
			Header: http.Header{"Authorization": {"Basic x"}, "User-Agent": {path}},
		}
		checkResult(t, tree, req)
		if path != "" && path[0] != '/' {
			checkResult(t, tree, &Request{Path: "/" + path, Query: query})
		}
	})
}

// fuzzTree puts file at the root and in sub/, over a few files.
func fuzzTree(file *File) *Tree {
	fsys := fstest.MapFS{
		"index.php":     {Data: []byte("<?php")},
		"sub/x.txt":     {Data: []byte("x")},
		"sub/.env":      {Data: []byte("x")},
		"wp-admin/a":    {Data: []byte("x")},
		"dir/index.php": {Data: []byte("x")},
		"link":          {Data: []byte("index.php"), Mode: fs.ModeSymlink},
	}
	return &Tree{FS: fsys, DocumentRoot: "/srv/www", MaxRedirects: 4, Htaccess: func(dir string) (*File, error) {
		if dir == "." || dir == "sub" {
			return file, nil
		}
		return nil, nil
	}}
}

func checkResult(t *testing.T, tree *Tree, req *Request) {
	t.Helper()
	got := tree.Resolve(req)
	if again := tree.Resolve(req); !reflect.DeepEqual(got, again) {
		t.Fatalf("Resolve is not deterministic: %+v, then %+v", got, again)
	}
	switch {
	case got.Status == 0:
		clean, ok := cleanURLPath(got.Path)
		if !ok || clean != got.Path {
			t.Fatalf("serves %q: not a clean path in the root (%q, %v)", got.Path, clean, ok)
		}
		if strings.ContainsFunc(got.Query, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '#' }) {
			t.Fatalf("query %q", got.Query)
		}
		if got.Location != "" || got.Reason != "" {
			t.Fatalf("served with %+v", got)
		}
	case got.Status >= 300 && got.Status < 400:
		if strings.ContainsFunc(got.Location, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			t.Fatalf("location %q", got.Location)
		}
	case got.Status >= 400 && got.Status < 600:
		if got.Reason == "" {
			t.Fatalf("status %d without a reason", got.Status)
		}
	default:
		t.Fatalf("status %d", got.Status)
	}
	if a := tree.Access(req); a.Status != 0 && a.Status != 400 && a.Status != 403 && a.Status != 500 {
		t.Fatalf("Access status %d", a.Status)
	}
}
