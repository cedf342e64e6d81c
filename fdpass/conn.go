package fdpass

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ConnInfo is what a receiver learns about a connection besides its
// socket. The zero value is valid: a sender that fills in nothing sends
// the connection's own addresses.
type ConnInfo struct {
	// Listener names the listener the connection was accepted on (a
	// name or an id: the sender and receiver agree on its meaning), so
	// that the receiver can tell, for example, port 80 from port 443.
	Listener string

	// TLS says the connection carries TLS that the receiver must
	// terminate: the already-read bytes hold (part of) the ClientHello.
	TLS bool

	// LocalAddr and RemoteAddr are the connection's addresses as the
	// sender saw them. SendConn fills in the connection's own when they
	// are nil.
	LocalAddr, RemoteAddr net.Addr

	// ProxyClient is the client's address from a PROXY protocol header
	// that the sender read, if any. When set, the received Conn's
	// RemoteAddr returns it.
	ProxyClient netip.AddrPort

	// Seal is up to 255 bytes the sender attaches for its own later use
	// (nil for none): a receiver that sends the connection on passes
	// its Info, Seal included, so a connection that comes back to the
	// sender carries what the sender put on it. fdpass neither makes
	// nor checks it. A sender that must not believe a receiver (a
	// worker running a tenant's code) but wants its own ProxyClient back
	// with a returned connection seals it, for example with an HMAC
	// over the socket's SO_COOKIE and ProxyClient under a key the
	// receiver never sees, and checks the seal when the connection
	// returns.
	Seal []byte

	// Peer is the process that sent the connection, as the kernel
	// reports it, when the receiving socket asked with [Socket.PassCred];
	// nil otherwise, and never sent: unlike every field above, it is not
	// the sender's to choose. A receiver that trusts the sender with
	// nothing (a worker handing a connection back to a multiplexer) can
	// still tell which identity sent it.
	Peer *Cred

	// Queued is how long the connection waited between the sender's
	// SendConn and its receipt, measured by the receiver from the time
	// the sender stamped on it (CLOCK_MONOTONIC, which all processes on
	// a host share). It includes time blocked on a full queue. A receiver
	// uses it to refuse work that waited too long for it, such as a
	// worker answering 503 past a pool's queue timeout. Senders leave it
	// zero; it is not sent.
	Queued time.Duration
}

// Unwrapper is implemented by a net.Conn that wraps another, such as a
// connection with a read-ahead buffer: SendConn unwraps it to find the
// socket. Any bytes the wrapper has read ahead must be passed to SendConn
// as already read. (*tls.Conn has the method too, but is refused: its TLS
// state cannot move to another process.)
type Unwrapper interface {
	NetConn() net.Conn
}

// SendConn hands c to the receiving side: its socket, the bytes already
// read from it (at most MaxPayload), and info. c stays open in this
// process; close it once SendConn has succeeded (the receiver holds its
// own descriptor, so the connection stays up).
//
// c may be a *net.TCPConn or *net.UnixConn, anything that implements
// syscall.Conn, a wrapper that implements [Unwrapper], or a [*Conn]
// received earlier, in which case the bytes it holds that were not read
// yet follow the ones given here.
//
// Like [Socket.Send], SendConn waits while the receiver's queue is full,
// until ctx ends; then it returns an error wrapping [ErrQueueFull].
func (s *Socket) SendConn(ctx context.Context, c net.Conn, read []byte, info ConnInfo) error {
	frame, rc, err := s.connFrame(c, read, info)
	if err != nil {
		return err
	}
	if err := s.send(ctx, frame, []syscall.RawConn{rc}); err != nil {
		return fmt.Errorf("%w (connection %v)", err, remoteOf(c))
	}
	return nil
}

// TrySendConn is SendConn without waiting: when the message cannot be
// queued at once (every receiver's queue is full, another send is in
// progress, or s is a stream socket, whose sends may need several
// writes) it sends nothing and returns an error wrapping ErrQueueFull,
// and the caller can send with SendConn, which waits. It spares a sender
// that has a complete request in hand the deadline and the goroutine
// that waiting needs (a multiplexer's fast path).
func (s *Socket) TrySendConn(c net.Conn, read []byte, info ConnInfo) error {
	if s.stream {
		return fmt.Errorf("fdpass: send on %s: %w: a stream socket is sent on with SendConn", s.desc, ErrQueueFull)
	}
	frame, rc, err := s.connFrame(c, read, info)
	if err != nil {
		return err
	}
	select {
	case s.wsem <- struct{}{}:
	default:
		return fmt.Errorf("fdpass: send on %s: %w: another send is in progress", s.desc, ErrQueueFull)
	}
	defer release(s.wsem)
	if s.wbroken != nil {
		return s.wbroken
	}
	uc, err := s.uc.SyscallConn()
	if err != nil {
		return fmt.Errorf("fdpass: send on %s: %w", s.desc, err)
	}
	var werr error
	err = withFDs([]syscall.RawConn{rc}, make([]int, 0, 1), func(fds []int) error {
		oob := unix.UnixRights(fds...)
		return uc.Write(func(fd uintptr) bool {
			// One attempt: a SOCK_SEQPACKET message goes whole or not
			// at all.
			_, werr = unix.SendmsgN(int(fd), frame, oob, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
			return true
		})
	})
	if err == nil {
		err = werr
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EAGAIN):
		return fmt.Errorf("fdpass: send on %s: %w", s.desc, ErrQueueFull)
	}
	return fmt.Errorf("fdpass: send on %s: %w (connection %v)", s.desc, err, remoteOf(c))
}

// connFrame encodes the connection message for c: the socket to send
// and the frame to send it with.
func (s *Socket) connFrame(c net.Conn, read []byte, info ConnInfo) ([]byte, syscall.RawConn, error) {
	sc, read, err := socketOf(c, read)
	if err != nil {
		return nil, nil, fmt.Errorf("fdpass: send connection %v on %s: %w", remoteOf(c), s.desc, err)
	}
	if len(read) > MaxPayload {
		return nil, nil, fmt.Errorf("fdpass: send connection %v on %s: %d already-read bytes exceed MaxPayload (%d)", remoteOf(c), s.desc, len(read), MaxPayload)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, nil, fmt.Errorf("fdpass: send connection %v on %s: %w", remoteOf(c), s.desc, err)
	}
	m := metaFromInfo(info, c.LocalAddr(), c.RemoteAddr())
	if err := m.check(); err != nil {
		return nil, nil, fmt.Errorf("fdpass: send connection %v on %s: %v", remoteOf(c), s.desc, err)
	}
	bodyLen := m.size() + len(read)
	frame := make([]byte, 0, headerLen+bodyLen)
	frame = appendHeader(frame, header{kind: kindConn, nfds: 1, bodyLen: uint32(bodyLen)})
	frame = appendConnBody(frame, &m, read)
	return frame, rc, nil
}

func remoteOf(c net.Conn) any {
	if a := c.RemoteAddr(); a != nil {
		return a
	}
	return "(no remote address)"
}

// socketOf finds the socket behind c and the bytes to send with it.
func socketOf(c net.Conn, read []byte) (syscall.Conn, []byte, error) {
	// A bounded unwrap: a wrapper that returns itself must not loop.
	for range 16 {
		switch cc := c.(type) {
		case *Conn:
			if rest := cc.unread(); len(rest) > 0 {
				read = append(append(make([]byte, 0, len(read)+len(rest)), read...), rest...)
			}
			c = cc.nc
			continue
		case *tls.Conn:
			return nil, nil, fmt.Errorf("a *tls.Conn cannot be passed: its TLS state stays in this process; pass the underlying connection, with the bytes read from it, and ConnInfo.TLS set")
		case syscall.Conn:
			return cc, read, nil
		case Unwrapper:
			c = cc.NetConn()
			if c == nil {
				return nil, nil, fmt.Errorf("a %T unwrapped to nil", cc)
			}
			continue
		}
		return nil, nil, fmt.Errorf("cannot find the socket of a %T: it implements neither syscall.Conn nor NetConn() net.Conn", c)
	}
	return nil, nil, fmt.Errorf("cannot find the socket of a %T: more than 16 levels of wrapping", c)
}

// RecvConn receives a connection sent with [Socket.SendConn]. A message
// that is not a well-formed connection message is refused as [Socket.Recv]
// refuses one, and its descriptors are closed.
func (s *Socket) RecvConn(ctx context.Context) (*Conn, error) {
	kind, body, files, peer, err := s.recv(ctx)
	if err != nil {
		return nil, err
	}
	// parseHeader has checked that a connection message carries one
	// descriptor, and decodeFrame that one arrived.
	if kind != kindConn {
		closeFiles(files)
		return nil, fmt.Errorf("fdpass: recv on %s: a %s message where a connection was expected: %w", s.desc, kindName(kind), ErrMalformed)
	}
	f := files[0]
	defer f.Close() // net.FileConn made its own descriptor
	m, read, err := decodeConnBody(body)
	if err != nil {
		return nil, fmt.Errorf("fdpass: recv on %s: connection message: %w", s.desc, err)
	}
	nc, err := net.FileConn(f)
	if err != nil {
		if errors.Is(err, syscall.ENOTSOCK) {
			err = fmt.Errorf("its descriptor is not a socket (%v): %w", err, ErrMalformed)
		}
		return nil, fmt.Errorf("fdpass: recv on %s: connection from %s: %w", s.desc, m.remoteAddr, err)
	}
	info := m.info()
	info.Peer = peer
	return &Conn{nc: nc, info: info, prefix: read}, nil
}

// Conn is a connection received from another process. Its reads return
// the bytes the sender had already read, then what arrives on the socket.
// It is safe for concurrent use as a net.Conn is.
type Conn struct {
	nc   net.Conn
	info ConnInfo

	mu     sync.Mutex
	prefix []byte // already-read bytes not yet returned by Read
}

// Info returns what the sender said about the connection.
func (c *Conn) Info() ConnInfo { return c.info }

// NetConn returns the socket itself (a *net.TCPConn or *net.UnixConn).
// Reading from it directly skips the bytes the sender had already read.
func (c *Conn) NetConn() net.Conn { return c.nc }

func (c *Conn) unread() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.prefix
	c.prefix = nil
	return p
}

// Read returns the already-read bytes first, then reads the socket.
func (c *Conn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		if len(c.prefix) == 0 {
			c.prefix = nil // let the sender's bytes be collected
		}
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.nc.Read(b)
}

// Write writes to the socket.
func (c *Conn) Write(b []byte) (int, error) { return c.nc.Write(b) }

// ReadFrom lets io.Copy into the connection use the socket's own ReadFrom
// (sendfile or splice for a TCP connection), as it would without the
// wrapper.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.nc.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.nc}, r)
}

// Close closes this process's descriptor of the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// CloseWrite shuts down the writing side, if the socket supports it
// (net/http uses it to close a connection gracefully).
func (c *Conn) CloseWrite() error {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("fdpass: CloseWrite on a %T: %w", c.nc, syscall.ENOTSUP)
}

// LocalAddr returns the socket's own local address (getsockname, taken
// when the connection was received), or the sender's idea of it when the
// socket has none.
func (c *Conn) LocalAddr() net.Addr {
	if a := c.nc.LocalAddr(); !isUnnamed(a) {
		return a
	}
	if c.info.LocalAddr != nil {
		return c.info.LocalAddr
	}
	return c.nc.LocalAddr()
}

// RemoteAddr returns the client's address: the one from a PROXY header
// when the sender read one, else the socket's peer (getpeername), else
// the sender's idea of it.
func (c *Conn) RemoteAddr() net.Addr {
	if c.info.ProxyClient.IsValid() {
		return net.TCPAddrFromAddrPort(c.info.ProxyClient)
	}
	if a := c.nc.RemoteAddr(); !isUnnamed(a) {
		return a
	}
	if c.info.RemoteAddr != nil {
		return c.info.RemoteAddr
	}
	return c.nc.RemoteAddr()
}

// isUnnamed reports an address that says nothing: nil, or the name of an
// unnamed unix socket, which the net package shows as "" or as "@" (an
// abstract name with nothing after the leading NUL).
func isUnnamed(a net.Addr) bool {
	if a == nil {
		return true
	}
	if ua, ok := a.(*net.UnixAddr); ok {
		return ua == nil || ua.Name == "" || ua.Name == "@"
	}
	return false
}

// SetDeadline sets the socket's deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }

// SetReadDeadline sets the socket's read deadline. Already-read bytes are
// returned whatever it is.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// SetWriteDeadline sets the socket's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

// SyscallConn returns the socket's raw connection.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("fdpass: a %T has no raw connection", c.nc)
	}
	return sc.SyscallConn()
}

var (
	_ net.Conn     = (*Conn)(nil)
	_ syscall.Conn = (*Conn)(nil)
	_ Unwrapper    = (*Conn)(nil)
)
