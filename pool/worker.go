package pool

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gompm/mpm/prefork"
)

// What a worker is given by its pool, besides its identity.
const (
	fileDispatch   = "dispatch"   // the receiving end of the dispatch socket
	fileScoreboard = "scoreboard" // the pool's scoreboard
	envSlot        = "MPM_POOL_SLOT"
	envMaxRequests = "MPM_POOL_MAX_REQUESTS"
	envName        = "MPM_POOL_NAME"
	// envServe carries the settings Worker.Serve enforces: per worker,
	// max active, then the queue, expire and stop timeouts in
	// nanoseconds, separated by commas.
	envServe = "MPM_POOL_SERVE"
)

// activeCounter is the scoreboard counter of the requests in progress
// (MaxActive); the application's counters follow it.
const activeCounter = 0

// Worker is a worker process's side of its pool: the dispatch socket to
// take connections from, and its scoreboard slot to report on.
type Worker struct {
	Pool string
	Slot int
	// Dispatch is the receiving end of the pool's SOCK_SEQPACKET
	// dispatch socket. Receive with fdpass.SharedFileSocket, which wakes
	// one idle worker per message; net.FileConn would put the socket in
	// the runtime's poller, which wakes every idle worker for each one.
	Dispatch *os.File

	board       *scoreboard
	pid         int
	requests    uint64
	maxRequests int
	cfg         workerConfig
	nconns      atomic.Int64
	env         *prefork.Env
}

// Join is called by the worker role with its prefork.Env. The worker
// starts out Starting; call Idle when ready to take work.
func Join(env *prefork.Env) (*Worker, error) {
	d, err := env.File(fileDispatch)
	if err != nil {
		return nil, fmt.Errorf("pool: join: %w", err)
	}
	f, err := env.File(fileScoreboard)
	if err != nil {
		return nil, fmt.Errorf("pool: join: %w", err)
	}
	slot, err := strconv.Atoi(os.Getenv(envSlot))
	if err != nil {
		return nil, fmt.Errorf("pool: join: bad %s %q", envSlot, os.Getenv(envSlot))
	}
	maxReq, _ := strconv.Atoi(os.Getenv(envMaxRequests))
	board, err := mapScoreboard(f)
	if err != nil {
		return nil, fmt.Errorf("pool: join: %w", err)
	}
	if slot < 0 || slot >= board.n {
		board.close()
		return nil, fmt.Errorf("pool: join: slot %d outside the scoreboard's %d", slot, board.n)
	}
	var cfg workerConfig
	var queue, expire, stop int64
	if _, err := fmt.Sscanf(os.Getenv(envServe), "%d,%d,%d,%d,%d", &cfg.perWorker, &cfg.maxActive, &queue, &expire, &stop); err != nil {
		board.close()
		return nil, fmt.Errorf("pool: join: bad %s %q: %w", envServe, os.Getenv(envServe), err)
	}
	cfg.queue, cfg.expire = time.Duration(queue), time.Duration(expire)
	// The master kills a worker StopTimeout after asking it to stop: it
	// drains until a second before.
	cfg.stopDeadline = max(time.Duration(stop)-time.Second, time.Duration(stop)/2)
	return &Worker{Pool: os.Getenv(envName), Slot: slot, Dispatch: d, board: board, pid: os.Getpid(), maxRequests: maxReq, cfg: cfg, env: env}, nil
}

// serveEnv is the value of envServe for a pool's workers.
func serveEnv(c *Config) string {
	return fmt.Sprintf("%d,%d,%d,%d,%d", c.PerWorker, c.MaxActive, c.QueueTimeout, c.ExpireTimeout, c.StopTimeout)
}

// addConn counts a connection taken (1) or closed (-1): a worker with
// none is idle, with one or more busy.
func (w *Worker) addConn(d int) {
	n := w.nconns.Add(int64(d))
	add(&w.board.slot(w.Slot).conns, d)
	switch {
	case d > 0 && n == 1:
		w.board.write(w.Slot, Busy, w.pid, w.requests, nil, nil, netip.AddrPort{})
	case d < 0 && n == 0:
		st := Idle
		if State(atomic.LoadUint32(&w.board.slot(w.Slot).state)) == Exiting {
			st = Exiting
		}
		w.board.write(w.Slot, st, w.pid, w.requests, nil, nil, netip.AddrPort{})
	}
}

func (w *Worker) conns() int64 { return w.nconns.Load() }

// addActive counts a request begun (1) or ended (-1).
func (w *Worker) addActive(d int) { add(&w.board.slot(w.Slot).active, d) }

// Acquire takes one of the pool's counter c (0 <= c < Config.Counters)
// if fewer than max are taken over all the pool's workers (max <= 0: no
// limit), and reports whether it did. Release gives it back. A limit per
// site of the pool (mpm-itk's MaxClientsVHost) is a counter: what every
// worker of the pool counts together, never more than max at once. What a
// worker holds when it dies is given back by the pool.
func (w *Worker) Acquire(c, max int) bool {
	if c < 0 || c+1 >= w.board.counters {
		return false
	}
	return w.board.acquire(w.Slot, c+1, max)
}

// Release gives back one of counter c taken by Acquire.
func (w *Worker) Release(c int) {
	if c >= 0 && c+1 < w.board.counters {
		w.board.release(w.Slot, c+1)
	}
}

// Idle reports that the worker waits for a connection.
func (w *Worker) Idle() {
	empty := ""
	w.board.write(w.Slot, Idle, w.pid, w.requests, &empty, &empty, netip.AddrPort{})
}

// Busy reports that the worker serves a request for host and path.
func (w *Worker) Busy(host, path string) {
	w.BusyFrom(host, path, netip.AddrPort{})
}

// BusyFrom is Busy with the request's client address, which the status
// page shows beside host and path.
func (w *Worker) BusyFrom(host, path string, client netip.AddrPort) {
	w.board.write(w.Slot, Busy, w.pid, w.requests, &host, &path, client)
}

// Done counts a served request and reports whether the worker has served
// its MaxRequests and should exit (with status 0, after its connection)
// to be replaced. The worker keeps its connection (it stays Busy), but no
// longer counts as serving its host: see Between.
func (w *Worker) Done() (recycle bool) {
	w.requests++
	recycle = w.maxRequests > 0 && w.requests >= uint64(w.maxRequests)
	st := Busy
	if recycle {
		st = Exiting
	}
	empty := ""
	w.board.write(w.Slot, st, w.pid, w.requests, &empty, &empty, netip.AddrPort{})
	return recycle
}

// Between reports that the worker holds a connection but serves no
// request on it (a kept-alive connection between requests, or a request
// it refused): it stays Busy for the pool's sizing, and BusyOn no longer
// counts it for any host.
func (w *Worker) Between() {
	empty := ""
	w.board.write(w.Slot, Busy, w.pid, w.requests, &empty, &empty, netip.AddrPort{})
}

// Exiting reports that the worker is on its way out.
func (w *Worker) Exiting() {
	w.board.write(w.Slot, Exiting, w.pid, w.requests, nil, nil, netip.AddrPort{})
}

// BusyOn counts the workers of this pool, this one included, that are
// serving a request for host (Busy with that host and not yet Done or
// Between): what a per-vhost limit (mpm-itk's MaxClientsVHost) compares
// against. A kept-alive connection between requests is not counted.
func (w *Worker) BusyOn(host string) int {
	n := 0
	for i := range w.board.n {
		if s := w.board.read(i); s.State == Busy && s.Host == host {
			n++
		}
	}
	return n
}

// PoolFull reports whether every slot of the pool's scoreboard holds a
// worker: the pool is at its Max, so a connection waiting in the queue
// will get a worker only when one of them lets its connection go.
func (w *Worker) PoolFull() bool {
	for i := range w.board.n {
		if w.board.read(i).State == Empty {
			return false
		}
	}
	return true
}

// LastRequest reports whether the request about to be served is the one
// after which Done will say to recycle: a worker tells its client so
// (Connection: close) instead of dropping a kept-alive connection later.
func (w *Worker) LastRequest() bool {
	return w.maxRequests > 0 && w.requests+1 >= uint64(w.maxRequests)
}

// Refused counts a connection this worker turned away with a 503 (its
// vhost at its client limit, or a connection that waited past the queue
// timeout); the pool reports the total in Stats.Refused.
func (w *Worker) Refused() { w.board.refuse(w.Slot) }
