package landlock

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped by the errors of [ABI] and [Ruleset.Restrict]
// when the running kernel offers no Landlock at all. errors.Is(err,
// syscall.ENOSYS) or errors.Is(err, syscall.EOPNOTSUPP) tells which case.
var ErrUnavailable = errors.New("landlock: not available")

// ABI returns the Landlock ABI version of the running kernel (1 for Linux
// 5.13, 7 for 6.15; see the package documentation for what each adds).
// The system call is the only reliable source: /sys/kernel/security/lsm
// is often absent (securityfs not mounted, as in most containers).
//
// The error wraps ErrUnavailable when the kernel has no Landlock
// (ENOSYS: older than 5.13 or built without CONFIG_SECURITY_LANDLOCK) or
// has it but did not enable it at boot (EOPNOTSUPP: "landlock" missing
// from the lsm= parameter or CONFIG_LSM).
func ABI() (int, error) {
	v, err := createRulesetFlags(unix.LANDLOCK_CREATE_RULESET_VERSION)
	if err != nil {
		return 0, err
	}
	return int(v), nil
}

// Errata returns the bit set of the Landlock errata (fixed bugs) the
// running kernel reports, bit n-1 for erratum n: erratum 1 (ABI 4) stops
// TCP rights from applying to other stream protocols, erratum 2 (ABI 6)
// always allows signals between threads of one process, erratum 3 (ABI 1)
// stops rights from widening through rename or link of a directory moved
// out of a bind mount. A kernel that predates the question itself
// returns an error (EINVAL); a fix it lacks is 0 in the set.
func Errata() (uint64, error) {
	return createRulesetFlags(unix.LANDLOCK_CREATE_RULESET_ERRATA)
}

// createRulesetFlags asks landlock_create_ruleset(NULL, 0, flags) a
// question about the kernel.
func createRulesetFlags(flags uintptr) (uint64, error) {
	r, _, e := syscall.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, flags)
	if e != 0 {
		return 0, unavailable(e)
	}
	return uint64(r), nil
}

// unavailable explains the two errors every Landlock system call returns
// when the kernel cannot do Landlock; other errors it returns as they
// are.
func unavailable(e syscall.Errno) error {
	switch e {
	case syscall.ENOSYS:
		return fmt.Errorf("%w: the kernel has no Landlock (%w): it is older than 5.13 or built without CONFIG_SECURITY_LANDLOCK", ErrUnavailable, e)
	case syscall.EOPNOTSUPP:
		return fmt.Errorf("%w: the kernel has Landlock but it is not enabled (%w): add landlock to the lsm= boot parameter", ErrUnavailable, e)
	}
	return e
}

// Access rights, as named in <linux/landlock.h>.
const (
	fsExecute    = unix.LANDLOCK_ACCESS_FS_EXECUTE
	fsWriteFile  = unix.LANDLOCK_ACCESS_FS_WRITE_FILE
	fsReadFile   = unix.LANDLOCK_ACCESS_FS_READ_FILE
	fsReadDir    = unix.LANDLOCK_ACCESS_FS_READ_DIR
	fsRemoveDir  = unix.LANDLOCK_ACCESS_FS_REMOVE_DIR
	fsRemoveFile = unix.LANDLOCK_ACCESS_FS_REMOVE_FILE
	fsMakeChar   = unix.LANDLOCK_ACCESS_FS_MAKE_CHAR
	fsMakeDir    = unix.LANDLOCK_ACCESS_FS_MAKE_DIR
	fsMakeReg    = unix.LANDLOCK_ACCESS_FS_MAKE_REG
	fsMakeSock   = unix.LANDLOCK_ACCESS_FS_MAKE_SOCK
	fsMakeFifo   = unix.LANDLOCK_ACCESS_FS_MAKE_FIFO
	fsMakeBlock  = unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK
	fsMakeSym    = unix.LANDLOCK_ACCESS_FS_MAKE_SYM
	fsRefer      = unix.LANDLOCK_ACCESS_FS_REFER     // ABI 2
	fsTruncate   = unix.LANDLOCK_ACCESS_FS_TRUNCATE  // ABI 3
	fsIoctlDev   = unix.LANDLOCK_ACCESS_FS_IOCTL_DEV // ABI 5

	netBindTCP = unix.LANDLOCK_ACCESS_NET_BIND_TCP // ABI 4

	scopeAbstractUnixSocket = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET // ABI 6
)

// The rights each list of a Ruleset grants. A rule on a file (not a
// directory) takes only the rights in fileRights.
const (
	readOnlyRights  = fsReadFile | fsReadDir
	readExecRights  = readOnlyRights | fsExecute
	readWriteRights = readOnlyRights | fsWriteFile | fsTruncate |
		fsMakeReg | fsMakeDir | fsMakeSym | fsMakeSock | fsMakeFifo |
		fsRemoveFile | fsRemoveDir | fsRefer
	fileRights = fsExecute | fsWriteFile | fsReadFile | fsTruncate | fsIoctlDev
)

// handledFS is the set of filesystem rights a ruleset handles (denies
// unless a rule grants them) at ABI abi: every right that ABI has. Later
// ABIs add rights that are not handled (see the package documentation);
// asking for a right the kernel does not know would fail the whole
// ruleset (EINVAL).
func handledFS(abi int) uint64 {
	if abi < 1 {
		return 0
	}
	r := uint64(fsExecute | fsWriteFile | fsReadFile | fsReadDir |
		fsRemoveDir | fsRemoveFile | fsMakeChar | fsMakeDir | fsMakeReg |
		fsMakeSock | fsMakeFifo | fsMakeBlock | fsMakeSym)
	if abi >= 2 {
		r |= fsRefer
	}
	if abi >= 3 {
		r |= fsTruncate
	}
	if abi >= 5 {
		r |= fsIoctlDev
	}
	return r
}

// handledNet is the set of network rights handled at ABI abi: binding a
// TCP port, not connecting.
func handledNet(abi int) uint64 {
	if abi >= 4 {
		return netBindTCP
	}
	return 0
}

// scopes is the set of IPC scopes at ABI abi: abstract unix sockets, not
// signals.
func scopes(abi int) uint64 {
	if abi >= 6 {
		return scopeAbstractUnixSocket
	}
	return 0
}

// rulesetAttrSize is how much of struct landlock_ruleset_attr ABI abi
// knows: handled_access_fs, then handled_access_net (ABI 4), then
// scoped (ABI 6).
func rulesetAttrSize(abi int) uintptr {
	switch {
	case abi >= 6:
		return 24
	case abi >= 4:
		return 16
	}
	return 8
}
