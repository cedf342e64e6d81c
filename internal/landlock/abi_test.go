package landlock

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/gompm/mpm/internal/testenv"
)

// requireLandlock returns the kernel's ABI, or skips t when the kernel
// has no Landlock; under MPM_REQUIRE_ROOT=1 (CI) it fails t instead.
func requireLandlock(t *testing.T) int {
	t.Helper()
	abi, err := ABI()
	if err == nil {
		return abi
	}
	if os.Getenv(testenv.RequireRootEnv) == "1" {
		t.Fatalf("this test needs Landlock and %s=1 forbids skipping it: %v", testenv.RequireRootEnv, err)
	}
	t.Skipf("skipped: %v", err)
	return 0
}

// The ABI is what the kernel says, and every later test depends on it.
func TestABI(t *testing.T) {
	abi := requireLandlock(t)
	if abi < 1 {
		t.Fatalf("ABI() = %d, want >= 1", abi)
	}
	errata, err := Errata()
	if err != nil {
		t.Logf("Landlock ABI %d on %s; errata: %v", abi, kernelRelease(), err)
		return
	}
	t.Logf("Landlock ABI %d on %s; errata fixed: %#x", abi, kernelRelease(), errata)
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "an unknown kernel"
	}
	return "Linux " + strings.TrimSpace(string(b))
}

// The errors for a kernel without Landlock say which case it is and
// match both the sentinel and the errno.
func TestUnavailableErrors(t *testing.T) {
	for _, e := range []syscall.Errno{syscall.ENOSYS, syscall.EOPNOTSUPP} {
		err := unavailable(e)
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, e) {
			t.Errorf("unavailable(%v) = %v: want it to match ErrUnavailable and %v", e, err, e)
		}
		t.Log(err)
	}
	if err := unavailable(syscall.EINVAL); errors.Is(err, ErrUnavailable) {
		t.Errorf("unavailable(EINVAL) = %v: must not claim Landlock is missing", err)
	}
}

// Each ABI gets exactly the rights it knows: asking for one it does not
// know fails the whole ruleset, and one it knows but the ruleset leaves
// unhandled is allowed everywhere.
func TestRightsPerABI(t *testing.T) {
	for _, tc := range []struct {
		abi             int
		fs, net, scoped uint64
		attrSize        uintptr
	}{
		{1, 0x1fff, 0, 0, 8},
		{2, 0x3fff, 0, 0, 8},
		{3, 0x7fff, 0, 0, 8},
		{4, 0x7fff, netBindTCP, 0, 16},
		{5, 0xffff, netBindTCP, 0, 16},
		{6, 0xffff, netBindTCP, scopeAbstractUnixSocket, 24},
		{7, 0xffff, netBindTCP, scopeAbstractUnixSocket, 24},
		// ABI 9's RESOLVE_UNIX (0x10000) and ABI 10's UDP rights stay
		// unhandled (see the package documentation).
		{10, 0xffff, netBindTCP, scopeAbstractUnixSocket, 24},
	} {
		if got := handledFS(tc.abi); got != tc.fs {
			t.Errorf("ABI %d: handledFS = %#x, want %#x", tc.abi, got, tc.fs)
		}
		if got := handledNet(tc.abi); got != tc.net {
			t.Errorf("ABI %d: handledNet = %#x, want %#x", tc.abi, got, tc.net)
		}
		if got := scopes(tc.abi); got != tc.scoped {
			t.Errorf("ABI %d: scopes = %#x, want %#x", tc.abi, got, tc.scoped)
		}
		if got := rulesetAttrSize(tc.abi); got != tc.attrSize {
			t.Errorf("ABI %d: ruleset attr size = %d, want %d", tc.abi, got, tc.attrSize)
		}
	}
	// Read-write grants no execute and no device node; the read lists
	// grant nothing that changes the filesystem.
	if readWriteRights&(fsExecute|fsMakeChar|fsMakeBlock|fsIoctlDev) != 0 {
		t.Errorf("ReadWrite rights %#x include execute, device nodes or device ioctls", readWriteRights)
	}
	if readExecRights != fsReadFile|fsReadDir|fsExecute || readOnlyRights != fsReadFile|fsReadDir {
		t.Errorf("read rights: exec %#x, only %#x", readExecRights, readOnlyRights)
	}
}
