//go:build !cgo

package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/testenv"
	"github.com/gompm/mpm/prefork"
)

// buildMpmd builds this package into dir as mpmd-<v>, reporting version v.
func buildMpmd(t *testing.T, dir, v string) string {
	t.Helper()
	requireTool(t, "go")
	out := filepath.Join(dir, "mpmd-"+v)
	cmd := exec.Command("go", "build", "-o", out, "-ldflags", "-X main.version="+v, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build mpmd %s: %v\n%s", v, err, b)
	}
	return out
}

// install puts a copy of from at to by rename, as dpkg and install(1)
// replace a binary: the old file lives on while something runs it.
func install(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".new"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

// master is a running mpmd master that may hand over to another: its
// output goes to a file (no copying goroutine that would wait for the
// new master too), and pid follows the upgrades.
type upMaster struct {
	t      *testing.T
	log    string
	pid    int
	exited chan struct{} // closed when the master has exited
}

func startMaster(t *testing.T, exe, addr string, env []string, args ...string) *upMaster {
	t.Helper()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), env...)
	m := runMaster(t, cmd)
	m.waitReady(fmt.Sprintf("on %s ", addr))
	return m
}

// runMaster starts cmd, a master, with its output in a log file, and
// stops it when the test ends.
func runMaster(t *testing.T, cmd *exec.Cmd) *upMaster {
	t.Helper()
	m := &upMaster{t: t, log: filepath.Join(t.TempDir(), "mpmd.log"), exited: make(chan struct{})}
	f, err := os.Create(m.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.pid = cmd.Process.Pid
	go func() { cmd.Wait(); close(m.exited) }()
	t.Cleanup(m.stop)
	return m
}

// waitReady waits until the master logs that it is ready (and handles
// signals), for at most 20 seconds.
func (m *upMaster) waitReady(where string) {
	m.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-m.exited:
			m.t.Fatalf("mpmd exited at start:\n%s", m.out())
		default:
		}
		if strings.Contains(m.out(), "msg=ready") {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mpmd was not ready %swithin 20s:\n%s", where, m.out())
		}
	}
}

func (m *upMaster) out() string {
	b, _ := os.ReadFile(m.log)
	return string(b)
}

// waitGone waits until pid has ended (a zombie counts: PID 1 here may
// not reap).
func waitGone(t *testing.T, pid int, within time.Duration) bool {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !testenv.Running(pid) {
			return true
		}
	}
	return false
}

func (m *upMaster) stop() {
	syscall.Kill(m.pid, syscall.SIGTERM)
	if !waitGone(m.t, m.pid, 60*time.Second) {
		syscall.Kill(m.pid, syscall.SIGKILL)
		m.t.Errorf("mpmd %d did not stop within 60s of SIGTERM:\n%s", m.pid, m.out())
	}
}

var readyLine = regexp.MustCompile(`the new master is ready.* pid=(\d+)`)

// upgrade sends SIGUSR2 and waits for the new master to take over and
// the old one to exit.
func (m *upMaster) upgrade() {
	m.t.Helper()
	before := len(readyLine.FindAllString(m.out(), -1))
	old := m.pid
	syscall.Kill(old, syscall.SIGUSR2)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		all := readyLine.FindAllStringSubmatch(m.out(), -1)
		if len(all) > before {
			m.pid, _ = strconv.Atoi(all[len(all)-1][1])
			break
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("no new master within 60s of SIGUSR2:\n%s", m.out())
		}
	}
	if !waitGone(m.t, old, 60*time.Second) {
		m.t.Fatalf("old master %d still runs 60s after the new one was ready:\n%s", old, m.out())
	}
}

// statusVersion returns the Server header of the status page on the
// unix socket sock: the version its master runs.
func statusVersion(t *testing.T, sock string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://status/")
	if err != nil {
		t.Fatalf("status page: %v", err)
	}
	resp.Body.Close()
	return resp.Header.Get("Server")
}

// TestUpgradeUnderLoad: two binary upgrades in a row (SIGUSR2 after the
// file at the master's path was replaced by a build reporting another
// version) while clients keep requesting, on new connections and on
// kept-alive ones that go from one identity to the other: no request
// fails, and the version served changes each time.
func TestUpgradeUnderLoad(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	bin := testenv.PublicDir(t, 0o755)
	builds := map[string]string{}
	for _, v := range []string{"up1", "up2", "up3"} {
		builds[v] = buildMpmd(t, bin, v)
	}
	exe := filepath.Join(bin, "mpmd")
	install(t, builds["up1"], exe)

	addr := freePort(t)
	sites := []testSite{
		{name: "alice", uid: testenv.FreeID(t, 2501), pages: map[string]string{"a.txt": "alice\n"}},
		{name: "bob", uid: testenv.FreeID(t, 2502), pages: map[string]string{"a.txt": "bob\n"}},
	}
	mux := testenv.FreeID(t, 2503)
	path := writeSites(t, addr, fmt.Sprintf("multiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\n", mux, mux), sites)
	sock := filepath.Join(filepath.Dir(path), "run", "status.sock")
	m := startMaster(t, exe, addr, nil, "-config", path)
	if v := statusVersion(t, sock); v != "mpmd/up1" {
		t.Fatalf("status page says Server %q, want mpmd/up1", v)
	}

	load := startLoad(addr)
	for _, v := range []string{"up2", "up3"} {
		time.Sleep(700 * time.Millisecond)
		install(t, builds[v], exe)
		m.upgrade()
		if got := statusVersion(t, sock); got != "mpmd/"+v {
			t.Errorf("after the upgrade to %s the status page says Server %q", v, got)
		}
	}
	time.Sleep(700 * time.Millisecond)
	if !load.finish(t, "2 upgrades") || t.Failed() {
		t.Logf("daemon output:\n%s", m.out())
	}
}

// oneSite writes a configuration with one static site and returns its
// path; uids from base to base+1.
func oneSite(t *testing.T, addr string, base int) string {
	t.Helper()
	sites := []testSite{{name: "alice", uid: testenv.FreeID(t, base), pages: map[string]string{"a.txt": "alice\n"}}}
	mux := testenv.FreeID(t, base+1)
	return writeSites(t, addr, fmt.Sprintf("multiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\n", mux, mux), sites)
}

// TestUpgradeFails: a new binary that exits at once leaves the old
// master serving, and it says why.
func TestUpgradeFails(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	exe := filepath.Join(testenv.PublicDir(t, 0o755), "mpmd")
	install(t, testenv.PublicExecutable(t), exe)
	addr := freePort(t)
	m := startMaster(t, exe, addr, []string{envRunDaemon + "=1"}, "-config", oneSite(t, addr, 2511))
	if err := os.WriteFile(exe+".new", []byte("#!/bin/sh\necho broken build >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Rename(exe+".new", exe)
	syscall.Kill(m.pid, syscall.SIGUSR2)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(m.out(), "upgrade failed"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no \"upgrade failed\" within 30s:\n%s", m.out())
		}
	}
	if out := m.out(); !strings.Contains(out, "ended before it was ready (exit status 3)") || !strings.Contains(out, "broken build") {
		t.Errorf("the log does not say how the new master ended:\n%s", out)
	}
	if !testenv.Running(m.pid) {
		t.Fatalf("the old master exited:\n%s", m.out())
	}
	if code, body := newClientGet(t, addr, "alice.test", "/a.txt"); code != 200 || body != "alice\n" {
		t.Errorf("after a failed upgrade: %d %q", code, body)
	}
}

// TestReplacedBinaryNotRun: replacing the program file without SIGUSR2
// changes nothing the master starts: after a reload, the new workers run
// the file the master started with.
func TestReplacedBinaryNotRun(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	dir := testenv.PublicDir(t, 0o755)
	exe := filepath.Join(dir, "mpmd")
	install(t, testenv.PublicExecutable(t), exe)
	var orig syscall.Stat_t
	if err := syscall.Stat(exe, &orig); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	m := startMaster(t, exe, addr, []string{envRunDaemon + "=1"}, "-config", oneSite(t, addr, 2513))
	marker := filepath.Join(dir, "replacement-ran")
	if err := os.WriteFile(exe+".new", []byte("#!/bin/sh\ntouch "+marker+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Rename(exe+".new", exe)
	syscall.Kill(m.pid, syscall.SIGHUP)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(m.out(), "reloaded"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload within 30s:\n%s", m.out())
		}
	}
	if code, body := newClientGet(t, addr, "alice.test", "/a.txt"); code != 200 || body != "alice\n" {
		t.Fatalf("after the reload: %d %q\n%s", code, body, m.out())
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the master ran the replacement file")
	}
	kids := children(t, m.pid)
	if len(kids) < 2 {
		t.Fatalf("master has %d children, want multiplexers and workers", len(kids))
	}
	for _, pid := range kids {
		var st syscall.Stat_t
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/exe", pid), &st); err != nil {
			continue // ended meanwhile
		}
		if st.Dev != orig.Dev || st.Ino != orig.Ino {
			link, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			t.Errorf("child %d runs %s (inode %d), not the master's program (inode %d)", pid, link, st.Ino, orig.Ino)
		}
	}
}

// TestUpgradeKeepsSeal: a kept-alive connection on a PROXY listener that
// an old-generation worker hands back after an upgrade keeps its client
// address: the new master's multiplexers check the seal with the key the
// old master passed on, and neither closes the connection nor serves it
// as the proxy's own.
func TestUpgradeKeepsSeal(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	exe := filepath.Join(testenv.PublicDir(t, 0o755), "mpmd")
	install(t, testenv.PublicExecutable(t), exe)
	addr := freePort(t)
	aliceUID, bobUID, muxUID := testenv.FreeID(t, 2521), testenv.FreeID(t, 2522), testenv.FreeID(t, 2523)
	sites := []testSite{
		{name: "alice", uid: aliceUID, pages: map[string]string{"index.php": addrPage}},
		{name: "bob", uid: bobUID, pages: map[string]string{"index.php": addrPage}},
	}
	cfg := writeSites(t, addr, fmt.Sprintf("multiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\n", muxUID, muxUID), sites)
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\n[listener.%q]\nproxy_protocol = true\ntrusted_proxies = [\"127.0.0.1/32\"]\n", addr)
	f.Close()
	m := startMaster(t, exe, addr, []string{envRunDaemon + "=1"}, "-config", cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon output:\n%s", m.out())
		}
	})

	c := dialFrom(t, "", addr)
	c.Write(proxyV1("203.0.113.7:4711", addr))
	want := "remote=203.0.113.7 port=4711"
	if got := exchange(t, c, "alice.test")[0]; !strings.Contains(got, fmt.Sprintf("uid=%d %s", aliceUID, want)) {
		t.Fatalf("before the upgrade: %q", got)
	}

	// The upgrade, without waiting for the old master to end: its alice
	// worker holds c until c's next request, which is bob's.
	old := m.pid
	syscall.Kill(old, syscall.SIGUSR2)
	for deadline := time.Now().Add(30 * time.Second); !readyLine.MatchString(m.out()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no new master within 30s of SIGUSR2:\n%s", m.out())
		}
	}
	m.pid, _ = strconv.Atoi(readyLine.FindStringSubmatch(m.out())[1])
	// Only the new master's multiplexers take hand-backs from here.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		muxes := 0
		for _, pid := range children(t, old) {
			env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			if slices.Contains(strings.Split(string(env), "\x00"), prefork.EnvRole+"="+roleMux) {
				muxes++
			}
		}
		if muxes == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old master's multiplexers still run 30s after the upgrade:\n%s", m.out())
		}
	}
	if got := exchange(t, c, "bob.test")[0]; !strings.Contains(got, fmt.Sprintf("uid=%d %s", bobUID, want)) {
		t.Errorf("handed back to the new master: %q", got)
	}
	c.Close()
	if !waitGone(t, old, 60*time.Second) {
		t.Fatalf("old master %d still runs 60s after the upgrade:\n%s", old, m.out())
	}
}

// TestUpgradeTCPStatus: with the status page on a TCP address, an
// upgrade passes its socket to the new master (which could not bind it
// while the old one holds it), and the page answers throughout.
func TestUpgradeTCPStatus(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	exe := filepath.Join(testenv.PublicDir(t, 0o755), "mpmd")
	install(t, testenv.PublicExecutable(t), exe)
	ports := freePorts(t, 2)
	addr, admin := ports[0], ports[1]
	const token = "upgrade-status-token-0123456789"
	sites := []testSite{{name: "alice", uid: testenv.FreeID(t, 2531), pages: map[string]string{"a.txt": "alice\n"}}}
	mux := testenv.FreeID(t, 2532)
	cfg := writeSites(t, addr, fmt.Sprintf("admin = %q\nadmin_token = %q\nmultiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\n", admin, token, mux, mux), sites)
	m := startMaster(t, exe, addr, []string{envRunDaemon + "=1"}, "-config", cfg)
	status := func() int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+admin+"/", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("status page on %s: %v\n%s", admin, err, m.out())
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := status(); code != 200 {
		t.Fatalf("status page before the upgrade: %d", code)
	}
	old := m.pid
	syscall.Kill(old, syscall.SIGUSR2)
	for deadline := time.Now().Add(30 * time.Second); !readyLine.MatchString(m.out()); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(m.out(), "upgrade failed") || time.Now().After(deadline) {
			t.Fatalf("no new master:\n%s", m.out())
		}
	}
	m.pid, _ = strconv.Atoi(readyLine.FindStringSubmatch(m.out())[1])
	if !waitGone(t, old, 60*time.Second) {
		t.Fatalf("old master %d still runs 60s after the upgrade:\n%s", old, m.out())
	}
	if code := status(); code != 200 {
		t.Errorf("status page after the upgrade: %d", code)
	}
	if code, body := newClientGet(t, addr, "alice.test", "/a.txt"); code != 200 || body != "alice\n" {
		t.Errorf("after the upgrade: %d %q", code, body)
	}
}
