package seccomp

import "golang.org/x/sys/unix"

// x86_64: system calls of the native ABI arrive with AUDIT_ARCH_X86_64;
// i386 calls (int 0x80) arrive with another arch value. x32 calls arrive
// with AUDIT_ARCH_X86_64 too, told apart only by __X32_SYSCALL_BIT in the
// number, so the filter must test that bit as well.
const (
	auditArch = unix.AUDIT_ARCH_X86_64
	x32Bit    = 0x40000000 // __X32_SYSCALL_BIT
)

var archErr error

// numbers maps every system call name a Rule may use to its number on
// this architecture, or to absent where the architecture has no such call.
var numbers = map[string]int{
	"acct":              unix.SYS_ACCT,
	"add_key":           unix.SYS_ADD_KEY,
	"adjtimex":          unix.SYS_ADJTIMEX,
	"bpf":               unix.SYS_BPF,
	"clock_adjtime":     unix.SYS_CLOCK_ADJTIME,
	"clock_settime":     unix.SYS_CLOCK_SETTIME,
	"clone":             unix.SYS_CLONE,
	"clone3":            unix.SYS_CLONE3,
	"delete_module":     unix.SYS_DELETE_MODULE,
	"fanotify_init":     unix.SYS_FANOTIFY_INIT,
	"finit_module":      unix.SYS_FINIT_MODULE,
	"fsconfig":          unix.SYS_FSCONFIG,
	"fsmount":           unix.SYS_FSMOUNT,
	"fsopen":            unix.SYS_FSOPEN,
	"fspick":            unix.SYS_FSPICK,
	"init_module":       unix.SYS_INIT_MODULE,
	"io_uring_enter":    unix.SYS_IO_URING_ENTER,
	"io_uring_register": unix.SYS_IO_URING_REGISTER,
	"io_uring_setup":    unix.SYS_IO_URING_SETUP,
	"ioperm":            unix.SYS_IOPERM,
	"iopl":              unix.SYS_IOPL,
	"kexec_file_load":   unix.SYS_KEXEC_FILE_LOAD,
	"kexec_load":        unix.SYS_KEXEC_LOAD,
	"keyctl":            unix.SYS_KEYCTL,
	"lookup_dcookie":    unix.SYS_LOOKUP_DCOOKIE,
	"mount":             unix.SYS_MOUNT,
	"mount_setattr":     unix.SYS_MOUNT_SETATTR,
	"move_mount":        unix.SYS_MOVE_MOUNT,
	"name_to_handle_at": unix.SYS_NAME_TO_HANDLE_AT,
	"open_by_handle_at": unix.SYS_OPEN_BY_HANDLE_AT,
	"open_tree":         unix.SYS_OPEN_TREE,
	"open_tree_attr":    unix.SYS_OPEN_TREE_ATTR,
	"perf_event_open":   unix.SYS_PERF_EVENT_OPEN,
	"personality":       unix.SYS_PERSONALITY,
	"pidfd_getfd":       unix.SYS_PIDFD_GETFD,
	"pivot_root":        unix.SYS_PIVOT_ROOT,
	"process_madvise":   unix.SYS_PROCESS_MADVISE,
	"process_vm_readv":  unix.SYS_PROCESS_VM_READV,
	"process_vm_writev": unix.SYS_PROCESS_VM_WRITEV,
	"ptrace":            unix.SYS_PTRACE,
	"quotactl":          unix.SYS_QUOTACTL,
	"quotactl_fd":       unix.SYS_QUOTACTL_FD,
	"reboot":            unix.SYS_REBOOT,
	"request_key":       unix.SYS_REQUEST_KEY,
	"setfsgid":          unix.SYS_SETFSGID,
	"setfsuid":          unix.SYS_SETFSUID,
	"setgid":            unix.SYS_SETGID,
	"setgroups":         unix.SYS_SETGROUPS,
	"setns":             unix.SYS_SETNS,
	"setregid":          unix.SYS_SETREGID,
	"setresgid":         unix.SYS_SETRESGID,
	"setresuid":         unix.SYS_SETRESUID,
	"setreuid":          unix.SYS_SETREUID,
	"settimeofday":      unix.SYS_SETTIMEOFDAY,
	"setuid":            unix.SYS_SETUID,
	"swapoff":           unix.SYS_SWAPOFF,
	"swapon":            unix.SYS_SWAPON,
	"syslog":            unix.SYS_SYSLOG,
	"umount2":           unix.SYS_UMOUNT2,
	"unshare":           unix.SYS_UNSHARE,
	"userfaultfd":       unix.SYS_USERFAULTFD,
	"vhangup":           unix.SYS_VHANGUP,
}
