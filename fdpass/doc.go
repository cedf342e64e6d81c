// Package fdpass hands live connections from one process to another over
// unix sockets, together with the bytes already read from them, so that a
// process that accepted and routed a connection is not the one that
// serves it.
//
// # The model
//
// In mpm, multiplexers accept connections, read the request head (or peek
// at the TLS ClientHello) to learn which site it is for, and pass the
// connection to a worker of that site's pool, which serves it with
// net/http as the site's own user. Each pool has one SOCK_SEQPACKET socket
// pair: the multiplexers hold one end and send, every worker of the pool
// holds the other and waits to receive. The kernel gives each message to
// exactly one waiting receiver, so idle workers take work without any
// dispatcher bookkeeping. The sockets are unnamed and inherited as
// descriptors: there is no path another user could connect to.
//
//	sender (multiplexer)                      receiver (worker)
//	c, _ := ln.Accept()                       l := fdpass.NewListener(sock)
//	head := readHead(c)                       http.Serve(l, handler)
//	sock.SendConn(ctx, c, head, info)   ->    // Accept returns a *fdpass.Conn
//	c.Close()                                 // whose reads start with head
//
// # Sockets
//
// A [Socket] is one end of a connected unix socket of type SOCK_SEQPACKET
// (message boundaries kept; many receivers may share it) or SOCK_STREAM
// (one reader and one writer; each message is framed by its header).
// [Socketpair] makes a pair; [Socket.File] returns a descriptor to give a
// child in exec.Cmd.ExtraFiles, and the child opens it with [FileSocket].
// Use Socket.File rather than net.UnixConn.File for that: os/exec calls
// the File's Fd method, which for a net.UnixConn.File switches the socket
// (shared by every descriptor of it) to blocking mode, after which the
// parent's own reads block an OS thread and ignore deadlines and Close.
//
// A process that is one of many receivers on a shared SOCK_SEQPACKET
// socket (a pool's worker) opens it with [SharedFileSocket] instead. The
// Go runtime's poller watches a socket without EPOLLEXCLUSIVE, so with
// FileSocket every waiting process wakes for each message and all but one
// find nothing; a shared Socket waits in an epoll instance of its own with
// EPOLLEXCLUSIVE, which wakes one. It also leaves the socket's blocking
// mode alone, receiving and sending with MSG_DONTWAIT.
//
// Every Socket has socket buffers (SO_SNDBUF, SO_RCVBUF) big enough for
// the largest message: a SOCK_SEQPACKET message must fit in the sender's
// buffer whole. The kernel caps the size at net.core.wmem_max (doubled);
// a socket that still cannot hold a message is refused with an error that
// says so.
//
// # Messages
//
// [Socket.Send] writes a payload of up to [MaxPayload] (64 KiB) bytes
// with up to [MaxFDs] descriptors; [Socket.Recv] returns the payload and
// one *os.File per descriptor. [Socket.SendConn] writes a connection
// message: one socket, the bytes already read from it and a [ConnInfo]
// (listener name, TLS flag, local and remote address, a client address
// from a PROXY header). [Socket.RecvConn] returns a [*Conn]: a net.Conn
// whose reads return those bytes first and then read the socket, whose
// RemoteAddr is the PROXY client when there was one and otherwise the
// socket's peer (getpeername, so the real client's), and whose Info
// returns the ConnInfo. A received Conn can be sent on again (a worker
// handing a keep-alive connection back to a multiplexer); what it has
// not returned from Read yet goes along.
//
// SendConn finds the socket of a *net.TCPConn, a *net.UnixConn, anything
// that implements syscall.Conn, or a wrapper that implements [Unwrapper]
// (NetConn() net.Conn). It refuses a *tls.Conn, whose TLS state cannot
// move: pass the raw connection with the ClientHello bytes and
// ConnInfo.TLS set, and let the receiver terminate TLS.
//
// # Descriptors
//
// Received descriptors arrive close-on-exec (net.UnixConn.ReadMsgUnix
// asks for MSG_CMSG_CLOEXEC) and are owned by an *os.File from the moment
// they are parsed out of the control message. Everything else follows
// from that: a message that is refused for any reason — larger than the
// receiver accepts (MSG_TRUNC), more descriptors than fit (MSG_CTRUNC),
// not as many descriptors as its header says, bad magic, version, kind or
// body — has its descriptors closed through their Files before the error
// is returned, and nothing ever closes a raw number that a File owns
// (whose finalizer would later close a reused number). The sender's
// descriptors stay open; close them when the send has succeeded.
//
// # Waiting, deadlines and a full queue
//
// Every Send and Recv takes a context. Socket operations go through the
// runtime's poller, so EAGAIN becomes a wait and EINTR a retry, and the
// context becomes a deadline: a blocked receive ends when its context
// does, and closing the Socket (or the Listener) wakes it.
//
// The kernel queue of a SOCK_SEQPACKET socket pair is small, bounded by
// the sender's SO_SNDBUF: about 13 messages of 8 KiB at the default
// size. This package asks for four times the largest message; the kernel
// doubles what it grants and caps it at twice net.core.wmem_max, so the
// queue holds about 26 such messages with the default wmem_max (by the
// same arithmetic) and 34 (measured) when wmem_max allows the full
// request. When it is full, a send
// waits until a receiver takes a message or the context ends; then it
// returns an error wrapping [ErrQueueFull] and the context's error
// (context.DeadlineExceeded or context.Canceled). A blocked send tries
// again at short intervals (0.5 to 10 ms) instead of waiting only for the
// poller, because the kernel reports a unix socket writable only once
// its queue has drained to a quarter of SO_SNDBUF; the same interval
// bounds how late a cancellation is noticed. A multiplexer therefore
// keeps a waiting connection in its own goroutine, sends it with the
// pool's queue timeout, and answers 503 on ErrQueueFull.
//
// On a SOCK_STREAM socket, a send or receive that stops inside a message
// (its context ended, or the peer sent garbage) leaves that direction of
// the socket without its place in the stream; every later operation in
// that direction returns the same error. SOCK_SEQPACKET has no such state.
//
// # Listener
//
// A [Listener] over a receiving Socket is a net.Listener:
// http.Server.Serve(l) serves connections that another process accepted,
// unchanged. Accept returns *Conn values (http.Server's ConnContext hook
// can read their Info). A refused message is a temporary Accept error,
// which http.Server logs and survives; Close wakes a blocked Accept;
// when every sending end is closed, Accept returns an error wrapping
// io.EOF and Serve returns.
//
// # Wire format
//
// Every message, on either socket type, is a 12-byte header followed by
// a body. Integers are big-endian.
//
//	offset size field
//	0      4    magic "mpmf"
//	4      1    version: 2
//	5      1    kind: 1 = data, 2 = connection
//	6      1    number of descriptors sent with the message (SCM_RIGHTS)
//	7      1    reserved, 0
//	8      4    body length in bytes
//	12     ...  body
//
// A data message's body is the payload, at most 65536 bytes; it carries
// 0 to 16 descriptors. A connection message carries exactly one
// descriptor, the connection's socket, and its body is:
//
//	size  field
//	1     flags: bit 0 = TLS, bit 1 = a seal follows; other bits 0
//	8     send time: the sender's CLOCK_MONOTONIC in nanoseconds, from
//	      which the receiver computes ConnInfo.Queued
//	2+n   listener name (length, then bytes; n <= 512)
//	1+n   local address network, as net.Addr.Network ("tcp", "unix")
//	2+n   local address, as net.Addr.String (n <= 512)
//	1+n   remote address network
//	2+n   remote address (n <= 512)
//	2+n   client address from a PROXY header, as netip.AddrPort text
//	      ("203.0.113.7:51234", "[2001:db8::1]:443"), or empty (n <= 512)
//	1+n   only with flag bit 1: ConnInfo.Seal (1 <= n <= 255)
//	rest  the bytes already read from the connection, at most 65536
//
// Addresses travel as text and are parsed back without name lookups:
// "tcp" into a *net.TCPAddr, "unix", "unixpacket" and "unixgram" into a
// *net.UnixAddr, anything else into an [Addr] that keeps the text.
//
// A receiver accepts exactly this layout: unknown version ([ErrVersion]),
// unknown kind, non-zero reserved bits, a body longer or shorter than the
// header says, fields that run past the body, a malformed PROXY address
// ([ErrMalformed]), or a descriptor count that differs from the header
// ([ErrTooManyFDs] or ErrMalformed) is refused, never guessed at. There
// is one encoding of each message, so every receiver reads it the same
// way. A new layout gets a new version number; a receiver that does not
// know it refuses the message, and the error names both versions.
//
// # Testing
//
// The tests need no privileges. They check for descriptor leaks by
// listing /proc/self/fd before and after, on the error paths too; they
// run receivers in child copies of the test binary; and FuzzDecode, with
// the seed corpus in testdata/fuzz/FuzzDecode, fuzzes the decoder:
//
//	go test -fuzz FuzzDecode -fuzztime 60s ./fdpass
//
// The benchmarks measure one pass (BenchmarkPass) and an HTTP
// accept-pass-serve loop against the same loop served directly
// (BenchmarkServe):
//
//	go test -run '^$' -bench . -benchtime 2s ./fdpass
package fdpass
