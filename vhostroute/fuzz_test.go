package vhostroute

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Seeds for the targets live in testdata/fuzz/<FuzzName>/; go test runs
// them as ordinary tests.

func FuzzNormalizeHost(f *testing.F) {
	local := netip.MustParseAddrPort("192.0.2.1:80")
	f.Fuzz(func(t *testing.T, s string) {
		h, port, err := SplitHostPort(s)
		// Lookup agrees with NormalizeHost about what is valid.
		var b Builder[string]
		b.Add(Entry[string]{Listener: "*:80", Default: true, Value: "default"})
		tab, berr := b.Build()
		if berr != nil {
			t.Fatal(berr)
		}
		_, found := tab.Lookup(local, s)
		if found != (err == nil) {
			t.Fatalf("Lookup(%q) found = %v, NormalizeHost error = %v", s, found, err)
		}
		if err != nil {
			var he *HostError
			if !errors.As(err, &he) || !errors.Is(err, ErrInvalidHost) {
				t.Fatalf("NormalizeHost(%q): error %v is not a *HostError", s, err)
			}
			return
		}
		if !validPort(port) || strings.IndexByte(s, ':') < 0 && port != "" {
			t.Fatalf("SplitHostPort(%q): port %q", s, port)
		}
		// The result is canonical: normalizing it again changes nothing.
		h2, err := NormalizeHost(h)
		if err != nil || h2 != h {
			t.Fatalf("NormalizeHost(%q) = %q, but NormalizeHost(%q) = %q, %v", s, h, h, h2, err)
		}
		if len(h) > MaxHostLen+2 {
			t.Fatalf("NormalizeHost(%q) = %q: too long", s, h)
		}
		if h == "" {
			return
		}
		if h[0] == '[' {
			a, err := netip.ParseAddr(h[1 : len(h)-1])
			if err != nil || !a.Is6() || a.Zone() != "" {
				t.Fatalf("NormalizeHost(%q) = %q: not a plain IPv6 literal", s, h)
			}
		} else {
			for _, label := range strings.Split(h, ".") {
				if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
					t.Fatalf("NormalizeHost(%q) = %q: bad label %q", s, h, label)
				}
			}
		}
		// A table holding the name finds it under the original spelling.
		var b2 Builder[string]
		b2.Add(Entry[string]{Listener: "*:80", Names: []string{h}, Value: "it"})
		tab2, err := b2.Build()
		if err != nil {
			t.Fatalf("NormalizeHost(%q) = %q, which a table refuses: %v", s, h, err)
		}
		if v, _ := tab2.Lookup(local, s); v != "it" {
			t.Fatalf("table with %q: Lookup(%q) = %q", h, s, v)
		}
	})
}

func FuzzReadHead(f *testing.F) {
	r := HeadReader{MaxHeadBytes: 2048, MaxRequestLine: 512, MaxHeaderFields: 20}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		h1, err1 := r.ParseHead(data)
		h2, err2 := r.ReadHead(&chunkConn{data: data, chunk: int(chunk) + 1})
		res1, res2 := result(h1, err1), result(h2, err2)
		if res1 != res2 {
			t.Fatalf("ParseHead and ReadHead in %d-byte reads disagree:\n%+v\n%+v", int(chunk)+1, res1, res2)
		}
		if len(h2.Raw) > r.MaxHeadBytes || !bytes.HasPrefix(data, h2.Raw) {
			t.Fatalf("ReadHead read %d bytes (limit %d), or changed them", len(h2.Raw), r.MaxHeadBytes)
		}
		if err1 != nil {
			var he *HeadError
			if !errors.As(err1, &he) {
				t.Fatalf("error %v is a %T", err1, err1)
			}
			switch he.Status {
			case 400, 414, 431, 505:
			default:
				t.Fatalf("status %d for %v", he.Status, err1)
			}
			return
		}
		if h1.Len > len(data) || h1.Len > r.MaxHeadBytes || !bytes.HasSuffix(data[:h1.Len], []byte("\r\n\r\n")) && !bytes.Equal(data[:h1.Len], []byte("\r\n")) {
			t.Fatalf("Len %d does not end a head in %q", h1.Len, data)
		}
		if h, err := NormalizeHost(h1.Host); err != nil || h != h1.Host {
			t.Fatalf("Host %q is not normalized (%q, %v)", h1.Host, h, err)
		}
		agreesWithNetHTTP(t, h1)
	})
}

func FuzzClientHello(f *testing.F) {
	r := HelloReader{}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		h1, err1 := r.ParseClientHello(data)
		h2, err2 := r.ReadClientHello(&chunkConn{data: data, chunk: int(chunk) + 1})
		if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() ||
			h1.ServerName != h2.ServerName || strings.Join(h1.ALPN, ",") != strings.Join(h2.ALPN, ",") || !bytes.Equal(h1.Raw, h2.Raw) {
			t.Fatalf("whole and in %d-byte reads disagree:\n%q %q %v\n%q %q %v", int(chunk)+1, h1.ServerName, h1.ALPN, err1, h2.ServerName, h2.ALPN, err2)
		}
		if !bytes.HasPrefix(data, h1.Raw) {
			t.Fatal("Raw is not a prefix of the input")
		}
		if err1 != nil {
			if !errors.Is(err1, ErrNotTLS) && !errors.Is(err1, ErrBadHello) {
				t.Fatalf("error %v wraps neither ErrNotTLS nor ErrBadHello", err1)
			}
			return
		}
		if h1.ServerName != "" {
			if n, err := NormalizeHost(h1.ServerName); err != nil || n != h1.ServerName {
				t.Fatalf("ServerName %q is not normalized", h1.ServerName)
			}
		}
		// crypto/tls, which the workers terminate TLS with, reads the
		// same name and protocols from the bytes consumed.
		info, ok := cryptoTLSHello(h1.Raw)
		if !ok {
			return // crypto/tls is stricter about something; nothing to compare
		}
		if sn, _ := NormalizeHost(info.ServerName); sn != h1.ServerName {
			t.Fatalf("ServerName %q, crypto/tls sees %q", h1.ServerName, info.ServerName)
		}
		if strings.Join(info.SupportedProtos, "\x00") != strings.Join(h1.ALPN, "\x00") {
			t.Fatalf("ALPN %q, crypto/tls sees %q", h1.ALPN, info.SupportedProtos)
		}
	})
}

// cryptoTLSHello runs a crypto/tls server on raw until it has parsed the
// ClientHello, and returns what it saw.
func cryptoTLSHello(raw []byte) (*tls.ClientHelloInfo, bool) {
	var info *tls.ClientHelloInfo
	stop := errors.New("stop")
	srv := tls.Server(&bytesConn{r: bytes.NewReader(raw)}, &tls.Config{
		GetConfigForClient: func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
			info = chi
			return nil, stop
		},
	})
	srv.Handshake()
	return info, info != nil
}

// bytesConn is a net.Conn that reads from r and discards writes.
type bytesConn struct {
	net.Conn
	r io.Reader
}

func (c *bytesConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *bytesConn) Close() error                     { return nil }
func (c *bytesConn) SetDeadline(time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }
func (c *bytesConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *bytesConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

func FuzzProxyHeader(f *testing.F) {
	var r HeadReader
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		checkFieldParsers(t, data)
		h1, err1 := ParseProxyHeader(data)
		var cuts []int
		for p := int(chunk) + 1; p < len(data); p += int(chunk) + 1 {
			cuts = append(cuts, p)
		}
		c := &segConn{data: data, cuts: cuts}
		h2, err2 := r.ReadProxyHeader(c)
		eof := func(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) }

		if err1 != nil {
			var pe *ProxyError
			if !errors.As(err1, &pe) || !errors.Is(err1, ErrBadProxy) || h1 != (ProxyHeader{}) {
				t.Fatalf("error %v (a %T) with %+v", err1, err1, h1)
			}
			// Read in pieces, the bytes get the same verdict, and the same
			// reason but for the quote of what came instead of a header.
			switch {
			case err2 == nil:
				t.Fatalf("ParseProxyHeader: %v, but ReadProxyHeader in %d-byte reads: %+v", err1, int(chunk)+1, h2)
			case eof(err1) != eof(err2):
				t.Fatalf("whole: %v\nin %d-byte reads: %v", err1, int(chunk)+1, err2)
			case eof(err1):
			case strings.Contains(err1.Error(), "no PROXY header") != strings.Contains(err2.Error(), "no PROXY header"),
				!strings.Contains(err1.Error(), "no PROXY header") && err1.Error() != err2.Error():
				t.Fatalf("whole: %v\nin %d-byte reads: %v", err1, int(chunk)+1, err2)
			}
			return
		}
		if err2 != nil || h2 != h1 {
			t.Fatalf("whole: %+v\nin %d-byte reads: %+v, %v", h1, int(chunk)+1, h2, err2)
		}
		if c.pos != h1.Len || c.asked > h1.Len {
			t.Fatalf("header of %d bytes, but the reader took %d and asked for up to %d", h1.Len, c.pos, c.asked)
		}
		if h1.Len < minProxyBytes || h1.Len > len(data) {
			t.Fatalf("Len %d of %d bytes", h1.Len, len(data))
		}
		if _, err := ParseProxyHeader(data[:h1.Len-1]); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("the header without its last byte: %v, want it incomplete", err)
		}
		switch h1.Version {
		case 1:
			if h1.Len > MaxProxyV1Bytes || !bytes.HasPrefix(data, []byte("PROXY ")) || string(data[h1.Len-2:h1.Len]) != "\r\n" {
				t.Fatalf("v1 header %q", data[:h1.Len])
			}
		case 2:
			if h1.Len > MaxProxyV2Bytes || !bytes.HasPrefix(data, proxyV2Sig[:]) {
				t.Fatalf("v2 header %q", data[:h1.Len])
			}
		default:
			t.Fatalf("version %d", h1.Version)
		}
		if h1.Local {
			if h1.Source.IsValid() || h1.Dest.IsValid() {
				t.Fatalf("Local with addresses: %+v", h1)
			}
		} else if !h1.Source.IsValid() || !h1.Dest.IsValid() || h1.Source.Addr().Is4() != h1.Dest.Addr().Is4() || h1.Source.Addr().Zone() != "" || h1.Dest.Addr().Zone() != "" {
			t.Fatalf("addresses: %+v", h1)
		}

		// The fields, written back as v2 (and as v1), parse to the same.
		v2 := buildV2(h1)
		if h, err := ParseProxyHeader(v2); err != nil || h != (ProxyHeader{Version: 2, Local: h1.Local, Source: h1.Source, Dest: h1.Dest, Len: len(v2)}) {
			t.Fatalf("%+v as v2 %q: %+v, %v", h1, v2, h, err)
		}
		v1 := buildV1(h1)
		if h, err := ParseProxyHeader(v1); err != nil || h != (ProxyHeader{Version: 1, Local: h1.Local, Source: h1.Source, Dest: h1.Dest, Len: len(v1)}) {
			t.Fatalf("%+v as v1 %q: %+v, %v", h1, v1, h, err)
		}
	})
}

// checkFieldParsers holds the v1 address and port parsers to the
// standard library's: they accept the same, zones aside.
func checkFieldParsers(t *testing.T, b []byte) {
	s := string(b)
	if strings.IndexByte(s, '%') >= 0 {
		return // netip takes zones; a PROXY header has none
	}
	want, err := netip.ParseAddr(s)
	if got, ok := parseIPv4(b); ok != (err == nil && want.Is4()) || ok && got != want {
		t.Fatalf("parseIPv4(%q) = %v, %v; netip: %v, %v", s, got, ok, want, err)
	}
	if got, ok := parseIPv6(b); ok != (err == nil && want.Is6()) || ok && got != want {
		t.Fatalf("parseIPv6(%q) = %v, %v; netip: %v, %v", s, got, ok, want, err)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	okPort := err == nil && (s == "0" || s[0] != '0')
	if got, ok := parsePort(b); ok != okPort || ok && uint64(got) != n {
		t.Fatalf("parsePort(%q) = %v, %v; strconv: %v, %v", s, got, ok, n, err)
	}
}

// buildV2 writes h as a v2 header.
func buildV2(h ProxyHeader) []byte {
	switch {
	case h.Local:
		return v2Header(0x20, 0x00)
	case h.Source.Addr().Is4():
		return v2Header(0x21, 0x11, addrPorts(h.Source, h.Dest))
	}
	return v2Header(0x21, 0x21, addrPorts(h.Source, h.Dest))
}

// buildV1 writes h as a v1 header.
func buildV1(h ProxyHeader) []byte {
	if h.Local {
		return []byte("PROXY UNKNOWN\r\n")
	}
	proto := "TCP6"
	if h.Source.Addr().Is4() {
		proto = "TCP4"
	}
	return fmt.Appendf(nil, "PROXY %s %s %s %d %d\r\n", proto, h.Source.Addr(), h.Dest.Addr(), h.Source.Port(), h.Dest.Port())
}

func addrPorts(src, dst netip.AddrPort) []byte {
	b := append(src.Addr().AsSlice(), dst.Addr().AsSlice()...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, src.Port()), dst.Port())
}
