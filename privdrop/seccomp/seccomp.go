package seccomp

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

var (
	// ErrNoNewPrivs is wrapped by Install's error when the calling
	// thread does not have no_new_privs set.
	ErrNoNewPrivs = errors.New("no_new_privs is not set")

	// ErrUnsupportedArch is wrapped by every error of a build for an
	// architecture this package has no system call table for.
	ErrUnsupportedArch = errors.New("architecture not supported (x86_64 and arm64 are)")

	// ErrNoKernelSupport is wrapped by Supported's error when the kernel
	// cannot filter system calls.
	ErrNoKernelSupport = errors.New("kernel cannot filter system calls")

	// ErrThreadSync is wrapped by Install's error when the kernel could
	// not put the filter on every thread (SECCOMP_FILTER_FLAG_TSYNC): a
	// thread already has a filter that the calling thread does not.
	ErrThreadSync = errors.New("a thread cannot take the filter")
)

// A Rule refuses one system call, or the calls of it whose first argument
// matches. The call does not run; the caller gets -1 and Errno.
//
// AnyBits and Except look at the low 32 bits of the first argument only,
// which is all the kernel reads of the first argument of clone (its flags)
// and of personality; use them only for calls whose first argument is a
// 32-bit value, or a caller could hide a value in the upper half.
type Rule struct {
	// Syscall is the name of the call as in syscalls(2) and the
	// kernel's tables: "ptrace", "umount2", "syslog" (glibc's klogctl).
	// The package knows the numbers of the calls Default names; any
	// other name is an error. A call that the running architecture does
	// not have (iopl on arm64) is skipped.
	Syscall string

	// Errno is what the call fails with. It must be a real errno
	// (1-4095): a filter that made a call "succeed" without running it
	// would lie to the caller.
	Errno syscall.Errno

	// AnyBits, when not zero, narrows the rule to calls whose first
	// argument has at least one of these bits set (clone's namespace
	// flags).
	AnyBits uint32

	// Except, when not empty, lets through the calls whose first
	// argument is one of these values (personality's default persona
	// and its query).
	Except []uint32
}

// String describes r: "personality unless the first argument is
// 0x0 or 0xffffffff: EPERM".
func (r Rule) String() string {
	var b strings.Builder
	b.WriteString(r.Syscall)
	if r.AnyBits != 0 {
		fmt.Fprintf(&b, " when the first argument has any of %#x", r.AnyBits)
	}
	if len(r.Except) > 0 {
		b.WriteString(" unless the first argument is ")
		for i, v := range r.Except {
			if i > 0 {
				b.WriteString(" or ")
			}
			fmt.Fprintf(&b, "%#x", v)
		}
	}
	b.WriteString(": ")
	if name := unix.ErrnoName(r.Errno); name != "" {
		b.WriteString(name)
	} else {
		fmt.Fprintf(&b, "errno %d", int(r.Errno))
	}
	return b.String()
}

// A Filter is a list of system calls to refuse; every other call is
// allowed. Whatever its rules, a filter also refuses with ENOSYS the
// system calls of another ABI than the process's own (i386 and x32 on
// x86_64, AArch32 on arm64), whose numbers mean other calls. The zero
// Filter refuses nothing else.
type Filter struct {
	Rules []Rule
}

// NamespaceFlags are the clone flags that create namespaces, which
// [Default] refuses. CLONE_NEWTIME is not among them: clone reads that bit
// as part of the exit signal, and only clone3 and unshare (both refused
// whole) accept it.
const NamespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// Persona values that [Default] lets personality take: the query, which
// changes nothing and returns the current persona, and the default
// persona of Linux.
const (
	PersonaQuery = 0xffffffff
	PersonaLinux = 0 // PER_LINUX
)

// Default returns the filter mpmd puts on every worker and, through
// execve, on the PHP it runs. The package documentation says what it
// refuses and why.
func Default() *Filter {
	var rules []Rule
	deny := func(errno syscall.Errno, names ...string) {
		for _, n := range names {
			rules = append(rules, Rule{Syscall: n, Errno: errno})
		}
	}
	// Reaching into other processes: their memory, their descriptors.
	deny(unix.EPERM, "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd")
	// Kernel interfaces with a record of exploits and no use to a web
	// tenant.
	deny(unix.EPERM, "bpf", "perf_event_open", "userfaultfd",
		"io_uring_setup", "io_uring_enter", "io_uring_register",
		"keyctl", "add_key", "request_key")
	// Namespaces and mounts, old and new API.
	deny(unix.EPERM, "unshare", "setns", "mount", "umount2", "pivot_root",
		"fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
		"open_tree", "open_tree_attr", "mount_setattr")
	// Administering the machine.
	deny(unix.EPERM, "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
		"swapon", "swapoff", "reboot", "acct", "quotactl", "quotactl_fd", "lookup_dcookie",
		"iopl", "ioperm", "syslog", "vhangup", "fanotify_init",
		"open_by_handle_at", "name_to_handle_at")
	// Setting the clocks.
	deny(unix.EPERM, "clock_settime", "settimeofday", "adjtimex", "clock_adjtime")
	// Changing identity, whatever the arguments.
	deny(unix.EPERM, "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
		"setfsuid", "setfsgid", "setgroups")
	// clone3 passes its flags in memory the filter cannot read. ENOSYS
	// makes glibc fall back to clone, whose flags it can.
	deny(unix.ENOSYS, "clone3")
	// The calls decided by their argument come last: the kernel caches
	// "allow" for a call whose verdict does not depend on arguments,
	// and these are evaluated each time.
	rules = append(rules,
		Rule{Syscall: "clone", Errno: unix.EPERM, AnyBits: NamespaceFlags},
		Rule{Syscall: "personality", Errno: unix.EPERM, Except: []uint32{PersonaLinux, PersonaQuery}},
	)
	return &Filter{Rules: rules}
}

// Offsets in struct seccomp_data. The first argument is a 64-bit value;
// on a little-endian machine (x86_64, arm64) its low half comes first.
const (
	offNr      = 0
	offArch    = 4
	offArg0Low = 16
)

const (
	maxErrno = 4095 // MAX_ERRNO: what the kernel treats as an error return
	maxInsns = 4096 // BPF_MAXINSNS
	absent   = -1   // in numbers: no such call on this architecture
)

func retErrno(e syscall.Errno) bpf.Instruction {
	return bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(e)}
}

var retAllow = bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW}

// Program assembles f into a classic BPF program for the running
// architecture, as [Filter.Install] loads it. It fails if a rule is
// invalid (an unknown call, an errno out of range, a call named twice).
//
// The program checks the architecture, then (on x86_64) the x32 bit,
// then compares the call number with each rule in turn; a rule that
// matches ends in its own return, so the number stays in the accumulator
// for the next comparison. Every jump is short and forward.
func (f *Filter) Program() ([]unix.SockFilter, error) {
	if archErr != nil {
		return nil, archErr
	}
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: auditArch, SkipTrue: 1},
		retErrno(unix.ENOSYS), // another ABI: i386, AArch32
		bpf.LoadAbsolute{Off: offNr, Size: 4},
	}
	if x32Bit != 0 {
		prog = append(prog,
			bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32Bit, SkipFalse: 3},
			// -1 is no system call: a tracer sets it to skip one and
			// choose its result. Let the kernel (and the tracer) answer.
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0xffffffff, SkipTrue: 1},
			retErrno(unix.ENOSYS), // an x32 call
			retAllow,
		)
	}
	seen := map[string]bool{}
	for _, r := range f.Rules {
		if seen[r.Syscall] {
			return nil, fmt.Errorf("seccomp: rule %s: %s is already refused by an earlier rule", r, r.Syscall)
		}
		seen[r.Syscall] = true
		nr, block, err := r.block()
		if err != nil {
			return nil, fmt.Errorf("seccomp: rule %s: %w", r, err)
		}
		if nr == absent {
			continue
		}
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(nr), SkipFalse: uint8(len(block))})
		prog = append(prog, block...)
	}
	prog = append(prog, retAllow)
	if len(prog) > maxInsns {
		return nil, fmt.Errorf("seccomp: the program has %d instructions, more than the kernel's limit of %d", len(prog), maxInsns)
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("seccomp: assemble: %w", err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, ins := range raw {
		out[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	return out, nil
}

// block returns the number of r's call and the instructions that run when
// the number matches, each path of which returns.
func (r Rule) block() (nr int, block []bpf.Instruction, err error) {
	nr, ok := numbers[r.Syscall]
	switch {
	case !ok:
		return 0, nil, fmt.Errorf("no system call named %q on %s", r.Syscall, runtime.GOARCH)
	case r.Errno < 1 || r.Errno > maxErrno:
		return 0, nil, fmt.Errorf("errno %d is not between 1 and %d", int(r.Errno), maxErrno)
	case r.AnyBits != 0 && len(r.Except) > 0:
		return 0, nil, errors.New("AnyBits and Except cannot be used together")
	case len(r.Except) > 250:
		return 0, nil, fmt.Errorf("%d exceptions: at most 250", len(r.Except))
	}
	switch {
	case r.AnyBits != 0:
		block = []bpf.Instruction{
			bpf.LoadAbsolute{Off: offArg0Low, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: r.AnyBits, SkipFalse: 1},
			retErrno(r.Errno),
			retAllow,
		}
	case len(r.Except) > 0:
		n := len(r.Except)
		block = []bpf.Instruction{bpf.LoadAbsolute{Off: offArg0Low, Size: 4}}
		for i, v := range r.Except {
			// To the final retAllow, past the remaining comparisons
			// and the retErrno.
			block = append(block, bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipTrue: uint8(n - i)})
		}
		block = append(block, retErrno(r.Errno), retAllow)
	default:
		block = []bpf.Instruction{retErrno(r.Errno)}
	}
	return nr, block, nil
}

// Install puts f on every thread of the calling process, for good: a
// filter cannot be removed, and every process started afterwards (through
// fork, clone or execve) inherits it. Filters stack; a later one can only
// refuse more.
//
// The calling thread must have no_new_privs set (privdrop.Drop sets it on
// every thread); otherwise Install returns an error wrapping
// [ErrNoNewPrivs], even as root, where the kernel would accept the filter
// without it. The reason is the kernel's own: the filter refuses setuid,
// and a set-user-ID program that went on after its own setuid failed
// would keep running as its owner. With no_new_privs, execve grants no
// privilege that such a failure could leave behind.
//
// The filter goes on all threads at once (SECCOMP_FILTER_FLAG_TSYNC),
// which a Go process needs: its goroutines move between OS threads, and
// a filter on one thread would leave the others open. The kernel also sets
// no_new_privs on every thread it synchronizes.
func (f *Filter) Install() error {
	prog, err := f.Program()
	if err != nil {
		return err
	}
	// no_new_privs is per thread, and the kernel checks the calling
	// thread's: the check and the call run on the same one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("seccomp: install: %w", os.NewSyscallError("prctl(PR_GET_NO_NEW_PRIVS)", err))
	}
	if nnp != 1 {
		return fmt.Errorf("seccomp: install: %w on the calling thread; set it first (privdrop.Drop does)", ErrNoNewPrivs)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	tid, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&fprog)))
	switch {
	case e != 0:
		return fmt.Errorf("seccomp: install a %d-instruction filter on every thread: %w",
			len(prog), os.NewSyscallError("seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC)", e))
	case tid != 0:
		// TSYNC reports the first thread it could not synchronize,
		// and installs on none.
		return fmt.Errorf("seccomp: install: thread %d has a filter of its own: %w", tid, ErrThreadSync)
	}
	return nil
}

// Supported reports whether the running kernel and architecture can take
// a filter: nil, or an error that says why not. A daemon calls it at
// start, to refuse to run rather than see every worker fail. It asks the
// kernel whether it knows the SECCOMP_RET_ERRNO action
// (SECCOMP_GET_ACTION_AVAIL, Linux 4.14, which also has
// SECCOMP_FILTER_FLAG_TSYNC).
func Supported() error {
	if archErr != nil {
		return archErr
	}
	action := uint32(unix.SECCOMP_RET_ERRNO)
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action)))
	if e != 0 {
		return fmt.Errorf("seccomp: %w (Linux 4.14 or later built with CONFIG_SECCOMP_FILTER is needed): %w",
			ErrNoKernelSupport, os.NewSyscallError("seccomp(SECCOMP_GET_ACTION_AVAIL, SECCOMP_RET_ERRNO)", e))
	}
	return nil
}
