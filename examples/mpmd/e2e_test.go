//go:build !cgo

// End-to-end tests: the test binary runs as mpmd itself (TestMain), with
// real php-cgi and real HTTP clients on loopback. Built only without cgo,
// the supported build (the workers drop privileges).

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/internal/testenv"
	"github.com/gompm/mpm/prefork"
	"github.com/gompm/mpm/privdrop"
)

const envRunDaemon = "MPMD_TEST_RUN"

func TestMain(m *testing.M) {
	var roles prefork.Roles
	roles.Add(roleMux, runMux)
	roles.Add(roleWorker, testWorker)
	roles.Add(roleStatus, runStatus)
	roles.Add(roleCheck, runCheck)
	roles.Add(rolePHP, runPHP)
	roles.Main()
	if os.Getenv(envRunDaemon) == "1" {
		os.Exit(cli(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// requireTool fails the test when a program it runs is missing, or skips
// it outside CI (make test installs them as root).
func requireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv(testenv.RequireRootEnv) == "1" {
			t.Fatalf("%s is not installed (make test installs it as root)", name)
		}
		t.Skipf("skipped: %s is not installed (make test installs it as root)", name)
	}
}

func requirePHP(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("php-cgi"); err != nil {
		if os.Getenv(testenv.RequireRootEnv) == "1" {
			t.Fatal("php-cgi is not installed (make test installs it as root)")
		}
		t.Skip("skipped: php-cgi is not installed (make test installs it as root)")
	}
}

func freePort(t testing.TB) string {
	t.Helper()
	return freePorts(t, 1)[0]
}

// freePorts returns n distinct free loopback addresses: all are held
// until all are chosen, so that no two are the same port.
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out = append(out, l.Addr().String())
	}
	return out
}

type daemon struct {
	t    testing.TB
	cmd  *exec.Cmd
	out  *testenv.SyncBuffer
	addr string
	done chan struct{}
}

// startDaemon runs mpmd with args until the test ends, and waits until
// it answers on addr.
func startDaemon(t testing.TB, addr string, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, out: &testenv.SyncBuffer{}, addr: addr, done: make(chan struct{})}
	d.cmd = exec.Command(testenv.PublicExecutable(t), args...)
	d.cmd.Env = append(os.Environ(), envRunDaemon+"=1")
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(d.stop)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-d.done:
			t.Fatalf("mpmd exited at start (%v):\n%s", d.cmd.ProcessState, d.out)
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("mpmd did not listen on %s within 20s:\n%s", addr, d.out)
		}
	}
}

func (d *daemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		d.t.Errorf("mpmd did not stop within 60s of SIGTERM:\n%s", d.out)
	}
}

// get fetches path from host through the daemon.
func (d *daemon) get(host, path string) (int, string) {
	d.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+d.addr+path, nil)
	req.Host = host
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		d.t.Fatalf("GET %s%s: %v\n%s", host, path, err, d.out)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type testSite struct {
	name    string
	uid     uint32
	root    string
	extra   string // extra TOML for the vhost
	idExtra string // extra TOML for the identity
	pages   map[string]string
}

// writeSites creates the sites (document roots 0700, owned by their uid)
// and a configuration for them; it returns the configuration's path.
func writeSites(t testing.TB, addr, server string, sites []testSite) string {
	t.Helper()
	dir := testenv.PublicDir(t, 0o755)
	// The status page on its default, a unix socket in run_dir.
	cfg := fmt.Sprintf("[server]\nlisten = [%q]\nrun_dir = %q\n%s\n", addr, filepath.Join(dir, "run"), server)
	for i := range sites {
		s := &sites[i]
		s.root = filepath.Join(dir, s.name)
		if err := os.Mkdir(s.root, 0o700); err != nil {
			t.Fatal(err)
		}
		for name, body := range s.pages {
			if err := os.WriteFile(filepath.Join(s.root, name), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chown(filepath.Join(s.root, name), int(s.uid), int(s.uid))
		}
		if err := os.Chown(s.root, int(s.uid), int(s.uid)); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("\n[identity.%s]\nuser = \"%d\"\ngroup = \"%d\"\n%s\n[[vhost]]\nserver_name = \"%s.test\"\ndocument_root = %q\nidentity = %q\nphp = true\naccess_log = %q\n%s\n",
			s.name, s.uid, s.uid, s.idExtra, s.name, s.root, s.name, filepath.Join(dir, "log", s.name+".log"), s.extra)
	}
	path := filepath.Join(dir, "mpmd.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const uidPage = `<?php printf("%s uid=%d", $_SERVER['SERVER_NAME'], posix_geteuid());`

// twoSites starts a daemon with sites alice and bob as two uids.
func twoSites(t *testing.T, server string, aliceExtra string) (*daemon, []testSite) {
	testenv.RequireRoot(t)
	requirePHP(t)
	addr := freePort(t)
	sites := []testSite{
		{name: "alice", uid: testenv.FreeID(t, 2201), extra: aliceExtra, pages: map[string]string{
			"index.php":  uidPage,
			"secret.txt": "alice's secret\n",
			"slow.php":   `<?php sleep(2); echo "slow done";`,
			"ini.php":    `<?php echo ini_get("memory_limit");`,
			"style.css":  "body { color: red }\n",
			"fds.php":    `<?php foreach (scandir("/proc/self/fd") as $f) { if (is_numeric($f) && $f > 2) echo $f, "=", @readlink("/proc/self/fd/$f"), "\n"; }`,
		}},
		{name: "bob", uid: testenv.FreeID(t, 2202), pages: map[string]string{
			"index.php": uidPage,
		}},
	}
	sites[1].pages["steal.php"] = ""
	path := writeSites(t, addr, server+"multiplexer_user = \"2203\"\nmultiplexer_group = \"2203\"\n", sites)
	steal := fmt.Sprintf(`<?php $s = @file_get_contents(%q); echo $s === false ? "denied" : "READ: ".$s;`, filepath.Join(sites[0].root, "secret.txt"))
	os.WriteFile(filepath.Join(sites[1].root, "steal.php"), []byte(steal), 0o600)
	testenv.FreeID(t, 2203)
	return startDaemon(t, addr, "-config", path), sites
}

// TestSitesRunAsTheirOwnUsers: each vhost's PHP runs as its own uid, and
// one site's PHP cannot read the other's 0700 document root.
func TestSitesRunAsTheirOwnUsers(t *testing.T) {
	d, sites := twoSites(t, "", `php_value = { memory_limit = "77M" }`)
	checkTwoSites(t, d, sites)
	if code, body := d.get("alice.test", "/style.css"); code != 200 || !strings.Contains(body, "color: red") {
		t.Errorf("static file: %d %q", code, body)
	}
	if code, _ := d.get("alice.test", "/missing.php"); code != 404 {
		t.Errorf("missing script: %d, want 404", code)
	}
	if code, _ := d.get("nobody.test", "/"); code != http.StatusMisdirectedRequest {
		t.Errorf("unknown host without a default: %d, want 421", code)
	}
	// php-cgi holds none of the worker's descriptors: no dispatch
	// socket, scoreboard, plan or access log.
	code, body := d.get("alice.test", "/fds.php")
	if code != 200 || strings.Contains(body, "socket:") || strings.Contains(body, "memfd:") || strings.Contains(body, ".log") {
		t.Errorf("descriptors php-cgi holds beyond stdio: %d\n%s", code, body)
	}
	// The access log, in the Combined Log Format.
	logf := filepath.Join(filepath.Dir(sites[0].root), "log", "alice.log")
	b, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^127\.0\.0\.1 - - \[\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET / HTTP/1\.1" 200 \d+ "-" "Go-http-client/1\.1"$`).Match(b) {
		t.Errorf("access log %s has no combined-format line for GET /:\n%s", logf, b)
	}
	if bytes.Contains(b, []byte("bob.test")) {
		t.Errorf("alice's access log holds bob's requests:\n%s", b)
	}
}

// checkTwoSites checks what both PHP modes give twoSites-like daemons
// whose alice has memory_limit = "77M" (php_value, or php_admin_value
// with FPM): each site's PHP
// runs as its own uid, bob's PHP cannot read alice's files, and alice's
// PHP setting reaches her PHP.
func checkTwoSites(t *testing.T, d *daemon, sites []testSite) {
	t.Helper()
	for _, s := range sites {
		host := s.name + ".test"
		want := fmt.Sprintf("%s uid=%d", host, s.uid)
		if code, body := d.get(host, "/"); code != 200 || body != want {
			t.Errorf("GET %s/: %d %q, want 200 %q", host, code, body, want)
		}
	}
	if code, body := d.get("bob.test", "/steal.php"); code != 200 || body != "denied" {
		t.Errorf("bob's PHP reading alice's file: %d %q, want denied", code, body)
	}
	if code, body := d.get("alice.test", "/ini.php"); body != "77M" {
		t.Errorf("alice's memory_limit setting: %d %q, want 77M", code, body)
	}
}

// TestProcessFacts reads every process of the daemon from /proc.
func TestProcessFacts(t *testing.T) {
	d, _ := twoSites(t, "", "")
	d.get("alice.test", "/")
	d.get("bob.test", "/")
	master := d.cmd.Process.Pid
	ms, err := procstatus.Process(master)
	if err != nil {
		t.Fatal(err)
	}
	keep := privdrop.CapMask(7, 6, 8, 5, 18, 0) // SETUID SETGID SETPCAP KILL SYS_CHROOT CHOWN
	if ms.CapEff != keep || ms.CapBnd != keep || ms.CapPrm != keep {
		t.Errorf("master capabilities eff %x bnd %x, want only %x", ms.CapEff, ms.CapBnd, keep)
	}
	kids := children(t, master)
	var muxes, workers int
	for _, pid := range kids {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		role := string(bytes.SplitN(cmdline, []byte{0}, 2)[0])
		threads, err := procstatus.Threads(pid)
		if err != nil {
			continue // ended meanwhile
		}
		var want uint32
		switch role {
		case "mpm-mux", "mpm-status":
			if role == "mpm-mux" {
				muxes++
			}
			want = 2203
			if root, _ := os.Readlink(fmt.Sprintf("/proc/%d/root", pid)); !strings.HasSuffix(root, "/run/empty") {
				t.Errorf("%s %d root is %q, want the empty jail", role, pid, root)
			}
		case "mpm-worker":
			workers++
			want = threads[0].UID[0]
			if want != 2201 && want != 2202 {
				t.Errorf("worker %d runs as uid %d, not a site's", pid, want)
			}
		default:
			t.Errorf("unexpected child %d %q", pid, role)
			continue
		}
		for _, s := range threads {
			if s.UID != [4]uint32{want, want, want, want} || s.CapEff|s.CapPrm|s.CapBnd|s.CapInh|s.CapAmb != 0 || !s.NoNewPrivs {
				t.Errorf("%s %d thread %d: uids %v caps eff %x bnd %x nnp %v", role, pid, s.TID, s.UID, s.CapEff, s.CapBnd, s.NoNewPrivs)
			}
		}
	}
	if muxes != 2 || workers < 2 {
		t.Errorf("found %d multiplexers and %d workers, want 2 and at least 2", muxes, workers)
	}
}

func children(t *testing.T, ppid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := procstatus.Process(pid); err == nil && s.PPid == ppid {
			out = append(out, pid)
		}
	}
	return out
}

// TestKeepAliveAcrossIdentities: one connection, a request for alice and
// then one for bob, both answered by the right user.
func TestKeepAliveAcrossIdentities(t *testing.T) {
	d, _ := twoSites(t, "", "")
	c, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	for _, host := range []string{"alice.test", "bob.test", "alice.test"} {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request for %s on the kept-alive connection: %v\n%s", host, err, d.out)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(string(b), host+" uid=") {
			t.Errorf("request for %s answered %q", host, b)
		}
	}
}

// TestBadRequestsNeverReachAWorker: malformed, oversized and slow heads
// are answered by the multiplexer.
func TestBadRequestsNeverReachAWorker(t *testing.T) {
	d, _ := twoSites(t, "header_timeout = \"1s\"\nmax_header_bytes = 4096\n", "")
	for _, c := range []struct {
		name, req string
		want      int
	}{
		{"garbage", "HELLO\r\n\r\n", 400},
		{"huge header", "GET / HTTP/1.1\r\nHost: alice.test\r\nX: " + strings.Repeat("a", 8000) + "\r\n\r\n", 431},
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"bad host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"slow", "GET / HTTP/1.1\r\nHost: alice.test\r\n", 408},
	} {
		resp, err := rawRequest(t, d.addr, c.req)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
}

// TestMaxClientsPerVHost: alice at her max clients gets 503 while bob
// keeps answering. The limit counts requests in progress for the vhost,
// all its names together (each alias had a limit of its own), and never a
// kept-alive connection between its requests (with max_clients = 1,
// every second request on a kept-alive connection got 503).
func TestMaxClientsPerVHost(t *testing.T) {
	d, _ := twoSites(t, "", "max_clients = 1\naliases = [\"www.alice.test\"]")
	c, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	for i := range 4 {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: alice.test\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on a kept-alive connection: %v", i+1, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("request %d on a kept-alive connection with max_clients = 1: %d, want 200", i+1, resp.StatusCode)
		}
	}
	slow := make(chan int, 1)
	go func() {
		code, _ := newClientGet(t, d.addr, "alice.test", "/slow.php")
		slow <- code
	}()
	time.Sleep(700 * time.Millisecond) // the slow request is in PHP
	for _, host := range []string{"alice.test", "www.alice.test"} {
		if code, _ := newClientGet(t, d.addr, host, "/"); code != 503 {
			t.Errorf("%s while alice.test is at max_clients: %d, want 503", host, code)
		}
	}
	if code, body := d.get("bob.test", "/"); code != 200 || !strings.Contains(body, "uid=2202") {
		t.Errorf("bob while alice is full: %d %q", code, body)
	}
	if code := <-slow; code != 200 {
		t.Errorf("alice's slow request: %d", code)
	}
}

// TestDemo runs what make demo runs, then every command the demo prints,
// as printed, through a shell: each must answer what it says within a
// second. (The demo's unknown-host command once hung forever.)
func TestDemo(t *testing.T) {
	requirePHP(t)
	requireTool(t, "curl")
	addr := freePort(t)
	dir := testenv.PublicDir(t, 0o755)
	tlsAddr := freePort(t)
	d := startDaemon(t, addr, "-demo", "-demo-dir", dir, "-demo-listen", addr, "-demo-tls-listen", tlsAddr)
	alice, bob := "uid "+strconv.Itoa(os.Geteuid()), "uid "+strconv.Itoa(os.Geteuid())
	if os.Geteuid() == 0 {
		alice, bob = "uid 2101", "uid 2102"
	}
	// What each printed command must answer, by the first of these
	// strings its command line contains.
	expect := []struct{ in, want string }{
		{"hello.txt", "A static file from bob.demo."},
		{"nobody.demo", "Hello from nobody.demo, served by PHP running as " + alice},
		{"https://alice.demo", "Hello from alice.demo, served by PHP running as " + alice},
		{"alice.demo", "Hello from alice.demo, served by PHP running as " + alice},
		{"bob.demo", "Hello from bob.demo, served by PHP running as " + bob},
	}
	var cmds []string
	inTry := false
	for _, line := range strings.Split(d.out.String(), "\n") {
		switch {
		case line == "try:":
			inTry = true
		case strings.HasPrefix(line, "stop with"):
			inTry = false
		case inTry && strings.HasPrefix(line, "  "):
			cmd, _, _ := strings.Cut(strings.TrimSpace(line), "   (")
			cmds = append(cmds, cmd)
		}
	}
	if len(cmds) < 5 {
		t.Fatalf("the demo printed %d commands to try, want 5 or more:\n%s", len(cmds), d.out)
	}
	for _, cmd := range cmds {
		want := ""
		for _, e := range expect {
			if strings.Contains(cmd, e.in) {
				want = e.want
				break
			}
		}
		if want == "" {
			t.Errorf("the demo prints %q, which this test does not know how to check", cmd)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		start := time.Now()
		sh := exec.CommandContext(ctx, "sh", "-c", cmd)
		// The shell's children (curl) go with it, and their output pipe
		// is not waited for beyond the deadline.
		sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		sh.Cancel = func() error { return syscall.Kill(-sh.Process.Pid, syscall.SIGKILL) }
		sh.WaitDelay = 100 * time.Millisecond
		out, err := sh.CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("%s\n  after %v: %v %q, want %q within 1s", cmd, time.Since(start).Round(time.Millisecond), err, out, want)
		}
	}
	if t.Failed() {
		t.Logf("daemon output:\n%s", d.out)
	}
	assertIdle(t, d)
}

// TestStatusAndReload: the status page reports the pools; SIGHUP adds a
// site and removes one while a client keeps requesting, and no request
// fails.
func TestStatusAndReload(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	addr := freePort(t)
	sites := []testSite{
		{name: "alice", uid: testenv.FreeID(t, 2211), pages: map[string]string{"index.php": uidPage}},
		{name: "bob", uid: testenv.FreeID(t, 2212), pages: map[string]string{"index.php": uidPage}},
	}
	server := "multiplexer_user = \"2213\"\nmultiplexer_group = \"2213\"\n"
	testenv.FreeID(t, 2213)
	path := writeSites(t, addr, server, sites)
	d := startDaemon(t, addr, "-config", path)
	sock := filepath.Join(filepath.Dir(path), "run", "status.sock")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("status socket %s: %v, want root's, mode 0600", sock, err)
	}
	// The README's command, as it is printed there but for run_dir.
	requireTool(t, "curl")
	readme, _ := os.ReadFile("README.md")
	if !bytes.Contains(readme, []byte("curl --unix-socket /run/mpmd/status.sock http://localhost/")) {
		t.Errorf("README.md no longer shows the status command this test runs")
	}
	d.get("alice.test", "/")
	if out, err := exec.Command("sh", "-c", "curl -sS --max-time 5 --unix-socket "+sock+" http://localhost/").CombinedOutput(); err != nil || !bytes.Contains(out, []byte("SERVED")) || !bytes.Contains(out, []byte("alice")) {
		t.Errorf("curl --unix-socket %s http://localhost/: %v\n%s", sock, err, out)
	}
	unixClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := unixClient.Get("http://localhost/status")
	if err != nil {
		t.Fatalf("status page: %v\n%s", err, d.out)
	}
	var st []struct {
		Name    string
		Workers int
		Served  uint64
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || len(st) != 2 || st[0].Name != "alice" || st[0].Served < 1 || st[1].Name != "bob" {
		t.Errorf("status: %+v %v, want alice (served >= 1) and bob", st, err)
	}
	resp, err = unixClient.Get("http://localhost/")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "alice") || !strings.Contains(string(b), "SERVED") {
			t.Errorf("status text page:\n%s", b)
		}
	}

	// A client requesting alice throughout the reload.
	stop := make(chan struct{})
	var failed, served int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := &http.Client{Timeout: 30 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			req.Host = "alice.test"
			resp, err := c.Do(req)
			if err != nil || resp.StatusCode != 200 {
				failed++
				if err == nil {
					resp.Body.Close()
				}
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			served++
		}
	}()
	time.Sleep(300 * time.Millisecond)

	carol := filepath.Join(filepath.Dir(path), "carol")
	os.Mkdir(carol, 0o755)
	os.WriteFile(filepath.Join(carol, "index.php"), []byte(uidPage), 0o644)
	cfg, _ := os.ReadFile(path)
	text := string(cfg)
	text = text[:strings.Index(text, "\n[identity.bob]")] // bob removed
	text += fmt.Sprintf("\n[[vhost]]\nserver_name = \"carol.test\"\ndocument_root = %q\nuser = \"2214\"\ngroup = \"2214\"\nphp = true\n", carol)
	testenv.FreeID(t, 2214)
	os.WriteFile(path, []byte(text), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)

	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, body := d.get("carol.test", "/"); code == 200 && strings.Contains(body, "uid=2214") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("carol.test did not appear after SIGHUP:\n%s", d.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed != 0 || served < 5 {
		t.Errorf("during the reload %d requests failed and %d succeeded; want none failed", failed, served)
	}
	if code, _ := d.get("bob.test", "/"); code != http.StatusMisdirectedRequest {
		t.Errorf("bob.test after it was removed: %d, want 421", code)
	}
}

// TestQueueTimeout: with alice's only worker busy, a connection that
// waits past alice's queue timeout is answered 503 instead of being
// served late, while bob keeps answering.
func TestQueueTimeout(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	addr := freePort(t)
	sites := []testSite{
		{name: "alice", uid: testenv.FreeID(t, 2231), idExtra: "[identity.alice.pool]\nmax = 1\nqueue_timeout = \"500ms\"\n",
			pages: map[string]string{"index.php": uidPage, "slow.php": `<?php sleep(2); echo "slow done";`}},
		{name: "bob", uid: testenv.FreeID(t, 2232), pages: map[string]string{"index.php": uidPage}},
	}
	testenv.FreeID(t, 2233)
	path := writeSites(t, addr, "multiplexer_user = \"2233\"\nmultiplexer_group = \"2233\"\n", sites)
	d := startDaemon(t, addr, "-config", path)
	d.get("alice.test", "/")
	slow := make(chan int, 1)
	go func() {
		code, _ := newClientGet(t, addr, "alice.test", "/slow.php")
		slow <- code
	}()
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	code, _ := newClientGet(t, addr, "alice.test", "/")
	waited := time.Since(t0)
	if code != 503 {
		t.Errorf("alice's queued request: %d after %v, want 503", code, waited)
	}
	if c, body := d.get("bob.test", "/"); c != 200 || !strings.Contains(body, "uid=2232") {
		t.Errorf("bob while alice is saturated: %d %q", c, body)
	}
	if c := <-slow; c != 200 {
		t.Errorf("alice's slow request: %d", c)
	}
}

// newClientGet makes a request on a connection of its own.
func newClientGet(t *testing.T, addr, host, path string) (int, string) {
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Host = host
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("GET %s%s: %v", host, path, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// rawRequest sends req as it is on a new connection and reads the answer.
func rawRequest(t *testing.T, addr, req string) (*http.Response, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(conn, req)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		// Read the body before the connection closes.
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		err = rerr
	}
	return resp, err
}

// TestRecycleUnderLoad: workers that recycle after every request
// (max_requests = 1) under concurrent new connections lose none of them:
// a worker that is done takes no more connections from the queue, and
// one it took is served before the worker exits.
func TestRecycleUnderLoad(t *testing.T) {
	testenv.RequireRoot(t)
	addr := freePort(t)
	sites := []testSite{{name: "rec", uid: testenv.FreeID(t, 2361), pages: map[string]string{"hello.txt": "hello\n"}}}
	testenv.FreeID(t, 2362)
	server := "multiplexer_user = \"2362\"\nmultiplexer_group = \"2362\"\n\n[pool]\nmin = 2\nworkers = 2\nmax_requests = 1\n"
	d := startDaemon(t, addr, "-config", writeSites(t, addr, server, sites))
	const clients, each = 4, 60
	var (
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	fail := func(what string) {
		mu.Lock()
		failures = append(failures, what)
		mu.Unlock()
	}
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			for range each {
				req, _ := http.NewRequest("GET", "http://"+addr+"/hello.txt", nil)
				req.Host = "rec.test"
				resp, err := c.Do(req)
				if err != nil {
					fail(err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "hello\n" {
					fail(fmt.Sprintf("%d %q", resp.StatusCode, b))
				}
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed while every worker recycled after one request: %q\n%s", len(failures), clients*each, failures, d.out)
	}
}

// assertIdle fails the test if the daemon's processes, all together, use
// CPU while no client is connected: utime+stime of the master and every
// descendant, sampled 2s apart. A process that spins after its client
// left (a request routed in a loop) shows as hundreds of milliseconds.
func assertIdle(t *testing.T, d *daemon) {
	t.Helper()
	pids := append([]int{d.cmd.Process.Pid}, procstatus.Descendants(d.cmd.Process.Pid)...)
	sample := func() map[int]time.Duration {
		m := map[int]time.Duration{}
		for _, pid := range pids {
			if st, err := procstatus.ReadStat(pid); err == nil {
				m[pid] = st.CPU
			}
		}
		return m
	}
	before := sample()
	time.Sleep(2 * time.Second)
	var used time.Duration
	var busy []string
	for pid, cpu := range sample() {
		if b, ok := before[pid]; ok && cpu > b {
			used += cpu - b
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			busy = append(busy, fmt.Sprintf("pid %d (%s): %v", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), cpu-b))
		}
	}
	if used > 100*time.Millisecond {
		t.Errorf("idle daemon used %v of CPU in 2s: %s", used, strings.Join(busy, "; "))
	}
}

// TestExampleConfigServes runs the shipped mpmd.example.toml with only its
// paths and its port changed: it listens on 0.0.0.0 (once read as one
// address, so that every request got 421) and serves each of its sites
// as its own uid.
func TestExampleConfigServes(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	for _, id := range []int{2701, 2702, 2703, 2790} {
		testenv.FreeID(t, id)
	}
	b, err := os.ReadFile("mpmd.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := testenv.PublicDir(t, 0o755)
	_, port, _ := net.SplitHostPort(freePort(t))
	text := strings.NewReplacer(
		"0.0.0.0:80\"", "0.0.0.0:"+port+"\"",
		"\"/srv/", "\""+dir+"/srv/",
		"\"/run/mpmd\"", "\""+dir+"/run\"",
		"\"/var/log/mpmd/", "\""+dir+"/log/",
	).Replace(string(b))
	if strings.Count(text, dir) < 6 || strings.Contains(text, "\"/srv/") {
		t.Fatalf("the example's paths were not all replaced:\n%s", text)
	}
	sites := map[string]struct {
		uid  int
		file string
		body string
	}{
		"alice": {2701, "index.php", `<?php printf("alice uid=%d", posix_geteuid());`},
		"bob":   {2702, "index.php", `<?php printf("bob uid=%d", posix_geteuid());`},
		"carol": {2703, "index.html", "carol's static page\n"},
	}
	for name, s := range sites {
		root := filepath.Join(dir, "srv", name, "htdocs")
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, s.file), []byte(s.body), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{filepath.Dir(root), root, filepath.Join(root, s.file)} {
			os.Chown(p, s.uid, s.uid)
		}
	}
	path := filepath.Join(dir, "mpmd.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + port
	d := startDaemon(t, addr, "-config", path)
	for _, c := range []struct{ host, want string }{
		{"alice.example", "alice uid=2701"},
		{"www.alice.example", "alice uid=2701"},
		{"bob.example", "bob uid=2702"},
		{"carol.example", "carol's static page\n"},
		{"unknown.example", "alice uid=2701"}, // alice.example is the default
	} {
		if code, body := d.get(c.host, "/"); code != 200 || body != c.want {
			t.Errorf("%s: %d %q, want %q\n%s", c.host, code, body, c.want, d.out)
		}
	}
	assertIdle(t, d)
}

// A document root the identity cannot open is refused by -check, at
// start and by a reload, naming the vhost; one that goes away while the
// daemon runs makes its own vhost answer 503, and the identity's other
// vhosts are served. (It passed -check, then every worker of the identity
// crashed at start in a loop and all its sites hung.)
func TestMissingDocumentRoot(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	uid, muxID := testenv.FreeID(t, 2241), testenv.FreeID(t, 2242)
	addr := freePort(t)
	dir := testenv.PublicDir(t, 0o755)
	roots := map[string]string{}
	for _, n := range []string{"one", "two"} {
		roots[n] = filepath.Join(dir, n)
		os.Mkdir(roots[n], 0o700)
		os.WriteFile(filepath.Join(roots[n], "index.html"), []byte(n+"\n"), 0o600)
		os.Chown(filepath.Join(roots[n], "index.html"), int(uid), int(uid))
		os.Chown(roots[n], int(uid), int(uid))
	}
	closed := filepath.Join(dir, "closed") // root's, 0700: the identity cannot open it
	os.Mkdir(closed, 0o700)
	cfg := func(extra string) string {
		p := filepath.Join(dir, "mpmd.toml")
		text := fmt.Sprintf("[server]\nlisten = [%q]\nadmin = \"off\"\nrun_dir = %q\nmultiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\n\n[identity.a]\nuser = \"%d\"\ngroup = \"%d\"\n", addr, filepath.Join(dir, "run"), muxID, muxID, uid, uid)
		for _, n := range []string{"one", "two"} {
			text += fmt.Sprintf("\n[[vhost]]\nserver_name = \"%s.test\"\ndocument_root = %q\nidentity = \"a\"\n", n, roots[n])
		}
		os.WriteFile(p, []byte(text+extra), 0o644)
		return p
	}
	run := func(args ...string) (string, error) {
		c := exec.Command(testenv.PublicExecutable(t), args...)
		c.Env = append(os.Environ(), envRunDaemon+"=1")
		out, err := c.CombinedOutput()
		return string(out), err
	}
	for _, root := range []string{filepath.Join(dir, "missing"), closed} {
		path := cfg(fmt.Sprintf("\n[[vhost]]\nserver_name = \"three.test\"\ndocument_root = %q\nidentity = \"a\"\n", root))
		out, err := run("-check", "-config", path)
		if err == nil || !strings.Contains(out, "identity a: vhost three.test: this identity cannot open document_root") {
			t.Errorf("-check with document root %s: %v\n%s", root, err, out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c := exec.CommandContext(ctx, testenv.PublicExecutable(t), "-config", path)
		c.Env = append(os.Environ(), envRunDaemon+"=1")
		out2, err := c.CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out2), "vhost three.test: this identity cannot open document_root") {
			t.Errorf("start with document root %s: %v\n%s", root, err, out2)
		}
	}

	path := cfg("")
	d := startDaemon(t, addr, "-config", path)
	for _, n := range []string{"one", "two"} {
		if code, body := d.get(n+".test", "/"); code != 200 || body != n+"\n" {
			t.Fatalf("%s.test: %d %q", n, code, body)
		}
	}
	cfg(fmt.Sprintf("\n[[vhost]]\nserver_name = \"three.test\"\ndocument_root = %q\nidentity = \"a\"\n", filepath.Join(dir, "missing")))
	d.cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(d.out.String(), "reload failed") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(d.out.String(), "vhost three.test: this identity cannot open document_root") {
		t.Errorf("a reload with a missing document root was not refused:\n%s", d.out)
	}

	// two's document root goes away; the worker that had it open is
	// replaced.
	os.RemoveAll(roots["two"])
	for _, pid := range children(t, d.cmd.Process.Pid) {
		if st, err := procstatus.Process(pid); err == nil && st.UID[0] == uid {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, c := range []struct {
		host string
		code int
	}{{"one.test", 200}, {"two.test", 503}, {"one.test", 200}} {
		start := time.Now()
		code, _ := newClientGet(t, addr, c.host, "/")
		if code != c.code || time.Since(start) > 2*time.Second {
			t.Errorf("%s after two's document root went: %d after %v, want %d at once\n%s", c.host, code, time.Since(start), c.code, d.out)
		}
	}
}

// TestReloadUnderLoad: four reloads while clients keep requesting, on new
// connections and on kept-alive ones that go from one identity to the
// other: no request fails. (Old multiplexers passed to pools that had
// stopped reading, and old workers' hand-backs went to multiplexers that
// had gone: 503s; workers closed idle kept-alive connections as clients
// sent on them: resets.)
func TestReloadUnderLoad(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	addr := freePort(t)
	sites := []testSite{
		{name: "alice", uid: testenv.FreeID(t, 2461), pages: map[string]string{"a.txt": "alice\n"}},
		{name: "bob", uid: testenv.FreeID(t, 2462), pages: map[string]string{"a.txt": "bob\n"}},
	}
	mux := testenv.FreeID(t, 2463)
	path := writeSites(t, addr, fmt.Sprintf("multiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\n", mux, mux), sites)
	d := startDaemon(t, addr, "-config", path)
	load := startLoad(addr)
	for range 4 {
		time.Sleep(700 * time.Millisecond)
		before := strings.Count(d.out.String(), "reloaded")
		d.cmd.Process.Signal(syscall.SIGHUP)
		for deadline := time.Now().Add(20 * time.Second); strings.Count(d.out.String(), "reloaded") == before && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(700 * time.Millisecond)
	if n := strings.Count(d.out.String(), "reloaded"); n != 4 {
		t.Errorf("%d reloads, want 4", n)
	}
	if !load.finish(t, "4 reloads") {
		t.Logf("daemon output:\n%s", d.out)
	}
}

// steadyLoad is four clients asking alice.test and bob.test for /a.txt
// (which answers the site's name) until finish: new connections to each,
// one kept-alive connection that alternates between them (a hand-back
// on every request) and one kept alive to alice. Every request carries a
// body without GetBody, so net/http never silently sends one again on a
// new connection: a kept-alive connection closed under a request counts
// as a failure, as it would for a browser's POST.
type steadyLoad struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	counts   map[string]int
	failures []string
}

func startLoad(addr string) *steadyLoad {
	l := &steadyLoad{stop: make(chan struct{}), counts: map[string]int{}}
	client := func(name string, keepAlive bool, hosts ...string) {
		defer l.wg.Done()
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1}}
		defer c.CloseIdleConnections()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			host := hosts[i%len(hosts)]
			req, _ := http.NewRequest("GET", "http://"+addr+"/a.txt", io.NopCloser(strings.NewReader("x")))
			req.ContentLength = 1
			req.Host = host
			resp, err := c.Do(req)
			var body []byte
			if err == nil {
				body, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			l.mu.Lock()
			l.counts[name]++
			if err != nil || resp.StatusCode != 200 || string(body) != strings.TrimSuffix(host, ".test")+"\n" {
				l.failures = append(l.failures, fmt.Sprintf("%s request %d for %s: %v %v %q", name, i, host, err, resp, body))
			}
			l.mu.Unlock()
		}
	}
	l.wg.Add(4)
	go client("new connections to alice", false, "alice.test")
	go client("new connections to bob", false, "bob.test")
	go client("kept alive, alice then bob", true, "alice.test", "bob.test")
	go client("kept alive, alice", true, "alice.test")
	return l
}

// finish stops the clients and reports every failed request, and a
// client that made fewer than 20; it returns whether all went well.
func (l *steadyLoad) finish(t *testing.T, during string) bool {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	t.Logf("requests during %s: %v", during, l.counts)
	ok := len(l.failures) == 0
	for name, n := range l.counts {
		if n < 20 {
			t.Errorf("%s: only %d requests", name, n)
			ok = false
		}
	}
	for _, f := range l.failures {
		t.Error(f)
	}
	return ok
}
