package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/fdpass"
	"github.com/gompm/mpm/pool"
	"github.com/gompm/mpm/prefork"
	"github.com/gompm/mpm/vhostroute"
)

const roleWorker = "worker"

// runWorker is a pool worker: it serves HTTP for its identity's vhosts on
// connections the multiplexers pass to it, one connection at a time.
func runWorker(ctx context.Context, env *prefork.Env) error {
	// One P (GOMAXPROCS=1 from childEnv): a worker serves one
	// connection at a time.
	log := env.Logger
	w, err := pool.Join(env)
	if err != nil {
		return err
	}
	planF, err := env.File("plan")
	if err != nil {
		return err
	}
	var plan workerPlan
	if err := readPlan(planF, &plan); err != nil {
		return err
	}
	table, err := plan.Routing.table()
	if err != nil {
		return err
	}
	h := &workerHandler{w: w, log: log, identity: plan.Identity, table: table, sites: map[int]*workerSite{}, handbackTimeout: plan.HandbackTimeout, maxBody: plan.MaxBodyBytes, unknownHost: plan.UnknownHost}
	for i := range plan.VHosts {
		v := &plan.VHosts[i]
		// The identity's own session and temporary directories, unless
		// the vhost sets its own.
		for k, val := range plan.PHPDefaults {
			if _, set := v.PHPAdminValue[k]; !set {
				if v.PHPAdminValue == nil {
					v.PHPAdminValue = map[string]string{}
				}
				v.PHPAdminValue[k] = val
			}
		}
		ws := &workerSite{maxClients: v.MaxClients, name: plan.Routing.VHosts[v.N].Names[0]}
		if ws.site, err = newSite(&v.VHost, plan.PHPCGI, log); err != nil {
			// One vhost that cannot be served (its document root went
			// away since the check) answers 503; the identity's other
			// vhosts are served as usual.
			log.Error("vhost unavailable", "vhost", v.ServerName, "err", err)
			ws.site = nil
		}
		if v.LogFile != "" {
			f, err := env.File(v.LogFile)
			if err != nil {
				return err
			}
			ws.access = &accessLog{f: f}
		}
		h.sites[v.N] = ws
	}
	// Persistent php-cgi children (php_mode = "fastcgi") end with the worker.
	defer func() {
		for _, ws := range h.sites {
			if ws.site != nil {
				ws.close()
			}
		}
	}()
	// Shared: each connection wakes one idle worker of the pool, not all.
	sock, err := fdpass.SharedFileSocket(w.Dispatch)
	if err != nil {
		return err
	}
	h.sock = sock
	h.tls = newWorkerTLS(&plan, table, log)
	fresh := &freshOnly{Listener: fdpass.NewListener(sock), max: plan.HandbackTimeout, log: log, w: w}
	heads := &vhostroute.HeadReader{MaxHeadBytes: plan.MaxHeaderBytes, Timeout: plan.HeaderTimeout}
	h.nonce = rand.Text()
	check := func(c net.Conn) net.Conn { return heads.CheckRequests(c, h.refusal) }
	ln := &oneAtATime{Listener: &tlsListener{Listener: fresh, t: h.tls, log: log, handshake: plan.HeaderTimeout, check: check}, w: w, free: make(chan struct{}, 1), closed: make(chan struct{})}
	ln.free <- struct{}{}
	// The raw descriptor, taken without File.Fd, which would change the
	// blocking mode of a pollable file's socket, shared with every worker
	// of the pool.
	var dispatchFD int
	if rc, err := w.Dispatch.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { dispatchFD = int(fd) })
	}
	// Someone waits for a worker that only a kept-alive connection can
	// give up: a connection is in the queue and the pool is at its max.
	ln.queued = func() bool {
		fds := []unix.PollFd{{Fd: int32(dispatchFD), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		return err == nil && n > 0 && fds[0].Revents&unix.POLLIN != 0 && w.PoolFull()
	}
	h.queued = ln.queued
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: plan.HeaderTimeout,
		IdleTimeout:       plan.KeepAlive,
		MaxHeaderBytes:    plan.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnState:         ln.connState,
		ConnContext:       tlsConnContext,
	}
	if h.tls != nil {
		// HTTP/2 is offered through ALPN on the TLS connections.
		srv.TLSConfig = h.tls.cfg
		go h.tls.rotate(ctx)
	}
	h.srv = srv
	recycled := make(chan struct{})
	h.recycle = func() {
		// Served enough: take no more connections, finish the one in
		// hand (and one received in the meantime), then exit.
		ln.finish()
		go func() {
			srv.Shutdown(context.Background())
			close(recycled)
		}()
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		if errors.Is(err, http.ErrServerClosed) {
			w.Exiting()
			// Serve returns as soon as Shutdown begins; Shutdown
			// returns when the last connection has been served.
			// Exiting before that drops it without an answer.
			<-recycled
			return nil
		}
		return err
	case <-ctx.Done():
		w.Exiting()
		// Answers from now on say Connection: close; Shutdown then
		// closes connections that are idle between requests.
		srv.SetKeepAlivesEnabled(false)
		stop, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return srv.Shutdown(stop)
	}
}

// oneAtATime makes a worker hold one connection at a time, as a prefork
// worker does: that is what the pool's idle and busy counts mean, and
// what lets the master size pools from the scoreboard. Accept waits until
// the previous connection has closed (or been handed back).
type oneAtATime struct {
	net.Listener
	w      *pool.Worker
	free   chan struct{}
	closed chan struct{}
	once   sync.Once
	// queued reports whether a connection waits in the dispatch queue.
	queued func() bool

	mu   sync.Mutex
	idle chan struct{} // closed when the current connection stops being idle

	// finished is set when the worker has served its last request: it
	// takes no more connections from the queue, where another worker
	// will get them.
	finished atomic.Bool
}

// finish makes Accept take no more connections.
func (l *oneAtATime) finish() { l.finished.Store(true) }

func (l *oneAtATime) Accept() (net.Conn, error) {
	select {
	case <-l.free:
	case <-l.closed:
		// http.Server.Shutdown waits for Serve to leave Accept before it
		// closes the idle connection that holds the token.
		return nil, net.ErrClosed
	}
	if l.finished.Load() {
		// Wait for Shutdown to close the listener, so that Serve sees
		// a closed listener, not an error.
		l.free <- struct{}{}
		<-l.closed
		return nil, net.ErrClosed
	}
	l.w.Idle()
	c, err := l.Listener.Accept()
	if err != nil {
		l.free <- struct{}{}
		return nil, err
	}
	return c, nil
}

// freshOnly refuses connections that waited in the dispatch queue longer
// than the pool's queue timeout: their client was promised an answer
// within it, and the next connection in the queue deserves the worker
// more. A plain HTTP client gets a 503; a TLS client, which cannot be
// answered before its handshake, gets the connection closed.
type freshOnly struct {
	net.Listener
	max time.Duration
	log *slog.Logger
	w   *pool.Worker
}

func (l *freshOnly) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		fc, ok := c.(*fdpass.Conn)
		if !ok || l.max <= 0 || fc.Info().Queued <= l.max {
			return c, nil
		}
		l.w.Refused()
		l.log.Warn("connection waited too long for a worker", "queued", fc.Info().Queued.Round(time.Millisecond), "queue_timeout", l.max)
		if !fc.Info().TLS {
			writeAnswer(c, http.StatusServiceUnavailable, "the site is busy; try again in a while", retryAfter)
		}
		c.Close()
	}
}

func (l *oneAtATime) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

func (l *oneAtATime) connState(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	if l.idle != nil {
		close(l.idle) // the connection left the idle state
		l.idle = nil
	}
	if st == http.StateIdle && l.queued != nil {
		l.idle = make(chan struct{})
		go l.yieldWhenWanted(c, l.idle)
	}
	l.mu.Unlock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		l.free <- struct{}{}
	}
}

// yieldWhenWanted closes c, a kept-alive connection with no request in
// progress, when another connection waits for a worker of this full pool:
// an idle client must not hold the worker a waiting one needs (the pool
// would stall until the keep-alive timeout). HTTP lets a server close an
// idle connection; the client opens a new one. The wait must last 100ms,
// so that a busy client between two requests (which ServeHTTP already
// asks to close when others wait) is not cut off mid-turn.
func (l *oneAtATime) yieldWhenWanted(c net.Conn, done <-chan struct{}) {
	const looks, every = 5, 20 * time.Millisecond
	seen := 0
	for {
		select {
		case <-done:
			return
		case <-time.After(every):
		}
		if !l.queued() {
			seen = 0
			continue
		}
		if seen++; seen >= looks {
			c.Close()
			return
		}
	}
}

type workerSite struct {
	*site
	name       string // the vhost's server_name: what max_clients counts by
	maxClients int
	access     *accessLog
}

type workerHandler struct {
	w               *pool.Worker
	log             *slog.Logger
	identity        string
	table           *vhostroute.Table[*route]
	sites           map[int]*workerSite // this identity's, by vhost index
	sock            *fdpass.Socket
	srv             *http.Server
	recycle         func()
	handbackTimeout time.Duration
	once            sync.Once
	tls             *workerTLS // nil when the identity has no certificate
	// queued reports that a connection waits for a worker of this full
	// pool; see oneAtATime.
	queued func() bool
	// maxBody bounds a request body (max_body_bytes).
	maxBody     int64
	unknownHost int
	nonce       string // marks refusals; see refusedHeader
}

// refusedHeader marks the request a vhostroute.CheckedConn puts in place
// of a head that breaks the rules. Its value starts with the worker's
// nonce, which no client can know, so that no client can send it.
const refusedHeader = "Mpmd-Refused"

// refusal is the request in place of a refused head: the handler answers
// it with the head's status, in order, and the connection closes.
func (h *workerHandler) refusal(he *vhostroute.HeadError) []byte {
	return []byte(fmt.Sprintf("GET / HTTP/1.1\r\nHost: refused.invalid\r\nConnection: close\r\n%s: %s %d\r\n\r\n", refusedHeader, h.nonce, vhostroute.RefusalStatus(he)))
}

// refused answers the request in place of a refused head, if r is one.
func (h *workerHandler) refused(rw http.ResponseWriter, r *http.Request) bool {
	v, ok := strings.CutPrefix(r.Header.Get(refusedHeader), h.nonce+" ")
	if !ok {
		return false
	}
	status, err := strconv.Atoi(v)
	if err != nil {
		status = http.StatusBadRequest
	}
	rw.Header().Set("Connection", "close")
	http.Error(rw, http.StatusText(status)+": the request head breaks HTTP/1.1's rules", status)
	return true
}

func (h *workerHandler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if h.refused(rw, r) {
		return
	}
	if r.TLS == nil {
		r.TLS = tlsState(r)
	}
	if r.ProtoMajor == 1 && (h.w.LastRequest() || (h.queued != nil && h.queued())) {
		// The worker recycles after this request, or others wait and
		// the pool is full: this connection ends after this answer
		// (said in the response, so no client sees a dropped
		// connection), and the worker takes the next in line, as
		// Apache's MaxKeepAliveRequests would, but only when needed.
		rw.Header().Set("Connection", "close")
	}
	rt, status := h.route(r)
	if status != 0 {
		http.Error(rw, http.StatusText(status), status)
		return
	}
	if rt.Identity != h.identity {
		if r.TLS != nil {
			// A TLS connection cannot be handed back: its state lives
			// in this process. 421 makes the client retry on a new
			// connection (RFC 9110 §15.5.20, RFC 9113 §9.1.2).
			http.Error(rw, "misdirected request: this connection does not serve "+rt.Name, http.StatusMisdirectedRequest)
			return
		}
		// A kept-alive connection now asks for another identity's site:
		// give it back to a multiplexer, which routes it again.
		h.handBack(rw, r)
		return
	}
	if r.TLS != nil {
		if r = h.admitTLS(rw, r, rt); r == nil {
			return
		}
	}
	s := h.sites[rt.VHost]
	if s.site == nil {
		rw.Header().Set("Retry-After", "60")
		http.Error(rw, "this site is unavailable (see the server's log)", http.StatusServiceUnavailable)
		return
	}
	h.w.Busy(s.name, r.URL.Path)
	if s.maxClients > 0 && h.w.BusyOn(s.name) > s.maxClients {
		h.w.Between()
		h.w.Refused()
		rw.Header().Set("Retry-After", "1")
		http.Error(rw, "too many clients for this site", http.StatusServiceUnavailable)
		return
	}
	if h.maxBody > 0 {
		if r.ContentLength > h.maxBody {
			h.w.Between()
			rw.Header().Set("Connection", "close")
			http.Error(rw, fmt.Sprintf("request body of %d bytes is over this server's limit of %d", r.ContentLength, h.maxBody), http.StatusRequestEntityTooLarge)
			return
		}
		// A chunked body is cut at the limit: the script reads an error
		// instead of the rest, and net/http closes the connection.
		r.Body = http.MaxBytesReader(rw, r.Body, h.maxBody)
	}
	rec := &recorder{ResponseWriter: rw, status: http.StatusOK}
	start := time.Now()
	s.ServeHTTP(rec, r)
	if s.access != nil {
		s.access.log(r, rec.status, rec.bytes, start)
	}
	if h.w.Done() {
		h.once.Do(h.recycle)
	}
}

// route looks r up in the routing table by the local address its
// connection reached and its host, as the multiplexer did for the first
// request of the connection. A status is the answer when there is no
// route: 400 for a host that is not one, else the unknown-host status.
func (h *workerHandler) route(r *http.Request) (*route, int) {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if rt, ok := h.table.Lookup(addrPort(local), r.Host); ok {
		return rt, 0
	}
	if _, err := vhostroute.NormalizeHost(r.Host); err != nil {
		return nil, http.StatusBadRequest
	}
	return nil, h.unknownHost
}

// handBack sends the connection, with the request it carries re-encoded
// and whatever the server had buffered after it, to a multiplexer.
func (h *workerHandler) handBack(rw http.ResponseWriter, r *http.Request) {
	hj, ok := rw.(http.Hijacker)
	if !ok {
		http.Error(rw, "misdirected request", http.StatusMisdirectedRequest)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		http.Error(rw, "misdirected request", http.StatusMisdirectedRequest)
		return
	}
	defer conn.Close()
	head := requestHead(r)
	if n := buf.Reader.Buffered(); n > 0 {
		b, _ := buf.Reader.Peek(n)
		head = append(head, b...)
	}
	if cc, ok := conn.(*vhostroute.CheckedConn); ok {
		// Read from the socket, not yet by net/http: it comes after
		// what net/http buffered, and before what the socket holds.
		head = append(head, cc.Buffered()...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.handbackTimeout)
	defer cancel()
	info := fdpass.ConnInfo{}
	if fc, ok := conn.(*fdpass.Conn); ok {
		info = fc.Info()
	}
	if err := h.sock.SendConn(ctx, conn, head, info); err != nil {
		h.log.Warn("hand back a connection", "host", r.Host, "err", err)
		writeAnswer(conn, http.StatusServiceUnavailable, "the site is busy; try again", retryAfter)
	}
}

// requestHead re-encodes the head of r as the client sent it, as far as
// net/http keeps it: the request line, Host, and the headers (net/http
// moves Transfer-Encoding out of the header map; it goes back in).
func requestHead(r *http.Request) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\r\n", r.Method, r.RequestURI, r.Proto)
	fmt.Fprintf(&b, "Host: %s\r\n", r.Host)
	if len(r.TransferEncoding) > 0 {
		fmt.Fprintf(&b, "Transfer-Encoding: %s\r\n", strings.Join(r.TransferEncoding, ", "))
	}
	bw := bufio.NewWriter(&b)
	r.Header.Write(bw)
	bw.Flush()
	if r.ContentLength > 0 && r.Header.Get("Content-Length") == "" && len(r.TransferEncoding) == 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", r.ContentLength)
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// recorder notes the status and size of a response for the access log.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// accessLog writes the Combined Log Format to a file the master opened.
// Each line is one write to an O_APPEND file, so the workers of a pool
// can share it without interleaving.
type accessLog struct {
	mu sync.Mutex
	f  *os.File
}

func (a *accessLog) log(r *http.Request, status int, size int64, t time.Time) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	user := "-"
	if u, _, ok := r.BasicAuth(); ok && u != "" {
		user = logEscape(u, false)
	}
	sz := "-"
	if size > 0 {
		sz = strconv.FormatInt(size, 10)
	}
	// Every field a client chooses is escaped: a line is one request.
	line := fmt.Sprintf("%s - %s [%s] \"%s\" %d %s \"%s\" \"%s\"\n",
		host, user, t.Format("02/Jan/2006:15:04:05 -0700"),
		logEscape(r.Method+" "+r.RequestURI+" "+r.Proto, true), status, sz,
		logEscape(orDash(r.Referer()), true), logEscape(orDash(r.UserAgent()), true))
	a.mu.Lock()
	a.f.WriteString(line)
	a.mu.Unlock()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
