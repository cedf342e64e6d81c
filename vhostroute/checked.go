package vhostroute

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
)

// ErrBadFraming is wrapped by the error a [CheckedConn] returns when a
// request body's framing (its chunked encoding) is malformed: the
// connection cannot be read past it.
var ErrBadFraming = errors.New("malformed request body framing")

// maxChunkLine bounds a chunk-size line, extensions included.
const maxChunkLine = 4 << 10

// CheckedConn is a connection whose every HTTP/1.x request head is held to
// a [HeadReader]'s rules before the reader of the connection (an
// http.Server) sees it: the first request of a connection and every one
// after it, pipelined or kept alive, meets the rules a multiplexer applied
// to the first. A server's own parser is often laxer (net/http takes bare
// LF line ends and obsolete line folding, and prefers Transfer-Encoding to
// Content-Length where both are sent); two parsers that disagree on where
// a request ends are how requests are smuggled.
//
// It follows the message framing to find each head: a Content-Length body
// is passed through by count, a chunked one by its chunk lines (which must
// end in CRLF; a bare LF, an oversized line or a bad size fails the read
// with an error wrapping [ErrBadFraming], and the connection is of no
// further use). A head that breaks a rule is not passed on: the reader
// gets, in its place, the bytes refuse returns (a request the server
// recognizes as a refusal, so that it answers in order, after the
// requests before it), and then end of file.
//
// Reads past a head never wait for more than the head needs, and the
// connection's deadlines are the caller's: set them as for the connection
// itself. A read that times out loses nothing: read again after moving
// the deadline. A CheckedConn is for one reader at a time.
type CheckedConn struct {
	net.Conn
	heads  *HeadReader
	refuse func(*HeadError) []byte

	mu      sync.Mutex
	in      []byte // read from Conn, not yet looked at
	out     []byte // looked at, not yet returned
	state   checkState
	hp      *headParser // the head being read, nil between heads
	remain  int64       // bytes left of a body or a chunk
	trailer int         // bytes of the trailer section so far
	err     error       // sticky: returned once out is empty

	// For tests: bytes of the connection passed on, and a function told
	// where each complete request (head and body) passed on ends.
	passed int64
	onEnd  func(int64)
}

// ended notes that a complete request was passed on.
func (c *CheckedConn) ended() {
	if c.onEnd != nil {
		c.onEnd(c.passed)
	}
}

type checkState int

const (
	inHead      checkState = iota
	inBody                 // remain bytes of a Content-Length body
	inChunkLine            // a chunk-size line
	inChunk                // remain bytes of chunk data
	inChunkEnd             // the CRLF after chunk data
	inTrailer              // trailer fields, up to the blank line
	closed                 // nothing more: err is returned
)

// CheckRequests wraps c, whose next bytes are the start of a request
// head. refuse makes the replacement for a head that breaks the rules
// (it must not return nil).
func (r *HeadReader) CheckRequests(c net.Conn, refuse func(*HeadError) []byte) *CheckedConn {
	return &CheckedConn{Conn: c, heads: r, refuse: refuse}
}

// NetConn returns the wrapped connection.
func (c *CheckedConn) NetConn() net.Conn { return c.Conn }

// Buffered returns the bytes read from the connection that Read has not
// returned yet, and forgets them: whoever takes the connection over (to
// pass it to another process) must give them along.
func (c *CheckedConn) Buffered() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := append(append([]byte(nil), c.out...), c.in...)
	c.out, c.in = nil, nil
	return b
}

// Read returns the connection's bytes once they have been checked.
func (c *CheckedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[n:]
			return n, nil
		}
		if c.state == closed {
			return 0, c.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		if c.state == inBody || c.state == inChunk {
			// Body bytes go straight through, up to where they end.
			if len(c.in) == 0 {
				want := int64(len(p))
				if want > c.remain {
					want = c.remain
				}
				n, err := c.Conn.Read(p[:want])
				c.remain -= int64(n)
				c.passed += int64(n)
				c.bodyDone()
				if n > 0 {
					return n, nil
				}
				return 0, c.upstream(err)
			}
			n := int64(len(c.in))
			if n > c.remain {
				n = c.remain
			}
			c.out, c.in = c.in[:n], c.in[n:]
			c.remain -= n
			c.passed += n
			c.bodyDone()
			continue
		}
		done, err := c.step()
		if err != nil {
			c.fail(err)
			continue
		}
		if done {
			continue
		}
		// More bytes are needed to go on.
		if err := c.fill(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// A deadline, which the reader may move and read
				// again (net/http aborts its read-ahead after every
				// request this way): nothing is lost or ended.
				return 0, err
			}
			// What was read of an incomplete head or line goes on as it
			// is: the server sees the same short read the client made.
			c.out, c.in = c.in, nil
			c.passed += int64(len(c.out))
			c.state, c.err = closed, c.upstream(err)
		}
	}
}

// upstream is err as the reader should see it: io.EOF for a closed
// connection, the error itself otherwise.
func (c *CheckedConn) upstream(err error) error {
	if err == nil {
		return io.ErrNoProgress
	}
	return err
}

// bodyDone moves on once a body or a chunk has been passed through.
func (c *CheckedConn) bodyDone() {
	if c.remain > 0 {
		return
	}
	if c.state == inChunk {
		c.state = inChunkEnd
	} else {
		c.state = inHead
		c.ended()
	}
}

// fill reads more of the connection into c.in.
func (c *CheckedConn) fill() error {
	maxHead, _, _, _ := c.heads.limits()
	if len(c.in) >= maxHead+maxChunkLine {
		// step would have failed first; this only keeps the bound.
		return fmt.Errorf("vhostroute: checked connection: %d bytes without a complete head or line", len(c.in))
	}
	if cap(c.in)-len(c.in) < 4<<10 {
		n := max(2*cap(c.in), 4<<10)
		c.in = append(make([]byte, 0, n), c.in...)
	}
	n, err := c.Conn.Read(c.in[len(c.in):cap(c.in)])
	c.in = c.in[:len(c.in)+n]
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// fail ends the connection: a bad head is replaced by refuse's bytes, a
// framing error fails the read.
func (c *CheckedConn) fail(err error) {
	c.in = nil
	var he *HeadError
	if errors.As(err, &he) {
		c.out = c.refuse(he)
		c.err = io.EOF
	} else {
		c.err = err
	}
	c.state = closed
}

// step looks at c.in in the current state and moves what it has checked
// to c.out. It reports whether it made progress; false means it needs
// more bytes.
func (c *CheckedConn) step() (bool, error) {
	switch c.state {
	case inHead:
		if len(c.in) == 0 {
			return false, nil
		}
		// The parser keeps its place between reads: a client that
		// sends its head a byte at a time costs each byte once.
		maxHead, maxLine, maxFields, _ := c.heads.limits()
		if c.hp == nil {
			c.hp = &headParser{maxLine: maxLine, maxFields: maxFields, maxHead: maxHead}
		}
		view := c.in
		if len(view) > maxHead {
			view = view[:maxHead]
		}
		done, herr := c.hp.scan(view)
		if herr != nil {
			return false, herr
		}
		if !done {
			if len(c.in) >= maxHead {
				if !c.hp.inHeaders {
					return false, headErr(http.StatusRequestURITooLong, nil, "request line longer than %d bytes", maxLine)
				}
				return false, headErr(http.StatusRequestHeaderFieldsTooLarge, nil, "head longer than %d bytes", maxHead)
			}
			return false, nil
		}
		h, err := c.hp.finish(view)
		c.hp = nil
		if err != nil {
			return false, err
		}
		c.out, c.in = c.in[:h.Len:h.Len], c.in[h.Len:]
		c.passed += int64(h.Len)
		switch {
		case h.Chunked:
			c.state = inChunkLine
		case h.ContentLength > 0:
			c.state, c.remain = inBody, h.ContentLength
		default:
			c.ended()
		}
		return true, nil
	case inChunkLine, inChunkEnd, inTrailer:
		line, ok, err := c.line()
		if err != nil || !ok {
			return false, err
		}
		switch c.state {
		case inChunkEnd:
			if len(line) != 2 {
				return false, fmt.Errorf("vhostroute: chunk data not followed by CRLF: %w", ErrBadFraming)
			}
			c.state = inChunkLine
		case inChunkLine:
			size, err := chunkSize(line[:len(line)-2])
			if err != nil {
				return false, err
			}
			if size == 0 {
				c.state, c.trailer = inTrailer, 0
			} else {
				c.state, c.remain = inChunk, size
			}
		case inTrailer:
			maxHead, _, _, _ := c.heads.limits()
			if c.trailer += len(line); c.trailer > maxHead {
				return false, fmt.Errorf("vhostroute: trailer section longer than %d bytes: %w", maxHead, ErrBadFraming)
			}
			if len(line) == 2 {
				c.state, c.hp = inHead, nil
				defer c.ended()
				break
			}
			// A trailer field is a header field, held to the same
			// rules (net/http reads trailers as a header block).
			if c.hp == nil {
				_, maxLine, maxFields, _ := c.heads.limits()
				c.hp = &headParser{maxLine: maxLine, maxFields: maxFields, maxHead: maxHead, inHeaders: true}
			}
			if herr := c.hp.field(line, 0, len(line)-2); herr != nil {
				return false, fmt.Errorf("vhostroute: trailer field: %s: %w", herr.Reason, ErrBadFraming)
			}
		}
		c.out = line
		c.passed += int64(len(line))
		return true, nil
	}
	return false, nil
}

// line takes one CRLF-terminated line off c.in, CRLF included.
func (c *CheckedConn) line() (line []byte, ok bool, err error) {
	for i, b := range c.in {
		if b == '\n' {
			if i == 0 || c.in[i-1] != '\r' {
				return nil, false, fmt.Errorf("vhostroute: bare LF in a chunked body: %w", ErrBadFraming)
			}
			line, c.in = c.in[:i+1:i+1], c.in[i+1:]
			return line, true, nil
		}
		if b == '\r' && i+1 < len(c.in) && c.in[i+1] != '\n' {
			return nil, false, fmt.Errorf("vhostroute: bare CR in a chunked body: %w", ErrBadFraming)
		}
		if i >= maxChunkLine {
			return nil, false, fmt.Errorf("vhostroute: chunk line longer than %d bytes: %w", maxChunkLine, ErrBadFraming)
		}
	}
	return nil, false, nil
}

// chunkSize parses a chunk-size line without its CRLF: hex digits, then
// optional extensions after ';' (RFC 9112 §7.1).
func chunkSize(b []byte) (int64, error) {
	var n int64
	i := 0
	for ; i < len(b); i++ {
		c := b[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto end
		}
		if i >= 15 {
			return 0, fmt.Errorf("vhostroute: chunk size %s too large: %w", quoteCut(b), ErrBadFraming)
		}
		n = n<<4 | int64(d)
	}
end:
	if i == 0 {
		return 0, fmt.Errorf("vhostroute: chunk size line %s: %w", quoteCut(b), ErrBadFraming)
	}
	rest := b[i:]
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	if len(rest) > 0 && rest[0] != ';' {
		return 0, fmt.Errorf("vhostroute: chunk size line %s: %w", quoteCut(b), ErrBadFraming)
	}
	for _, c := range rest {
		if c < ' ' && c != '\t' || c == 0x7f {
			return 0, fmt.Errorf("vhostroute: control byte in a chunk extension: %w", ErrBadFraming)
		}
	}
	return n, nil
}

// RefusalStatus is the status a refused head should be answered with:
// he.Status, or 400.
func RefusalStatus(he *HeadError) int {
	if he == nil || he.Status < 400 {
		return http.StatusBadRequest
	}
	return he.Status
}
