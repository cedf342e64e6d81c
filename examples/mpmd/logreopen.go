package main

// Reopening the access logs (SIGUSR1, after logrotate renamed them)
// without replacing a worker or dropping a connection.
//
// The master opens each log again, through openLog (root's directories
// only, no symbolic link), and puts the new file at the descriptor
// number of the old one with dup3: workers it spawns from then on inherit
// the new file. The workers already running hold the old one; the master
// tells them with SIGWINCH (ignored by a Go program that does not ask for
// it, so a worker that is still starting is not killed by it), and each
// asks for its pool's logs on a socket pair of its pool, sending the end
// of a fresh socket pair of its own for the answer: no worker can take
// another's answer. A worker also asks once when it starts, so that one
// started between the reopen and the signal is not left on the old file.
// The master takes nothing from a request but that descriptor, answers
// without blocking, and answers a pool at most logAsksPerSecond times a
// second. A worker puts each file it receives at its old descriptor
// number with dup3, so that a line being written goes whole to one file.

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/prefork"
)

// reopenSignal is what the master sends workers to have them ask for
// their logs again.
const reopenSignal = syscall.SIGWINCH

// logAsksPerSecond bounds the answers the master gives one pool's workers:
// a worker looping on requests costs the master little.
const logAsksPerSecond = 200

// poolLogs are one pool's access logs, as the master holds them.
type poolLogs struct {
	mu    sync.Mutex
	names []string   // the names the workers know them by (workerVHost.LogFile)
	paths []string   // where they are
	files []*os.File // the master's descriptors; dup3 replaces what they point at
	// ctl is the master's end of the pool's request socket; peer is the
	// workers' end, kept to be handed to the workers the pool starts.
	ctl, peer *os.File
	done      chan struct{}
}

// newPoolLogs makes the pool's request socket pair.
func newPoolLogs() (*poolLogs, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("log socket pair: %w", os.NewSyscallError("socketpair", err))
	}
	return &poolLogs{ctl: os.NewFile(uintptr(fds[0]), "logctl-master"), peer: os.NewFile(uintptr(fds[1]), "logctl"), done: make(chan struct{})}, nil
}

func (l *poolLogs) add(name, path string, f *os.File) {
	l.names = append(l.names, name)
	l.paths = append(l.paths, path)
	l.files = append(l.files, f)
}

// serve answers the workers' requests until every holder of the peer end
// has closed it (the workers have ended and close has run).
func (l *poolLogs) serve(log *slog.Logger) {
	defer close(l.done)
	fd := int(l.ctl.Fd()) // blocking, never in the poller
	buf := make([]byte, 16)
	oob := make([]byte, unix.CmsgSpace(4))
	var window time.Time
	answered := 0
	for {
		n, oobn, flags, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil || (n == 0 && oobn == 0) {
			return
		}
		reply := receivedFDs(oob[:oobn])
		if flags&unix.MSG_CTRUNC != 0 || len(reply) != 1 {
			closeFDs(reply)
			log.Warn("log reopen: a request without exactly one descriptor; ignored")
			continue
		}
		if time.Since(window) > time.Second {
			window, answered = time.Now(), 0
		}
		answered++
		var st unix.Stat_t
		if answered <= logAsksPerSecond && unix.Fstat(reply[0], &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
			l.mu.Lock()
			fds := make([]int, len(l.files))
			for i, f := range l.files {
				fds[i] = int(f.Fd())
			}
			err := unix.Sendmsg(reply[0], []byte(strings.Join(l.names, "\n")), unix.UnixRights(fds...), nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
			l.mu.Unlock()
			if err != nil {
				log.Warn("log reopen: answer a worker", "err", err)
			}
		}
		closeFDs(reply)
	}
}

// reopen opens every log again and puts each new file where the old one
// was. It returns the first error; the logs it could not open stay as
// they were.
func (l *poolLogs) reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first error
	for i, path := range l.paths {
		nf, err := openLog(path)
		if err == nil {
			err = unix.Dup3(int(nf.Fd()), int(l.files[i].Fd()), unix.O_CLOEXEC)
			nf.Close()
		}
		if err != nil && first == nil {
			first = fmt.Errorf("reopen access log %s: %w", path, err)
		}
	}
	return first
}

// close ends serve: the master's copy of the peer end goes, and serve
// sees the end once the workers' copies have gone too.
func (l *poolLogs) close() {
	l.peer.Close()
	select {
	case <-l.done:
		l.ctl.Close()
	case <-time.After(5 * time.Second):
		// A process still holds the workers' end: leave serve
		// blocked rather than close a descriptor it reads (the number
		// could be reused under it).
	}
}

// reopenLogs reopens the access logs of every generation that runs and
// tells their workers.
func (m *master) reopenLogs() {
	m.mu.Lock()
	gens := append([]*generation(nil), m.live...)
	m.mu.Unlock()
	n := 0
	for _, g := range gens {
		for i, l := range g.logs {
			if l == nil {
				continue
			}
			if err := l.reopen(); err != nil {
				m.log.Error("log reopen", "err", err)
			}
			n += len(l.paths)
			g.pools[i].Signal(reopenSignal)
		}
	}
	m.log.Info("access logs reopened", "logs", n)
}

// watchReopen reopens the logs on each SIGUSR1 until stop is closed.
func (m *master) watchReopen(stop <-chan struct{}) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	defer signal.Stop(ch)
	for {
		select {
		case <-ch:
			m.reopenLogs()
		case <-stop:
			return
		}
	}
}

// workerLogs is the worker's side: its access logs by name, and the
// socket to ask for them on.
type workerLogs struct {
	ctl   *os.File
	byLog map[string]*accessLog
	log   *slog.Logger
}

// watch asks for the logs now, and again on each reopenSignal.
func (w *workerLogs) watch(done <-chan struct{}) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, reopenSignal)
	go func() {
		defer signal.Stop(ch)
		for {
			if err := w.ask(); err != nil {
				w.log.Warn("log reopen: still writing to the access logs held before", "err", err)
			}
			select {
			case <-ch:
			case <-done:
				return
			}
		}
	}()
}

// ask gets the pool's current logs from the master and puts each at the
// descriptor of the one it replaces.
func (w *workerLogs) ask() error {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socketpair", err)
	}
	defer unix.Close(pair[0])
	// The shared end is used with raw, non-blocking sends: its blocking
	// mode belongs to every worker of the pool.
	ctl := int(w.ctl.Fd())
	deadline := time.Now().Add(5 * time.Second)
	for {
		err = unix.Sendmsg(ctl, []byte{'?'}, unix.UnixRights(pair[1]), nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if err != unix.EAGAIN || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	unix.Close(pair[1])
	if err != nil {
		return os.NewSyscallError("sendmsg", err)
	}
	tv := unix.NsecToTimeval(time.Until(deadline).Nanoseconds())
	unix.SetsockoptTimeval(pair[0], unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*len(w.byLog)))
	n, oobn, flags, _, err := unix.Recvmsg(pair[0], buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("recvmsg", err)
	}
	fds := receivedFDs(oob[:oobn])
	defer closeFDs(fds)
	names := strings.Split(string(buf[:n]), "\n")
	if flags&(unix.MSG_CTRUNC|unix.MSG_TRUNC) != 0 || len(names) != len(fds) {
		return fmt.Errorf("answer of %d names and %d descriptors (flags %#x)", len(names), len(fds), flags)
	}
	for i, name := range names {
		a := w.byLog[name]
		if a == nil {
			continue
		}
		a.mu.Lock()
		err := unix.Dup3(fds[i], int(a.f.Fd()), unix.O_CLOEXEC)
		a.mu.Unlock()
		if err != nil {
			return fmt.Errorf("log %s: %w", name, os.NewSyscallError("dup3", err))
		}
	}
	return nil
}

// receivedFDs returns the descriptors of SCM_RIGHTS messages in oob.
func receivedFDs(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var out []int
	for _, m := range msgs {
		if fds, err := unix.ParseUnixRights(&m); err == nil {
			out = append(out, fds...)
		}
	}
	return out
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// pidFile is where the master writes its pid, in run_dir, for
// logrotate's postrotate (kill -USR1 $(cat /run/mpmd/mpmd.pid)).
const pidFile = "mpmd.pid"

// writePID writes the master's pid to <run_dir>/mpmd.pid (0644), through
// root's directories and without following a link, as the logs are
// opened; it returns a function that removes it.
func writePID(runDir string, root bool) (func(), error) {
	var dir int
	var err error
	if root {
		dir, err = walkRootDirs(runDir, true)
	} else {
		if err = os.MkdirAll(runDir, 0o755); err == nil {
			dir, err = unix.Open(runDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("pid file in %s: %w", runDir, err)
	}
	fd, err := unix.Openat(dir, pidFile, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		unix.Close(dir)
		return nil, &os.PathError{Op: "open", Path: runDir + "/" + pidFile, Err: err}
	}
	f := os.NewFile(uintptr(fd), pidFile)
	_, err = fmt.Fprintf(f, "%d\n", os.Getpid())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Close(dir)
		return nil, fmt.Errorf("pid file: %w", err)
	}
	return func() {
		// Only while it still names this process: after a binary
		// upgrade the file names the new master, which outlives this one.
		if b, err := readAt(dir, pidFile); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
			unix.Unlinkat(dir, pidFile, 0)
		}
		unix.Close(dir)
	}, nil
}

// logFiles is the pool's log files for its workers' spawn.
func (l *poolLogs) logFiles() []prefork.File {
	return []prefork.File{{Name: "logctl", File: l.peer}}
}

// readAt reads the small file name in directory dir, not following a
// link.
func readAt(dir int, name string) ([]byte, error) {
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64))
}
