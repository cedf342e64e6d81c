//go:build !cgo

package main

// A compromised worker: the tenant has taken over its own worker process
// (a bug in the worker, or in the Go runtime under it) and now holds what
// the worker holds, its pool's dispatch socket included. What it can do
// to the multiplexers, and through them to other sites, is bounded. The
// test binary's worker role runs rogueWorker for the pool named "rogue":
// the code such a tenant would run.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/fdpass"
	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/internal/testenv"
	"github.com/gompm/mpm/pool"
	"github.com/gompm/mpm/prefork"
)

const rogueUID = 2421

// testWorker is the worker role of the test binary: the real one, except
// for the rogue pool.
func testWorker(ctx context.Context, env *prefork.Env) error {
	if os.Getenv("MPM_POOL_NAME") == "rogue" {
		return rogueWorker(ctx, env)
	}
	return runWorker(ctx, env)
}

// rogueWorker takes connections and, by the path of their first request,
// abuses the hand-back channel:
//
//	/spoof   hand it back for victim.test with a forged client address
//	         and listener
//	/bounce  hand it back unserved, for rogue.test again, for ever
//	/hold    hand it back with half a request head, and never more
//	/truncate  shrink the pool's scoreboard to nothing, and answer
//	         with the error it got
//	/flood   hand back 300 sockets that are not client connections
//	         (unix socket pairs, TCP connections it made itself), then
//	         answer 200
func rogueWorker(ctx context.Context, env *prefork.Env) error {
	w, err := pool.Join(env)
	if err != nil {
		return err
	}
	sock, err := fdpass.SharedFileSocket(w.Dispatch)
	if err != nil {
		return err
	}
	hf, err := env.File("handback")
	if err != nil {
		return err
	}
	back, err := fdpass.SharedFileSocket(hf)
	if err != nil {
		return err
	}
	w.Idle()
	for {
		c, err := sock.RecvConn(ctx)
		if err != nil {
			return nil
		}
		go rogueServe(ctx, env, back, c)
	}
}

func rogueServe(ctx context.Context, env *prefork.Env, sock *fdpass.Socket, c *fdpass.Conn) {
	defer c.Close()
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	send := func(conn net.Conn, head string, info fdpass.ConnInfo) error {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return sock.SendConn(sctx, conn, []byte(head), info)
	}
	switch req.URL.Path {
	case "/spoof":
		send(c, "GET /addr.php HTTP/1.1\r\nHost: victim.test\r\n\r\n", fdpass.ConnInfo{
			Listener:    "10.9.9.9:443",
			LocalAddr:   net.TCPAddrFromAddrPort(netip.MustParseAddrPort("10.9.9.9:443")),
			RemoteAddr:  net.TCPAddrFromAddrPort(netip.MustParseAddrPort("198.51.100.1:1")),
			ProxyClient: netip.MustParseAddrPort("203.0.113.9:4444"),
		})
	case "/bounce":
		send(c, "GET /bounce HTTP/1.1\r\nHost: rogue.test\r\n\r\n", fdpass.ConnInfo{})
	case "/truncate":
		board, err := env.File("scoreboard")
		if err == nil {
			err = board.Truncate(0)
		}
		msg := fmt.Sprintf("truncate: %v\n", err)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(msg), msg)
	case "/hold":
		send(c, "GET / HTTP/1.1\r\n", fdpass.ConnInfo{})
	case "/flood":
		var wg sync.WaitGroup
		for i := range 300 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var conn net.Conn
				if i%2 == 0 {
					a, b, err := socketPair()
					if err != nil {
						return
					}
					defer b.Close()
					conn = a
				} else {
					d, err := net.Dial("tcp", c.LocalAddr().String())
					if err != nil {
						return
					}
					conn = d
				}
				defer conn.Close()
				send(conn, "GET /addr.php HTTP/1.1\r\nHost: victim.test\r\n\r\n", fdpass.ConnInfo{})
			}()
		}
		wg.Wait()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nflooded\n")
	}
}

func socketPair() (net.Conn, net.Conn, error) {
	a, b, err := fdpass.Socketpair(unix.SOCK_STREAM)
	if err != nil {
		return nil, nil, err
	}
	fa, err := a.File()
	a.Close()
	if err != nil {
		b.Close()
		return nil, nil, err
	}
	defer fa.Close()
	ca, err := net.FileConn(fa)
	if err != nil {
		b.Close()
		return nil, nil, err
	}
	return ca, sockCloser{b}, nil
}

type sockCloser struct{ s *fdpass.Socket }

func (s sockCloser) Read([]byte) (int, error)         { return 0, io.EOF }
func (s sockCloser) Write(b []byte) (int, error)      { return len(b), nil }
func (s sockCloser) Close() error                     { return s.s.Close() }
func (s sockCloser) LocalAddr() net.Addr              { return nil }
func (s sockCloser) RemoteAddr() net.Addr             { return nil }
func (s sockCloser) SetDeadline(time.Time) error      { return nil }
func (s sockCloser) SetReadDeadline(time.Time) error  { return nil }
func (s sockCloser) SetWriteDeadline(time.Time) error { return nil }

func startRogue(t *testing.T) *hostile {
	testenv.RequireRoot(t)
	requirePHP(t)
	for _, id := range []int{rogueUID, victimUID, hostMuxID} {
		testenv.FreeID(t, id)
	}
	addr := freePort(t)
	sites := []testSite{
		{name: "rogue", uid: rogueUID},
		{name: "victim", uid: victimUID, pages: map[string]string{"addr.php": `<?php echo "victim saw ", $_SERVER["REMOTE_ADDR"];`}},
	}
	path := writeSites(t, addr, fmt.Sprintf("multiplexer_user = \"%d\"\nmultiplexer_group = \"%d\"\nheader_timeout = \"3s\"\n", hostMuxID, hostMuxID), sites)
	h := &hostile{d: startDaemon(t, addr, "-config", path), evil: sites[0], victim: sites[1]}
	t.Cleanup(func() { assertIdle(t, h.d) })
	return h
}

// A worker cannot make another site see a client address or listener it
// chose: the multiplexer takes both from the socket. (It took the
// ConnInfo of a hand-back as it came: REMOTE_ADDR was the forged
// 203.0.113.9 and the listener the forged one.)
func TestRogueWorkerSpoofsClient(t *testing.T) {
	h := startRogue(t)
	code, body := h.d.get("rogue.test", "/spoof")
	if want := "victim saw 127.0.0.1"; code != 200 || body != want {
		t.Errorf("victim's page through a forged hand-back: %d %q, want %q\n%s", code, body, want, h.d.out)
	}
}

// A worker cannot shrink its pool's scoreboard, which the root master
// maps: shrunk, the master's next read of it died of SIGBUS, and every
// site with it.
func TestRogueWorkerTruncatesScoreboard(t *testing.T) {
	h := startRogue(t)
	code, body := h.d.get("rogue.test", "/truncate")
	if code != 200 || body != "truncate: truncate scoreboard: operation not permitted\n" {
		t.Errorf("the rogue's truncate: %d %q", code, body)
	}
	time.Sleep(300 * time.Millisecond) // the master reads the boards every 100ms
	if code, body := h.d.get("victim.test", "/addr.php"); code != 200 || body != "victim saw 127.0.0.1" {
		t.Errorf("victim after the attack: %d %q\n%s", code, body, h.d.out)
	}
}

// A connection handed back unserved again and again is answered 508 and
// closed after a few rounds, and nothing keeps spinning. (The default
// vhost's loop once spun a multiplexer and a worker for good.)
func TestRogueWorkerBounces(t *testing.T) {
	h := startRogue(t)
	start := time.Now()
	resp, err := rawRequest(t, h.d.addr, "GET /bounce HTTP/1.1\r\nHost: rogue.test\r\n\r\n")
	if err != nil || resp.StatusCode != http.StatusLoopDetected {
		t.Errorf("a connection bounced by its worker: %v %v, want 508", resp, err)
	} else if d := time.Since(start); d > time.Second {
		t.Errorf("508 after %v, want it within a second", d)
	}
}

// Hand-backs of sockets that are no client connection are refused and
// closed at once; hand-backs that hold a multiplexer (half a head) are
// bounded in number; meanwhile the victim answers as usual, and the
// multiplexers are left with the descriptors they had.
func TestRogueWorkerFloods(t *testing.T) {
	h := startRogue(t)
	h.d.get("victim.test", "/addr.php")
	_, muxes, _ := h.pids(t)
	before := map[int]int{}
	for _, pid := range muxes {
		fds, _ := procstatus.FDs(pid)
		before[pid] = len(fds)
	}
	if code, body := h.d.get("rogue.test", "/flood"); code != 200 || body != "flooded\n" {
		t.Fatalf("flood: %d %q\n%s", code, body, h.d.out)
	}
	// 200 connections whose worker hands them back with half a head:
	// each would hold a multiplexer's goroutine and descriptor until the
	// header timeout.
	var holders []net.Conn
	for range 200 {
		c, err := net.Dial("tcp", h.d.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /hold HTTP/1.1\r\nHost: rogue.test\r\n\r\n")
		holders = append(holders, c)
	}
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	if code, body := h.d.get("victim.test", "/addr.php"); code != 200 || !strings.HasPrefix(body, "victim saw 127.0.0.1") {
		t.Errorf("victim during the flood: %d %q", code, body)
	} else if d := time.Since(start); d > time.Second {
		t.Errorf("victim answered after %v during the flood, want within a second", d)
	}
	for _, pid := range muxes {
		fds, err := procstatus.FDs(pid)
		if err != nil {
			t.Fatalf("multiplexer %d: %v", pid, err)
		}
		if n := len(fds) - before[pid]; n > maxHandbacks+8 {
			t.Errorf("multiplexer %d holds %d descriptors more than before the flood, want at most %d (hand-backs in flight are bounded)", pid, n, maxHandbacks+8)
		}
	}
	for _, c := range holders {
		c.Close()
	}
	if refused := strings.Count(h.d.out.String(), "refused a hand-back"); refused < 250 {
		t.Errorf("the multiplexers logged %d refused hand-backs, want the 300 sockets that are not client connections", refused)
	}
	time.Sleep(3500 * time.Millisecond) // the held hand-backs time out before assertIdle
}
