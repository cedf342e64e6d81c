package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/cgirun"
)

func testSiteHandler(t *testing.T, php bool, follow bool) (*site, string) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "htdocs")
	for _, d := range []string{root, filepath.Join(root, "sub"), filepath.Join(root, "empty")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"index.html":     "<h1>home</h1>",
		"sub/index.html": "sub home",
		"page.txt":       strings.Repeat("0123456789", 100),
		"app.php":        "<?php echo 'secret source';",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "outside.txt"), []byte("outside the root"), 0o644)
	os.Symlink("../outside.txt", filepath.Join(root, "escape.txt"))
	os.Symlink("page.txt", filepath.Join(root, "inside-link.txt"))
	var backend phpBackend
	if php {
		backend = &cgiPHP{runner: cgirun.Runner{Path: "/nonexistent/php-cgi"}}
	}
	s, err := newSite(&VHost{ServerName: "t.example", DocumentRoot: root, PHP: php, Index: []string{"index.html"}, FollowSymlinks: follow}, backend, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s, root
}

func do(h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestStaticFiles(t *testing.T) {
	s, root := testSiteHandler(t, false, false)
	for _, c := range []struct {
		target string
		status int
		body   string
	}{
		{"/", 200, "<h1>home</h1>"},
		{"/sub/", 200, "sub home"},
		{"/sub", 301, ""},
		{"/empty/", 403, ""},     // no directory listing
		{"/escape.txt", 403, ""}, // a link out of the document root
		{"/inside-link.txt", 200, "0123456789"},
		{"/missing.html", 404, ""},
		{"/%2e%2e/outside.txt", 400, ""}, // above the root
		{"/app.php", 403, ""},            // PHP off: neither run nor shown
	} {
		w := do(s, "GET", c.target, nil)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.body) {
			t.Errorf("GET %s: %d %q, want %d with %q", c.target, w.Code, w.Body.String(), c.status, c.body)
		}
		if strings.Contains(w.Body.String(), "outside the root") || strings.Contains(w.Body.String(), "secret source") {
			t.Errorf("GET %s leaked %q", c.target, w.Body.String())
		}
	}
	if w := do(s, "GET", "/page.txt", map[string]string{"Range": "bytes=10-19"}); w.Code != 206 || w.Body.String() != "0123456789" {
		t.Errorf("range: %d %q", w.Code, w.Body.String())
	}
	fi, _ := os.Stat(filepath.Join(root, "page.txt"))
	if w := do(s, "GET", "/page.txt", map[string]string{"If-Modified-Since": fi.ModTime().Add(time.Second).UTC().Format(http.TimeFormat)}); w.Code != 304 {
		t.Errorf("conditional: %d, want 304", w.Code)
	}
	if w := do(s, "GET", "/index.html", nil); !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Errorf("content type %q", w.Header().Get("Content-Type"))
	}
	if w := do(s, "DELETE", "/page.txt", nil); w.Code != 405 {
		t.Errorf("DELETE: %d, want 405", w.Code)
	}

	follow, _ := testSiteHandler(t, false, true)
	if w := do(follow, "GET", "/escape.txt", nil); w.Code != 200 {
		t.Errorf("follow_symlinks: %d, want 200", w.Code)
	}
}

func TestMissingScriptIs404(t *testing.T) {
	s, _ := testSiteHandler(t, true, false)
	if w := do(s, "GET", "/nope.php", nil); w.Code != 404 {
		t.Errorf("missing script: %d, want 404", w.Code)
	}
	if w := do(s, "GET", "/nope.php/extra", nil); w.Code != 404 {
		t.Errorf("missing script with PATH_INFO: %d, want 404", w.Code)
	}
}
