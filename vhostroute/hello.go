package vhostroute

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"
)

// ErrNotTLS is wrapped by the error [HelloReader.ReadClientHello] returns
// when the first bytes are not a TLS handshake record, such as a plain
// HTTP request sent to a TLS port. [HelloError] says which.
var ErrNotTLS = errors.New("not a TLS ClientHello")

// ErrBadHello is wrapped by errors for bytes that start like TLS but are
// not a well-formed ClientHello within the limits.
var ErrBadHello = errors.New("malformed TLS ClientHello")

// Limits of the ClientHello peek.
const (
	// DefaultMaxHelloBytes bounds the ClientHello handshake message.
	// Real clients send 0.5 to 2 KB (about 1.8 KB with a post-quantum
	// key share); the bound leaves room for large session tickets and
	// future key shares while keeping a connection's cost bounded.
	DefaultMaxHelloBytes = 64 << 10
	DefaultHelloTimeout  = 10 * time.Second

	// maxExtensions bounds the extensions of one hello. Browsers send
	// about 20 (GREASE included); the bound keeps the duplicate check
	// cheap and on the stack.
	maxExtensions = 128

	// maxRecord is the longest TLSPlaintext fragment (RFC 8446 §5.1).
	maxRecord = 1 << 14
)

// HelloReader reads the ClientHello at the start of a TLS connection.
// The zero value uses the defaults and is safe for concurrent use.
type HelloReader struct {
	// MaxBytes bounds the ClientHello message (not counting record
	// headers). Zero means DefaultMaxHelloBytes.
	MaxBytes int
	// Timeout bounds the whole read. Zero means DefaultHelloTimeout.
	Timeout time.Duration
}

// ClientHello is what routing needs from a TLS ClientHello.
type ClientHello struct {
	// Raw is exactly the bytes consumed from the connection: whole TLS
	// records, up to the one that ends the ClientHello. Nothing after it
	// is read. Replay them to the TLS server that takes the connection.
	Raw []byte
	// ServerName is the normalized SNI host name, "" when the client
	// sent none.
	ServerName string
	// ALPN is the client's protocol list in its order of preference, nil
	// when it sent none.
	ALPN []string
}

// HelloError describes why the first bytes are not a usable ClientHello.
// It wraps [ErrNotTLS] or [ErrBadHello], and the read error or
// *[HostError] behind it, if any.
type HelloError struct {
	Reason  string
	Timeout bool // the deadline passed first
	kind    error
	Err     error
}

func (e *HelloError) Error() string {
	s := "vhostroute: TLS ClientHello: " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *HelloError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.kind, e.Err}
	}
	return []error{e.kind}
}

func badHello(err error, format string, args ...any) *HelloError {
	return &HelloError{Reason: fmt.Sprintf(format, args...), kind: ErrBadHello, Err: err}
}

// ReadClientHello reads TLS records from c until it holds a whole
// ClientHello handshake message, which may be split across TCP segments
// and across several records, and returns its server name and ALPN list.
// It sets a read deadline on c and clears it before returning. On error,
// the returned ClientHello's Raw still holds the bytes consumed.
func (r *HelloReader) ReadClientHello(c DeadlineReader) (ClientHello, error) {
	max, timeout := r.MaxBytes, r.Timeout
	if max <= 0 {
		max = DefaultMaxHelloBytes
	}
	if timeout <= 0 {
		timeout = DefaultHelloTimeout
	}
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return ClientHello{}, badHello(err, "cannot set a read deadline")
	}
	defer c.SetReadDeadline(time.Time{})

	raw := make([]byte, 0, 2048)
	var msg []byte // the handshake message, reassembled from the records
	want := -1     // its length with the 4-byte header, once known
	for {
		// Record header.
		var err error
		start := len(raw)
		if raw, err = readN(c, raw, 5); err != nil {
			if len(raw) > start && start == 0 {
				if herr := notTLS(raw); herr != nil {
					return ClientHello{Raw: raw}, herr
				}
			}
			return ClientHello{Raw: raw}, readFailed(err, len(raw), timeout)
		}
		hdr := raw[start : start+5]
		if start == 0 {
			if herr := notTLS(hdr); herr != nil {
				return ClientHello{Raw: raw}, herr
			}
		}
		if hdr[0] != 22 {
			return ClientHello{Raw: raw}, badHello(nil, "record of type %d inside the ClientHello (want handshake, 22)", hdr[0])
		}
		if hdr[1] != 3 {
			return ClientHello{Raw: raw}, badHello(nil, "record version %d.%d (want 3.x)", hdr[1], hdr[2])
		}
		n := int(binary.BigEndian.Uint16(hdr[3:5]))
		if n == 0 {
			return ClientHello{Raw: raw}, badHello(nil, "empty handshake record")
		}
		if n > maxRecord {
			return ClientHello{Raw: raw}, badHello(nil, "record of %d bytes (the limit is %d)", n, maxRecord)
		}
		if raw, err = readN(c, raw, n); err != nil {
			return ClientHello{Raw: raw}, readFailed(err, len(raw), timeout)
		}
		if start == 0 && len(raw) >= 9 && 4+(int(raw[6])<<16|int(raw[7])<<8|int(raw[8])) == n && raw[5] == 1 {
			// The usual case: the whole message in the first record.
			// Parse it in place, without copying.
			msg = raw[5:]
		} else {
			msg = append(msg, raw[len(raw)-n:]...)
		}
		if want < 0 && len(msg) >= 4 {
			if msg[0] != 1 {
				return ClientHello{Raw: raw}, badHello(nil, "handshake message of type %d (want ClientHello, 1)", msg[0])
			}
			want = 4 + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3]))
			if want-4 > max {
				return ClientHello{Raw: raw}, badHello(nil, "ClientHello of %d bytes (the limit is %d)", want-4, max)
			}
		}
		if want >= 0 && len(msg) >= want {
			if len(msg) > want {
				return ClientHello{Raw: raw}, badHello(nil, "%d bytes after the ClientHello in its record", len(msg)-want)
			}
			h, herr := parseClientHello(msg[4:])
			h.Raw = raw
			if herr != nil {
				return h, herr
			}
			return h, nil
		}
	}
}

// ParseClientHello parses the ClientHello at the start of b, which holds
// the bytes a client sent (one or more whole records). It returns an
// error wrapping io.ErrUnexpectedEOF if b ends before the ClientHello.
// Raw is the prefix of b that holds the ClientHello's records.
func (r *HelloReader) ParseClientHello(b []byte) (ClientHello, error) {
	rd := &sliceConn{b: b}
	h, err := r.ReadClientHello(rd)
	return h, err
}

// sliceConn is a DeadlineReader over a byte slice.
type sliceConn struct{ b []byte }

func (s *sliceConn) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

func (s *sliceConn) SetReadDeadline(time.Time) error { return nil }

// readN appends exactly n more bytes from c to buf.
func readN(c io.Reader, buf []byte, n int) ([]byte, error) {
	start := len(buf)
	buf = slices.Grow(buf, n)[:start+n]
	got, err := io.ReadFull(c, buf[start:])
	return buf[:start+got], err
}

func readFailed(err error, got int, timeout time.Duration) *HelloError {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		e := badHello(err, "not complete within %v (%d bytes received)", timeout, got)
		e.Timeout = true
		return e
	case got == 0 && err == io.EOF:
		return badHello(io.EOF, "connection closed before any byte")
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return badHello(io.ErrUnexpectedEOF, "connection closed after %d bytes, in the ClientHello", got)
	}
	return badHello(err, "read failed after %d bytes", got)
}

// notTLS recognizes the first bytes of what is not a TLS handshake, to
// say what it is instead.
func notTLS(b []byte) *HelloError {
	if b[0] == 22 {
		return nil
	}
	e := &HelloError{kind: ErrNotTLS}
	switch {
	case looksLikeHTTP(b):
		e.Reason = fmt.Sprintf("the client sent plain HTTP (%q...) to a TLS port", b)
	case b[0]&0x80 != 0 && len(b) >= 3 && b[2] == 1:
		e.Reason = "SSL 2.0-style ClientHello (not supported by any TLS server here)"
	case b[0] >= 20 && b[0] <= 24:
		e.Reason = fmt.Sprintf("first TLS record has type %d, not handshake (22)", b[0])
	default:
		e.Reason = fmt.Sprintf("first bytes %q are not a TLS record", b)
	}
	return e
}

// looksLikeHTTP reports whether b starts like an HTTP/1 request line
// (an upper-case method and a space), or is a prefix of one.
func looksLikeHTTP(b []byte) bool {
	for i, c := range b {
		if c == ' ' {
			return i > 0
		}
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return len(b) > 0
}

// parseClientHello parses the body of a ClientHello handshake message
// (RFC 8446 §4.1.2; TLS 1.0 to 1.2 have the same layout).
func parseClientHello(m []byte) (ClientHello, *HelloError) {
	var h ClientHello
	s := cursor(m)
	var sid, suites, comp, exts cursor
	if !s.skip(2+32) || !s.vec8(&sid) || len(sid) > 32 ||
		!s.vec16(&suites) || len(suites) < 2 || len(suites)%2 != 0 ||
		!s.vec8(&comp) || len(comp) < 1 {
		return h, badHello(nil, "truncated or malformed fixed part")
	}
	if len(s) == 0 {
		return h, nil // no extensions (SSL 3.0-style hello): no SNI, no ALPN
	}
	if !s.vec16(&exts) || len(s) != 0 {
		return h, badHello(nil, "malformed extensions block")
	}
	var typesBuf [maxExtensions]uint16
	types := typesBuf[:0]
	for len(exts) > 0 {
		var typ uint16
		var body cursor
		if !exts.u16(&typ) || !exts.vec16(&body) {
			return h, badHello(nil, "truncated extension")
		}
		// RFC 8446 §4.2: no extension type twice. Checked for all types
		// (a list, as hellos have a few dozen at most).
		for _, t := range types {
			if t == typ {
				return h, badHello(nil, "extension %d appears twice", typ)
			}
		}
		if len(types) == maxExtensions {
			return h, badHello(nil, "more than %d extensions", maxExtensions)
		}
		types = append(types, typ)
		switch typ {
		case 0: // server_name, RFC 6066 §3
			var list cursor
			if !body.vec16(&list) || len(body) != 0 || len(list) == 0 {
				return h, badHello(nil, "malformed server_name extension")
			}
			for len(list) > 0 {
				var nt uint8
				var name cursor
				if !list.u8(&nt) || !list.vec16(&name) {
					return h, badHello(nil, "malformed server_name entry")
				}
				if nt != 0 {
					continue // unknown name types are skipped
				}
				if h.ServerName != "" {
					return h, badHello(nil, "more than one host_name in server_name")
				}
				sn, err := normalizeSNI(name)
				if err != nil {
					return h, badHello(err, "invalid server name")
				}
				if sn == "" {
					return h, badHello(nil, "empty host_name in server_name")
				}
				h.ServerName = sn
			}
		case 16: // application_layer_protocol_negotiation, RFC 7301 §3.1
			var list cursor
			if !body.vec16(&list) || len(body) != 0 || len(list) < 2 {
				return h, badHello(nil, "malformed ALPN extension")
			}
			for len(list) > 0 {
				var p cursor
				if !list.vec8(&p) || len(p) == 0 {
					return h, badHello(nil, "malformed or empty ALPN protocol name")
				}
				h.ALPN = append(h.ALPN, string(p))
			}
		}
	}
	return h, nil
}

// cursor reads big-endian TLS vectors; each method reports false, taking
// nothing, when the bytes run out.
type cursor []byte

func (c *cursor) skip(n int) bool {
	if len(*c) < n {
		return false
	}
	*c = (*c)[n:]
	return true
}

func (c *cursor) u8(v *uint8) bool {
	if len(*c) < 1 {
		return false
	}
	*v = (*c)[0]
	*c = (*c)[1:]
	return true
}

func (c *cursor) u16(v *uint16) bool {
	if len(*c) < 2 {
		return false
	}
	*v = binary.BigEndian.Uint16(*c)
	*c = (*c)[2:]
	return true
}

func (c *cursor) vec8(v *cursor) bool {
	if len(*c) < 1 || len(*c) < 1+int((*c)[0]) {
		return false
	}
	n := int((*c)[0])
	*v = (*c)[1 : 1+n]
	*c = (*c)[1+n:]
	return true
}

func (c *cursor) vec16(v *cursor) bool {
	if len(*c) < 2 {
		return false
	}
	n := int(binary.BigEndian.Uint16(*c))
	if len(*c) < 2+n {
		return false
	}
	*v = (*c)[2 : 2+n]
	*c = (*c)[2+n:]
	return true
}
