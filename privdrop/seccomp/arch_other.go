//go:build !amd64 && !arm64

package seccomp

import (
	"fmt"
	"runtime"
)

// Only x86_64 and arm64 have a system call table here. Elsewhere every
// Filter refuses to build or install, rather than filter by the numbers of
// another architecture.
const (
	auditArch = 0
	x32Bit    = 0
)

var archErr = fmt.Errorf("seccomp: %s: %w", runtime.GOARCH, ErrUnsupportedArch)

var numbers map[string]int
