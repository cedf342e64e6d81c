//go:build !cgo

// Built only without cgo, the supported build: a child completing a
// privilege drop needs syscall.AllThreadsSyscall, which cgo disables (see
// privdrop). make test runs it with CGO_ENABLED=0.

package prefork

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/internal/testenv"
	"github.com/gompm/mpm/privdrop"
)

// TestStartAsIdentity: a child started with an Identity runs its role
// as that identity, on every thread, with no capabilities.
func TestStartAsIdentity(t *testing.T) {
	testenv.RequireRoot(t)
	uid := testenv.FreeID(t, 2061)
	id := privdrop.Identity{UID: uid, GID: uid, Umask: 0o027}
	g := &Group{}
	testLogger(g)
	rep := startReport(t, g, Spec{Identity: &id, Path: testenv.PublicExecutable(t)})
	s := rep.Status
	if s.UID != [4]uint32{uid, uid, uid, uid} || s.GID != [4]uint32{uid, uid, uid, uid} {
		t.Errorf("role ran as uids %v gids %v, want %d", s.UID, s.GID, uid)
	}
	if s.CapPrm|s.CapEff|s.CapBnd|s.CapInh|s.CapAmb != 0 || !s.NoNewPrivs {
		t.Errorf("role holds capabilities (prm %x eff %x bnd %x) or lacks no_new_privs (%v)", s.CapPrm, s.CapEff, s.CapBnd, s.NoNewPrivs)
	}
	if rep.Identity == nil || rep.Identity.UID != uid {
		t.Errorf("Env.Identity = %+v, want uid %d", rep.Identity, uid)
	}
	for _, kv := range rep.Env {
		if strings.HasPrefix(kv, privdrop.EnvIdentity) {
			t.Errorf("child environment still holds %q", kv)
		}
	}
}

// TestNoOrphansAfterDrop: a child that drops to an identity in prefork's
// Main also dies with its master. The kernel clears the parent-death
// signal when a process changes its credentials: set before the drop, it
// was gone after it, and such children outlived a killed master.
func TestNoOrphansAfterDrop(t *testing.T) {
	testenv.RequireRoot(t)
	uid := testenv.FreeID(t, 2051)
	exe := testenv.PublicExecutable(t)
	master, pid := startMasterWithChild(t, Spec{Role: "master", Path: exe, Env: []string{"CHILD_UID=" + strconv.Itoa(int(uid)), "CHILD_EXE=" + exe}})
	waitFor(t, fmt.Sprintf("child %d to run as uid %d", pid, uid), func() bool {
		st, err := procstatus.Process(pid)
		return err == nil && st.UID[0] == uid
	})
	master.Signal(syscall.SIGKILL)
	master.Exit()
	waitFor(t, fmt.Sprintf("child %d (uid %d) to die with its master", pid, uid), func() bool { return !testenv.Running(pid) })
}
