package fdpass

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/internal/testenv"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	deadline := time.Now().Add(20 * time.Second)
	client.SetDeadline(deadline)
	return client, server
}

// unixStreamPair returns the two ends of a unix stream connection.
func unixStreamPair(t testing.TB) (a, b net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "unix")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b = conn(fds[0]), conn(fds[1])
	t.Cleanup(func() { a.Close(); b.Close() })
	a.SetDeadline(time.Now().Add(20 * time.Second))
	return a, b
}

// passThrough sends c with read and info from a to b and returns what b
// received. The sender's copy is closed, as a multiplexer would.
func passThrough(t *testing.T, c net.Conn, read []byte, info ConnInfo) *Conn {
	t.Helper()
	ctx := testCtx(t)
	a, b := pair(t, unix.SOCK_SEQPACKET)
	if err := a.SendConn(ctx, c, read, info); err != nil {
		t.Fatalf("SendConn: %v", err)
	}
	c.Close()
	rc, err := b.RecvConn(ctx)
	if err != nil {
		t.Fatalf("RecvConn: %v", err)
	}
	t.Cleanup(func() { rc.Close() })
	rc.SetDeadline(time.Now().Add(20 * time.Second))
	return rc
}

// exchange checks that rc reads want followed by what client writes
// next, and that what rc writes reaches client.
func exchange(t *testing.T, client net.Conn, rc net.Conn, want string) {
	t.Helper()
	if _, err := client.Write([]byte(" world")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want)+len(" world"))
	if _, err := io.ReadFull(rc, got); err != nil {
		t.Fatalf("read from the received conn: %v (got %q)", err, got)
	}
	if string(got) != want+" world" {
		t.Errorf("received conn read %q, want %q", got, want+" world")
	}
	if _, err := rc.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 5)
	if _, err := io.ReadFull(client, reply); err != nil || string(reply) != "reply" {
		t.Fatalf("client read %q, %v; want \"reply\"", reply, err)
	}
}

func TestSendConnTCP(t *testing.T) {
	checkLeaks(t)
	client, server := tcpPair(t)
	client.Write([]byte("hello"))
	head := make([]byte, 5)
	server.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(server, head); err != nil {
		t.Fatal(err)
	}
	rc := passThrough(t, server, head, ConnInfo{Listener: "https", TLS: true})
	exchange(t, client, rc, "hello")

	if got, want := rc.RemoteAddr().String(), client.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr = %s, want the client's %s", got, want)
	}
	if got, want := rc.LocalAddr().String(), client.RemoteAddr().String(); got != want {
		t.Errorf("LocalAddr = %s, want %s", got, want)
	}
	info := rc.Info()
	if info.Queued <= 0 || info.Queued > time.Minute {
		t.Errorf("Queued = %v, want the short time the pass took", info.Queued)
	}
	info.Queued = 0
	want := ConnInfo{
		Listener:   "https",
		TLS:        true,
		LocalAddr:  client.RemoteAddr(),
		RemoteAddr: client.LocalAddr(),
	}
	if diff := cmp.Diff(want, info, cmp.Comparer(func(a, b net.Addr) bool {
		return a.Network() == b.Network() && a.String() == b.String()
	}), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("Info mismatch (-want +got):\n%s", diff)
	}
	if _, ok := rc.NetConn().(*net.TCPConn); !ok {
		t.Errorf("NetConn is a %T, want *net.TCPConn", rc.NetConn())
	}
	if err := rc.CloseWrite(); err != nil {
		t.Errorf("CloseWrite: %v", err)
	}
	if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("client read after CloseWrite = %d, %v; want EOF", n, err)
	}
}

func TestSendConnProxyClient(t *testing.T) {
	checkLeaks(t)
	client, server := tcpPair(t)
	proxied := netip.MustParseAddrPort("[2001:db8::7]:51234")
	rc := passThrough(t, server, nil, ConnInfo{ProxyClient: proxied, Listener: "7"})
	if got := rc.RemoteAddr().String(); got != proxied.String() {
		t.Errorf("RemoteAddr = %s, want the PROXY client %s", got, proxied)
	}
	if got, want := rc.LocalAddr().String(), client.RemoteAddr().String(); got != want {
		t.Errorf("LocalAddr = %s, want the socket's %s", got, want)
	}
	if got := rc.Info().ProxyClient; got != proxied {
		t.Errorf("Info().ProxyClient = %v", got)
	}
	if err := (&Socket{desc: "x"}).SendConn(context.Background(), server, nil, ConnInfo{RemoteAddr: &Addr{Net: "tcp", Addr: strings.Repeat("x", 600)}}); err == nil || !strings.Contains(err.Error(), "remote address is 600 bytes") {
		t.Errorf("SendConn with a 600-byte address = %v, want it refused", err)
	}
}

// TestSendConnUnix: an unnamed unix socket has no addresses of its own;
// the sender's stand in.
func TestSendConnUnix(t *testing.T) {
	checkLeaks(t)
	client, server := unixStreamPair(t)
	remote := &net.UnixAddr{Name: "/run/client.sock", Net: "unix"}
	rc := passThrough(t, server, []byte("hi"), ConnInfo{RemoteAddr: remote})
	exchange(t, client, rc, "hi")
	if got := rc.RemoteAddr(); got.String() != remote.Name || got.Network() != "unix" {
		t.Errorf("RemoteAddr = %v (%s), want %v", got, got.Network(), remote)
	}
}

// wrapped is a connection wrapper of the kind a multiplexer uses.
type wrapped struct{ net.Conn }

func (w wrapped) NetConn() net.Conn { return w.Conn }

// opaque hides the socket completely.
type opaque struct{ net.Conn }

func TestSendConnWrapped(t *testing.T) {
	checkLeaks(t)
	client, server := tcpPair(t)
	rc := passThrough(t, wrapped{wrapped{server}}, []byte("abc"), ConnInfo{})
	exchange(t, client, rc, "abc")

	a, _ := pair(t, unix.SOCK_SEQPACKET)
	_, server2 := tcpPair(t)
	ctx := testCtx(t)
	if err := a.SendConn(ctx, opaque{server2}, nil, ConnInfo{}); err == nil || !strings.Contains(err.Error(), "fdpass.opaque") {
		t.Errorf("SendConn(opaque) = %v, want an error naming the type", err)
	}
	if err := a.SendConn(ctx, tls.Server(server2, &tls.Config{}), nil, ConnInfo{}); err == nil || !strings.Contains(err.Error(), "*tls.Conn") {
		t.Errorf("SendConn(*tls.Conn) = %v, want it refused", err)
	}
	if err := a.SendConn(ctx, server2, make([]byte, MaxPayload+1), ConnInfo{}); err == nil || !strings.Contains(err.Error(), "MaxPayload") {
		t.Errorf("SendConn with too many bytes = %v, want it refused", err)
	}
}

// TestSendConnAgain: a worker hands a received connection on (back to a
// multiplexer) after reading part of what came with it; the rest goes
// along.
func TestSendConnAgain(t *testing.T) {
	checkLeaks(t)
	client, server := tcpPair(t)
	first := passThrough(t, server, []byte("GET /a\r\n"), ConnInfo{Listener: "web"})
	b := make([]byte, 4)
	if _, err := io.ReadFull(first, b); err != nil || string(b) != "GET " {
		t.Fatalf("read %q, %v", b, err)
	}
	second := passThrough(t, first, []byte("GET "), first.Info())
	exchange(t, client, second, "GET /a\r\n")
	if second.Info().Listener != "web" {
		t.Errorf("listener %q lost on the second pass", second.Info().Listener)
	}
}

// readHead reads from c until the end of an HTTP request head, as a
// multiplexer does before it routes.
func readHead(c net.Conn) ([]byte, error) {
	buf := make([]byte, 0, 4096)
	for !bytes.Contains(buf, []byte("\r\n\r\n")) {
		if len(buf) == MaxPayload {
			return nil, errors.New("request head too large")
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):min(cap(buf), MaxPayload)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// multiplex accepts connections on ln, reads each one's request head and
// passes it on s, until ln is closed.
func multiplex(ln net.Listener, s *Socket) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		head, err := readHead(c)
		if err == nil {
			c.SetReadDeadline(time.Time{})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = s.SendConn(ctx, c, head, ConnInfo{Listener: "http"})
			cancel()
		}
		c.Close()
	}
}

type infoKey struct{}

// handler answers with what the worker knows about the request.
func handler(w http.ResponseWriter, r *http.Request) {
	info, _ := r.Context().Value(infoKey{}).(ConnInfo)
	fmt.Fprintf(w, "%d %s %s %s", os.Getpid(), r.RemoteAddr, info.Listener, r.URL.Path)
}

func connContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*Conn); ok {
		return context.WithValue(ctx, infoKey{}, fc.Info())
	}
	return ctx
}

// get sends requests for paths on one connection and returns the bodies.
func get(t *testing.T, addr string, paths ...string) (local string, bodies []string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	for _, p := range paths {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: example.test\r\n\r\n", p)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, string(b))
	}
	return c.LocalAddr().String(), bodies
}

// TestListenerHTTP serves HTTP with http.Server on connections that a
// multiplexer goroutine accepted, read the head of, and passed.
func TestListenerHTTP(t *testing.T) {
	checkLeaks(t)
	send, recv := pair(t, unix.SOCK_SEQPACKET)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go multiplex(ln, send)

	l := NewListener(recv)
	srv := &http.Server{Handler: http.HandlerFunc(handler), ConnContext: connContext}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	// Two requests on one connection: the first came with the passed
	// bytes, the second straight from the socket (keep-alive).
	local, bodies := get(t, ln.Addr().String(), "/one", "/two")
	for i, p := range []string{"/one", "/two"} {
		if want := fmt.Sprintf("%d %s http %s", os.Getpid(), local, p); bodies[i] != want {
			t.Errorf("response %d = %q, want %q", i, bodies[i], want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
}

func TestListenerCloseWakesAccept(t *testing.T) {
	checkLeaks(t)
	_, recv := pair(t, unix.SOCK_SEQPACKET)
	l := NewListener(recv)
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if c != nil {
			c.Close()
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let Accept block
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake Accept")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed listener = %v", err)
	}
}

// TestListenerSurvivesBadMessage: a refused message is a temporary Accept
// error, so that http.Server goes on; the end of all senders is not.
func TestListenerSurvivesBadMessage(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	send, recv := pair(t, unix.SOCK_SEQPACKET)
	l := NewListener(recv)
	defer l.Close()
	_, pw := pipe(t)
	if err := send.Send(ctx, []byte("not a connection"), pw); err != nil {
		t.Fatal(err)
	}
	_, err := l.Accept()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Temporary() || !errors.Is(err, ErrMalformed) {
		t.Fatalf("Accept of a data message = %v, want a temporary net.Error wrapping ErrMalformed", err)
	}
	client, server := tcpPair(t)
	if err := send.SendConn(ctx, server, []byte("ok"), ConnInfo{}); err != nil {
		t.Fatal(err)
	}
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	exchange(t, client, c, "ok")
	c.Close()

	send.Close()
	_, err = l.Accept()
	if !errors.Is(err, io.EOF) || (errors.As(err, &ne) && ne.Temporary()) {
		t.Fatalf("Accept after the senders closed = %v, want a permanent io.EOF", err)
	}
}

// TestHandoffAcrossProcesses: a worker process serves HTTP on connections
// this process accepted and passed, keep-alive included.
func TestHandoffAcrossProcesses(t *testing.T) {
	checkLeaks(t)
	send, recv := pair(t, unix.SOCK_SEQPACKET)
	f, err := recv.File()
	if err != nil {
		t.Fatal(err)
	}
	const conns, perConn = 3, 2
	p := testenv.Command(t, "serve-http", strconv.Itoa(conns*perConn))
	p.Cmd.ExtraFiles = []*os.File{f}
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	recv.Close()
	done := make(chan error, 1)
	var served int
	go func() { done <- p.Wait(&served) }()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go multiplex(ln, send)

	var pid string
	for i := range conns {
		local, bodies := get(t, ln.Addr().String(), "/a", "/b")
		for j, body := range bodies {
			fields := strings.Fields(body)
			if len(fields) != 4 || fields[1] != local || fields[2] != "http" {
				t.Errorf("conn %d response %d = %q, want pid, %s, http, path", i, j, body, local)
				continue
			}
			if fields[0] == strconv.Itoa(os.Getpid()) {
				t.Errorf("served by this process, not the worker")
			}
			pid = fields[0]
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not finish")
	}
	if served != conns*perConn {
		t.Errorf("worker %s served %d requests, want %d", pid, served, conns*perConn)
	}
}

// helperServeHTTP serves HTTP on the dispatch socket at fd 3 until it has
// answered args[0] requests.
func helperServeHTTP(args []string) (any, error) {
	want, err := strconv.Atoi(args[0])
	if err != nil {
		return nil, err
	}
	f := os.NewFile(3, "dispatch")
	s, err := FileSocket(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	var n atomic.Int64
	srv := &http.Server{ConnContext: connContext}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler(w, r)
		if n.Add(1) == int64(want) {
			// Shut down after this response is written.
			go srv.Shutdown(context.Background())
		}
	})
	stop := time.AfterFunc(30*time.Second, func() { srv.Close() })
	defer stop.Stop()
	if err := srv.Serve(NewListener(s)); err != http.ErrServerClosed {
		return nil, err
	}
	return n.Load(), nil
}

// TestPeerCredentials: with PassCred, a received connection says which
// process sent it, as the kernel reports it; without, it says nothing.
func TestPeerCredentials(t *testing.T) {
	checkLeaks(t)
	for _, pass := range []bool{true, false} {
		send, recv := pair(t, unix.SOCK_SEQPACKET)
		if pass {
			if err := recv.PassCred(); err != nil {
				t.Fatal(err)
			}
		}
		f, err := send.File()
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := testenv.Command(t, "send-conn", ln.Addr().String())
		p.Cmd.ExtraFiles = []*os.File{f}
		if err := p.Cmd.Start(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		send.Close()
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		rc, err := recv.RecvConn(ctx)
		cancel()
		if err := p.Wait(nil); err != nil {
			t.Fatal(err)
		}
		ln.Close()
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
		peer := rc.Info().Peer
		switch {
		case pass && (peer == nil || int(peer.PID) != p.Cmd.Process.Pid || int(peer.UID) != os.Getuid() || int(peer.GID) != os.Getgid()):
			t.Errorf("with PassCred: Peer = %+v, want pid %d uid %d gid %d", peer, p.Cmd.Process.Pid, os.Getuid(), os.Getgid())
		case !pass && peer != nil:
			t.Errorf("without PassCred: Peer = %+v, want nil", peer)
		}
	}
}

// helperSendConn dials args[0] and sends the connection on the socket at
// fd 3.
func helperSendConn(args []string) (any, error) {
	f := os.NewFile(3, "send")
	s, err := FileSocket(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	defer s.Close()
	c, err := net.Dial("tcp", args[0])
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return nil, s.SendConn(ctx, c, []byte("GET / HTTP/1.1\r\n\r\n"), ConnInfo{})
}

// TrySendConn queues a connection when there is room, and otherwise
// returns ErrQueueFull at once with nothing sent: the connection is still
// the sender's, and SendConn can wait for room.
func TestTrySendConn(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, unix.SOCK_SEQPACKET)
	client, server := tcpPair(t)
	if err := a.TrySendConn(server, []byte("GET / HTTP/1.1\r\n\r\n"), ConnInfo{Listener: "web"}); err != nil {
		t.Fatalf("TrySendConn with room: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := b.RecvConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	exchange(t, client, rc, "GET / HTTP/1.1\r\n\r\n")

	// Fill the queue, then try again: refused at once, nothing queued.
	big := make([]byte, 60<<10)
	for i := 0; ; i++ {
		if err := a.TrySendConn(server, big, ConnInfo{}); err != nil {
			if !errors.Is(err, ErrQueueFull) {
				t.Fatalf("TrySendConn on a full queue: %v, want ErrQueueFull", err)
			}
			break
		}
		if i > 10000 {
			t.Fatal("the queue never filled")
		}
	}
	start := time.Now()
	if err := a.TrySendConn(server, nil, ConnInfo{}); !errors.Is(err, ErrQueueFull) {
		t.Errorf("TrySendConn on a full queue: %v, want ErrQueueFull", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("TrySendConn on a full queue took %v: it must not wait", d)
	}
	// A stream socket is sent on with SendConn.
	s1, _ := pair(t, unix.SOCK_STREAM)
	if err := s1.TrySendConn(server, nil, ConnInfo{}); !errors.Is(err, ErrQueueFull) {
		t.Errorf("TrySendConn on a stream socket: %v, want ErrQueueFull", err)
	}
	// Drain what was queued (their descriptors).
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		c, err := b.RecvConn(ctx)
		cancel()
		if err != nil {
			break
		}
		c.Close()
	}
}
