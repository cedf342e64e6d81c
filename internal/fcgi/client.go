package fcgi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// ErrNotSent is wrapped by the error of a Do that sent not a single byte of
// the request: the dial failed, or the first write wrote nothing. Only such
// a request can be retried blindly, and its body has not been read. Once a
// byte has reached the server the script may have run, and the error of Do
// never wraps ErrNotSent.
var ErrNotSent = errors.New("fcgi: request not sent")

// An EndRequestError is the error of a request that the server ended with
// a protocol status other than FCGI_REQUEST_COMPLETE: it refused the
// request (FCGI_OVERLOADED, FCGI_CANT_MPX_CONN, FCGI_UNKNOWN_ROLE) or sent
// a status that FastCGI 1.0 does not define.
type EndRequestError struct {
	AppStatus      uint32
	ProtocolStatus ProtocolStatus
}

func (e *EndRequestError) Error() string {
	return fmt.Sprintf("fcgi: the server ended the request with %v (app status %d)", e.ProtocolStatus, e.AppStatus)
}

// MaxStderrLine bounds the lines a Client passes to its Stderr function:
// a longer line comes in pieces of this size.
const MaxStderrLine = 4096

// A Client sends requests to a FastCGI server in the responder role, one
// connection per request. Its zero value is usable once Dial is set. A
// Client is safe for concurrent use: it holds no state between requests.
type Client struct {
	// Dial opens the connection for one request, such as a php-fpm pool's
	// unix socket. Do closes the connection when the request ends.
	Dial func(ctx context.Context) (net.Conn, error)

	// Stderr, if set, receives what the application writes to its error
	// stream (FCGI_STDERR), one line at a time: without its line end,
	// never empty, at most MaxStderrLine bytes. line is valid only during
	// the call. When Stderr is nil, the error stream is discarded.
	Stderr func(line []byte)
}

// readBufSize is the size of the buffered reader on the connection: a few
// of the 8 KiB records that PHP writes.
const readBufSize = 32 << 10

// buffers is what one request needs, reused from request to request.
type buffers struct {
	br    *bufio.Reader
	rec   record
	frame [frameLen]byte // STDIN records, and records on their way into head
	head  sink           // the records that open a request
	pairs []byte         // the encoded params
	line  []byte         // a stderr line in the making; capacity MaxStderrLine
}

var bufPool = sync.Pool{New: func() any {
	return &buffers{
		br:   bufio.NewReaderSize(nil, readBufSize),
		line: make([]byte, 0, MaxStderrLine),
	}
}}

// maxKeptBuf bounds the head and pairs buffers a pooled entry keeps: a
// request with huge params should not make every later one hold as much.
const maxKeptBuf = 64 << 10

func putBuffers(b *buffers) {
	b.br.Reset(nil)
	if cap(b.head) > maxKeptBuf {
		b.head = nil
	}
	if cap(b.pairs) > maxKeptBuf {
		b.pairs = nil
	}
	b.line = b.line[:0]
	bufPool.Put(b)
}

// sink is an io.Writer that appends to itself.
type sink []byte

func (s *sink) Write(p []byte) (int, error) {
	*s = append(*s, p...)
	return len(p), nil
}

// past is a deadline that has passed: setting it on a connection ends
// every read and write in progress on it.
var past = time.Unix(1, 0)

// Do sends one request and copies the response body (FCGI_STDOUT) to out
// as it arrives. It returns nil once the server ended the request with
// FCGI_REQUEST_COMPLETE and out took every byte; the application's own
// status (appStatus) of a complete request is not an error, as PHP always
// sends 0.
//
// params are the CGI environment (REQUEST_METHOD, SCRIPT_FILENAME, ...),
// sent in no particular order. body and contentLength are the request
// body: Do sends exactly contentLength bytes of it, and a body that ends
// sooner is an error. If params has CONTENT_LENGTH, it must agree. body
// is sent while the response is read, so a script that writes before it
// reads its input does not stall.
//
// If out has a method Flush() error (*cgiresp.Writer, *bufio.Writer), Do
// calls it whenever what it has read is written and the next record has
// not fully arrived: a burst of records becomes one write to out's client,
// and a script that flushes and then works reaches the client at once.
//
// The request is bounded by ctx: when ctx ends, Do closes the connection
// and returns an error that wraps ctx.Err(). A failure before a single
// byte of the request was sent wraps ErrNotSent; see there. A server that
// refuses the request gives an *EndRequestError. Do returns only once it
// no longer uses body; if a Read of body blocks, Do waits for it. Nor can
// it interrupt a Write to out: bound those with the server's write
// timeout.
func (c *Client) Do(ctx context.Context, params map[string]string, body io.Reader, contentLength int64, out io.Writer) error {
	if c.Dial == nil {
		return errors.New("fcgi: Client.Dial is nil")
	}
	if err := checkBody(params, body, contentLength); err != nil {
		return err
	}
	b := bufPool.Get().(*buffers)
	defer putBuffers(b)
	head, err := b.openRequest(params, contentLength == 0)
	if err != nil {
		return err
	}

	if ctx.Err() != nil {
		return notSent(ctx, nil)
	}
	conn, err := c.Dial(ctx)
	if err != nil {
		return notSent(ctx, fmt.Errorf("dial: %w", err))
	}
	if conn == nil {
		return notSent(ctx, errors.New("dial: Client.Dial returned no connection and no error"))
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(past) })
	defer stop()

	x := exchange{c: c, conn: conn, b: b, out: out}
	err = x.run(ctx, head, body, contentLength)
	if err != nil && !errors.Is(err, ErrNotSent) {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("fcgi: request ended by its context: %w (%v)", cerr, err)
		}
	}
	return err
}

// notSent is the error of a request of which no byte was sent.
func notSent(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w: %w", ErrNotSent, cerr)
	}
	return fmt.Errorf("%w: %w", ErrNotSent, err)
}

func checkBody(params map[string]string, body io.Reader, n int64) error {
	if n < 0 {
		return fmt.Errorf("fcgi: content length %d: FastCGI needs the length of the body", n)
	}
	if n > 0 && body == nil {
		return fmt.Errorf("fcgi: content length %d and no body", n)
	}
	if v, ok := params["CONTENT_LENGTH"]; ok {
		got, err := strconv.ParseInt(v, 10, 64)
		if v == "" {
			got, err = 0, nil
		}
		if err != nil || got != n {
			return fmt.Errorf("fcgi: param CONTENT_LENGTH %q with content length %d", v, n)
		}
	}
	return nil
}

// openRequest encodes the records that open a request: FCGI_BEGIN_REQUEST,
// the params, and, for a request without a body, the empty FCGI_STDIN.
func (b *buffers) openRequest(params map[string]string, noBody bool) ([]byte, error) {
	pairs := b.pairs[:0]
	for k, v := range params {
		if len(k) > maxPairLen || len(v) > maxPairLen {
			return nil, fmt.Errorf("fcgi: param %.40q of %d bytes, value of %d: longer than FastCGI allows", k, len(k), len(v))
		}
		pairs = appendPair(pairs, k, v)
	}
	b.pairs = pairs

	b.head = b.head[:0]
	sw := streamWriter{w: &b.head, t: typeBeginRequest, id: requestID, frame: &b.frame}
	// Role FCGI_RESPONDER, no flags: the server closes the connection
	// when the request ends.
	sw.Write([]byte{0, roleResponder, 0, 0, 0, 0, 0, 0})
	sw.t = typeParams
	sw.Write(pairs)
	sw.Close()
	if noBody {
		sw.t = typeStdin
		sw.Close()
	}
	return b.head, nil
}

// exchange is one request in progress on its connection.
type exchange struct {
	c    *Client
	conn net.Conn
	b    *buffers
	out  io.Writer
}

func (x *exchange) run(ctx context.Context, head []byte, body io.Reader, n int64) error {
	// The records that open the request go in one write, which settles
	// whether anything was sent: a write that fails having written
	// nothing left nothing in the connection.
	if m, err := x.conn.Write(head); err != nil {
		if m == 0 {
			return notSent(ctx, fmt.Errorf("writing the request: %w", err))
		}
		return fmt.Errorf("fcgi: writing the request: %d of %d bytes sent: %w", m, len(head), err)
	}
	if n == 0 {
		return x.readResponse()
	}

	bodyDone := make(chan error, 1)
	go func() {
		sw := streamWriter{w: x.conn, t: typeStdin, id: requestID, frame: &x.b.frame}
		err := sw.copyBody(body, n)
		var be *bodyReadError
		if errors.As(err, &be) {
			// The request cannot complete: stop reading its response.
			x.conn.SetDeadline(past)
		}
		bodyDone <- err
	}()
	err := x.readResponse()
	// The response has ended, or failed: a write of the body the server
	// will never read must not keep Do waiting.
	x.conn.SetDeadline(past)
	// A body that could not be read is the cause of whatever else failed.
	// A body that could not be sent is not reported: if the response
	// failed too, its error says more; if the response is complete, the
	// server chose not to read all of the body, as it may.
	var be *bodyReadError
	if errors.As(<-bodyDone, &be) {
		return be.err
	}
	return err
}

// readResponse reads records until FCGI_END_REQUEST.
func (x *exchange) readResponse() error {
	br := x.b.br
	br.Reset(x.conn)
	rec := &x.b.rec
	flusher, _ := x.out.(interface{ Flush() error })
	held := false // bytes went to out since its last Flush
	defer x.endStderr()
	for {
		if held && !recordBuffered(br) {
			if err := flusher.Flush(); err != nil {
				return fmt.Errorf("fcgi: flushing the response: %w", err)
			}
			held = false
		}
		if err := rec.read(br); err != nil {
			if err == io.EOF {
				return fmt.Errorf("fcgi: connection closed before %v: %w", typeEndRequest, io.ErrUnexpectedEOF)
			}
			return err
		}
		if rec.h.ID != requestID {
			return fmt.Errorf("fcgi: %v record for request %d, want %d", rec.h.Type, rec.h.ID, requestID)
		}
		switch rec.h.Type {
		case typeStdout:
			if p := rec.content(); len(p) > 0 {
				if _, err := x.out.Write(p); err != nil {
					return fmt.Errorf("fcgi: writing the response: %w", err)
				}
				held = flusher != nil
			}
		case typeStderr:
			x.stderr(rec.content())
		case typeEndRequest:
			if held {
				if err := flusher.Flush(); err != nil {
					return fmt.Errorf("fcgi: flushing the response: %w", err)
				}
			}
			return endRequest(rec.content())
		default:
			return fmt.Errorf("fcgi: unexpected %v record from the server", rec.h.Type)
		}
	}
}

// recordBuffered reports whether br holds the whole next record, so that
// reading it cannot block.
func recordBuffered(br *bufio.Reader) bool {
	n := br.Buffered()
	if n < headerLen {
		return false
	}
	h, _ := br.Peek(headerLen)
	return n >= headerLen+int(binary.BigEndian.Uint16(h[4:6]))+int(h[6])
}

func endRequest(p []byte) error {
	if len(p) != 8 {
		return fmt.Errorf("fcgi: %v record of %d bytes, want 8", typeEndRequest, len(p))
	}
	app, status := binary.BigEndian.Uint32(p), ProtocolStatus(p[4])
	if status != StatusRequestComplete {
		return &EndRequestError{AppStatus: app, ProtocolStatus: status}
	}
	return nil
}

// stderr cuts the error stream into lines for the Stderr function.
func (x *exchange) stderr(p []byte) {
	if x.c.Stderr == nil {
		return
	}
	line := x.b.line
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		piece := p
		if i >= 0 {
			piece = p[:i]
		}
		if room := MaxStderrLine - len(line); len(piece) > room {
			line = append(line, piece[:room]...)
			x.emit(line)
			line = line[:0]
			p = p[room:]
			continue
		}
		line = append(line, piece...)
		if i < 0 {
			break
		}
		x.emit(line)
		line = line[:0]
		p = p[i+1:]
	}
	x.b.line = line
}

// endStderr passes on the last line of the error stream, if it had no
// line end.
func (x *exchange) endStderr() {
	if len(x.b.line) > 0 {
		x.emit(x.b.line)
		x.b.line = x.b.line[:0]
	}
}

func (x *exchange) emit(line []byte) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > 0 {
		x.c.Stderr(line)
	}
}
