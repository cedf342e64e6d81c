//go:build !cgo

// Built only without cgo, the supported build: a child completing a
// privilege drop needs syscall.AllThreadsSyscall, which cgo disables (see
// privdrop). make test runs it with CGO_ENABLED=0.

package prefork

import (
	"strings"
	"testing"

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
