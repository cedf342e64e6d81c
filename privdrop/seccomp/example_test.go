package seccomp_test

import (
	"fmt"
	"log"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/privdrop"
	"github.com/gompm/mpm/privdrop/seccomp"
)

// A worker puts the filter on itself as the last step of its drop: Drop
// sets no_new_privs, which Install requires, and after Install no
// identity change is possible any more.
func Example() {
	if err := seccomp.Supported(); err != nil {
		log.Fatal(err) // refuse to start rather than serve unfiltered
	}
	id, err := privdrop.Resolve("alice", "", privdrop.Policy{})
	if err != nil {
		log.Fatal(err)
	}
	if err := privdrop.Drop(id); err != nil {
		log.Fatal(err)
	}
	if err := seccomp.Default().Install(); err != nil {
		log.Fatal(err)
	}
	// From here on, this process, every thread of it and everything it
	// starts run under the filter.
}

// Default's rules, as the filter applies them.
func ExampleDefault() {
	for _, r := range seccomp.Default().Rules {
		fmt.Println(r)
	}
	// Output:
	// ptrace: EPERM
	// process_vm_readv: EPERM
	// process_vm_writev: EPERM
	// process_madvise: EPERM
	// pidfd_getfd: EPERM
	// bpf: EPERM
	// perf_event_open: EPERM
	// userfaultfd: EPERM
	// io_uring_setup: EPERM
	// io_uring_enter: EPERM
	// io_uring_register: EPERM
	// keyctl: EPERM
	// add_key: EPERM
	// request_key: EPERM
	// unshare: EPERM
	// setns: EPERM
	// mount: EPERM
	// umount2: EPERM
	// pivot_root: EPERM
	// fsopen: EPERM
	// fsconfig: EPERM
	// fsmount: EPERM
	// fspick: EPERM
	// move_mount: EPERM
	// open_tree: EPERM
	// open_tree_attr: EPERM
	// mount_setattr: EPERM
	// kexec_load: EPERM
	// kexec_file_load: EPERM
	// init_module: EPERM
	// finit_module: EPERM
	// delete_module: EPERM
	// swapon: EPERM
	// swapoff: EPERM
	// reboot: EPERM
	// acct: EPERM
	// quotactl: EPERM
	// quotactl_fd: EPERM
	// lookup_dcookie: EPERM
	// iopl: EPERM
	// ioperm: EPERM
	// syslog: EPERM
	// vhangup: EPERM
	// fanotify_init: EPERM
	// open_by_handle_at: EPERM
	// name_to_handle_at: EPERM
	// clock_settime: EPERM
	// settimeofday: EPERM
	// adjtimex: EPERM
	// clock_adjtime: EPERM
	// setuid: EPERM
	// setgid: EPERM
	// setreuid: EPERM
	// setregid: EPERM
	// setresuid: EPERM
	// setresgid: EPERM
	// setfsuid: EPERM
	// setfsgid: EPERM
	// setgroups: EPERM
	// clone3: ENOSYS
	// clone when the first argument has any of 0x7e020000: EPERM
	// personality unless the first argument is 0x0 or 0xffffffff: EPERM
}

// A filter of one's own: here only io_uring, refused as a kernel without
// it would answer.
func ExampleFilter_Program() {
	f := &seccomp.Filter{Rules: []seccomp.Rule{
		{Syscall: "io_uring_setup", Errno: unix.ENOSYS},
		{Syscall: "io_uring_enter", Errno: unix.ENOSYS},
		{Syscall: "io_uring_register", Errno: unix.ENOSYS},
	}}
	prog, err := f.Program()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(prog) > 0)
	_, err = (&seccomp.Filter{Rules: []seccomp.Rule{{Syscall: "kcmp", Errno: unix.EPERM}}}).Program()
	fmt.Println(err != nil)
	// Output:
	// true
	// true
}
