package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gompm/mpm/internal/testenv"
)

// The master opens access logs as root: only through root's directories,
// never through a symbolic link. A tenant who could write a directory on
// the way could point the log at /etc/cron.d or authorized_keys.
func TestOpenLogRefuses(t *testing.T) {
	testenv.RequireRoot(t)
	tenant := testenv.FreeID(t, 2431)
	base := testenv.PublicDir(t, 0o755)
	mk := func(p string, mode os.FileMode, uid int) string {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		os.Chown(p, uid, uid)
		return p
	}
	tenantDir := mk(filepath.Join(base, "tenant"), 0o755, int(tenant))
	openDir := mk(filepath.Join(base, "open"), 0o777, 0)
	sticky := mk(filepath.Join(base, "sticky"), os.ModeSticky|0o777, 0)
	good := mk(filepath.Join(base, "good"), 0o755, 0)
	target := filepath.Join(base, "target")
	os.WriteFile(target, []byte("root's file\n"), 0o600)
	os.Symlink(target, filepath.Join(good, "link.log"))
	os.Symlink(good, filepath.Join(base, "dirlink"))

	for _, c := range []struct{ path, want string }{
		{filepath.Join(tenantDir, "a.log"), "is owned by uid 2431"},
		{filepath.Join(tenantDir, "sub", "a.log"), "is owned by uid 2431"},
		{filepath.Join(openDir, "a.log"), "mode 0777: writable by group or others"},
		{filepath.Join(good, "link.log"), "too many levels of symbolic links"},
		{filepath.Join(base, "dirlink", "a.log"), "is a symbolic link or not a directory"},
	} {
		f, err := openLog(c.path)
		if err == nil {
			f.Close()
			t.Errorf("openLog(%s) succeeded, want an error", c.path)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("openLog(%s): %v, want an error saying %q", c.path, err, c.want)
		}
		if cerr := checkLogPath(c.path); cerr == nil && !strings.Contains(c.want, "symbolic links") {
			t.Errorf("checkLogPath(%s) accepted what openLog refuses", c.path)
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "root's file\n" {
		t.Errorf("the link's target was written: %q", b)
	}
	for _, p := range []string{filepath.Join(sticky, "a.log"), filepath.Join(good, "new", "dir", "a.log")} {
		f, err := openLog(p)
		if err != nil {
			t.Errorf("openLog(%s): %v", p, err)
			continue
		}
		f.Close()
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v, want 0640", p, fi.Mode())
		}
	}
}

func TestLogEscape(t *testing.T) {
	for _, c := range []struct {
		in     string
		quoted bool
		want   string
	}{
		{"GET /index.php?a=b HTTP/1.1", true, "GET /index.php?a=b HTTP/1.1"},
		{"evil\n203.0.113.9 - admin", true, `evil\x0a203.0.113.9 - admin`},
		{`say "hi" \o/`, true, `say \"hi\" \\o/`},
		{"bücher", true, `b\xc3\xbccher`},
		{"admin - - [01/Jan/2026]", false, `admin\x20-\x20-\x20[01/Jan/2026]`},
		{"\r\x00\x7f", true, `\x0d\x00\x7f`},
	} {
		if got := logEscape(c.in, c.quoted); got != c.want {
			t.Errorf("logEscape(%q, %v) = %q, want %q", c.in, c.quoted, got, c.want)
		}
	}
}
