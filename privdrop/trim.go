package privdrop

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/cap"

	"github.com/gompm/mpm/internal/procstatus"
)

// TrimSecurebits are the securebits [Trim] sets. SECBIT_NOROOT (locked)
// stops uid 0 from regaining a full capability set through execve, so a
// trimmed root process that runs a program cannot undo the trim.
// SECBIT_NO_SETUID_FIXUP is locked off: a child that changes from uid 0 to
// another uid must lose its capabilities as usual. SECBIT_KEEP_CAPS and the
// ambient-raise bit are left unlocked on purpose: os/exec sets KEEP_CAPS in
// a child to hand it ambient capabilities, which is how [Prepare] lets a
// child finish its own drop (chroot, bounding set).
const TrimSecurebits = cap.SecbitNoRoot | cap.SecbitNoRootLocked | cap.SecbitNoSetUIDFixupLocked

// Trim reduces the calling process, on every OS thread, to the
// capabilities in keep: permitted and effective become exactly keep, the
// bounding set becomes keep (so no later execve can gain anything else),
// the inheritable and ambient sets become empty, and [TrimSecurebits] are
// set and locked. The uids are not changed. Trim needs CAP_SETPCAP in the
// permitted set unless there is nothing to drop from the bounding set and
// the securebits are already set. It verifies the result on every thread.
//
// A master process calls Trim after it has bound its listeners, keeping
// what spawning needs (see DESIGN.md: SETUID, SETGID, SETPCAP, KILL, and
// SYS_CHROOT where chroot is used).
func Trim(keep ...cap.Value) error {
	max := cap.MaxBits()
	var mask uint64
	for _, v := range keep {
		if v >= max || v >= 64 {
			return fmt.Errorf("privdrop: trim: capability %d (%s) is not known to this kernel (it has %d)", int(v), v, int(max))
		}
		mask |= 1 << uint(v)
	}

	cur, err := cap.GetPID(0)
	if err != nil {
		return fmt.Errorf("privdrop: trim: read capabilities: %w", err)
	}
	var bound []cap.Value
	for v := cap.Value(0); v < max; v++ {
		if mask&(1<<uint(v)) != 0 {
			continue
		}
		if in, err := cap.GetBound(v); err == nil && in {
			bound = append(bound, v)
		}
	}
	bits, err := unix.PrctlRetInt(unix.PR_GET_SECUREBITS, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("privdrop: trim: read securebits: %w", err)
	}
	wantBits := cap.Secbits(bits) | TrimSecurebits

	if len(bound) > 0 || cap.Secbits(bits) != wantBits {
		// Dropping bounding bits and setting securebits need SETPCAP in
		// the effective set; raise it for the duration.
		w, err := cur.Dup()
		if err == nil {
			err = w.SetFlag(cap.Effective, true, cap.SETPCAP)
		}
		if err == nil {
			err = w.SetProc()
		}
		if err != nil {
			return fmt.Errorf("privdrop: trim: raise CAP_SETPCAP (needed to drop %d bounding capabilities and set securebits): %w", len(bound), err)
		}
		if cap.Secbits(bits) != wantBits {
			if err := wantBits.Set(); err != nil {
				return fmt.Errorf("privdrop: trim: set securebits %#x: %w", uint(wantBits), err)
			}
		}
		for _, v := range bound {
			if err := cap.DropBound(v); err != nil {
				return fmt.Errorf("privdrop: trim: drop %s from the bounding set: %w", v, err)
			}
		}
	}
	if err := cap.ResetAmbient(); err != nil {
		return fmt.Errorf("privdrop: trim: clear the ambient set: %w", err)
	}
	final := cap.NewSet()
	if len(keep) > 0 {
		if err := final.SetFlag(cap.Permitted, true, keep...); err != nil {
			return fmt.Errorf("privdrop: trim: %w", err)
		}
		if err := final.SetFlag(cap.Effective, true, keep...); err != nil {
			return fmt.Errorf("privdrop: trim: %w", err)
		}
	}
	if err := final.SetProc(); err != nil {
		return fmt.Errorf("privdrop: trim: set capabilities to [%s]: %w", capList(mask), err)
	}
	return verifyCaps(mask)
}

// verifyCaps checks every thread of the process for permitted, effective
// and bounding sets equal to mask and empty inheritable and ambient sets.
func verifyCaps(mask uint64) error {
	threads, err := procstatus.Threads(0)
	if err != nil {
		return fmt.Errorf("privdrop: verify: %w", err)
	}
	for _, s := range threads {
		for _, c := range []struct {
			field     string
			got, want uint64
		}{
			{"CapInh", s.CapInh, 0},
			{"CapPrm", s.CapPrm, mask},
			{"CapEff", s.CapEff, mask},
			{"CapBnd", s.CapBnd, mask},
			{"CapAmb", s.CapAmb, 0},
		} {
			if c.got != c.want {
				return &VerifyError{TID: s.TID, Field: c.field, Got: capHex(c.got), Want: capHex(c.want)}
			}
		}
	}
	return nil
}

func capHex(m uint64) string {
	if m == 0 {
		return "0000000000000000 (none)"
	}
	return fmt.Sprintf("%016x (%s)", m, capList(m))
}

// capList names the capabilities in mask: "cap_setuid,cap_setgid".
func capList(m uint64) string {
	var names []string
	for v := cap.Value(0); v < 64; v++ {
		if m&(1<<uint(v)) != 0 {
			names = append(names, v.String())
		}
	}
	return strings.Join(names, ",")
}

// CapMask returns the bit mask of vals, as /proc/<pid>/status prints
// capability sets.
func CapMask(vals ...cap.Value) uint64 {
	var m uint64
	for _, v := range vals {
		if v < 64 {
			m |= 1 << uint(v)
		}
	}
	return m
}
