package fdpass

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
)

// Listener is a net.Listener whose connections are received on a Socket
// rather than accepted from a network: http.Server.Serve(l) serves
// connections that another process accepted, unchanged.
type Listener struct {
	s    *Socket
	addr net.Addr

	ctx    context.Context // ends when the listener is closed
	cancel context.CancelFunc
	once   sync.Once
	err    error
}

// NewListener returns a Listener that receives connections on s and owns
// it: closing the Listener closes s.
func NewListener(s *Socket) *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	return &Listener{s: s, addr: &Addr{Net: "fdpass", Addr: s.desc}, ctx: ctx, cancel: cancel}
}

// Accept waits for the next connection sent with [Socket.SendConn] and
// returns it as a [*Conn].
//
// A message that is refused (malformed, wrong version or kind, or with
// a descriptor that is not a socket), or a passing shortage such as
// running out of descriptors, makes Accept return an error whose
// Temporary method reports true, which http.Server logs before it goes
// on accepting: one bad message must not stop a worker. After Close,
// Accept returns an error wrapping net.ErrClosed. When every sending end
// of the socket is closed, it returns an error wrapping io.EOF; a stream
// socket that lost its place in the stream also returns a permanent error.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.s.RecvConn(l.ctx)
	if err == nil {
		return c, nil
	}
	if l.ctx.Err() != nil {
		return nil, &net.OpError{Op: "accept", Net: "fdpass", Addr: l.addr, Err: net.ErrClosed}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, errLostPlace) {
		return nil, err
	}
	return nil, &refusedError{err}
}

// refusedError is an error after which Accept can go on: a refused
// message, or a passing shortage (EMFILE, ENOBUFS). Temporary tells
// http.Server so.
type refusedError struct{ err error }

func (e *refusedError) Error() string   { return e.err.Error() }
func (e *refusedError) Unwrap() error   { return e.err }
func (e *refusedError) Timeout() bool   { return false }
func (e *refusedError) Temporary() bool { return true }

// Close closes the listener and its socket; a blocked Accept returns at
// once. On a socket from [SharedFileSocket] that one Accept may still
// return a connection: the one whose message woke it as Close came, which
// no other receiver would be woken for (see exclusiveConn.ReadMsgUnix).
// Serve it, or close it, as any other. It is safe to call more than once.
func (l *Listener) Close() error {
	l.once.Do(func() {
		// Cancelling first makes the blocked receive return through its
		// context (a deadline in the past) even before the descriptor is
		// closed under it.
		l.cancel()
		l.err = l.s.Close()
	})
	return l.err
}

// Addr returns a placeholder address naming the socket: the connections'
// real addresses are on each Conn.
func (l *Listener) Addr() net.Addr { return l.addr }

var _ net.Listener = (*Listener)(nil)
