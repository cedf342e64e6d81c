package landlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ruleset is what a process may still reach once it has called
// [Ruleset.Restrict]: every filesystem access the running kernel's
// Landlock can check is denied unless a path below grants it, TCP ports
// cannot be bound (but 0, and BindTCP), and abstract unix sockets made
// outside the process cannot be connected to. The zero value grants
// nothing.
//
// A path grants its rights to everything beneath it (a directory) or to
// itself (a file: only the rights that apply to files). Rights add up: a
// path in ReadWrite and in ReadExec gets both. Paths must be absolute;
// each is resolved, symlinks followed, when Restrict runs, and the rule
// belongs to the file or directory found then (see the package
// documentation for what that means for files replaced later).
type Ruleset struct {
	// ReadExec paths may be read, listed and executed: programs and
	// libraries (/usr).
	ReadExec []string
	// ReadOnly paths may be read and listed, not executed or changed: a
	// site's document root, configuration, devices read for randomness.
	ReadOnly []string
	// ReadWrite paths may be read, listed, written and truncated, and
	// files, directories, symlinks, fifos and sockets may be made and
	// removed in them, and moved from one ReadWrite tree to another.
	// They may not be executed (a program dropped into an upload or
	// temporary directory does not run: list the path in ReadExec too to
	// allow that), and device nodes may not be made in them.
	ReadWrite []string
	// BindTCP lists the TCP ports that may be bound besides 0 (a port the
	// kernel picks), from ABI 4. Connecting is never restricted.
	BindTCP []uint16
}

// Status says what [Ruleset.Restrict] enforced.
type Status struct {
	ABI int // the kernel's Landlock ABI version
	// HandledFS, HandledNet and Scoped are the rights and scopes the
	// process is now restricted in (LANDLOCK_ACCESS_FS_*,
	// LANDLOCK_ACCESS_NET_*, LANDLOCK_SCOPE_* bits).
	HandledFS, HandledNet, Scoped uint64
	// Skipped are the paths that got no rule because the process could
	// not find them (they do not exist, or a directory on the way is
	// missing or closed to it). Nothing beneath them is reachable.
	Skipped []SkippedPath
}

// SkippedPath is a path of a Ruleset that got no rule, and why.
type SkippedPath struct {
	Path string
	Err  error
}

func (s SkippedPath) String() string { return s.Path + " (" + s.Err.Error() + ")" }

func (s Status) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "landlock ABI %d: filesystem rights %#x, network rights %#x, scopes %#x", s.ABI, s.HandledFS, s.HandledNet, s.Scoped)
	if len(s.Skipped) > 0 {
		b.WriteString("; skipped")
		for i, p := range s.Skipped {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(" " + p.String())
		}
	}
	return b.String()
}

// Restrict restricts every thread of the calling process, and every
// process it starts after, to r, for good: a restriction cannot be
// lifted, only added to.
//
// It builds a Landlock ruleset of every right the running ABI knows (and
// the package handles), adds a rule for each path, sets no_new_privs on
// every thread (Landlock requires it of an unprivileged process, and a
// set-uid program must not run in the sandbox with its owner's power),
// then calls landlock_restrict_self on every thread with
// syscall.AllThreadsSyscall: Landlock restricts only the thread that
// asks, and a Go process runs on many. Threads started later inherit the
// restriction from the thread that starts them.
//
// A path that does not exist (or that the process cannot reach) is
// skipped and named in Status.Skipped: skipping grants nothing, so it
// fails closed, and a system path absent on one system
// (/etc/ld.so.preload) must not stop a worker. A path that is not
// absolute, or that Landlock refuses (a pseudo-filesystem with no
// mount, such as nsfs), is an error.
//
// Call Restrict before starting any process, and not while another
// goroutine may be starting one: a process started before, or during,
// keeps the access of the thread that started it. Descriptors opened
// before Restrict keep working (Landlock checks opening, not reading
// and writing): inherited sockets, log files.
//
// On error no thread has been restricted, though no_new_privs may have
// been set. The error wraps [ErrUnavailable] when the kernel has no
// Landlock. Restrict needs the Go runtime's AllThreadsSyscall, which a
// binary built with cgo does not have: build with CGO_ENABLED=0.
func (r *Ruleset) Restrict() (Status, error) {
	if err := r.check(); err != nil {
		return Status{}, err
	}
	if err := allThreadsSupported(); err != nil {
		return Status{}, err
	}
	abi, err := ABI()
	if err != nil {
		return Status{}, err
	}
	st := Status{ABI: abi, HandledFS: handledFS(abi), HandledNet: handledNet(abi), Scoped: scopes(abi)}
	fd, err := createRuleset(abi, st)
	if err != nil {
		return Status{}, err
	}
	defer syscall.Close(fd)
	for _, l := range []struct {
		paths  []string
		rights uint64
	}{
		{r.ReadExec, readExecRights},
		{r.ReadOnly, readOnlyRights},
		{r.ReadWrite, readWriteRights},
	} {
		for _, p := range l.paths {
			skipped, err := addPathRule(fd, p, l.rights&st.HandledFS)
			if err != nil {
				return Status{}, err
			}
			if skipped != nil {
				st.Skipped = append(st.Skipped, SkippedPath{p, skipped})
			}
		}
	}
	if st.HandledNet&netBindTCP != 0 {
		for _, port := range append([]uint16{0}, r.BindTCP...) {
			if err := addPortRule(fd, port, netBindTCP); err != nil {
				return Status{}, err
			}
		}
	}
	if err := allThreads(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); err != nil {
		return Status{}, fmt.Errorf("landlock: set no_new_privs: %w", err)
	}
	if err := allThreads(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(fd), 0, 0); err != nil {
		return Status{}, fmt.Errorf("landlock: restrict every thread: %w", err)
	}
	return st, nil
}

// check refuses a path that is not absolute: a rule on a relative path
// would depend on the working directory of the moment, and an empty one
// would be the working directory itself.
func (r *Ruleset) check() error {
	for _, l := range [][]string{r.ReadExec, r.ReadOnly, r.ReadWrite} {
		for _, p := range l {
			if !filepath.IsAbs(p) {
				return fmt.Errorf("landlock: path %q is not absolute", p)
			}
		}
	}
	return nil
}

// rulesetAttr is struct landlock_ruleset_attr up to scoped (ABI 6); the
// kernel is told how much of it its ABI knows.
type rulesetAttr struct {
	handledAccessFS  uint64
	handledAccessNet uint64
	scoped           uint64
}

// pathBeneathAttr is struct landlock_path_beneath_attr. The kernel's is
// packed (12 bytes) and reads only those; Go pads this one to 16.
type pathBeneathAttr struct {
	allowedAccess uint64
	parentFd      int32
}

// netPortAttr is struct landlock_net_port_attr.
type netPortAttr struct {
	allowedAccess uint64
	port          uint64
}

// landlockRuleNetPort is LANDLOCK_RULE_NET_PORT, which x/sys/unix lacks.
const landlockRuleNetPort = 2

// createRuleset makes a ruleset that handles what st says; its fd is
// close-on-exec.
func createRuleset(abi int, st Status) (int, error) {
	attr := rulesetAttr{st.HandledFS, st.HandledNet, st.Scoped}
	fd, _, e := syscall.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET,
		uintptr(unsafe.Pointer(&attr)), rulesetAttrSize(abi), 0)
	if e != 0 {
		return -1, fmt.Errorf("landlock: create ruleset (ABI %d, fs %#x, net %#x, scoped %#x): %w",
			abi, st.HandledFS, st.HandledNet, st.Scoped, unavailable(e))
	}
	return int(fd), nil
}

// addPathRule grants rights beneath path. It returns a non-nil skipped
// when the path is not there to be granted.
func addPathRule(rulesetFd int, path string, rights uint64) (skipped, err error) {
	fd, err := openPath(path)
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EACCES):
		return err, nil
	case err != nil:
		return nil, &os.PathError{Op: "landlock: open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	var stat syscall.Stat_t
	if err := syscall.Fstat(fd, &stat); err != nil {
		return nil, &os.PathError{Op: "landlock: stat", Path: path, Err: err}
	}
	if stat.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		rights &= fileRights
	}
	if rights == 0 {
		return nil, nil
	}
	attr := pathBeneathAttr{allowedAccess: rights, parentFd: int32(fd)}
	_, _, e := syscall.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(rulesetFd),
		unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&attr)), 0, 0, 0)
	if e != 0 {
		return nil, &os.PathError{Op: fmt.Sprintf("landlock: add rule (rights %#x)", rights), Path: path, Err: e}
	}
	return nil, nil
}

// addPortRule grants rights on a TCP port.
func addPortRule(rulesetFd int, port uint16, rights uint64) error {
	attr := netPortAttr{allowedAccess: rights, port: uint64(port)}
	_, _, e := syscall.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(rulesetFd),
		landlockRuleNetPort, uintptr(unsafe.Pointer(&attr)), 0, 0, 0)
	if e != 0 {
		return fmt.Errorf("landlock: add rule for TCP port %d (rights %#x): %w", port, rights, e)
	}
	return nil
}

// openPath opens path with O_PATH: a handle on the file or directory
// that needs no permission on it, only on the way to it.
func openPath(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, unix.O_PATH|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// errCgo explains the one way AllThreadsSyscall fails that is not the
// kernel's doing.
var errCgo = errors.New("landlock: this binary was built with cgo, where Go cannot run a system call on every thread; build it with CGO_ENABLED=0")

// allThreadsSupported reports errCgo when AllThreadsSyscall cannot work.
// It asks with getpid, which changes nothing: the refusal comes as
// ENOTSUP, which on Linux is also EOPNOTSUPP, what Landlock's calls
// return when Landlock is disabled, so the two must be told apart here.
func allThreadsSupported() error {
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_GETPID, 0, 0, 0); e == syscall.ENOTSUP {
		return errCgo
	}
	return nil
}

// allThreads runs a system call on every OS thread of the process. The
// runtime runs it on one thread first and returns if it fails there;
// otherwise on every other thread, and a thread whose result differs
// from the first one's ends the process: no thread is ever left
// unrestricted by a call that returned success.
func allThreads(trap, a1, a2, a3 uintptr) error {
	if _, _, e := syscall.AllThreadsSyscall(trap, a1, a2, a3); e != 0 {
		return unavailable(e)
	}
	return nil
}
