//go:build !cgo

// A hostile tenant: PHP on site "evil" attacks site "victim", the
// multiplexers and the master. Each attempt is one test with the exact
// check; each fails if the defence it tests is removed (see the comment
// on each).

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/internal/testenv"
)

const (
	evilUID   = 2401
	victimUID = 2402
	hostMuxID = 2403
)

// attackPHP runs code as the evil site and returns its output.
type hostile struct {
	d      *daemon
	evil   testSite
	victim testSite
	dir    string
}

// The evil site runs without Landlock and seccomp: these attacks test
// the layers beneath them (the privilege drop, dumpability, descriptors),
// which must hold on a kernel without Landlock too; TestIsolationLayers
// attacks through both.
func startHostile(t *testing.T) *hostile {
	return startHostileWith(t, "landlock = false\nseccomp = false\n")
}

// startHostileWith gives the evil identity extra settings.
func startHostileWith(t *testing.T, evilIdentity string) *hostile {
	testenv.RequireRoot(t)
	requirePHP(t)
	for _, id := range []int{evilUID, victimUID, hostMuxID} {
		testenv.FreeID(t, id)
	}
	addr := freePort(t)
	sites := []testSite{
		{name: "evil", uid: evilUID, idExtra: evilIdentity, pages: map[string]string{"index.php": uidPage}},
		{name: "victim", uid: victimUID, pages: map[string]string{"index.php": uidPage, "secret.txt": "victim's secret\n", "slow.php": `<?php sleep(3); echo "ok";`}},
	}
	path := writeSites(t, addr, fmt.Sprintf("multiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\nmax_body_bytes = \"1M\"\n", hostMuxID, hostMuxID), sites)
	h := &hostile{d: startDaemon(t, addr, "-config", path), evil: sites[0], victim: sites[1], dir: filepath.Dir(path)}
	h.d.get("victim.test", "/") // the victim has a worker running
	// After every attack, once its clients are gone, nothing spins
	// (cleanups run last in first out: before the daemon stops).
	t.Cleanup(func() { assertIdle(t, h.d) })
	return h
}

// exchange writes req (several requests) on one connection to addr and
// returns the status of every response, until the connection closes.
func (h *hostile) exchange(t *testing.T, addr, req string) []int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go io.WriteString(c, req)
	br := bufio.NewReader(c)
	var got []int
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return got
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got = append(got, resp.StatusCode)
	}
}

// php runs code on the evil site.
func (h *hostile) php(t *testing.T, code string) string {
	t.Helper()
	name := fmt.Sprintf("attack%d.php", time.Now().UnixNano())
	p := filepath.Join(h.evil.root, name)
	if err := os.WriteFile(p, []byte("<?php "+code), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chown(p, evilUID, evilUID)
	status, body := h.d.get("evil.test", "/"+name)
	if status != 200 {
		t.Fatalf("attack page: status %d %q", status, body)
	}
	return body
}

// pids of the daemon's processes by role, and of victim's workers.
func (h *hostile) pids(t *testing.T) (master int, muxes, victim []int) {
	master = h.d.cmd.Process.Pid
	for _, pid := range children(t, master) {
		s, err := procstatus.Process(pid)
		if err != nil {
			continue
		}
		switch s.UID[0] {
		case hostMuxID:
			muxes = append(muxes, pid)
		case victimUID:
			victim = append(victim, pid)
		}
	}
	if len(muxes) == 0 || len(victim) == 0 {
		t.Fatalf("found muxes %v, victim workers %v", muxes, victim)
	}
	return master, muxes, victim
}

// The victim's document root is 0700 and its own: the uid switch is the
// defence (drop it and the evil PHP runs as root and reads everything).
func TestHostileReadWriteOtherSite(t *testing.T) {
	h := startHostile(t)
	secret := filepath.Join(h.victim.root, "secret.txt")
	out := h.php(t, fmt.Sprintf(`
echo @file_get_contents(%q) === false ? "read denied\n" : "READ\n";
echo @file_put_contents(%q, "x") === false ? "write denied\n" : "WROTE\n";
echo @file_put_contents(%q, "defaced") === false ? "overwrite denied\n" : "OVERWROTE\n";
echo @scandir(%q) === false ? "list denied\n" : "LISTED\n";
`, secret, filepath.Join(h.victim.root, "planted.php"), filepath.Join(h.victim.root, "index.php"), h.victim.root))
	if out != "read denied\nwrite denied\noverwrite denied\nlist denied\n" {
		t.Errorf("evil site against victim's files:\n%s", out)
	}
}

// Access logs are opened by the master, root-owned 0640: a worker holds
// only the descriptor of its own vhost's log.
func TestHostileLogs(t *testing.T) {
	h := startHostile(t)
	logs := filepath.Join(h.dir, "log")
	out := h.php(t, fmt.Sprintf(`
echo @file_get_contents(%q) === false ? "read victim log denied\n" : "READ\n";
echo @file_put_contents(%q, "forged\n", FILE_APPEND) === false ? "write victim log denied\n" : "WROTE\n";
echo @file_put_contents(%q, "forged\n", FILE_APPEND) === false ? "write own log by path denied\n" : "WROTE OWN\n";
`, filepath.Join(logs, "victim.log"), filepath.Join(logs, "victim.log"), filepath.Join(logs, "evil.log")))
	if out != "read victim log denied\nwrite victim log denied\nwrite own log by path denied\n" {
		t.Errorf("evil site against the logs:\n%s", out)
	}
	// Seen from outside: each site's workers hold their own log's
	// descriptor and not the other's (a worker, and whatever takes it
	// over, can write what it holds).
	own := map[uint32]string{evilUID: "evil.log", victimUID: "victim.log"}
	seen := map[uint32]bool{}
	for _, pid := range children(t, h.d.cmd.Process.Pid) {
		s, err := procstatus.Process(pid)
		if err != nil || own[s.UID[0]] == "" {
			continue
		}
		fds, err := procstatus.FDs(pid)
		if err != nil {
			continue // ended meanwhile
		}
		var held []string
		for _, target := range fds {
			if strings.HasPrefix(target, logs+"/") {
				held = append(held, filepath.Base(target))
			}
		}
		if !slices.Equal(held, []string{own[s.UID[0]]}) {
			t.Errorf("worker %d (uid %d) holds the logs %v, want only %s", pid, s.UID[0], held, own[s.UID[0]])
		}
		seen[s.UID[0]] = true
	}
	if len(seen) != 2 {
		t.Errorf("found the workers of uids %v, want %d and %d", seen, evilUID, victimUID)
	}
}

// Signals, ptrace-style reads of /proc, and the descriptors of other
// processes: different uids are the defence, and for the site's own
// worker (same uid) its being not dumpable.
func TestHostileProcesses(t *testing.T) {
	h := startHostile(t)
	master, muxes, victim := h.pids(t)
	targets := map[string]int{"master": master, "multiplexer": muxes[0], "victim worker": victim[0]}
	for name, pid := range targets {
		out := h.php(t, fmt.Sprintf(`
$pid = %d;
echo posix_kill($pid, 0) ? "SIGNAL OK\n" : "signal denied\n";
echo @file_get_contents("/proc/$pid/mem", false, null, 4096, 16) === false ? "mem denied\n" : "MEM READ\n";
echo @file_get_contents("/proc/$pid/environ") === false ? "environ denied\n" : "ENVIRON READ\n";
echo @readlink("/proc/$pid/fd/0") === false ? "fd denied\n" : "FD READ\n";
echo @readlink("/proc/$pid/cwd") === false ? "cwd denied\n" : "CWD READ\n";
`, pid))
		if out != "signal denied\nmem denied\nenviron denied\nfd denied\ncwd denied\n" {
			t.Errorf("evil site against the %s (pid %d):\n%s", name, pid, out)
		}
	}
	// And they are all still alive.
	for name, pid := range targets {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Errorf("%s %d: %v", name, pid, err)
		}
	}

	// The evil site's own worker runs as the evil uid, so no uid check
	// keeps the site's PHP (its child) out: being not dumpable does.
	// Without it PHP could read the worker's memory and open its
	// descriptors (the pool's scoreboard, through /proc/<pid>/fd).
	out := h.php(t, `
$pid = posix_getppid();
echo str_starts_with((string)@file_get_contents("/proc/$pid/cmdline"), "mpm-worker") ? "parent is the worker\n" : "PARENT IS NOT A WORKER\n";
echo @fopen("/proc/$pid/mem", "r") === false ? "mem denied\n" : "MEM OPENED\n";
echo @file_get_contents("/proc/$pid/maps") === false ? "maps denied\n" : "MAPS READ\n";
echo @file_get_contents("/proc/$pid/environ") === false ? "environ denied\n" : "ENVIRON READ\n";
echo @readlink("/proc/$pid/fd/0") === false ? "fd denied\n" : "FD READ\n";
`)
	if out != "parent is the worker\nmem denied\nmaps denied\nenviron denied\nfd denied\n" {
		t.Errorf("evil site against its own worker (same uid, must not be dumpable):\n%s", out)
	}
}

// No named socket leads to a pool: the dispatch sockets are socket pairs,
// so there is no path another user could connect to (unlike a PHP-FPM
// socket file). Checked against every unix socket the daemon's processes
// hold.
func TestHostileNoNamedSockets(t *testing.T) {
	h := startHostile(t)
	master, muxes, victim := h.pids(t)
	inodes := map[string]bool{}
	for _, pid := range append(append([]int{master}, muxes...), victim...) {
		fds, err := procstatus.FDs(pid)
		if err != nil {
			t.Fatal(err)
		}
		for _, target := range fds {
			if strings.HasPrefix(target, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
			}
		}
	}
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// Num RefCount Protocol Flags Type St Inode [Path]
		if len(fields) < 8 || !inodes[fields[6]] {
			continue
		}
		// The one named socket is the status page's, which only root
		// can connect to.
		if fi, err := os.Stat(fields[7]); fields[7] == filepath.Join(h.dir, "run", "status.sock") && err == nil && fi.Mode().Perm() == 0o600 && fi.Sys().(*syscall.Stat_t).Uid == 0 {
			continue
		}
		t.Errorf("the daemon holds a unix socket reachable by name: %s", sc.Text())
	}
	if len(inodes) == 0 {
		t.Fatal("found no sockets in the daemon's processes")
	}
}

// A setuid-root binary and a binary with file capabilities give the evil
// site nothing: no_new_privs is the defence (without it, the setuid
// copy of id would print euid=0).
func TestHostileRegainPrivileges(t *testing.T) {
	h := startHostile(t)
	bin := testenv.PublicDir(t, 0o755)
	suid := filepath.Join(bin, "id-suid")
	copyFile(t, "/usr/bin/id", suid)
	// os.Chmod takes the setuid bit as os.ModeSetuid (0o4755 would be
	// plain 0o755), and the test proves nothing unless the bit is set.
	if err := os.Chmod(suid, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(suid); err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Fatalf("%s is not setuid: %v %v", suid, fi.Mode(), err)
	}
	capcat := filepath.Join(bin, "cat-caps")
	copyFile(t, "/bin/cat", capcat)
	setcap, err := exec.LookPath("setcap")
	for _, p := range []string{"/usr/sbin/setcap", "/sbin/setcap"} {
		if err != nil {
			if _, serr := os.Stat(p); serr == nil {
				setcap, err = p, nil
			}
		}
	}
	if err != nil {
		if os.Getenv(testenv.RequireRootEnv) == "1" {
			t.Fatal("setcap is not installed (make test installs libcap2-bin)")
		}
		t.Skip("skipped: setcap is not installed")
	}
	// CAP_SETUID is in the master's bounding set, so without the
	// workers' empty bounding set and no_new_privs the binary would run
	// with it.
	if out, err := exec.Command(setcap, "cap_setuid+ep", capcat).CombinedOutput(); err != nil {
		t.Fatalf("setcap: %v %s", err, out)
	}
	out := h.php(t, fmt.Sprintf(`
echo trim(shell_exec(%q)), "\n";
exec(%q, $lines, $rc);
$eff = "refused";
foreach ($lines as $l) { if (str_starts_with($l, "CapEff")) $eff = trim(substr($l, 7)); }
echo $rc == 0 ? $eff : "refused", "\n";
echo posix_setuid(0) ? "SETUID OK\n" : "setuid denied\n";
`, suid+" -u", capcat+" /proc/self/status 2>/dev/null"))
	// The capability binary either runs without its capabilities or,
	// since the bounding set is empty, the kernel refuses to run it at
	// all (it would not get the capabilities it is marked to need).
	want1 := fmt.Sprintf("%d\n0000000000000000\nsetuid denied\n", evilUID)
	want2 := fmt.Sprintf("%d\nrefused\nsetuid denied\n", evilUID)
	if out != want1 && out != want2 {
		t.Errorf("regaining privileges:\n%s\nwant:\n%s", out, want1)
	}
	t.Logf("evil site after trying setuid, file capabilities and setuid(0):\n%s", out)
}

func copyFile(t *testing.T, src, dst string) {
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// Slowloris: hundreds of connections sending a routable request line
// and Host, then a header a byte at a time, hold no worker (the
// multiplexer reads whole heads, each with a deadline, before passing)
// while a normal client keeps its latency: the median of its requests
// during the attack stays within twice its median before (plus 50ms of
// slack for a 2-core machine busy with the attackers), and none of its
// requests takes a second.
func TestHostileSlowloris(t *testing.T) {
	h := startHostile(t)
	measure := func() (median, worst time.Duration) {
		var lat []time.Duration
		for range 20 {
			t0 := time.Now()
			// A new connection each time, through a multiplexer: a
			// kept-alive one would stay with its worker.
			if code, _ := newClientGet(t, h.d.addr, "victim.test", "/"); code != 200 {
				t.Errorf("normal request: %d", code)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		return lat[len(lat)/2], lat[len(lat)-1]
	}
	before, _ := measure()
	const n = 300
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", h.d.addr)
			if err != nil {
				return
			}
			defer c.Close()
			// The request line and Host come at once, so the head is
			// routable at once: only waiting for the whole head keeps
			// the connection off the victim's workers.
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: victim.test\r\n"); err != nil {
				return
			}
			req := "X-Slow-" + fmt.Sprint(i) + ": " + strings.Repeat("a", 100)
			for j := 0; j < len(req); j++ {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := c.Write([]byte{req[j]}); err != nil {
					return
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	during, worst := measure()
	close(stop)
	wg.Wait()
	t.Logf("median latency before %v, during %d slowloris connections %v (worst %v)", before, n, during, worst)
	if during > 2*before+50*time.Millisecond {
		t.Errorf("median latency rose from %v to %v under slowloris", before, during)
	}
	// No request may wait for a worker that a slow head holds.
	if worst > time.Second {
		t.Errorf("a request took %v under slowloris (median %v): it waited for a worker", worst, during)
	}
}

// Request smuggling and malformed framing are refused by the multiplexer
// (vhostroute's head reader) or by the worker (net/http), never
// forwarded ambiguously.
func TestHostileSmuggling(t *testing.T) {
	h := startHostile(t)
	for _, c := range []struct {
		name, req string
		want      int
		// mux: a head whose Host or framing parsers could read two
		// ways is refused by the multiplexer itself and never reaches
		// a worker (whose net/http would also refuse most of them).
		mux bool
	}{
		{"CL and TE", "POST / HTTP/1.1\r\nHost: victim.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, true},
		{"two CLs", "POST / HTTP/1.1\r\nHost: victim.test\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", 400, false},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: victim.test\r\nX: a\r\n b\r\n\r\n", 400, true},
		{"bare CR", "GET / HTTP/1.1\r\nHost: victim.test\r\nX: a\rb\r\n\r\n", 400, true},
		{"bare LF", "GET / HTTP/1.1\nHost: victim.test\n\n", 400, true},
		{"two hosts", "GET / HTTP/1.1\r\nHost: victim.test\r\nHost: evil.test\r\n\r\n", 400, true},
		{"NUL in path", "GET /a\x00b HTTP/1.1\r\nHost: victim.test\r\n\r\n", 400, true},
		{"traversal", "GET /../../../etc/passwd HTTP/1.1\r\nHost: victim.test\r\n\r\n", 400, false},
		{"encoded traversal", "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: victim.test\r\n\r\n", 400, false},
	} {
		resp, err := rawRequest(t, h.d.addr, c.req)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != c.want || strings.Contains(string(body), "root:") {
			t.Errorf("%s: %d %q, want %d", c.name, resp.StatusCode, body, c.want)
		}
		// The multiplexer's answers say why, end in a newline and
		// carry a Content-Length; net/http's early 400s in a worker
		// carry none.
		if c.mux && (resp.ContentLength != int64(len(body)) || !strings.HasPrefix(string(body), fmt.Sprintf("%d %s: ", c.want, http.StatusText(c.want)))) {
			t.Errorf("%s: answered %d %q (Content-Length %d), not by the multiplexer: the request reached a worker", c.name, resp.StatusCode, body, resp.ContentLength)
		}
	}
}

// The rules the multiplexer holds a connection's first request to hold
// for every later one on a kept-alive connection (net/http in the worker,
// laxer, served obs-fold, bare LF and Content-Length with
// Transfer-Encoding there, and the request smuggled after them), over
// plain HTTP and over TLS.
func TestHostileSmugglingLater(t *testing.T) {
	h := startHostile(t)
	first := "GET /index.php HTTP/1.1\r\nHost: victim.test\r\n\r\n"
	smuggled := "GET /secret.txt HTTP/1.1\r\nHost: victim.test\r\n\r\n"
	for _, c := range []struct {
		name, req string
		want      int
	}{
		{"CL and TE", "POST /index.php HTTP/1.1\r\nHost: victim.test\r\nContent-Length: 49\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"obs-fold", "GET /index.php HTTP/1.1\r\nHost: victim.test\r\nX: a\r\n b\r\n\r\n", 400},
		{"bare LF", "GET /index.php HTTP/1.1\nHost: victim.test\n\n", 400},
		// PHP takes no chunked body (411); the framing error ends the
		// connection when net/http discards the body it did not read.
		{"bare LF in a chunk", "POST /index.php HTTP/1.1\r\nHost: victim.test\r\nTransfer-Encoding: chunked\r\n\r\n0\n\r\n", 411},
		{"TE gzip", "POST /index.php HTTP/1.1\r\nHost: victim.test\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"two hosts", "GET /index.php HTTP/1.1\r\nHost: victim.test\r\nHost: evil.test\r\n\r\n", 400},
	} {
		c.req += smuggled
		got := h.exchange(t, h.d.addr, first+c.req)
		// The first is served, the second refused, nothing after it.
		want := []int{200, c.want}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s as the second request: statuses %v, want %v (and nothing after)", c.name, got, want)
		}
	}
}

// A fork bomb and a memory bomb stay inside the evil identity's rlimits
// (nproc counts every process of the uid; as bounds each process's
// address space), and the victim keeps answering.
func TestHostileResourceBombs(t *testing.T) {
	h := startHostileWith(t, "rlimits = { nproc = 30, data = \"512M\" }\n")
	out := h.php(t, `
$n = 0; $procs = [];
for ($i = 0; $i < 200; $i++) {
    $p = @proc_open(["sleep", "5"], [], $pipes);
    if ($p === false) break;
    $procs[] = $p; $n++;
}
echo "started $n\n";
foreach ($procs as $p) { proc_terminate($p, 9); proc_close($p); }
`)
	var started int
	fmt.Sscanf(out, "started %d", &started)
	if started == 0 || started >= 30 {
		t.Errorf("fork bomb: %q, want fewer than the 30 processes nproc allows (and more than none)", out)
	}
	if code, body := h.d.get("victim.test", "/"); code != 200 || !strings.Contains(body, "uid=2402") {
		t.Errorf("victim during the fork bomb: %d %q", code, body)
	}

	name := "bomb.php"
	os.WriteFile(filepath.Join(h.evil.root, name), []byte(`<?php ini_set("memory_limit", "-1"); $s = str_repeat("x", 1 << 30); echo strlen($s);`), 0o600)
	os.Chown(filepath.Join(h.evil.root, name), evilUID, evilUID)
	if _, body := h.d.get("evil.test", "/"+name); strings.Contains(body, "1073741824") {
		t.Errorf("memory bomb allocated 1 GiB under a 512M data limit: %q", body)
	}
	if code, body := h.d.get("victim.test", "/"); code != 200 || !strings.Contains(body, "uid=2402") {
		t.Errorf("victim after the memory bomb: %d %q", code, body)
	}
	// The site recovers once its bombs are gone (nproc counts the
	// threads of its worker too: a fork may fail while they are reaped).
	var code int
	var body string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if code, body = h.d.get("evil.test", "/"); code == 200 {
			break
		}
	}
	if code != 200 {
		t.Errorf("the evil site itself after its bombs: %d %q\n%s", code, body, h.d.out)
	}
}

// TestFaultsUnderLoad kills a worker, a multiplexer and finally the
// master with SIGKILL while clients keep sending requests. Only requests
// in flight at a kill may fail; service comes back at once; the master
// leaks no descriptor; and when the master dies nothing of it remains.
func TestFaultsUnderLoad(t *testing.T) {
	h := startHostile(t)
	master, muxes, _ := h.pids(t)
	fdsBefore, err := procstatus.FDs(master)
	if err != nil {
		t.Fatal(err)
	}
	kidsBefore := len(children(t, master))

	const clients = 4
	var mu sync.Mutex
	var ok, failed int
	var lastOK time.Time
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			host := []string{"victim.test", "evil.test"}[i%2]
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://"+h.d.addr+"/", nil)
				req.Host = host
				resp, err := c.Do(req)
				good := err == nil && resp.StatusCode == 200
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				if good {
					ok++
					lastOK = time.Now()
				} else {
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	phase := func(name string, kill func()) {
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		ok0, failed0 := ok, failed
		mu.Unlock()
		t0 := time.Now()
		kill()
		// Recovery: the first success after the kill.
		var rec time.Duration
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			mu.Lock()
			l := lastOK
			mu.Unlock()
			if l.After(t0) {
				rec = l.Sub(t0)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no successful request within 10s", name)
			}
		}
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		dOK, dFailed := ok-ok0, failed-failed0
		mu.Unlock()
		t.Logf("%s: %d requests succeeded, %d failed, first success %v after the kill", name, dOK, dFailed, rec.Round(time.Microsecond))
		if dFailed > clients {
			t.Errorf("%s: %d requests failed; only the %d in flight may", name, dFailed, clients)
		}
		if rec > 2*time.Second {
			t.Errorf("%s: service came back only after %v", name, rec)
		}
	}
	_, _, victim := h.pids(t)
	phase("kill -9 a victim worker", func() { syscall.Kill(victim[0], syscall.SIGKILL) })
	phase("kill -9 a multiplexer", func() { syscall.Kill(muxes[0], syscall.SIGKILL) })
	close(stop)
	wg.Wait()

	// The killed multiplexer is replaced: the other one kept serving,
	// but without a replacement the next crash would leave none.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, now, _ := h.pids(t)
		if len(now) == len(muxes) && !slices.Contains(now, muxes[0]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("multiplexers %v 5s after killing %d of %v: it was not replaced", now, muxes[0], muxes)
		}
	}

	// The master holds what it held before: the replaced worker and
	// multiplexer left nothing behind. Pipes come and go with children
	// (one per live child, for its output), so they are compared with
	// the number of children; everything else must be as it was.
	time.Sleep(500 * time.Millisecond)
	fdsAfter, err := procstatus.FDs(master)
	if err != nil {
		t.Fatal(err)
	}
	others := func(fds map[int]string) (map[string]int, int) {
		m, pipes := map[string]int{}, 0
		for fd, target := range fds {
			if fd > 2 && strings.HasPrefix(target, "pipe:") {
				pipes++
				continue
			}
			if target == "anon_inode:[pidfd]" {
				continue // one per child, held by os.Process
			}
			m[target]++
		}
		return m, pipes
	}
	before, pipesBefore := others(fdsBefore)
	after, pipes := others(fdsAfter)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("the master's descriptors other than child pipes changed across the kills (-before +after):\n%s", diff)
	}
	// Pipes not tied to a child (the master's own stdio, inherited
	// ones) are the same number before and after.
	if kids := len(children(t, master)); pipes-kids != pipesBefore-kidsBefore {
		t.Errorf("the master holds %d pipes for %d children, had %d for %d:\n%v", pipes, kids, pipesBefore, kidsBefore, fdsAfter)
	}

	// The master dies: every process of the daemon goes with it.
	var all []int
	for _, pid := range children(t, master) {
		all = append(all, pid)
	}
	syscall.Kill(master, syscall.SIGKILL)
	<-h.d.done
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var left []int
		for _, pid := range all {
			if testenv.Running(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v outlived the master by 10s", left)
		}
	}
}

// A huge request body is refused (413) before it reaches PHP, whatever
// PHP's own post_max_size says, and the site keeps answering.
func TestHostileHugeBody(t *testing.T) {
	h := startHostile(t)
	body := strings.NewReader(strings.Repeat("x", 2<<20))
	req, _ := http.NewRequest("POST", "http://"+h.d.addr+"/index.php", body)
	req.Host = "victim.test"
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB body over a 1 MiB limit: %d, want 413", resp.StatusCode)
	}
	// A chunked body: PHP would read none of it (it reads CONTENT_LENGTH
	// bytes), so the worker says so rather than run the script without it.
	req, _ = http.NewRequest("POST", "http://"+h.d.addr+"/index.php", io.MultiReader(strings.NewReader("a=1")))
	req.Host = "victim.test"
	resp, err = (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusLengthRequired {
		t.Errorf("chunked body to PHP: %d, want 411", resp.StatusCode)
	}
	if code, _ := h.d.get("victim.test", "/"); code != 200 {
		t.Errorf("victim after the huge body: %d", code)
	}
}

// Sessions and temporary files: each identity's PHP uses its own 0700
// directories, so the evil site can neither read the victim's sessions
// nor plant a session file the victim's PHP would load (in a shared
// session directory it could).
func TestHostileSessions(t *testing.T) {
	h := startHostile(t)
	sess := filepath.Join(h.victim.root, "sess.php")
	os.WriteFile(sess, []byte(`<?php session_id("victimsession1"); session_start(); echo "user=", $_SESSION["user"] ?? "none", " path=", session_save_path(), " tmp=", sys_get_temp_dir(); $_SESSION["user"] = "victim"; session_write_close();`), 0o600)
	os.Chown(sess, victimUID, victimUID)
	_, first := h.d.get("victim.test", "/sess.php")
	if !strings.HasPrefix(first, "user=none path=") || !strings.Contains(first, "/php/victim/sessions") || !strings.Contains(first, "/php/victim/tmp") {
		t.Fatalf("victim's session setup: %q", first)
	}
	victimSessions := first[strings.Index(first, "path=")+5 : strings.Index(first, " tmp=")]
	out := h.php(t, fmt.Sprintf(`
$dir = %q;
echo @scandir($dir) === false ? "list denied\n" : "LISTED\n";
echo @file_get_contents("$dir/sess_victimsession1") === false ? "read denied\n" : "READ\n";
echo @file_put_contents("$dir/sess_victimsession2", 'user|s:5:"admin";') === false ? "plant denied\n" : "PLANTED\n";
echo str_contains(session_save_path(), "/php/evil/") ? "own sessions\n" : "SHARED SESSIONS\n";
`, victimSessions))
	if out != "list denied\nread denied\nplant denied\nown sessions\n" {
		t.Errorf("evil site against the victim's sessions:\n%s", out)
	}
	if _, again := h.d.get("victim.test", "/sess.php"); !strings.HasPrefix(again, "user=victim") {
		t.Errorf("the victim's session did not survive: %q", again)
	}
}

// The master opens logs as root. A tenant who can write the directory of
// its log (here: an administrator put evil's log in evil's own home) turns
// the log into a link to a root-owned file; a reload then had root open
// the link and evil's worker append to the file. Such a configuration is
// refused, by -check and by the reload, naming the directory.
func TestHostileLogSymlink(t *testing.T) {
	h := startHostile(t)
	evilLogs := filepath.Join(h.dir, "evil-logs")
	if err := os.Mkdir(evilLogs, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(evilLogs, evilUID, evilUID)
	target := filepath.Join(h.dir, "root-only")
	os.WriteFile(target, []byte("root's file\n"), 0o600)
	// The tenant's own code plants the link.
	h.php(t, fmt.Sprintf(`symlink(%q, %q); echo "planted";`, target, filepath.Join(evilLogs, "access.log")))
	cfgPath := filepath.Join(h.dir, "mpmd.toml")
	cfg, _ := os.ReadFile(cfgPath)
	bad := strings.Replace(string(cfg), filepath.Join(h.dir, "log", "evil.log"), filepath.Join(evilLogs, "access.log"), 1)
	os.WriteFile(cfgPath, []byte(bad), 0o644)

	check := exec.Command(testenv.PublicExecutable(t), "-check", "-config", cfgPath)
	check.Env = append(os.Environ(), envRunDaemon+"=1")
	out, err := check.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "log directory "+evilLogs+" is owned by uid 2401") {
		t.Errorf("-check with a log in the tenant's directory: %v\n%s", err, out)
	}
	h.d.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(h.d.out.String(), "reload refused") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(h.d.out.String(), "is owned by uid 2401") {
		t.Errorf("reload with a log in the tenant's directory was not refused:\n%s", h.d.out)
	}
	h.d.get("evil.test", "/") // the running configuration still serves, and logs
	if b, _ := os.ReadFile(target); string(b) != "root's file\n" {
		t.Errorf("root's file was written through the tenant's link: %q", b)
	}
}

// A client's Basic-auth user, request line, referer and user agent are
// escaped in the log: one request is one line, and no field can pass for
// another (the user was logged as sent, newlines included).
func TestHostileLogInjection(t *testing.T) {
	h := startHostile(t)
	forged := "x\n203.0.113.9 - admin [01/Jan/2026] \"GET /admin HTTP/1.1\" 200 1 \"-\" \"-\""
	req := "GET /?q=\"a\" HTTP/1.1\r\nHost: victim.test\r\nAuthorization: Basic " + base64.StdEncoding.EncodeToString([]byte(forged+":pw")) + "\r\nUser-Agent: ua\" \"x\r\n\r\n"
	if resp, err := rawRequest(t, h.d.addr, req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	var log []byte
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if log, _ = os.ReadFile(filepath.Join(h.dir, "log", "victim.log")); bytes.Count(log, []byte("\n")) >= 2 {
			break
		}
	}
	lines := strings.Split(strings.TrimSuffix(string(log), "\n"), "\n")
	last := lines[len(lines)-1]
	want := `127.0.0.1 - x\x0a203.0.113.9\x20-\x20admin\x20[01/Jan/2026]\x20\"GET\x20/admin\x20HTTP/1.1\"\x20200\x201\x20\"-\"\x20\"-\" [`
	if len(lines) != 2 || !strings.HasPrefix(last, want) || !strings.HasSuffix(last, `"GET /?q=\"a\" HTTP/1.1" 200 20 "-" "ua\" \"x"`) {
		t.Errorf("victim's log:\n%s\nwant 2 lines, the last starting %s and ending with the escaped request", log, want)
	}
}

// The status page shows what every site serves. A tenant's PHP could read
// it on the old default, 127.0.0.1:8081, with no credential (every busy
// worker's host, path and query string). Now: a unix socket only root can
// connect to, a TCP listener only with a token, and never a query string.
func TestHostileStatusPage(t *testing.T) {
	h := startHostileWith(t, "")
	sock := filepath.Join(h.dir, "run", "status.sock")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
	}
	out := h.php(t, fmt.Sprintf(`$s = @stream_socket_client("unix://%s", $errno, $errstr, 2); echo $s === false ? "denied: $errstr" : "CONNECTED";`, sock))
	if !strings.HasPrefix(out, "denied: Permission denied") {
		t.Errorf("the tenant's PHP on the status socket: %q, want permission denied", out)
	}
	// A request with a secret in its query string is in progress.
	done := make(chan struct{})
	go func() { defer close(done); h.d.get("victim.test", "/slow.php?token=s3cret") }()
	time.Sleep(1 * time.Second)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	<-done
	if !strings.Contains(string(page), "victim.test/slow.php") || strings.Contains(string(page), "s3cret") {
		t.Errorf("status page while victim's slow.php?token=s3cret runs: want the path and no query string:\n%s", page)
	}
}

// A TCP status listener needs a token; a client without it gets 401.
func TestHostileStatusToken(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	ports := freePorts(t, 2)
	addr, admin := ports[0], ports[1]
	mux := testenv.FreeID(t, 2441)
	sites := []testSite{{name: "site", uid: testenv.FreeID(t, 2442), pages: map[string]string{"index.html": "hi\n"}}}
	server := fmt.Sprintf("multiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\n", mux, mux)
	path := writeSites(t, addr, server, sites)
	cfg, _ := os.ReadFile(path)
	noToken := bytes.Replace(cfg, []byte("[server]\n"), []byte(fmt.Sprintf("[server]\nadmin = %q\n", admin)), 1)
	os.WriteFile(path, noToken, 0o644)
	check := exec.Command(testenv.PublicExecutable(t), "-check", "-config", path)
	check.Env = append(os.Environ(), envRunDaemon+"=1")
	if out, err := check.CombinedOutput(); err == nil || !strings.Contains(string(out), "is a TCP address: set admin_token") {
		t.Errorf("a TCP admin listener without a token: %v\n%s", err, out)
	}
	const token = "0123456789abcdef-token"
	os.WriteFile(path, bytes.Replace(noToken, []byte("[server]\n"), []byte("[server]\nadmin_token = \""+token+"\"\n"), 1), 0o644)
	d := startDaemon(t, addr, "-config", path)
	// The status page starts after the sites' listeners.
	waitFor(t, "the status page", func() bool { return strings.Contains(d.out.String(), "status page") })
	for _, c := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer wrong", 401}, {"Basic " + token, 401}, {"Bearer " + token, 200}} {
		req, _ := http.NewRequest("GET", "http://"+admin+"/status", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("status page: %v\n%s", err, d.out)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("status page with Authorization %q: %d, want %d", c.auth, resp.StatusCode, c.want)
		}
	}
}
