package seccomp

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A probe makes one refused call with arguments that are harmless even
// when nothing refuses it, in a process that may be root: each fails on
// its own (a NULL pointer, a bad descriptor, a bad flag, a wrong magic
// number) or changes nothing (unshare(0), setresuid(-1, -1, -1)). So the
// errno seen before the filter is the kernel's, and the one seen after is
// the filter's.
type probe struct {
	name string        // the call, and for clone and personality the argument
	want syscall.Errno // with Default installed
	call func() syscall.Errno
}

func sys(trap uintptr, a ...uintptr) syscall.Errno {
	var v [6]uintptr
	copy(v[:], a)
	_, _, e := unix.Syscall6(trap, v[0], v[1], v[2], v[3], v[4], v[5])
	return e
}

const (
	none   = ^uintptr(0) // -1: no descriptor
	none32 = 0xffffffff  // (uid_t)-1: leave this id alone
	badClk = 0x7fffffff  // no such clock
)

// probes lists every refused call. The caller locks its goroutine to one
// thread: some of these (personality, the set*id calls) act per thread.
func probes() []probe {
	pid := uintptr(unix.Getpid())
	p := []probe{
		{"ptrace", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_PTRACE, unix.PTRACE_PEEKDATA, 0x7fffffff, 0, 0) }},
		{"process_vm_readv", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_PROCESS_VM_READV, pid, 0, 0, 0, 0, 0) }},
		{"process_vm_writev", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_PROCESS_VM_WRITEV, pid, 0, 0, 0, 0, 0) }},
		{"process_madvise", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_PROCESS_MADVISE, none, 0, 0, 0, 0) }},
		{"pidfd_getfd", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_PIDFD_GETFD, none, 0, 0) }},
		{"bpf", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_BPF, 1000, 0, 0) }},
		{"perf_event_open", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_PERF_EVENT_OPEN, 0, 0, none, none, 0) }},
		{"userfaultfd", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_USERFAULTFD, 0x10) }},
		{"io_uring_setup", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_IO_URING_SETUP, 0, 0) }},
		{"io_uring_enter", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_IO_URING_ENTER, none, 0, 0, 0, 0, 0) }},
		{"io_uring_register", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_IO_URING_REGISTER, none, 0, 0, 0) }},
		{"keyctl", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_KEYCTL, 0xffff, 0, 0, 0, 0) }},
		{"add_key", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_ADD_KEY, 0, 0, 0, 0, 0) }},
		{"request_key", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_REQUEST_KEY, 0, 0, 0, 0) }},
		{"unshare", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_UNSHARE, 0) }},
		{"setns", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_SETNS, none, 0) }},
		{"mount", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_MOUNT, 0, 0, 0, 0, 0) }},
		{"umount2", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_UMOUNT2, 0, 0) }},
		{"pivot_root", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_PIVOT_ROOT, 0, 0) }},
		{"fsopen", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_FSOPEN, 0, 0) }},
		{"fsconfig", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_FSCONFIG, none, 0, 0, 0, 0) }},
		{"fsmount", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_FSMOUNT, none, 0, 0) }},
		{"fspick", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_FSPICK, none, 0, 0) }},
		{"move_mount", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_MOVE_MOUNT, none, 0, none, 0, 0) }},
		{"open_tree", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_OPEN_TREE, none, 0, 0) }},
		{"open_tree_attr", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_OPEN_TREE_ATTR, none, 0, 0, 0, 0) }},
		{"mount_setattr", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_MOUNT_SETATTR, none, 0, 0, 0, 0) }},
		// More segments than KEXEC_SEGMENT_MAX: none at all would unload
		// a loaded kernel.
		{"kexec_load", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_KEXEC_LOAD, 0, 1000, 0, 0) }},
		{"kexec_file_load", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_KEXEC_FILE_LOAD, none, none, 0, 0, none) }},
		{"init_module", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_INIT_MODULE, 0, 0, 0) }},
		{"finit_module", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_FINIT_MODULE, none, 0, 0) }},
		{"delete_module", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_DELETE_MODULE, 0, 0) }},
		{"swapon", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_SWAPON, 0, 0) }},
		{"swapoff", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_SWAPOFF, 0) }},
		{"reboot", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_REBOOT, 0, 0, 0, 0) }}, // no magic
		// An empty path: acct(NULL) would turn accounting off.
		{"acct", unix.EPERM, func() syscall.Errno {
			empty := []byte{0}
			_, _, e := unix.Syscall(unix.SYS_ACCT, uintptr(unsafe.Pointer(&empty[0])), 0, 0)
			return e
		}},
		{"quotactl", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_QUOTACTL, 0, 0, 0, 0) }},
		{"quotactl_fd", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_QUOTACTL_FD, none, 0, 0, 0) }},
		{"lookup_dcookie", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_LOOKUP_DCOOKIE, 0, 0, 0) }},
		{"open_by_handle_at", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_OPEN_BY_HANDLE_AT, none, 0, 0) }},
		{"name_to_handle_at", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_NAME_TO_HANDLE_AT, none, 0, 0, 0, 0) }},
		{"fanotify_init", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_FANOTIFY_INIT, 0x80000000, 0) }},
		{"syslog", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_SYSLOG, 100, 0, 0) }},
		// The helper runs in a session of its own, without a terminal
		// to hang up.
		{"vhangup", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_VHANGUP) }},
		{"clock_settime", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_CLOCK_SETTIME, badClk, 0) }},
		{"settimeofday", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_SETTIMEOFDAY, 0, 0) }},
		{"adjtimex", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_ADJTIMEX, 0) }},
		{"clock_adjtime", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_CLOCK_ADJTIME, badClk, 0) }},
		// Identity changes that change nothing.
		{"setuid", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_SETUID, uintptr(unix.Getuid())) }},
		{"setgid", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_SETGID, uintptr(unix.Getgid())) }},
		{"setreuid", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_SETREUID, none32, none32) }},
		{"setregid", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_SETREGID, none32, none32) }},
		{"setresuid", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_SETRESUID, none32, none32, none32) }},
		{"setresgid", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_SETRESGID, none32, none32, none32) }},
		{"setfsuid", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_SETFSUID, none32) }},
		{"setfsgid", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_SETFSGID, none32) }},
		{"setgroups", unix.EPERM, setSameGroups},
		{"clone3", unix.ENOSYS, func() syscall.Errno { return sys(unix.SYS_CLONE3, 0, 0) }}, // size 0: EINVAL
		// personality: set a flag, and put the persona back when that
		// worked.
		{"personality(ADDR_NO_RANDOMIZE)", unix.EPERM, func() syscall.Errno { return setPersonality(addrNoRandomize) }},
		{"personality(READ_IMPLIES_EXEC)", unix.EPERM, func() syscall.Errno { return setPersonality(readImpliesExec) }},
	}
	// clone with a namespace flag, and with CLONE_THREAD but not
	// CLONE_SIGHAND, which the kernel refuses (EINVAL) before it
	// creates anything.
	for name, f := range nsFlags {
		p = append(p, probe{"clone(" + name + ")", unix.EPERM, func() syscall.Errno {
			return sys(unix.SYS_CLONE, uintptr(f|unix.CLONE_THREAD), 0, 0, 0, 0)
		}})
	}
	return append(p, archProbes()...)
}

// setSameGroups calls setgroups with the current supplementary groups.
func setSameGroups() syscall.Errno {
	gs, err := unix.Getgroups()
	if err != nil {
		return err.(syscall.Errno)
	}
	if len(gs) == 0 {
		return sys(unix.SYS_SETGROUPS, 0, 0)
	}
	g := make([]uint32, len(gs)) // gid_t
	for i, v := range gs {
		g[i] = uint32(v)
	}
	_, _, e := unix.Syscall(unix.SYS_SETGROUPS, uintptr(len(g)), uintptr(unsafe.Pointer(&g[0])), 0)
	return e
}

func setPersonality(p uintptr) syscall.Errno {
	old, _, e := unix.Syscall(unix.SYS_PERSONALITY, p, 0, 0)
	if e == 0 {
		unix.Syscall(unix.SYS_PERSONALITY, old, 0, 0)
	}
	return e
}
