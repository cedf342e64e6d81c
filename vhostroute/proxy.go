package vhostroute

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"time"
)

// ErrBadProxy is wrapped by every error [HeadReader.ReadProxyHeader] and
// [ParseProxyHeader] return: the connection did not start with a valid
// PROXY protocol header (or none arrived in time). Close the connection;
// there is nobody to answer, since the peer is a proxy or an impostor.
var ErrBadProxy = errors.New("bad PROXY protocol header")

// Bounds of a PROXY protocol header.
const (
	// MaxProxyV1Bytes is the longest v1 header, CRLF included: the
	// specification's worst case, "PROXY UNKNOWN" with two full-length
	// IPv6 addresses and two 5-digit ports.
	MaxProxyV1Bytes = 107
	// MaxProxyV2Bytes bounds a v2 header: its 16 fixed bytes, the
	// address block (216 bytes at most, for AF_UNIX; 12 for IPv4, 36 for
	// IPv6) and the TLVs. The specification keeps the fixed part and
	// the addresses within 536 bytes, one minimal TCP segment, and sets
	// no bound on TLVs; this leaves at least 1,816 bytes for them, about
	// twice what HAProxy sends with every TLV it has (ALPN, authority,
	// unique ID, SSL with client CN, cipher and algorithms, netns),
	// while keeping a connection's cost small.
	MaxProxyV2Bytes = 2048
	// minProxyBytes is the shortest header of either version:
	// "PROXY UNKNOWN\r\n". A v2 header has at least 16 bytes.
	minProxyBytes = 15
)

// ProxyHeader is a parsed PROXY protocol header.
type ProxyHeader struct {
	// Version is 1 (the text format) or 2 (the binary format).
	Version int
	// Local says that the header carries no client address: a v2 LOCAL
	// command (the proxy's own connection, such as a health check), a
	// v1 UNKNOWN line, or a v2 PROXY command for a family without IP
	// addresses (AF_UNSPEC, AF_UNIX). The connection's own peer address
	// stands, as the specification says. Source and Dest are then zero.
	Local bool
	// Source is the client's address and port: the connection's peer as
	// the proxy saw it. Dest is the address and port the client
	// connected to, on the proxy. Both are IPv4 or both are IPv6 (an
	// IPv4-mapped IPv6 address is kept as the proxy sent it; Unmap it
	// for display).
	Source, Dest netip.AddrPort
	// Len is the length of the header in bytes: the connection's
	// payload starts right after it.
	Len int
}

// ProxyError says why a connection's first bytes are not a usable PROXY
// header. It wraps [ErrBadProxy], and the error behind it, if any.
type ProxyError struct {
	// Reason says what was wrong, naming the offending value.
	Reason string
	// Timeout says that the header did not arrive in time: the deadline
	// passed first (Err is then the read's deadline error).
	Timeout bool
	// Err is the underlying error, if any: the read error, io.EOF when
	// the connection closed before sending anything, io.ErrUnexpectedEOF
	// when it closed (or, for ParseProxyHeader, the bytes ended) in the
	// middle of the header.
	Err error
}

func (e *ProxyError) Error() string {
	s := "vhostroute: PROXY protocol: " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ProxyError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrBadProxy, e.Err}
	}
	return []error{ErrBadProxy}
}

func badProxy(format string, args ...any) *ProxyError {
	return &ProxyError{Reason: fmt.Sprintf(format, args...)}
}

// ReadProxyHeader reads the PROXY protocol header (version 1 or 2) at
// the start of c and nothing after it: it reads the 15 bytes every
// header has, then for v2 the rest of the fixed part and exactly the
// length it announces, and for v1 never more than the shortest valid
// line could still need, up to the CRLF. So the connection's payload
// stays unread, for [HeadReader.ReadHead] or
// [HelloReader.ReadClientHello] to read next, as if no header had
// been there.
//
// Timeout (DefaultHeadTimeout if zero) bounds the whole header, however
// the bytes are paced; the other limits do not apply. It sets a read
// deadline on c and clears it before returning.
//
// Any other start of the connection is an error: a PROXY header is read
// only where it is required (the specification forbids guessing), and
// a plain HTTP request or a TLS ClientHello where one is required came
// from a client that did not go through the proxy. Errors are a
// *[ProxyError] wrapping [ErrBadProxy]; Timeout is set when the
// deadline passed.
func (r *HeadReader) ReadProxyHeader(c DeadlineReader) (ProxyHeader, error) {
	_, _, _, timeout := r.limits()
	deadline := time.Now().Add(timeout)
	if err := c.SetReadDeadline(deadline); err != nil {
		return ProxyHeader{}, &ProxyError{Reason: "cannot set a read deadline", Err: err}
	}
	defer c.SetReadDeadline(time.Time{})

	buf := make([]byte, 0, 128) // every v1 header and most v2 ones fit
	for {
		h, need, perr := parseProxy(buf)
		if perr != nil {
			return ProxyHeader{}, perr
		}
		if need == 0 {
			return h, nil
		}
		// need is a lower bound of what is missing: no valid header ends
		// sooner, so asking for exactly that never reads past one.
		want := len(buf) + need
		buf = slices.Grow(buf, need)
		if time.Now().After(deadline) {
			return ProxyHeader{}, proxyReadErr(os.ErrDeadlineExceeded, len(buf), timeout)
		}
		n, err := c.Read(buf[len(buf):want])
		buf = buf[:len(buf)+n]
		if err != nil {
			if n > 0 {
				// What arrived with the error may complete the header, or
				// be a better reason to fail.
				if h, need, perr := parseProxy(buf); perr != nil {
					return ProxyHeader{}, perr
				} else if need == 0 {
					return h, nil
				}
			}
			return ProxyHeader{}, proxyReadErr(err, len(buf), timeout)
		}
	}
}

func proxyReadErr(err error, got int, timeout time.Duration) *ProxyError {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		e := &ProxyError{Timeout: true, Err: err}
		if got == 0 {
			e.Reason = fmt.Sprintf("nothing received within %v", timeout)
		} else {
			e.Reason = fmt.Sprintf("header not complete within %v (%d bytes received)", timeout, got)
		}
		return e
	case err == io.EOF && got == 0:
		return &ProxyError{Reason: "connection closed before any byte", Err: io.EOF}
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return &ProxyError{Reason: fmt.Sprintf("connection closed after %d bytes, in the header", got), Err: io.ErrUnexpectedEOF}
	}
	return &ProxyError{Reason: fmt.Sprintf("read failed after %d bytes", got), Err: err}
}

// ParseProxyHeader parses the PROXY protocol header at the start of b,
// with the rules of [HeadReader.ReadProxyHeader]; bytes after the header
// are not looked at (Len says where it ends). A b that ends before the
// header does is an error wrapping io.ErrUnexpectedEOF, unless what it
// holds is already invalid. It does not allocate unless it fails.
func ParseProxyHeader(b []byte) (ProxyHeader, error) {
	h, need, perr := parseProxy(b)
	if perr != nil {
		return ProxyHeader{}, perr
	}
	if need > 0 {
		return ProxyHeader{}, &ProxyError{
			Reason: fmt.Sprintf("incomplete: %d bytes, at least %d more needed", len(b), need),
			Err:    io.ErrUnexpectedEOF,
		}
	}
	return h, nil
}

// parseProxy parses the header at the start of b. When b holds a valid
// start of a header but not all of it, need is how many more bytes the
// shortest valid header with that start would take (at least 1). A
// problem is reported as soon as the bytes in b show it, and the verdict
// on a header never depends on the bytes after it.
func parseProxy(b []byte) (h ProxyHeader, need int, err *ProxyError) {
	if len(b) == 0 {
		return h, minProxyBytes, nil
	}
	switch b[0] {
	case 'P':
		return parseV1(b)
	case '\r':
		return parseV2(b)
	}
	return h, 0, noProxy(b)
}

// noProxy describes what came instead of a PROXY header.
func noProxy(b []byte) *ProxyError {
	quoted := strconv.Quote(string(b[:min(len(b), 16)]))
	if len(b) > 16 {
		quoted += "..."
	}
	switch {
	case b[0] == 22:
		return badProxy("no PROXY header: a TLS handshake record came first (a client that did not go through the proxy?)")
	case looksLikeHTTP(bytes.TrimLeft(b, "\r\n")):
		return badProxy("no PROXY header: the client sent plain HTTP (%s) (a client that did not go through the proxy?)", quoted)
	}
	return badProxy("no PROXY header: first bytes %s", quoted)
}

// Version 1: one line of text,
//
//	"PROXY" SP ( "TCP4" | "TCP6" ) SP src SP dst SP sport SP dport CRLF
//	"PROXY" SP "UNKNOWN" [ SP anything ] CRLF

const v1Prefix = "PROXY "

// The fields of a v1 line after "PROXY".
const (
	v1Proto = iota
	v1Src
	v1Dst
	v1SrcPort
	v1DstPort
	v1Fields
)

func parseV1(b []byte) (ProxyHeader, int, *ProxyError) {
	var h ProxyHeader
	if len(b) > MaxProxyV1Bytes {
		b = b[:MaxProxyV1Bytes] // a line goes no further
	}
	n := min(len(b), len(v1Prefix))
	if string(b[:n]) != v1Prefix[:n] {
		if n == len(v1Prefix) && string(b[:5]) == "PROXY" {
			return h, 0, badProxy("v1: %q after \"PROXY\" (want a space)", b[5])
		}
		return h, 0, noProxy(b)
	}
	if len(b) < len(v1Prefix) {
		return h, minProxyBytes - len(b), nil
	}
	lf := bytes.IndexByte(b, '\n')
	line := b
	if lf >= 0 {
		line = b[:lf]
	}
	// US-ASCII text: printable bytes and spaces, and a CR only right
	// before the LF (or last of what has arrived).
	bad := -1
	for i, c := range line {
		if (c < ' ' || c > '~') && (c != '\r' || i < len(line)-1) {
			bad = i
			break
		}
	}
	// The fields before a bad byte or the line's end were judged as
	// they arrived: their verdict comes first.
	checked := line
	if bad >= 0 {
		checked = line[:bad]
	}
	need, err := v1Need(checked[len(v1Prefix):])
	if err != nil {
		return h, 0, err
	}
	switch {
	case bad >= 0 && line[bad] == '\r':
		return h, 0, badProxy("v1: bare CR at byte %d (not followed by LF)", bad)
	case bad >= 0:
		return h, 0, badProxy("v1: invalid byte %#02x at byte %d", line[bad], bad)
	case lf < 0 && len(b) >= MaxProxyV1Bytes:
		return h, 0, badProxy("v1: no CRLF within the first %d bytes", MaxProxyV1Bytes)
	case lf < 0:
		return h, max(need, minProxyBytes-len(b)), nil
	case lf == 0 || b[lf-1] != '\r':
		return h, 0, badProxy("v1: line ends in a bare LF (CRLF is required)")
	}
	h = ProxyHeader{Version: 1, Len: lf + 1}
	proto, rest, more := bytes.Cut(b[len(v1Prefix):lf-1], []byte{' '})
	if err := v1CheckProto(proto, true); err != nil {
		return ProxyHeader{}, 0, err
	}
	if string(proto) == "UNKNOWN" {
		// The specification: "the receiver must ignore anything
		// presented before the CRLF is found" (it is text; that was
		// checked above).
		h.Local = true
		return h, 0, nil
	}
	if !more {
		return ProxyHeader{}, 0, badProxy("v1: %s line without addresses", proto)
	}
	if _, _, err := v1Addrs(&h, proto, rest, true); err != nil {
		return ProxyHeader{}, 0, err
	}
	return h, 0, nil
}

// v1Need returns a lower bound of the bytes that a valid line starting
// with "PROXY " and then s (which holds no LF) still needs, or the
// error its start already is. The fields are judged as they end, with
// the message the whole line would get, so that the verdict does not
// depend on how the bytes arrive.
func v1Need(s []byte) (int, *ProxyError) {
	if len(s) > 0 && s[len(s)-1] == '\r' {
		// An LF may be all that is missing; the line is judged then.
		_, err := v1Need(s[:len(s)-1])
		return 1, err
	}
	proto, rest, more := bytes.Cut(s, []byte{' '})
	if err := v1CheckProto(proto, more); err != nil || !more {
		return 2, err
	}
	var addrMin int
	switch string(proto) {
	case "UNKNOWN":
		return 2, nil // anything may follow, up to the CRLF
	case "TCP4":
		addrMin = len("0.0.0.0")
	case "TCP6":
		addrMin = len("::")
	}
	var h ProxyHeader
	field, cur, err := v1Addrs(&h, proto, rest, false)
	if err != nil {
		return 0, err
	}
	minLen := func(f int) int {
		if f == v1Src || f == v1Dst {
			return addrMin
		}
		return 1 // a port
	}
	need := max(minLen(field)-cur, 0)
	for f := field + 1; f < v1Fields; f++ {
		need += 1 + minLen(f) // the space, then the field
	}
	return need + 2, nil // and the CRLF
}

// v1CheckProto checks the protocol field of a v1 line: when it is
// complete, and before, as soon as it is longer than any valid one.
func v1CheckProto(p []byte, complete bool) *ProxyError {
	if len(p) > len("UNKNOWN") {
		return badProxy("v1: unknown protocol %q... (want TCP4, TCP6 or UNKNOWN)", p[:len("UNKNOWN")+1])
	}
	if !complete {
		return nil
	}
	switch string(p) {
	case "TCP4", "TCP6", "UNKNOWN":
		return nil
	case "":
		return badProxy("v1: empty protocol (two spaces after \"PROXY\"?)")
	}
	return badProxy("v1: unknown protocol %q (want TCP4, TCP6 or UNKNOWN)", p)
}

// v1Addrs walks the address fields in s, what follows "TCP4 " or
// "TCP6 ", checking each complete field in turn and setting h's
// addresses. With complete, s is the rest of the line without its CRLF;
// otherwise the last field of s may still be arriving, and its index
// and length so far are returned.
func v1Addrs(h *ProxyHeader, proto, s []byte, complete bool) (field, cur int, err *ProxyError) {
	parse := parseIPv6
	if proto[3] == '4' {
		parse = parseIPv4
	}
	var src, dst netip.Addr
	var sport uint16
	for field = v1Src; ; field++ {
		f := s
		j := bytes.IndexByte(s, ' ')
		switch {
		case j < 0 && !complete:
			return field, len(s), nil
		case j < 0 && field < v1DstPort:
			return 0, 0, badProxy("v1: %s line has %d of its 4 address fields", proto, field)
		case j >= 0 && field == v1DstPort:
			return 0, 0, badProxy("v1: %s line has more than 4 address fields (or a space before CRLF)", proto)
		case j >= 0:
			f, s = s[:j], s[j+1:]
		}
		if len(f) == 0 {
			return 0, 0, badProxy("v1: empty field (two spaces in a row, or a space before CRLF)")
		}
		var ok bool
		switch field {
		case v1Src:
			if src, ok = parse(f); !ok {
				return 0, 0, badProxy("v1: invalid %s source address %q", proto, f)
			}
		case v1Dst:
			if dst, ok = parse(f); !ok {
				return 0, 0, badProxy("v1: invalid %s destination address %q", proto, f)
			}
		case v1SrcPort:
			if sport, ok = parsePort(f); !ok {
				return 0, 0, badProxy("v1: invalid source port %q (want 0 to 65535 in decimal, without leading zeros)", f)
			}
		case v1DstPort:
			dport, ok := parsePort(f)
			if !ok {
				return 0, 0, badProxy("v1: invalid destination port %q (want 0 to 65535 in decimal, without leading zeros)", f)
			}
			h.Source, h.Dest = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
			return field, len(f), nil
		}
	}
}

// parseIPv4 parses a dotted quad as the specification wants it: exactly
// four decimal numbers from 0 to 255, without leading zeros (which some
// parsers read as octal). It accepts what netip.ParseAddr accepts as
// IPv4, without allocating.
func parseIPv4(s []byte) (netip.Addr, bool) {
	var ip [4]byte
	i := 0
	for k := range 4 {
		if k > 0 {
			if i >= len(s) || s[i] != '.' {
				return netip.Addr{}, false
			}
			i++
		}
		start, v := i, 0
		for i < len(s) && isDigit(s[i]) && i-start < 3 {
			v = v*10 + int(s[i]-'0')
			i++
		}
		if i == start || v > 255 || s[start] == '0' && i-start > 1 {
			return netip.Addr{}, false
		}
		ip[k] = byte(v)
	}
	if i != len(s) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(ip), true
}

// parseIPv6 parses an IPv6 address in any of its text forms: groups of
// one to four hex digits in either case, one "::", an IPv4 address in
// the last 32 bits ("::ffff:192.0.2.1", as inet_ntop writes an
// IPv4-mapped address). It accepts what netip.ParseAddr accepts as IPv6
// except zones, without allocating.
func parseIPv6(s []byte) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis := -1 // where "::" stands, in bytes of ip
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis = 0
		s = s[2:]
		if len(s) == 0 {
			return netip.IPv6Unspecified(), true
		}
	}
	i := 0
	for i < 16 {
		off, acc := 0, 0
		for ; off < len(s); off++ {
			d := hexValue(s[off])
			if d < 0 {
				break
			}
			if off == 4 {
				return netip.Addr{}, false // more than four digits
			}
			acc = acc<<4 | d
		}
		if off == 0 {
			return netip.Addr{}, false // empty group
		}
		if off < len(s) && s[off] == '.' {
			// An IPv4 address for the last 32 bits.
			if ellipsis < 0 && i != 12 || i+4 > 16 {
				return netip.Addr{}, false
			}
			a4, ok := parseIPv4(s)
			if !ok {
				return netip.Addr{}, false
			}
			b4 := a4.As4()
			copy(ip[i:], b4[:])
			i += 4
			s = nil
			break
		}
		ip[i], ip[i+1] = byte(acc>>8), byte(acc)
		i += 2
		s = s[off:]
		if len(s) == 0 {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return netip.Addr{}, false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false // a second "::"
			}
			ellipsis = i
			s = s[1:]
			if len(s) == 0 {
				break
			}
		}
	}
	if len(s) != 0 {
		return netip.Addr{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		n := 16 - i
		copy(ip[ellipsis+n:], ip[ellipsis:i])
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return netip.Addr{}, false // "::" must stand for at least one group
	}
	return netip.AddrFrom16(ip), true
}

func hexValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// parsePort parses a decimal port from 0 to 65535 without leading zeros
// or a sign.
func parsePort(s []byte) (uint16, bool) {
	if len(s) == 0 || len(s) > 5 || s[0] == '0' && len(s) > 1 {
		return 0, false
	}
	v := 0
	for _, c := range s {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	if v > 65535 {
		return 0, false
	}
	return uint16(v), true
}

// Version 2: a 16-byte fixed part, then as many bytes as it says.
//
//	signature (12) | version<<4|command | family<<4|transport | length (2) | addresses | TLVs

var proxyV2Sig = [12]byte{'\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', '\n'}

// Address families and the size of their address blocks.
const (
	v2Unspec = 0
	v2Inet   = 1
	v2Inet6  = 2
	v2Unix   = 3
)

var v2AddrLen = [4]int{v2Unspec: 0, v2Inet: 12, v2Inet6: 36, v2Unix: 216}
var v2FamilyName = [4]string{"AF_UNSPEC", "AF_INET", "AF_INET6", "AF_UNIX"}

// TLV types looked at.
const (
	tlvCRC32C = 0x03
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zeroCRC stands in for a header's CRC32C field when it is checked (a
// package variable: a local one would escape to the heap).
var zeroCRC [4]byte

func parseV2(b []byte) (ProxyHeader, int, *ProxyError) {
	var h ProxyHeader
	n := min(len(b), len(proxyV2Sig))
	if string(b[:n]) != string(proxyV2Sig[:n]) {
		return h, 0, noProxy(b)
	}
	if len(b) < 16 {
		return h, 16 - len(b), nil
	}
	if v := b[12] >> 4; v != 2 {
		return h, 0, badProxy("v2 signature with version %d (want 2)", v)
	}
	cmd := b[12] & 0xf
	if cmd > 1 {
		return h, 0, badProxy("v2: command %#x (want LOCAL, 0x0, or PROXY, 0x1)", cmd)
	}
	fam, transport := int(b[13]>>4), b[13]&0xf
	switch {
	case fam > v2Unix:
		return h, 0, badProxy("v2: address family %#x (want 0x0 to 0x3)", fam)
	case transport > 2:
		return h, 0, badProxy("v2: transport protocol %#x (want 0x0 to 0x2)", transport)
	case (fam == v2Unspec) != (transport == 0):
		return h, 0, badProxy("v2: family and protocol byte %#02x mixes UNSPEC with a specified value", b[13])
	}
	total := 16 + int(binary.BigEndian.Uint16(b[14:16]))
	if total > MaxProxyV2Bytes {
		return h, 0, badProxy("v2: header of %d bytes (the limit is %d)", total, MaxProxyV2Bytes)
	}
	if len(b) < total {
		return h, total - len(b), nil
	}
	b = b[:total]
	h = ProxyHeader{Version: 2, Len: total}
	if cmd == 0 {
		// LOCAL: "the receiver must accept this connection as valid and
		// must use the real connection endpoints and discard the
		// protocol block including the family which is ignored."
		h.Local = true
		return h, 0, nil
	}
	if transport == 2 {
		return h, 0, badProxy("v2: PROXY for a datagram (%s, SOCK_DGRAM) connection, on a stream listener", v2FamilyName[fam])
	}
	addrLen := v2AddrLen[fam]
	if total-16 < addrLen {
		return h, 0, badProxy("v2: length %d is too short for %s addresses (%d bytes)", total-16, v2FamilyName[fam], addrLen)
	}
	a := b[16:]
	switch fam {
	case v2Inet:
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[0:4])), binary.BigEndian.Uint16(a[8:10]))
		h.Dest = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[4:8])), binary.BigEndian.Uint16(a[10:12]))
	case v2Inet6:
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[0:16])), binary.BigEndian.Uint16(a[32:34]))
		h.Dest = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[16:32])), binary.BigEndian.Uint16(a[34:36]))
	default:
		// AF_UNSPEC or AF_UNIX: no IP address to take; the
		// connection's own stands.
		h.Local = true
	}
	if err := checkTLVs(b, 16+addrLen); err != nil {
		return ProxyHeader{}, 0, err
	}
	return h, 0, nil
}

// checkTLVs checks that the TLVs from off on fill the header exactly,
// and the header's CRC32C if it has one. Their values are skipped.
func checkTLVs(hdr []byte, off int) *ProxyError {
	crcAt := -1
	for i := off; i < len(hdr); {
		if len(hdr)-i < 3 {
			return badProxy("v2: %d bytes after the last TLV (a TLV takes at least 3)", len(hdr)-i)
		}
		typ, n := hdr[i], int(binary.BigEndian.Uint16(hdr[i+1:i+3]))
		if i+3+n > len(hdr) {
			return badProxy("v2: TLV of type %#02x and %d bytes overruns the header by %d", typ, n, i+3+n-len(hdr))
		}
		if typ == tlvCRC32C {
			if n != 4 {
				return badProxy("v2: CRC32C TLV of %d bytes (want 4)", n)
			}
			if crcAt >= 0 {
				return badProxy("v2: more than one CRC32C TLV")
			}
			crcAt = i + 3
		}
		i += 3 + n
	}
	if crcAt >= 0 {
		// The checksum of the whole header with its own field zeroed
		// (RFC 4960 appendix B's CRC32c), sent big-endian.
		sum := crc32.Update(0, castagnoli, hdr[:crcAt])
		sum = crc32.Update(sum, castagnoli, zeroCRC[:])
		sum = crc32.Update(sum, castagnoli, hdr[crcAt+4:])
		if sent := binary.BigEndian.Uint32(hdr[crcAt:]); sent != sum {
			return badProxy("v2: CRC32C mismatch: the header says %#08x, its bytes give %#08x", sent, sum)
		}
	}
	return nil
}
