package htaccess

import (
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

// site builds a Tree over an in-memory document root. Names ending in
// '/' are directories; the others are files with that content (a
// ".htaccess" among them is parsed through a Cache). A parse error
// fails the test.
func site(t testing.TB, files map[string]string) *Tree {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, content := range files {
		if dir, ok := strings.CutSuffix(name, "/"); ok {
			fsys[dir] = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
			continue
		}
		fsys[name] = &fstest.MapFile{Data: []byte(content), Mode: 0o644}
	}
	c := &Cache{FS: fsys, Parsed: func(name string, f *File, err error) {
		if err != nil {
			t.Errorf("parse %s: %v", name, err)
		}
	}}
	return &Tree{FS: fsys, Htaccess: c.Get, DocumentRoot: "/srv/www"}
}

func testdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rq is a request case: what to send and what must come back.
type rq struct {
	name   string
	method string
	path   string
	query  string
	header http.Header
	https  bool
	remote string // "ip:port"; "" for unknown

	status   int
	want     string            // the Path served (status 0)
	wantQ    string            // the Query served
	location string            // for a redirect
	env      map[string]string // must be in Result.Env (a value "<unset>" must be absent)
	reason   string            // must be in Result.Reason
}

func (c rq) request() *Request {
	r := &Request{Method: c.method, Path: c.path, Query: c.query, Header: c.header, HTTPS: c.https, Host: "example.com"}
	if c.remote != "" {
		r.Remote = netip.MustParseAddrPort(c.remote)
	}
	return r
}

func checkResolve(t *testing.T, tree *Tree, cases []rq) {
	t.Helper()
	for _, c := range cases {
		name := c.name
		if name == "" {
			name = c.method + " " + c.path
			if c.query != "" {
				name += "?" + c.query
			}
		}
		t.Run(name, func(t *testing.T) {
			got := tree.Resolve(c.request())
			if got.Status != c.status {
				t.Fatalf("status %d (reason %q, path %q, location %q), want %d", got.Status, got.Reason, got.Path, got.Location, c.status)
			}
			if c.status == 0 && (got.Path != c.want || got.Query != c.wantQ) {
				t.Errorf("serves %q ? %q, want %q ? %q", got.Path, got.Query, c.want, c.wantQ)
			}
			if got.Location != c.location {
				t.Errorf("location %q, want %q", got.Location, c.location)
			}
			for k, v := range c.env {
				have, ok := got.Env[k]
				if v == "<unset>" {
					if ok {
						t.Errorf("env %s = %q, want it unset", k, have)
					}
				} else if !ok || have != v {
					t.Errorf("env %s = %q (set %v), want %q; env %v", k, have, ok, v, got.Env)
				}
			}
			if !strings.Contains(got.Reason, c.reason) {
				t.Errorf("reason %q, want it to contain %q", got.Reason, c.reason)
			}
		})
	}
}
