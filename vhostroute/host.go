package vhostroute

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ErrInvalidHost is wrapped by every error that rejects a host name,
// whether it came from a Host header, an SNI extension or configuration.
var ErrInvalidHost = errors.New("invalid host")

// MaxHostLen is the longest host name accepted, without a trailing dot:
// the longest name DNS can carry (RFC 1035 §2.3.4, 255 octets on the
// wire, 253 characters in text).
const MaxHostLen = 253

// maxLabelLen is the longest DNS label (RFC 1035 §2.3.4).
const maxLabelLen = 63

// maxRawHost bounds the input looked at before rejecting it: a name at
// its longest, a trailing dot, a colon and a five-digit port. Anything
// longer is invalid however it is spelled, so it is refused before any
// work is done on it (an IDN is checked again after conversion).
const maxRawHost = 4 * (MaxHostLen + 1 + 1 + 5)

// HostError says which host value was rejected and why. It wraps
// [ErrInvalidHost].
type HostError struct {
	Host   string // the value as received (cut to 300 bytes, quoted in Error)
	Reason string // what is wrong with it
}

func (e *HostError) Error() string {
	return fmt.Sprintf("vhostroute: host %q: %s", e.Host, e.Reason)
}

// Unwrap returns [ErrInvalidHost].
func (e *HostError) Unwrap() error { return ErrInvalidHost }

func hostError(s string, r reason) error {
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return &HostError{Host: s, Reason: r.String()}
}

// reason is why the allocation-free normalizer refused a value; it is an
// integer so that the lookup path can fail without building an error.
type reason uint8

const (
	rOK reason = iota
	rTooLong
	rLabelTooLong
	rEmptyLabel
	rBadByte
	rNonASCII
	rPort
	rPortNotAllowed
	rBracket
	rIPv6Unbracketed
	rBadIPv6
	rZone
	rNumeric
	rPunycode
	rIP
)

func (r reason) String() string {
	switch r {
	case rOK:
		return "ok"
	case rTooLong:
		return fmt.Sprintf("longer than %d characters", MaxHostLen)
	case rLabelTooLong:
		return fmt.Sprintf("a label is longer than %d characters", maxLabelLen)
	case rEmptyLabel:
		return "empty label (leading dot, \"..\" or only a dot)"
	case rBadByte:
		return "character not allowed in a host name (letters, digits, '-', '_' and '.' are)"
	case rNonASCII:
		return "not ASCII (a server name must be sent in its xn-- form)"
	case rPort:
		return "invalid port (want at most 5 digits, up to 65535)"
	case rPortNotAllowed:
		return "a port is not allowed here"
	case rBracket:
		return "unbalanced or misplaced brackets"
	case rIPv6Unbracketed:
		return "IPv6 literal (or stray ':') without brackets"
	case rBadIPv6:
		return "not a valid IPv6 literal inside the brackets"
	case rZone:
		return "IPv6 zone not allowed"
	case rNumeric:
		return "numeric top-level label but not a dotted-quad IPv4 address"
	case rPunycode:
		return "invalid internationalized name (punycode or IDNA rules)"
	case rIP:
		return "an IP address is not allowed here"
	}
	return "invalid"
}

// NormalizeHost returns the canonical form of a host as found in a Host
// header, an absolute URI's authority or configuration: lower case, port
// and one trailing dot removed, IPv6 literals in brackets in their
// canonical text form ("[2001:db8::1]"), IPv4 as a dotted quad, and
// internationalized names in ASCII (punycode, "xn--") form per UTS #46.
// The empty string is returned unchanged: it means "no name".
//
// It rejects, with a *[HostError] naming the value, anything that is not
// a host: control bytes, spaces, '/', '%', '@', '\\' and every other byte
// but letters, digits, '-', '_' and '.'; empty labels (".example.com",
// "a..b", "."); names over 253 characters or labels over 63; numeric
// top-level labels that are not a dotted-quad IPv4 address ("127.1",
// "0x7f.0.0.1", which resolvers would read as addresses); IPv6 without
// brackets or with a zone; ports that are not 0 to 5 digits up to 65535;
// malformed punycode.
func NormalizeHost(hostport string) (string, error) {
	h, _, err := SplitHostPort(hostport)
	return h, err
}

// SplitHostPort is [NormalizeHost] that also returns the port ("" when
// there is none; a present but empty port, "example.com:", is valid URI
// syntax and also returns "").
func SplitHostPort(hostport string) (host, port string, err error) {
	var buf [MaxHostLen + 2]byte
	out, port, r := normalize(buf[:0], hostport, true)
	switch r {
	case rOK:
		host = normalizedString(hostport, out)
		if err := checkPunycode(hostport, host); err != nil {
			return "", "", err
		}
		return host, port, nil
	case rNonASCII:
		h := hostport
		if i := strings.IndexByte(h, ':'); i >= 0 {
			h = h[:i]
		}
		if host, err = normalizeIDN(h); err != nil {
			return "", "", err
		}
		return host, port, nil
	}
	return "", "", hostError(hostport, r)
}

// NormalizePattern returns the canonical form of a name or wildcard as
// configured for an [Entry] ("Example.COM." -> "example.com",
// "*.Bücher.example" -> "*.xn--bcher-kva.example"): what a [Builder]
// stores, so that two spellings of one name are seen as one before the
// table is built. Unlike [NormalizeHost] it refuses a port, an empty
// name, a '*' anywhere but a leading "*.", and a wildcard over an IP
// address; errors wrap [ErrInvalidHost].
func NormalizePattern(name string) (string, error) {
	wild, key, err := parsePattern(name)
	if err != nil {
		return "", err
	}
	if wild {
		return "*." + key, nil
	}
	return key, nil
}

// normalizeName checks a name from configuration: like NormalizeHost,
// but a port is an error.
func normalizeName(s string) (string, error) {
	var buf [MaxHostLen + 2]byte
	out, _, r := normalize(buf[:0], s, false)
	switch r {
	case rOK:
		name := normalizedString(s, out)
		if err := checkPunycode(s, name); err != nil {
			return "", err
		}
		return name, nil
	case rNonASCII:
		return normalizeIDN(s)
	}
	return "", hostError(s, r)
}

// normalizeSNI checks a server name from a ClientHello. RFC 6066 §3:
// ASCII only, no trailing dot, no IP literal. A trailing dot is stripped
// rather than refused (older clients sent one); the rest is refused.
func normalizeSNI(b []byte) (string, error) {
	var buf [MaxHostLen + 2]byte
	s := string(b)
	out, _, r := normalize(buf[:0], s, false)
	if r == rOK && (len(out) > 0 && out[0] == '[' || isDottedQuad(out)) {
		r = rIP
	}
	if r == rOK && len(out) == 0 {
		r = rEmptyLabel
	}
	if r != rOK {
		return "", hostError(s, r)
	}
	name := normalizedString(s, out)
	if err := checkPunycode(s, name); err != nil {
		return "", err
	}
	return name, nil
}

// normalizedString returns out as a string, reusing the input's memory
// when the normalized form is a prefix of it (the common case: already
// lower case, no trailing dot), so that no copy is made.
func normalizedString(in string, out []byte) string {
	if len(out) <= len(in) && in[:len(out)] == string(out) {
		return in[:len(out)]
	}
	return string(out)
}

// normalizeIDN converts a name with non-ASCII characters to its ASCII
// form and checks the result as any other name.
func normalizeIDN(s string) (string, error) {
	if len(s) > maxRawHost {
		return "", hostError(s, rTooLong)
	}
	if !utf8.ValidString(s) {
		// idna would read invalid bytes as U+FFFD and encode that.
		return "", &HostError{Host: s, Reason: rPunycode.String() + ": not valid UTF-8"}
	}
	a, err := idna.Lookup.ToASCII(s)
	if err != nil {
		return "", &HostError{Host: s, Reason: rPunycode.String() + ": " + err.Error()}
	}
	// The IDNA mapping can produce anything (an empty label from "xn--",
	// a ':' from a full-width colon): check the result like ASCII input.
	var buf [MaxHostLen + 2]byte
	out, _, r := normalize(buf[:0], a, false)
	if r == rOK && (len(out) == 0 || out[0] == '[' || isDottedQuad(out)) {
		r = rPunycode
	}
	if r != rOK {
		return "", hostError(s, r)
	}
	return string(out), nil
}

// normalize appends the normalized host of s to dst (which must have room
// for MaxHostLen+2 bytes, so that it never grows and a stack array can
// back it) and returns the port. It does not allocate. rNonASCII means
// the caller must take the IDNA path (the port, if any, is returned with
// it). Labels in xn-- form are not checked here; see checkPunycode.
func normalize(dst []byte, s string, allowPort bool) (out []byte, port string, r reason) {
	if len(s) == 0 {
		return dst, "", rOK
	}
	if len(s) > maxRawHost {
		return dst, "", rTooLong
	}
	for i := 0; i < len(s); i++ {
		// Control bytes and spaces are refused before anything else, so
		// that the error says so rather than, say, "invalid port" for
		// "example.com\r\nX: y".
		if s[i] <= ' ' || s[i] == 0x7f {
			return dst, "", rBadByte
		}
	}
	host := s
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return dst, "", rBracket
		}
		host = s[1:end]
		rest := s[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return dst, "", rBracket
			}
			if !allowPort {
				return dst, "", rPortNotAllowed
			}
			port = rest[1:]
			if !validPort(port) {
				return dst, "", rPort
			}
		}
		if strings.IndexByte(host, '%') >= 0 {
			return dst, "", rZone
		}
		if len(host) > 64 || len(host) == 0 {
			return dst, "", rBadIPv6
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
				return dst, "", rBadIPv6
			}
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return dst, "", rBadIPv6
		}
		dst = append(dst, '[')
		dst = a.AppendTo(dst)
		dst = append(dst, ']')
		return dst, port, rOK
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		if strings.IndexByte(s[i+1:], ':') >= 0 {
			return dst, "", rIPv6Unbracketed
		}
		if !allowPort {
			return dst, "", rPortNotAllowed
		}
		host, port = s[:i], s[i+1:]
		if !validPort(port) {
			return dst, "", rPort
		}
	}
	if strings.IndexByte(host, ']') >= 0 {
		return dst, "", rBracket
	}
	if strings.HasSuffix(host, ".") {
		host = host[:len(host)-1]
		if host == "" {
			return dst, "", rEmptyLabel
		}
	}
	if host == "" {
		// "" or ":80": no name.
		return dst, port, rOK
	}
	if len(host) > MaxHostLen {
		// A non-ASCII name may shrink or grow when converted; let the
		// IDNA path decide (it re-checks the length of the result).
		for i := 0; i < len(host); i++ {
			if host[i] >= 0x80 {
				return dst, port, rNonASCII
			}
		}
		return dst, "", rTooLong
	}
	start := len(dst)
	label := 0
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '.':
			if label == 0 {
				return dst[:start], "", rEmptyLabel
			}
			label = -1
		case c >= 0x80:
			return dst[:start], port, rNonASCII
		default:
			return dst[:start], "", rBadByte
		}
		label++
		if label > maxLabelLen {
			return dst[:start], "", rLabelTooLong
		}
		dst = append(dst, c)
	}
	if label == 0 {
		return dst[:start], "", rEmptyLabel
	}
	// The last label: all digits means an address. Only a dotted quad is
	// one; "127.1", "1.2.3.4.5" or "0177.0.0.1" would be read differently
	// by different resolvers and browsers, so they are refused.
	name := dst[start:]
	last := name[strings.LastIndexByte(string(name), '.')+1:]
	if allDigits(last) && !isDottedQuad(name) {
		return dst[:start], "", rNumeric
	}
	return dst, port, rOK
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// isDottedQuad reports whether b is an IPv4 address in canonical dotted
// decimal (no leading zeros, each part 0..255).
func isDottedQuad(b []byte) bool {
	parts := 0
	for len(b) > 0 {
		n, v := 0, 0
		for n < len(b) && b[n] >= '0' && b[n] <= '9' {
			v = v*10 + int(b[n]-'0')
			n++
			if n > 3 {
				return false
			}
		}
		if n == 0 || v > 255 || (n > 1 && b[0] == '0') {
			return false
		}
		parts++
		b = b[n:]
		if len(b) > 0 {
			if b[0] != '.' || len(b) == 1 {
				return false
			}
			b = b[1:]
		}
	}
	return parts == 4
}

func validPort(p string) bool {
	if len(p) > 5 {
		return false
	}
	v := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		v = v*10 + int(p[i]-'0')
	}
	return v <= 65535
}

// checkPunycode checks every xn-- label of an ASCII name with the IDNA
// rules. Names in tables and from clients are checked with it; the
// allocation-free lookup path does not need to be (a malformed xn--
// label cannot be in a table, so it can only miss).
func checkPunycode(orig, name string) error {
	for rest := name; rest != ""; {
		label := rest
		if i := strings.IndexByte(rest, '.'); i >= 0 {
			label, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		if len(label) >= 4 && label[:4] == "xn--" {
			a, err := idna.Lookup.ToASCII(label)
			if err != nil || a != label {
				return hostError(orig, rPunycode)
			}
		}
	}
	return nil
}
