package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/fdpass"
	"github.com/gompm/mpm/prefork"
	"github.com/gompm/mpm/vhostroute"
)

const roleMux = "mux"

// Hand-backs: a worker returns a kept-alive connection whose next request
// is another identity's. The multiplexer trusts nothing a worker says
// about it (a worker runs a tenant's code): the addresses come from the
// socket itself, the request head is read again with the same bounds as a
// new connection's, and these bound what a worker can make it do.
const (
	// maxHandbacks bounds the hand-backs of one identity (by the uid the
	// kernel reports for the sender) being routed at once by one
	// multiplexer (each holds a goroutine and a descriptor); one more is
	// answered 503 and closed at once. maxHandbacksAll bounds them all.
	maxHandbacks    = 64
	maxHandbacksAll = 1024
	// maxBounces is how many times in a row a connection may come back
	// from a worker that wrote nothing to it. Workers route with the same
	// table as the multiplexer, so an honest worker never returns what it
	// was given: a request is handed back at most once before it is
	// served.
	maxBounces = 2
	// bounceMemory is how long a multiplexer remembers a connection it
	// passed after a hand-back, and bounceRecords how many it remembers.
	bounceMemory  = 10 * time.Second
	bounceRecords = 4096
)

// runMux is a multiplexer: unprivileged, chrooted into an empty
// directory, holding no capabilities. It accepts connections, reads each
// request head with a size bound and a deadline, routes it by Host, and
// passes the connection with the bytes already read to the pool of the
// vhost's identity. It also takes back connections a worker returns
// because their next request is for another identity.
func runMux(ctx context.Context, env *prefork.Env) error {
	planF, err := env.File("plan")
	if err != nil {
		return err
	}
	var plan muxPlan
	if err := readPlan(planF, &plan); err != nil {
		return err
	}
	m := &mux{log: env.Logger, plan: plan, heads: vhostroute.HeadReader{MaxHeadBytes: plan.MaxHeaderBytes, Timeout: plan.HeaderTimeout}, bounces: map[uint64]bounce{}, handbacks: map[uint32]chan struct{}{}}
	if m.table, err = plan.Routing.table(); err != nil {
		return err
	}
	if m.listening, err = newListenerSet(plan.Listeners); err != nil {
		return err
	}
	for i, name := range plan.Routing.Pools {
		f, err := env.File("pool-" + strconv.Itoa(i))
		if err != nil {
			return err
		}
		s, err := fdpass.FileSocket(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("pool %s: %w", name, err)
		}
		m.pools = append(m.pools, s)
	}
	var wg sync.WaitGroup
	var lns []net.Listener
	for i, addr := range plan.Listeners {
		f, err := env.File("listen-" + strconv.Itoa(i))
		if err != nil {
			return err
		}
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("listener %s: %w", addr, err)
		}
		lns = append(lns, ln)
		if trusted := plan.Proxy[i]; trusted != nil {
			p := &proxyListener{m: m, addr: addr, tls: plan.TLS[i]}
			if p.trusted, err = vhostroute.ParseCIDRList(trusted); err != nil {
				return err
			}
			wg.Add(1)
			go func() { defer wg.Done(); p.accept(ctx, ln) }()
			continue
		}
		serve, fast := m.route, m.routeFast
		if plan.TLS[i] {
			serve, fast = m.routeTLS, nil
		}
		wg.Add(1)
		go func() { defer wg.Done(); m.acceptFast(ctx, ln, addr, fast, serve) }()
	}
	// Hand-backs come on one socket from every worker of every
	// generation (a worker retiring after a reload hands back to the new
	// generation's multiplexers); the kernel says which uid sent each.
	hf, err := env.File("handback")
	if err != nil {
		return err
	}
	hs, err := fdpass.SharedFileSocket(hf)
	hf.Close()
	if err != nil {
		return fmt.Errorf("hand-back socket: %w", err)
	}
	hl := fdpass.NewListener(hs)
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.accept(ctx, hl, "hand-backs", make(chan struct{}, maxHandbacksAll), m.handback)
	}()
	lns = append(lns, hl)
	if f, ok := env.Files["ready"]; ok {
		// Accepting on every listener: the master may report ready.
		f.Write([]byte{1})
		f.Close()
	}
	<-ctx.Done()
	for _, ln := range lns {
		ln.Close()
	}
	// The accept loops first: one may still return a connection it had
	// taken (or, from the hand-back socket, the one message whose wake-up
	// it had, see fdpass.SharedFileSocket) and start routing it. Then the
	// connections being read or waiting for a worker, which finish on
	// their own deadlines. In the other order the process could exit
	// under a connection it accepted but had not passed on.
	wg.Wait()
	m.conns.Wait()
	return nil
}

type mux struct {
	log       *slog.Logger
	plan      muxPlan
	table     *vhostroute.Table[*route]
	listening listenerSet
	pools     []*fdpass.Socket
	heads     vhostroute.HeadReader
	conns     sync.WaitGroup

	mu        sync.Mutex
	bounces   map[uint64]bounce        // by socket cookie
	handbacks map[uint32]chan struct{} // in flight, by the sender's uid
}

// bounce is what a multiplexer remembers of a connection it passed on
// after a hand-back: how much the server had sent on it then.
type bounce struct {
	sent  uint64 // tcpi_bytes_sent at the pass
	count int    // hand-backs in a row with nothing sent in between
	at    time.Time
}

// accept takes connections from ln and serves each in a goroutine of its
// own; with sem, at most cap(sem) at a time. Temporary errors (out of
// descriptors) back off as net/http's Server does.
func (m *mux) accept(ctx context.Context, ln net.Listener, name string, sem chan struct{}, serve func(net.Conn)) {
	m.acceptWith(ctx, ln, name, sem, nil, func(c net.Conn, _ []byte) { serve(c) })
}

// acceptFast is accept for a listener with a fast path: fast, given a new
// connection and a buffer of its own, either deals with it at once (in
// the accept loop: no goroutine, no deadline) and returns true, or
// returns the bytes it read for serve, which continues in a goroutine.
func (m *mux) acceptFast(ctx context.Context, ln net.Listener, name string, fast func(net.Conn, []byte) (bool, []byte), serve func(net.Conn)) {
	if fast == nil {
		m.accept(ctx, ln, name, nil, serve)
		return
	}
	m.acceptWith(ctx, ln, name, nil, fast, func(c net.Conn, prefix []byte) { m.routeAfter(c, prefix) })
}

func (m *mux) acceptWith(ctx context.Context, ln net.Listener, name string, sem chan struct{}, fast func(net.Conn, []byte) (bool, []byte), serve func(net.Conn, []byte)) {
	var buf []byte
	if fast != nil {
		buf = make([]byte, m.heads.MaxHeadBytes)
		if len(buf) == 0 {
			buf = make([]byte, 64<<10)
		}
	}
	var delay time.Duration
	for {
		if sem != nil {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		c, err := ln.Accept()
		if err != nil {
			if sem != nil {
				<-sem
			}
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				return
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				m.log.Warn("accept", "listener", name, "err", err, "retry_in", delay)
				select {
				case <-time.After(delay):
				case <-ctx.Done():
					return
				}
				continue
			}
			m.log.Error("accept", "listener", name, "err", err)
			return
		}
		delay = 0
		var prefix []byte
		if fast != nil {
			var done bool
			if done, prefix = fast(c, buf); done {
				continue
			}
		}
		m.conns.Add(1)
		go func() {
			defer m.conns.Done()
			if sem != nil {
				defer func() { <-sem }()
			}
			serve(c, prefix)
		}()
	}
}

// routeFast is the multiplexer's fast path for a new plain connection:
// on a listener with TCP_DEFER_ACCEPT the request head has usually
// arrived with the connection, so one non-blocking read gets it whole;
// then the connection is routed and queued to its pool without a
// goroutine, a deadline or a timer of its own. Anything else (no bytes
// yet, a head that is incomplete or bad, an unknown host, a pool whose
// queue is full) returns what was read for the slow path, which reads on
// with the head timeout and answers errors, as for every connection
// before.
func (m *mux) routeFast(c net.Conn, buf []byte) (bool, []byte) {
	n := readNow(c, buf)
	if n <= 0 {
		return false, nil // nothing yet (or the client closed: the slow path sees it)
	}
	read := buf[:n]
	h, err := m.heads.ParseHead(read)
	if err != nil {
		return false, slices.Clone(read)
	}
	local := addrPort(c.LocalAddr())
	rt, ok := m.table.Lookup(local, h.Host)
	if !ok {
		return false, slices.Clone(read)
	}
	info := fdpass.ConnInfo{LocalAddr: c.LocalAddr(), RemoteAddr: c.RemoteAddr(), Listener: local.String()}
	if err := m.pools[rt.Pool].TrySendConn(c, read, info); err != nil {
		return false, slices.Clone(read)
	}
	c.Close()
	return true, nil
}

// readNow reads what has arrived on c into buf, in one non-blocking
// attempt: 0 when nothing has (or c is not a TCP connection).
func readNow(c net.Conn, buf []byte) int {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Read(func(fd uintptr) bool {
		n, _ = unix.Read(int(fd), buf)
		return true // one attempt: never wait here
	})
	return n
}

// routeAfter is route for a connection of which prefix was read.
func (m *mux) routeAfter(c net.Conn, prefix []byte) {
	defer c.Close()
	info := fdpass.ConnInfo{LocalAddr: c.LocalAddr(), RemoteAddr: c.RemoteAddr()}
	m.routeHeadAfter(c, info, prefix)
}

// route reads one request head from c and passes c on. c is closed here
// in every case: after a pass the worker holds its own descriptor.
func (m *mux) route(c net.Conn) {
	defer c.Close()
	info := fdpass.ConnInfo{LocalAddr: c.LocalAddr(), RemoteAddr: c.RemoteAddr()}
	m.routeHead(c, info)
}

// routeHead reads the head on c and passes c, with info, to the pool its
// route names.
func (m *mux) routeHead(c net.Conn, info fdpass.ConnInfo) {
	m.routeHeadAfter(c, info, nil)
}

// routeHeadAfter is routeHead for a connection of which prefix was read.
func (m *mux) routeHeadAfter(c net.Conn, info fdpass.ConnInfo, prefix []byte) {
	h, err := m.heads.ReadHeadAfter(c.(vhostroute.DeadlineReader), prefix)
	if err != nil {
		var he *vhostroute.HeadError
		if errors.As(err, &he) {
			if errors.Is(err, io.EOF) {
				return // connected and closed without a byte
			}
			writeAnswer(c, he.Status, he.Reason, nil)
			return
		}
		writeAnswer(c, http.StatusBadRequest, "bad request", nil)
		return
	}
	local := addrPort(info.LocalAddr)
	rt, ok := m.table.Lookup(local, h.Host)
	if !ok {
		writeAnswer(c, m.plan.UnknownHost, "no site here answers to "+strconv.Quote(h.Host), nil)
		return
	}
	info.Listener = local.String()
	if err := m.pass(c, rt, h.Raw, info, h.Host); err != nil {
		writeAnswer(c, http.StatusServiceUnavailable, "the site is busy; try again", retryAfter)
	}
}

// pass sends c with the bytes read to the pool of rt, waiting for a free
// worker up to the pool's queue timeout.
func (m *mux) pass(c net.Conn, rt *route, read []byte, info fdpass.ConnInfo, name string) error {
	wait := m.plan.QueueTimeout[rt.Pool]
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := m.pools[rt.Pool].SendConn(ctx, c, read, info)
	switch {
	case err == nil:
	case errors.Is(err, fdpass.ErrQueueFull):
		m.log.Warn("no worker in time", "pool", rt.Identity, "host", name, "wait", wait)
	default:
		m.log.Error("pass connection", "pool", rt.Identity, "host", name, "err", err)
	}
	return err
}

// handback routes a connection a worker returned. Nothing the worker
// sent with it is believed: only a TCP connection accepted on one of
// mpmd's listeners is taken, its addresses are the socket's own (a client
// address from a PROXY header is never taken from a worker), its head is
// read again, and a connection that keeps coming back with nothing sent
// on it is answered 508 and closed. The uid of the sending worker, as the
// kernel reports it, bounds how many one identity has in flight.
func (m *mux) handback(c net.Conn) {
	defer c.Close()
	fc, ok := c.(*fdpass.Conn)
	if !ok {
		return
	}
	who := "an unknown process"
	if p := fc.Info().Peer; p != nil {
		who = m.identityOf(p.UID)
		release, ok := m.handbackSlot(p.UID)
		if !ok {
			m.log.Warn("refused a hand-back: too many in flight from one identity", "from", who, "limit", maxHandbacks)
			writeAnswer(fc, http.StatusServiceUnavailable, "the site is busy; try again", retryAfter)
			return
		}
		defer release()
	}
	tc, ok := fc.NetConn().(*net.TCPConn)
	if !ok {
		m.log.Warn("refused a hand-back that is not a TCP connection", "from", who, "type", fmt.Sprintf("%T", fc.NetConn()))
		return
	}
	local, remote := addrPort(tc.LocalAddr()), addrPort(tc.RemoteAddr())
	cookie, sent, err := handbackSocket(tc)
	if err == nil && (!remote.IsValid() || !m.listening.contains(local)) {
		err = fmt.Errorf("local address %v is not one of mpmd's listeners", local)
	}
	if err != nil {
		m.log.Warn("refused a hand-back", "from", who, "err", err)
		return
	}
	info := fdpass.ConnInfo{LocalAddr: tc.LocalAddr(), RemoteAddr: tc.RemoteAddr()}
	if m.isProxyListener(local) {
		// The client address is the one this multiplexer (or another)
		// sealed for this socket when it passed it, or none at all:
		// routed with the proxy's own address, every client would be
		// the proxy.
		client, ok := m.handbackProxy(fc.Info(), cookie, local)
		if !ok {
			m.log.Warn("refused a hand-back from a PROXY listener without a valid seal", "from", who, "remote", remote)
			return
		}
		info.ProxyClient, info.Seal = client, fc.Info().Seal
	}
	if n := m.noteBounce(cookie, sent); n > maxBounces {
		m.log.Warn("a connection keeps coming back unserved; closing it", "from", who, "remote", remote, "bounces", n)
		writeAnswer(fc, http.StatusLoopDetected, "this request went round between servers without an answer", nil)
		return
	}
	m.routeHead(fc, info)
}

// handbackSlot takes a place among the hand-backs in flight from uid.
func (m *mux) handbackSlot(uid uint32) (release func(), ok bool) {
	m.mu.Lock()
	sem := m.handbacks[uid]
	if sem == nil {
		sem = make(chan struct{}, maxHandbacks)
		m.handbacks[uid] = sem
	}
	m.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, true
	default:
		return nil, false
	}
}

// identityOf names the identity that runs as uid, for the log.
func (m *mux) identityOf(uid uint32) string {
	if name, ok := m.plan.UIDs[uid]; ok {
		return name
	}
	return fmt.Sprintf("uid %d", uid)
}

// handbackSocket checks that tc is a connected TCP socket (not a
// listening one) and returns its cookie, which names the connection in
// every process holding it, and the bytes sent on it so far.
func handbackSocket(tc *net.TCPConn) (cookie, sent uint64, err error) {
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		var listening int
		if listening, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ACCEPTCONN); serr != nil {
			serr = os.NewSyscallError("getsockopt(SO_ACCEPTCONN)", serr)
			return
		}
		if listening != 0 {
			serr = errors.New("a listening socket")
			return
		}
		if cookie, serr = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE); serr != nil {
			serr = os.NewSyscallError("getsockopt(SO_COOKIE)", serr)
			return
		}
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			serr = os.NewSyscallError("getsockopt(TCP_INFO)", err)
			return
		}
		sent = info.Bytes_sent
	})
	return cookie, sent, errors.Join(cerr, serr)
}

// noteBounce records a hand-back of the connection cookie, with sent
// bytes sent on it so far, and returns how many hand-backs in a row came
// with nothing sent since the previous one.
func (m *mux) noteBounce(cookie, sent uint64) int {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	b, seen := m.bounces[cookie]
	if seen && b.sent == sent && now.Sub(b.at) < bounceMemory {
		b.count++
	} else {
		b.count = 0
	}
	b.sent, b.at = sent, now
	if len(m.bounces) >= bounceRecords {
		for k, old := range m.bounces {
			if now.Sub(old.at) >= bounceMemory || len(m.bounces) >= bounceRecords {
				delete(m.bounces, k)
			}
		}
	}
	m.bounces[cookie] = b
	return b.count
}

func localAddrPort(c net.Conn) netip.AddrPort { return addrPort(c.LocalAddr()) }
