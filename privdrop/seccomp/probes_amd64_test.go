package seccomp

import (
	"syscall"

	"golang.org/x/sys/unix"
)

func archProbes() []probe {
	return []probe{
		{"iopl", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_IOPL, 4) }},               // no level 4
		{"ioperm", unix.EPERM, func() syscall.Errno { return sys(unix.SYS_IOPERM, 65536, 1, 0) }}, // past the last port
		// getpid through the x32 ABI. A kernel built without x32, or
		// booted with syscall.x32=n, answers ENOSYS itself.
		{"x32 getpid", unix.ENOSYS, func() syscall.Errno { return sys(unix.SYS_GETPID | x32Bit) }},
	}
}
