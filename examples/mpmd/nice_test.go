//go:build !cgo

package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/testenv"
)

// niceOf returns the nice value of pid (field 19 of /proc/<pid>/stat).
func niceOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	var n int
	fmt.Sscan(f[16], &n) // field 19; f[0] is field 3
	return n
}

// An identity with a negative nice (documented: -20..19) hung: the
// master had given up CAP_SYS_NICE at start, so every worker spawn
// failed and its requests waited for ever. Now the master keeps it when
// the configuration it starts with needs it; a reload that would need it
// when the master no longer has it is refused, and the sites keep
// running.
func TestNegativeNice(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	page := map[string]string{"a.txt": "a\n"}
	for _, c := range []struct {
		name      string
		startNice string
	}{{"starts with it", "nice = -5\n"}, {"reload adds it", ""}} {
		t.Run(c.name, func(t *testing.T) {
			addr := freePort(t)
			uid := testenv.FreeID(t, 2591)
			mux := testenv.FreeID(t, 2592)
			sites := []testSite{{name: "alice", uid: uid, pages: page, idExtra: c.startNice}}
			path := writeSites(t, addr, fmt.Sprintf("multiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\n", mux, mux), sites)
			d := startDaemon(t, addr, "-config", path)
			if code, body := d.get("alice.test", "/a.txt"); code != 200 || body != "a\n" {
				t.Fatalf("alice.test: %d %q\n%s", code, body, d.out)
			}
			want := 0
			if c.startNice != "" {
				want = -5
			}
			for _, pid := range pidsOf(t, uid) {
				if n := niceOf(t, pid); n != want {
					t.Errorf("alice's pid %d runs at nice %d, want %d", pid, n, want)
				}
			}
			if c.startNice != "" {
				return
			}
			cfg, _ := os.ReadFile(path)
			os.WriteFile(path, []byte(strings.Replace(string(cfg), "group = \""+fmt.Sprint(uid)+"\"\n", "group = \""+fmt.Sprint(uid)+"\"\nnice = -5\n", 1)), 0o644)
			d.cmd.Process.Signal(syscall.SIGHUP)
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(d.out.String(), "reload refused: a negative nice"); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no refusal of the reload:\n%s", d.out)
				}
			}
			if code, body := d.get("alice.test", "/a.txt"); code != 200 || body != "a\n" {
				t.Fatalf("alice.test after the refused reload: %d %q", code, body)
			}
		})
	}
}
