package fdpass

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gompm/mpm/internal/procstatus"
	"golang.org/x/sys/unix"
)

// sharedPair returns a sending Socket and the receiving end as a file
// made from a blocking descriptor, as a pool's worker inherits it.
func sharedPair(t *testing.T) (*Socket, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	sf := os.NewFile(uintptr(fds[0]), "send")
	send, err := FileSocket(sf)
	sf.Close()
	if err != nil {
		unix.Close(fds[1])
		t.Fatal(err)
	}
	recv := os.NewFile(uintptr(fds[1]), "recv")
	t.Cleanup(func() { send.Close(); recv.Close() })
	return send, recv
}

func shared(t *testing.T, f *os.File) *Socket {
	t.Helper()
	s, err := SharedFileSocket(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A shared socket carries connections both ways (a worker hands one
// back on it), leaves the socket's O_NONBLOCK flag as it found it, and
// closes every descriptor it opened.
func TestSharedRoundTrip(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	send, recv := sharedPair(t)
	s := shared(t, recv)

	client, server := tcpPair(t)
	if err := send.SendConn(ctx, server, []byte("GET / HTTP/1.1\r\n"), ConnInfo{Listener: "127.0.0.1:80"}); err != nil {
		t.Fatal(err)
	}
	server.Close()
	c, err := s.RecvConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exchange(t, client, c, "GET / HTTP/1.1\r\n")
	if got := c.Info().Listener; got != "127.0.0.1:80" {
		t.Errorf("Info().Listener = %q", got)
	}
	// And back, as a worker hands a connection back to a multiplexer.
	if err := s.SendConn(ctx, c, []byte("rest"), c.Info()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	back, err := send.RecvConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exchange(t, client, back, "rest")
	back.Close()

	flags, err := unix.FcntlInt(recv.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.O_NONBLOCK != 0 {
		t.Errorf("the shared socket's description became non-blocking (flags %#x): every process sharing it would see that", flags)
	}
}

func TestSharedRefusesStream(t *testing.T) {
	checkLeaks(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	defer a.Close()
	defer b.Close()
	if s, err := SharedFileSocket(a); err == nil {
		s.Close()
		t.Fatal("SharedFileSocket accepted a stream socket")
	} else {
		t.Log(err)
	}
}

// Close wakes a receive blocked on a shared socket, deadlines and
// cancellation end one, and a listener over it closes cleanly.
func TestSharedCloseAndDeadlines(t *testing.T) {
	checkLeaks(t)
	send, recv := sharedPair(t)
	s := shared(t, recv)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := s.Recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Recv past its deadline = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Recv with a 30ms deadline returned after %v", d)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, _, err := s.Recv(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Recv = %v, want context.Canceled", err)
	}
	// After both, the socket still receives.
	go func() {
		time.Sleep(20 * time.Millisecond)
		send.Send(context.Background(), []byte("late"))
	}()
	if p, _, err := s.Recv(testCtx(t)); err != nil || string(p) != "late" {
		t.Fatalf("Recv after earlier deadlines = %q, %v", p, err)
	}

	ln := NewListener(shared(t, recv))
	done := make(chan error, 1)
	go func() { _, err := ln.Accept(); done <- err }()
	time.Sleep(20 * time.Millisecond)
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake a blocked Accept within 5s")
	}
}

// Each message wakes one of many waiting receivers, not all of them (the
// thundering herd a pool of idle workers would otherwise be). Every
// receiver has its own epoll instance, as each worker process does. A
// receiver woken for nothing goes back to sleep inside epoll_wait
// without returning, so the test counts the process's context switches:
// with 8 receivers waiting, a message must cost about what it costs with
// one, not 7 more.
func TestSharedWakesOneReceiver(t *testing.T) {
	checkLeaks(t)
	const messages = 100
	one := sharedRun(t, 1, messages)
	eight := sharedRun(t, 8, messages)
	extra := (float64(eight) - float64(one)) / messages // uint64s: eight may be the smaller
	t.Logf("context switches per message: %.1f with 1 receiver waiting, %.1f with 8", float64(one)/messages, float64(eight)/messages)
	if extra > 3.5 {
		t.Errorf("each message cost %.1f more context switches with 8 receivers waiting than with 1: idle receivers wake for messages that one of them takes", extra)
	}
}

// sharedRun sends messages one at a time to n receivers waiting on one
// shared socket and returns the context switches it took.
func sharedRun(t *testing.T, n, messages int) uint64 {
	send, recv := sharedPair(t)
	var socks []*Socket
	for range n {
		socks = append(socks, shared(t, recv))
	}
	got := make(chan string, messages)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for _, s := range socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p, _, err := s.Recv(ctx)
				if err != nil {
					return
				}
				got <- string(p)
			}
		}()
	}
	// Let every receiver block in epoll_wait, then send one message at a
	// time, each after the previous one was taken.
	time.Sleep(100 * time.Millisecond)
	before := wakeups(t)
	for i := range messages {
		if err := send.Send(testCtx(t), fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d was not received within 5s", i)
		}
		time.Sleep(time.Millisecond) // the receiver goes back to waiting
	}
	return wakeups(t) - before
}

// wakeups is the number of times the threads of this process gave up the
// CPU to wait: a receiver woken and put back to sleep inside epoll_wait
// counts there even though its epoll_wait did not return.
func wakeups(t *testing.T) uint64 {
	t.Helper()
	n, _, err := procstatus.Wakeups(0)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A deadline set after Close (a context cancelled late does that) must
// not write to the eventfd's old number, which may belong to another
// file by then.
func TestSharedDeadlineAfterClose(t *testing.T) {
	_, recv := sharedPair(t)
	s, err := SharedFileSocket(recv)
	if err != nil {
		t.Fatal(err)
	}
	c := s.uc.(*exclusiveConn)
	old := c.evfd
	s.Close()
	// Take the freed numbers with socket pairs until one end lands on
	// old; whatever is written to that end arrives at the other.
	peer := -1
	for range 8 {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fds[0])
		defer unix.Close(fds[1])
		if fds[0] == old {
			peer = fds[1]
		} else if fds[1] == old {
			peer = fds[0]
		}
		if peer >= 0 {
			break
		}
	}
	if peer < 0 {
		t.Fatalf("no socket got the eventfd's old number %d", old)
	}
	c.SetReadDeadline(time.Unix(1, 0))
	var b [16]byte
	if n, err := unix.Read(peer, b[:]); n > 0 {
		t.Fatalf("SetReadDeadline after Close wrote %d bytes into the socket that now has the eventfd's number", n)
	} else if err != unix.EAGAIN {
		t.Fatalf("read the socket: %d, %v; want nothing to read", n, err)
	}
}

// A receiver that is closed just as a message arrives must not take the
// message's wake-up with it. EPOLLEXCLUSIVE wakes one waiting receiver
// per message: if the one woken sees it was closed and returns without
// reading, the message stays queued and no other receiver hears of it
// until the next message comes (a multiplexer stopping after an upgrade
// or a reload left a handed-back connection stuck that way). The closed
// receiver either returns the message or leaves it to another, awake.
func TestSharedCloseKeepsWakeup(t *testing.T) {
	checkLeaks(t)
	lost := 0
	const rounds = 100
	for i := range rounds {
		send, recv := sharedPair(t)
		first, err := SharedFileSocket(recv) // registered first: the one woken
		if err != nil {
			t.Fatal(err)
		}
		other := shared(t, recv)
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan string, 2)
		var wg sync.WaitGroup
		for _, s := range []*Socket{first, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if p, _, err := s.Recv(ctx); err == nil {
					got <- string(p)
				}
			}()
		}
		time.Sleep(10 * time.Millisecond) // both wait in epoll_wait
		if err := send.Send(testCtx(t), fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
		first.Close()
		select {
		case <-got:
		case <-time.After(time.Second):
			lost++
		}
		cancel()
		wg.Wait()
	}
	if lost > 0 {
		t.Errorf("%d of %d messages sent as a receiver closed were taken by nobody", lost, rounds)
	}
}
