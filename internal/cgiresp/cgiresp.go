// Package cgiresp turns a CGI response stream into an HTTP response as the
// stream arrives.
//
// A CGI script (php-cgi over pipes, or PHP behind FastCGI) answers with
// header lines, a blank line and the body (RFC 3875, section 6). A
// [Writer] takes those bytes in pieces of any size, parses the header
// block, writes the status and headers to an [http.ResponseWriter], and
// then passes the body through. It follows net/http/cgi where the RFC
// leaves room:
//
//   - lines may end in CRLF or in a bare LF;
//   - "Status: 404 Not Found" sets the status code (the reason phrase is
//     net/http's own); a Location header without a Status is a 302;
//   - every other header is copied, repeated headers keeping every value.
//
// Unlike net/http/cgi, a header block that does not parse is not partly
// applied: the client gets a 502 and Write returns an error that names the
// offending line. A Status outside 200-999 is refused the same way (1xx
// codes are interim responses in HTTP and cannot end one).
//
// The body streams. Small writes are held back and coalesced (up to 64 KiB)
// until the caller calls [Writer.Flush], which it does when it has nothing
// more at hand: a burst of small pieces becomes one write to the client,
// and a script that flushes its output and then works still reaches the
// client at once. [Writer.Close] ends the response.
//
// When something fails, [Writer.Started] tells the caller whether the
// client has already been sent a status (by the script or by the Writer's
// own 502): if not, the caller may still answer with its own error page.
// [Writer.Err] tells whether the Writer itself failed, the response then
// being either its own complete 502 or a client that is gone.
package cgiresp

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// MaxHeaderBytes bounds the header block of a response, the blank line
// included. A longer block is an error ([ErrHeaderTooLarge]) and a 502.
const MaxHeaderBytes = 1 << 20

// bufSize bounds the body bytes held back between flushes. A write of at
// least this size goes to the client without being copied.
const bufSize = 64 << 10

var (
	// ErrHeaderTooLarge is returned when the header block exceeds
	// MaxHeaderBytes before its blank line.
	ErrHeaderTooLarge = fmt.Errorf("cgiresp: header block longer than %d bytes", MaxHeaderBytes)

	// ErrEmptyResponse is returned by Close when the script wrote nothing
	// at all.
	ErrEmptyResponse = errors.New("cgiresp: empty response")

	errClosed = errors.New("cgiresp: write after Close")
)

// The texts of the 502 pages the Writer sends itself. The only CGI scripts
// this project runs are PHP's.
const (
	emptyPage     = "empty response from PHP"
	badHeaderPage = "bad response headers from PHP"
)

// bufPool holds the buffers of held-back body bytes, each of capacity
// bufSize.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, bufSize)
	return &b
}}

// A Writer turns the CGI response written to it into an HTTP response on
// an http.ResponseWriter. Create one with NewWriter for each response. A
// Writer is not safe for concurrent use.
type Writer struct {
	rw http.ResponseWriter
	rc *http.ResponseController

	head      []byte // the header block so far, until its blank line
	lineStart int    // where the current (incomplete) header line starts in head

	inBody  bool    // the header block is complete and sent
	noBody  bool    // the status forbids a body: body bytes are dropped
	buf     *[]byte // body bytes held back, from bufPool; nil when none is held
	dirty   bool    // bytes went to rw since its last flush
	started bool    // rw.WriteHeader was called
	closed  bool
	err     error // sticky: the first failure
}

// NewWriter returns a Writer that writes the HTTP response to rw.
func NewWriter(rw http.ResponseWriter) *Writer {
	return &Writer{rw: rw, rc: http.NewResponseController(rw)}
}

// Started reports whether anything was sent to the ResponseWriter: a
// status line, the script's or the Writer's own 502. Until then the caller
// may still send a response of its own.
func (w *Writer) Started() bool { return w.started }

// Err returns the Writer's first error: the response was bad (the client
// got the Writer's 502 for it, a complete response) or the client could
// not be written to. A caller whose source of the response failed while
// Started is true and Err is nil has a response cut short on its hands.
func (w *Writer) Err() error { return w.err }

// Write takes the next bytes of the CGI response. It returns an error when
// the header block is malformed or too large (the client then got a 502),
// or when writing to the client failed; every later call returns the same
// error.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errClosed
	}
	n := len(p)
	if !w.inBody {
		body, done, err := w.readHeader(p)
		if err != nil {
			w.fail(err)
			return 0, err
		}
		if !done {
			return n, nil
		}
		p = body
	}
	if err := w.writeBody(p); err != nil {
		return 0, err
	}
	return n, nil
}

// readHeader adds p to the header block. When p completes the block, it
// sends the status and headers and returns the bytes of p after the blank
// line.
func (w *Writer) readHeader(p []byte) (body []byte, done bool, err error) {
	if w.head == nil {
		w.head = make([]byte, 0, 512) // PHP's usual header block fits
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		piece := p
		if i >= 0 {
			piece = p[:i+1]
		}
		if len(w.head)+len(piece) > MaxHeaderBytes {
			return nil, false, ErrHeaderTooLarge
		}
		w.head = append(w.head, piece...)
		p = p[len(piece):]
		if i < 0 {
			return nil, false, nil
		}
		line := bytes.TrimSuffix(w.head[w.lineStart:len(w.head)-1], []byte("\r"))
		if len(line) == 0 {
			if err := w.sendHeader(w.head[:w.lineStart]); err != nil {
				return nil, false, err
			}
			return p, true, nil
		}
		w.lineStart = len(w.head)
	}
	return nil, false, nil
}

// sendHeader parses the header block (without its blank line; its last
// line may lack a line end) and sends it.
func (w *Writer) sendHeader(block []byte) error {
	h, code, err := parseHeader(block)
	if err != nil {
		return err
	}
	dst := w.rw.Header()
	for k, vs := range h {
		for _, v := range vs {
			dst.Add(k, v)
		}
	}
	w.head = nil
	w.inBody = true
	w.noBody = !bodyAllowed(code)
	w.started = true
	w.dirty = true
	w.rw.WriteHeader(code)
	return nil
}

// parseHeader parses a CGI header block into the headers to send and the
// status code.
func parseHeader(block []byte) (http.Header, int, error) {
	h := make(http.Header)
	code, status := 0, ""
	for len(block) > 0 {
		line := block
		if i := bytes.IndexByte(block, '\n'); i >= 0 {
			line, block = block[:i], block[i+1:]
		} else {
			block = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			continue // only the unterminated last line of a block that Close ends can be empty
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, 0, fmt.Errorf("cgiresp: header line without a colon: %q", clip(line))
		}
		if !httpguts.ValidHeaderFieldName(string(name)) {
			return nil, 0, fmt.Errorf("cgiresp: bad header name %q", clip(name))
		}
		v := textproto.TrimString(string(value))
		if !httpguts.ValidHeaderFieldValue(v) {
			return nil, 0, fmt.Errorf("cgiresp: bad value of header %s: %q", name, clip(value))
		}
		key := textproto.CanonicalMIMEHeaderKey(string(name))
		if key != "Status" {
			h[key] = append(h[key], v)
			continue
		}
		if code != 0 {
			return nil, 0, fmt.Errorf("cgiresp: two Status headers %q and %q", status, v)
		}
		n, err := parseStatus(v)
		if err != nil {
			return nil, 0, err
		}
		code, status = n, v
	}
	if code == 0 {
		code = http.StatusOK
		if len(h["Location"]) > 0 {
			code = http.StatusFound
		}
	}
	return h, code, nil
}

// parseStatus parses the value of a Status header: three digits, then the
// end or a space and a reason phrase.
func parseStatus(v string) (int, error) {
	bad := func(why string) (int, error) {
		return 0, fmt.Errorf("cgiresp: bad Status header %q%s", clip([]byte(v)), why)
	}
	if len(v) < 3 || (len(v) > 3 && v[3] != ' ') {
		return bad("")
	}
	code := 0
	for _, c := range []byte(v[:3]) {
		if c < '0' || c > '9' {
			return bad("")
		}
		code = code*10 + int(c-'0')
	}
	switch {
	case code < 100:
		return bad("")
	case code < 200:
		return bad(": an interim (1xx) status cannot end a response")
	}
	return code, nil
}

// bodyAllowed reports whether a response with this status may have a body
// (RFC 9110, sections 15.3.5 and 15.4.5); net/http refuses body writes
// otherwise, and a script that printed something after a 304 should not
// fail the response for it.
func bodyAllowed(code int) bool {
	return code != http.StatusNoContent && code != http.StatusNotModified
}

// clip bounds the text an error quotes: a header block may be a megabyte.
func clip(b []byte) []byte {
	const max = 100
	if len(b) > max {
		return b[:max]
	}
	return b
}

// writeBody passes body bytes on, holding small writes back until Flush.
func (w *Writer) writeBody(p []byte) error {
	if w.noBody || len(p) == 0 {
		return nil
	}
	if w.buf == nil {
		if len(p) >= bufSize {
			return w.writeOut(p)
		}
		w.buf = bufPool.Get().(*[]byte)
	}
	b := *w.buf
	if len(b)+len(p) > cap(b) {
		if err := w.writeOut(b); err != nil {
			return err
		}
		b = b[:0]
		*w.buf = b
		if len(p) >= cap(b) {
			return w.writeOut(p)
		}
	}
	*w.buf = append(b, p...)
	return nil
}

// writeOut writes body bytes to the client.
func (w *Writer) writeOut(p []byte) error {
	if _, err := w.rw.Write(p); err != nil {
		err = fmt.Errorf("cgiresp: writing the body: %w", err)
		w.fail(err)
		return err
	}
	w.dirty = true
	return nil
}

// Flush sends the body bytes held back to the client and flushes the
// ResponseWriter, so that they leave now. Before the header block is
// complete it does nothing: there is nothing the client can be sent yet.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if !w.inBody {
		return nil
	}
	if w.buf != nil && len(*w.buf) > 0 {
		b := *w.buf
		*w.buf = b[:0]
		if err := w.writeOut(b); err != nil {
			return err
		}
	}
	if !w.dirty {
		return nil
	}
	w.dirty = false
	if err := w.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		err = fmt.Errorf("cgiresp: flushing: %w", err)
		w.fail(err)
		return err
	}
	return nil
}

// Close ends the response once the CGI response has ended. A response
// that ended inside its header block is taken as all headers and no body;
// an empty response is a 502 and ErrEmptyResponse. Close flushes what is
// held back and returns the Writer's first error, if any. Call it only
// when the script's output ended normally: after a transport failure, a
// response that is cut short must not be made to look complete.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	defer w.release()
	if w.err != nil {
		return w.err
	}
	if !w.inBody {
		if len(w.head) == 0 {
			w.fail(ErrEmptyResponse)
			return w.err
		}
		if err := w.sendHeader(w.head); err != nil {
			w.fail(err)
			return err
		}
	}
	return w.Flush()
}

// fail records the Writer's first error; before anything was sent, the
// client gets a 502 for it.
func (w *Writer) fail(err error) {
	if w.err != nil {
		return
	}
	w.err = err
	w.head = nil
	w.release()
	if w.started {
		return
	}
	w.started = true
	page := badHeaderPage
	if err == ErrEmptyResponse {
		page = emptyPage
	}
	http.Error(w.rw, page, http.StatusBadGateway)
}

// release returns the held-back buffer to the pool.
func (w *Writer) release() {
	if w.buf != nil {
		*w.buf = (*w.buf)[:0]
		bufPool.Put(w.buf)
		w.buf = nil
	}
}
