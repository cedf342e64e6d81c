package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"

	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gompm/mpm/fdpass"
	"github.com/gompm/mpm/internal/cgirun"
	"github.com/gompm/mpm/pool"
	"github.com/gompm/mpm/prefork"
	"github.com/gompm/mpm/vhostroute"
)

const roleWorker = "worker"

// runWorker is a pool worker: it serves HTTP for its identity's vhosts on
// connections the multiplexers pass to it, many at once (pool.Serve), with
// one P (GOMAXPROCS=1 from childEnv): the pool runs more workers when
// every one keeps its CPU busy.
func runWorker(ctx context.Context, env *prefork.Env) error {
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
	// Confined before anything of the tenant's runs: what this worker
	// reads, serves and starts (PHP) is bounded from here on.
	t0 := time.Now()
	if err := confine(plan.Confine, log); err != nil {
		return err
	}
	log.Debug("confined", "landlock", plan.Confine.Landlock, "seccomp", plan.Confine.Seccomp, "took", time.Since(t0))
	h := &workerHandler{w: w, log: log, identity: plan.Identity, table: table, sites: map[int]*workerSite{}, handbackTimeout: plan.HandbackTimeout, maxBody: plan.MaxBodyBytes, unknownHost: plan.UnknownHost, sendTimeout: plan.SendTimeout}
	// php-cgi processes end with the worker, whatever they are doing.
	procs := &cgirun.Group{}
	defer procs.KillAll()
	for i := range plan.VHosts {
		v := &plan.VHosts[i]
		ws := &workerSite{maxClients: v.MaxClients, counter: i, name: plan.Routing.VHosts[v.N].Names[0]}
		var php phpBackend
		if v.PHP {
			switch v.PHPMode {
			case phpModeCGI:
				if php, err = newCGIPHP(v, plan.PHPDir, cgiValues(&v.VHost, plan.PHPDefaults), procs, log); err != nil {
					log.Error("vhost unavailable", "vhost", v.ServerName, "err", err)
				}
			case phpModeFPM:
				php = newFPMPHP(v, v.FPMSocket, plan.HandbackTimeout, log)
			}
		}
		ws.site, err = newSite(&v.VHost, php, log)
		if ws.site != nil {
			ws.site.body = bodyLimits{timeout: plan.BodyTimeout, minRate: plan.BodyMinRate, dir: plan.PHPDefaults["upload_tmp_dir"]}
			ws.site.admit = w.Admit
		}
		if err != nil || (v.PHP && php == nil) {
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
	if ctl, err := env.File("logctl"); err == nil {
		// SIGUSR1 to the master reopens the access logs: the worker
		// asks for the new files (see logreopen.go).
		wl := &workerLogs{ctl: ctl, byLog: map[string]*accessLog{}, log: log}
		for _, v := range plan.VHosts {
			if ws := h.sites[v.N]; ws != nil && ws.access != nil {
				wl.byLog[v.LogFile] = ws.access
			}
		}
		done := make(chan struct{})
		defer close(done)
		wl.watch(done)
	}
	// Persistent php-cgi children (php_mode = "fastcgi") end with the worker.
	defer func() {
		for _, ws := range h.sites {
			if ws.site != nil {
				ws.close()
			}
		}
	}()
	// Hand-backs go to the multiplexers on a socket every worker of
	// every identity shares (sends never touch its O_NONBLOCK).
	hf, err := env.File("handback")
	if err != nil {
		return err
	}
	h.sock, err = fdpass.SharedFileSocket(hf)
	hf.Close()
	if err != nil {
		return fmt.Errorf("hand-back socket: %w", err)
	}
	defer h.sock.Close()
	h.tls = newWorkerTLS(&plan, table, log)
	h.heads = &vhostroute.HeadReader{MaxHeadBytes: plan.MaxHeaderBytes, Timeout: plan.HeaderTimeout}
	h.handshake = plan.HeaderTimeout
	h.nonce = rand.Text()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: plan.HeaderTimeout,
		IdleTimeout:       plan.KeepAlive,
		MaxHeaderBytes:    plan.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return withConnPHP(tlsConnContext(ctx, c), plan.ConnPHP)
		},
		// A stream is a request: one HTTP/2 connection may run a
		// quarter of the requests the identity may run at once, so that
		// one client cannot take them all (one connection with 100
		// streams ran 100 PHP processes at once).
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: max(plan.MaxActive/4, 1)},
	}
	if h.tls != nil {
		// HTTP/2 is offered through ALPN on the TLS connections.
		srv.TLSConfig = h.tls.cfg
		go h.tls.rotate(ctx)
	}
	return w.Serve(ctx, srv, pool.ServeOptions{Conn: h.prepare, Refuse: refuseQueued, Counted: h.counted, Logger: log})
}

// refuseQueued answers a connection that waited for a worker longer than
// the pool's queue timeout: 503 on plain HTTP; a TLS client, which
// cannot be answered before its handshake, sees the connection close.
func refuseQueued(c *fdpass.Conn) {
	if !c.Info().TLS {
		writeAnswer(c, http.StatusServiceUnavailable, "the site is busy; try again in a while", retryAfter)
	}
}

// prepare makes a received connection ready to serve: TLS terminated
// (within the header timeout) when the multiplexer marked it TLS, and every
// HTTP/1.x request head held to the multiplexer's rules. An HTTP/2
// connection goes to net/http as it is: it has no HTTP/1 heads.
func (h *workerHandler) prepare(fc *fdpass.Conn) (net.Conn, error) {
	if !fc.Info().TLS {
		return h.heads.CheckRequests(fc, h.refusal), nil
	}
	if h.tls == nil {
		h.log.Error("TLS connection for an identity without certificates", "listener", fc.Info().Listener)
		return nil, errors.New("no certificate")
	}
	tc := tls.Server(fc, h.tls.cfg)
	fc.SetDeadline(time.Now().Add(h.handshake))
	err := tc.Handshake()
	fc.SetDeadline(time.Time{})
	if err != nil {
		h.log.Debug("TLS handshake", "remote", fc.RemoteAddr().String(), "err", err)
		return nil, err
	}
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		return tc, nil
	}
	return h.heads.CheckRequests(tc, h.refusal), nil
}

type workerSite struct {
	*site
	name       string // the vhost's server_name
	maxClients int
	counter    int // the pool counter of its requests in progress (max_clients)
	access     *accessLog
}

type workerHandler struct {
	w               *pool.Worker
	log             *slog.Logger
	identity        string
	table           *vhostroute.Table[*route]
	sites           map[int]*workerSite // this identity's, by vhost index
	sock            *fdpass.Socket      // hand-backs go out on it
	handbackTimeout time.Duration
	tls             *workerTLS // nil when the identity has no certificate
	heads           *vhostroute.HeadReader
	handshake       time.Duration
	// maxBody bounds a request body (max_body_bytes).
	maxBody     int64
	unknownHost int
	sendTimeout time.Duration
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
	if s.maxClients > 0 {
		// Requests in progress for this vhost over all the identity's
		// workers (mpm-itk's MaxClientsVHost).
		if !h.w.Acquire(s.counter, s.maxClients) {
			h.w.Refused()
			rw.Header().Set("Retry-After", "1")
			http.Error(rw, "too many clients for this site", http.StatusServiceUnavailable)
			return
		}
		defer h.w.Release(s.counter)
	}
	if h.maxBody > 0 {
		if r.ContentLength > h.maxBody {
			rw.Header().Set("Connection", "close")
			http.Error(rw, fmt.Sprintf("request body of %d bytes is over this server's limit of %d", r.ContentLength, h.maxBody), http.StatusRequestEntityTooLarge)
			return
		}
		// A chunked body is cut at the limit: the script reads an error
		// instead of the rest, and net/http closes the connection.
		r.Body = http.MaxBytesReader(rw, r.Body, h.maxBody)
	}
	rec := &recorder{ResponseWriter: rw, status: http.StatusOK, sendTimeout: h.sendTimeout}
	start := time.Now()
	s.ServeHTTP(rec, r)
	if s.access != nil {
		s.access.log(r, rec.status, rec.bytes, start)
	}
}

// counted reports whether r counts against the pool's max from its
// start: none does. The site takes a request's place itself when it
// starts serving it: a static file at once, PHP once its body is in and
// its connection's share of PHP allows (a slow body, or an HTTP/2
// stream waiting behind its connection's other streams, holds no
// place). A request handed back, or answered with an error, never waits
// for one.
func (h *workerHandler) counted(*http.Request) bool { return false }

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
	info := passedInfo(conn)
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
	status      int
	bytes       int64
	wrote       bool
	sendTimeout time.Duration
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	if r.sendTimeout > 0 {
		// Each write must get through in time: a client that reads
		// nothing does not hold a connection, and the PHP process
		// whose output waits for it, for ever.
		http.NewResponseController(r.ResponseWriter).SetWriteDeadline(time.Now().Add(r.sendTimeout))
	}
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
