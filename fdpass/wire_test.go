package fdpass

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestWireLayout pins the bytes of a message, as doc.go describes them:
// a change here is a change of the wire format and needs a new version.
func TestWireLayout(t *testing.T) {
	m := connMeta{tls: true, sent: 0x0102030405060708, listener: "web", localNet: "tcp", localAddr: "127.0.0.1:80", remoteNet: "tcp", remoteAddr: "127.0.0.1:5000", proxyClient: "192.0.2.1:7"}
	body := appendConnBody(nil, &m, []byte("GET"))
	got := appendHeader(nil, header{kind: kindConn, nfds: 1, bodyLen: uint32(len(body))})
	got = append(got, body...)
	want := []byte("mpmf\x02\x02\x01\x00\x00\x00\x00\x44" + // header: data length 68
		"\x01" + // flags: TLS
		"\x01\x02\x03\x04\x05\x06\x07\x08" + // send time
		"\x00\x03web" +
		"\x03tcp" + "\x00\x0c127.0.0.1:80" +
		"\x03tcp" + "\x00\x0e127.0.0.1:5000" +
		"\x00\x0b192.0.2.1:7" +
		"GET")
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded\n%q\nwant\n%q", got, want)
	}
	if m.size()+3 != len(body) {
		t.Errorf("size() = %d, body has %d bytes of metadata", m.size(), len(body)-3)
	}
}

// TestWireLayoutSeal pins the optional seal: flag bit 1, then the seal
// after the PROXY client address. A message without one is the layout
// above, byte for byte.
func TestWireLayoutSeal(t *testing.T) {
	m := connMeta{proxyClient: "192.0.2.1:7", seal: "MAC"}
	body := appendConnBody(nil, &m, []byte("GET"))
	want := []byte("\x02" + // flags: seal
		"\x00\x00\x00\x00\x00\x00\x00\x00" + // send time
		"\x00\x00" + "\x00" + "\x00\x00" + "\x00" + "\x00\x00" +
		"\x00\x0b192.0.2.1:7" +
		"\x03MAC" +
		"GET")
	if !bytes.Equal(body, want) {
		t.Fatalf("encoded\n%q\nwant\n%q", body, want)
	}
	if m.size()+3 != len(body) {
		t.Errorf("size() = %d, body has %d bytes of metadata", m.size(), len(body)-3)
	}
	// The flag with an empty seal is a second spelling of "no seal":
	// refused.
	bad := slices.Clone(want[:len(want)-len("\x03MACGET")])
	bad = append(bad, 0)
	if _, _, err := decodeConnBody(bad); !errors.Is(err, ErrMalformed) {
		t.Errorf("flag with an empty seal: decode = %v, want ErrMalformed", err)
	}
}

func TestConnMetaRoundTrip(t *testing.T) {
	addrCmp := cmp.Comparer(func(a, b net.Addr) bool {
		if a == nil || b == nil {
			return a == nil && b == nil
		}
		return a.Network() == b.Network() && a.String() == b.String()
	})
	apCmp := cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })
	for _, info := range []ConnInfo{
		{},
		{Listener: "https", TLS: true, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}, RemoteAddr: &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 5, Zone: "eth0"}},
		{RemoteAddr: &net.UnixAddr{Name: "/run/x.sock", Net: "unix"}, ProxyClient: netip.MustParseAddrPort("[::1]:8")},
		{RemoteAddr: &Addr{Net: "quic", Addr: "whatever"}, Listener: strings.Repeat("l", maxField)},
		{ProxyClient: netip.MustParseAddrPort("192.0.2.9:1234"), Seal: []byte(strings.Repeat("s", maxSeal))},
	} {
		m := metaFromInfo(info, nil, nil)
		if err := m.check(); err != nil {
			t.Fatalf("check(%+v): %v", info, err)
		}
		body := appendConnBody(nil, &m, []byte("read"))
		got, read, err := decodeConnBody(body)
		if err != nil {
			t.Fatalf("decode %+v: %v", info, err)
		}
		if string(read) != "read" {
			t.Errorf("read bytes %q", read)
		}
		gi := got.info()
		if gi.Queued < 0 || gi.Queued > time.Minute {
			t.Errorf("Queued = %v for a message encoded just now", gi.Queued)
		}
		if diff := cmp.Diff(info, gi, addrCmp, apCmp, cmpopts.IgnoreFields(ConnInfo{}, "Queued")); diff != "" {
			t.Errorf("round trip mismatch (-sent +received):\n%s", diff)
		}
	}
}

func TestConnMetaRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    connMeta
		text string
	}{
		{"long listener", connMeta{listener: strings.Repeat("x", maxField+1)}, "listener name is 513 bytes"},
		{"long network", connMeta{localNet: strings.Repeat("x", 256)}, "local network is 256 bytes"},
		{"bad proxy address", connMeta{proxyClient: "example.com:80"}, `PROXY client address "example.com:80"`},
		{"long seal", connMeta{seal: strings.Repeat("s", maxSeal+1)}, "seal is 256 bytes"},
	} {
		err := tt.m.check()
		if err == nil || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%s: check = %v, want %q", tt.name, err, tt.text)
		}
		// A receiver refuses what a sender would not send.
		b := appendConnBody(nil, &tt.m, nil)
		if _, _, err := decodeConnBody(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: decode = %v, want ErrMalformed", tt.name, err)
		}
	}
	if m := (connMeta{listener: strings.Repeat("x", maxField), localNet: strings.Repeat("x", 255), localAddr: strings.Repeat("x", maxField), remoteNet: strings.Repeat("x", 255), remoteAddr: strings.Repeat("x", maxField), proxyClient: strings.Repeat("x", maxField), seal: strings.Repeat("x", maxSeal)}); m.size() > maxMeta {
		t.Errorf("largest metadata is %d bytes, more than maxMeta %d", m.size(), maxMeta)
	}
}

// FuzzDecode feeds arbitrary messages and descriptor counts to the
// decoder. It must never panic, and whatever it accepts must encode back
// to the same bytes: there is one way to write each message, so two
// receivers cannot read one differently.
func FuzzDecode(f *testing.F) {
	body := appendConnBody(nil, &connMeta{listener: "web", remoteNet: "tcp", remoteAddr: "192.0.2.1:1"}, []byte("GET / HTTP/1.1\r\n"))
	f.Add(frame(kindConn, 1, body), 1)
	f.Add(frame(kindData, 2, []byte("payload")), 2)
	f.Add(frame(kindData, 0, nil), 0)
	f.Fuzz(func(t *testing.T, b []byte, nfds int) {
		kind, body, err := decodeFrame(b, nfds)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrTooManyFDs) {
				t.Fatalf("decodeFrame error %v wraps none of the sentinels", err)
			}
			return
		}
		again := appendHeader(nil, header{kind: kind, nfds: byte(nfds), bodyLen: uint32(len(body))})
		if again = append(again, body...); !bytes.Equal(again, b) {
			t.Fatalf("frame %q re-encodes as %q", b, again)
		}
		if kind != kindConn {
			return
		}
		m, read, err := decodeConnBody(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decodeConnBody error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if again := appendConnBody(nil, &m, read); !bytes.Equal(again, body) {
			t.Fatalf("connection body %q re-encodes as %q", body, again)
		}
		info := m.info()
		for _, a := range []net.Addr{info.LocalAddr, info.RemoteAddr} {
			if a != nil {
				_, _ = a.Network(), a.String()
			}
		}
	})
}
