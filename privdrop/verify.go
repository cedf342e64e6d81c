package privdrop

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/internal/procstatus"
)

// VerifyError reports the first thread and field that does not hold the
// expected value after a drop or trim.
type VerifyError struct {
	TID   int    // the thread, or 0 for a process-wide property
	Field string // the status field, e.g. "Uid", "CapBnd", "NoNewPrivs"
	Got   string
	Want  string
}

func (e *VerifyError) Error() string {
	where := fmt.Sprintf("thread %d", e.TID)
	if e.TID == 0 {
		where = "process"
	}
	return fmt.Sprintf("privdrop: verify: %s: %s is %s, want %s", where, e.Field, e.Got, e.Want)
}

// Verify checks that every OS thread of the calling process holds exactly
// id: all four uids and gids, the supplementary groups, empty inheritable,
// permitted, effective, bounding and ambient capability sets, no_new_privs
// set, no tracer attached, and the process not dumpable. It reads /proc/self/task/*/status, so
// /proc must be reachable (after a chroot it usually is not; [Drop]
// verifies through a handle opened before the chroot).
func Verify(id Identity) error {
	t, err := procstatus.OpenTasks(0)
	if err != nil {
		return fmt.Errorf("privdrop: verify: %w", err)
	}
	defer t.Close()
	return verifyTasks(t, id)
}

func verifyTasks(t *procstatus.Tasks, id Identity) error {
	threads, err := t.Read()
	if err != nil {
		return fmt.Errorf("privdrop: verify: %w", err)
	}
	if err := checkThreads(threads, id); err != nil {
		return err
	}
	d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("privdrop: verify: prctl(PR_GET_DUMPABLE): %w", err)
	}
	if d != 0 {
		return &VerifyError{Field: "dumpable", Got: fmt.Sprint(d), Want: "0"}
	}
	return nil
}

// checkThreads returns a *VerifyError for the first thread and field of
// threads that does not match id.
func checkThreads(threads []procstatus.Status, id Identity) error {
	wantUID := [4]uint32{id.UID, id.UID, id.UID, id.UID}
	wantGID := [4]uint32{id.GID, id.GID, id.GID, id.GID}
	wantGroups := slices.Clone(id.Groups)
	slices.Sort(wantGroups)
	wantGroups = slices.Compact(wantGroups)
	for _, s := range threads {
		if s.UID != wantUID {
			return &VerifyError{TID: s.TID, Field: "Uid", Got: idList(s.UID[:]), Want: idList(wantUID[:])}
		}
		if s.GID != wantGID {
			return &VerifyError{TID: s.TID, Field: "Gid", Got: idList(s.GID[:]), Want: idList(wantGID[:])}
		}
		if !slices.Equal(s.Groups, wantGroups) {
			return &VerifyError{TID: s.TID, Field: "Groups", Got: idList(s.Groups), Want: idList(wantGroups)}
		}
		for _, c := range []struct {
			field string
			got   uint64
		}{
			{"CapInh", s.CapInh}, {"CapPrm", s.CapPrm}, {"CapEff", s.CapEff},
			{"CapBnd", s.CapBnd}, {"CapAmb", s.CapAmb},
		} {
			if c.got != 0 {
				return &VerifyError{TID: s.TID, Field: c.field, Got: capHex(c.got), Want: capHex(0)}
			}
		}
		if !s.NoNewPrivs {
			return &VerifyError{TID: s.TID, Field: "NoNewPrivs", Got: "0", Want: "1"}
		}
		// A tracer attached before the drop would keep control of the
		// dropped process (and of what it holds) after it.
		if s.TracerPid != 0 {
			return &VerifyError{TID: s.TID, Field: "TracerPid", Got: fmt.Sprint(s.TracerPid), Want: "0"}
		}
	}
	return nil
}

func idList(ids []uint32) string {
	if len(ids) == 0 {
		return "(none)"
	}
	s := make([]string, len(ids))
	for i, v := range ids {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, " ")
}
