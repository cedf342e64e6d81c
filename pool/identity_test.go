//go:build !cgo

// Built only without cgo, the supported build: workers completing a
// privilege drop need syscall.AllThreadsSyscall (see privdrop).

package pool

import (
	"os"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/internal/testenv"
	"github.com/gompm/mpm/privdrop"
)

// TestWorkersRunAsIdentity: a pool's workers serve as its identity, with
// no capabilities and no_new_privs, as their own /proc status says.
func TestWorkersRunAsIdentity(t *testing.T) {
	testenv.RequireRoot(t)
	uid := testenv.FreeID(t, 2071)
	h := startPool(t, Config{
		Identity: &privdrop.Identity{UID: uid, GID: uid},
		Path:     testenv.PublicExecutable(t),
		Min:      2,
	})
	h.waitFor("two workers", 10*time.Second, func(s Stats) bool { return s.Idle == 2 })
	file := h.dir + "/status"
	h.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := h.conn.Write([]byte("status " + file)); err != nil {
		t.Fatal(err)
	}
	var st procstatus.Status
	h.waitFor("the status job", 10*time.Second, func(Stats) bool {
		f, err := os.Open(file)
		if err != nil {
			return false
		}
		defer f.Close()
		st, err = procstatus.Parse(f)
		return err == nil
	})
	want := [4]uint32{uid, uid, uid, uid}
	if st.UID != want || st.GID != want {
		t.Errorf("worker ran as uids %v gids %v, want %d", st.UID, st.GID, uid)
	}
	if st.CapPrm|st.CapEff|st.CapBnd|st.CapInh|st.CapAmb != 0 || !st.NoNewPrivs {
		t.Errorf("worker holds capabilities (prm %x bnd %x) or lacks no_new_privs (%v)", st.CapPrm, st.CapBnd, st.NoNewPrivs)
	}
	// Every worker, seen from outside.
	for _, s := range h.p.Stats().Slots {
		threads, err := procstatus.Threads(s.PID)
		if err != nil {
			t.Fatal(err)
		}
		for _, th := range threads {
			if th.UID != want || th.CapBnd != 0 {
				t.Errorf("worker %d thread %d: uids %v bounding %x", s.PID, th.TID, th.UID, th.CapBnd)
			}
		}
	}
}
