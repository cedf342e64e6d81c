package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/prefork"
	"github.com/gompm/mpm/privdrop"
)

// Defaults for a zero Config: on demand, so that an idle site holds no
// process, and bounded, so that one busy site cannot take the machine.
const (
	DefaultMax           = 8
	DefaultMaxSpare      = 2
	DefaultMaxRequests   = 1000
	DefaultIdleTimeout   = 30 * time.Second
	DefaultExpireTimeout = 5 * time.Minute
	DefaultQueueTimeout  = 10 * time.Second
	DefaultStopTimeout   = 10 * time.Second
)

// DefaultMaxConcurrent is the default Max of a pool whose workers serve
// many connections at once: one worker per CPU (up to four) uses the
// machine; a worker runs one P (GOMAXPROCS=1), so more would only compete.
var DefaultMaxConcurrent = min(max(runtime.NumCPU(), 1), 4)

// Config is one pool's settings. The zero value (with Name and Role set)
// is an on-demand pool with the defaults above.
type Config struct {
	// Name identifies the pool in logs, stats and errors.
	Name string
	// Role is the prefork role the workers run; it calls [Join].
	Role string
	// Identity the workers run as; nil keeps the master's (tests, or a
	// master that is not root).
	Identity *privdrop.Identity
	// Path of the worker executable; empty means this program.
	Path string
	// Exe, when set, is the worker executable opened for reading: the
	// workers run this file whatever Path names later (see
	// prefork.Spec.Exe).
	Exe *os.File
	// Env for the workers (see prefork.Spec.Env).
	Env []string
	// Files handed to every worker besides the pool's own.
	Files []prefork.File
	// Cgroup, when set, is an open cgroup v2 directory every worker is
	// born in (see prefork.Spec.Cgroup): the identity's group, which the
	// workers' own children (PHP) inherit. The pool does not close it.
	Cgroup *os.File

	// PerWorker is how many connections a worker serves at once. 0 or 1
	// is the prefork model: one connection at a time, for code that is
	// not safe to run concurrently. More makes a worker serve that many
	// at once (a goroutine each, see [Worker.Serve]); the pool then runs
	// a few workers, by load, instead of one per connection.
	PerWorker int
	// MaxActive bounds the requests in progress at once over all the
	// pool's workers; a request over it waits for one to end, up to
	// QueueTimeout, then gets 503 (see [Worker.Serve]). 0 means no bound
	// beyond the workers'.
	MaxActive int
	// Counters is how many pool-wide counters the workers share besides
	// MaxActive's, for limits of the application's own (see
	// [Worker.Acquire]).
	Counters int

	// Min workers kept running. 0 means on demand: no process until the
	// first connection, and none again once the pool has been idle for
	// IdleTimeout.
	Min int
	// MinSpare idle workers are kept ready above the busy ones (up to
	// Max); MaxSpare idle workers at most (the longest idle above that
	// are retired at once). 0 means DefaultMaxSpare.
	MinSpare, MaxSpare int
	// Max workers at once. 0 means DefaultMax, or, with PerWorker above
	// 1, DefaultMaxConcurrent.
	Max int
	// MaxRequests a worker serves before it exits and is replaced, to
	// bound leaks. 0 means DefaultMaxRequests; negative means no limit.
	MaxRequests int
	// IdleTimeout after which an idle worker above Min is retired.
	IdleTimeout time.Duration
	// ExpireTimeout after which a worker busy on one connection is
	// killed (one connection at a time), or a request ended (with
	// PerWorker, by [Worker.Serve]). Negative disables it.
	ExpireTimeout time.Duration
	// QueueTimeout is how long a sender may wait for a worker before it
	// answers 503 (see [Pool.QueueTimeout]).
	QueueTimeout time.Duration
	// StopTimeout is how long in-flight work may take when the pool
	// stops, before its workers are killed.
	StopTimeout time.Duration

	// Limit, when set, is a cap on workers shared with other pools.
	Limit *Limit
	// Logger for the pool's events and its workers' output. Nil discards.
	Logger *slog.Logger
}

// Check reports what New would refuse in c, without creating anything.
func (c *Config) Check() error {
	_, err := c.withDefaults()
	return err
}

// WithDefaults returns c as New would run it: every field left zero set
// to its default. It returns the error New would.
func (c *Config) WithDefaults() (Config, error) {
	return c.withDefaults()
}

func (c *Config) withDefaults() (Config, error) {
	d := *c
	if d.Name == "" || d.Role == "" {
		return d, fmt.Errorf("pool: config needs a Name and a Role (got name %q, role %q)", d.Name, d.Role)
	}
	def := func(v *int, x int) {
		if *v == 0 {
			*v = x
		}
	}
	defd := func(v *time.Duration, x time.Duration) {
		if *v == 0 {
			*v = x
		}
	}
	if d.PerWorker > 1 {
		def(&d.Max, DefaultMaxConcurrent)
	}
	def(&d.Max, DefaultMax)
	def(&d.MaxSpare, DefaultMaxSpare)
	def(&d.MaxRequests, DefaultMaxRequests)
	defd(&d.IdleTimeout, DefaultIdleTimeout)
	defd(&d.ExpireTimeout, DefaultExpireTimeout)
	defd(&d.QueueTimeout, DefaultQueueTimeout)
	defd(&d.StopTimeout, DefaultStopTimeout)
	switch {
	case d.Min < 0 || d.MinSpare < 0 || d.MaxSpare < 0 || d.Max < 0 || d.PerWorker < 0 || d.MaxActive < 0 || d.Counters < 0:
		return d, fmt.Errorf("pool %s: negative size (min %d, min spare %d, max spare %d, max %d, per worker %d, max active %d, counters %d)", d.Name, d.Min, d.MinSpare, d.MaxSpare, d.Max, d.PerWorker, d.MaxActive, d.Counters)
	case d.Min > d.Max:
		return d, fmt.Errorf("pool %s: min %d is above max %d", d.Name, d.Min, d.Max)
	case d.MinSpare > d.MaxSpare:
		return d, fmt.Errorf("pool %s: min spare %d is above max spare %d", d.Name, d.MinSpare, d.MaxSpare)
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return d, nil
}

// Stats is a pool's state at one moment, for status pages and metrics.
type Stats struct {
	Name                          string
	Workers                       int // processes alive
	Starting, Idle, Busy, Exiting int
	// Pending says a connection waits in the dispatch queue. The kernel
	// does not count queued messages; senders know their own backlog.
	Pending                  bool
	Spawned, Retired, Killed uint64
	Crashed, Recycled        uint64
	Served                   uint64 // requests, by live and past workers
	Refused                  uint64 // connections and requests the workers answered 503
	Conns                    int    // connections the workers hold
	Active                   int    // requests in progress
	// QueueWaits counts the requests that waited for a place under
	// MaxActive (served or refused in the end), QueueWait the time they
	// waited in all, by live and past workers.
	QueueWaits   uint64
	QueueWait    time.Duration
	BackoffUntil time.Time
	Slots        []SlotInfo // one per live worker
}

// AddCounters adds to s the counters of o, those that only grow (spawns,
// retirements, kills, crashes, recycles, requests served and refused,
// queue waits): what a daemon keeps of a pool that has ended, so that its
// totals only grow across reloads.
func (s *Stats) AddCounters(o Stats) {
	s.Spawned += o.Spawned
	s.Retired += o.Retired
	s.Killed += o.Killed
	s.Crashed += o.Crashed
	s.Recycled += o.Recycled
	s.Served += o.Served
	s.Refused += o.Refused
	s.QueueWaits += o.QueueWaits
	s.QueueWait += o.QueueWait
}

// Add adds all of o to s, as for two pools of one identity (one retiring
// after a reload, one new): the counters, the workers by state, the
// connections and requests in progress, and the slots; Pending if either
// has it, the later BackoffUntil. Name is kept.
func (s *Stats) Add(o Stats) {
	s.AddCounters(o)
	s.Workers += o.Workers
	s.Starting += o.Starting
	s.Idle += o.Idle
	s.Busy += o.Busy
	s.Exiting += o.Exiting
	s.Pending = s.Pending || o.Pending
	s.Conns += o.Conns
	s.Active += o.Active
	if o.BackoffUntil.After(s.BackoffUntil) {
		s.BackoffUntil = o.BackoffUntil
	}
	s.Slots = append(s.Slots, o.Slots...)
}

// Pool is one identity's workers.
type Pool struct {
	cfg   Config
	board *scoreboard
	// send is the end that senders (multiplexers) write to; recv the one
	// the workers read from. The pool keeps recv open so queued messages
	// survive the last worker, and polls it to start workers on demand.
	send, recv *os.File
	group      prefork.Group
	wake       chan struct{}

	mu       sync.Mutex
	children map[int]*prefork.Child // by slot
	stopping map[int]bool           // slots the pool asked to stop
	cpu      map[int]cpuSample      // by slot; adjust's alone
	retiring atomic.Bool
	stats    Stats
	crashes  []time.Time
	backoff  time.Duration
	served   uint64 // by workers that have ended
	refused  uint64 // by workers that have ended
	waits    uint64 // by workers that have ended
	waited   time.Duration
}

// New creates a pool: its dispatch socket pair and scoreboard. Start its
// workers with Run.
func New(cfg Config) (*Pool, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	// Created blocking on purpose: the workers share the receiving
	// end's open file description, and os.File only leaves the
	// description's O_NONBLOCK flag alone (when handing it to a child)
	// if it never put it in the poller. Each worker's net.FileConn makes
	// it non-blocking for the runtime poller; the pool itself only polls.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("pool %s: dispatch socket pair: %w", c.Name, os.NewSyscallError("socketpair", err))
	}
	slots := c.Max
	if c.PerWorker > 1 {
		slots = 2 * c.Max // Max serving, and up to Max draining (see adjust)
	}
	board, err := newScoreboard(c.Name, slots, 1+c.Counters)
	if err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, err
	}
	p := &Pool{
		cfg:      c,
		board:    board,
		send:     os.NewFile(uintptr(fds[0]), "dispatch-send-"+c.Name),
		recv:     os.NewFile(uintptr(fds[1]), "dispatch-recv-"+c.Name),
		wake:     make(chan struct{}, 1),
		children: map[int]*prefork.Child{},
		stopping: map[int]bool{},
		cpu:      map[int]cpuSample{},
	}
	p.group.Logger = c.Logger.With("pool", c.Name)
	p.group.OnExit = p.onExit
	p.stats.Name = c.Name
	return p, nil
}

// Dispatch returns the sending end of the pool's dispatch socket, to be
// handed to the processes that pass connections to this pool.
func (p *Pool) Dispatch() *os.File { return p.send }

// QueueTimeout is how long a sender should wait for this pool's workers.
func (p *Pool) QueueTimeout() time.Duration { return p.cfg.QueueTimeout }

// Stats returns the pool's current state.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	s := p.stats
	s.Served = p.served
	s.Refused = p.refused
	s.QueueWaits, s.QueueWait = p.waits, p.waited
	p.mu.Unlock()
	s.Workers, s.Starting, s.Idle, s.Busy, s.Exiting = 0, 0, 0, 0, 0
	s.Slots = nil
	for _, in := range p.live() {
		s.Workers++
		switch in.State {
		case Starting, Empty:
			s.Starting++
		case Idle:
			s.Idle++
		case Busy:
			s.Busy++
		case Exiting:
			s.Exiting++
		}
		s.Served += in.Requests
		s.Refused += in.Refused
		s.QueueWaits += in.QueueWaits
		s.QueueWait += in.QueueWait
		s.Conns += in.Conns
		s.Active += in.Active
		s.Slots = append(s.Slots, in)
	}
	s.Pending = p.pending()
	return s
}

// live returns the slots of the workers alive now.
func (p *Pool) live() []SlotInfo {
	p.mu.Lock()
	slots := make([]int, 0, len(p.children))
	for i := range p.children {
		slots = append(slots, i)
	}
	p.mu.Unlock()
	slices.Sort(slots)
	out := make([]SlotInfo, 0, len(slots))
	for _, i := range slots {
		out = append(out, p.board.read(i))
	}
	return out
}

// recvFD is the receiving end's descriptor. The file was made from a
// blocking descriptor, so it is not in the runtime's poller and Fd leaves
// its mode alone.
func (p *Pool) recvFD() int { return int(p.recv.Fd()) }

// pending reports whether a message waits in the dispatch queue, which
// with no idle worker means a connection needs one.
func (p *Pool) pending() bool {
	fds := []unix.PollFd{{Fd: int32(p.recvFD()), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&unix.POLLIN != 0
}

// Run starts the pool's workers and keeps the pool sized until ctx ends;
// then it stops the workers (gracefully until StopTimeout, then with
// SIGKILL) and returns.
func (p *Pool) Run(ctx context.Context) error {
	// A message on the dispatch queue wakes the loop at once, so that a
	// pool without an idle worker starts one for it.
	if err := watch.add(p); err != nil {
		return err
	}
	defer watch.remove(p)
	p.cfg.Limit.register(p)
	defer p.cfg.Limit.unregister(p)
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	for {
		if p.retiring.Load() {
			p.mu.Lock()
			n := len(p.children)
			p.mu.Unlock()
			if n == 0 {
				return nil
			}
		} else {
			p.adjust()
		}
		select {
		case <-ctx.Done():
			// Every worker is asked to stop now: none of them ending is
			// a crash.
			p.mu.Lock()
			for slot := range p.children {
				p.stopping[slot] = true
			}
			p.mu.Unlock()
			stop, cancel := context.WithTimeout(context.Background(), p.cfg.StopTimeout)
			p.group.Stop(stop)
			cancel()
			return nil
		case <-p.tick(tick):
		case <-p.wake:
		}
	}
}

// Retire asks every worker to retire (see prefork.Child.Retire): to
// finish what it holds, gently, because the pool's work moves elsewhere
// (a reload). The pool starts no more workers, and Run returns once they
// have all ended; end Run's context to stop those that take too long.
func (p *Pool) Retire() {
	if p.retiring.Swap(true) {
		return
	}
	p.mu.Lock()
	var kids []*prefork.Child
	for slot, c := range p.children {
		p.stopping[slot] = true
		kids = append(kids, c)
	}
	p.mu.Unlock()
	for _, c := range kids {
		c.Retire()
	}
	p.poke()
}

// Signal sends sig to every worker of the pool that is running, for an
// application's own use (mpmd has its workers reopen their logs). A
// worker that has not yet installed a handler gets the signal's default
// action: send one that a Go program ignores unless asked for, such as
// SIGWINCH.
func (p *Pool) Signal(sig syscall.Signal) {
	p.mu.Lock()
	kids := make([]*prefork.Child, 0, len(p.children))
	for _, c := range p.children {
		kids = append(kids, c)
	}
	p.mu.Unlock()
	for _, c := range kids {
		c.Signal(sig)
	}
}

// WaitRetired waits, after Retire, until every worker has ended or d has
// passed, and reports whether they all ended.
func (p *Pool) WaitRetired(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		p.mu.Lock()
		n := len(p.children)
		p.mu.Unlock()
		if n == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StopTimeout is how long the pool lets its workers finish when it
// stops, before it kills them.
func (p *Pool) StopTimeout() time.Duration { return p.cfg.StopTimeout }

// tickEvery is how often a pool with workers looks at its scoreboard.
const tickEvery = 100 * time.Millisecond

// tick returns the ticker's channel, or nil for a pool with nothing to
// look after: no worker, none wanted, nothing queued. Such a pool sleeps
// until a message arrives, so that hundreds of idle sites cost the master
// no wake-ups.
func (p *Pool) tick(t *time.Ticker) <-chan time.Time {
	if p.cfg.Min > 0 || p.cfg.MinSpare > 0 || p.retiring.Load() {
		return t.C
	}
	p.mu.Lock()
	n := len(p.children)
	p.mu.Unlock()
	if n > 0 || p.pending() {
		return t.C
	}
	return nil
}

func (p *Pool) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// adjust compares the scoreboard with the configuration and starts,
// retires or kills workers.
func (p *Pool) adjust() {
	now := time.Now()
	slots := p.live()
	var idle []SlotInfo
	busy, starting := 0, 0
	p.mu.Lock()
	stopping := maps.Clone(p.stopping)
	p.mu.Unlock()
	leaving := 0
	for _, s := range slots {
		if stopping[s.Slot] || (p.cfg.PerWorker > 1 && s.State == Exiting) {
			// On its way out: counts toward Max, not Min; a worker
			// that serves many connections and drains them (recycled,
			// retired) counts toward neither, so that another can take
			// its place at once (its slot is one of Max more).
			leaving++
			continue
		}
		switch s.State {
		case Idle:
			idle = append(idle, s)
		case Busy:
			busy++
			if p.cfg.PerWorker > 1 {
				// Its requests expire one by one (Worker.Serve).
				continue
			}
			if p.cfg.ExpireTimeout > 0 && now.Sub(s.Since) > p.cfg.ExpireTimeout {
				p.kill(s, fmt.Sprintf("busy on %s%s for %v, past the expire timeout %v", s.Host, s.Path, now.Sub(s.Since).Round(time.Millisecond), p.cfg.ExpireTimeout))
			}
		case Starting, Empty:
			starting++
		}
	}
	total := len(slots)
	staying := total - leaving
	ready := len(idle) + starting

	want := 0
	switch {
	case staying < p.cfg.Min:
		want = p.cfg.Min - staying
	case ready < p.cfg.MinSpare:
		want = p.cfg.MinSpare - ready
	}
	// A connection waits and no worker is free or on its way.
	if want == 0 && ready == 0 && p.pending() {
		want = 1
	}
	// Workers that serve many connections each are added by load: one
	// more when every one of them keeps its CPU busy.
	if want == 0 && p.cfg.PerWorker > 1 && starting == 0 && staying > 0 && p.allHot(slots, stopping, now) {
		want = 1
	}
	if want > 0 {
		room := p.cfg.Max - total
		if p.cfg.PerWorker > 1 {
			room = p.cfg.Max - staying
		}
		p.spawn(min(want, room))
		return
	}

	// Retire idle workers: the longest idle first, above MaxSpare after
	// spareGrace, and above Min once they have been idle for IdleTimeout.
	slices.SortFunc(idle, func(a, b SlotInfo) int { return a.Since.Compare(b.Since) })
	extra := len(idle) - p.cfg.MaxSpare
	for _, s := range idle {
		if staying <= p.cfg.Min {
			break
		}
		idleFor := now.Sub(s.Since)
		// Above MaxSpare a worker goes after a second idle, not at once:
		// under a bursty load workers are idle for moments between
		// connections, and retiring them then means spawning again.
		if (extra > 0 && idleFor > spareGrace) || idleFor > p.cfg.IdleTimeout {
			p.retire(s)
			extra--
			staying--
		}
	}
}

// spareGrace is how long a worker above MaxSpare may stay idle.
const spareGrace = time.Second

// hotShare is the share of a CPU above which a worker that serves many
// connections counts as busy enough for another to be started beside it.
const hotShare = 0.7

// cpuSample is the CPU time a worker had used when the pool last looked.
type cpuSample struct {
	pid int
	cpu time.Duration
	at  time.Time
	hot bool
}

// allHot reports whether every worker staying in the pool used more than
// hotShare of a CPU since the pool last looked (and at least one tick ago:
// a single instant says nothing).
func (p *Pool) allHot(slots []SlotInfo, stopping map[int]bool, now time.Time) bool {
	all := true
	for _, s := range slots {
		if stopping[s.Slot] {
			continue
		}
		st, err := procstatus.ReadStat(s.PID)
		if err != nil {
			return false
		}
		prev, ok := p.cpu[s.Slot]
		if !ok || prev.pid != s.PID {
			p.cpu[s.Slot] = cpuSample{pid: s.PID, cpu: st.CPU, at: now}
			all = false
			continue
		}
		if dt := now.Sub(prev.at); dt >= tickEvery {
			prev.hot = float64(st.CPU-prev.cpu) > hotShare*float64(dt)
			prev.cpu, prev.at = st.CPU, now
			p.cpu[s.Slot] = prev
		}
		all = all && prev.hot
	}
	return all
}

// spawn starts up to n workers, within the global limit and unless the
// pool is backing off after crashes.
func (p *Pool) spawn(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Now().Before(p.stats.BackoffUntil) {
		return
	}
	for ; n > 0; n-- {
		slot := -1
		for i := range p.board.n {
			if _, used := p.children[i]; !used {
				slot = i
				break
			}
		}
		if slot < 0 {
			return
		}
		if !p.cfg.Limit.acquire() {
			p.cfg.Logger.Warn("pool: global worker limit reached", "pool", p.cfg.Name, "limit", p.cfg.Limit.Max)
			if len(p.children) == 0 {
				// A pool with no worker at all must not wait for ever
				// behind pools that hold theirs with idle
				// connections: one of them gives one back.
				go p.cfg.Limit.reclaim(p)
			}
			return
		}
		p.board.write(slot, Starting, 0, 0, nil, nil, netip.AddrPort{})
		c, err := p.group.Start(prefork.Spec{
			Role:     p.cfg.Role,
			Args:     []string{p.cfg.Name, strconv.Itoa(slot)},
			Identity: p.cfg.Identity,
			Path:     p.cfg.Path,
			Cgroup:   p.cfg.Cgroup,
			Exe:      p.cfg.Exe,
			Env:      append(slices.Clone(p.cfg.Env), envSlot+"="+strconv.Itoa(slot), envMaxRequests+"="+strconv.Itoa(p.cfg.MaxRequests), envName+"="+p.cfg.Name, envServe+"="+serveEnv(&p.cfg)),
			Files: append([]prefork.File{
				{Name: fileDispatch, File: p.recv},
				{Name: fileScoreboard, File: p.board.file},
			}, p.cfg.Files...),
		})
		if err != nil {
			p.cfg.Limit.release()
			p.board.reset(slot)
			p.cfg.Logger.Error("pool: start worker", "pool", p.cfg.Name, "err", err)
			p.noteCrash()
			return
		}
		p.children[slot] = c
		p.stats.Spawned++
	}
}

func (p *Pool) childAt(s SlotInfo) *prefork.Child {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.children[s.Slot]
}

func (p *Pool) retire(s SlotInfo) {
	c := p.childAt(s)
	if c == nil {
		return
	}
	p.mu.Lock()
	p.stopping[s.Slot] = true
	p.stats.Retired++
	p.mu.Unlock()
	// An idle worker that takes a connection just now finishes it first.
	c.Retire()
}

func (p *Pool) kill(s SlotInfo, why string) {
	c := p.childAt(s)
	if c == nil {
		return
	}
	p.mu.Lock()
	if p.stopping[s.Slot] {
		p.mu.Unlock()
		return
	}
	p.stopping[s.Slot] = true
	p.stats.Killed++
	p.mu.Unlock()
	p.cfg.Logger.Warn("pool: killing worker", "pool", p.cfg.Name, "pid", c.Pid, "why", why)
	c.Signal(syscall.SIGKILL)
}

// onExit frees a worker's slot and tells a crash from an exit the pool
// expected: a worker asked to stop, or one that recycled itself (exit
// status 0 after MaxRequests, or after its role returned).
func (p *Pool) onExit(c *prefork.Child, e prefork.Exit) {
	p.mu.Lock()
	slot := -1
	for i, ch := range p.children {
		if ch == c {
			slot = i
		}
	}
	if slot < 0 {
		p.mu.Unlock()
		return
	}
	info := p.board.read(slot)
	p.served += info.Requests
	p.refused += info.Refused
	p.waits += info.QueueWaits
	p.waited += info.QueueWait
	delete(p.children, slot)
	asked := p.stopping[slot]
	delete(p.stopping, slot)
	switch {
	case asked:
	case e.Code == 0 && e.Signal == 0:
		p.stats.Recycled++
	default:
		p.stats.Crashed++
		p.cfg.Logger.Warn("pool: worker crashed", "pool", p.cfg.Name, "pid", c.Pid, "exit", e.String())
		p.noteCrash()
	}
	p.board.reset(slot)
	p.mu.Unlock()
	p.cfg.Limit.release()
	p.poke()
}

// staying counts the workers the pool has not asked to stop.
func (p *Pool) staying() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.children) - len(p.stopping)
}

// giveBack stops the worker with the fewest requests in progress, for
// another pool that has none (see Limit).
func (p *Pool) giveBack(to string) {
	var pick SlotInfo
	found := false
	p.mu.Lock()
	stopping := maps.Clone(p.stopping)
	p.mu.Unlock()
	for _, s := range p.live() {
		if stopping[s.Slot] {
			continue
		}
		if !found || s.Active < pick.Active {
			pick, found = s, true
		}
	}
	if !found {
		return
	}
	c := p.childAt(pick)
	if c == nil {
		return
	}
	p.mu.Lock()
	p.stopping[pick.Slot] = true
	p.stats.Retired++
	p.mu.Unlock()
	p.cfg.Logger.Info("pool: giving a worker back under the global limit", "pool", p.cfg.Name, "for", to, "pid", c.Pid)
	// Stopped, not retired: its idle connections close now, so that its
	// place is free at once; requests in progress finish.
	c.Signal(syscall.SIGTERM)
}

// Crash loop protection: more than crashLimit crashes within crashWindow
// stops spawning for a back-off that doubles each time, up to maxBackoff.
const (
	crashLimit  = 5
	crashWindow = 10 * time.Second
	minBackoff  = time.Second
	maxBackoff  = time.Minute
)

// noteCrash records a crash; p.mu is held.
func (p *Pool) noteCrash() {
	now := time.Now()
	p.crashes = append(p.crashes, now)
	for len(p.crashes) > 0 && now.Sub(p.crashes[0]) > crashWindow {
		p.crashes = p.crashes[1:]
	}
	if len(p.crashes) < crashLimit {
		if len(p.crashes) <= 1 {
			p.backoff = 0
		}
		return
	}
	p.backoff = min(max(2*p.backoff, minBackoff), maxBackoff)
	p.stats.BackoffUntil = now.Add(p.backoff)
	p.crashes = p.crashes[:0]
	p.cfg.Logger.Error("pool: workers keep crashing; backing off", "pool", p.cfg.Name, "crashes", crashLimit, "within", crashWindow, "backoff", p.backoff)
}

// Close releases the pool's sockets and scoreboard. Call it after Run has
// returned.
func (p *Pool) Close() error {
	p.board.close()
	return errors.Join(p.send.Close(), p.recv.Close())
}

// Limit caps the workers of several pools together. The zero value (or a
// nil *Limit) is no limit.
//
// A pool that has no worker and finds the limit reached is not left to
// wait until another pool's workers go idle, which idle kept-alive
// connections can put off for their whole timeout: the pool with the
// most workers stops one (the one with the fewest requests in progress),
// at most once a second per pool asking.
type Limit struct {
	Max int

	mu    sync.Mutex
	cur   int
	pools map[*Pool]bool
	asked map[*Pool]time.Time
}

// register adds p to the pools that share the limit.
func (l *Limit) register(p *Pool) {
	if l == nil {
		return
	}
	l.mu.Lock()
	if l.pools == nil {
		l.pools, l.asked = map[*Pool]bool{}, map[*Pool]time.Time{}
	}
	l.pools[p] = true
	l.mu.Unlock()
}

func (l *Limit) unregister(p *Pool) {
	if l == nil {
		return
	}
	l.mu.Lock()
	delete(l.pools, p)
	delete(l.asked, p)
	l.mu.Unlock()
}

// reclaim makes room under the limit for starving, a pool with no worker.
func (l *Limit) reclaim(starving *Pool) {
	if l == nil || l.Max <= 0 {
		return
	}
	l.mu.Lock()
	if time.Since(l.asked[starving]) < time.Second {
		l.mu.Unlock()
		return
	}
	l.asked[starving] = time.Now()
	var victim *Pool
	most := 0
	for p := range l.pools {
		if p == starving {
			continue
		}
		if n := p.staying(); n > most {
			victim, most = p, n
		}
	}
	l.mu.Unlock()
	if victim != nil {
		victim.giveBack(starving.cfg.Name)
	}
}

func (l *Limit) acquire() bool {
	if l == nil || l.Max <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur >= l.Max {
		return false
	}
	l.cur++
	return true
}

func (l *Limit) release() {
	if l == nil || l.Max <= 0 {
		return
	}
	l.mu.Lock()
	l.cur--
	l.mu.Unlock()
}

// InUse reports how many workers hold a place under the limit.
func (l *Limit) InUse() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}
