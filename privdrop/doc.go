// Package privdrop changes the identity of a Go process for good, on
// every OS thread, and proves that it did.
//
// # Why a package for this
//
// On Linux, uids, gids, supplementary groups and capabilities belong to a
// thread, not to a process. A Go program runs its goroutines on many OS
// threads, so a setuid that reaches one thread leaves the others as root.
// The standard library's syscall.Setuid and friends use
// syscall.AllThreadsSyscall to reach every thread, but a real drop needs
// more than a uid change: the capability bounding set, the ambient set,
// no_new_privs, the dumpable flag, the chroot, and an order in which each
// step still has the privilege it needs. privdrop does all of it and then
// reads /proc/self/task/*/status to check every thread, because a drop that
// cannot be verified cannot be trusted.
//
// # Identities and policies
//
// An [Identity] says what a process becomes: uid, gid, supplementary
// groups, and optionally a chroot, working directory, nice value, umask
// and resource limits. [Resolve] builds one from names or numbers
// ("alice", or "2001" with a group). A [Policy] refuses uid 0, gid 0 and
// ids below a minimum (100 by default, as suEXEC does) unless told
// otherwise; its errors name the value and the rule ([ErrRoot],
// [ErrBelowMin]). Check every identity that comes from configuration:
//
//	id, err := privdrop.Resolve("alice", "", privdrop.Policy{})
//
// # Dropping the calling process
//
// [Drop] changes the calling process to an Identity: chroot (when set),
// nice, rlimits, empty bounding set, groups, gid, uid, every capability set
// cleared, no_new_privs set, not dumpable, umask, working directory, in
// that order (the comment in Drop's source says why each step is where it is). It then
// verifies every thread and returns a *[VerifyError] naming the first
// thread and field that differs. If Drop fails, exit: the process may be
// between identities. [Verify] checks the same at any later time.
//
// # Trimming a process that stays root
//
// A master process that must keep spawning children as other users cannot
// drop; it trims. [Trim] leaves the permitted, effective and bounding sets
// equal to the capabilities kept, empties the inheritable and ambient
// sets, and sets and locks [TrimSecurebits], so that no program it runs
// gains root's capabilities back through execve.
//
// # Starting a child as an identity
//
// Go cannot fork without exec, so a worker is a new process. [Prepare]
// sets up an *exec.Cmd so the child starts as the identity's uid, gid and
// groups, holding as ambient capabilities only what it needs to finish
// the job (CAP_SETPCAP to empty its bounding set, CAP_SYS_CHROOT for a
// chroot, CAP_SYS_NICE for a negative nice). The child calls [Complete]
// first thing in main, which performs the rest of the drop and verifies it.
// This split, rather than libcap's cap.Launcher, is deliberate: the
// launcher ignores a chroot when a callback sets the process attributes,
// and a parent-death signal set through it fires as soon as its launch
// thread exits.
//
// # Build requirements
//
// Linux only, built with CGO_ENABLED=0. Without cgo, libcap's psx layer is
// syscall.AllThreadsSyscall; with cgo, AllThreadsSyscall is unavailable
// (privdrop then reports that the binary was built with cgo), psx walks
// /proc on every call and cannot after a chroot, and a dynamically linked
// binary cannot run inside an empty jail.
//
// # Testing
//
// The package's privilege tests run as root and drop inside a child copy
// of the test binary, then read the child's /proc files from outside. Set
// MPM_REQUIRE_ROOT=1 to make them fail instead of skip when not root.
package privdrop
