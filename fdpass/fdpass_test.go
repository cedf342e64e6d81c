package fdpass

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gompm/mpm/internal/procstatus"
	"github.com/gompm/mpm/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m, helpers)
}

var helpers = map[string]testenv.Helper{
	"recv-count": helperRecvCount,
	"serve-http": helperServeHTTP,
	"send-conn":  helperSendConn,
}

// types are the socket types every generic test runs on.
var types = []struct {
	name string
	typ  int
}{{"seqpacket", unix.SOCK_SEQPACKET}, {"stream", unix.SOCK_STREAM}}

// testCtx is a context that ends well before the test's own timeout, so
// that a stuck operation fails the test instead of hanging it.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkLeaks records the open descriptors now and, when the test ends
// (after the cleanups registered later, which close its sockets), fails
// it if any new one is still open. Tests that use it do not run in
// parallel with others.
func checkLeaks(t testing.TB) {
	t.Helper()
	// The first socket of the process makes the runtime open its poller's
	// descriptors; open and close one so that they are not counted.
	a, b, err := Socketpair(unix.SOCK_SEQPACKET)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	before, err := procstatus.FDs(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var extra []string
		// Descriptors close synchronously, but a connection served by a
		// goroutine that is still winding down may close a moment late.
		for end := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			after, err := procstatus.FDs(0)
			if err != nil {
				t.Error(err)
				return
			}
			extra = extra[:0]
			for fd, target := range after {
				if before[fd] != target {
					extra = append(extra, fmt.Sprintf("%d -> %s", fd, target))
				}
			}
			if len(extra) == 0 || time.Now().After(end) {
				break
			}
		}
		if len(extra) > 0 {
			slices.Sort(extra)
			t.Errorf("descriptors leaked: %s", strings.Join(extra, ", "))
		}
	})
}

func pair(t testing.TB, typ int) (*Socket, *Socket) {
	t.Helper()
	a, b, err := Socketpair(typ)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func pipe(t testing.TB) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// sameFile reports whether a and b are descriptors of the same object.
func sameFile(t testing.TB, a, b *os.File) bool {
	t.Helper()
	var sa, sb unix.Stat_t
	if err := fstat(a, &sa); err != nil {
		t.Fatal(err)
	}
	if err := fstat(b, &sb); err != nil {
		t.Fatal(err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

func fstat(f *os.File, st *unix.Stat_t) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), st) }); err != nil {
		return err
	}
	return serr
}

func cloexec(t testing.TB, f *os.File) bool {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFD, 0) })
	if ferr != nil {
		t.Fatal(ferr)
	}
	return flags&unix.FD_CLOEXEC != 0
}

func TestSendRecv(t *testing.T) {
	for _, tt := range types {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			ctx := testCtx(t)
			a, b := pair(t, tt.typ)
			pr, pw := pipe(t)
			tmp, err := os.Create(filepath.Join(t.TempDir(), "f"))
			if err != nil {
				t.Fatal(err)
			}
			defer tmp.Close()

			for _, size := range []int{0, 1, 1024, 8 << 10, MaxPayload} {
				payload := bytes.Repeat([]byte{byte(size)}, size)
				if err := a.Send(ctx, payload, pw, tmp); err != nil {
					t.Fatalf("Send(%d bytes, 2 files): %v", size, err)
				}
				got, files, err := b.Recv(ctx)
				if err != nil {
					t.Fatalf("Recv after a %d-byte send: %v", size, err)
				}
				if !bytes.Equal(got, payload) {
					t.Errorf("payload of %d bytes came back as %d bytes", size, len(got))
				}
				if len(files) != 2 {
					closeAll(files)
					t.Fatalf("got %d files, want 2", len(files))
				}
				if !sameFile(t, files[0], pw) || !sameFile(t, files[1], tmp) {
					t.Errorf("received files are not the ones sent")
				}
				for _, f := range files {
					if !cloexec(t, f) {
						t.Errorf("received descriptor %s is not close-on-exec", f.Name())
					}
				}
				// The received pipe end is usable.
				if _, err := files[0].Write([]byte("x")); err != nil {
					t.Fatal(err)
				}
				var one [1]byte
				if _, err := io.ReadFull(pr, one[:]); err != nil || one[0] != 'x' {
					t.Fatalf("read what the received pipe end wrote: %q, %v", one, err)
				}
				closeAll(files)
			}
		})
	}
}

func TestSendLimits(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	a, b := pair(t, unix.SOCK_SEQPACKET)
	_, pw := pipe(t)

	if err := a.Send(ctx, make([]byte, MaxPayload+1)); err == nil || !strings.Contains(err.Error(), "MaxPayload") {
		t.Errorf("Send(MaxPayload+1 bytes) = %v, want an error naming MaxPayload", err)
	}
	many := slices.Repeat([]*os.File{pw}, MaxFDs+1)
	if err := a.Send(ctx, nil, many...); err == nil || !strings.Contains(err.Error(), "MaxFDs") {
		t.Errorf("Send(MaxFDs+1 files) = %v, want an error naming MaxFDs", err)
	}
	if err := a.Send(ctx, []byte("max"), many[:MaxFDs]...); err != nil {
		t.Fatalf("Send(MaxFDs files): %v", err)
	}
	_, files, err := b.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(files)
	if len(files) != MaxFDs {
		t.Errorf("got %d files, want %d", len(files), MaxFDs)
	}
}

// rawPeer is a plain socket connected to a Socket, for writing messages
// this package would never send.
type rawPeer struct {
	t *testing.T
	f *os.File
}

func rawPair(t *testing.T, typ int) (*rawPeer, *Socket) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	raw := os.NewFile(uintptr(fds[0]), "raw")
	other := os.NewFile(uintptr(fds[1]), "other")
	defer other.Close()
	s, err := FileSocket(other)
	if err != nil {
		raw.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close(); s.Close() })
	return &rawPeer{t, raw}, s
}

func (p *rawPeer) send(b []byte, files ...*os.File) {
	p.t.Helper()
	var rcs []syscall.RawConn
	for _, f := range files {
		rc, err := f.SyscallConn()
		if err != nil {
			p.t.Fatal(err)
		}
		rcs = append(rcs, rc)
	}
	rc, err := p.f.SyscallConn()
	if err != nil {
		p.t.Fatal(err)
	}
	err = withFDs(append(rcs, rc), nil, func(fds []int) error {
		var oob []byte
		if len(files) > 0 {
			oob = unix.UnixRights(fds[:len(files)]...)
		}
		return unix.Sendmsg(fds[len(files)], b, oob, nil, 0)
	})
	if err != nil {
		p.t.Fatalf("sendmsg of %d bytes, %d fds: %v", len(b), len(files), err)
	}
}

func frame(kind, nfds byte, body []byte) []byte {
	b := appendHeader(nil, header{kind: kind, nfds: nfds, bodyLen: uint32(len(body))})
	return append(b, body...)
}

func goodConnBody() []byte {
	return appendConnBody(nil, &connMeta{listener: "web", remoteNet: "tcp", remoteAddr: "192.0.2.1:1234"}, []byte("GET /"))
}

// TestRecvRefuses sends messages that break the format in each way a
// receiver checks, each with descriptors attached, and checks that the
// receiver refuses it with the right error, closes every descriptor that
// came with it, and still receives the next good message.
func TestRecvRefuses(t *testing.T) {
	_, pw := pipe(t)
	fds := func(n int) []*os.File { return slices.Repeat([]*os.File{pw}, n) }
	bad := func(b []byte, at int, v byte) []byte { b = slices.Clone(b); b[at] = v; return b }
	data := frame(kindData, 2, []byte("payload"))
	tests := []struct {
		name  string
		msg   []byte
		files []*os.File
		conn  bool // receive with RecvConn
		want  error
		text  string
	}{
		{name: "bad magic", msg: bad(data, 0, 'X'), files: fds(2), want: ErrMalformed, text: "bad magic"},
		{name: "version 1", msg: bad(data, 4, 1), files: fds(2), want: ErrVersion, text: "version 1"},
		{name: "version 3", msg: bad(data, 4, 3), files: fds(2), want: ErrVersion, text: "version 3"},
		{name: "unknown kind", msg: bad(data, 5, 9), files: fds(2), want: ErrMalformed, text: "kind 9"},
		{name: "reserved byte", msg: bad(data, 7, 1), files: fds(2), want: ErrMalformed, text: "reserved"},
		{name: "short header", msg: data[:7], files: fds(1), want: ErrMalformed, text: "shorter than"},
		{name: "body shorter than announced", msg: data[:len(data)-1], files: fds(2), want: ErrTruncated, text: "announces a 7-byte body, 6"},
		{name: "body longer than announced", msg: append(slices.Clone(data), 'x'), files: fds(2), want: ErrMalformed, text: "announces a 7-byte body, 8"},
		{name: "more descriptors than announced", msg: data, files: fds(3), want: ErrTooManyFDs, text: "announces 2 descriptors, 3 arrived"},
		{name: "fewer descriptors than announced", msg: data, files: fds(1), want: ErrMalformed, text: "announces 2 descriptors, 1 arrived"},
		{name: "more than MaxFDs (MSG_CTRUNC)", msg: frame(kindData, MaxFDs+1, nil), files: fds(MaxFDs + 1), want: ErrTooManyFDs, text: "MSG_CTRUNC"},
		{name: "header announces more than MaxFDs", msg: frame(kindData, MaxFDs+1, nil), files: fds(1), want: ErrTooManyFDs, text: "more than 16"},
		{name: "larger than a receiver accepts (MSG_TRUNC)", msg: frame(kindData, 1, make([]byte, maxFrame)), files: fds(1), want: ErrTruncated, text: "MSG_TRUNC"},
		{name: "data payload over MaxPayload", msg: frame(kindData, 1, make([]byte, MaxPayload+1)), files: fds(1), want: ErrMalformed, text: "exceeds"},
		{name: "connection where data expected", msg: frame(kindConn, 1, goodConnBody()), files: fds(1), want: ErrMalformed, text: "connection message where a data message"},
		{name: "data where connection expected", msg: data, files: fds(2), conn: true, want: ErrMalformed, text: "data message where a connection"},
		{name: "connection with two descriptors", msg: frame(kindConn, 2, goodConnBody()), files: fds(2), conn: true, want: ErrMalformed, text: "not 1"},
		{name: "connection with a pipe", msg: frame(kindConn, 1, goodConnBody()), files: fds(1), conn: true, want: ErrMalformed, text: "not a socket"},
		{name: "connection body cut short", msg: frame(kindConn, 1, goodConnBody()[:14]), files: fds(1), conn: true, want: ErrMalformed, text: "ends inside the local network"},
		{name: "connection body cut in the send time", msg: frame(kindConn, 1, goodConnBody()[:5]), files: fds(1), conn: true, want: ErrMalformed, text: "ends inside the send time"},
		{name: "connection unknown flag", msg: frame(kindConn, 1, bad(goodConnBody(), 0, 0x80)), files: fds(1), conn: true, want: ErrMalformed, text: "unknown bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			ctx := testCtx(t)
			raw, s := rawPair(t, unix.SOCK_SEQPACKET)
			raw.send(tt.msg, tt.files...)
			var err error
			if tt.conn {
				var c *Conn
				c, err = s.RecvConn(ctx)
				if c != nil {
					c.Close()
				}
			} else {
				var files []*os.File
				_, files, err = s.Recv(ctx)
				closeAll(files)
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("receive = %v, want an error wrapping %q that says %q", err, tt.want, tt.text)
			}
			// The socket goes on working.
			raw.send(frame(kindData, 1, []byte("next")), pw)
			p, files, err := s.Recv(ctx)
			closeAll(files)
			if err != nil || string(p) != "next" || len(files) != 1 {
				t.Fatalf("next Recv = %q, %d files, %v; want \"next\", 1 file", p, len(files), err)
			}
		})
	}
}

// TestRecvStreamErrors: on a stream socket a message cut short leaves the
// reader without its place, which it says from then on.
func TestRecvStreamErrors(t *testing.T) {
	_, pw := pipe(t)
	t.Run("ends inside a message", func(t *testing.T) {
		checkLeaks(t)
		ctx := testCtx(t)
		raw, s := rawPair(t, unix.SOCK_STREAM)
		msg := frame(kindData, 1, []byte("payload"))
		raw.send(msg[:len(msg)-2], pw)
		raw.f.Close()
		_, files, err := s.Recv(ctx)
		closeAll(files)
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("Recv = %v, want ErrTruncated", err)
		}
		_, _, err = s.Recv(ctx)
		if !errors.Is(err, errLostPlace) {
			t.Fatalf("second Recv = %v, want the lost-place error", err)
		}
	})
	t.Run("bad header", func(t *testing.T) {
		checkLeaks(t)
		ctx := testCtx(t)
		raw, s := rawPair(t, unix.SOCK_STREAM)
		raw.send(bytes.Repeat([]byte("junk"), 8), pw, pw)
		_, files, err := s.Recv(ctx)
		closeAll(files)
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("Recv = %v, want ErrMalformed", err)
		}
		if _, _, err := s.Recv(ctx); !errors.Is(err, errLostPlace) {
			t.Fatalf("second Recv = %v, want the lost-place error", err)
		}
	})
	t.Run("messages back to back", func(t *testing.T) {
		checkLeaks(t)
		ctx := testCtx(t)
		raw, s := rawPair(t, unix.SOCK_STREAM)
		// Two messages in one write: the second's descriptor arrives
		// with the first's bytes, which the receiver must refuse.
		raw.send(append(frame(kindData, 0, []byte("one")), frame(kindData, 1, []byte("two"))...), pw)
		_, files, err := s.Recv(ctx)
		closeAll(files)
		if !errors.Is(err, ErrTooManyFDs) {
			t.Fatalf("Recv = %v, want ErrTooManyFDs", err)
		}
	})
}

func TestRecvEOF(t *testing.T) {
	for _, tt := range types {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			a, b := pair(t, tt.typ)
			a.Close()
			_, _, err := b.Recv(testCtx(t))
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Recv after the peer closed = %v, want io.EOF", err)
			}
		})
	}
}

// TestQueueFull fills the receiver's queue and checks that a send waits
// for its context, says why it failed, and succeeds once a receiver takes
// a message.
func TestQueueFull(t *testing.T) {
	for _, tt := range types {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			a, b := pair(t, tt.typ)
			_, pw := pipe(t)
			payload := make([]byte, 8<<10)
			sent := 0
			var err error
			for attempt := 0; attempt < 10000; attempt++ {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				start := time.Now()
				err = a.Send(ctx, payload, pw)
				cancel()
				if err == nil {
					sent++
					continue
				}
				if !errors.Is(err, ErrQueueFull) && errors.Is(err, context.DeadlineExceeded) {
					// The context ended before the send began (a stalled
					// test process): nothing was tried, and Send says so
					// without claiming a full queue. Try again.
					continue
				}
				if d := time.Since(start); d < 40*time.Millisecond {
					t.Errorf("Send gave up after %v, before its 50ms deadline", d)
				}
				break
			}
			if !errors.Is(err, ErrQueueFull) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("after %d sends of 8 KiB, Send = %v; want ErrQueueFull and DeadlineExceeded", sent, err)
			}
			t.Logf("queue full after %d messages of 8 KiB with a descriptor: %v", sent, err)
			if tt.typ == unix.SOCK_STREAM {
				// A stream send that stopped inside a message poisons
				// the socket; that is tested by the next Send.
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				if err := a.Send(ctx, nil); err == nil || !strings.Contains(err.Error(), "unusable") && !errors.Is(err, ErrQueueFull) {
					t.Errorf("Send after a stream send stopped = %v, want it refused", err)
				}
				return
			}
			if sent < 5 {
				t.Errorf("queue full after only %d messages", sent)
			}

			// A send that may wait long enough gets through once a
			// receiver takes one message.
			go func() {
				time.Sleep(100 * time.Millisecond)
				_, files, _ := b.Recv(context.Background())
				closeAll(files)
			}()
			ctx := testCtx(t)
			start := time.Now()
			if err := a.Send(ctx, payload, pw); err != nil {
				t.Fatalf("Send with time to wait: %v", err)
			}
			if d := time.Since(start); d < 50*time.Millisecond {
				t.Errorf("Send on a full queue returned after %v, before the receiver took a message", d)
			}
			// Cancellation, as opposed to a deadline, is reported as such.
			for attempt := 0; ; attempt++ {
				cctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(20*time.Millisecond, cancel)
				err := a.Send(cctx, payload, pw)
				cancel()
				if !errors.Is(err, ErrQueueFull) && errors.Is(err, context.Canceled) && attempt < 5 {
					continue // cancelled before the send began, as above
				}
				if !errors.Is(err, ErrQueueFull) || !errors.Is(err, context.Canceled) {
					t.Errorf("cancelled Send = %v, want ErrQueueFull and Canceled", err)
				}
				break
			}
		})
	}
}

// TestCancelRecv: a receive ends with its context, and the socket's
// deadline does not outlive it.
func TestCancelRecv(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, unix.SOCK_SEQPACKET)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, _, err := b.Recv(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Recv = %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := b.Recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Recv past its deadline = %v, want context.DeadlineExceeded", err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		a.Send(context.Background(), []byte("late"))
	}()
	p, _, err := b.Recv(testCtx(t))
	if err != nil || string(p) != "late" {
		t.Fatalf("Recv after earlier deadlines = %q, %v", p, err)
	}
}

// TestManyReceivers: many Sockets on one SOCK_SEQPACKET socket, fed by
// several senders at once; each message reaches exactly one receiver.
func TestManyReceivers(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	send, recv := pair(t, unix.SOCK_SEQPACKET)
	const receivers, senders, perSender = 6, 3, 200
	var socks []*Socket
	for range receivers {
		f, err := recv.File()
		if err != nil {
			t.Fatal(err)
		}
		s, err := FileSocket(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		socks = append(socks, s)
	}
	_, pw := pipe(t)
	got := make([][]string, receivers)
	var wg sync.WaitGroup
	for i, s := range socks {
		wg.Go(func() {
			for {
				p, files, err := s.Recv(ctx)
				if err != nil {
					t.Errorf("receiver %d: %v", i, err)
					return
				}
				closeAll(files)
				if len(files) != 1 {
					t.Errorf("receiver %d: %d files", i, len(files))
				}
				if string(p) == "stop" {
					return
				}
				got[i] = append(got[i], string(p))
				// A moment of "work", so that the others get a turn.
				time.Sleep(100 * time.Microsecond)
			}
		})
	}
	var sg sync.WaitGroup
	for j := range senders {
		sg.Go(func() {
			for k := range perSender {
				if err := send.Send(ctx, fmt.Appendf(nil, "%d-%d", j, k), pw); err != nil {
					t.Errorf("sender %d: %v", j, err)
					return
				}
			}
		})
	}
	sg.Wait()
	for range receivers {
		if err := send.Send(ctx, []byte("stop"), pw); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	seen := map[string]int{}
	busy := 0
	for _, g := range got {
		if len(g) > 0 {
			busy++
		}
		for _, m := range g {
			seen[m]++
		}
	}
	for j := range senders {
		for k := range perSender {
			if n := seen[fmt.Sprintf("%d-%d", j, k)]; n != 1 {
				t.Errorf("message %d-%d received %d times", j, k, n)
			}
		}
	}
	if len(seen) != senders*perSender {
		t.Errorf("%d distinct messages received, want %d", len(seen), senders*perSender)
	}
	t.Logf("%d of %d receivers took messages", busy, receivers)
}

// TestManyReceiverProcesses: child processes share one dispatch socket;
// each message (with a file whose content names it) reaches exactly one.
func TestManyReceiverProcesses(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	send, recv := pair(t, unix.SOCK_SEQPACKET)
	const children, messages = 3, 60
	f, err := recv.File()
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		ids []string
		err error
	}
	results := make(chan result, children)
	for range children {
		p := testenv.Command(t, "recv-count")
		p.Cmd.ExtraFiles = []*os.File{f} // fd 3
		if err := p.Cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			var ids []string
			err := p.Wait(&ids)
			results <- result{ids, err}
		}()
	}
	f.Close()
	recv.Close() // the children hold the receiving end now

	dir := t.TempDir()
	for i := range messages {
		id := fmt.Sprint(i)
		file, err := os.Create(filepath.Join(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		file.WriteString(id)
		err = send.Send(ctx, []byte(id), file)
		file.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	for range children {
		if err := send.Send(ctx, []byte("stop")); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	for range children {
		var r result
		select {
		case r = <-results:
		case <-ctx.Done():
			t.Fatal("children did not finish")
		}
		if r.err != nil {
			t.Fatalf("child: %v", r.err)
		}
		for _, id := range r.ids {
			seen[id]++
		}
	}
	for i := range messages {
		if n := seen[fmt.Sprint(i)]; n != 1 {
			t.Errorf("message %d received %d times", i, n)
		}
	}
}

// helperRecvCount receives data messages on fd 3 until "stop" and returns
// their payloads, after checking that each came with a file holding the
// same text.
func helperRecvCount([]string) (any, error) {
	f := os.NewFile(3, "dispatch")
	s, err := FileSocket(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids := []string{}
	for {
		p, files, err := s.Recv(ctx)
		if err != nil {
			return nil, err
		}
		if string(p) == "stop" {
			closeAll(files)
			return ids, nil
		}
		if len(files) != 1 {
			closeAll(files)
			return nil, fmt.Errorf("message %q came with %d files", p, len(files))
		}
		b := make([]byte, 16)
		n, err := files[0].ReadAt(b, 0)
		files[0].Close()
		if err != nil && err != io.EOF {
			return nil, err
		}
		if string(b[:n]) != string(p) {
			return nil, fmt.Errorf("message %q came with a file holding %q", p, b[:n])
		}
		ids = append(ids, string(p))
	}
}
