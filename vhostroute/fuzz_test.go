package vhostroute

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Seeds for all three targets live in testdata/fuzz/<FuzzName>/; go test
// runs them as ordinary tests.

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
