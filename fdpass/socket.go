package fdpass

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrQueueFull is wrapped by a send that gave up because the receiving
// side did not take messages before the context ended: for a dispatch
// socket, every worker of the pool is busy and the kernel queue is full.
// The error also wraps the context's error.
var ErrQueueFull = errors.New("receiver's queue is full")

// errLostPlace marks a stream socket that cannot be read any more.
var errLostPlace = errors.New("it lost its place in the stream")

// bufferSize is the SO_SNDBUF and SO_RCVBUF asked for: room for a few
// messages of the largest size. A SOCK_SEQPACKET message must fit in the
// sender's buffer whole (less 32 bytes the kernel keeps), or sendmsg
// fails with EMSGSIZE. The kernel caps the value at net.core.wmem_max /
// rmem_max (and doubles it), which is why the result is checked, not
// assumed.
const bufferSize = 4 * maxFrame

// minSendBuffer is what a socket must have for the largest message.
const minSendBuffer = maxFrame + 32

// Socket is one end of a connected unix socket of type SOCK_SEQPACKET or
// SOCK_STREAM that carries messages in this package's wire format.
//
// A Socket is safe for concurrent use. Sends are serialized, as are
// receives: each message is written and read whole. Several Sockets (in
// one process or many) may share one SOCK_SEQPACKET socket; the kernel
// gives each message to exactly one of the receivers waiting on it.
type Socket struct {
	uc     msgConn
	stream bool
	desc   string // for errors: which socket

	// Semaphores rather than mutexes, so that a sender or receiver
	// waiting its turn can give up when its context ends.
	wsem, rsem chan struct{}
	rdl        deadline // sends use their own deadlines (see write)

	// A stream socket whose message was cut in the middle (a deadline, a
	// short read) no longer knows where the next message starts; every
	// later operation in that direction returns this error. Guarded by
	// the semaphore of its direction.
	wbroken, rbroken error

	rbuf []byte // SOCK_SEQPACKET receive buffer; guarded by rsem
	oob  []byte // control message buffer; guarded by rsem
	// peer is the sender of the last message received, when the kernel
	// said (see PassCred); guarded by rsem.
	peer *Cred
}

// Cred is a process as the kernel reports it with a message
// (SCM_CREDENTIALS): its pid and its real uid and gid at the time it sent.
// A sender cannot choose them: the kernel fills them in, or checks the
// ones a sender gives against the sender itself.
type Cred struct {
	PID      int32
	UID, GID uint32
}

// PassCred asks the kernel to report, with each message this socket
// receives, the process that sent it (ConnInfo.Peer of a received
// connection). It sets SO_PASSCRED on the socket, which every process
// receiving on it shares.
func (s *Socket) PassCred() error {
	rc, err := s.uc.SyscallConn()
	if err != nil {
		return fmt.Errorf("fdpass: pass credentials on %s: %w", s.desc, err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return fmt.Errorf("fdpass: pass credentials on %s: %w", s.desc, err)
	}
	if serr != nil {
		return fmt.Errorf("fdpass: pass credentials on %s: %w", s.desc, os.NewSyscallError("setsockopt(SO_PASSCRED)", serr))
	}
	// Room for the credentials beside MaxFDs descriptors (and no more:
	// a message with more descriptors must still be cut, MSG_CTRUNC).
	if err := acquire(context.Background(), s.rsem); err != nil {
		return err
	}
	s.oob = make([]byte, unix.CmsgSpace(MaxFDs*4)+unix.CmsgSpace(unix.SizeofUcred))
	release(s.rsem)
	return nil
}

// msgConn is what a Socket needs of its connection: a *net.UnixConn,
// or the exclusiveConn of a shared receiving socket.
type msgConn interface {
	ReadMsgUnix(b, oob []byte) (n, oobn, flags int, addr *net.UnixAddr, err error)
	WriteMsgUnix(b, oob []byte, addr *net.UnixAddr) (n, oobn int, err error)
	Write(b []byte) (int, error)
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	Close() error
	LocalAddr() net.Addr
	SyscallConn() (syscall.RawConn, error)
}

// Socketpair returns the two ends of a new unix socket pair of type typ,
// unix.SOCK_SEQPACKET (for a dispatch socket shared by many receivers) or
// unix.SOCK_STREAM. Both ends are close-on-exec and have socket buffers
// sized for the largest message. Pass an end to a child with
// [Socket.File].
func Socketpair(typ int) (*Socket, *Socket, error) {
	if typ != unix.SOCK_SEQPACKET && typ != unix.SOCK_STREAM {
		return nil, nil, fmt.Errorf("fdpass: socket type %d: want SOCK_SEQPACKET (%d) or SOCK_STREAM (%d)", typ, unix.SOCK_SEQPACKET, unix.SOCK_STREAM)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("fdpass: %w", os.NewSyscallError("socketpair", err))
	}
	// Each number is owned by a File from here on, so that every error
	// path below closes it exactly once.
	fa, fb := os.NewFile(uintptr(fds[0]), "fdpass-socketpair"), os.NewFile(uintptr(fds[1]), "fdpass-socketpair")
	defer fa.Close()
	defer fb.Close()
	a, err := FileSocket(fa)
	if err != nil {
		return nil, nil, err
	}
	b, err := FileSocket(fb)
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// FileSocket returns a Socket for a copy of the unix socket f, such as a
// dispatch socket a child inherited (os.NewFile(3, "dispatch")). Closing
// f afterwards is the caller's job and does not affect the Socket.
func FileSocket(f *os.File) (*Socket, error) {
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("fdpass: socket from file %q: %w", f.Name(), err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("fdpass: socket from file %q: a %T, not a unix socket", f.Name(), c)
	}
	return NewSocket(uc)
}

// NewSocket returns a Socket that uses c, which must be a connected
// SOCK_SEQPACKET or SOCK_STREAM unix socket. The Socket owns c from then
// on, also when NewSocket fails. It raises c's socket buffers if they are
// too small for the largest message, and fails if the kernel's limits do
// not allow that.
func NewSocket(c *net.UnixConn) (*Socket, error) {
	s, err := newSocket(c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("fdpass: %w", err)
	}
	return s, nil
}

func newSocket(c msgConn) (*Socket, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var typ, fd, sndbuf int
	var serr error
	err = rc.Control(func(u uintptr) {
		fd = int(u)
		typ, serr = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		if serr != nil {
			serr = os.NewSyscallError("getsockopt SO_TYPE", serr)
			return
		}
		for _, opt := range []struct {
			opt  int
			name string
		}{{unix.SO_SNDBUF, "SO_SNDBUF"}, {unix.SO_RCVBUF, "SO_RCVBUF"}} {
			var n int
			n, serr = unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt.opt)
			if serr == nil && n < bufferSize {
				serr = unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt.opt, bufferSize)
				if serr == nil {
					n, serr = unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt.opt)
				}
			}
			if serr != nil {
				serr = os.NewSyscallError("socket option "+opt.name, serr)
				return
			}
			if opt.opt == unix.SO_SNDBUF {
				sndbuf = n
			}
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return nil, fmt.Errorf("unix socket %s: %w", c.LocalAddr(), err)
	}
	s := &Socket{
		uc:   c,
		wsem: make(chan struct{}, 1),
		rsem: make(chan struct{}, 1),
		oob:  make([]byte, unix.CmsgSpace(MaxFDs*4)),
	}
	s.rdl.set = c.SetReadDeadline
	switch typ {
	case unix.SOCK_SEQPACKET:
		s.desc = fmt.Sprintf("seqpacket socket fd %d", fd)
		// One byte more than the largest message, so that a larger one
		// is seen as truncated rather than read as if it fitted.
		s.rbuf = make([]byte, maxFrame+1)
	case unix.SOCK_STREAM:
		s.desc = fmt.Sprintf("stream socket fd %d", fd)
		s.stream = true
	default:
		return nil, fmt.Errorf("unix socket fd %d has type %d: want SOCK_SEQPACKET or SOCK_STREAM", fd, typ)
	}
	if sndbuf < minSendBuffer {
		return nil, fmt.Errorf("%s: SO_SNDBUF is %d bytes, less than the %d a %d-byte message needs (raise net.core.wmem_max)", s.desc, sndbuf, minSendBuffer, maxFrame)
	}
	return s, nil
}

// String names the socket, for errors and logs.
func (s *Socket) String() string { return s.desc }

// Close closes the socket. A Send or Recv blocked on it returns an error
// that wraps net.ErrClosed.
func (s *Socket) Close() error { return s.uc.Close() }

// File returns a new descriptor for the socket, for a child process
// (exec.Cmd.ExtraFiles). The caller closes it.
//
// It differs from net.UnixConn.File: that File's Fd method, which os/exec
// calls, switches the socket to blocking mode, and the mode belongs to the
// socket, not to the descriptor, so this Socket's own reads and writes
// would then block an OS thread and ignore deadlines and Close.
func (s *Socket) File() (*os.File, error) {
	rc, err := s.uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("fdpass: %s: %w", s.desc, err)
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fmt.Errorf("fdpass: %s: %w", s.desc, err)
	}
	if derr != nil {
		return nil, fmt.Errorf("fdpass: %s: %w", s.desc, os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", derr))
	}
	// os.NewFile sees a descriptor already in non-blocking mode and leaves
	// the mode alone in Fd.
	return os.NewFile(uintptr(nfd), "fdpass-"+s.desc), nil
}

// Send writes one data message: payload (at most MaxPayload bytes) and
// the descriptors of files (at most MaxFDs). The files stay open; the
// receiver gets its own descriptors for them.
//
// If the receiving side's queue is full, Send waits until it has room or
// ctx ends; in the latter case the error wraps [ErrQueueFull] and ctx's
// error. Send never sends part of a message on a SOCK_SEQPACKET socket.
func (s *Socket) Send(ctx context.Context, payload []byte, files ...*os.File) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("fdpass: send on %s: payload of %d bytes exceeds MaxPayload (%d)", s.desc, len(payload), MaxPayload)
	}
	if len(files) > MaxFDs {
		return fmt.Errorf("fdpass: send on %s: %d files exceed MaxFDs (%d)", s.desc, len(files), MaxFDs)
	}
	rcs := make([]syscall.RawConn, len(files))
	for i, f := range files {
		rc, err := f.SyscallConn()
		if err != nil {
			return fmt.Errorf("fdpass: send on %s: file %q: %w", s.desc, f.Name(), err)
		}
		rcs[i] = rc
	}
	frame := make([]byte, 0, headerLen+len(payload))
	frame = appendHeader(frame, header{kind: kindData, nfds: byte(len(files)), bodyLen: uint32(len(payload))})
	frame = append(frame, payload...)
	return s.send(ctx, frame, rcs)
}

// send writes a whole frame with the descriptors of rcs.
func (s *Socket) send(ctx context.Context, frame []byte, rcs []syscall.RawConn) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fdpass: send on %s: %w", s.desc, err)
	}
	if err := acquire(ctx, s.wsem); err != nil {
		return fmt.Errorf("fdpass: send on %s: waiting behind another send: %w: %w", s.desc, ErrQueueFull, err)
	}
	defer release(s.wsem)
	if s.wbroken != nil {
		return s.wbroken
	}
	var sent int
	err := withFDs(rcs, make([]int, 0, len(rcs)), func(fds []int) error {
		var oob []byte
		if len(fds) > 0 {
			oob = unix.UnixRights(fds...)
		}
		var err error
		sent, err = s.write(ctx, frame, oob)
		return err
	})
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: %w", ErrQueueFull, ctxErr(ctx))
	}
	err = fmt.Errorf("fdpass: send on %s: %w", s.desc, err)
	if s.stream && sent > 0 {
		s.wbroken = fmt.Errorf("fdpass: %s is unusable for sending: an earlier send stopped after %d of %d bytes: %w", s.desc, sent, len(frame), err)
	}
	return err
}

// Bounds of the interval at which a blocked send tries again.
const (
	minRetry = 500 * time.Microsecond
	maxRetry = 10 * time.Millisecond
)

// write writes frame, with oob on its first byte, until it is all written
// or ctx ends (then the error is os.ErrDeadlineExceeded). It returns how
// many bytes were written.
//
// A blocked send does not simply wait for the poller to report the socket
// writable: the kernel reports a unix socket writable only once its
// sender's queued bytes have fallen to a quarter of SO_SNDBUF
// (unix_writable), so a sender would sleep through the room that one
// receiver's taking a message makes. Instead each attempt waits at most a
// short, growing interval and then tries again. The same interval bounds
// how late a cancellation of ctx is noticed.
func (s *Socket) write(ctx context.Context, frame, oob []byte) (int, error) {
	dl, hasDL := ctx.Deadline()
	retry := minRetry
	sent := 0
	for {
		t := time.Now().Add(retry)
		if hasDL && dl.Before(t) {
			t = dl
		}
		if err := s.uc.SetWriteDeadline(t); err != nil {
			return sent, err
		}
		var n int
		var err error
		if sent == 0 {
			n, _, err = s.uc.WriteMsgUnix(frame, oob, nil)
		} else {
			// Only a stream socket writes part of a message. The
			// descriptors went with its first byte; the rest is data.
			n, err = s.uc.Write(frame[sent:])
		}
		sent += n
		if err == nil && sent == len(frame) {
			return sent, nil
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return sent, err
		}
		if ctx.Err() != nil || (hasDL && !time.Now().Before(dl)) {
			return sent, os.ErrDeadlineExceeded
		}
		if n == 0 {
			retry = min(2*retry, maxRetry)
		} else {
			retry = minRetry
		}
	}
}

// withFDs calls fn with the descriptor numbers behind rcs. Each number
// stays valid while fn runs (RawConn.Control holds a reference), without
// the cost of a dup and a close per descriptor.
func withFDs(rcs []syscall.RawConn, fds []int, fn func([]int) error) error {
	if len(rcs) == 0 {
		return fn(fds)
	}
	var ferr error
	if err := rcs[0].Control(func(fd uintptr) {
		ferr = withFDs(rcs[1:], append(fds, int(fd)), fn)
	}); err != nil {
		return err
	}
	return ferr
}

// Recv reads one data message and returns its payload and a File for
// each descriptor that came with it, which the caller closes.
//
// A message that is not a well-formed data message is refused with an
// error wrapping [ErrMalformed], [ErrVersion], [ErrTruncated] or
// [ErrTooManyFDs]; whatever descriptors it carried are closed first. The
// socket stays usable after such an error, except that a stream socket
// that lost its place in the stream returns the same error from then on.
// When the sending side has closed, Recv returns an error wrapping io.EOF.
func (s *Socket) Recv(ctx context.Context) (payload []byte, files []*os.File, err error) {
	kind, body, files, _, err := s.recv(ctx)
	if err != nil {
		return nil, nil, err
	}
	if kind != kindData {
		closeFiles(files)
		return nil, nil, fmt.Errorf("fdpass: recv on %s: a %s message where a data message was expected: %w", s.desc, kindName(kind), ErrMalformed)
	}
	return body, files, nil
}

// recv reads one checked frame, and who sent it when the kernel says
// (see PassCred). The body belongs to the caller.
func (s *Socket) recv(ctx context.Context) (kind byte, body []byte, files []*os.File, peer *Cred, err error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, nil, nil, fmt.Errorf("fdpass: recv on %s: %w", s.desc, err)
	}
	if err := acquire(ctx, s.rsem); err != nil {
		return 0, nil, nil, nil, fmt.Errorf("fdpass: recv on %s: waiting behind another receive: %w", s.desc, err)
	}
	defer release(s.rsem)
	if s.rbroken != nil {
		return 0, nil, nil, nil, s.rbroken
	}
	end := s.rdl.begin(ctx)
	defer end()
	s.peer = nil
	var frame []byte
	if s.stream {
		frame, files, err = s.readStream()
	} else {
		frame, files, err = s.readPacket()
	}
	if err == nil {
		var k byte
		k, body, err = decodeFrame(frame, len(files))
		if err == nil {
			return k, body, files, s.peer, nil
		}
	}
	closeFiles(files)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// Only ctx sets read deadlines; its own timer may not have
		// fired yet when the poller's did.
		err = fmt.Errorf("%w (%v)", ctxErr(ctx), err)
	}
	return 0, nil, nil, nil, fmt.Errorf("fdpass: recv on %s: %w", s.desc, err)
}

// readPacket reads one SOCK_SEQPACKET message and returns a copy of it.
func (s *Socket) readPacket() ([]byte, []*os.File, error) {
	n, oobn, flags, _, err := s.uc.ReadMsgUnix(s.rbuf, s.oob)
	// Descriptors are taken into Files before anything else is looked
	// at, so that every return below can close them.
	files, perr := appendRights(nil, s.oob[:oobn])
	s.peer = parseCred(s.oob[:oobn])
	switch {
	case err != nil:
		return nil, files, err
	case flags&unix.MSG_CTRUNC != 0:
		return nil, files, fmt.Errorf("control data truncated (MSG_CTRUNC) after %d descriptors: the message carried more than MaxFDs (%d): %w", len(files), MaxFDs, ErrTooManyFDs)
	case flags&unix.MSG_TRUNC != 0:
		return nil, files, fmt.Errorf("message larger than the %d bytes a receiver accepts (MSG_TRUNC): %w", maxFrame, ErrTruncated)
	case perr != nil:
		return nil, files, perr
	case n == 0 && len(files) == 0:
		// A zero-length read on SOCK_SEQPACKET is the peer's close;
		// every message of this format has a header.
		return nil, nil, fmt.Errorf("peer closed: %w", io.EOF)
	}
	return append([]byte(nil), s.rbuf[:n]...), files, nil
}

// readStream reads one message from a stream socket: the header, then as
// many bytes as it announces. Each read asks for no more than the rest of
// this message, so it never takes descriptors that belong to the next.
func (s *Socket) readStream() ([]byte, []*os.File, error) {
	frame := make([]byte, headerLen)
	files, n, err := s.readFull(frame, nil)
	if err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return nil, files, fmt.Errorf("peer closed: %w", io.EOF)
		}
		return nil, files, s.breakReads(err)
	}
	h, err := parseHeader(frame)
	if err != nil {
		// The header is wrong, so its length is worthless: the place of
		// the next message is unknown.
		return nil, files, s.breakReads(err)
	}
	frame = append(frame, make([]byte, h.bodyLen)...)
	files, _, err = s.readFull(frame[headerLen:], files)
	if err != nil {
		return nil, files, s.breakReads(err)
	}
	return frame, files, nil
}

func (s *Socket) breakReads(err error) error {
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("stream ended inside a message: %w", ErrTruncated)
	}
	s.rbroken = fmt.Errorf("fdpass: %s is unusable for receiving: %w: %w", s.desc, errLostPlace, err)
	return err
}

// readFull fills b from the stream socket, adding any descriptors that
// arrive to files.
func (s *Socket) readFull(b []byte, files []*os.File) ([]*os.File, int, error) {
	got := 0
	for got < len(b) {
		n, oobn, flags, _, err := s.uc.ReadMsgUnix(b[got:], s.oob)
		var perr error
		files, perr = appendRights(files, s.oob[:oobn])
		if c := parseCred(s.oob[:oobn]); c != nil {
			s.peer = c
		}
		got += n
		switch {
		case err != nil:
			return files, got, err
		case flags&unix.MSG_CTRUNC != 0:
			return files, got, fmt.Errorf("control data truncated (MSG_CTRUNC) after %d descriptors: the message carried more than MaxFDs (%d): %w", len(files), MaxFDs, ErrTooManyFDs)
		case perr != nil:
			return files, got, perr
		case len(files) > MaxFDs:
			return files, got, fmt.Errorf("%d descriptors arrived with one message, more than MaxFDs (%d): %w", len(files), MaxFDs, ErrTooManyFDs)
		case n == 0:
			return files, got, io.EOF
		}
	}
	return files, got, nil
}

// appendRights takes every descriptor of the SCM_RIGHTS messages in oob
// into a File. It goes on past a malformed control message header (which
// the kernel does not produce) only as far as it safely can, and reports
// it, so that the caller closes what was found.
func appendRights(files []*os.File, oob []byte) ([]*os.File, error) {
	hdrLen := unix.CmsgLen(0)
	for len(oob) > 0 {
		if len(oob) < hdrLen {
			return files, fmt.Errorf("%d stray bytes of control data: %w", len(oob), ErrMalformed)
		}
		// The header is struct cmsghdr: a native-endian size_t length,
		// then level and type as ints. It is read field by field rather
		// than through a pointer into oob.
		var l int
		if unix.SizeofPtr == 8 {
			l = int(binary.NativeEndian.Uint64(oob))
		} else {
			l = int(binary.NativeEndian.Uint32(oob))
		}
		level := int32(binary.NativeEndian.Uint32(oob[unix.SizeofPtr:]))
		typ := int32(binary.NativeEndian.Uint32(oob[unix.SizeofPtr+4:]))
		if l < hdrLen || l > len(oob) {
			return files, fmt.Errorf("control message length %d outside %d..%d: %w", l, hdrLen, len(oob), ErrMalformed)
		}
		if level == unix.SOL_SOCKET && typ == unix.SCM_RIGHTS {
			for data := oob[hdrLen:l]; len(data) >= 4; data = data[4:] {
				fd := int32(binary.NativeEndian.Uint32(data))
				if fd >= 0 {
					files = append(files, os.NewFile(uintptr(fd), "fdpass-received"))
				}
			}
		}
		next := unix.CmsgSpace(l - hdrLen)
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return files, nil
}

// parseCred returns the credentials in oob (the kernel puts them there,
// for a socket with SO_PASSCRED), or nil.
func parseCred(oob []byte) *Cred {
	if len(oob) == 0 {
		return nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_CREDENTIALS {
			if u, err := unix.ParseUnixCredentials(&m); err == nil {
				return &Cred{PID: u.Pid, UID: u.Uid, GID: u.Gid}
			}
		}
	}
	return nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctxErr(ctx)
	}
}

func release(sem chan struct{}) { <-sem }

// ctxErr is ctx's error, or DeadlineExceeded when the socket's deadline
// (which is ctx's) fired a moment before ctx noticed.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return context.DeadlineExceeded
}

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked
// operation at once (net/http uses the same trick).
var aLongTimeAgo = time.Unix(1, 0)

// deadline makes one direction of a socket follow a context: its
// deadline, and its cancellation. It is used under the direction's
// semaphore; only the cancellation callback runs outside it.
type deadline struct {
	set   func(time.Time) error
	armed bool // a deadline may be set on the socket

	mu   sync.Mutex // guards op, for the cancellation callback
	op   uint64     // the operation in progress that ctx may cancel; 0: none
	next uint64
}

// begin sets the deadline for the operation that follows and returns the
// function that ends it.
func (d *deadline) begin(ctx context.Context) (end func()) {
	if t, ok := ctx.Deadline(); ok {
		d.set(t)
		d.armed = true
	} else if d.armed {
		d.set(time.Time{})
		d.armed = false
	}
	if ctx.Done() == nil {
		return func() {}
	}
	d.armed = true // the callback may set one
	d.mu.Lock()
	d.next++
	id := d.next
	d.op = id
	d.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		// A callback that runs late, after its operation ended, must not
		// cut short the next one.
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.op == id {
			d.set(aLongTimeAgo)
		}
	})
	return func() {
		stop()
		d.mu.Lock()
		d.op = 0
		d.mu.Unlock()
	}
}
