//go:build !cgo

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/testenv"
)

// notifySocket plays systemd's end of sd_notify: a datagram socket whose
// messages arrive on the returned channel.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ch := make(chan string, 64)
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := c.Read(b)
			if err != nil {
				return
			}
			ch <- string(b[:n])
		}
	}()
	return path, ch
}

// nextNotify returns the next message that contains want.
func nextNotify(t *testing.T, ch <-chan string, want string, m *upMaster) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case s := <-ch:
			if strings.Contains(s, want) {
				return s
			}
			t.Logf("notify: %q", s)
		case <-deadline:
			t.Fatalf("no %q within 30s:\n%s", want, m.out())
		}
	}
}

// TestSystemdNotify: with NOTIFY_SOCKET, mpmd says READY=1 when requests
// are served, RELOADING=1 then READY=1 around a reload, STOPPING=1 when
// it stops, and its children do not see the variable.
func TestSystemdNotify(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	sock, ch := notifySocket(t)
	addr := freePort(t)
	cmd := exec.Command(testenv.PublicExecutable(t), "-config", oneSite(t, addr, 2521))
	cmd.Env = append(os.Environ(), envRunDaemon+"=1", "NOTIFY_SOCKET="+sock)
	m := runMaster(t, cmd)

	ready := nextNotify(t, ch, "READY=1", m)
	// At once: READY=1 means the multiplexers accept.
	if code, body := newClientGet(t, addr, "alice.test", "/a.txt"); code != 200 || body != "alice\n" {
		t.Errorf("right after READY=1: %d %q", code, body)
	}
	if !strings.Contains(ready, "STATUS=generation 1: 1 identities") {
		t.Errorf("first READY=1 message %q has no STATUS= line with the generation", ready)
	}
	for _, pid := range children(t, m.pid) {
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if strings.Contains(string(env), "NOTIFY_SOCKET") {
			t.Errorf("child %d has NOTIFY_SOCKET in its environment", pid)
		}
	}

	syscall.Kill(m.pid, syscall.SIGHUP)
	if r := nextNotify(t, ch, "RELOADING=1", m); !strings.Contains(r, "MONOTONIC_USEC=") {
		t.Errorf("reload message %q lacks MONOTONIC_USEC", r)
	}
	if r := nextNotify(t, ch, "READY=1", m); !strings.Contains(r, "STATUS=generation 2") {
		t.Errorf("READY=1 after the reload is %q, want STATUS=generation 2", r)
	}
	if !strings.Contains(m.out(), "reloaded") {
		t.Errorf("READY=1 came before the reload was done:\n%s", m.out())
	}
	syscall.Kill(m.pid, syscall.SIGTERM)
	nextNotify(t, ch, "STOPPING=1", m)
}

// activated starts mpmd as systemd would with socket activation: the
// sockets at 3, 4, ..., LISTEN_FDS and LISTEN_FDNAMES, and LISTEN_PID
// equal to mpmd's pid, which only the child knows: a shell sets it and
// execs mpmd, which keeps the pid.
func activated(t *testing.T, config string, socks ...*net.TCPListener) *exec.Cmd {
	t.Helper()
	var names []string
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, testenv.PublicExecutable(t), "-config", config)
	for _, s := range socks {
		f, err := s.File()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		names = append(names, "web")
	}
	cmd.Env = append(os.Environ(), envRunDaemon+"=1", fmt.Sprintf("LISTEN_FDS=%d", len(socks)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
	return cmd
}

func tcpListen(t *testing.T) *net.TCPListener {
	t.Helper()
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestSocketActivation: mpmd serves on the sockets it was passed,
// matched to its listen addresses; an address without a socket and a
// socket without an address are errors that name them.
func TestSocketActivation(t *testing.T) {
	testenv.RequireRoot(t)
	requirePHP(t)
	a, b := tcpListen(t), tcpListen(t)
	aAddr, bAddr := a.Addr().String(), b.Addr().String()
	config := oneSite(t, aAddr, 2523)
	// Both addresses, the second first: matched by address, not order.
	text, _ := os.ReadFile(config)
	os.WriteFile(config, []byte(strings.Replace(string(text), fmt.Sprintf("listen = [%q]", aAddr), fmt.Sprintf("listen = [%q, %q]", bAddr, aAddr), 1)), 0o644)

	cmd := activated(t, config, a, b)
	m := runMaster(t, cmd)
	// The listeners close here; the sockets live on in mpmd.
	a.Close()
	b.Close()
	m.waitReady("")
	for _, addr := range []string{aAddr, bAddr} {
		if code, body := newClientGet(t, addr, "alice.test", "/a.txt"); code != 200 || body != "alice\n" {
			t.Errorf("on %s: %d %q", addr, code, body)
		}
		if !strings.Contains(m.out(), "addr="+addr+` "socket from"=systemd`) {
			t.Errorf("the log does not say %s came from systemd:\n%s", addr, m.out())
		}
	}

	// Errors: one address of the configuration not passed; one socket
	// passed that no address uses.
	c, d := tcpListen(t), tcpListen(t)
	for _, tc := range []struct {
		name  string
		socks []*net.TCPListener
		want  string
	}{
		{"address without socket", nil, "passed no socket bound to this address"},
		{"socket without address", []*net.TCPListener{d}, "passed sockets that no listen or tls_listen address uses: tcp " + d.Addr().String()},
	} {
		cfg := oneSite(t, c.Addr().String(), 2525)
		if tc.name == "address without socket" {
			// Two addresses; only c is passed.
			text, _ := os.ReadFile(cfg)
			os.WriteFile(cfg, []byte(strings.Replace(string(text), fmt.Sprintf("listen = [%q]", c.Addr().String()), fmt.Sprintf("listen = [%q, %q]", c.Addr().String(), d.Addr().String()), 1)), 0o644)
		}
		cmd := activated(t, cfg, append([]*net.TCPListener{c}, tc.socks...)...)
		cmd.WaitDelay = 30 * time.Second
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("%s: mpmd did not exit within 30s:\n%s", tc.name, out)
		}
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: mpmd ended with %v, want an error saying %q:\n%s", tc.name, err, tc.want, out)
		}
	}
}

// TestUnitsVerify: systemd-analyze verify accepts the units, with
// ExecStart pointing at a built mpmd and the man page their
// Documentation= names.
func TestUnitsVerify(t *testing.T) {
	requireTool(t, "systemd-analyze")
	dir := t.TempDir()
	exe := filepath.Join(dir, "mpmd")
	if b, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	os.MkdirAll(filepath.Join(dir, "man", "man8"), 0o755)
	man, err := os.ReadFile("mpmd.8")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "man", "man8", "mpmd.8"), man, 0o644)
	var units []string
	for _, u := range []string{"mpmd.service", "mpmd.socket"} {
		b, err := os.ReadFile(filepath.Join("systemd", u))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, u)
		os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/usr/sbin/mpmd", exe)), 0o644)
		units = append(units, p)
	}
	cmd := exec.Command("systemd-analyze", append([]string{"verify"}, units...)...)
	cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(dir, "man"))
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
