// Command sysprobe is a CGI program that the isolation tests configure as
// a site's php_cgi: the worker starts it exactly as it starts PHP (as the
// identity, confined the same way), and it answers with the errno of each
// system call a confined tenant must be refused. Each call is made with
// arguments that change nothing and that an unconfined process of any
// uid gets another answer to (0, EINVAL, EBADF, ESRCH, ...), so an EPERM
// can only be the filter's.
package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

func sys(trap uintptr, a ...uintptr) string {
	var v [6]uintptr
	copy(v[:], a)
	_, _, e := unix.Syscall6(trap, v[0], v[1], v[2], v[3], v[4], v[5])
	if e == 0 {
		return "ok"
	}
	return unix.ErrnoName(syscall.Errno(e))
}

const none = ^uintptr(0)

func main() {
	runtime.LockOSThread() // the set*id calls act on this thread only
	pid := uintptr(os.Getpid())
	uid, gid := uintptr(os.Getuid()), uintptr(os.Getgid())
	fmt.Print("Content-Type: text/plain\r\n\r\n")
	for _, p := range []struct {
		name string
		res  string
	}{
		{"ptrace", sys(unix.SYS_PTRACE, unix.PTRACE_PEEKDATA, 0x7fffffff, 0, 0)},
		{"process_vm_readv", sys(unix.SYS_PROCESS_VM_READV, pid, 0, 0, 0, 0, 0)},
		{"process_vm_writev", sys(unix.SYS_PROCESS_VM_WRITEV, pid, 0, 0, 0, 0, 0)},
		{"pidfd_getfd", sys(unix.SYS_PIDFD_GETFD, none, 0, 0)},
		{"bpf", sys(unix.SYS_BPF, 1000, 0, 0)},
		{"perf_event_open", sys(unix.SYS_PERF_EVENT_OPEN, 0, 0, none, none, 0)},
		{"io_uring_setup", sys(unix.SYS_IO_URING_SETUP, 0, 0)},
		{"keyctl", sys(unix.SYS_KEYCTL, 0xffff, 0, 0, 0, 0)},
		{"unshare", sys(unix.SYS_UNSHARE, 0)},
		{"setns", sys(unix.SYS_SETNS, none, 0)},
		{"setuid", sys(unix.SYS_SETUID, uid)},
		{"setgid", sys(unix.SYS_SETGID, gid)},
		{"setresuid", sys(unix.SYS_SETRESUID, none, none, none)},
		{"setresgid", sys(unix.SYS_SETRESGID, none, none, none)},
	} {
		fmt.Printf("%s %s\n", p.name, p.res)
	}
}
