// Package landlock confines a process, and every process it starts, to
// the files it is given, with Linux's Landlock (5.13 and later), without
// cgo.
//
// # Why
//
// Each site's worker and PHP run as the site's own user, but Unix
// permissions do not stop one tenant's PHP from reading another tenant's
// world-readable file: a wp-config.php at 0644 in a 0755 tree. Landlock
// lets an unprivileged process give up access to everything but the
// paths it names, for good; the processes it starts inherit the
// restriction and can only narrow it. The worker restricts itself after
// its privilege drop and before it serves anything, and php-cgi (or a
// PHP-FPM it starts) inherits it:
//
//	rs := landlock.DefaultSystemPaths()
//	rs.ReadOnly = append(rs.ReadOnly, site.Root)
//	rs.ReadWrite = append(rs.ReadWrite, site.Tmp, site.Sessions)
//	st, err := rs.Restrict()
//
// # What a Ruleset grants
//
// [Ruleset.Restrict] handles (denies unless granted) every filesystem
// right the running kernel knows but RESOLVE_UNIX (ABI 9, see below); a
// path grants its rights to everything beneath it:
//
//   - ReadExec: read files, list directories, execute;
//   - ReadOnly: read and list;
//   - ReadWrite: read, list, write, truncate, make and remove files,
//     directories, symlinks, fifos and sockets, and move files between
//     ReadWrite trees (REFER). Not execute: a program dropped into an
//     upload directory does not run (the dynamic loader can still run it,
//     since Landlock does not check mmap: measured, this is a hurdle, not
//     a wall).
//     Not device nodes.
//
// A rule on a file, not a directory, takes only the rights that apply to
// files (read, write, execute, truncate). Device ioctls (ABI 5) are
// handled and granted nowhere: reading /dev/urandom needs none. Rights add
// up across lists.
//
// # Rules belong to files, not names
//
// Restrict resolves each path, following symlinks, and the rule belongs
// to the file or directory it found. A file replaced by rename is a new
// file with no rule: useradd replaces /etc/passwd that way, resolvconf,
// NetworkManager and systemd-resolved replace resolv.conf, ldconfig
// replaces /etc/ld.so.cache. A restricted process then cannot read the
// new one (glibc and Go fall back to a resolver on localhost when they
// cannot read resolv.conf) until it is restarted; files replaced inside
// a directory that has a rule stay in reach. Workers should be recycled
// after such changes (a reload does it). Losing /etc/ld.so.cache is
// harmless on Debian, whose loader finds the libraries without it.
//
// # Missing paths
//
// A path that does not exist, or that the process cannot reach, is
// skipped and named in Status.Skipped, never an error: skipping grants
// nothing (it fails closed), and a system path absent on one system
// (/etc/ld.so.preload) must not stop a worker. A caller that
// requires its own paths checks Skipped. A relative path is an error.
//
// # Threads
//
// landlock_restrict_self restricts the calling thread only, and a Go
// process runs on many. Restrict sets no_new_privs and restricts every
// thread with syscall.AllThreadsSyscall, which exists only in a binary
// built with CGO_ENABLED=0; the runtime ends the process rather than
// leave a thread behind. Threads started later inherit the restriction.
// Each thread gets a domain of its own, all with the same rules, and
// two consequences follow: an abstract unix socket listened on by one
// thread cannot be connected to from another (the scope below;
// measured), and Landlock's ptrace rule keeps a thread from inspecting
// a child another thread started (ptrace, process_vm_readv; its /proc
// files are out of reach anyway). Landlock ABI 8 adds
// LANDLOCK_RESTRICT_SELF_TSYNC, one domain for all threads; it is not
// used yet (no kernel here to test it on).
//
// # Network and IPC
//
// From ABI 4, binding a TCP port is denied except port 0 (a port the
// kernel picks) and Ruleset.BindTCP: a tenant cannot take a port of its
// choosing (8080, or one another service expects). Port 0 stays allowed
// because listen(2) on an unbound socket gets an ephemeral port without
// bind(2), which Landlock does not see (measured), so denying port 0
// would only break bind-before-connect (PHP's socket bindto option,
// active-mode FTP). Connecting is not restricted: PHP connects to
// databases, mail and HTTP APIs. UDP is not restricted (DNS).
//
// From ABI 6, abstract unix sockets are scoped: a restricted process
// cannot connect to an abstract socket made outside its domain. Abstract
// sockets have no owner and no permissions; any process in the network
// namespace can connect to any of them, which makes them a channel
// between tenants and to root's daemons (containerd-shim's
// CVE-2020-15257 was one). Signals are not scoped: Unix already refuses
// kill() across users, and with one domain per thread a scope would stop
// the worker from killing a PHP process another thread started, which
// cgirun and fpm do (measured: EPERM, by kill(2) and by pidfd alike).
//
// Connecting to a named unix socket (MySQL's, PHP-FPM's) is governed by
// its file's permissions, not by these rules: Landlock checks it only
// from ABI 9 (LANDLOCK_ACCESS_FS_RESOLVE_UNIX), which is left unhandled,
// since handling it would cut PHP off from every database socket not
// listed; mpmd's FPM sockets are 0600 in directories private to their
// user.
//
// # ABI versions
//
//	ABI 1 (5.13)  filesystem rights; moving a file to another directory
//	              is always denied
//	ABI 2 (5.19)  REFER: moves and links between ReadWrite trees
//	ABI 3 (6.2)   TRUNCATE
//	ABI 4 (6.7)   TCP bind and connect rights (bind handled)
//	ABI 5 (6.10)  IOCTL_DEV (handled, never granted)
//	ABI 6 (6.12)  scopes: abstract unix sockets (handled), signals (not)
//	ABI 7 (6.15)  audit logging flags (defaults kept)
//	ABI 8         TSYNC: every thread in one domain (not used)
//	ABI 9         RESOLVE_UNIX (not handled)
//	later         UDP rights (not handled)
//
// [ABI] reports the version ([ErrUnavailable] when the kernel has no
// Landlock or has it disabled), [Errata] the fixes the kernel reports;
// Status says what Restrict enforced. On an older ABI, Restrict enforces
// what that ABI can: the caller decides from Status.ABI whether that is
// enough.
//
// # /proc, /sys and /tmp
//
// None is in [DefaultSystemPaths]. A rule on /proc would grant every
// process's entries, and one on /proc/self would name the worker's own
// /proc/<pid> when Restrict runs, not that of the PHP it starts later.
// What breaks: reading /proc after Restrict (privdrop.Verify and the
// procstatus package: verify before restricting), PHP's
// sys_getloadavg(), and PHP 8.3's stack-size detection, which reads
// /proc/self/maps (through glibc's pthread_getattr_np) and falls back to
// an estimate. What works: /dev/stdin and /dev/fd/N when the descriptor
// is a pipe or a socket (they lead to it, and Landlock does not restrict
// those), os.Executable (readlink is not checked).
// /tmp is shared by every user; each site gets its own directory, and
// PHP must be told to use it: session.save_path, upload_tmp_dir,
// sys_temp_dir, TMPDIR, and opcache.lockfile_path, without which php-cgi
// dies at start ("Unable to create lock file", measured).
//
// # Testing
//
// Restrict cannot be undone, so the tests restrict child copies of the
// test binary and read what they could do, from threads started before
// and after Restrict and from the programs they run, as root and after a
// drop to an unprivileged uid. Set MPM_REQUIRE_ROOT=1 to make the tests
// that need root or Landlock fail instead of skip.
package landlock
