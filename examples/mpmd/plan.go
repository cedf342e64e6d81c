package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// What the master tells its children, as JSON in an inherited memfd (the
// environment is too small and too visible for it). Children never read
// the configuration file: the master resolved it, and a chrooted
// multiplexer could not reach it anyway.

// muxPlan is a multiplexer's view: where each name on each listener goes.
type muxPlan struct {
	Routing        routing
	Listeners      []string        // addresses, in the order of the inherited files "listen-N"
	TLS            []bool          // by listener: whether it speaks TLS
	QueueTimeout   []time.Duration // by pool (routing.Pools), the inherited files "pool-N"
	HeaderTimeout  time.Duration
	MaxHeaderBytes int
	UnknownHost    int
	UIDs           map[uint32]string // identity by uid, for the log of hand-backs
	// Proxy holds, by listener, the trusted proxies' ranges of a PROXY
	// protocol listener; nil for the others.
	Proxy [][]string
	// SealKey is the key of the seal on a PROXY client address passed
	// with a connection (see mux.seal); the master's, kept across
	// reloads, and never in a worker's plan.
	SealKey []byte
}

// workerPlan is a worker's view: its identity's vhosts, and everyone's
// names, so that it routes every request as the multiplexers do.
type workerPlan struct {
	Identity       string
	Routing        routing
	Listeners      []string // every listen address: a hand-back's local address is one of them
	VHosts         []workerVHost
	PHPDir         string // the identity's private PHP directory: <run_dir>/php/<identity>
	HeaderTimeout  time.Duration
	KeepAlive      time.Duration
	MaxHeaderBytes int
	MaxBodyBytes   int64
	BodyTimeout    time.Duration
	BodyMinRate    int64
	SendTimeout    time.Duration
	UnknownHost    int
	// PHPDefaults are php.ini settings for every vhost of the identity
	// that does not set them itself: its own session.save_path,
	// upload_tmp_dir and sys_temp_dir.
	PHPDefaults map[string]string
	// HandbackTimeout is how long a worker waits to hand a connection
	// back to a multiplexer (the pool's queue timeout).
	HandbackTimeout time.Duration
	// MaxActive is the pool's bound on requests in progress: also the
	// streams an HTTP/2 connection may run at once.
	MaxActive int
	// ConnPHP is how many PHP requests one connection may run at once:
	// half of what the identity may run (php_max in FPM mode, max in
	// CGI mode), so that one HTTP/2 connection's streams never take all
	// of a site's PHP.
	ConnPHP      int
	TicketSecret []byte // the pool's session ticket secret, when it serves TLS
	// Confine is what the worker, and the PHP it runs, may still reach.
	Confine confinePlan
}

type workerVHost struct {
	VHost
	N         int    // index in routing.VHosts (VHost.Index is its index files)
	LogFile   string // name of the inherited access log file, or ""
	FPMSocket string // php_mode = "fpm": its pool's socket
}

// planFile writes v as JSON into a sealed memfd for children to read.
func planFile(name string, v any) (*os.File, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s plan: %w", name, err)
	}
	fd, err := unix.MemfdCreate("mpmd-"+name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("%s plan: %w", name, os.NewSyscallError("memfd_create", err))
	}
	f := os.NewFile(uintptr(fd), "plan-"+name)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s plan: %w", name, err)
	}
	// Sealed: a child cannot change what its siblings read.
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_GROW|unix.F_SEAL_SHRINK|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal %s plan: %w", name, err)
	}
	return f, nil
}

// readPlan decodes the plan in the inherited file f.
func readPlan(f *os.File, v any) error {
	b := make([]byte, 0, 64<<10)
	buf := make([]byte, 32<<10)
	for off := int64(0); ; {
		n, err := f.ReadAt(buf, off)
		b = append(b, buf[:n]...)
		off += int64(n)
		if err != nil {
			break
		}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read plan: %w", err)
	}
	return nil
}
