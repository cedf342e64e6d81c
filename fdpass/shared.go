package fdpass

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SharedFileSocket returns a Socket for a copy of f, the receiving end of
// a SOCK_SEQPACKET socket that many processes receive on (a pool's
// dispatch socket), for one of those processes. It differs from
// [FileSocket] in how a receive waits:
//
//   - Each message wakes one waiting receiver. The runtime's poller
//     registers a socket without EPOLLEXCLUSIVE, so with FileSocket every
//     idle receiver of every process wakes for each message, and all but
//     one find nothing to read (measured on mpmd: with 3 idle workers, 2.2
//     empty receives per connection; with 16, a quarter of the
//     throughput). A Socket from SharedFileSocket waits in an epoll
//     instance of its own, with EPOLLEXCLUSIVE.
//   - It never changes the socket's O_NONBLOCK flag, which belongs to the
//     open file description that every process shares: it receives and
//     sends with MSG_DONTWAIT.
//
// It keeps the socket out of the runtime's poller, which would wake on
// every message. So should the caller: f must not be a pollable os.File
// (one made by os.NewFile from a non-blocking descriptor), and nothing
// else in the process should wrap the socket with net.FileConn. A
// dispatch socket created blocking, as package pool creates it, and
// inherited by a child is not pollable there.
//
// Sends work as on any Socket; a blocked send polls for room at the same
// short intervals.
func SharedFileSocket(f *os.File) (*Socket, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("fdpass: shared socket from file %q: %w", f.Name(), err)
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fmt.Errorf("fdpass: shared socket from file %q: %w", f.Name(), err)
	}
	if derr != nil {
		return nil, fmt.Errorf("fdpass: shared socket from file %q: %w", f.Name(), os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", derr))
	}
	c, err := newExclusiveConn(nfd)
	if err != nil {
		unix.Close(nfd)
		return nil, fmt.Errorf("fdpass: shared socket from file %q: %w", f.Name(), err)
	}
	s, err := newSocket(c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("fdpass: %w", err)
	}
	if s.stream {
		c.Close()
		return nil, fmt.Errorf("fdpass: shared socket from file %q: a stream socket; sharing needs SOCK_SEQPACKET, where each message goes whole to one receiver", f.Name())
	}
	return s, nil
}

// exclusiveConn is the msgConn of a shared receiving socket: a raw
// descriptor, an epoll instance that watches it with EPOLLEXCLUSIVE, and
// an eventfd that wakes a blocked receive when its deadline changes or
// the connection closes.
type exclusiveConn struct {
	fd, epfd, evfd int

	// use is held (read-locked) by every operation on the descriptors;
	// Close takes it for writing, after waking the blocked ones, so that
	// no number is closed under a system call that still uses it.
	use sync.RWMutex

	mu     sync.Mutex // guards what follows
	closed bool
	rdl    time.Time // read deadline
	wdl    time.Time // write deadline
}

func newExclusiveConn(fd int) (*exclusiveConn, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	c := &exclusiveConn{fd: fd, epfd: epfd, evfd: evfd}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(fd)}); err != nil {
		c.closeFDs(false)
		return nil, os.NewSyscallError("epoll_ctl EPOLLEXCLUSIVE", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		c.closeFDs(false)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return c, nil
}

func (c *exclusiveConn) closeFDs(withSocket bool) {
	unix.Close(c.epfd)
	unix.Close(c.evfd)
	if withSocket {
		unix.Close(c.fd)
	}
}

// kick wakes a receive blocked in epoll_wait, to look at its deadline and
// at closed again.
func (c *exclusiveConn) kick() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	// EAGAIN means the counter is full: a wake-up is pending anyway.
	unix.Write(c.evfd, one[:])
}

// state returns whether c is closed and the deadline of one direction.
func (c *exclusiveConn) state(read bool) (closed bool, dl time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if read {
		return c.closed, c.rdl
	}
	return c.closed, c.wdl
}

func (c *exclusiveConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "unixpacket", Err: err}
}

// ReadMsgUnix receives one message, waiting (in the epoll instance) until
// one comes, the read deadline passes, or c is closed.
//
// A receive that waited in epoll_wait reads once more before it reports
// that c was closed: EPOLLEXCLUSIVE wakes one waiting receiver per
// message, and a message that woke this one, just as c was being closed,
// wakes no other. Returning without reading it would leave it queued,
// unseen by every other receiver until the next message comes. So Close
// can be followed by one last message, which the caller owns as any
// other; a receive that finds c closed before it waits returns at once.
func (c *exclusiveConn) ReadMsgUnix(b, oob []byte) (n, oobn, flags int, addr *net.UnixAddr, err error) {
	c.use.RLock()
	defer c.use.RUnlock()
	var events [2]unix.EpollEvent
	waited := false
	for {
		closed, dl := c.state(true)
		if closed && !waited {
			return 0, 0, 0, nil, c.opError("read", net.ErrClosed)
		}
		n, oobn, flags, _, err = unix.Recvmsg(c.fd, b, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
		if closed {
			// The read after the last wait (see above): a message, or
			// closed.
			for err == unix.EINTR {
				n, oobn, flags, _, err = unix.Recvmsg(c.fd, b, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
			}
			if err != nil {
				return 0, 0, 0, nil, c.opError("read", net.ErrClosed)
			}
			return n, oobn, flags, nil, nil
		}
		if err == nil {
			return n, oobn, flags, nil, nil
		}
		if err == unix.EINTR {
			continue
		}
		if err != unix.EAGAIN {
			return 0, 0, 0, nil, c.opError("read", os.NewSyscallError("recvmsg", err))
		}
		timeout := -1
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, 0, 0, nil, c.opError("read", os.ErrDeadlineExceeded)
			}
			// Rounded up: waking a moment early would only loop.
			timeout = int((d + time.Millisecond - 1) / time.Millisecond)
		}
		// A blocking system call: the runtime gives the goroutine's P
		// to others meanwhile.
		nev, err := unix.EpollWait(c.epfd, events[:], timeout)
		waited = true
		if err != nil && err != unix.EINTR {
			return 0, 0, 0, nil, c.opError("read", os.NewSyscallError("epoll_wait", err))
		}
		for _, ev := range events[:max(nev, 0)] {
			if int(ev.Fd) == c.evfd {
				var buf [8]byte
				unix.Read(c.evfd, buf[:]) // reset the counter
			}
		}
	}
}

// WriteMsgUnix sends one message with oob, waiting for room until the
// write deadline.
func (c *exclusiveConn) WriteMsgUnix(b, oob []byte, _ *net.UnixAddr) (n, oobn int, err error) {
	c.use.RLock()
	defer c.use.RUnlock()
	for {
		closed, dl := c.state(false)
		if closed {
			return 0, 0, c.opError("write", net.ErrClosed)
		}
		n, err = unix.SendmsgN(c.fd, b, oob, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if err == nil {
			return n, len(oob), nil
		}
		if err == unix.EINTR {
			continue
		}
		if err != unix.EAGAIN {
			return 0, 0, c.opError("write", os.NewSyscallError("sendmsg", err))
		}
		// No room. Socket's write loop sets deadlines a few
		// milliseconds ahead and tries again after each (see
		// Socket.write), so a plain poll bounded by the deadline is
		// enough here; Close waits for it to end.
		timeout := 10
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, 0, c.opError("write", os.ErrDeadlineExceeded)
			}
			timeout = min(timeout, int((d+time.Millisecond-1)/time.Millisecond))
		}
		fds := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLOUT}}
		if _, err := unix.Poll(fds, timeout); err != nil && err != unix.EINTR {
			return 0, 0, c.opError("write", os.NewSyscallError("poll", err))
		}
	}
}

// Write is for stream sockets, which a shared socket is not.
func (c *exclusiveConn) Write(b []byte) (int, error) {
	n, _, err := c.WriteMsgUnix(b, nil, nil)
	return n, err
}

func (c *exclusiveConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	// Only an earlier deadline needs a blocked receive to look again: at
	// a later one (or none) it wakes at the old deadline, sees the new
	// one and waits on. This keeps the common case (clearing the
	// deadline before each receive) free of system calls.
	sooner := !t.IsZero() && (c.rdl.IsZero() || t.Before(c.rdl))
	c.rdl = t
	c.mu.Unlock()
	if sooner {
		// A context's cancellation sets the deadline from its own
		// goroutine, possibly after Close: the eventfd's number may
		// belong to another file by then.
		c.use.RLock()
		if closed, _ := c.state(true); !closed {
			c.kick()
		}
		c.use.RUnlock()
	}
	return nil
}

func (c *exclusiveConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	return nil
}

// Close wakes a blocked receive, waits for every operation to leave the
// descriptors, and closes them.
func (c *exclusiveConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opError("close", net.ErrClosed)
	}
	c.closed = true
	c.mu.Unlock()
	c.kick()
	c.use.Lock()
	defer c.use.Unlock()
	c.closeFDs(true)
	return nil
}

func (c *exclusiveConn) LocalAddr() net.Addr { return &net.UnixAddr{Net: "unixpacket"} }

func (c *exclusiveConn) SyscallConn() (syscall.RawConn, error) { return exclusiveRaw{c}, nil }

// exclusiveRaw gives Control access to the descriptor, for socket
// options and dup; Read and Write are not offered.
type exclusiveRaw struct{ c *exclusiveConn }

func (r exclusiveRaw) Control(f func(fd uintptr)) error {
	r.c.use.RLock()
	defer r.c.use.RUnlock()
	if closed, _ := r.c.state(true); closed {
		return net.ErrClosed
	}
	f(uintptr(r.c.fd))
	return nil
}

func (r exclusiveRaw) Read(func(fd uintptr) bool) error {
	return fmt.Errorf("fdpass: Read on a shared socket's RawConn: %w", syscall.ENOTSUP)
}

func (r exclusiveRaw) Write(func(fd uintptr) bool) error {
	return fmt.Errorf("fdpass: Write on a shared socket's RawConn: %w", syscall.ENOTSUP)
}
