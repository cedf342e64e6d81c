//go:build !cgo

package prefork

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gompm/mpm/internal/cgroup"
	"github.com/gompm/mpm/internal/testenv"
	"github.com/gompm/mpm/privdrop"
)

// TestStartInCgroup: a child given Spec.Cgroup is born in that cgroup v2
// group (CLONE_INTO_CGROUP), with a privilege drop in the same spawn, and
// a program it runs is in it too; a directory that is not a cgroup makes
// Start fail instead of starting the child elsewhere.
func TestStartInCgroup(t *testing.T) {
	testenv.RequireRoot(t)
	s, err := cgroup.Detect()
	if errors.Is(err, cgroup.ErrNoV2) {
		t.Skipf("skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	parent, err := cgroup.OpenParent(filepath.Join(s.Mount, fmt.Sprintf("mpm-test-prefork-%d", os.Getpid())))
	if err != nil {
		t.Skipf("skipped: this host's cgroup2 hierarchy at %s is not writable: %v", s.Mount, err)
	}
	t.Cleanup(func() { parent.Remove() })
	grp, err := parent.Create("child", cgroup.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { grp.Remove() })
	dir, err := grp.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()

	uid := testenv.FreeID(t, 2561)
	id := privdrop.Identity{UID: uid, GID: uid}
	g := &Group{}
	testLogger(g)
	rep := startReport(t, g, Spec{Identity: &id, Path: testenv.PublicExecutable(t), Cgroup: dir})
	rel := strings.TrimPrefix(grp.Dir(), s.Mount)
	if want := "0::" + rel; rep.Cgroup != want || rep.GrandchildCg != want {
		t.Errorf("child in %q, its program in %q; want both in %q", rep.Cgroup, rep.GrandchildCg, want)
	}
	if rep.Status.UID[0] != uid {
		t.Errorf("child ran as uid %d, want %d", rep.Status.UID[0], uid)
	}
	if self := v2Cgroup("/proc/self/cgroup"); self == "0::"+rel {
		t.Errorf("the parent itself moved into %s", rel)
	}

	notCg, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer notCg.Close()
	if c, err := g.Start(Spec{Role: "report", Cgroup: notCg}); err == nil {
		c.Signal(syscall.SIGKILL)
		t.Error("Start with a directory that is not a cgroup succeeded")
	}
}
