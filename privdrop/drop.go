package privdrop

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/cap"

	"github.com/gompm/mpm/internal/procstatus"
)

// Drop changes the calling process, on every OS thread, to id and takes
// away every way back: afterwards all four uids and gids are id's, the
// supplementary groups are exactly id.Groups, every capability set
// (inheritable, permitted, effective, ambient and bounding) is empty,
// no_new_privs is set, and the process is not dumpable. It then verifies
// all of that on every thread (see [Verify]) and returns a *VerifyError if
// any thread differs.
//
// Drop refuses uid 0 and gid 0 whatever the policy: dropping to root is
// not a drop. Check id against a [Policy] before calling it.
//
// It works from root (the usual case) and in a child started by [Prepare],
// which already runs as id and holds only the capabilities it needs to
// finish. If Drop returns an error the process may be left between the two
// identities and should exit.
func Drop(id Identity) error {
	if id.UID == 0 || id.GID == 0 {
		return fmt.Errorf("privdrop: drop to %s: %w", id, ErrRoot)
	}
	fail := func(step string, err error) error {
		return fmt.Errorf("privdrop: drop to %s: %s: %w", id, step, err)
	}

	// Not dumpable first: from the moment the uid is the identity's, a
	// dumpable process can be attached to, and its descriptors opened
	// through /proc, by any process of that uid (the tenant's code), and
	// until the end of the drop it still holds capabilities.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fail("clear dumpable", err)
	}

	// The task directory is opened before the chroot, which would hide
	// /proc, and closed before returning: an open directory outside the
	// jail is a way out of it (fchdir, then "..").
	tasks, err := procstatus.OpenTasks(0)
	if err != nil {
		return fail("open /proc/self/task", err)
	}
	defer tasks.Close()

	// The order matters. Everything that needs a capability comes before
	// the uid change, which (from root) empties the permitted set:
	// chroot needs CAP_SYS_CHROOT, a negative nice CAP_SYS_NICE, dropping
	// from the bounding set CAP_SETPCAP, setgroups CAP_SETGID. The groups
	// and gid change before the uid because changing them needs
	// CAP_SETGID, which the uid change would take. Capabilities are
	// cleared explicitly afterwards because a child started by Prepare is
	// not root, so its uid "change" clears nothing. no_new_privs comes
	// last among the thread attributes so that nothing above is blocked
	// by it. The working directory is entered as the new identity, which
	// proves the identity can reach it.
	if id.Chroot != "" {
		if err := enterJail(id.Chroot); err != nil {
			return fail("chroot", err)
		}
	}
	if id.Nice != 0 {
		// PRIO_PROCESS with who=0 means the calling thread on Linux, so
		// it must run on every thread.
		if err := allThreads(syscall.SYS_SETPRIORITY, unix.PRIO_PROCESS, 0, uintptr(id.Nice)); err != nil {
			return fail(fmt.Sprintf("set nice %d", id.Nice), err)
		}
	}
	for _, r := range id.Rlimits {
		if err := syscall.Setrlimit(r.Resource, &syscall.Rlimit{Cur: r.Cur, Max: r.Max}); err != nil {
			return fail(fmt.Sprintf("set rlimit %s to %s/%s", RlimitName(r.Resource), rlimStr(r.Cur), rlimStr(r.Max)), err)
		}
	}
	if err := emptyBoundingSet(); err != nil {
		return fail("empty the bounding set", err)
	}
	if err := setGroups(id.Groups); err != nil {
		return fail(fmt.Sprintf("setgroups(%s)", idList(id.Groups)), err)
	}
	if err := syscall.Setresgid(int(id.GID), int(id.GID), int(id.GID)); err != nil {
		return fail(fmt.Sprintf("setresgid(%d)", id.GID), err)
	}
	if err := syscall.Setresuid(int(id.UID), int(id.UID), int(id.UID)); err != nil {
		return fail(fmt.Sprintf("setresuid(%d)", id.UID), err)
	}
	if err := cap.NewSet().SetProc(); err != nil {
		return fail("clear capabilities", err)
	}
	if err := cap.ResetAmbient(); err != nil {
		return fail("clear the ambient set", err)
	}
	if err := allThreads(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); err != nil {
		return fail("set no_new_privs", err)
	}
	if id.Umask != 0 {
		syscall.Umask(int(id.Umask))
	}
	if id.Dir != "" {
		if err := os.Chdir(id.Dir); err != nil {
			return fail("enter working directory", err)
		}
	}
	return verifyTasks(tasks, id)
}

// Supported reports whether this process can use [Drop] and [Complete]:
// nil, or an error that says why not. They need the Go runtime's
// AllThreadsSyscall, which a binary built with cgo does not have. A
// daemon calls Supported before it starts children that are to drop
// privileges, so that it refuses to start rather than see every child
// fail.
func Supported() error {
	// getpid changes nothing; under cgo the call fails before it runs.
	if err := allThreads(syscall.SYS_GETPID, 0, 0, 0); err != nil {
		return fmt.Errorf("privdrop: %w", err)
	}
	return nil
}

// errCgo explains the one way AllThreadsSyscall fails that is not the
// kernel's doing.
var errCgo = errors.New("this binary was built with cgo, where Go cannot run a system call on every thread; build it with CGO_ENABLED=0")

// allThreads runs a system call on every OS thread of the process.
func allThreads(trap, a1, a2, a3 uintptr) error {
	_, _, e := syscall.AllThreadsSyscall(trap, a1, a2, a3)
	switch {
	case e == syscall.ENOTSUP:
		return errCgo
	case e != 0:
		return e
	}
	return nil
}

func rlimStr(v uint64) string {
	if v == RlimInfinity {
		return "unlimited"
	}
	return fmt.Sprint(v)
}

// emptyBoundingSet drops every capability from the bounding set, on every
// thread. With nothing left to drop it needs no privilege.
func emptyBoundingSet() error {
	for v := cap.Value(0); v < cap.MaxBits(); v++ {
		in, err := cap.GetBound(v)
		if err != nil || !in {
			continue
		}
		if err := cap.DropBound(v); err != nil {
			return fmt.Errorf("drop %s (needs CAP_SETPCAP): %w", v, err)
		}
	}
	return nil
}

// setGroups sets the supplementary groups unless they already are the
// wanted ones: a child started by Prepare got them from its parent and no
// longer holds CAP_SETGID.
func setGroups(groups []uint32) error {
	want := slices.Clone(groups)
	slices.Sort(want)
	want = slices.Compact(want)
	cur, err := unix.Getgroups()
	if err != nil {
		return err
	}
	have := make([]uint32, len(cur))
	for i, g := range cur {
		have[i] = uint32(g)
	}
	slices.Sort(have)
	if slices.Equal(have, want) {
		return nil
	}
	gs := make([]int, len(want))
	for i, g := range want {
		gs[i] = int(g)
	}
	return syscall.Setgroups(gs) // all threads
}

// enterJail checks dir as sshd checks a ChrootDirectory, then makes it the
// root directory and the working directory.
func enterJail(dir string) error {
	if err := CheckJail(dir); err != nil {
		return err
	}
	if err := syscall.Chroot(dir); err != nil {
		return &os.PathError{Op: "chroot", Path: dir, Err: err}
	}
	if err := syscall.Chdir("/"); err != nil {
		return &os.PathError{Op: "chdir", Path: "/ in " + dir, Err: err}
	}
	return nil
}

// ErrUnsafeJail is wrapped by [CheckJail]'s errors.
var ErrUnsafeJail = errors.New("unsafe chroot directory")

// CheckJail reports whether dir is acceptable as a chroot directory: an
// absolute path without symbolic links, a directory owned by root and not
// writable by group or others, below directories that are owned by root
// and are either not writable by group or others or sticky (such as /tmp).
// Otherwise whoever can write to it, or rename it, can change what the
// jail contains.
func CheckJail(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("%q is not an absolute path: %w", dir, ErrUnsafeJail)
	}
	clean := filepath.Clean(dir)
	p := "/"
	parts := strings.Split(strings.TrimPrefix(clean, "/"), "/")
	if clean == "/" {
		parts = nil
	}
	for i := -1; i < len(parts); i++ {
		if i >= 0 {
			p = filepath.Join(p, parts[i])
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		last := i == len(parts)-1
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			return fmt.Errorf("%q: %q is a symbolic link: %w", dir, p, ErrUnsafeJail)
		case !fi.IsDir():
			return fmt.Errorf("%q: %q is not a directory: %w", dir, p, ErrUnsafeJail)
		case st.Uid != 0:
			return fmt.Errorf("%q: %q is owned by uid %d, not root: %w", dir, p, st.Uid, ErrUnsafeJail)
		case fi.Mode().Perm()&0o022 != 0 && (last || fi.Mode()&os.ModeSticky == 0):
			return fmt.Errorf("%q: %q is writable by group or others (mode %#o): %w", dir, p, fi.Mode().Perm(), ErrUnsafeJail)
		}
	}
	return nil
}
