package systemd_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/internal/systemd"
)

// notifySocket plays the service manager's end: a datagram socket, at a
// path or in the abstract namespace, named by NOTIFY_SOCKET for the
// test's duration.
func notifySocket(t *testing.T, abstract bool) *net.UnixConn {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	if abstract {
		name = fmt.Sprintf("@mpm-test-notify-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return c
}

// receive reads one datagram.
func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

func TestNotify(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		t.Run(map[bool]string{false: "path", true: "abstract"}[abstract], func(t *testing.T) {
			c := notifySocket(t, abstract)
			for _, step := range []struct {
				send func() (bool, error)
				want string
			}{
				{systemd.Ready, "READY=1"},
				{func() (bool, error) { return systemd.Status("serving 3 identities\nline two") }, "STATUS=serving 3 identities line two"},
				{systemd.Watchdog, "WATCHDOG=1"},
				{systemd.Stopping, "STOPPING=1"},
				{func() (bool, error) { return systemd.Notify("MAINPID=4242\nREADY=1") }, "MAINPID=4242\nREADY=1"},
			} {
				sent, err := step.send()
				if err != nil || !sent {
					t.Fatalf("send %q: sent %v, %v", step.want, sent, err)
				}
				if got := receive(t, c); got != step.want {
					t.Errorf("received %q, want %q", got, step.want)
				}
			}
		})
	}
}

func monotonicUsec(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

// TestReloading: RELOADING=1 carries MONOTONIC_USEC, the monotonic clock
// at the time of sending, as Type=notify-reload needs.
func TestReloading(t *testing.T) {
	c := notifySocket(t, false)
	before := monotonicUsec(t)
	if sent, err := systemd.Reloading(); err != nil || !sent {
		t.Fatalf("Reloading: sent %v, %v", sent, err)
	}
	after := monotonicUsec(t)
	lines := strings.Split(receive(t, c), "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("received %q, want RELOADING=1 and MONOTONIC_USEC=", lines)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC=%d (%v), want between %d and %d", usec, err, before, after)
	}
}

func TestNotifyWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	for _, f := range []func() (bool, error){systemd.Ready, systemd.Reloading, systemd.Stopping} {
		if sent, err := f(); sent || err != nil {
			t.Errorf("without NOTIFY_SOCKET: sent %v, %v; want false, nil", sent, err)
		}
	}
}

func TestNotifyBadSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "run/notify")
	sent, err := systemd.Ready()
	if sent || !errors.Is(err, systemd.ErrBadEnv) || !strings.Contains(err.Error(), `NOTIFY_SOCKET="run/notify"`) {
		t.Errorf("relative NOTIFY_SOCKET: sent %v, %v; want ErrBadEnv naming the value", sent, err)
	}
	missing := filepath.Join(t.TempDir(), "gone")
	t.Setenv("NOTIFY_SOCKET", missing)
	if sent, err := systemd.Ready(); sent || err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("NOTIFY_SOCKET without a listener: sent %v, %v; want an error naming %s", sent, err, missing)
	}
}

func TestWatchdogInterval(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	for _, c := range []struct {
		usec, pid string
		want      time.Duration
		bad       string
	}{
		{"", "", 0, ""},
		{"500000", "", 500 * time.Millisecond, ""},
		{"500000", me, 500 * time.Millisecond, ""},
		{"500000", "1", 0, ""},
		{"half", me, 0, `WATCHDOG_USEC="half"`},
		{"0", "", 0, `WATCHDOG_USEC="0"`},
		{"500000", "x", 0, `WATCHDOG_PID="x"`},
	} {
		t.Setenv("WATCHDOG_USEC", c.usec)
		t.Setenv("WATCHDOG_PID", c.pid)
		got, err := systemd.WatchdogInterval()
		if c.bad != "" {
			if !errors.Is(err, systemd.ErrBadEnv) || !strings.Contains(err.Error(), c.bad) {
				t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, want ErrBadEnv naming %s", c.usec, c.pid, err, c.bad)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, %v; want %v", c.usec, c.pid, got, err, c.want)
		}
	}
}

func TestChildEnv(t *testing.T) {
	env := []string{
		"PATH=/usr/bin", "NOTIFY_SOCKET=/run/systemd/notify", "LISTEN_PID=1", "LISTEN_FDS=2",
		"LISTEN_FDNAMES=a:b", "WATCHDOG_USEC=1", "WATCHDOG_PID=1", "LISTEN_FDS_EXTRA=kept", "HOME=/",
	}
	got := systemd.ChildEnv(env)
	want := []string{"PATH=/usr/bin", "LISTEN_FDS_EXTRA=kept", "HOME=/"}
	if !slices.Equal(got, want) {
		t.Errorf("ChildEnv = %q, want %q", got, want)
	}
}
