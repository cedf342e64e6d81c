package systemd_test

import (
	"bufio"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/systemd"
	"github.com/gompm/mpm/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m, map[string]testenv.Helper{"activated": helperActivated})
}

// activatedFile is what the activated helper saw of one descriptor.
type activatedFile struct {
	Name, Network, Addr string
	Listening           bool
	CloseOnExec         bool
	Received            string // what a client sent through it
}

type activatedResult struct {
	Files []activatedFile
	Env   []string // LISTEN_* left in the environment afterwards
}

// helperActivated is a daemon started by socket activation: it takes its
// sockets with Listeners and serves one client on each.
func helperActivated([]string) (any, error) {
	files, err := systemd.Listeners()
	if err != nil {
		return nil, err
	}
	var r activatedResult
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LISTEN_") {
			r.Env = append(r.Env, kv)
		}
	}
	for _, f := range files {
		a := activatedFile{Name: f.Name, Listening: f.Listening}
		if f.Addr != nil {
			a.Network, a.Addr = f.Addr.Network(), f.Addr.String()
		}
		fl, _, e := syscall.Syscall(syscall.SYS_FCNTL, f.File.Fd(), syscall.F_GETFD, 0)
		a.CloseOnExec = e == 0 && fl&syscall.FD_CLOEXEC != 0
		if a.Received, err = serveOne(f); err != nil {
			return nil, err
		}
		r.Files = append(r.Files, a)
	}
	return r, nil
}

// serveOne reads one line from one client of f's socket.
func serveOne(f systemd.ActivatedFile) (string, error) {
	defer f.File.Close()
	deadline := time.Now().Add(10 * time.Second)
	if !f.Listening {
		pc, err := net.FilePacketConn(f.File)
		if err != nil {
			return "", err
		}
		defer pc.Close()
		pc.SetReadDeadline(deadline)
		b := make([]byte, 512)
		n, _, err := pc.ReadFrom(b)
		return strings.TrimSpace(string(b[:n])), err
	}
	l, err := net.FileListener(f.File)
	if err != nil {
		return "", err
	}
	defer l.Close()
	type deadliner interface{ SetDeadline(time.Time) error }
	l.(deadliner).SetDeadline(deadline)
	c, err := l.Accept()
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetReadDeadline(deadline)
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// TestListeners starts a helper as systemd would: sockets at fds 3, 4
// and 5, LISTEN_FDS, LISTEN_FDNAMES, and LISTEN_PID equal to the pid of
// the process that reads them. systemd sets LISTEN_PID in the forked
// child before the exec; os/exec fixes the environment before the fork,
// so the helper starts as a shell that sets LISTEN_PID=$$ and then execs
// the test binary, which keeps the pid. (coreos/go-systemd's tests
// instead let the child fix LISTEN_PID itself through a test-only
// variable; here the code under test runs unchanged.)
func TestListeners(t *testing.T) {
	tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	unix, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	var files []*os.File
	for _, c := range []interface{ File() (*os.File, error) }{tcp, unix, udp} {
		f, err := c.File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}

	h := testenv.Command(t, "activated")
	h.Cmd.Path = "/bin/sh"
	h.Cmd.Args = append([]string{"sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`}, h.Cmd.Args...)
	h.Cmd.Env = append(h.Cmd.Env, "LISTEN_FDS=3", "LISTEN_FDNAMES=http:ctl:dns")
	h.Cmd.ExtraFiles = files
	if err := h.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// From here on only the helper holds the sockets open for serving.
	for _, f := range files {
		f.Close()
	}
	tcp.Close()
	udp.Close()
	send := func(network, addr, msg string) {
		c, err := net.Dial(network, addr)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		c.Write([]byte(msg + "\n"))
	}
	send("tcp", tcp.Addr().String(), "to http")
	send("unix", sock, "to ctl")
	send("udp", udp.LocalAddr().String(), "to dns")

	var r activatedResult
	if err := h.Wait(&r); err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	want := []activatedFile{
		{Name: "http", Network: "tcp", Addr: tcp.Addr().String(), Listening: true, CloseOnExec: true, Received: "to http"},
		{Name: "ctl", Network: "unix", Addr: sock, Listening: true, CloseOnExec: true, Received: "to ctl"},
		{Name: "dns", Network: "udp", Addr: udp.LocalAddr().String(), CloseOnExec: true, Received: "to dns"},
	}
	if len(r.Files) != len(want) {
		t.Fatalf("helper took %d files, want %d", len(r.Files), len(want))
	}
	for i := range want {
		if r.Files[i] != want[i] {
			t.Errorf("fd %d: got %+v, want %+v", 3+i, r.Files[i], want[i])
		}
	}
	if len(r.Env) != 0 {
		t.Errorf("LISTEN_* still set after Listeners: %q", r.Env)
	}
}

// setListenEnv sets the LISTEN_* variables for one test; an empty value
// leaves the variable unset.
func setListenEnv(t *testing.T, pid, fds, names string) {
	for k, v := range map[string]string{"LISTEN_PID": pid, "LISTEN_FDS": fds, "LISTEN_FDNAMES": names} {
		t.Setenv(k, v)
		if v == "" {
			os.Unsetenv(k)
		}
	}
}

func listenEnvLeft() []string {
	var left []string
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if v, ok := os.LookupEnv(k); ok {
			left = append(left, k+"="+v)
		}
	}
	return left
}

// TestListenersNotOurs: no variables, or variables for another process,
// give nothing and no error; the variables are gone either way.
func TestListenersNotOurs(t *testing.T) {
	for _, c := range [][3]string{
		{"", "", ""},
		{"", "2", "a:b"},
		{"1", "2", "a:b"},
		{strconv.Itoa(os.Getpid()), "0", ""},
	} {
		setListenEnv(t, c[0], c[1], c[2])
		files, err := systemd.Listeners()
		if files != nil || err != nil {
			t.Errorf("LISTEN_PID=%q LISTEN_FDS=%q: %v, %v; want nil, nil", c[0], c[1], files, err)
		}
		if left := listenEnvLeft(); len(left) != 0 {
			t.Errorf("left in the environment: %q", left)
		}
	}
}

// TestListenersBadEnv: every unusable value is an error naming it, and no
// descriptor of this process is taken.
func TestListenersBadEnv(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	for _, c := range []struct{ pid, fds, names, bad string }{
		{"abc", "1", "", `LISTEN_PID="abc"`},
		{"-4", "1", "", `LISTEN_PID="-4"`},
		{me, "x", "", `LISTEN_FDS="x"`},
		{me, "-1", "", `LISTEN_FDS="-1"`},
		{me, "100000000", "", `LISTEN_FDS="100000000"`},
		{me, "2", "a:b:c", `LISTEN_FDNAMES="a:b:c"`},
		{me, "60000", "", "descriptor"},
	} {
		setListenEnv(t, c.pid, c.fds, c.names)
		files, err := systemd.Listeners()
		if files != nil || !errors.Is(err, systemd.ErrBadEnv) || !strings.Contains(err.Error(), c.bad) {
			t.Errorf("LISTEN_PID=%q LISTEN_FDS=%q LISTEN_FDNAMES=%q: %v, %v; want ErrBadEnv naming %s", c.pid, c.fds, c.names, files, err, c.bad)
		}
		if left := listenEnvLeft(); len(left) != 0 {
			t.Errorf("left in the environment: %q", left)
		}
	}
}
