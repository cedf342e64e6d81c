package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/fdpass"
)

// ServeOptions are what an application adds to [Worker.Serve]. The zero
// value serves each received connection as it is.
type ServeOptions struct {
	// Conn turns a received connection into the one the server serves:
	// a TLS handshake, checks on what it reads. It runs in a goroutine
	// of the connection's own; an error closes the connection. Nil
	// serves the connection as received.
	Conn func(*fdpass.Conn) (net.Conn, error)
	// Refuse answers a connection that waited in the dispatch queue
	// longer than the pool's QueueTimeout, before it is closed: its
	// client was promised an answer within it, and the connections
	// behind it deserve the worker more. Nil closes it without one.
	Refuse func(*fdpass.Conn)
	// Busy answers a request that waited past QueueTimeout for one of
	// the pool's MaxActive places. Nil answers 503.
	Busy http.Handler
	// Counted says whether a request counts against MaxActive from its
	// start: nil counts every one. A request the application does not
	// serve itself (one it hands to another process) should not wait for
	// a place; one whose body must arrive first (a slow client must not
	// hold a place while it sends) is not counted here, and the handler
	// calls [Worker.Admit] once the body is in.
	Counted func(*http.Request) bool
	// Logger for the worker's events. Nil discards them.
	Logger *slog.Logger
}

// Serve serves srv on the connections the pool's dispatch socket brings,
// until ctx ends or the worker has served its MaxRequests, and enforces
// the pool's rules on the way:
//
//   - A connection that waited in the queue longer than QueueTimeout is
//     refused (opt.Refuse).
//   - With PerWorker 1 (or 0), one connection at a time: Accept waits for
//     the previous connection to close, and a kept-alive connection with
//     no request in progress gives its worker up when another connection
//     waits and the pool is at its Max (HTTP lets a server close an idle
//     connection; the client opens a new one). Otherwise up to PerWorker
//     connections at once.
//   - At most MaxActive requests in progress over the pool's workers; a
//     request over it waits up to QueueTimeout, then gets opt.Busy.
//   - Each request's context ends after ExpireTimeout (the handler ends
//     what it started, such as a PHP process), and the scoreboard counts
//     requests and connections.
//   - After MaxRequests requests, or when ctx ends, the worker takes no
//     more connections, says "Connection: close" on every answer, lets
//     the connections it holds finish (an idle one is not cut: it closes
//     when its client sends its next request, answered, or when it has
//     been idle for srv.IdleTimeout) until the pool's StopTimeout nears,
//     then shuts srv down.
//
// Serve sets srv.ConnState (calling the one srv had) and wraps
// srv.Handler. It returns nil after a graceful end.
func (w *Worker) Serve(ctx context.Context, srv *http.Server, opt ServeOptions) error {
	retiring := w.env.Retiring()
	sock, err := fdpass.SharedFileSocket(w.Dispatch)
	if err != nil {
		return err
	}
	defer sock.Close()
	recvCtx, stopRecv := context.WithCancel(context.Background())
	s := &server{w: w, srv: srv, opt: opt, sock: sock, recvCtx: recvCtx, stopRecv: stopRecv, conns: make(chan net.Conn), recycled: make(chan struct{}), log: opt.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.perWorker = max(w.cfg.perWorker, 1)
	s.slots = make(chan struct{}, s.perWorker)
	if s.perWorker == 1 {
		s.dispatchFD = dispatchFD(w)
	}
	user := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		s.connState(c, st)
		if user != nil {
			user(c, st)
		}
	}
	srv.Handler = s.handler(srv.Handler)
	w.Idle()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(&chanListener{s: s}) }()
	received := make(chan struct{})
	go func() { defer close(received); s.receive() }()
	retire := true
	select {
	case <-ctx.Done():
		retire = false
	case <-retiring:
	case <-s.recycled:
	case err := <-served:
		stopRecv()
		return err
	}
	return s.drain(retire, received)
}

// workerConfig is what a worker learns of its pool's settings.
type workerConfig struct {
	perWorker                   int
	maxActive                   int
	queue, expire, stopDeadline time.Duration
}

type server struct {
	w         *Worker
	srv       *http.Server
	opt       ServeOptions
	log       *slog.Logger
	sock      *fdpass.Socket
	conns     chan net.Conn // prepared connections, for the http.Server; closed when receiving ends
	perWorker int
	slots     chan struct{} // a place per connection held
	prepares  sync.WaitGroup
	draining  atomic.Bool

	recvCtx      context.Context // ends when the worker stops receiving
	stopRecv     context.CancelFunc
	recycled     chan struct{} // closed once the worker has served its last request
	recycledOnce sync.Once

	dispatchFD int // one at a time: to see whether a connection waits

	mu   sync.Mutex
	held map[net.Conn]*connInfo
}

type connInfo struct {
	idle chan struct{} // closed when a kept-alive connection stops being idle
}

// receive takes connections from the dispatch socket while there is room
// for them, and prepares each in a goroutine of its own. When the worker
// stops receiving, it takes what is already queued (no connection a
// multiplexer queued is lost to a worker that retires), then closes the
// http.Server's channel once the last one is prepared.
func (s *server) receive() {
	defer func() {
		s.prepares.Wait()
		close(s.conns)
	}()
	var delay time.Duration
	for {
		select {
		case s.slots <- struct{}{}:
		case <-s.recvCtx.Done():
			s.takeQueued()
			return
		}
		c, err := s.sock.RecvConn(s.recvCtx)
		if err != nil {
			<-s.slots
			if s.recvCtx.Err() != nil {
				s.takeQueued()
				return
			}
			if errors.Is(err, fdpass.ErrMalformed) || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("receive a connection", "err", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			return // every sender gone, or the socket closed
		}
		delay = 0
		s.take(c)
	}
}

// takeQueued takes the connections in the queue now (not those that
// come later: other workers take them), as long as there is room.
func (s *server) takeQueued() {
	fd := dispatchFD(s.w)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(fds, 0); err != nil || n == 0 || fds[0].Revents&unix.POLLIN == 0 {
			return
		}
		select {
		case s.slots <- struct{}{}:
		default:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		c, err := s.sock.RecvConn(ctx)
		cancel()
		if err != nil {
			<-s.slots
			return
		}
		s.take(c)
	}
}

// take serves c, received with a place in s.slots held for it.
func (s *server) take(fc *fdpass.Conn) {
	if q := s.w.cfg.queue; q > 0 && fc.Info().Queued > q {
		s.w.Refused()
		s.log.Warn("connection waited too long for a worker", "queued", fc.Info().Queued.Round(time.Millisecond), "queue_timeout", q)
		if s.opt.Refuse != nil {
			s.opt.Refuse(fc)
		}
		fc.Close()
		<-s.slots
		return
	}
	s.w.addConn(1)
	s.prepares.Add(1)
	go s.prepare(fc)
}

func (s *server) prepare(fc *fdpass.Conn) {
	defer s.prepares.Done()
	var c net.Conn = fc
	if s.opt.Conn != nil {
		var err error
		if c, err = s.opt.Conn(fc); err != nil {
			fc.Close()
			s.w.addConn(-1)
			<-s.slots
			return
		}
	}
	s.conns <- c // the http.Server takes every one until it is drained
}

// chanListener hands the http.Server the prepared connections.
type chanListener struct{ s *server }

func (l *chanListener) Accept() (net.Conn, error) {
	if c, ok := <-l.s.conns; ok {
		return c, nil
	}
	return nil, net.ErrClosed
}
func (l *chanListener) Close() error   { l.s.stopRecv(); return nil }
func (l *chanListener) Addr() net.Addr { return &fdpass.Addr{Net: "fdpass", Addr: l.s.w.Pool} }

// recycle stops the worker after its last request.
func (s *server) recycle() {
	s.recycledOnce.Do(func() { close(s.recycled) })
}

func (s *server) connState(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	if s.held == nil {
		s.held = map[net.Conn]*connInfo{}
	}
	ci := s.held[c]
	if ci == nil {
		ci = &connInfo{}
		s.held[c] = ci
	}
	if ci.idle != nil {
		close(ci.idle) // the connection left the idle state
		ci.idle = nil
	}
	switch st {
	case http.StateIdle:
		if s.perWorker == 1 {
			ci.idle = make(chan struct{})
			go s.yieldWhenWanted(c, ci.idle)
		}
	case http.StateClosed, http.StateHijacked:
		delete(s.held, c)
		s.mu.Unlock()
		s.w.addConn(-1)
		<-s.slots
		return
	}
	s.mu.Unlock()
}

// yieldWhenWanted closes c, a kept-alive connection with no request in
// progress of a one-at-a-time worker, when another connection waits for a
// worker of this full pool: an idle client must not hold the worker a
// waiting one needs (the pool would stall until the keep-alive timeout).
// The wait must last 100ms, so that a busy client between two requests
// (whose answer already said to close when others wait) is not cut off
// mid-turn.
func (s *server) yieldWhenWanted(c net.Conn, done <-chan struct{}) {
	const looks, every = 5, 20 * time.Millisecond
	seen := 0
	for {
		select {
		case <-done:
			return
		case <-time.After(every):
		}
		if !s.queued() {
			seen = 0
			continue
		}
		if seen++; seen >= looks {
			c.Close()
			return
		}
	}
}

// queued reports whether a connection waits in the dispatch queue while
// the pool is at its Max: only a connection given up makes room for it.
func (s *server) queued() bool {
	if s.perWorker != 1 {
		return false
	}
	fds := []unix.PollFd{{Fd: int32(s.dispatchFD), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&unix.POLLIN != 0 && s.w.PoolFull()
}

// dispatchFD is the raw descriptor of the dispatch socket, taken without
// File.Fd, which would change the blocking mode of a pollable file's
// socket, shared with every worker of the pool.
func dispatchFD(w *Worker) int {
	fd := -1
	if rc, err := w.Dispatch.SyscallConn(); err == nil {
		rc.Control(func(u uintptr) { fd = int(u) })
	}
	return fd
}

// handler wraps the application's handler with the pool's rules.
func (s *server) handler(h http.Handler) http.Handler {
	if h == nil {
		h = http.DefaultServeMux
	}
	busy := s.opt.Busy
	if busy == nil {
		busy = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "the site is busy; try again in a while", http.StatusServiceUnavailable)
		})
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := s.w
		if r.ProtoMajor == 1 && (s.draining.Load() || w.LastRequest() || s.queued()) {
			// The worker stops, recycles after this request, or others
			// wait for the full pool: this connection ends after this
			// answer (said in it, so no client sees a dropped
			// connection), as Apache's MaxKeepAliveRequests would, but
			// only when needed.
			rw.Header().Set("Connection", "close")
		}
		adm := &admission{}
		if w.cfg.maxActive > 0 && (s.opt.Counted == nil || s.opt.Counted(r)) {
			if !s.admit(r) {
				w.Refused()
				busy.ServeHTTP(rw, r)
				return
			}
			adm.held = true
		}
		r = r.WithContext(context.WithValue(r.Context(), admissionKey{}, adm))
		w.addActive(1)
		client, _ := netip.ParseAddrPort(r.RemoteAddr)
		w.BusyFrom(r.Host, r.URL.Path, client)
		if d := w.cfg.expire; d > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			r = r.WithContext(ctx)
		}
		h.ServeHTTP(rw, r)
		w.addActive(-1)
		if adm.held {
			w.board.release(w.Slot, activeCounter)
		}
		if w.Done() {
			s.recycle()
		}
	})
}

type admissionKey struct{}

// admission records whether a request holds one of MaxActive's places.
type admission struct{ held bool }

// Admit takes one of the pool's MaxActive places for r, a request that
// Serve did not count at its start (see ServeOptions.Counted), waiting
// for one up to the queue timeout; the place is given back when the
// request ends. It reports false when none came in time (answer 503).
func (w *Worker) Admit(r *http.Request) bool {
	adm, ok := r.Context().Value(admissionKey{}).(*admission)
	if !ok || adm.held || w.cfg.maxActive <= 0 {
		return true
	}
	s := &server{w: w}
	if !s.admit(r) {
		w.Refused()
		return false
	}
	adm.held = true
	return true
}

// admit takes one of the pool's MaxActive places for r, waiting for one
// up to the queue timeout.
func (s *server) admit(r *http.Request) bool {
	w := s.w
	if w.cfg.maxActive <= 0 {
		return true
	}
	if w.board.acquire(w.Slot, activeCounter, w.cfg.maxActive) {
		return true
	}
	start := time.Now()
	defer func() { w.board.waited(w.Slot, time.Since(start)) }()
	deadline := start.Add(w.cfg.queue)
	wait := time.Millisecond
	for {
		if w.board.acquire(w.Slot, activeCounter, w.cfg.maxActive) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-time.After(wait):
		case <-r.Context().Done():
			return false
		}
		wait = min(2*wait, 10*time.Millisecond)
	}
}

// drain ends the worker. It stops receiving, then either retires gently
// (retire: answers say "Connection: close", and the connections it holds
// end on their own, an idle one when its client sends its next request or
// when it has been idle for srv.IdleTimeout, until the stop deadline
// nears) or stops (in-flight requests finish, idle connections close).
func (s *server) drain(retire bool, received <-chan struct{}) error {
	s.draining.Store(true)
	s.w.Exiting()
	s.stopRecv()
	<-received
	deadline := time.Now().Add(s.w.cfg.stopDeadline)
	if d := s.srv.IdleTimeout; d > 0 && time.Now().Add(d).Before(deadline) {
		deadline = time.Now().Add(d)
	}
	for retire && time.Now().Before(deadline) && s.w.conns() > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(time.Until(deadline), time.Second))
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
		return fmt.Errorf("pool: worker %d: stop: %w", s.w.Slot, err)
	}
	return nil
}
