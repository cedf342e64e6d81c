//go:build !cgo

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gompm/mpm/internal/testenv"
)

// The status page of a host with many sites: the master's answer to the
// status process was one message, and from about 300 identities it no
// longer fit; the status page then failed for good.
func TestStatusManyIdentities(t *testing.T) {
	testenv.RequireRoot(t)
	const n = 400
	addr := freePort(t)
	dir := testenv.PublicDir(t, 0o755)
	root := filepath.Join(dir, "www")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "a.txt"), []byte("a\n"), 0o644)
	mux := testenv.FreeID(t, 2599)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "[server]\nlisten = [%q]\nrun_dir = %q\nmultiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\n", addr, filepath.Join(dir, "run"), mux, mux)
	for i := range n {
		// Ids with no account (testenv.FreeID looks each one up).
		id := testenv.FreeID(t, 3000+i)
		fmt.Fprintf(&cfg, "\n[identity.s%d]\nuser = \"%d\"\ngroup = \"%d\"\n\n[[vhost]]\nserver_name = \"s%d.test\"\ndocument_root = %q\nidentity = \"s%d\"\n", i, id, id, i, root, i)
	}
	path := filepath.Join(dir, "mpmd.toml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, addr, "-config", path)
	for _, h := range []string{"s0.test", fmt.Sprintf("s%d.test", n-1)} {
		if code, body := d.get(h, "/a.txt"); code != 200 || body != "a\n" {
			t.Fatalf("%s: %d %q", h, code, body)
		}
	}
	c := statusClient(filepath.Join(dir, "run", "status.sock"))
	for range 2 { // and again: the exchange still works after a large answer
		resp, err := c.Get("http://localhost/status")
		if err != nil {
			t.Fatal(err)
		}
		var pools []poolSnapshot
		err = json.NewDecoder(resp.Body).Decode(&pools)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("/status: %v %v\n%s", resp.Status, err, d.out)
		}
		if len(pools) != n {
			t.Fatalf("/status lists %d pools, want %d", len(pools), n)
		}
		b, _ := json.Marshal(pools)
		if len(b) <= 128<<10 {
			t.Fatalf("the answer is %d bytes: no larger than the old single message, so this test shows nothing", len(b))
		}
	}
	for _, p := range []string{"/", "/metrics"} {
		resp, err := c.Get("http://localhost" + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
}
