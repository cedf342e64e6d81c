package fdpass

import (
	"encoding/binary"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"net"
	"net/netip"
	"time"
)

// The wire format is described in doc.go; keep the two in step.

const (
	// Version is the wire format version this package writes and the only
	// one it reads.
	Version = 2

	// MaxPayload is the largest payload of a data message, and the most
	// already-read bytes a connection message carries: enough for a full
	// request head.
	MaxPayload = 64 << 10

	// MaxFDs is the most descriptors one message carries. The receive
	// buffer for control messages has room for exactly this many, so a
	// message with more arrives with MSG_CTRUNC and is refused.
	MaxFDs = 16

	headerLen = 12
	// maxMeta bounds the metadata of a connection message (flags, listener
	// name, addresses), so that a message always fits the socket buffer.
	// Four fields of at most maxField bytes and two of at most 255, with
	// their lengths and the flags, stay below it.
	maxMeta  = 4 << 10
	maxField = 512
	maxBody  = MaxPayload + maxMeta
	maxFrame = headerLen + maxBody
)

var magic = [4]byte{'m', 'p', 'm', 'f'}

// Message kinds.
const (
	kindData = 1 // payload and descriptors for the application
	kindConn = 2 // one connection, its already-read bytes and metadata
)

func kindName(k byte) string {
	switch k {
	case kindData:
		return "data"
	case kindConn:
		return "connection"
	}
	return fmt.Sprintf("unknown kind %d", k)
}

// Errors a receiver returns for a message it does not accept. Whatever
// descriptors the message carried are closed before the error is returned.
var (
	// ErrMalformed: the message does not follow the wire format.
	ErrMalformed = errors.New("malformed message")
	// ErrVersion: the message has a wire format version this package
	// does not read (sender and receiver are built from different
	// versions).
	ErrVersion = errors.New("unsupported wire format version")
	// ErrTruncated: the message is larger than the receiver accepts
	// (MSG_TRUNC), or a stream ended in the middle of a message.
	ErrTruncated = errors.New("message truncated")
	// ErrTooManyFDs: the message carried more descriptors than MaxFDs
	// (MSG_CTRUNC) or than its header announced.
	ErrTooManyFDs = errors.New("too many descriptors")
)

// header is the fixed part of every message.
type header struct {
	kind    byte
	nfds    byte
	bodyLen uint32
}

func appendHeader(b []byte, h header) []byte {
	b = append(b, magic[:]...)
	b = append(b, Version, h.kind, h.nfds, 0)
	return binary.BigEndian.AppendUint32(b, h.bodyLen)
}

// parseHeader checks the fixed part of a message. It does not look at the
// body, so that a stream reader knows how much more to read.
func parseHeader(b []byte) (header, error) {
	if len(b) < headerLen {
		return header{}, fmt.Errorf("%d bytes, shorter than the %d-byte header: %w", len(b), headerLen, ErrMalformed)
	}
	if [4]byte(b[:4]) != magic {
		return header{}, fmt.Errorf("bad magic %q: %w", b[:4], ErrMalformed)
	}
	if b[4] != Version {
		return header{}, fmt.Errorf("version %d (this receiver reads version %d): %w", b[4], Version, ErrVersion)
	}
	h := header{kind: b[5], nfds: b[6], bodyLen: binary.BigEndian.Uint32(b[8:12])}
	if b[7] != 0 {
		return h, fmt.Errorf("reserved byte is %#x, not zero: %w", b[7], ErrMalformed)
	}
	switch h.kind {
	case kindData:
		if h.bodyLen > MaxPayload {
			return h, fmt.Errorf("data payload of %d bytes exceeds %d: %w", h.bodyLen, MaxPayload, ErrMalformed)
		}
	case kindConn:
		if h.nfds != 1 {
			return h, fmt.Errorf("connection message announces %d descriptors, not 1: %w", h.nfds, ErrMalformed)
		}
		if h.bodyLen > maxBody {
			return h, fmt.Errorf("connection message body of %d bytes exceeds %d: %w", h.bodyLen, maxBody, ErrMalformed)
		}
	default:
		return h, fmt.Errorf("unknown message kind %d: %w", h.kind, ErrMalformed)
	}
	if h.nfds > MaxFDs {
		return h, fmt.Errorf("header announces %d descriptors, more than %d: %w", h.nfds, MaxFDs, ErrTooManyFDs)
	}
	return h, nil
}

// decodeFrame checks a whole message against the number of descriptors
// that arrived with it and returns its kind and body.
func decodeFrame(b []byte, nfds int) (kind byte, body []byte, err error) {
	h, err := parseHeader(b)
	if err != nil {
		return 0, nil, err
	}
	if got := len(b) - headerLen; got != int(h.bodyLen) {
		if got < int(h.bodyLen) {
			return 0, nil, fmt.Errorf("header announces a %d-byte body, %d bytes arrived: %w", h.bodyLen, got, ErrTruncated)
		}
		return 0, nil, fmt.Errorf("header announces a %d-byte body, %d bytes arrived: %w", h.bodyLen, got, ErrMalformed)
	}
	if nfds != int(h.nfds) {
		if nfds > int(h.nfds) {
			return 0, nil, fmt.Errorf("header announces %d descriptors, %d arrived: %w", h.nfds, nfds, ErrTooManyFDs)
		}
		return 0, nil, fmt.Errorf("header announces %d descriptors, %d arrived: %w", h.nfds, nfds, ErrMalformed)
	}
	return h.kind, b[headerLen:], nil
}

// connMeta is the metadata of a connection message as it is on the wire.
// Addresses stay strings here, so that decoding and encoding are exact
// inverses; [connMeta.info] interprets them.
type connMeta struct {
	tls         bool
	listener    string
	localNet    string
	localAddr   string
	remoteNet   string
	remoteAddr  string
	proxyClient string // "" or a netip.AddrPort
	seal        string // "" or the sender's seal, 1 to maxSeal bytes
	sent        int64  // the sender's CLOCK_MONOTONIC, in nanoseconds
}

const (
	flagTLS  = 1 << 0
	flagSeal = 1 << 1 // a seal follows the PROXY client address
	maxSeal  = 255
)

func appendStr8(b []byte, s string) []byte {
	b = append(b, byte(len(s)))
	return append(b, s...)
}

func appendStr16(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func (m *connMeta) size() int {
	return 1 + 8 + 2 + len(m.listener) + 1 + len(m.localNet) + 2 + len(m.localAddr) +
		1 + len(m.remoteNet) + 2 + len(m.remoteAddr) + 2 + len(m.proxyClient) + m.sealSize()
}

func (m *connMeta) sealSize() int {
	if m.seal == "" {
		return 0
	}
	return 1 + len(m.seal)
}

// check reports metadata that would not encode or decode.
func (m *connMeta) check() error {
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"local network", m.localNet, 255},
		{"remote network", m.remoteNet, 255},
		{"listener name", m.listener, maxField},
		{"local address", m.localAddr, maxField},
		{"remote address", m.remoteAddr, maxField},
		{"PROXY client address", m.proxyClient, maxField},
		{"seal", m.seal, maxSeal},
	} {
		if len(f.v) > f.max {
			return fmt.Errorf("%s is %d bytes, more than %d", f.name, len(f.v), f.max)
		}
	}
	if m.proxyClient != "" {
		if _, err := netip.ParseAddrPort(m.proxyClient); err != nil {
			return fmt.Errorf("PROXY client address %q: %v", m.proxyClient, err)
		}
	}
	return nil
}

// appendConnBody encodes m and the already-read bytes. The caller has
// checked m and the length of read.
func appendConnBody(b []byte, m *connMeta, read []byte) []byte {
	var flags byte
	if m.tls {
		flags |= flagTLS
	}
	if m.seal != "" {
		flags |= flagSeal
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(m.sent))
	b = appendStr16(b, m.listener)
	b = appendStr8(b, m.localNet)
	b = appendStr16(b, m.localAddr)
	b = appendStr8(b, m.remoteNet)
	b = appendStr16(b, m.remoteAddr)
	b = appendStr16(b, m.proxyClient)
	if m.seal != "" {
		b = appendStr8(b, m.seal)
	}
	return append(b, read...)
}

// decodeConnBody is the inverse of appendConnBody. The returned bytes
// alias body.
func decodeConnBody(body []byte) (connMeta, []byte, error) {
	var m connMeta
	d := decoder{b: body}
	flags := d.u8("flags")
	m.tls = flags&flagTLS != 0
	m.sent = int64(d.u64("send time"))
	m.listener = d.str16("listener name")
	m.localNet = d.str8("local network")
	m.localAddr = d.str16("local address")
	m.remoteNet = d.str8("remote network")
	m.remoteAddr = d.str16("remote address")
	m.proxyClient = d.str16("PROXY client address")
	if flags&flagSeal != 0 {
		m.seal = d.str8("seal")
		if d.err == nil && m.seal == "" {
			// One encoding per message: no seal is no flag.
			return m, nil, fmt.Errorf("connection flags announce a seal of 0 bytes: %w", ErrMalformed)
		}
	}
	if d.err != nil {
		return m, nil, d.err
	}
	if flags&^(flagTLS|flagSeal) != 0 {
		return m, nil, fmt.Errorf("connection flags %#x have unknown bits: %w", flags, ErrMalformed)
	}
	if err := m.check(); err != nil {
		return m, nil, fmt.Errorf("%v: %w", err, ErrMalformed)
	}
	if len(d.b) > MaxPayload {
		return m, nil, fmt.Errorf("%d already-read bytes, more than %d: %w", len(d.b), MaxPayload, ErrMalformed)
	}
	return m, d.b, nil
}

// decoder reads fields in order; the first short field sets err and makes
// every later read return zero.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("connection message ends inside the %s (%d bytes left, %d needed): %w", what, len(d.b), n, ErrMalformed)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8(what string) byte {
	if v := d.take(1, what); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u64(what string) uint64 {
	if v := d.take(8, what); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) str8(what string) string {
	n := d.take(1, what+" length")
	if n == nil {
		return ""
	}
	return string(d.take(int(n[0]), what))
}

func (d *decoder) str16(what string) string {
	n := d.take(2, what+" length")
	if n == nil {
		return ""
	}
	return string(d.take(int(binary.BigEndian.Uint16(n)), what))
}

// metaFromInfo turns what the sender knows into wire metadata; local and
// remote default to the socket's own addresses.
func metaFromInfo(info ConnInfo, local, remote net.Addr) connMeta {
	if info.LocalAddr != nil {
		local = info.LocalAddr
	}
	if info.RemoteAddr != nil {
		remote = info.RemoteAddr
	}
	m := connMeta{tls: info.TLS, listener: info.Listener, seal: string(info.Seal), sent: monotonicNow()}
	if local != nil {
		m.localNet, m.localAddr = local.Network(), local.String()
	}
	if remote != nil {
		m.remoteNet, m.remoteAddr = remote.Network(), remote.String()
	}
	if info.ProxyClient.IsValid() {
		m.proxyClient = info.ProxyClient.String()
	}
	return m
}

// info interprets the wire metadata. It never fails: an address it cannot
// parse is kept as text in an [Addr].
func (m *connMeta) info() ConnInfo {
	ci := ConnInfo{
		Listener:   m.listener,
		TLS:        m.tls,
		Queued:     queuedSince(m.sent),
		LocalAddr:  parseAddr(m.localNet, m.localAddr),
		RemoteAddr: parseAddr(m.remoteNet, m.remoteAddr),
	}
	if m.proxyClient != "" {
		ci.ProxyClient, _ = netip.ParseAddrPort(m.proxyClient) // checked when decoded
	}
	if m.seal != "" {
		ci.Seal = []byte(m.seal)
	}
	return ci
}

// parseAddr turns a (network, address) pair back into the net.Addr type
// the standard library uses for it, without any name lookup.
func parseAddr(network, addr string) net.Addr {
	if network == "" && addr == "" {
		return nil
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
		if ap, err := netip.ParseAddrPort(addr); err == nil {
			return net.TCPAddrFromAddrPort(ap)
		}
	case "unix", "unixpacket", "unixgram":
		return &net.UnixAddr{Name: addr, Net: network}
	}
	return &Addr{Net: network, Addr: addr}
}

// Addr is a network address received as text that this package does not
// parse into a standard type.
type Addr struct {
	Net  string // the network name, as net.Addr.Network returned it
	Addr string // the address, as net.Addr.String returned it
}

// Network returns a.Net.
func (a *Addr) Network() string { return a.Net }

// String returns a.Addr.
func (a *Addr) String() string { return a.Addr }

// monotonicNow reads CLOCK_MONOTONIC, which every process on the host
// shares and which wall-clock changes do not move.
func monotonicNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}

// queuedSince is how long ago, on CLOCK_MONOTONIC, the sender stamped a
// message; 0 for a message without a stamp.
func queuedSince(sent int64) time.Duration {
	if sent <= 0 {
		return 0
	}
	return time.Duration(max(0, monotonicNow()-sent))
}
