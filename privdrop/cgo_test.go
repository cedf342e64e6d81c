//go:build cgo

package privdrop

import (
	"errors"
	"testing"

	"github.com/gompm/mpm/internal/testenv"
)

// In a cgo build (the race detector's) the privilege tests are not built;
// see root_test.go. There are no helpers to run.
var helpers = map[string]testenv.Helper{}

func TestPrivilegeTestsNeedNoCgo(t *testing.T) {
	t.Skip("privilege tests are built only with CGO_ENABLED=0, the supported build (make test runs them); this cgo build runs the others")
}

// A cgo build cannot drop privileges on every thread; Supported says so,
// naming the fix.
func TestSupportedRefusesCgo(t *testing.T) {
	err := Supported()
	if !errors.Is(err, errCgo) {
		t.Fatalf("Supported() in a cgo build = %v, want the cgo error", err)
	}
	t.Log(err)
}
