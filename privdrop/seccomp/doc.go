// Package seccomp builds a seccomp-BPF system call filter in Go, without
// cgo or libseccomp, and puts it on every thread of the calling process.
//
// # Why a filter, after a drop
//
// A worker that privdrop.Drop has dropped runs as its site's user, with no
// capabilities and no_new_privs, and so does the PHP it runs. Most of what
// the filter refuses would already fail for lack of a capability. It is
// refused anyway for two reasons. Defense in depth: a kernel bug reached
// before the capability check (or a capability check gone wrong) stays
// out of reach. And some calls need no privilege at all, yet open large
// kernel interfaces that a web tenant has no use for and that have a long
// record of local root exploits: unprivileged user namespaces (which hand
// out capabilities inside them, and with them the mount, netfilter and
// namespace code), io_uring, userfaultfd, perf events, eBPF, the key
// retention service.
//
// A refused call does not run and fails with an errno (EPERM almost
// always); nothing is killed, so PHP and the programs it starts report a
// clean error ("Operation not permitted").
//
// # What Default refuses
//
// With EPERM:
//
//   - Reaching into other processes: ptrace, process_vm_readv,
//     process_vm_writev, process_madvise, pidfd_getfd. (The last two act,
//     like the first three, on a process the caller could ptrace: another
//     PHP of the same site.)
//   - Kernel interfaces: bpf, perf_event_open, userfaultfd,
//     io_uring_setup, io_uring_enter, io_uring_register, keyctl, add_key,
//     request_key. io_uring is refused whole: it is one of the largest
//     sources of kernel exploits of recent years (several distributions
//     and cloud providers turn it off), it lets a process issue system
//     calls the filter never sees (the ring's operations do not pass
//     through the system call entry), and PHP does not use it; programs
//     that can (libuv) fall back to threads when io_uring_setup fails.
//     EPERM is also what a kernel with io_uring disabled by sysctl
//     returns.
//   - Namespaces and mounts: unshare (whatever the flags), setns, mount,
//     umount2, pivot_root, and the new mount API: fsopen, fsconfig,
//     fsmount, fspick, move_mount, open_tree, open_tree_attr,
//     mount_setattr.
//   - clone with any namespace flag ([NamespaceFlags]: CLONE_NEWNS,
//     CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
//     CLONE_NEWPID, CLONE_NEWNET). fork, vfork, threads and every other
//     clone keep working.
//   - Administering the machine: kexec_load, kexec_file_load,
//     init_module, finit_module, delete_module, swapon, swapoff, reboot,
//     acct, quotactl, quotactl_fd, lookup_dcookie, iopl, ioperm (x86
//     only), syslog (glibc's klogctl: the kernel log, which may show
//     kernel addresses), vhangup, fanotify_init, open_by_handle_at (the
//     "shocker" container escape) and name_to_handle_at.
//   - Setting the clocks: clock_settime, settimeofday, adjtimex,
//     clock_adjtime. adjtimex and clock_adjtime also read the clock's
//     state when asked to change nothing; those reads fail too (glibc's
//     ntp_gettime), which PHP never does.
//   - Changing identity, whatever the arguments: setuid, setgid,
//     setreuid, setregid, setresuid, setresgid, setfsuid, setfsgid,
//     setgroups. Without capabilities these could still swap among the
//     ids the process holds; refused, the identity is fixed for the
//     process's life. (mpm-itk's filter checks the uid and gid calls and
//     forgets setgroups.) setfsuid and setfsgid fail with -1 and EPERM,
//     which the kernel itself never returns for them: a program asking
//     setfsuid(-1) for the current fsuid gets -1.
//   - personality, except the query (0xffffffff) and the default persona
//     (0): no READ_IMPLIES_EXEC, and no ADDR_NO_RANDOMIZE to take address
//     space randomization away from what the process runs next.
//
// With ENOSYS:
//
//   - clone3. Its flags are in a structure in memory, which a filter
//     cannot read (see below), so a namespace flag could pass. ENOSYS
//     says "this kernel has no clone3", and glibc (2.34 and later, for
//     threads and posix_spawn) then falls back to clone, whose flags the
//     filter checks; musl never uses clone3. Docker's and systemd's
//     filters do the same. Go's os/exec uses clone too, except when
//     SysProcAttr.UseCgroupFD is set: that fails in a filtered process.
//   - Every system call of another ABI than the process's own: i386
//     (int 0x80) and x32 (__X32_SYSCALL_BIT) on x86_64, AArch32 on
//     arm64. Their numbers mean other calls, and a filter that read them
//     as native numbers could be walked around. ENOSYS is what a kernel
//     built without those ABIs returns. This is part of every Filter,
//     not a rule.
//
// # What stays allowed on purpose
//
// Everything else, and in particular what PHP and the programs it runs
// need: socket, connect, bind and listen (databases, mail, APIs);
// execve and execveat (sendmail, ImageMagick, git); fork, vfork and
// threads; mmap and mprotect with PROT_EXEC (the PCRE and opcache JITs);
// prctl; kill (the kernel already limits it to the site's own processes);
// seccomp itself (a program may add a filter of its own, which can only
// refuse more).
//
// # What a filter cannot see
//
// A seccomp filter sees the system call number, the architecture and the
// six arguments as numbers. It cannot follow a pointer: not the path of an
// open, not the address of a connect, not clone3's flags, not the
// contents of a structure (a program could change the memory after the
// check anyway). So it cannot restrict which files are opened or which
// hosts are reached: that is the job of file permissions, the chroot and
// the firewall. And it checks only the low 32 bits of the first argument
// of clone and personality, which is all the kernel reads of them.
//
// # Installing
//
// [Filter.Install] needs no_new_privs on the calling thread (see its
// documentation for why it insists even as root) and puts the filter on
// every thread at once with SECCOMP_FILTER_FLAG_TSYNC. It comes last in a
// drop: after it, setgroups, setresgid and setresuid fail, so a process
// that installs the filter cannot change identity any more, nor start a
// child with os/exec's SysProcAttr.Credential (the child's setgroups
// fails). [Supported] reports whether the kernel can take a filter.
//
//	if err := privdrop.Drop(id); err != nil { ... }
//	if err := seccomp.Default().Install(); err != nil { ... }
//
// A filter is part of the process for good and passes to every child.
// To see it from outside, read the Seccomp line of /proc/<pid>/status
// (2: filtered).
//
// # Cost
//
// Any filter sends a process's system calls through the kernel's slower
// entry path: about 40 ns per call where the tests were measured (Linux
// 6.18 in a virtual machine, where getpid takes about 160 ns). Beyond
// that, the kernel remembers, per call number, that a filter allows the
// call whatever its arguments, and then skips the program: for read,
// write and nearly every other call, Default costs what an empty filter
// costs. The program runs in full only for the calls it refuses and for
// clone and personality, whose arguments it reads: about 30 ns more.
// TestSyscallCost measures both (go test -v -run SyscallCost).
//
// # Architectures
//
// x86_64 and arm64, the architectures the system call tables here cover
// (from golang.org/x/sys/unix). On any other, Program, Install and
// Supported return an error wrapping [ErrUnsupportedArch], rather than
// filter by numbers that mean other calls.
//
// # Testing
//
// The tests that install a filter do it in a child copy of the test
// binary, as root, and check every refused call's errno, that the allowed
// ones still work, that every thread and the children are filtered. Set
// MPM_REQUIRE_ROOT=1 to make them fail instead of skip when not root.
package seccomp
