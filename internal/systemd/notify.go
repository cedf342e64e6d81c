package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrBadEnv matches an error about a variable the service manager set
// (NOTIFY_SOCKET, LISTEN_*, WATCHDOG_*) whose value cannot be used. The
// error names the variable and its value.
var ErrBadEnv = errors.New("systemd: bad environment")

func badEnv(name, value, why string) error {
	return fmt.Errorf("%w: %s=%q: %s", ErrBadEnv, name, value, why)
}

// Notify sends state, one or more "KEY=value" lines separated by "\n",
// to the service manager on $NOTIFY_SOCKET, in one datagram. Without the
// variable (not started by systemd, or by a unit that is not
// Type=notify) it does nothing and returns false, nil. NOTIFY_SOCKET is
// a path, or an abstract socket name when it starts with "@".
//
// systemd takes the message only from the processes NotifyAccess= allows
// (by default the main process): the daemon's children should not
// inherit the variable (see [ChildEnv]).
func Notify(state string) (sent bool, err error) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return false, nil
	}
	if addr[0] != '/' && addr[0] != '@' {
		// Newer systemd also knows "vsock:CID:PORT", for virtual
		// machines; a daemon on a host has no use for it.
		return false, badEnv("NOTIFY_SOCKET", addr, "not an absolute path or an abstract socket name (@name)")
	}
	// Go maps a leading "@" to the abstract namespace's NUL.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("systemd: notify %q: %w", firstLine(state), err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("systemd: notify %q: %w", firstLine(state), err)
	}
	return true, nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// Ready tells the service manager that start-up (or a reload) is
// finished: READY=1. A Type=notify unit counts as started, and a
// Type=notify-reload unit as reloaded, only then.
func Ready() (bool, error) { return Notify("READY=1") }

// Reloading tells the service manager that a reload has begun:
// RELOADING=1 with MONOTONIC_USEC, the CLOCK_MONOTONIC time in
// microseconds, which systemd 253 and later require for
// Type=notify-reload to tell this reload from an older one. Send
// [Ready] when the reload is done.
func Reloading() (bool, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return false, fmt.Errorf("systemd: read CLOCK_MONOTONIC: %w", err)
	}
	usec := ts.Nano() / 1000
	return Notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10))
}

// Stopping tells the service manager that the daemon is shutting down:
// STOPPING=1.
func Stopping() (bool, error) { return Notify("STOPPING=1") }

// Status sets the one-line status systemctl status shows: STATUS=s.
// Newlines in s, which would end the assignment, become spaces.
func Status(s string) (bool, error) {
	return Notify("STATUS=" + strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s))
}

// Watchdog tells the service manager that the daemon is alive:
// WATCHDOG=1. Send it more often than [WatchdogInterval].
func Watchdog() (bool, error) { return Notify("WATCHDOG=1") }

// WatchdogInterval returns the watchdog timeout the service manager set
// for this process (WatchdogSec=, as $WATCHDOG_USEC), or 0 when there is
// none or it is meant for another process ($WATCHDOG_PID). Send
// [Watchdog] at about half of it.
func WatchdogInterval() (time.Duration, error) {
	us := os.Getenv("WATCHDOG_USEC")
	if us == "" {
		return 0, nil
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" {
		pid, err := strconv.Atoi(p)
		if err != nil || pid <= 0 {
			return 0, badEnv("WATCHDOG_PID", p, "not a pid")
		}
		if pid != os.Getpid() {
			return 0, nil
		}
	}
	n, err := strconv.ParseInt(us, 10, 64)
	if err != nil || n <= 0 || n > int64(time.Duration(1<<63-1)/time.Microsecond) {
		return 0, badEnv("WATCHDOG_USEC", us, "not a positive number of microseconds")
	}
	return time.Duration(n) * time.Microsecond, nil
}

// managerVars are the variables the service manager sets for the main
// process only.
var managerVars = []string{
	"NOTIFY_SOCKET",
	"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES",
	"WATCHDOG_PID", "WATCHDOG_USEC",
}

// ChildEnv returns env without the variables the service manager meant
// for the main process: NOTIFY_SOCKET (a child could report READY=1 or
// STOPPING=1 for the daemon, where NotifyAccess= lets it), LISTEN_* and
// WATCHDOG_*. The daemon builds its children's environment with it.
func ChildEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, v := range managerVars {
			if k == v {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}
