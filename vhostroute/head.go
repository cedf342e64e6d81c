package vhostroute

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// Defaults for [HeadReader] and [HelloReader] fields left zero.
const (
	DefaultMaxHeadBytes    = 32 << 10 // whole head; more is 431
	DefaultMaxRequestLine  = 8 << 10  // request line; more is 414 (Apache's LimitRequestLine is 8190)
	DefaultMaxHeaderFields = 100      // header lines; more is 431 (Apache's LimitRequestFields)
	DefaultHeadTimeout     = 20 * time.Second
)

// DeadlineReader is what the readers read from. A net.Conn is one; the
// deadline is what keeps a slow or silent client from holding a reader
// for longer than its Timeout.
type DeadlineReader interface {
	io.Reader
	SetReadDeadline(t time.Time) error
}

// HeadReader reads HTTP/1.x request heads with bounds. The zero value
// uses the defaults; a HeadReader is safe for concurrent use as long as
// its fields are not changed.
type HeadReader struct {
	// MaxHeadBytes bounds the bytes read: the request line, the header
	// fields and the blank line must fit in it (431 otherwise). Nothing
	// beyond it is ever read. Zero means DefaultMaxHeadBytes.
	MaxHeadBytes int
	// MaxRequestLine bounds the request line without its CRLF (414
	// otherwise, as Apache answers for a long request line). Zero means
	// DefaultMaxRequestLine.
	MaxRequestLine int
	// MaxHeaderFields bounds the number of header field lines (431
	// otherwise). Zero means DefaultMaxHeaderFields.
	MaxHeaderFields int
	// Timeout bounds the whole read, from the call to the end of the
	// head, however the client paces its bytes (408 otherwise). Zero
	// means DefaultHeadTimeout.
	Timeout time.Duration
}

// Head is a parsed request head.
type Head struct {
	// Raw is every byte taken from the connection (after any prefix
	// given to ReadHeadAfter, which it starts with): the head and
	// whatever the client sent behind it in the same reads (a body,
	// pipelined requests). Pass all of it on, unchanged, to whoever
	// serves the request.
	Raw []byte
	// Len is the length of the head in Raw, through its blank line.
	Len int

	Method string // "GET"
	Target string // request-target as sent: "/index.php?a=b", "http://example.com/", "*"
	Proto  string // "HTTP/1.1"

	// Host is the normalized host name the request is for (see
	// [NormalizeHost]), "" when there is none (HTTP/1.0 without Host, or
	// an empty Host field): route such a request to the listener's
	// default. For an absolute-form target it is the target's host, not
	// the Host field's.
	Host string
	// Port is the port given with Host, "" when none.
	Port string

	// ContentLength is the body's length from a Content-Length field, -1
	// when there is none. Chunked says the body is chunked
	// (Transfer-Encoding: chunked). A head never has both.
	ContentLength int64
	Chunked       bool
}

// HeadError is the error [HeadReader.ReadHead] returns: what was wrong
// and the HTTP status to answer with.
type HeadError struct {
	// Status is the HTTP status code for the answer: 400, 408, 414, 431
	// or 505.
	Status int
	// Reason says what was wrong, naming the offending value.
	Reason string
	// Err is the underlying error, if any: the read error (a deadline
	// error for 408, io.EOF when the client sent nothing and closed,
	// io.ErrUnexpectedEOF when it closed mid-head) or a *HostError.
	Err error
}

func (e *HeadError) Error() string {
	s := "vhostroute: request head: " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s + " (HTTP " + strconv.Itoa(e.Status) + " " + http.StatusText(e.Status) + ")"
}

func (e *HeadError) Unwrap() error { return e.Err }

func headErr(status int, err error, format string, args ...any) *HeadError {
	return &HeadError{Status: status, Reason: fmt.Sprintf(format, args...), Err: err}
}

// quoteCut quotes b for an error message, cut to a readable length.
func quoteCut(b []byte) string {
	if len(b) > 64 {
		return strconv.Quote(string(b[:64])) + "..."
	}
	return strconv.Quote(string(b))
}

func (r *HeadReader) limits() (maxHead, maxLine, maxFields int, timeout time.Duration) {
	maxHead, maxLine, maxFields, timeout = r.MaxHeadBytes, r.MaxRequestLine, r.MaxHeaderFields, r.Timeout
	if maxHead <= 0 {
		maxHead = DefaultMaxHeadBytes
	}
	if maxLine <= 0 {
		maxLine = DefaultMaxRequestLine
	}
	if maxFields <= 0 {
		maxFields = DefaultMaxHeaderFields
	}
	if timeout <= 0 {
		timeout = DefaultHeadTimeout
	}
	return
}

// ReadHead reads one request head from c. It sets a read deadline on c
// for the duration and clears it before returning. On error, the
// returned Head's Raw still holds every byte read, so the caller can log
// it or pass it on; the error is a *[HeadError] carrying the status to
// answer with.
func (r *HeadReader) ReadHead(c DeadlineReader) (Head, error) {
	return r.ReadHeadAfter(c, nil)
}

// ReadHeadAfter is ReadHead for a connection of which prefix was already
// read (a keep-alive connection handed back by a worker with the start of
// its next request). Raw starts with a copy of prefix.
func (r *HeadReader) ReadHeadAfter(c DeadlineReader, prefix []byte) (Head, error) {
	maxHead, maxLine, maxFields, timeout := r.limits()
	deadline := time.Now().Add(timeout)
	if err := c.SetReadDeadline(deadline); err != nil {
		return Head{}, headErr(http.StatusBadRequest, err, "cannot set a read deadline")
	}
	defer c.SetReadDeadline(time.Time{})

	size := 4 << 10
	if size > maxHead {
		size = maxHead
	}
	if size < len(prefix) {
		size = len(prefix)
	}
	buf := append(make([]byte, 0, size), prefix...)
	p := headParser{maxLine: maxLine, maxFields: maxFields, maxHead: maxHead}
	// view is what the parser may look at: never more than maxHead
	// bytes, even when a long prefix was handed in.
	view := func() []byte {
		if len(buf) > maxHead {
			return buf[:maxHead]
		}
		return buf
	}
	finish := func() (Head, error) {
		h, err := p.finish(view())
		h.Raw = buf
		return h, err
	}
	for {
		done, herr := p.scan(view())
		if herr != nil {
			return Head{Raw: buf}, herr
		}
		if done {
			return finish()
		}
		if len(buf) >= maxHead {
			if !p.inHeaders {
				return Head{Raw: buf}, headErr(http.StatusRequestURITooLong, nil, "request line longer than %d bytes", maxLine)
			}
			return Head{Raw: buf}, headErr(http.StatusRequestHeaderFieldsTooLarge, nil, "head longer than %d bytes", maxHead)
		}
		if len(buf) == cap(buf) {
			n := 2 * cap(buf)
			if n > maxHead {
				n = maxHead
			}
			buf = append(make([]byte, 0, n), buf...)
		}
		if time.Now().After(deadline) {
			return Head{Raw: buf}, headErr(http.StatusRequestTimeout, os.ErrDeadlineExceeded, "head not complete within %v", timeout)
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if n > 0 {
				// Look at what arrived with the error first: it may
				// complete the head, or be a better reason to fail.
				if done, herr := p.scan(view()); herr != nil {
					return Head{Raw: buf}, herr
				} else if done {
					return finish()
				}
			}
			return Head{Raw: buf}, readErr(err, len(buf), timeout)
		}
	}
}

func readErr(err error, got int, timeout time.Duration) *HeadError {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return headErr(http.StatusRequestTimeout, err, "head not complete within %v (%d bytes received)", timeout, got)
	case err == io.EOF && got == 0:
		return headErr(http.StatusBadRequest, io.EOF, "connection closed before a request")
	case err == io.EOF:
		return headErr(http.StatusBadRequest, io.ErrUnexpectedEOF, "connection closed after %d bytes, in the head", got)
	}
	return headErr(http.StatusBadRequest, err, "read failed after %d bytes", got)
}

// ParseHead parses a complete request head from b, with r's limits but
// no reading: Raw is b. A head that is not complete within b is a 400
// (wrapping io.ErrUnexpectedEOF) unless a limit is exceeded first.
func (r *HeadReader) ParseHead(b []byte) (Head, error) {
	maxHead, maxLine, maxFields, _ := r.limits()
	p := headParser{maxLine: maxLine, maxFields: maxFields, maxHead: maxHead}
	lim := b
	if len(lim) > maxHead {
		lim = lim[:maxHead]
	}
	done, herr := p.scan(lim)
	if herr != nil {
		return Head{Raw: b}, herr
	}
	if done {
		h, err := p.finish(lim)
		h.Raw = b
		return h, err
	}
	if len(b) >= maxHead {
		if !p.inHeaders {
			return Head{Raw: b}, headErr(http.StatusRequestURITooLong, nil, "request line longer than %d bytes", maxLine)
		}
		return Head{Raw: b}, headErr(http.StatusRequestHeaderFieldsTooLarge, nil, "head longer than %d bytes", maxHead)
	}
	return Head{Raw: b}, readErr(io.EOF, len(b), 0)
}

// maxLeadingEmpty is how many empty lines may precede the request line.
const maxLeadingEmpty = 2

// headParser checks a head line by line as bytes arrive, so that a bad
// byte is answered when it arrives, not when the head ends or times out.
type headParser struct {
	maxLine, maxFields, maxHead int

	next      int  // start of the first line not yet complete
	searched  int  // buf[next:searched] holds no LF: a slow client's bytes are searched once
	inHeaders bool // request line seen
	fields    int
	empty     int // empty lines before the request line

	reqLine      [2]int // offsets of the request line in buf
	method, targ [2]int // offsets within buf
	proto        [2]int
	host         [2]int
	hostSeen     bool
	// Content-Length and Transfer-Encoding seen: both at once is refused.
	lengthSeen, codingSeen bool
	length                 int64
	chunked                bool
}

// scan checks every complete line from p.next on. It reports done at the
// blank line that ends the head.
//
// The answer must not depend on how the bytes arrived, so problems are
// reported in the order of the bytes that reveal them: a bare CR when
// the byte after it arrives, a request line over its limit when its
// limit+2nd byte arrives without an LF (only those bytes are looked at),
// a bare LF when it arrives.
func (p *headParser) scan(buf []byte) (done bool, err *HeadError) {
	for {
		rest := buf[p.next:]
		from := max(p.searched-p.next, 0)
		lf := bytes.IndexByte(rest[from:], '\n')
		if lf >= 0 {
			lf += from
		}
		if !p.inHeaders && (lf < 0 && len(rest) > p.maxLine+1 || lf > p.maxLine+1) {
			if bareCR(rest[:p.maxLine+2]) {
				return false, headErr(http.StatusBadRequest, nil, "bare CR (not followed by LF)")
			}
			return false, headErr(http.StatusRequestURITooLong, nil, "request line longer than %d bytes", p.maxLine)
		}
		// rest[:from] was searched before and held no bare CR; only a CR
		// at its very end can have become one.
		crFrom := max(from-1, 0)
		if lf < 0 {
			p.searched = len(buf)
			if bareCR(rest[crFrom:]) {
				return false, headErr(http.StatusBadRequest, nil, "bare CR (not followed by LF)")
			}
			return false, nil
		}
		if bareCR(rest[crFrom:lf]) {
			return false, headErr(http.StatusBadRequest, nil, "bare CR (not followed by LF)")
		}
		if lf == 0 || rest[lf-1] != '\r' {
			return false, headErr(http.StatusBadRequest, nil, "bare LF as a line end (CRLF is required)")
		}
		start, end := p.next, p.next+lf-1
		line := buf[start:end]
		p.next += lf + 1
		if !p.inHeaders {
			if len(line) == 0 {
				// RFC 9112 §2.2: ignore at least one empty line before
				// the request line. Two, as net/http's server does (it
				// drops up to four CR or LF bytes), so that the worker
				// accepts whatever is routed to it.
				p.empty++
				if p.empty > maxLeadingEmpty {
					return false, headErr(http.StatusBadRequest, nil, "more than %d empty lines before the request line", maxLeadingEmpty)
				}
				continue
			}
			if err := p.requestLine(buf, start, end); err != nil {
				return false, err
			}
			p.inHeaders = true
			continue
		}
		if len(line) == 0 {
			return true, nil
		}
		if err := p.field(buf, start, end); err != nil {
			return false, err
		}
	}
}

// bareCR reports whether b holds a CR followed by a byte other than LF
// (b holds no LF, except possibly right after its last byte).
func bareCR(b []byte) bool {
	i := bytes.IndexByte(b, '\r')
	return i >= 0 && i+1 < len(b)
}

func (p *headParser) requestLine(buf []byte, start, end int) *HeadError {
	line := buf[start:end]
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return headErr(http.StatusBadRequest, nil, "malformed request line %s", quoteCut(line))
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 < 0 {
		return headErr(http.StatusBadRequest, nil, "malformed request line %s (HTTP/0.9 is not supported)", quoteCut(line))
	}
	sp2 += sp1 + 1
	method, target, proto := line[:sp1], line[sp1+1:sp2], line[sp2+1:]
	for _, c := range method {
		if !isTchar(c) {
			return headErr(http.StatusBadRequest, nil, "invalid method %s", quoteCut(method))
		}
	}
	if len(target) == 0 {
		return headErr(http.StatusBadRequest, nil, "malformed request line %s (empty target or two spaces)", quoteCut(line))
	}
	for _, c := range target {
		if c <= ' ' || c >= 0x7f {
			return headErr(http.StatusBadRequest, nil, "invalid byte in request target %s", quoteCut(target))
		}
		if c == '#' {
			// No form of request-target has a fragment (RFC 9112 §3.2);
			// clients never send one, and parsers differ on where an
			// authority ends if one is there.
			return headErr(http.StatusBadRequest, nil, "fragment ('#') in request target %s", quoteCut(target))
		}
	}
	if len(proto) != 8 || string(proto[:5]) != "HTTP/" || proto[6] != '.' || !isDigit(proto[5]) || !isDigit(proto[7]) {
		return headErr(http.StatusBadRequest, nil, "malformed protocol version %s", quoteCut(proto))
	}
	if proto[5] != '1' {
		return headErr(http.StatusHTTPVersionNotSupported, nil, "protocol %s is not HTTP/1.x", quoteCut(proto))
	}
	p.reqLine = [2]int{start, end}
	p.method = [2]int{start, start + sp1}
	p.targ = [2]int{start + sp1 + 1, start + sp2}
	p.proto = [2]int{start + sp2 + 1, end}
	return nil
}

func (p *headParser) field(buf []byte, start, end int) *HeadError {
	line := buf[start:end]
	if line[0] == ' ' || line[0] == '\t' {
		return headErr(http.StatusBadRequest, nil, "obsolete line folding (or whitespace after the request line) at %s", quoteCut(line))
	}
	p.fields++
	if p.fields > p.maxFields {
		return headErr(http.StatusRequestHeaderFieldsTooLarge, nil, "more than %d header fields", p.maxFields)
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return headErr(http.StatusBadRequest, nil, "header line without a colon %s", quoteCut(line))
	}
	name := line[:colon]
	if colon == 0 {
		return headErr(http.StatusBadRequest, nil, "empty header name in %s", quoteCut(line))
	}
	if c := name[len(name)-1]; c == ' ' || c == '\t' {
		return headErr(http.StatusBadRequest, nil, "whitespace between header name and colon in %s", quoteCut(line))
	}
	for _, c := range name {
		if !isTchar(c) {
			return headErr(http.StatusBadRequest, nil, "invalid header name %s", quoteCut(name))
		}
	}
	vs, ve := start+colon+1, end
	for vs < ve && (buf[vs] == ' ' || buf[vs] == '\t') {
		vs++
	}
	for ve > vs && (buf[ve-1] == ' ' || buf[ve-1] == '\t') {
		ve--
	}
	for _, c := range buf[vs:ve] {
		if c < ' ' && c != '\t' || c == 0x7f {
			return headErr(http.StatusBadRequest, nil, "control byte %#02x in the value of header %s", c, quoteCut(name))
		}
	}
	if len(name) == 4 && (name[0]|0x20) == 'h' && (name[1]|0x20) == 'o' && (name[2]|0x20) == 's' && (name[3]|0x20) == 't' {
		if p.hostSeen {
			return headErr(http.StatusBadRequest, nil, "more than one Host header field")
		}
		p.hostSeen = true
		p.host = [2]int{vs, ve}
	}
	switch {
	case equalFoldASCII(name, "content-length"):
		// One field of digits: a list, a sign or a second field is how
		// two parsers come to read two different bodies.
		if p.lengthSeen {
			return headErr(http.StatusBadRequest, nil, "more than one Content-Length header field")
		}
		p.lengthSeen = true
		v := buf[vs:ve]
		if len(v) == 0 || len(v) > 18 {
			return headErr(http.StatusBadRequest, nil, "invalid Content-Length %s", quoteCut(v))
		}
		p.length = 0
		for _, c := range v {
			if !isDigit(c) {
				return headErr(http.StatusBadRequest, nil, "invalid Content-Length %s", quoteCut(v))
			}
			p.length = p.length*10 + int64(c-'0')
		}
	case equalFoldASCII(name, "transfer-encoding"):
		if p.codingSeen {
			return headErr(http.StatusBadRequest, nil, "more than one Transfer-Encoding header field")
		}
		p.codingSeen = true
		// RFC 9112 §6.1: a server that does not understand a coding
		// answers 501. chunked alone is all HTTP/1.1 clients send.
		if !equalFoldASCII(buf[vs:ve], "chunked") {
			return headErr(http.StatusNotImplemented, nil, "Transfer-Encoding %s (only chunked is supported)", quoteCut(buf[vs:ve]))
		}
		p.chunked = true
	}
	return nil
}

// equalFoldASCII reports whether b is s (lower-case ASCII) in any case.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// finish checks the head as a whole and builds the Head.
func (p *headParser) finish(buf []byte) (Head, error) {
	h := Head{Raw: buf, Len: p.next}
	// One string for the request line; method, target and proto share it.
	rl := string(buf[p.reqLine[0]:p.reqLine[1]])
	off := p.reqLine[0]
	h.Method = rl[p.method[0]-off : p.method[1]-off]
	h.Target = rl[p.targ[0]-off : p.targ[1]-off]
	h.Proto = rl[p.proto[0]-off : p.proto[1]-off]
	http11 := h.Proto != "HTTP/1.0"

	if p.lengthSeen && p.codingSeen {
		// RFC 9112 §6.3: Transfer-Encoding overrides Content-Length,
		// and such a message "ought to be handled as an error": it is
		// how request smuggling works, two parsers reading two
		// different bodies. Refused here, before any worker sees it.
		return h, headErr(http.StatusBadRequest, nil, "both Content-Length and Transfer-Encoding")
	}
	if p.codingSeen && !http11 {
		// RFC 9112 §6.1: chunked is HTTP/1.1's.
		return h, headErr(http.StatusBadRequest, nil, "Transfer-Encoding in an %s request", h.Proto)
	}
	h.ContentLength, h.Chunked = -1, p.chunked
	if p.lengthSeen {
		h.ContentLength = p.length
	}
	if http11 && !p.hostSeen {
		// RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host, even
		// with an absolute-form target.
		return h, headErr(http.StatusBadRequest, nil, "%s request without a Host header field", h.Proto)
	}
	if p.hostSeen {
		raw := string(buf[p.host[0]:p.host[1]])
		host, port, err := SplitHostPort(raw)
		if err != nil {
			return h, headErr(http.StatusBadRequest, err, "invalid Host header field")
		}
		h.Host, h.Port = host, port
	}

	t := h.Target
	switch {
	case t[0] == '/':
		// origin-form
	case t == "*":
		if h.Method != "OPTIONS" {
			return h, headErr(http.StatusBadRequest, nil, "asterisk-form target with method %q (only OPTIONS may use it)", h.Method)
		}
	case h.Method == "CONNECT":
		// authority-form (RFC 9112 §3.2.3). A virtual host is not a
		// proxy, but the form is valid; its authority is the target
		// URI's (RFC 9110 §7.1), so, as for absolute-form and as in
		// net/http, it decides the host.
		host, port, err := SplitHostPort(t)
		if err != nil || port == "" || host == "" {
			return h, headErr(http.StatusBadRequest, err, "CONNECT target %s is not host:port", quoteCut([]byte(t)))
		}
		h.Host, h.Port = host, port
	default:
		// absolute-form. RFC 9112 §3.2.2: the target's authority wins
		// over the Host field, which is replaced. (net/http does the
		// same, so the worker sees the request for the same host.)
		host, port, err := absoluteAuthority(t)
		if err != nil {
			return h, err
		}
		h.Host, h.Port = host, port
	}
	return h, nil
}

// absoluteAuthority returns the host of an absolute-form target.
func absoluteAuthority(t string) (host, port string, err error) {
	i := 0
	for i < len(t) && (isAlpha(t[i]) || i > 0 && (isDigit(t[i]) || t[i] == '+' || t[i] == '-' || t[i] == '.')) {
		i++
	}
	if i == 0 || i >= len(t) || t[i] != ':' {
		return "", "", headErr(http.StatusBadRequest, nil, "request target %s is neither origin-form (\"/...\") nor absolute-form", quoteCut([]byte(t)))
	}
	scheme := t[:i]
	if !equalFold(scheme, "http") && !equalFold(scheme, "https") {
		return "", "", headErr(http.StatusBadRequest, nil, "absolute-form target with scheme %q (want http or https)", scheme)
	}
	rest := t[i+1:]
	if len(rest) < 2 || rest[:2] != "//" {
		return "", "", headErr(http.StatusBadRequest, nil, "absolute-form target %s without an authority", quoteCut([]byte(t)))
	}
	rest = rest[2:]
	end := len(rest)
	for j := 0; j < len(rest); j++ {
		if c := rest[j]; c == '/' || c == '?' {
			end = j
			break
		}
	}
	auth := rest[:end]
	for j := 0; j < len(auth); j++ {
		if auth[j] == '@' {
			// RFC 9110 §4.2.4: userinfo in an http(s) URI is an error.
			return "", "", headErr(http.StatusBadRequest, nil, "absolute-form target %s has userinfo", quoteCut([]byte(t)))
		}
	}
	host, port, herr := SplitHostPort(auth)
	if herr != nil {
		return "", "", headErr(http.StatusBadRequest, herr, "invalid authority in absolute-form target")
	}
	if host == "" {
		// RFC 9110 §4.2.1: an http URI with an empty host is invalid.
		return "", "", headErr(http.StatusBadRequest, nil, "absolute-form target %s has an empty host", quoteCut([]byte(t)))
	}
	return host, port, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i]|0x20 != b[i]|0x20 {
			return false
		}
	}
	return true
}

// isTchar reports whether c may appear in a token (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	return tchar[c]
}

var tchar = [256]bool{
	'!': true, '#': true, '$': true, '%': true, '&': true, '\'': true, '*': true,
	'+': true, '-': true, '.': true, '^': true, '_': true, '`': true, '|': true, '~': true,
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true,
	'A': true, 'B': true, 'C': true, 'D': true, 'E': true, 'F': true, 'G': true, 'H': true, 'I': true,
	'J': true, 'K': true, 'L': true, 'M': true, 'N': true, 'O': true, 'P': true, 'Q': true, 'R': true,
	'S': true, 'T': true, 'U': true, 'V': true, 'W': true, 'X': true, 'Y': true, 'Z': true,
	'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true, 'g': true, 'h': true, 'i': true,
	'j': true, 'k': true, 'l': true, 'm': true, 'n': true, 'o': true, 'p': true, 'q': true, 'r': true,
	's': true, 't': true, 'u': true, 'v': true, 'w': true, 'x': true, 'y': true, 'z': true,
}
