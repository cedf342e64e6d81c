package systemd_test

import (
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/gompm/mpm/internal/systemd"
)

// What the service manager receives: one datagram per call on the socket
// named by NOTIFY_SOCKET. Here the example plays the manager's end.
func ExampleNotify() {
	dir, _ := os.MkdirTemp("", "notify")
	defer os.RemoveAll(dir)
	manager, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"})
	if err != nil {
		log.Fatal(err)
	}
	defer manager.Close()
	os.Setenv("NOTIFY_SOCKET", manager.LocalAddr().String())
	defer os.Unsetenv("NOTIFY_SOCKET")

	systemd.Status("listening on 2 sockets, 3 identities")
	systemd.Ready()

	b := make([]byte, 512)
	for range 2 {
		n, _ := manager.Read(b)
		fmt.Printf("%s\n", b[:n])
	}
	// Output:
	// STATUS=listening on 2 sockets, 3 identities
	// READY=1
}

// A Type=notify-reload daemon: systemctl reload sends SIGHUP; the daemon
// says when the reload begins and when it is done.
func ExampleReloading() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	if _, err := systemd.Ready(); err != nil {
		log.Printf("notify: %v", err)
	}
	for range hup {
		systemd.Reloading()
		// ... read the configuration again, replace the workers ...
		systemd.Ready()
	}
}

// A daemon takes the sockets systemd bound for it, matches them to its
// configured addresses by what they are, not by their position, and
// keeps the manager's variables out of its children.
func ExampleListeners() {
	files, err := systemd.Listeners()
	if err != nil {
		log.Fatal(err)
	}
	configured := map[string]bool{"0.0.0.0:80": true, "0.0.0.0:443": true}
	var listeners []net.Listener
	for _, f := range files {
		if f.Addr == nil || !f.Listening || !configured[f.Addr.String()] {
			log.Printf("socket %s (%v) is not in the configuration; closing it", f.Name, f.Addr)
			f.File.Close()
			continue
		}
		l, err := net.FileListener(f.File)
		f.File.Close()
		if err != nil {
			log.Fatal(err)
		}
		listeners = append(listeners, l)
	}
	// ... bind whatever configured address systemd did not pass ...

	cmd := exec.Command("/usr/lib/mpmd/worker")
	cmd.Env = systemd.ChildEnv(os.Environ())
	_ = listeners
}
