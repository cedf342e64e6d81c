package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/cap"

	"github.com/gompm/mpm/internal/systemd"
	"github.com/gompm/mpm/pool"
	"github.com/gompm/mpm/prefork"
	"github.com/gompm/mpm/privdrop"
)

// master holds the listeners, starts and supervises the multiplexers and
// the pools, and never reads a byte from a client.
type master struct {
	log  *slog.Logger
	exe  string
	root bool
	// landlock is the kernel's Landlock ABI, or why it has none, for
	// the status page.
	landlock string
	// keepNice says the trimmed master kept CAP_SYS_NICE: an identity
	// of the configuration it started with runs above normal priority.
	keepNice bool
	// exeFile is exe, opened at start: children run this file, so that
	// a generation never runs another build than its master, even after
	// the file at exe was replaced. Only an upgrade (SIGUSR2) runs what
	// is at the path now.
	exeFile *os.File
	// self is this program's path, which an upgrade runs.
	self string
	in   *inherited
	// handedOver is set once a new master has taken over (an upgrade):
	// this one then retires its generation and exits.
	handedOver atomic.Bool

	listeners map[string]*os.File // by configured address; kept across reloads
	// admin is the status page's TCP listening socket, kept for the
	// master's life so that an upgrade passes it on; nil for a unix
	// socket (the new master binds the path again) or none.
	admin *os.File
	// handback is the socket pair on which workers hand connections back
	// to the multiplexers: one for the master's life, so that a worker of
	// a generation that is retiring reaches the current multiplexers.
	handbackSend, handbackRecv *os.File
	limit                      *pool.Limit
	status                     *statusServer
	cgroups                    *cgroups // nil: sites run without cgroups

	mu  sync.Mutex
	cur *generation
	gen int // generations started, for names that must differ between two
	// For the status page and metrics: the generations whose pools
	// still run (the current one, and those retiring after a reload),
	// and the counters of the pools of those that ended, by identity.
	live                    []*generation
	past                    map[string]pool.Stats
	started                 time.Time
	reloads, reloadFailures uint64

	ticketMu sync.Mutex
	tickets  map[string][]byte // session ticket secrets, by identity

	sealKey []byte // the multiplexers' key for PROXY client addresses (muxPlan.SealKey)
}

// A generation is what one configuration runs: its pools and the
// multiplexers that route to them. A reload starts a new generation on
// the same listeners, then retires the old one, which finishes what it
// is serving.
type generation struct {
	m     *master
	n     int // its number: 1 at start, one more for each reload
	cfg   *Config
	pools []*pool.Pool
	uids  []uint32    // each pool's identity's uid
	logs  []*poolLogs // each pool's access logs; nil for a pool with none
	// logsServed says the logs' request sockets are being answered.
	logsServed bool
	files      []*os.File // plans and logs, closed when the generation ends
	// cgroups are the identities whose groups this generation uses,
	// released when it ends.
	cgroups []string

	muxes      prefork.Group
	muxSpec    prefork.Spec
	php        phpGroup // PHP-FPM, by identity
	stopping   chan struct{}
	muxReady   *os.File // read end of the readiness pipe (see waitReady)
	muxCount   int
	stopPools  context.CancelFunc
	poolsDone  sync.WaitGroup
	mu         sync.Mutex
	muxBackoff time.Duration
}

func newMaster(cfg *Config, log *slog.Logger, in *inherited) (*master, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	exe := cfg.exe
	if exe == "" {
		exe = self
	}
	if in == nil {
		in = &inherited{}
	}
	m := &master{log: log, exe: exe, self: self, in: in, root: os.Geteuid() == 0, listeners: map[string]*os.File{}, sealKey: newSealKey(), past: map[string]pool.Stats{}, started: time.Now()}
	// This process's own image when exe is this program: the file at
	// the path may already be another.
	open := exe
	if exe == self {
		open = "/proc/self/exe"
	}
	if m.exeFile, err = os.OpenFile(open, os.O_RDONLY, 0); err != nil {
		return nil, fmt.Errorf("open the program children run: %w", err)
	}
	if m.root {
		// Workers drop privileges on every thread; a cgo build cannot,
		// and would start, then answer nothing as each worker fails.
		if err := privdrop.Supported(); err != nil {
			return nil, err
		}
		if err := othersCanRun(exe); err != nil {
			return nil, err
		}
	}
	if cfg.Server.MaxWorkers > 0 {
		m.limit = &pool.Limit{Max: cfg.Server.MaxWorkers}
	}
	if in.sealKey != nil {
		// The previous master's: the connections its retiring workers
		// hand back keep their PROXY client addresses.
		m.sealKey = in.sealKey
	}
	if in.handback[0] != nil {
		// The previous master's: its retiring workers hand back to
		// this master's multiplexers.
		m.handbackSend, m.handbackRecv = in.handback[0], in.handback[1]
		return m, nil
	}
	if err := m.handbackSocket(); err != nil {
		return nil, err
	}
	return m, nil
}

// handbackSocket makes the hand-back socket pair. It is created
// blocking: every worker and multiplexer shares its open file
// descriptions, and each uses it through fdpass.SharedFileSocket, which
// never changes their O_NONBLOCK. The receiving end reports each
// sender's uid (SO_PASSCRED), so that a multiplexer can bound the
// hand-backs of each identity.
func (m *master) handbackSocket() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("hand-back socket pair: %w", os.NewSyscallError("socketpair", err))
	}
	if err := unix.SetsockoptInt(fds[1], unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return fmt.Errorf("hand-back socket: %w", os.NewSyscallError("setsockopt(SO_PASSCRED)", err))
	}
	for _, fd := range fds {
		// Room for a burst of hand-backs, as for a pool's queue.
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	}
	m.handbackSend = os.NewFile(uintptr(fds[0]), "handback-send")
	m.handbackRecv = os.NewFile(uintptr(fds[1]), "handback-recv")
	return nil
}

// run serves cfg until ctx ends or a stop signal, reloading on SIGHUP.
func (m *master) run(ctx context.Context, cfg *Config) error {
	defer func() {
		for _, f := range m.listeners {
			f.Close()
		}
		if m.admin != nil {
			m.admin.Close()
		}
	}()
	// Asked for before anything is served: SIGUSR1 ends a Go program
	// that does not ask for it.
	stopReopen := make(chan struct{})
	defer close(stopReopen)
	go m.watchReopen(stopReopen)
	// Installed now: SIGUSR2 would otherwise end the process. Handled
	// once this master is ready.
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(usr2)
	addrs := slices.Concat(cfg.Server.Listen, cfg.Server.TLSListen)
	for _, addr := range addrs {
		if err := m.listen(addr); err != nil {
			return err
		}
	}
	m.landlock = landlockStatus()
	if strings.HasPrefix(m.landlock, "unavailable") {
		m.log.Warn("LANDLOCK UNAVAILABLE: each site's PHP can read every file its uid can, other sites' world-readable files included", "landlock", m.landlock)
	} else {
		m.log.Info("isolation", "landlock", m.landlock)
	}
	if m.root {
		// Before the trim: the parent group may need CAP_DAC_OVERRIDE.
		m.cgroups = openCgroups(m.log, cfg.Server.CgroupName)
		// Started by an upgrade: the groups are the old master's too
		// until this one is ready (see ready).
		m.cgroups.share(m.in.ready != nil)
	}
	if err := m.takeAdmin(cfg.Server.Admin); err != nil {
		return err
	}
	if err := m.in.leftover(); err != nil {
		return err
	}
	g, err := m.start(cfg)
	if err != nil {
		return err
	}
	// Current from the start: the status page asks for its stats as soon
	// as it runs, and the capability trim below takes a while.
	m.mu.Lock()
	m.cur = g
	m.live = append(m.live, g)
	m.mu.Unlock()
	if cfg.Server.Admin != "off" {
		if m.status, err = m.startStatus(cfg); err != nil {
			g.stop(prefork.StopImmediate)
			return err
		}
		defer func() {
			if m.status != nil {
				m.status.stop()
			}
		}()
	}
	if m.root {
		// From here the master keeps only what starting and stopping
		// children needs, and CHOWN to give a new identity its PHP
		// directories on a reload (the master is uid 0 and owns the
		// root-owned files anyway: CHOWN adds little). It never binds
		// again.
		caps := masterCaps
		if why := cfg.negativeNice(); why != "" {
			// Kept for the spawns of such an identity; a reload cannot
			// get it back (see reload).
			caps = append(slices.Clone(masterCaps), cap.SYS_NICE)
			m.keepNice = true
			m.log.Info("the master keeps CAP_SYS_NICE", "for", why)
		}
		if err := privdrop.Trim(caps...); err != nil {
			g.stop(prefork.StopImmediate)
			return fmt.Errorf("trim the master's capabilities: %w", err)
		}
	}
	if err := g.waitReady(); err != nil {
		g.stop(prefork.StopImmediate)
		return err
	}
	m.ready()

	// The pid file is written once the signals are handled: a signal
	// sent to the pid it names is never the default action (an exit).
	var removePID func()
	defer func() {
		if removePID != nil {
			removePID()
		}
	}()
	ready := func() {
		var err error
		if removePID, err = writePID(cfg.Server.RunDir, m.root); err != nil {
			m.log.Warn("no pid file", "err", err)
		}
	}
	wait, handOver := context.WithCancel(ctx)
	defer handOver()
	go m.watchUpgrades(wait, usr2, addrs, handOver)
	kind := prefork.WaitSignals(wait, func() { m.reload(cfg.file) }, ready)
	m.mu.Lock()
	g = m.cur
	m.mu.Unlock()
	if m.handedOver.Load() {
		// The new master serves on the same sockets; this one's
		// generation finishes what it holds, as after a reload.
		m.log.Info("stopping: a new master took over; finishing what this one serves")
		if m.status != nil {
			// The new master's status page answers from now on; on a
			// TCP address both would accept on the one socket.
			m.status.stop()
			m.status = nil
		}
		g.retire()
		return nil
	}
	m.log.Info("stopping", "how", kind.String())
	m.notify("STOPPING=1")
	g.stop(kind)
	return nil
}

// ready tells whoever waits for this master that it serves: systemd
// (READY=1, and MAINPID= when this master replaces another), and the
// master it replaces.
func (m *master) ready() {
	status := m.statusLine()
	m.log.Info("ready", "status", status)
	state := "READY=1\nSTATUS=" + status
	if m.in.ready != nil {
		// Sent before the old master hears of it, so that systemd
		// never sees the old main pid exit as the service's end.
		// Needs NotifyAccess=all: the old master is still the main pid.
		state = "MAINPID=" + strconv.Itoa(os.Getpid()) + "\n" + state
	}
	m.notify(state)
	if m.in.ready != nil {
		m.cgroups.share(false) // the old master drains and leaves them to us
		m.in.ready.Write([]byte{1})
		m.in.ready.Close()
		m.in.ready = nil
	}
}

// notify sends state to systemd, if it started this master.
func (m *master) notify(state string) {
	if _, err := systemd.Notify(state); err != nil {
		m.log.Warn("notify systemd", "err", err)
	}
}

// statusLine is the one-line status systemctl status shows.
func (m *master) statusLine() string {
	workers := 0
	snap := m.snapshot()
	for _, p := range snap.Pools {
		workers += p.Workers
	}
	return fmt.Sprintf("generation %d: %d identities, %d workers", snap.Generation, len(snap.Pools), workers)
}

// watchUpgrades starts a new master on SIGUSR2, one at a time, and
// calls handOver once one is ready.
func (m *master) watchUpgrades(ctx context.Context, usr2 <-chan os.Signal, addrs []string, handOver func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-usr2:
		}
		m.notify("STATUS=upgrading: starting a new master from " + m.self)
		pid, err := m.upgrade(m.self, addrs)
		if err != nil {
			m.log.Error("upgrade failed; this master keeps serving", "err", err)
			m.notify("STATUS=" + m.statusLine() + " (upgrade failed)")
			continue
		}
		m.log.Info("upgrade: the new master is ready; this one stops accepting and drains", "pid", pid)
		// Also from here, the main pid, for a unit with
		// NotifyAccess=main (which took no message from the new one).
		m.notify("MAINPID=" + strconv.Itoa(pid))
		m.handedOver.Store(true)
		m.cgroups.share(true) // the new master's now
		handOver()
		return
	}
}

func (m *master) listen(addr string) error {
	f, err := m.in.takeSocket(addr)
	if err != nil {
		return err
	}
	if f != nil {
		m.listeners[addr] = f
		m.log.Info("listening", "addr", addr, "socket from", m.in.from)
		return nil
	}
	ln, err := deferAccept.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close() // f holds the socket
	f, err = inheritable(ln.(*net.TCPListener))
	if err != nil {
		return fmt.Errorf("listener %s: %w", addr, err)
	}
	m.listeners[addr] = f
	m.log.Info("listening", "addr", ln.Addr().String())
	return nil
}

// masterCaps are the capabilities the master keeps once it has bound its
// listeners: what starting and stopping children needs, and CHOWN for
// the PHP directories of an identity a reload adds.
var masterCaps = []cap.Value{cap.SETUID, cap.SETGID, cap.SETPCAP, cap.KILL, cap.SYS_CHROOT, cap.CHOWN}

// deferAccept makes listening sockets with TCP_DEFER_ACCEPT: the kernel
// hands a connection to accept only once its first bytes (a request
// line, a ClientHello) have arrived, so a multiplexer usually finds the
// whole head at its first read, and connections that never send are not
// its to time out. (HTTP and TLS clients speak first.)
var deferAccept = net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, deferAcceptSeconds)
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("TCP_DEFER_ACCEPT: %w", serr)
	}
	return nil
}}

// deferAcceptSeconds is how long the kernel holds a silent connection
// before it hands it to accept anyway (rounded up to a SYN-ACK
// retransmission); the multiplexer's header_timeout applies from there.
const deferAcceptSeconds = 5

// reload starts a generation from the configuration file and retires the
// current one. A file with errors changes nothing.
func (m *master) reload(path string) {
	failed := func() {
		m.mu.Lock()
		m.reloadFailures++
		m.mu.Unlock()
	}
	if _, err := systemd.Reloading(); err != nil {
		m.log.Warn("notify systemd", "err", err)
	}
	// Whatever the outcome: a reload that changed nothing is over too.
	defer func() { m.notify("READY=1\nSTATUS=" + m.statusLine()) }()
	cfg, err := LoadConfig(path)
	if err != nil {
		m.log.Error("reload refused; still running the previous configuration", "err", err)
		failed()
		return
	}
	if why := cfg.negativeNice(); why != "" && m.root && !m.keepNice {
		m.log.Error("reload refused: a negative nice needs CAP_SYS_NICE, which this master gave up at start (no identity had one then); restart mpmd", "identity", why)
		failed()
		return
	}
	for _, addr := range slices.Concat(cfg.Server.Listen, cfg.Server.TLSListen) {
		if _, ok := m.listeners[addr]; !ok {
			m.log.Error("reload refused: a new listen address needs a restart (the master no longer binds)", "addr", addr)
			failed()
			return
		}
	}
	g, err := m.start(cfg)
	if err == nil {
		if err = g.waitReady(); err != nil {
			g.stop(prefork.StopImmediate)
		}
	}
	if err != nil {
		m.log.Error("reload failed; still running the previous configuration", "err", err)
		failed()
		return
	}
	m.mu.Lock()
	old := m.cur
	m.cur = g
	m.live = append(m.live, g)
	m.reloads++
	m.mu.Unlock()
	m.log.Info("reloaded", "file", path, "vhosts", len(cfg.VHosts))
	// The old multiplexers stop accepting and finish routing what they
	// read; the old workers finish what they serve.
	go old.retire()
}

// start builds and starts a generation for cfg: one pool per identity
// that has a vhost, and the multiplexers.
func (m *master) start(cfg *Config) (g *generation, err error) {
	if err := m.preflight(cfg); err != nil {
		return nil, err
	}
	m.gen++
	gen := &generation{m: m, n: m.gen, cfg: cfg, stopping: make(chan struct{})}
	gen.php.m, gen.php.stopped = m, make(chan struct{})
	g = gen
	defer func() {
		if err != nil {
			gen.closeFiles() // g itself is nil on the error returns
			gen.releaseCgroups()
		}
	}()

	listeners := slices.Concat(cfg.Server.Listen, cfg.Server.TLSListen)
	for pi, name := range cfg.routing.Pools {
		id := cfg.Identities[name]
		pc, err := cfg.poolFor(name, id)
		if err != nil {
			return nil, err
		}
		eff, err := pc.WithDefaults()
		if err != nil {
			return nil, err
		}
		plan := workerPlan{
			Identity:        name,
			Routing:         cfg.routing,
			Listeners:       listeners,
			HeaderTimeout:   time.Duration(cfg.Server.HeaderTimeout),
			KeepAlive:       time.Duration(cfg.Server.IdleTimeout),
			MaxHeaderBytes:  cfg.Server.MaxHeaderBytes,
			MaxBodyBytes:    cfg.Server.maxBody,
			BodyTimeout:     time.Duration(cfg.Server.BodyTimeout),
			BodyMinRate:     cfg.Server.BodyMinRate,
			SendTimeout:     time.Duration(cfg.Server.SendTimeout),
			UnknownHost:     cfg.Server.UnknownHost,
			HandbackTimeout: eff.QueueTimeout,
			MaxActive:       eff.MaxActive,
		}
		pp, err := cfg.phpPoolFor(id)
		if err != nil {
			return nil, err
		}
		plan.ConnPHP = max(min(pp.Max, eff.MaxActive)/2, 1)
		var logs *poolLogs
		g.logs = append(g.logs, nil) // g.logs[pi], set with the first log
		for vi, v := range cfg.VHosts {
			if cfg.routing.VHosts[vi].Pool != pi {
				continue
			}
			wv := workerVHost{VHost: v, N: vi}
			if v.AccessLog != "" {
				f, err := openLog(v.AccessLog)
				if err != nil {
					return nil, fmt.Errorf("vhost %s: access log: %w", v.ServerName, err)
				}
				g.files = append(g.files, f)
				wv.LogFile = "log-" + strconv.Itoa(vi)
				pc.Files = append(pc.Files, prefork.File{Name: wv.LogFile, File: f})
				if logs == nil {
					if logs, err = newPoolLogs(); err != nil {
						return nil, err
					}
					g.logs[pi] = logs
					pc.Files = append(pc.Files, logs.logFiles()...)
				}
				logs.add(wv.LogFile, v.AccessLog, f)
			}
			plan.VHosts = append(plan.VHosts, wv)
			if v.TLSCertificate != "" && plan.TicketSecret == nil {
				if plan.TicketSecret, err = m.ticketSecret(cfg, name); err != nil {
					return nil, err
				}
			}
		}
		if plan.PHPDefaults, err = m.phpDirs(cfg, name, id); err != nil {
			return nil, err
		}
		plan.Confine = confineFor(cfg, name, plan.VHosts)
		if id.resolved.Chroot == "" {
			plan.PHPDir = filepath.Join(cfg.Server.RunDir, "php", name)
		}
		specs, files, err := m.phpSpecs(cfg, name, plan.VHosts, plan.PHPDefaults, m.gen, eff.StopTimeout)
		g.files = append(g.files, files...)
		if err != nil {
			return nil, err
		}
		pf, err := planFile("worker-"+name, plan)
		if err != nil {
			return nil, err
		}
		g.files = append(g.files, pf)
		pc.Files = append(pc.Files, prefork.File{Name: "plan", File: pf})
		pc.Counters = len(plan.VHosts) // each vhost's requests in progress (max_clients)
		pc.Files = append(pc.Files, prefork.File{Name: "handback", File: m.handbackSend})
		// Every process of the identity is born in its group: the
		// workers, its php processes, and what they start.
		cg, err := m.cgroups.acquire(name, id.limits)
		if err != nil {
			return nil, err
		}
		if cg != nil {
			g.cgroups = append(g.cgroups, name)
			g.files = append(g.files, cg)
			pc.Cgroup = cg
			for i := range specs {
				specs[i].Cgroup = cg
			}
		}
		pc.Path = m.exe
		pc.Exe = m.exeFile
		pc.Env = childEnv()
		pc.Limit = m.limit
		pc.Logger = m.log
		if m.root {
			r := id.resolved
			pc.Identity = &r
		}
		g.php.specs = append(g.php.specs, specs...)
		p, err := pool.New(pc)
		if err != nil {
			return nil, err
		}
		g.pools = append(g.pools, p)
		g.uids = append(g.uids, id.resolved.UID)
	}

	mp := muxPlan{Routing: cfg.routing, Listeners: listeners, HeaderTimeout: time.Duration(cfg.Server.HeaderTimeout), MaxHeaderBytes: cfg.Server.MaxHeaderBytes, UnknownHost: cfg.Server.UnknownHost,
		Proxy: cfg.trustedProxies(listeners), SealKey: m.sealKey}
	var files []prefork.File
	for i, addr := range listeners {
		mp.TLS = append(mp.TLS, slices.Contains(cfg.Server.TLSListen, addr))
		files = append(files, prefork.File{Name: "listen-" + strconv.Itoa(i), File: m.listeners[addr]})
	}
	for i, p := range g.pools {
		mp.QueueTimeout = append(mp.QueueTimeout, p.QueueTimeout())
		files = append(files, prefork.File{Name: "pool-" + strconv.Itoa(i), File: p.Dispatch()})
	}
	files = append(files, prefork.File{Name: "handback", File: m.handbackRecv})
	mp.UIDs = map[uint32]string{}
	for _, name := range cfg.routing.Pools {
		mp.UIDs[cfg.Identities[name].resolved.UID] = name
	}
	planF, err := planFile("mux", mp)
	if err != nil {
		return nil, err
	}
	g.files = append(g.files, planF)
	files = append(files, prefork.File{Name: "plan", File: planF})
	g.muxSpec = prefork.Spec{Role: roleMux, Path: m.exe, Exe: m.exeFile, Files: files, Env: childEnv()}
	if m.root {
		id, err := muxIdentity(cfg)
		if err != nil {
			return nil, err
		}
		g.muxSpec.Identity = &id
	}

	if err := g.php.start(); err != nil {
		g.php.stop()
		return nil, err
	}
	poolCtx, stopPools := context.WithCancel(context.Background())
	g.stopPools = stopPools
	for _, p := range g.pools {
		g.poolsDone.Add(1)
		go func() { defer g.poolsDone.Done(); p.Run(poolCtx) }()
	}
	for _, l := range g.logs {
		if l != nil {
			go l.serve(m.log)
		}
	}
	g.logsServed = true
	g.muxes.Logger = m.log
	g.muxes.OnExit = g.muxExited
	// The first multiplexers say on a pipe when they accept; one
	// restarted later does not (nobody reads then).
	readyR, readyW, err := os.Pipe()
	if err != nil {
		g.stop(prefork.StopImmediate)
		return nil, fmt.Errorf("multiplexer readiness pipe: %w", err)
	}
	defer readyW.Close()
	g.muxReady, g.muxCount = readyR, cfg.Server.Multiplexers
	first := g.muxSpec
	first.Files = append(slices.Clone(first.Files), prefork.File{Name: "ready", File: readyW})
	for range cfg.Server.Multiplexers {
		if _, err := g.muxes.Start(first); err != nil {
			g.stop(prefork.StopImmediate)
			return nil, err
		}
	}
	return g, nil
}

// waitReady waits until every multiplexer the generation started with
// accepts on every listener (each writes a byte on the readiness pipe,
// then closes it), or one of them has ended first.
func (g *generation) waitReady() error {
	r := g.muxReady
	defer r.Close()
	r.SetReadDeadline(time.Now().Add(30 * time.Second))
	n := 0
	buf := make([]byte, 64)
	for {
		k, err := r.Read(buf)
		n += k
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("multiplexers: %d of %d ready: %w", n, g.muxCount, err)
		}
	}
	if n < g.muxCount {
		return fmt.Errorf("multiplexers: only %d of %d became ready; see their log lines", n, g.muxCount)
	}
	return nil
}

// stop ends the generation: the multiplexers first (they stop accepting
// and finish routing), then the pools (their workers finish what they
// serve); with StopImmediate, everything at once.
func (g *generation) stop(kind prefork.StopKind) {
	close(g.stopping)
	if kind == prefork.StopImmediate {
		g.muxes.Kill()
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		g.muxes.Stop(ctx)
		cancel()
	}
	g.stopPools()
	g.poolsDone.Wait()
	g.php.stop()
	g.close()
}

// retire ends a generation that another has replaced (a reload): its
// multiplexers stop accepting and route what they have read; its workers
// retire, finishing what they hold, kept-alive connections included
// (these hand their next request back to the new generation when it is
// another identity's), until their pool's stop timeout.
func (g *generation) retire() {
	close(g.stopping)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	g.muxes.Stop(ctx)
	cancel()
	var wg sync.WaitGroup
	for _, p := range g.pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Retire()
			p.WaitRetired(p.StopTimeout())
		}()
	}
	wg.Wait()
	g.stopPools()
	g.poolsDone.Wait()
	// FPM last: the retiring workers' requests run in it.
	g.php.retire(20 * time.Second)
	g.close()
}

// close releases what the generation's pools and files hold, and its
// identities' groups: a group no generation uses any more is removed
// once it is empty.
func (g *generation) close() {
	g.m.ended(g)
	for _, p := range g.pools {
		p.Close()
	}
	g.closeFiles()
	g.releaseCgroups()
}

func (g *generation) releaseCgroups() {
	var wg sync.WaitGroup
	for _, name := range g.cgroups {
		wg.Add(1)
		go func() { defer wg.Done(); g.m.cgroups.release(name) }()
	}
	wg.Wait()
	g.cgroups = nil
}

func (g *generation) closeFiles() {
	for _, l := range g.logs {
		switch {
		case l == nil:
		case g.logsServed:
			l.close() // every worker has ended
		default:
			l.ctl.Close()
			l.peer.Close()
		}
	}
	g.logs = nil
	for _, f := range g.files {
		f.Close()
	}
	g.files = nil
}

// muxExited restarts a multiplexer that died while the generation runs.
func (g *generation) muxExited(c *prefork.Child, e prefork.Exit) {
	select {
	case <-g.stopping:
		return
	default:
	}
	// A multiplexer that dies soon after it started is likely to die
	// again: wait longer each time, up to a minute, instead of looping.
	g.mu.Lock()
	if time.Since(c.Started) < 10*time.Second {
		g.muxBackoff = min(max(2*g.muxBackoff, 100*time.Millisecond), time.Minute)
	} else {
		g.muxBackoff = 100 * time.Millisecond
	}
	wait := g.muxBackoff
	g.mu.Unlock()
	g.m.log.Error("multiplexer ended; starting another", "pid", c.Pid, "exit", e.String(), "in", wait)
	go func() {
		select {
		case <-time.After(wait):
		case <-g.stopping:
			return
		}
		if _, err := g.muxes.Start(g.muxSpec); err != nil {
			g.m.log.Error("restart multiplexer", "err", err)
		}
	}()
}

// muxIdentity is the multiplexers' identity: unprivileged, chrooted into
// an empty directory that only root can write.
func muxIdentity(cfg *Config) (privdrop.Identity, error) {
	s := cfg.Server
	if s.MultiplexerUser == "" {
		return privdrop.Identity{}, errors.New("server.multiplexer_user is not set: the multiplexers need a dedicated unprivileged user (a numeric uid without an account is fine)")
	}
	id, err := privdrop.Resolve(s.MultiplexerUser, s.MultiplexerGroup, cfg.policy())
	if err != nil {
		return id, fmt.Errorf("multiplexer user: %w", err)
	}
	for _, v := range cfg.Identities {
		if v.resolved.UID == id.UID {
			return id, fmt.Errorf("multiplexer user %d is also identity %q's: the multiplexers must not share a uid with a site", id.UID, v.resolved.Name)
		}
	}
	jail := filepath.Join(s.RunDir, "empty")
	if err := os.MkdirAll(jail, 0o755); err != nil {
		return id, fmt.Errorf("multiplexer jail: %w", err)
	}
	if es, _ := os.ReadDir(jail); len(es) > 0 {
		return id, fmt.Errorf("multiplexer jail %s is not empty", jail)
	}
	if err := privdrop.CheckJail(jail); err != nil {
		return id, fmt.Errorf("multiplexer jail: %w", err)
	}
	id.Name = "multiplexer"
	id.Chroot = jail
	return id, nil
}

// childEnv is the whole environment of a child: nothing of the master's.
//
// GOMAXPROCS=1: a worker serves one connection at a time and a
// multiplexer's work is short system calls, so one P each is enough; more
// only add threads that spin and wake each other (measured: with a second
// P in the multiplexers, new connections through mpmd went 5,105 -> 4,480
// req/s). Set in the environment rather than by the role, so that the
// runtime starts with one P and no thread for a second: the privilege
// drop then visits fewer threads.
func childEnv() []string {
	return []string{"PATH=/usr/local/bin:/usr/bin:/bin", "GOMAXPROCS=1"}
}

// ended keeps the counters of g's pools, whose workers have all ended,
// and forgets g.
func (m *master) ended(g *generation) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.Index(m.live, g)
	if i < 0 {
		return // never started serving
	}
	m.live = slices.Delete(m.live, i, i+1)
	for _, p := range g.pools {
		now := p.Stats()
		st := m.past[now.Name]
		st.Name = now.Name
		st.AddCounters(now)
		m.past[now.Name] = st
	}
}

// statsJSON encodes the snapshot for the status process, leaving out the
// per-worker slots if the whole would be larger than an answer may be.
func (m *master) statsJSON() []byte {
	st := m.snapshot()
	b, _ := json.Marshal(st)
	if len(b) > maxStatsTotal {
		for i := range st.Pools {
			st.Pools[i].Slots = nil
		}
		b, _ = json.Marshal(st)
	}
	return b
}

// inheritable returns a descriptor of ln's socket for children that the
// master's own os.File never switches between blocking and non-blocking
// mode. The mode belongs to the socket, shared by every process holding
// it: os/exec's call to File.Fd would make a pollable file blocking on
// every spawn, under the multiplexers already accepting on it. A file
// made from a descriptor that is blocking at the time is not pollable,
// so Fd leaves it alone; each multiplexer's net.FileListener makes the
// socket non-blocking once, for good.
func inheritable(ln *net.TCPListener) (*os.File, error) {
	f, err := ln.File()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return blockingCopy(f)
}

// othersCanRun checks that users other than root can execute path: the
// workers and multiplexers are path started again as other users.
func othersCanRun(path string) error {
	for p := path; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s cannot be run by the site users: %s is mode %#o (no execute/search for others); install mpmd where they can run it, such as /usr/local/bin", path, p, fi.Mode().Perm())
		}
		if p == "/" {
			return nil
		}
	}
}

// phpDirs makes the identity's own PHP session and temporary directories,
// <run_dir>/php/<identity>/{sessions,tmp}, mode 0700 and owned by the
// identity, and returns the php.ini settings that point PHP at them. In
// the shared default (/var/lib/php/sessions) one site could plant a
// session file that another site's PHP then loads.
//
// The identity owns <identity> and could put a symbolic link where
// "sessions" was, so the directories are opened without following links
// and changed through their descriptors: the master never chowns what a
// site points it at.
func (m *master) phpDirs(cfg *Config, name string, id Identity) (map[string]string, error) {
	fail := func(err error) (map[string]string, error) {
		return nil, fmt.Errorf("identity %s: PHP session and temporary directories: %w", name, err)
	}
	base := filepath.Join(cfg.Server.RunDir, "php")
	if err := os.MkdirAll(base, 0o711); err != nil {
		return fail(err)
	}
	uid, gid := os.Getuid(), os.Getgid()
	if m.root {
		uid, gid = int(id.resolved.UID), int(id.resolved.GID)
	}
	basefd, err := unix.Open(base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(&os.PathError{Op: "open", Path: base, Err: err})
	}
	defer unix.Close(basefd)
	if err := ownDirs(basefd, name, uid, gid); err != nil {
		return fail(err)
	}
	if id.resolved.Chroot != "" {
		// Inside a jail PHP sees other paths; the site sets its own
		// through php_admin_value.
		return nil, nil
	}
	dir := filepath.Join(base, name)
	return map[string]string{
		"session.save_path": filepath.Join(dir, "sessions"),
		"upload_tmp_dir":    filepath.Join(dir, "tmp"),
		"sys_temp_dir":      filepath.Join(dir, "tmp"),
		// OPcache's lock file goes to /tmp otherwise, where another
		// identity could hold it (and Landlock refuses it: php-cgi
		// would not start).
		"opcache.lockfile_path": filepath.Join(dir, "tmp"),
	}, nil
}

// ownDirs makes name (in the root-owned directory parent, a descriptor)
// and its sessions and tmp subdirectories, mode 0700 and owned by
// uid:gid. A name that exists already must be such a directory: the
// identity owns it from then on, and what it does inside only concerns
// itself. Everything is made while still root's and given away last, so
// the master, which keeps no DAC capability, never has to enter a
// directory it does not own, and never follows a link.
func ownDirs(parent int, name string, uid, gid int) error {
	var st unix.Stat_t
	err := unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil:
		if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != uid || int(st.Gid) != gid || st.Mode&0o7777 != 0o700 {
			return fmt.Errorf("%s exists but is not a 0700 directory owned by %d:%d (mode %#o, owner %d:%d); remove it", name, uid, gid, st.Mode&0o7777, st.Uid, st.Gid)
		}
		return nil
	case err != unix.ENOENT:
		return &os.PathError{Op: "stat", Path: name, Err: err}
	}
	if err := unix.Mkdirat(parent, name, 0o700); err != nil {
		return &os.PathError{Op: "mkdir", Path: name, Err: err}
	}
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(fd)
	mine := uid == os.Geteuid() && gid == os.Getegid()
	for _, sub := range []string{"sessions", "tmp"} {
		if err := unix.Mkdirat(fd, sub, 0o700); err != nil {
			return &os.PathError{Op: "mkdir", Path: name + "/" + sub, Err: err}
		}
		if !mine {
			if err := unix.Fchownat(fd, sub, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return &os.PathError{Op: "chown", Path: name + "/" + sub, Err: err}
			}
		}
	}
	if err := unix.Fchmod(fd, 0o700); err != nil {
		return &os.PathError{Op: "chmod", Path: name, Err: err}
	}
	if !mine {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return &os.PathError{Op: "chown", Path: name, Err: err}
		}
	}
	return nil
}
