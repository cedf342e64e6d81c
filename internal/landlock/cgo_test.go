//go:build cgo

package landlock

import (
	"errors"
	"testing"

	"github.com/gompm/mpm/internal/testenv"
)

// In a cgo build (the race detector's) the sandbox tests are not built;
// see sandbox_test.go. There are no helpers to run.
var helpers = map[string]testenv.Helper{}

func TestSandboxTestsNeedNoCgo(t *testing.T) {
	t.Skip("sandbox tests are built only with CGO_ENABLED=0, the supported build (make test runs them); this cgo build runs the others")
}

// A cgo build cannot restrict every thread; Restrict says so, naming the
// fix, before it changes anything (this test process stays unrestricted).
func TestRestrictRefusesCgo(t *testing.T) {
	rs := DefaultSystemPaths()
	_, err := rs.Restrict()
	if !errors.Is(err, errCgo) {
		t.Fatalf("Restrict() in a cgo build = %v, want the cgo error", err)
	}
	t.Log(err)
}
