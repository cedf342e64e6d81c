package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/internal/systemd"
)

// A binary upgrade (SIGUSR2, as nginx does it): the master starts a new
// master from the program now at its path, hands it the listening
// sockets the way systemd's socket activation would (descriptors from 3
// on, LISTEN_FDS, LISTEN_FDNAMES) and the hand-back socket pair, and
// waits until the new master says, on a pipe, that its multiplexers
// accept. Then the old master retires its generation as a reload does
// and exits; until then, and for good when the new master fails, it
// keeps serving. The listening sockets are never closed, so no
// connection is refused on the way.

// envUpgrade tells a master that an older master started it, and which
// inherited descriptors are the readiness pipe, the hand-back pair and
// the pipe that holds the seal key: "ready=N,handback=N:N,seal=N". The
// variable names descriptors, never the key itself: a process can read
// its own environment back (/proc/self/environ), and the children start
// from the master's.
const envUpgrade = "MPMD_UPGRADE"

// upgradeTimeout bounds how long a new master may take to become ready.
const upgradeTimeout = 60 * time.Second

// inherited is what a master received from whoever started it:
// listening sockets from systemd or from the master it replaces and,
// from that master, the hand-back pair and the pipe to tell it "ready".
type inherited struct {
	sockets  []systemd.ActivatedFile
	passed   int      // how many sockets were passed
	from     string   // "systemd" or "the previous master", for logs and errors
	ready    *os.File // to the previous master; nil without an upgrade
	handback [2]*os.File
	// sealKey is the previous master's key for PROXY client addresses
	// (master.sealKey), so that its workers' hand-backs keep theirs.
	sealKey []byte
}

// takeInherited adopts the descriptors this master was started with. It
// unsets the variables that named them, so no child sees them.
func takeInherited() (*inherited, error) {
	in := &inherited{from: "systemd"}
	if v, ok := os.LookupEnv(envUpgrade); ok {
		os.Unsetenv(envUpgrade)
		if err := in.parseUpgrade(v); err != nil {
			return nil, err
		}
		in.from = "the previous master"
		// The old master could not know this pid before the fork; the
		// variable above says LISTEN_FDS is meant for this process.
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
	socks, err := systemd.Listeners()
	if err != nil {
		return nil, fmt.Errorf("listening sockets passed by %s: %w", in.from, err)
	}
	in.sockets, in.passed = socks, len(socks)
	return in, nil
}

func (in *inherited) parseUpgrade(v string) error {
	bad := func(why string) error { return fmt.Errorf("%s=%q: %s", envUpgrade, v, why) }
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		switch k {
		case "ready":
			f, err := adoptFD(val, "upgrade-ready")
			if err != nil {
				return bad(err.Error())
			}
			in.ready = f
		case "handback":
			a, b, ok := strings.Cut(val, ":")
			if !ok {
				return bad("handback is not two descriptors")
			}
			var err error
			if in.handback[0], err = adoptFD(a, "handback-send"); err != nil {
				return bad(err.Error())
			}
			if in.handback[1], err = adoptFD(b, "handback-recv"); err != nil {
				return bad(err.Error())
			}
		case "seal":
			f, err := adoptFD(val, "upgrade-seal")
			if err != nil {
				return bad(err.Error())
			}
			if in.sealKey, err = readSealKey(f); err != nil {
				return bad(err.Error())
			}
		default:
			return bad("unknown key " + strconv.Quote(k))
		}
	}
	if in.ready == nil || in.handback[0] == nil {
		return bad("needs ready= and handback=")
	}
	return nil
}

// readSealKey reads the seal key from f, the pipe the previous master
// wrote it to, and closes f: the key is read once, by this process only.
func readSealKey(f *os.File) ([]byte, error) {
	defer f.Close()
	key, err := io.ReadAll(io.LimitReader(f, sealKeyLen+1))
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	if len(key) != sealKeyLen {
		return nil, fmt.Errorf("seal key: %d bytes, want %d", len(key), sealKeyLen)
	}
	return key, nil
}

// sealPipe returns the read end of a pipe that holds key and nothing
// more (the write end is closed: a reader gets the key, then EOF). A pipe
// buffer holds far more than a key, so the write never waits.
func sealPipe(key []byte) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("seal key pipe: %w", err)
	}
	_, err = w.Write(key)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("seal key pipe: %w", err)
	}
	return r, nil
}

// adoptFD wraps inherited descriptor s, checked open, close-on-exec.
func adoptFD(s, name string) (*os.File, error) {
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("descriptor %q is not a number from 3 on", s)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return nil, fmt.Errorf("descriptor %d: %w", fd, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// takeSocket returns the inherited listening socket bound to the
// configured address addr, if one was passed. Sockets are matched by
// their bound address, not by position or name: systemd's order and
// names (FileDescriptorName=) say nothing about which address is which,
// and a name cannot hold the ':' of an address.
func (in *inherited) takeSocket(addr string) (*os.File, error) {
	f, err := in.takeSocketIfPassed(addr)
	if f != nil || err != nil {
		return f, err
	}
	if in.passed > 0 || in.ready != nil {
		return nil, fmt.Errorf("listen %s: %s passed no socket bound to this address (passed: %s); with socket activation every listen and tls_listen address must come from the socket unit", addr, in.from, in.describe())
	}
	return nil, nil
}

// takeSocketIfPassed is takeSocket for an address whose socket may or
// may not have been passed (the status page's TCP address): nil, and no
// error, when none was.
func (in *inherited) takeSocketIfPassed(addr string) (*os.File, error) {
	for i, s := range in.sockets {
		if !matchAddr(addr, s.Addr) {
			continue
		}
		in.sockets = append(in.sockets[:i], in.sockets[i+1:]...)
		defer s.File.Close()
		if !s.Listening {
			return nil, fmt.Errorf("listen %s: the socket %s passed is not listening", addr, in.from)
		}
		f, err := blockingCopy(s.File)
		if err != nil {
			return nil, fmt.Errorf("listen %s: socket passed by %s: %w", addr, in.from, err)
		}
		return f, nil
	}
	return nil, nil
}

// leftover reports sockets that no configured address took.
func (in *inherited) leftover() error {
	if len(in.sockets) == 0 {
		return nil
	}
	return fmt.Errorf("%s passed sockets that no listen or tls_listen address uses: %s", in.from, in.describe())
}

func (in *inherited) describe() string {
	var out []string
	for _, s := range in.sockets {
		a := "not a TCP socket"
		if s.Addr != nil {
			a = s.Addr.Network() + " " + s.Addr.String()
		}
		out = append(out, fmt.Sprintf("%s (%s)", a, s.Name))
	}
	if len(out) == 0 {
		return "none left"
	}
	return strings.Join(out, ", ")
}

// matchAddr reports whether a socket bound to bound serves the
// configured address addr: the same port and the same IP, where a
// configured host "" (":80") takes either wildcard (0.0.0.0 or [::]).
func matchAddr(addr string, bound net.Addr) bool {
	b, ok := bound.(*net.TCPAddr)
	if !ok {
		return false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	p, err := net.LookupPort("tcp", port)
	if err != nil || p != b.Port {
		return false
	}
	if host == "" {
		return b.IP.IsUnspecified()
	}
	ip := net.ParseIP(host)
	if ip == nil {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			return false
		}
		ip = a.IP
	}
	return ip.Equal(b.IP)
}

// upgrade starts a new master from the program at path with this
// master's listening sockets (the status page's TCP one included),
// hand-back pair and seal key, and waits
// until it is ready. On an error the new master is gone and this one serves on.
func (m *master) upgrade(path string, addrs []string) (pid int, err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("readiness pipe: %w", err)
	}
	defer r.Close()
	seal, err := sealPipe(m.sealKey)
	if err != nil {
		w.Close()
		return 0, err
	}
	defer seal.Close()
	var files []*os.File
	for _, a := range addrs {
		files = append(files, m.listeners[a])
	}
	if m.admin != nil {
		// The status page's TCP socket, found by its address as the
		// others are: never closed either, so never refused.
		files = append(files, m.admin)
	}
	n := len(files)
	files = append(files, m.handbackSend, m.handbackRecv, w, seal)
	env := systemd.ChildEnv(os.Environ()) // this master's LISTEN_*, if any, are spent
	if ns := os.Getenv("NOTIFY_SOCKET"); ns != "" {
		env = append(env, "NOTIFY_SOCKET="+ns) // the new master reports to systemd
	}
	names := strings.TrimSuffix(strings.Repeat("mpmd:", n), ":")
	env = append(env, "LISTEN_FDS="+strconv.Itoa(n), "LISTEN_FDNAMES="+names,
		fmt.Sprintf("%s=ready=%d,handback=%d:%d,seal=%d", envUpgrade, 3+n+2, 3+n, 3+n+1, 3+n+3))
	cmd := &exec.Cmd{Path: path, Args: os.Args, Env: env, Stdout: os.Stdout, Stderr: os.Stderr, ExtraFiles: files}
	if m.root {
		// The trimmed master runs with SECBIT_NOROOT locked: uid 0
		// gains nothing through execve. The new master gets what this
		// one kept, as ambient capabilities, and trims them again.
		cmd.SysProcAttr = &syscall.SysProcAttr{}
		for _, c := range masterCaps {
			cmd.SysProcAttr.AmbientCaps = append(cmd.SysProcAttr.AmbientCaps, uintptr(c))
		}
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", path, err)
	}
	pid = cmd.Process.Pid
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	m.log.Info("upgrade: started a new master; waiting until it is ready", "exe", path, "pid", pid)

	r.SetReadDeadline(time.Now().Add(upgradeTimeout))
	b := make([]byte, 1)
	if k, err := r.Read(b); k == 1 {
		return pid, nil
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		cmd.Process.Kill() // its children die with it (parent-death signal)
		<-done
		return 0, fmt.Errorf("new master %s (pid %d) was not ready within %v; killed it", path, pid, upgradeTimeout)
	} else if err != nil && err != io.EOF {
		cmd.Process.Kill()
		<-done
		return 0, fmt.Errorf("read the new master's readiness: %w", err)
	}
	// It closed the pipe without a word: it failed, and is exiting.
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	return 0, fmt.Errorf("new master %s (pid %d) ended before it was ready (%v); see its log lines above", path, pid, cmd.ProcessState)
}

// blockingCopy returns a close-on-exec duplicate of f's socket that this
// process's os.File never switches between blocking and non-blocking
// mode (see inheritable). f stays open.
func blockingCopy(f *os.File) (*os.File, error) {
	fd := f.Fd() // switches a pollable file's socket to blocking mode
	if err := unix.SetNonblock(int(fd), false); err != nil {
		return nil, os.NewSyscallError("fcntl(O_NONBLOCK)", err)
	}
	nfd, err := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, os.NewSyscallError("fcntl(F_DUPFD_CLOEXEC)", err)
	}
	return os.NewFile(uintptr(nfd), f.Name()), nil
}
