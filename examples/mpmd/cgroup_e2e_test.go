//go:build !cgo

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/cgroup"
	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/internal/testenv"
)

const (
	cgAliceUID = 2571
	cgBobUID   = 2572
	cgMuxUID   = 2573
)

// cgHost is what the test finds of the host's cgroup2 hierarchy: where
// mpmd puts its groups when it runs in the root cgroup.
type cgHost struct {
	support cgroup.Support
	parent  string // <mount>/mpmd
}

// requireCgroups skips the test where mpmd would run without cgroups
// (it then says so once in its log, tested by its unit).
func requireCgroups(t *testing.T) cgHost {
	t.Helper()
	s, err := cgroup.Detect()
	if errors.Is(err, cgroup.ErrNoV2) {
		t.Skipf("skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !s.Root() {
		t.Skipf("skipped: the test runs in cgroup %s, not the root cgroup: mpmd would use a delegated layout this test does not know", s.Self)
	}
	parent, _ := s.Layout()
	return cgHost{support: s, parent: parent}
}

// cgSites starts alice and bob in php mode (cgi or fpm), alice with the
// cgroup keys aliceLimits.
func cgSites(t *testing.T, mode, aliceLimits string) (*daemon, []testSite, string) {
	testenv.RequireRoot(t)
	requirePHP(t)
	if mode == phpModeFPM {
		requireFPM(t)
	}
	for _, id := range []int{cgAliceUID, cgBobUID, cgMuxUID} {
		testenv.FreeID(t, id)
	}
	addr := freePort(t)
	pages := func() map[string]string {
		return map[string]string{
			"index.php": uidPage,
			"slow.php":  `<?php sleep(3); echo "slow done";`,
			"burn.php":  `<?php $t = microtime(true); while (microtime(true) - $t < 0.3) { } echo "burnt";`,
			// Past any memory_max the tests set: 1 GiB, a MiB at a time.
			"hog.php": `<?php ini_set("memory_limit", "-1"); $a = []; for ($i = 0; $i < 1024; $i++) { $a[] = str_repeat("x", 1 << 20); } echo "survived ", count($a);`,
			// A bounded fork bomb: 400 processes at once, past pids_max.
			"bomb.php": `<?php echo shell_exec('i=0; while [ $i -lt 400 ]; do sleep 3 & i=$((i+1)); done 2>&1 | tail -1; wait; echo bomb done');`,
		}
	}
	extra := fmt.Sprintf("php_mode = %q\n", mode)
	sites := []testSite{
		{name: "alice", uid: cgAliceUID, extra: extra, idExtra: aliceLimits, pages: pages()},
		{name: "bob", uid: cgBobUID, extra: extra, pages: pages()},
	}
	server := fmt.Sprintf("multiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\n", cgMuxUID, cgMuxUID)
	path := writeSites(t, addr, server, sites)
	t.Cleanup(func() { noProcessOf(t, cgAliceUID, cgBobUID) })
	return startDaemon(t, addr, "-config", path), sites, path
}

// v2Cgroup returns pid's cgroup v2 path ("/mpmd/alice"), or "".
func v2Cgroup(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p
		}
	}
	return ""
}

// processesOf returns the live processes of uid, with their command lines.
func processesOf(uid uint32) map[int]string {
	out := map[int]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || !running(pid) {
			continue
		}
		if st, err := procstatus.Process(pid); err == nil && st.UID[0] == uid {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			out[pid] = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	return out
}

type cgStatus struct {
	Name   string
	Cgroup *cgroupUsage
}

// cgStatusOf reads the status page's JSON through run_dir/status.sock.
func cgStatusOf(t *testing.T, cfgPath string) map[string]cgStatus {
	t.Helper()
	sock := filepath.Join(filepath.Dir(cfgPath), "run", "status.sock")
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	var st []cgStatus
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := c.Get("http://localhost/status")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("status page: %v", err)
		}
	}
	out := map[string]cgStatus{}
	for _, s := range st {
		out[s.Name] = s
	}
	return out
}

// TestCgroupMembership: in both PHP modes, every process of alice (her
// workers, php-cgi during a request, her php process and PHP-FPM's master
// and children) is in alice's group, every process of bob in bob's, and
// the master, multiplexers and status process in neither; the status
// page shows each identity's CPU time, which rises with load; each limit
// this host cannot enforce is logged by name, and the others are
// written; the groups go when mpmd stops.
func TestCgroupMembership(t *testing.T) {
	for _, mode := range []string{phpModeCGI, phpModeFPM} {
		t.Run(mode, func(t *testing.T) {
			host := requireCgroups(t)
			d, sites, path := cgSites(t, mode, "memory_max = \"256M\"\npids_max = 512\ncpu_weight = 200\ncpu_max = \"150%\"\n")
			groupOf := map[uint32]string{}
			for _, s := range sites {
				groupOf[s.uid] = filepath.Join(host.parent, s.name)
				// mpmd listens before it starts the sites.
				waitFor(t, s.name+"'s group", func() bool { _, err := os.Stat(groupOf[s.uid]); return err == nil })
			}

			// Requests in flight on both sites, so that their PHP runs.
			var wg sync.WaitGroup
			for _, s := range sites {
				wg.Add(1)
				go func() { defer wg.Done(); getIgnoringErrors(d.addr, s.name+".test", "/slow.php") }()
			}
			for _, s := range sites {
				waitFor(t, s.name+"'s PHP running", func() bool { return countPHP(s.uid) > 0 })
			}
			for _, s := range sites {
				procs := processesOf(s.uid)
				var php, workers int
				for pid, cmd := range procs {
					switch {
					case strings.HasPrefix(cmd, "mpm-worker"):
						workers++
					case strings.Contains(cmd, "php"):
						php++
					}
					// A process may end between the listing and the read.
					if cg := v2Cgroup(pid); cg != "" && filepath.Join(host.support.Mount, cg) != groupOf[s.uid] {
						t.Errorf("%s's process %d (%s) is in cgroup %s, want %s", s.name, pid, cmd, cg, groupOf[s.uid])
					}
				}
				wantPHP := 1 // php-cgi
				if mode == phpModeFPM {
					wantPHP = 3 // mpm-php, FPM's master and a child
				}
				if workers < 1 || php < wantPHP {
					t.Errorf("%s: %d workers and %d PHP processes, want >= 1 and >= %d: %v", s.name, workers, php, wantPHP, procs)
				}
			}
			master := d.cmd.Process.Pid
			for _, pid := range append(children(t, master), master) {
				cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				if !strings.HasPrefix(string(cmd), "mpm-worker") && !strings.HasPrefix(string(cmd), "mpm-php") {
					if cg := v2Cgroup(pid); strings.HasPrefix(filepath.Join(host.support.Mount, cg), host.parent+"/") {
						t.Errorf("process %d (%s) of the daemon is in an identity's group %s", pid, cmd, cg)
					}
				}
			}
			wg.Wait()

			// CPU time per identity, rising with load.
			before := cgStatusOf(t, path)
			for _, name := range []string{"alice", "bob"} {
				if before[name].Cgroup == nil {
					t.Fatalf("status page: no cgroup usage for %s: %+v", name, before)
				}
			}
			for range 3 {
				for _, s := range sites {
					d.get(s.name+".test", "/burn.php")
				}
			}
			after := cgStatusOf(t, path)
			for _, name := range []string{"alice", "bob"} {
				b, a := before[name].Cgroup.CPUSeconds, after[name].Cgroup.CPUSeconds
				if a < b+0.5 {
					t.Errorf("%s's CPU time went from %.3fs to %.3fs after 0.9s of PHP, want at least 0.5s more", name, b, a)
				}
			}

			// Each limit is written or logged as not enforced, by name.
			ctl := host.support.Usable
			for file, value := range map[string]string{"memory.max": "268435456", "pids.max": "512", "cpu.weight": "200", "cpu.max": "150000 100000"} {
				if slices.Contains(ctl, strings.Split(file, ".")[0]) {
					if b, _ := os.ReadFile(filepath.Join(groupOf[cgAliceUID], file)); strings.TrimSpace(string(b)) != value {
						t.Errorf("alice's %s is %q, want %q", file, b, value)
					}
					continue
				}
				logged := false
				for _, l := range strings.Split(d.out.String(), "\n") {
					named := strings.Contains(l, "LIMIT NOT ENFORCED") && strings.Contains(l, "identity=alice") && strings.Contains(l, "limit="+file+" ")
					logged = logged || named && (strings.Contains(l, "value="+value+" ") || strings.Contains(l, `value="`+value+`"`))
				}
				if !logged {
					t.Errorf("alice's %s = %s is neither enforced nor logged as not enforced:\n%s", file, value, d.out)
				}
				if !slices.Contains(after["alice"].Cgroup.NotEnforced, file+"="+value) {
					t.Errorf("status page: alice's not enforced limits %v lack %s=%s", after["alice"].Cgroup.NotEnforced, file, value)
				}
			}

			d.stop()
			for _, s := range sites {
				if _, err := os.Stat(groupOf[s.uid]); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s's group %s after mpmd stopped: %v, want it removed", s.name, groupOf[s.uid], err)
				}
			}
		})
	}
}

// TestCgroupReload: a reload keeps alice's group (with her new limits);
// bob, removed, loses his once his retiring workers have exited.
func TestCgroupReload(t *testing.T) {
	host := requireCgroups(t)
	d, sites, path := cgSites(t, phpModeCGI, "pids_max = 512\n")
	alice, bob := filepath.Join(host.parent, "alice"), filepath.Join(host.parent, "bob")
	d.get("bob.test", "/")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	cut := strings.Index(cfg, "\n[identity.bob]")
	cfg = strings.Replace(cfg[:cut], "pids_max = 512", "pids_max = 300", 1) + "\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(bob); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's group %s still there 60s after a reload without bob:\n%s", bob, d.out)
		}
	}
	if code, body := d.get("alice.test", "/"); code != 200 || !strings.Contains(body, "uid=") {
		t.Errorf("alice after the reload: %d %q", code, body)
	}
	if len(processesOf(sites[1].uid)) != 0 {
		t.Errorf("bob's processes left after his group went: %v", processesOf(sites[1].uid))
	}
	for pid := range processesOf(sites[0].uid) {
		if cg := v2Cgroup(pid); cg != "" && filepath.Join(host.support.Mount, cg) != alice {
			t.Errorf("alice's process %d is in %s after the reload, want %s", pid, cg, alice)
		}
	}
	if slices.Contains(host.support.Usable, "pids") {
		if b, _ := os.ReadFile(filepath.Join(alice, "pids.max")); strings.TrimSpace(string(b)) != "300" {
			t.Errorf("alice's pids.max after the reload: %q, want 300", b)
		}
	} else if !strings.Contains(d.out.String(), `value=300`) {
		t.Errorf("alice's new pids_max not logged as not enforced:\n%s", d.out)
	}
}

// requireLimits skips the test unless the host's cgroup2 tree gives the
// controllers ctls to mpmd's groups, with the reason the library gives.
func requireLimits(t *testing.T, host cgHost, ctls ...string) {
	t.Helper()
	p, err := cgroup.OpenParent(host.parent)
	if err != nil {
		t.Fatal(err)
	}
	un := p.Unavailable()
	for _, c := range ctls {
		if why, ok := un[c]; ok {
			t.Skipf("skipped: this host cannot enforce the limit: %s", why)
		}
	}
}

// TestCgroupMemoryHog: alice's PHP allocating past memory_max is killed
// by the OOM killer in her group alone; bob keeps answering.
func TestCgroupMemoryHog(t *testing.T) {
	host := requireCgroups(t)
	testenv.RequireRoot(t)
	requireLimits(t, host, "memory")
	d, _, path := cgSites(t, phpModeCGI, "memory_max = \"128M\"\n")
	done := make(chan struct{})
	go func() {
		defer close(done)
		code, body := newClientGet(t, d.addr, "alice.test", "/hog.php")
		if code == 200 && strings.Contains(body, "survived") {
			t.Errorf("alice's PHP allocated 1 GiB under memory_max = 128M: %d %q", code, body)
		}
	}()
	for range 10 {
		if code, body := d.get("bob.test", "/"); code != 200 || !strings.Contains(body, "uid=") {
			t.Errorf("bob while alice hogs memory: %d %q", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	<-done
	if st := cgStatusOf(t, path)["alice"].Cgroup; st == nil || st.OOMKills == nil || *st.OOMKills < 1 {
		t.Errorf("status page: alice's OOM kills %+v, want at least 1", st)
	}
}

// TestCgroupForkBomb: alice's PHP forking 400 processes stops at
// pids_max; bob keeps answering.
func TestCgroupForkBomb(t *testing.T) {
	host := requireCgroups(t)
	testenv.RequireRoot(t)
	requireLimits(t, host, "pids")
	d, _, path := cgSites(t, phpModeCGI, "pids_max = 64\n")
	done := make(chan struct{})
	go func() {
		defer close(done)
		newClientGet(t, d.addr, "alice.test", "/bomb.php")
	}()
	waitFor(t, "alice's fork bomb to hit pids_max", func() bool {
		st := cgStatusOf(t, path)["alice"].Cgroup
		return st != nil && st.PidsMaxHits != nil && *st.PidsMaxHits > 0
	})
	if n := len(processesOf(cgAliceUID)); n > 64 {
		t.Errorf("alice has %d processes under pids_max = 64", n)
	}
	for range 10 {
		if code, body := d.get("bob.test", "/"); code != 200 || !strings.Contains(body, "uid=") {
			t.Errorf("bob during alice's fork bomb: %d %q", code, body)
		}
	}
	<-done
}
