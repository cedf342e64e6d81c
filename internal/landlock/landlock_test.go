package landlock

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gompm/mpm/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m, helpers)
}

func TestRelativePathRefused(t *testing.T) {
	for _, rs := range []Ruleset{
		{ReadOnly: []string{"etc"}},
		{ReadExec: []string{""}},
		{ReadWrite: []string{"/tmp", "./x"}},
	} {
		if err := rs.check(); err == nil || !strings.Contains(err.Error(), "not absolute") {
			t.Errorf("check(%+v) = %v, want a not-absolute error", rs, err)
		}
	}
	rs := DefaultSystemPaths()
	if err := rs.check(); err != nil {
		t.Error(err)
	}
}

// The default paths are absolute and clean, none is listed twice, and
// on a Debian system the essential ones exist (the others are logged).
func TestDefaultSystemPaths(t *testing.T) {
	rs := DefaultSystemPaths()
	seen := map[string]bool{}
	var missing []string
	for _, l := range [][]string{rs.ReadExec, rs.ReadOnly, rs.ReadWrite} {
		for _, p := range l {
			if !filepath.IsAbs(p) || filepath.Clean(p) != p {
				t.Errorf("path %q is not absolute and clean", p)
			}
			if seen[p] {
				t.Errorf("path %q listed twice", p)
			}
			seen[p] = true
			if _, err := os.Stat(p); err != nil {
				missing = append(missing, p)
			}
		}
	}
	for _, p := range []string{"/usr", "/etc/ld.so.cache", "/etc/ssl", "/etc/passwd", "/dev/null", "/dev/urandom"} {
		if !seen[p] {
			t.Errorf("%s is not among the default paths", p)
		}
	}
	if _, err := os.Stat("/etc/debian_version"); err == nil {
		for _, p := range []string{"/usr", "/etc/ld.so.cache", "/etc/ssl", "/dev/null"} {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("essential default path missing on this Debian system: %v", err)
			}
		}
	}
	for _, p := range rs.ReadOnly {
		if strings.Contains(p, "pool.d") {
			t.Errorf("default path %s would let a site read other sites' FPM pools", p)
		}
	}
	t.Logf("%d default paths; absent here (Restrict skips them): %v", len(seen), missing)
}
